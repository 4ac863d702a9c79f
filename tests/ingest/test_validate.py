"""Validation: normalisation, pandera checks turned into located problems, derived counts."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.errors import InputError, Problem
from analysis.ingest import io, validate
from analysis.ingest.readers import ReadReport
from helpers.fixtures import result_row, results_table, schools_table

SCHOOL = {"year": "2025", "school_name": "A", "municipality": "M", "settlement_type": "city",
          "school_type": "secondary", "enrollment": "100"}


def text_table(rows: list[dict], file: str = "schools.csv") -> pd.DataFrame:
    """A text table as the reader gives it: every cell a str, rows numbered from 2."""
    df = pd.DataFrame(rows, dtype=object)
    df.insert(0, "source_row", range(2, len(df) + 2))
    df.insert(0, "source_file", file)
    return df


def schools_text(*ids: str, **changes) -> pd.DataFrame:
    return text_table([{**SCHOOL, "school_id": i, **changes} for i in ids])


@pytest.mark.parametrize("column, forms, code", [
    ("settlement_type", ["Город", " г. ", "ГОРОДСКОЙ", "city", "City"], "city"),
    ("settlement_type", ["посёлок", "Поселок", "пгт", "п."], "town"),
    ("settlement_type", ["село", "Деревня", "с.", "д.", "сельская"], "village"),
    ("school_type", ["ООШ", "основная"], "basic"),
    ("school_type", ["СОШ", "средняя", " сош "], "secondary"),
    ("school_type", ["СОШ с УИОП", "сош  с  уиоп", "УИОП", "углублённым"], "advanced"),
    ("school_type", ["Гимназия", "ГИМНАЗИЯ"], "gymnasium"),
    ("school_type", ["Лицей", " лицей"], "lyceum"),
    ("school_type", ["АООП", "коррекционная", "адаптированная"], "adapted"),
    ("school_type", ["прочее", "Другое", "other"], "other"),
])
def test_category_forms_are_normalised(column, forms, code):
    df = schools_text(*(str(i) for i in range(len(forms))))
    df[column] = forms
    out, _ = validate.normalise(df, "schools")
    assert set(out[column]) == {code}


def test_normalise_logs_each_repair_and_leaves_unknown_forms():
    df = schools_text("1", "2", "3 ", settlement_type="Город")
    df.loc[2, "settlement_type"] = "мегаполис"
    out, repairs = validate.normalise(df, "schools")
    assert list(out["settlement_type"]) == ["city", "city", "мегаполис"]
    assert list(out["school_id"]) == ["1", "2", "3"]
    assert sorted(repairs) == ["schools.csv: school_id: trimmed spaces (1 cell)",
                               "schools.csv: settlement_type: 'Город' -> 'city' (2 rows)"]


def test_identical_failures_are_grouped_into_one_problem():
    df = schools_text(*(f"{i:06d}" for i in range(1, 13)), enrollment="-5")
    df.loc[0, "enrollment"] = "abc"
    got = validate.validate_table(df, "schools").problems
    assert [str(p) for p in got] == [
        "schools.csv, row 2, column 'enrollment': got 'abc'; expected a whole number >= 0",
        ("schools.csv, rows 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 (and 1 more), column 'enrollment': "
         "got '-5'; expected a whole number >= 0"),
    ]


def test_shares_out_of_range_and_required_values():
    df = schools_text("1", "2", "3")
    df["share_low_income"] = ["0.5", "1.4", "-0.1"]
    df.loc[0, "school_name"] = None
    got = {(p.column, p.value, p.rows) for p in validate.validate_table(df, "schools").problems}
    assert got == {("school_name", "", (2,)), ("share_low_income", "1.4", (3,)),
                   ("share_low_income", "-0.1", (4,))}


def test_duplicates_name_every_row_of_each_group():
    got = validate.validate_table(schools_text("7", "8", "7", "8", "7"), "schools").problems
    assert [(p.value, p.rows) for p in got] == [("7", (2, 4, 6)), ("8", (3, 5))]
    assert got[0].expected == validate.SCHOOL_DUP


def test_results_rules_and_unknown_school():
    res = results_table([
        result_row(2025, "001"),
        result_row(2025, "001"),
        {**result_row(2025, "002", grade=12), "participants": 11},
        result_row(2025, "999", procedure="EGE", below=(9, 8)),
    ])
    out = validate.validate_tables(schools_table([{"year": 2025, "school_id": "001"},
                                                  {"year": 2025, "school_id": "002"}]),
                                   res, 2025)
    got = {(p.column, p.rows, p.expected) for p in out.problems}
    assert got == {
        (validate.KEY_COLUMNS, (2, 3), validate.RESULT_DUP),
        ("grade", (4,), validate.GRADE),
        ("participants", (4,), validate.MARK_SUM),
        ("n_below_min", (5,), validate.BELOW_MAX),
        ("school_id", (5,), validate.UNKNOWN_SCHOOL),
    }
    with pytest.raises(InputError, match="5 problems"):
        out.raise_if_errors()


def test_a_row_with_some_mark_counts_needs_all_of_them():
    res = results_table([{**result_row(2025, "001"), "n_mark4": None}])
    _, problems, _ = validate.check_table(res, "results")
    assert [(p.column, p.rows) for p in problems] == [("n_mark4", (2,))]


def test_counts_are_derived_from_shares_and_logged():
    res = text_table([
        {"year": "2025", "school_id": "1", "procedure": "VPR", "subject": "math", "grade": "5",
         "participants": "18", "pct_mark2": "0.0556", "pct_mark3": "0.3889",
         "pct_mark4": "0.3333", "pct_mark5": "0.2222", "pct_below_min": None},
        {"year": "2025", "school_id": "1", "procedure": "EGE", "subject": "rus", "grade": "11",
         "participants": "40", "pct_mark2": None, "pct_mark3": None, "pct_mark4": None,
         "pct_mark5": None, "pct_below_min": "0.125"},
    ], "results.csv")
    out = validate.validate_table(res, "results")
    assert out.problems == []
    assert out.results.loc[0, list(validate.schema.MARK_COUNTS)].tolist() == [1, 7, 6, 4]
    assert out.results.loc[1, "n_below_min"] == 5
    assert "results.csv: n_mark3 = round(pct_mark3 x participants) (1 row)" in out.repairs
    assert "results.csv: n_below_min = round(pct_below_min x participants) (1 row)" in out.repairs


def test_shares_that_do_not_sum_to_one_are_an_error():
    res = pd.DataFrame({"source_file": "r.csv", "source_row": [2, 3], "participants": [10, 10],
                        **{c: [0.25, 0.2] for c in validate.schema.MARK_SHARES}})
    _, _, problems = validate.derive_counts(res)
    assert problems == [Problem("r.csv", "pct_mark2", validate.SHARE_SUM, (3,))]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 500), min_size=4, max_size=4).filter(
    lambda c: 0 < sum(c) <= 500))
def test_counts_derive_back_exactly_from_shares_rounded_to_4_decimals(counts):
    n = sum(counts)
    shares = pd.Series([round(c / n, 4) for c in counts])
    derived = validate.share_to_count(shares, pd.Series([n] * 4))
    assert derived.tolist() == counts
    assert abs(shares.sum() - 1) <= validate.SHARE_SUM_TOLERANCE


def test_leading_zero_warning():
    assert validate.leading_zero_warnings(schools_text("000123", "000124")) == []
    assert validate.leading_zero_warnings(schools_text("A1", "12345", "123456")) == []
    got = validate.leading_zero_warnings(schools_text("10001", "100002", "10003"))
    assert got == [("schools.csv, rows 2, 4: school codes of different lengths (5 and 6 "
                    "digits): leading zeros may have been lost (Excel does this to codes stored "
                    "as numbers); codes: 10001, 10003")]


def test_missing_reporting_year():
    out = validate.validate_tables(schools_text("1"), results_table([result_row(2025, "1")]),
                                   2026)
    assert [p.column for p in out.problems] == ["year", "year"]


def test_typed_tables_validate_unchanged():
    schools = schools_table([{"year": 2025, "school_id": "001", "share_low_income": 0.25}])
    out = validate.validate_tables(schools, results_table([result_row(2025, "001")]), 2025)
    assert out.ok and out.repairs == [] and out.warnings == []
    pd.testing.assert_frame_equal(out.schools, schools)


def test_read_tables_reports_problems_of_both_tables_at_once(tmp_path):
    (tmp_path / "schools.csv").write_text(
        "year,school_id,school_name,municipality,settlement_type,school_type,enrollment\n"
        "2025,1,A,M,город,СОШ,-1\n", encoding="utf-8")
    (tmp_path / "results.csv").write_text(
        "year,school_id,procedure,subject,grade,participants,n_mark2,n_mark3,n_mark4,n_mark5\n"
        "2025,1,VPR,math,3,10,1,2,3,4\n", encoding="utf-8")
    notes: list[str] = []
    with pytest.raises(InputError) as err:
        io.read_tables(tmp_path, year=2025, notes=notes)
    assert [(p.file, p.column) for p in err.value.problems] == [
        ("schools.csv", "enrollment"), ("results.csv", "grade")]
    assert "schools.csv: settlement_type: 'город' -> 'city' (1 row)" in notes


def test_to_json_and_html_are_deterministic_and_escaped():
    report = ReadReport("schools.csv", "csv", "utf-8", ",", ".", 1, ("a note",), "ab12", 7)
    err = InputError([Problem("schools.csv", "school_name", "text <b>", (2, 3), "<script>")])
    doc = validate.to_json(err, [report], repairs=["r"], warnings=["w", "w"])
    assert json.loads(json.dumps(doc)) == doc
    assert doc == {
        "status": "failed",
        "files": [{"file": "schools.csv", "format": "csv", "encoding": "utf-8",
                   "separator": ",", "decimal": ".", "header_row": 1, "notes": ["a note"],
                   "sha256": "ab12", "size": 7}],
        "repairs": ["r"], "warnings": ["w"],
        "errors": [{"file": "schools.csv", "rows": [2, 3], "column": "school_name",
                    "value": "<script>", "expected": "text <b>"}],
    }
    page = validate.to_html(doc)
    assert "<script>" not in page and "&lt;script&gt;" in page and "text &lt;b&gt;" in page
    ok = validate.ValidationResult(None, None, warnings=["x"], repairs=["y"])
    assert validate.to_json(ok, [])["status"] == "ok"
