"""Student-level results aggregated to the results table out of core (analysis.ingest.aggregate).

The DuckDB SQL is checked against the pandas reference (:func:`aggregate_pandas`) on a small
hand-made table and on the default demo region's students (about 900,000 rows), and against
the demo generator's own ``results`` table, which it aggregates from the same students.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from analysis.demo.synth import PARAMS, RegionSpec, generate_region
from analysis.errors import InputError
from analysis.ingest import aggregate as agg
from analysis.ingest import io, schema

MIN_SCORES = PARAMS["ege"]["min_score"]  # the demo's ЕГЭ thresholds: rus 24, math_profile 27
KEY = list(schema.RESULT_KEY)


def small() -> pd.DataFrame:
    """Two schools, a marked and a scored procedure, a student without ses or key."""
    rows = [  # year, school, procedure, subject, grade, key, score, mark, ses
        (2025, "001", "VPR", "math", 5, "a", 10.0, 2, 0.5),
        (2025, "001", "VPR", "math", 5, "b", 20.0, 4, -0.5),
        (2025, "001", "VPR", "math", 5, "c", 30.0, 5, None),
        (2025, "001", "VPR", "rus", 5, "a", 12.0, 3, 0.5),
        (2025, "001", "EGE", "rus", 11, "d", 20.0, None, 1.0),
        (2025, "001", "EGE", "rus", 11, "e", 70.0, None, 2.0),
        (2025, "001", "EGE", "rus", 11, "f", None, None, 3.0),
        (2025, "002", "EGE", "math_profile", 11, "g", 26.5, None, 0.25),
        (2025, "002", "EGE", "math_profile", 11, None, 30.0, None, 0.75),
        (2024, "002", "OGE", "math", 9, "h", 15.0, 3, None),
    ]
    df = pd.DataFrame(rows, columns=list(schema.STUDENTS_COLUMNS))
    return df.astype({"school_id": "string", "procedure": "string", "subject": "string",
                      "student_key": "string", "mark": "Int64"})


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The default demo region with its students, and its students table as Parquet."""
    region = generate_region(RegionSpec(write_students=True))
    path = tmp_path_factory.mktemp("agg") / "students.parquet"
    region.students.to_parquet(path, index=False)
    return region, path


def test_small_table_by_hand(tmp_path):
    path = tmp_path / "students.parquet"
    small().to_parquet(path, index=False)
    got = agg.aggregate(path, min_scores=MIN_SCORES, threads=1)
    ref = agg.aggregate_pandas(small(), min_scores=MIN_SCORES)
    pd.testing.assert_frame_equal(got.results, ref.results)
    pd.testing.assert_frame_equal(got.school_ses, ref.school_ses)
    r = got.results.set_index(KEY)
    assert list(r.index) == sorted(r.index)
    math = r.loc[(2025, "001", "VPR", "math", 5)]
    assert (math["participants"], math["n_mark2"], math["n_mark3"], math["n_mark4"],
            math["n_mark5"], math["mean_score"]) == (3, 1, 0, 1, 1, 20.0)
    assert pd.isna(math["n_below_min"])
    ege = r.loc[(2025, "001", "EGE", "rus", 11)]
    assert ege["participants"] == 3 and ege["n_below_min"] == 1  # 20 < 24; no score: not below
    assert ege["mean_score"] == 45.0 and pd.isna(ege["n_mark2"])
    assert r.loc[(2025, "002", "EGE", "math_profile", 11), "n_below_min"] == 1  # 26.5 < 27
    ses = got.school_ses.set_index(["year", "school_id"])
    # school 001 in 2025: students a, b, c, d, e, f (a twice); c has no ses
    assert ses.loc[(2025, "001")].tolist() == [6, 5, pytest.approx((0.5 - 0.5 + 1 + 2 + 3) / 5)]
    assert ses.loc[(2025, "002")].tolist() == [2, 2, 0.5]  # a row without a key is a student
    assert ses.loc[(2024, "002"), "n_ses"] == 0 and pd.isna(ses.loc[(2024, "002"), "mean_ses"])
    assert got.rows_in == len(small())


def test_without_thresholds_no_below_min_column(tmp_path):
    path = tmp_path / "students.parquet"
    small().drop(columns=["ses", "student_key"]).to_parquet(path, index=False)
    got = agg.aggregate(path)
    assert "n_below_min" not in got.results.columns
    assert got.school_ses["n_students"].sum() == len(small())  # no key: a row is a student
    assert (got.school_ses["n_ses"] == 0).all()
    pd.testing.assert_frame_equal(
        got.results, agg.aggregate_pandas(small().drop(columns=["ses", "student_key"])).results)


def test_demo_region_sql_equals_pandas_and_the_generator(demo):
    region, path = demo
    got = agg.aggregate(path, min_scores=MIN_SCORES)
    ref = agg.aggregate_pandas(region.students, min_scores=MIN_SCORES)
    pd.testing.assert_frame_equal(got.results, ref.results)
    pd.testing.assert_frame_equal(got.school_ses, ref.school_ses)
    assert got.rows_in == len(region.students) > 800_000
    # the generator aggregates the same students to its results table
    cols = [*KEY, "participants", *schema.MARK_COUNTS, "n_below_min"]
    expected = region.results[cols].sort_values(KEY).reset_index(drop=True)
    pd.testing.assert_frame_equal(got.results[cols], expected)
    ege = region.results["mean_score"].notna()
    pd.testing.assert_series_equal(
        got.results.set_index(KEY)["mean_score"].round(2).loc[
            pd.MultiIndex.from_frame(region.results.loc[ege, KEY])].reset_index(drop=True),
        region.results.loc[ege, "mean_score"].reset_index(drop=True))


def test_row_order_and_threads_do_not_change_the_numbers(demo, tmp_path):
    """Exact sums: shuffled rows, one thread or two, SQL or pandas give the same bytes."""
    region, _ = demo
    sample = region.students.loc[region.students["school_id"] < "060000"]
    shuffled = sample.sample(frac=1.0, random_state=3)
    runs = []
    for i, (df, threads) in enumerate(((sample, 1), (shuffled, 2), (shuffled, 1))):
        path = tmp_path / f"s{i}.parquet"
        df.to_parquet(path, index=False)
        runs.append(agg.aggregate(path, min_scores=MIN_SCORES, threads=threads))
    runs.append(agg.aggregate_pandas(shuffled, min_scores=MIN_SCORES))
    for got in runs[1:]:
        pd.testing.assert_frame_equal(got.results, runs[0].results, check_exact=True)
        pd.testing.assert_frame_equal(got.school_ses, runs[0].school_ses, check_exact=True)
    assert len(runs[0].results) > 1000


def test_mean_on_a_rounding_tie_is_the_same_in_any_order(tmp_path):
    """1,024 students whose ses (3 decimals) average exactly 0.20359375, a tie at the 7th
    significant digit (analysis.outputs.FLOAT_DIGITS): a floating-point sum rounds it up or
    down depending on the order of
    the rows (about 1 order in 3 differs); the exact sums give one value in any order."""
    rng = np.random.default_rng(5)
    thousandths = rng.integers(-2000, 2000, 1023)
    ses = np.append(thousandths, 208_480 - thousandths.sum()) / 1000
    keys = [f"k{i}" for i in range(len(ses))]
    base = pd.DataFrame({"year": 2025, "school_id": "001", "procedure": "OGE", "subject": "math",
                         "grade": 9, "student_key": keys, "score": 10.0, "mark": 3, "ses": ses})
    got = []
    for i in range(4):
        df = base.sample(frac=1.0, random_state=i)
        df.to_parquet(tmp_path / f"s{i}.parquet", index=False)
        got.append(agg.aggregate(tmp_path / f"s{i}.parquet", threads=2).school_ses)
        got.append(agg.aggregate_pandas(df).school_ses)
    for other in got[1:]:
        pd.testing.assert_frame_equal(other, got[0], check_exact=True)
    assert abs(got[0]["mean_ses"].iloc[0] - 0.20359375) < 1e-7


def test_marks_sum_to_participants(demo):
    _, path = demo
    r = agg.aggregate(path, min_scores=MIN_SCORES).results
    marked = r["n_mark2"].notna()
    assert marked.any() and (~marked).any()
    assert (r.loc[marked, list(schema.MARK_COUNTS)].sum(axis=1)
            == r.loc[marked, "participants"]).all()
    assert r.loc[~marked, "n_below_min"].notna().all()
    assert (r.loc[~marked, "n_below_min"] <= r.loc[~marked, "participants"]).all()
    assert r.loc[marked, "n_below_min"].isna().all()


def test_output_bytes_are_deterministic_and_keyless(demo, tmp_path, capsys):
    region, path = demo
    outs = []
    for i, threads in enumerate((1, 2, 2)):
        out = tmp_path / f"run{i}" / "results.parquet"
        code = agg.main(["--students", str(path), "--out", str(out), "--threads",
                         str(threads), "--min-score", "rus=24", "--min-score",
                         "math_profile=27"])
        assert code == 0
        outs.append((out.read_bytes(), out.with_name("results_ses.parquet").read_bytes()))
    assert outs[0] == outs[1] == outs[2]
    printed = capsys.readouterr().out
    assert f"{len(region.students):,} rows in" in printed and "rows out" in printed
    keys = set(region.students["student_key"].head(1000))
    for name in ("results.parquet", "results_ses.parquet"):
        table = pq.read_table(tmp_path / "run0" / name)
        assert "student_key" not in table.column_names
        assert not keys & {str(v) for col in table.columns for v in col.to_pylist()[:5000]}


def test_results_pass_the_pipeline_validation(demo, tmp_path):
    region, path = demo
    raw = tmp_path / "raw"
    agg.write(agg.aggregate(path, min_scores=MIN_SCORES), raw / "results.parquet")
    region.schools.to_csv(raw / "schools.csv", index=False)
    tables = io.read_tables(raw, year=2025)
    assert len(tables["results"]) == len(region.results)


def test_csv_and_parquet_folder_give_the_same(tmp_path):
    df = small()
    ref = agg.aggregate_pandas(df, min_scores=MIN_SCORES)
    csv = tmp_path / "students.csv"  # ';' separated, decimal comma, as Russian exports
    df.to_csv(csv, sep=";", decimal=",", index=False, encoding="utf-8-sig")
    folder = tmp_path / "parts"
    for year, part in df.groupby("year"):
        (folder / f"year={year}").mkdir(parents=True)
        part.to_parquet(folder / f"year={year}" / "part-0.parquet", index=False)
    for source in (csv, folder):
        got = agg.aggregate(source, min_scores=MIN_SCORES)
        pd.testing.assert_frame_equal(got.results, ref.results)
        pd.testing.assert_frame_equal(got.school_ses, ref.school_ses)


def test_missing_column_names_file_and_column(tmp_path, capsys):
    path = tmp_path / "pupils.parquet"
    small().drop(columns=["grade"]).to_parquet(path, index=False)
    with pytest.raises(InputError) as err:
        agg.aggregate(path)
    assert "pupils.parquet" in str(err.value) and "column 'grade'" in str(err.value)
    assert agg.main(["--students", str(path), "--out", str(tmp_path / "r.parquet")]) == 2
    assert "column 'grade'" in capsys.readouterr().err
    assert not (tmp_path / "r.parquet").exists()
    with pytest.raises(InputError, match="column 'grade'"):
        agg.aggregate_pandas(small().drop(columns=["grade"]), name="pupils.parquet")


@pytest.mark.parametrize(("column", "value", "expected"), [
    ("mark", 7, "column 'mark': got '7'; expected a mark 2, 3, 4 or 5"),
    ("score", "abc", "column 'score': got 'abc'; expected a number in every row (1 rows"),
    ("grade", "ninth", "column 'grade': got 'ninth'; expected a whole number"),
    ("school_id", None, "column 'school_id': got 'empty in 1 rows'"),
])
def test_bad_values_name_the_column(tmp_path, column, value, expected):
    df = small().astype({"mark": "object", "score": "object", "grade": "object"})
    df.loc[0, column] = value
    path = tmp_path / "students.csv"
    df.to_csv(path, index=False)
    with pytest.raises(InputError) as err:
        agg.aggregate(path)
    assert "students.csv" in str(err.value) and expected in str(err.value)


def test_marked_procedure_with_unmarked_students(tmp_path):
    df = small()
    df.loc[1, "mark"] = pd.NA
    path = tmp_path / "students.parquet"
    df.to_parquet(path, index=False)
    for run in (lambda: agg.aggregate(path), lambda: agg.aggregate_pandas(df, name=path.name)):
        with pytest.raises(InputError, match=r"column 'mark'.*2025 001 VPR math 5: 1 of 3"):
            run()


def test_missing_file_and_empty_folder(tmp_path):
    with pytest.raises(InputError, match="nothing.parquet.*an existing"):
        agg.aggregate(tmp_path / "nothing.parquet")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="a folder with .parquet files"):
        agg.aggregate(tmp_path / "empty")
    bad = tmp_path / "students.parquet"
    bad.write_bytes(b"not parquet")
    with pytest.raises(InputError, match="students.parquet.*a readable"):
        agg.aggregate(bad)
