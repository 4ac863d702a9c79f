"""Stage 01 logic: cross-table checks, tidy shares, the quality index."""

import pytest

from analysis.errors import InputError
from analysis.ingest import prepare
from helpers.fixtures import result_row, results_table, schools_table


@pytest.fixture
def two_schools():
    return schools_table([{"year": 2025, "school_id": "001"}, {"year": 2025, "school_id": "002"}])


def test_quality_index_is_participant_weighted_share_of_4_and_5(two_schools):
    res = results_table([
        result_row(2025, "001", subject="math", marks=(1, 4, 3, 2)),   # 5 of 10 good
        result_row(2025, "001", subject="rus", marks=(0, 2, 6, 2)),    # 8 of 10 good
        result_row(2025, "001", procedure="OGE", grade=9, marks=(0, 10, 0, 0)),  # 0 of 10
        result_row(2025, "001", procedure="EGE", subject="rus", grade=11, below=(1, 8)),
        result_row(2025, "002", grade=6, marks=(5, 5, 0, 0)),
    ])
    out = prepare.prepare(two_schools, res, year=2025, procedures=["VPR", "OGE"],
                          subjects=["rus", "math"], grades=[5, 6, 9])
    q = out.school_year.set_index("school_id")
    assert q.loc["001", "quality_index"] == pytest.approx(13 / 30)
    assert q.loc["001", "n_tests"] == 30
    # distinct students: max over subjects per (procedure, grade): VPR5 10 + OGE9 10
    assert q.loc["001", "n_students"] == 20
    assert q.loc["001", "n_components"] == 3
    assert q.loc["002", "quality_index"] == 0.0
    ege = out.results.query("procedure == 'EGE'").iloc[0]
    assert ege["kind"] == "scored" and ege["share_low"] == pytest.approx(1 / 8)
    assert out.results.query("procedure == 'OGE'")["share_low"].iloc[0] == 0.0
    assert out.accounting["in_scope"].sum() == 5 and out.accounting["excluded"].sum() == 0


def test_leading_zeros_in_school_codes_are_kept(two_schools):
    assert list(two_schools["school_id"]) == ["001", "002"]


def test_rows_with_no_participants_are_excluded_with_a_reason(two_schools):
    res = results_table([result_row(2025, "001"), result_row(2025, "002", marks=(0, 0, 0, 0))])
    out = prepare.prepare(two_schools, res, year=2025, procedures=["VPR"], subjects=["math"],
                          grades=[5])
    assert list(out.ledger["reason"]) == ["no_participants"]
    assert list(out.ledger["school_id"]) == ["002"]
    assert out.ledger["source_row"].tolist() == [3]
    assert list(out.school_year["school_id"]) == ["001"]


@pytest.mark.parametrize("rows, column, expected", [
    ([result_row(2025, "001"), result_row(2025, "001")],
     "year, school_id, procedure, subject, grade", "duplicate key"),
    ([result_row(2025, "999")], "school_id", "schools table for the same year"),
    ([result_row(2025, "001", grade=3)], "grade", "grade from 4 to 11"),
    ([{**result_row(2025, "001"), "participants": 11}], "participants", "= participants"),
    ([result_row(2025, "001", below=(9, 8))], "n_below_min", "at most participants"),
])
def test_cross_table_breaches_name_file_row_and_column(two_schools, rows, column, expected):
    with pytest.raises(InputError) as err:
        prepare.check_relations(two_schools, results_table(rows), 2025)
    msg = str(err.value)
    assert "results.csv, row" in msg and f"column '{column}'" in msg and expected in msg


def test_missing_reporting_year_is_an_error(two_schools):
    with pytest.raises(InputError, match="reporting year 2026"):
        prepare.check_relations(two_schools, results_table([result_row(2025, "001")]), 2026)
