"""Mapping analysts' headers to canonical names, and percent shares to fractions."""


import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.errors import InputError, Problem
from analysis.ingest import mapping as mp
from analysis.ingest import schema

CONTRACT_EXAMPLE = """\
schools:                 # canonical name: header in the analyst's file
  school_id: "Код ОО"
  school_name: "Наименование ОО"
  municipality: "МО"
  share_low_income: "Доля детей из малоимущих семей, %"
results:
  n_mark2: "«2»"
units:                   # shares given as percent (0..100) or fraction (0..1)
  share_low_income: percent
"""
LOW_INCOME = "Доля детей из малоимущих семей, %"
#: The other required school columns, already canonical in the analyst's file.
REST = ["year", "settlement_type", "school_type", "enrollment"]


def text_table(columns: dict[str, list], file: str = "schools.csv") -> pd.DataFrame:
    """A text table as analysis.ingest.io.read_text_table returns it."""
    n = len(next(iter(columns.values())))
    df = pd.DataFrame({k: pd.Series(v, dtype="str") for k, v in columns.items()})
    df.insert(0, "source_row", range(2, n + 2))
    df.insert(0, "source_file", file)
    return df


def schools_table(extra: dict[str, list] | None = None) -> pd.DataFrame:
    cols = {"Код ОО": ["007", "012"], "Наименование ОО": ["СОШ № 7", "Лицей"],
            "МО": ["Север", "Юг"], LOW_INCOME: ["25", "12.5"],
            "year": ["2025", "2025"], "settlement_type": ["city", "village"],
            "school_type": ["secondary", "lyceum"], "enrollment": ["512", "80"]}
    cols.update(extra or {})
    return text_table(cols)


@pytest.fixture
def example(tmp_path):
    path = tmp_path / "mapping.yaml"
    path.write_text(CONTRACT_EXAMPLE, encoding="utf-8")
    return mp.load_mapping(path)


def problems_of(data: dict) -> list[Problem]:
    with pytest.raises(InputError) as err:
        mp.validate_mapping(data, "mapping.yaml")
    return list(err.value.problems)


# --- constants ------------------------------------------------------------------------------


def test_table_and_share_columns_come_from_schema():
    assert mp.TABLE_COLUMNS["schools"] == schema.SCHOOLS_COLUMNS + schema.SCHOOLS_EXTRA
    assert mp.TABLE_COLUMNS["results"] == schema.RESULTS_COLUMNS
    assert mp.TABLE_COLUMNS["students"] == schema.STUDENTS_COLUMNS
    assert mp.SHARE_COLUMNS == {*schema.SCHOOLS_OPTIONAL, *schema.MARK_SHARES, "pct_below_min"}


# --- load / validate ------------------------------------------------------------------------


def test_contract_example_loads(example):
    assert example.source == "mapping.yaml"
    assert example.tables == {
        "schools": {"school_id": "Код ОО", "school_name": "Наименование ОО",
                    "municipality": "МО", "share_low_income": LOW_INCOME},
        "results": {"n_mark2": "«2»"},
    }
    assert example.units == {"share_low_income": "percent"}


def test_empty_file_and_empty_tables_are_an_empty_mapping(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("# nothing yet\n", encoding="utf-8")
    assert mp.load_mapping(path) == mp.Mapping({}, {}, "m.yaml")
    assert mp.validate_mapping({"schools": None, "units": {}}, "m").tables == {"schools": {}}


def test_broken_yaml_names_the_file(tmp_path):
    path = tmp_path / "mapping.yaml"
    path.write_text("schools: [unclosed\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"mapping\.yaml; expected valid YAML"):
        mp.load_mapping(path)


def test_every_problem_kind_with_its_message_at_once():
    found = problems_of({
        "school": {"school_id": "Код"},
        "schools": {"share_low_incme": "Доля", "school_name": "", "municipality": 7,
                    "school_id": "Код ОО", "year": "Код ОО", "enrollment": None},
        "results": {"n_mark2": "«2»"},
        "units": {"school_id": "percent", "share_low_income": "percents",
                  "share_disability": "fraction"},
    })
    assert [str(p) for p in found] == [
        "mapping.yaml, column 'school'; expected one of schools, results, students, units",
        ("mapping.yaml, column 'share_low_incme'; expected a canonical column of table "
         "'schools' (did you mean 'share_low_income'?)"),
        "mapping.yaml, column 'school_name'; expected a non-empty header text in quotes",
        ("mapping.yaml, column 'municipality': got '7'; expected a non-empty header text in "
         "quotes"),
        ("mapping.yaml, column 'year': got 'Код ОО'; expected each header mapped once in table "
         "'schools' ('Код ОО' is already mapped to 'school_id')"),
        "mapping.yaml, column 'enrollment'; expected a non-empty header text in quotes",
        "mapping.yaml, column 'school_id'; expected a share column (units apply to shares only)",
        "mapping.yaml, column 'share_low_income': got 'percents'; expected percent or fraction",
    ]
    assert all(p.file == "mapping.yaml" for p in found)


def test_unknown_name_without_a_close_match_has_no_suggestion():
    (problem,) = problems_of({"results": {"zzz": "Q"}})
    assert problem.column == "zzz"
    assert problem.expected == "a canonical column of table 'results'"


def test_unit_for_a_misspelt_share_suggests_it():
    (problem,) = problems_of({"units": {"pct_mark_2": "percent"}})
    assert problem.expected == ("a share column (units apply to shares only) "
                                "(did you mean 'pct_mark2'?)")


def test_a_header_may_repeat_across_tables():
    m = mp.validate_mapping({"schools": {"school_id": "Код ОО"},
                             "results": {"school_id": "Код ОО"}}, "m")
    assert m.tables["results"] == {"school_id": "Код ОО"}


def test_not_a_mapping_at_all():
    (problem,) = problems_of(["schools"])
    assert problem.expected == "a YAML mapping with the keys schools, results, students, units"


# --- apply ----------------------------------------------------------------------------------


def test_contract_example_applies(example):
    df = schools_table()
    out, notes = mp.apply_mapping(df, "schools", example, "schools.csv")
    assert list(out.columns) == ["source_file", "source_row", "school_id", "school_name",
                                 "municipality", "share_low_income", *REST]
    assert out["school_id"].tolist() == ["007", "012"]
    assert out["share_low_income"].tolist() == ["0.25", "0.125"]
    assert notes == ["share_low_income: percent -> fraction (2 values)"]
    assert list(df.columns)[2] == "Код ОО" and df[LOW_INCOME].tolist() == ["25", "12.5"]


def test_applied_table_passes_the_typed_reader(example):
    from analysis.ingest import io

    out, _ = mp.apply_mapping(schools_table(), "schools", example, "schools.csv")
    typed = io.coerce_table(out, "schools")
    assert typed["share_low_income"].tolist() == [0.25, 0.125]


def test_percent_text_keeps_blanks_and_bad_text_for_the_validator(example):
    df = schools_table({LOW_INCOME: ["abc", None]})
    out, notes = mp.apply_mapping(df, "schools", example, "schools.csv")
    assert out["share_low_income"].iloc[0] == "abc" and pd.isna(out["share_low_income"].iloc[1])
    assert notes == ["share_low_income: percent -> fraction (0 values)"]


@pytest.mark.parametrize(("text", "fraction"), [
    ("0", "0"), ("100", "1"), ("7", "0.07"), ("14.3", "0.143"), ("12,5", "0.125"),
    (" 33.33 ", "0.3333"), ("50%", "0.5"), ("1e1", "0.1"), ("nan", "nan"), ("inf", "inf"),
])
def test_percent_text_forms(text, fraction):
    assert mp._percent_text(text) == fraction


def test_missing_mapped_header_lists_the_files_headers(example):
    df = schools_table().drop(columns=["МО"])
    with pytest.raises(InputError) as err:
        mp.apply_mapping(df, "schools", example, "schools.csv")
    assert [str(p) for p in err.value.problems] == [
        ("schools.csv, column 'МО'; expected a column 'МО' (mapping.yaml maps it to "
         "'municipality'); the file has: Код ОО, Наименование ОО, Доля детей из малоимущих "
         "семей, %, year, settlement_type, school_type, enrollment"),
    ]


def test_long_header_list_is_cut_at_ten():
    m = mp.validate_mapping({"schools": {"municipality": "МО"}}, "m.yaml")
    df = text_table({f"c{i}": ["x"] for i in range(12)})
    with pytest.raises(InputError) as err:
        mp.apply_mapping(df, "schools", m, "f.csv")
    assert err.value.problems[0].expected.endswith("the file has: c0, c1, c2, c3, c4, c5, c6, "
                                                   "c7, c8, c9 (and 2 more)")


def test_missing_required_column_suggests_an_unmapped_header():
    m = mp.validate_mapping({"schools": {"school_name": "Наименование ОО", "municipality": "МО"}},
                            "mapping.yaml")
    with pytest.raises(InputError) as err:
        mp.apply_mapping(schools_table(), "schools", m, "schools.csv")
    assert [str(p) for p in err.value.problems] == [
        ("schools.csv, column 'school_id'; expected a column for 'school_id' "
         "(maybe 'Код ОО'? add it to mapping.yaml)"),
    ]


def test_missing_required_column_without_a_guess():
    df = text_table({"year": ["2025"], "school_id": ["1"], "procedure": ["VPR"],
                     "subject": ["rus"], "grade": ["4"]}, "results.csv")
    with pytest.raises(InputError) as err:
        mp.apply_mapping(df, "results", None, "results.csv")
    assert [str(p) for p in err.value.problems] == [
        ("results.csv, column 'participants'; expected a column for 'participants' "
         "(a required column; map your header to it in mapping.yaml)"),
    ]


def test_mapped_header_and_canonical_column_both_present(example):
    df = schools_table({"school_id": ["1", "2"]})
    with pytest.raises(InputError) as err:
        mp.apply_mapping(df, "schools", example, "schools.csv")
    assert err.value.problems[0].expected == (
        "one column for 'school_id'; the file has both 'school_id' and 'Код ОО' (mapped to it)")


def test_extra_columns_are_dropped_and_noted(example):
    df = schools_table({"Примечание": ["", "x"], "ОВЗ": ["0.1", "0.2"]})
    out, notes = mp.apply_mapping(df, "schools", example, "schools.csv")
    assert "Примечание" not in out.columns and "ОВЗ" not in out.columns
    assert notes[:2] == [
        "ignored columns: Примечание, ОВЗ",
        "ignored column 'ОВЗ' looks like 'share_disability'; map it in mapping.yaml to use it",
    ]


def test_canonical_headers_pass_through_without_a_mapping():
    cols = {c: ["1"] for c in schema.SCHOOLS_COLUMNS}
    df = text_table(cols)
    out, notes = mp.apply_mapping(df, "schools", None, "schools.csv")
    assert list(out.columns) == ["source_file", "source_row", *schema.SCHOOLS_COLUMNS]
    assert out["share_low_income"].tolist() == ["1"]
    assert notes == []


def test_units_apply_to_canonical_headers_too():
    m = mp.validate_mapping({"units": {"pct_mark2": "percent", "pct_mark3": "fraction"}}, "m")
    cols = {c: ["1"] for c in schema.RESULTS_REQUIRED} | {"pct_mark2": ["40"],
                                                          "pct_mark3": ["0.6"]}
    out, notes = mp.apply_mapping(text_table(cols, "results.csv"), "results", m, "results.csv")
    assert out["pct_mark2"].tolist() == ["0.4"] and out["pct_mark3"].tolist() == ["0.6"]
    assert notes == ["pct_mark2: percent -> fraction (1 values)"]


def test_unknown_table_is_a_programming_error():
    with pytest.raises(ValueError):
        mp.apply_mapping(text_table({"a": ["1"]}), "teachers", None, "f")


# --- draft ----------------------------------------------------------------------------------

SCHOOL_HEADERS = ["Код ОО", "Наименование ОО", "Муниципальное образование", "Год",
                  "Тип местности", "Вид ОО", "Контингент", "Доля детей из малоимущих семей, %",
                  "ОВЗ, %", "Неполные семьи", "Учёт КДН/ПДН", "Примечание"]
RESULT_HEADERS = ["Год", "Код ОО", "Процедура", "Предмет", "Класс", "Кол-во участников",
                  "«2»", "«3»", "«4»", "«5»", "% «2»", "Средний балл",
                  "Не преодолели минимальный порог", "Примечание"]


def test_draft_mapping_schools():
    matched, unmatched = mp.draft_mapping(SCHOOL_HEADERS, "schools")
    assert matched == {
        "school_id": "Код ОО", "school_name": "Наименование ОО",
        "municipality": "Муниципальное образование", "year": "Год",
        "settlement_type": "Тип местности", "school_type": "Вид ОО", "enrollment": "Контингент",
        "share_low_income": "Доля детей из малоимущих семей, %", "share_disability": "ОВЗ, %",
        "share_single_parent": "Неполные семьи", "share_prevention_register": "Учёт КДН/ПДН",
    }
    assert unmatched == ["Примечание"]


def test_draft_mapping_results_prefers_shares_for_percent_headers():
    matched, unmatched = mp.draft_mapping(RESULT_HEADERS, "results")
    assert matched == {
        "year": "Год", "school_id": "Код ОО", "procedure": "Процедура", "subject": "Предмет",
        "grade": "Класс", "participants": "Кол-во участников", "n_mark2": "«2»",
        "n_mark3": "«3»", "n_mark4": "«4»", "n_mark5": "«5»", "pct_mark2": "% «2»",
        "mean_score": "Средний балл", "n_below_min": "Не преодолели минимальный порог",
    }
    assert unmatched == ["Примечание"]


def test_draft_mapping_fuzzy_english_and_one_use_per_name():
    matched, unmatched = mp.draft_mapping(
        ["School ID", "School name", "Enrollment", "Муниципалитеты", "Школа", "enrollment"],
        "schools")
    assert matched == {"school_id": "School ID", "school_name": "School name",
                       "municipality": "Муниципалитеты", "enrollment": "enrollment"}
    assert unmatched == ["Enrollment", "Школа"]


def test_draft_yaml_round_trips_through_load_mapping(tmp_path):
    text = mp.draft_yaml({"schools": SCHOOL_HEADERS, "results": RESULT_HEADERS})
    assert "  # not matched (map by hand or ignore): Примечание" in text
    assert "  # required, not found" not in text
    path = tmp_path / "mapping.yaml"
    path.write_text(text, encoding="utf-8")
    m = mp.load_mapping(path)
    assert m.tables["schools"] == mp.draft_mapping(SCHOOL_HEADERS, "schools")[0]
    assert m.tables["results"]["pct_mark2"] == "% «2»"
    assert m.units == {"share_low_income": "percent", "share_disability": "percent",
                       "pct_mark2": "percent"}


def test_draft_yaml_with_nothing_matched_and_awkward_headers():
    text = mp.draft_yaml({"students": ['Заметка "А"', "x\\y"]})
    assert yaml.safe_load(text) == {"students": {}, "units": {}}
    assert "# required, not found: year, school_id, procedure, subject, grade" in text
    text = mp.draft_yaml({"schools": ['Код "ОО"\\1']})
    assert mp.validate_mapping(yaml.safe_load(text), "m").tables["schools"] == {
        "school_id": 'Код "ОО"\\1'}


# --- command line ---------------------------------------------------------------------------


def test_cli_writes_a_draft(tmp_path, capsys):
    (tmp_path / "schools.csv").write_text(";".join(SCHOOL_HEADERS) + "\n" + ";" * 11 + "\n",
                                          encoding="utf-8-sig")
    (tmp_path / "results.csv").write_bytes(
        (",".join(RESULT_HEADERS) + "\n").encode("cp1251"))
    out = tmp_path / "mapping.yaml"
    argv = ["draft", "--schools", str(tmp_path / "schools.csv"),
            "--results", str(tmp_path / "results.csv"), "--out", str(out)]
    assert mp.main(argv) == 0
    m = mp.load_mapping(out)
    assert m.tables["schools"]["school_id"] == "Код ОО"
    assert m.tables["results"]["n_mark2"] == "«2»"
    assert mp.main(argv) == 2  # kept without --force
    assert "exists" in capsys.readouterr().err
    assert mp.main([*argv, "--force"]) == 0


def test_cli_prints_and_reports_a_missing_file(tmp_path, capsys):
    pd.DataFrame(columns=["Код ОО", "Школа"]).to_excel(tmp_path / "s.xlsx", index=False)
    assert mp.main(["draft", "--schools", str(tmp_path / "s.xlsx")]) == 0
    assert 'school_id: "Код ОО"' in capsys.readouterr().out
    assert mp.main(["draft", "--results", str(tmp_path / "nope.csv")]) == 2
    assert "expected an existing file" in capsys.readouterr().err


# --- properties -----------------------------------------------------------------------------

percents = st.integers(min_value=0, max_value=10_000).map(lambda n: n / 100)


@settings(max_examples=60, deadline=None)
@given(st.lists(percents, min_size=1, max_size=5))
def test_percent_text_parses_back_to_value_over_100(values):
    m = mp.validate_mapping({"units": {"share_low_income": "percent"}}, "m")
    cols = {c: ["1"] * len(values) for c in schema.SCHOOLS_REQUIRED}
    cols["share_low_income"] = [f"{v:.2f}".rstrip("0").rstrip(".") for v in values]
    out, _ = mp.apply_mapping(text_table(cols), "schools", m, "schools.csv")
    for text, value in zip(out["share_low_income"], values, strict=True):
        assert abs(float(text) - value / 100) <= 1e-12


def test_end_to_end_with_the_text_reader(tmp_path, example):
    from analysis.ingest import io

    path = tmp_path / "schools.csv"
    path.write_text("Код ОО,Наименование ОО,МО,year,settlement_type,school_type,enrollment,"
                    f"\"{LOW_INCOME}\",Примечание\n"
                    "007,СОШ № 7,Север,2025,city,secondary,512,33.5,\n", encoding="utf-8-sig")
    out, notes = mp.apply_mapping(io.read_text_table(path), "schools", example, path.name)
    typed = io.coerce_table(out, "schools")
    assert typed.loc[0, "school_id"] == "007" and typed.loc[0, "share_low_income"] == 0.335
    assert notes == ["ignored columns: Примечание",
                     "share_low_income: percent -> fraction (1 values)"]
