"""The synthetic generator at national size: regions, school codes, names, determinism.

A small national spec (3,000 schools in 250 municipalities of 5 regions) checks what a
national dataset needs: a ``region`` column, school codes that are unique and of a fixed
width, every municipality in exactly one region and municipality names unique across
regions.  The default demo region (the ``demo:`` section of params.yaml) must keep its exact
bytes: the DVC pipeline and many tests depend on them, so their sha256 (recorded with the
generator before the national rework) are hard-coded here.
"""

from __future__ import annotations

import hashlib
import json
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from analysis.demo import synth
from analysis.demo.synth import Region, RegionSpec, generate_region, main, write_region
from analysis.demo.synth.spec import _municipality_digits, _validate
from analysis.demo.synth.write import _fixed_decimals, _write_csv
from analysis.ingest import schema

NATIONAL = RegionSpec(n_municipalities=250, n_schools=3000, n_regions=5, seed=11)
#: The ``demo:`` section of params.yaml (what ``make report`` generates into data/raw).
DEFAULT = RegionSpec(n_municipalities=30, n_schools=1000, years=(2023, 2024, 2025), seed=20250,
                     write_students=True)
#: sha256 of the default region's files, recorded with the single-region generator.
RAW_SHA256 = {
    "schools.csv": "233913ff8c28fbfa282348d6c1c44d439a9c56a03cf0c374d5ea6d95cbd84ae9",
    "results.csv": "d2cd592e6e851c9de7a16536cfaf5d562932bfb18dfca0084d52ed2405fdf305",
    "students.parquet": "6252b5391f40726a4b6b0bba54717c4bcc728e107905f474934834c56cba42ef",
}
TRUTH_SHA256 = {
    "truth.csv": "59384239f65ebf0b0c02cf058ff7d0f129b979a7d6b7c50698631db5d14d025b",
    "truth_years.csv": "ea333277c65d73ff9550646a55ec4067255d0c13a9ea3c824c55e5d906138540",
    "truth_procedures.csv": "49901c6d3bffb62be65b4500a45f090a5e592a6b7ae24506afb0f01b8f9cdd17",
    "truth.json": "1a6714a8dfde22a62a0405109ebaba86563c3c7b430a005d122f245ce2c17c2c",
    "README.md": "6e3f0932f7e404f3f55c5a47b789ac5535d8fec04a9b4bce9adf29cb9e0d3e55",
}
#: The Parquet bytes also hold the writing library's version: with other pandas/pyarrow
#: versions the students table is compared by content (sha256 of its CSV rendering).
PARQUET_VERSIONS = ("3.1.1", "26.0.1")
STUDENTS_CONTENT_SHA256 = "70890bc3af609a851a134d52115ca9f776c57dc954e39e32e666bf9b96c3b9c6"
REGION_NAME = re.compile(r"^Республика \S+$|^\S+ (область|край|автономный округ)$")


@pytest.fixture(scope="module")
def national() -> Region:
    return generate_region(NATIONAL)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def municipalities(region: Region) -> pd.DataFrame:
    """One row per (region, municipality) pair of the truth table."""
    return region.truth[["region", "municipality"]].drop_duplicates()


# --- the default region keeps its bytes --------------------------------------------------------


def test_the_default_region_keeps_its_exact_bytes(tmp_path):
    region = generate_region(DEFAULT)
    paths = write_region(region, tmp_path / "raw", tmp_path / "truth")
    got = {p.name: sha256(p.read_bytes()) for p in paths}
    assert "region" not in region.schools.columns and "region" not in region.truth.columns
    for name in ("schools.csv", "results.csv"):
        assert got[name] == RAW_SHA256[name], name
    if (pd.__version__, pa.__version__) == PARQUET_VERSIONS:
        assert got["students.parquet"] == RAW_SHA256["students.parquet"]
    students = pd.read_parquet(tmp_path / "raw" / "students.parquet")
    content = students.to_csv(index=False, lineterminator="\n").encode("utf-8")
    assert sha256(content) == STUDENTS_CONTENT_SHA256
    for name, digest in TRUTH_SHA256.items():
        assert got[name] == digest, name


# --- school codes ------------------------------------------------------------------------------


def test_codes_are_unique_fixed_width_and_sorted(national):
    ids = national.truth["school_id"]
    assert ids.is_unique and ids.is_monotonic_increasing
    assert ids.str.fullmatch(r"\d{9}").all()  # RR MMM SSSS
    assert set(national.schools["school_id"]) == set(ids)
    assert set(national.results["school_id"]) <= set(ids)
    for _, s in national.schools.groupby("year"):
        assert s["school_id"].is_unique and s["school_id"].is_monotonic_increasing


def test_codes_spell_region_municipality_and_school(national):
    t = national.truth
    region_code, muni_code = t["school_id"].str[:2], t["school_id"].str[:5]
    # one region per 2-digit prefix, numbered 01.. in order; one municipality per 5 digits
    assert region_code.groupby(t["region"]).nunique().eq(1).all()
    assert t["region"].groupby(region_code).nunique().eq(1).all()
    assert sorted(region_code.unique()) == [f"{r:02d}" for r in range(1, NATIONAL.n_regions + 1)]
    assert muni_code.groupby(t["municipality"]).nunique().eq(1).all()
    assert t["municipality"].groupby(muni_code).nunique().eq(1).all()
    school = t["school_id"].str[5:].astype(int)
    per_muni = school.groupby(muni_code)
    assert (per_muni.min() == 1).all() and (per_muni.max() == per_muni.size()).all()
    in_region = t["school_id"].str[2:5].astype(int).groupby(region_code)
    assert (in_region.min() == 1).all()


def test_code_widths_depend_on_the_spec_not_the_draw():
    for seed in (1, 2):
        wide = generate_region(RegionSpec(n_municipalities=120, n_schools=400, seed=seed))
        assert wide.truth["school_id"].str.fullmatch(r"01\d{7}").all()  # one region, 01
        assert "region" not in wide.schools.columns
        legacy = generate_region(RegionSpec(n_municipalities=99, n_schools=300, seed=seed))
        assert legacy.truth["school_id"].str.fullmatch(r"\d{6}").all()  # MMSSSS
        several = generate_region(RegionSpec(n_municipalities=12, n_schools=100, n_regions=4,
                                             seed=seed))
        assert several.truth["school_id"].str.fullmatch(r"0[1-4]\d{7}").all()
    assert _municipality_digits(RegionSpec(n_municipalities=9999, n_schools=30000)) == 4
    assert _municipality_digits(RegionSpec(n_municipalities=2300, n_schools=40000,
                                           n_regions=85)) == 3


# --- regions and municipalities ---------------------------------------------------------------


def test_every_municipality_lies_in_exactly_one_region(national):
    for table in (national.truth, national.schools):
        assert table.groupby("municipality")["region"].nunique().eq(1).all()
    m = municipalities(national)
    assert len(m) == NATIONAL.n_municipalities
    per_region = m.groupby("region").size()
    assert len(per_region) == NATIONAL.n_regions
    assert per_region.min() >= synth.MIN_MUNICIPALITIES_PER_REGION
    assert per_region.sum() == NATIONAL.n_municipalities


def test_municipality_and_region_names_are_unique_and_russian(national):
    m = municipalities(national)
    assert m["municipality"].is_unique
    kind = "городской округ|муниципальный район|^Город "
    assert m["municipality"].str.contains(kind).all()
    regions = pd.Series(national.truth["region"].unique())
    assert regions.is_unique and regions.str.fullmatch(REGION_NAME).all()
    # a name drawn in two regions carries its region
    suffixed = m.loc[m["municipality"].str.endswith(")")]
    assert (suffixed["municipality"].str.extract(r"\((.+)\)$")[0] == suffixed["region"]).all()
    school_names = national.schools.query("year == 2024")
    assert not school_names.duplicated(["municipality", "school_name"]).any()


def test_region_column_only_with_several_regions(national):
    columns = list(national.schools.columns)
    assert columns == [*schema.SCHOOLS_COLUMNS[:3], "region", *schema.SCHOOLS_COLUMNS[3:]]
    assert list(national.truth.columns) == [
        *synth.TRUTH_COLUMNS[:1], "region", *synth.TRUTH_COLUMNS[1:]]
    assert national.schools["region"].dtype == "string"
    assert tuple(national.results.columns) == schema.RESULTS_COLUMNS
    assert tuple(national.truth_years.columns) == synth.TRUTH_YEARS_COLUMNS
    assert tuple(national.truth_procedures.columns) == synth.TRUTH_PROCEDURES_COLUMNS
    single = generate_region(RegionSpec(n_municipalities=4, n_schools=80, seed=7))
    assert tuple(single.schools.columns) == schema.SCHOOLS_COLUMNS
    assert tuple(single.truth.columns) == synth.TRUTH_COLUMNS
    assert "n_regions" not in single.truth_params["spec"]
    assert "regions" not in single.truth_params


def test_truth_json_and_readme_describe_the_regions(tmp_path, national):
    params = national.truth_params
    assert params["spec"]["n_regions"] == NATIONAL.n_regions
    assert params["counts"]["regions"] == NATIONAL.n_regions
    listed = {r["name"]: r["municipalities"] for r in params["regions"]}
    assert listed == municipalities(national).groupby("region").size().to_dict()
    assert [r["code"] for r in params["regions"]] == ["01", "02", "03", "04", "05"]
    write_region(national, tmp_path / "raw", tmp_path / "truth")
    readme = (tmp_path / "truth" / "README.md").read_text(encoding="utf-8")
    assert "250 municipalities of 5 regions" in readme and "| `region` |" in readme
    header = (tmp_path / "raw" / "schools.csv").read_text(encoding="utf-8").split("\n", 1)[0]
    assert header.split(",")[3:5] == ["region", "municipality"]


# --- the national structure is realistic -------------------------------------------------------


def test_the_national_region_keeps_the_model(national):
    s, r, t = national.schools, national.results, national.truth.set_index("school_id")
    assert s.groupby("year").size().max() == NATIONAL.n_schools
    assert set(s["school_type"]) == set(schema.SCHOOL_TYPES)
    assert s["school_name"].str.contains("&", regex=False).groupby(s["year"]).sum().eq(1).all()
    assert not r.duplicated(list(schema.RESULT_KEY)).any()
    m = r.loc[r["procedure"] != "EGE"]
    assert (m[list(schema.MARK_COUNTS)].sum(axis=1) == m["participants"]).all()
    low = t.index[t["planted_low"]]
    assert len(low) >= 1 and t.loc[low, "meets_shnor"].all()
    key = ["school_id", "year", "procedure", "subject", "grade", "participants"]
    assert national.truth_procedures[key].equals(r[key])


# --- determinism -------------------------------------------------------------------------------


def test_same_national_spec_gives_identical_frames(national):
    again = generate_region(NATIONAL)
    for name in ("schools", "results", "truth", "truth_years", "truth_procedures"):
        pd.testing.assert_frame_equal(getattr(national, name), getattr(again, name))
    assert national.truth_params == again.truth_params
    other = generate_region(RegionSpec(n_municipalities=250, n_schools=3000, n_regions=5,
                                       seed=12))
    assert set(other.truth["region"]) != set(national.truth["region"])


# --- the fast CSV writer is pandas' to_csv ----------------------------------------------------


def pandas_csv(df: pd.DataFrame) -> bytes:
    """The reference: format each cell in Python and let pandas write the CSV."""
    def text(col: pd.Series) -> pd.Series:
        decimals = synth.CSV_DECIMALS.get(col.name, 4)
        if pd.api.types.is_bool_dtype(col):
            return col.map({True: "True", False: "False"}).astype(object)
        if pd.api.types.is_integer_dtype(col):
            return col.astype("Int64").astype("string").astype(object)
        if pd.api.types.is_float_dtype(col):
            return pd.Series([None if np.isnan(v) else f"{v:.{decimals}f}"
                              for v in col.to_numpy(dtype=float, na_value=np.nan)],
                             index=col.index, dtype=object)
        return col.astype(object)

    frame = pd.DataFrame({c: text(df[c]) for c in df})
    return frame.to_csv(index=False, lineterminator="\n", na_rep="").encode("utf-8")


def test_csv_writer_matches_pandas_to_csv(tmp_path):
    df = pd.DataFrame({
        "text": pd.array(["a,b", 'q"x', "line\nbreak", "cr\rx", "", None, "ёж «ок»", " s "],
                         dtype="string"),
        "plain": np.array(["x", "y", "z,", "w", "v", "u", "t", "s"], dtype=object),
        "flag": np.array([True, False] * 4),
        "maybe": pd.array([True, None, False, True, None, False, True, False],
                          dtype="boolean"),
        "count": np.arange(-4, 4),
        "nullable": pd.array([1, None, 3, -4, None, 6, 7, 8], dtype="Int64"),
        "share": [0.5, -0.0, np.nan, np.inf, -1.23456, 1e-5, 0.03125, 99999.99995],
        "mean_score": [0.125, 0.135, np.nan, 99.995, -0.005, 1.0, 2.0, 1e12],
        "all_missing": np.full(8, np.nan),
    })
    path = _write_csv(df, tmp_path / "a.csv")
    assert path.read_bytes() == pandas_csv(df)
    empty = _write_csv(df.iloc[:0], tmp_path / "b.csv")
    assert empty.read_bytes() == pandas_csv(df.iloc[:0])


def test_fixed_decimals_equal_python_formatting():
    rng = np.random.default_rng(3)
    halves = (np.arange(-20000, 20000) + 0.5) / 1e4  # ties and near-ties at 4 decimals
    values = np.concatenate([rng.normal(0, 3, 20000), np.round(rng.random(20000), 4), halves,
                             np.nextafter(halves, 1), np.nextafter(halves, -1),
                             [0.0, -0.0, -1e-9, 1e15, np.nan, -np.inf]])
    for decimals in (2, 4):
        got = _fixed_decimals(values, decimals).to_pylist()
        expected = ["" if np.isnan(v) else f"{v:.{decimals}f}" for v in values.tolist()]
        assert got == expected


# --- specs and the command line ---------------------------------------------------------------


@pytest.mark.parametrize(("spec", "message"), [
    (RegionSpec(n_regions=0), "n_regions must be from 1 to 99"),
    (RegionSpec(n_regions=100, n_municipalities=400, n_schools=2000), "n_regions must be"),
    (RegionSpec(n_municipalities=10_000, n_schools=40_000), "from 2 to 9999"),
    (RegionSpec(n_municipalities=10, n_regions=4), "at least 3 per region"),
    (RegionSpec(n_municipalities=2, n_schools=20_000), "at most 9999 per municipality"),
])
def test_impossible_national_specs_are_refused_clearly(spec, message):
    with pytest.raises(ValueError, match=message):
        generate_region(spec)


def test_large_specs_pass_validation():
    _validate(RegionSpec(n_municipalities=9999, n_schools=40_000))
    _validate(RegionSpec(n_municipalities=2300, n_schools=40_000, n_regions=85))
    _validate(RegionSpec(n_municipalities=297, n_schools=1000, n_regions=99))


def test_cli_writes_a_national_dataset(tmp_path, capsys):
    code = main(["--out", str(tmp_path / "raw"), "--truth", str(tmp_path / "truth"),
                 "--n-schools", "300", "--n-municipalities", "24", "--n-regions", "3",
                 "--seed", "4", "--years", "2024", "2025"])
    assert code == 0 and "300 schools" in capsys.readouterr().out
    schools = pd.read_csv(tmp_path / "raw" / "schools.csv", dtype=str, keep_default_na=False)
    assert schools["region"].nunique() == 3 and schools["school_id"].str.len().eq(9).all()
    params = json.loads((tmp_path / "truth" / "truth.json").read_text(encoding="utf-8"))
    assert params["spec"]["n_regions"] == 3 and len(params["regions"]) == 3
