"""Flags: the ШНОР rule exactly as written, residual intervals, typology, objectivity."""

import numpy as np
import pandas as pd
import pytest

from analysis import flags
from analysis.ingest import prepare
from fixtures import result_row, results_table, schools_table


def tidy(rows):
    return prepare.tidy_results(results_table(rows))


LOW = (3, 7, 0, 0)       # exactly 30% «2»: low (the rule says "at least 30%")
ALMOST = (29, 71, 0, 0)  # 29%: not low
FINE = (0, 5, 5, 0)


@pytest.fixture
def shnor_case():
    rows = [
        # A: two low procedures in 2025 -> criterion 1
        result_row(2025, "A", subject="math", marks=LOW), result_row(2025, "A", subject="rus",
                                                                     marks=LOW),
        # B: one low in 2025 and one in 2024 -> criterion 2
        result_row(2025, "B", marks=LOW), result_row(2024, "B", procedure="OGE", grade=9,
                                                     marks=LOW),
        # C: one low in 2025 only -> not on the list
        result_row(2025, "C", marks=LOW), result_row(2025, "C", subject="rus", marks=FINE),
        # D: 29% twice -> not low
        result_row(2025, "D", marks=ALMOST), result_row(2025, "D", subject="rus", marks=ALMOST),
        # E: ЕГЭ below minimum 3 of 9 (33%) plus ВПР low -> criterion 1
        result_row(2025, "E", procedure="EGE", subject="rus", grade=11, below=(3, 9)),
        result_row(2025, "E", marks=LOW),
        # F: low in 2024 twice, nothing low in 2025 -> not on the list
        result_row(2024, "F", marks=LOW), result_row(2024, "F", subject="rus", marks=LOW),
        result_row(2025, "F", marks=FINE),
    ]
    schools = schools_table([{"year": y, "school_id": s} for y in (2024, 2025) for s in "ABCDEF"])
    return tidy(rows), schools


def test_shnor_rule_as_written(shnor_case):
    results, schools = shnor_case
    out = flags.shnor(results, schools, 2025, threshold=0.30, procedures=["VPR", "OGE", "EGE"])
    got = out.set_index("school_id")
    assert got["shnor"].to_dict() == {"A": True, "B": True, "C": False, "D": False, "E": True,
                                      "F": False}
    assert got.loc["A", "criterion_1"] and not got.loc["A", "criterion_2"]
    assert got.loc["B", "criterion_2"] and not got.loc["B", "criterion_1"]
    assert got.loc["F", "n_low_prev"] == 2 and got.loc["F", "n_low_year"] == 0


def test_shnor_parameters_change_the_list(shnor_case):
    results, schools = shnor_case
    no_ege = flags.shnor(results, schools, 2025, threshold=0.30, procedures=["VPR", "OGE"])
    assert not no_ege.set_index("school_id").loc["E", "shnor"]
    strict = flags.shnor(results, schools, 2025, threshold=0.25, procedures=["VPR", "OGE", "EGE"])
    assert strict.set_index("school_id").loc["D", "shnor"]
    big_only = flags.shnor(results, schools, 2025, threshold=0.30,
                           procedures=["VPR", "OGE", "EGE"], min_participants=11)
    assert big_only["shnor"].sum() == 0  # every low procedure above has <= 10 participants
    det = flags.shnor_details(results, flags.shnor(results, schools, 2025, threshold=0.3,
                                                   procedures=["VPR", "OGE", "EGE"]), 2025,
                              threshold=0.3, procedures=["VPR", "OGE", "EGE"])
    assert sorted(det["school_id"].unique()) == ["A", "B", "E"]
    assert len(det.query("school_id == 'B'")) == 2


def test_residual_interval_uses_binomial_se_of_expected_quality():
    fitted = pd.DataFrame({"fitted": [0.5, 0.999], "residual": [0.1, -0.2]})
    out = flags.residual_intervals(fitted, pd.Series([100, 400]), z=2.0)
    assert out["se"].iloc[0] == pytest.approx(0.05)
    assert out["ci_low"].iloc[0] == pytest.approx(0.0) and out["ci_high"].iloc[0] == pytest.approx(0.2)
    assert out["se"].iloc[1] == pytest.approx(np.sqrt(0.98 * 0.02 / 400))  # p clipped


def test_typology_and_resilience():
    n = 8
    sample = pd.DataFrame({
        "year": 2025, "school_id": [f"s{i}" for i in range(n)], "school_name": "x",
        "municipality": "m", "school_type": "secondary", "settlement_type": "city",
        "social_index": [-2.0, -1.5, -1.0, 0.0, 0.5, 1.0, 1.5, 2.0],
        "quality_index": 0.5, "n_students": [400, 400, 4, 400, 400, 400, 400, 400],
    })
    resid = [0.20, -0.20, 0.30, 0.0, 0.01, -0.20, 0.20, 0.0]
    fitted = pd.DataFrame({"fitted": 0.5, "residual": resid})
    obj = pd.DataFrame({"school_id": ["s1"], "objectivity_flag": [True]})
    out = flags.school_flags(sample, fitted, obj, low_context_quantile=0.4, z=1.96,
                             min_effect=0.05)
    # 40% quantile of the index = -0.6: s0, s1, s2 are in unfavourable context
    assert out["low_context"].tolist() == [True, True, True] + [False] * 5
    # s0: low context, +0.20 with n=400 -> resilient; s2: +0.30 but n=4, interval spans 0
    assert out["typology"].tolist() == ["resilient", "unfavourable", "unfavourable", "favourable",
                                        "favourable", "unrealised", "favourable", "favourable"]
    assert out["resilient"].sum() == 1


def test_non_objective_school_is_not_resilient():
    sample = pd.DataFrame({"year": 2025, "school_id": ["a", "b", "c", "d"], "school_name": "x",
                           "municipality": "m", "school_type": "basic", "settlement_type": "town",
                           "social_index": [-2.0, 0.0, 1.0, 2.0], "quality_index": 0.5,
                           "n_students": 400})
    fitted = pd.DataFrame({"fitted": 0.5, "residual": [0.3, 0.0, 0.0, 0.0]})
    clean = flags.school_flags(sample, fitted, pd.DataFrame({"school_id": [], "objectivity_flag": []}),
                               low_context_quantile=0.25, z=1.96, min_effect=0.05)
    dirty = flags.school_flags(sample, fitted, pd.DataFrame({"school_id": ["a"],
                                                             "objectivity_flag": [True]}),
                               low_context_quantile=0.25, z=1.96, min_effect=0.05)
    assert clean["resilient"].tolist() == [True, False, False, False]
    assert dirty["resilient"].sum() == 0 and dirty.loc[0, "typology"] == "unfavourable"


def test_objectivity_gap_flags_vpr_unsupported_by_oge():
    rows = []
    for s in ("a", "b", "c", "d"):
        vpr = (10, 40, 35, 15) if s != "d" else (0, 10, 50, 40)   # d: 90% good at ВПР
        for g in (5, 6):
            rows.append(result_row(2025, s, grade=g, marks=vpr))
        rows.append(result_row(2025, s, procedure="OGE", grade=9, marks=(10, 40, 35, 15)))
    out = flags.objectivity_gap(tidy(rows), 2025, threshold=0.15).set_index("school_id")
    assert out["objectivity_flag"].to_dict() == {"a": False, "b": False, "c": False, "d": True}
    assert out.loc["d", "vpr_quality"] == pytest.approx(0.9)
    assert out.loc["d", "oge_quality"] == pytest.approx(0.5)
    # region VPR quality = (3*.5 + .9)/4 = .6, OGE = .5: gap_d = .3 - 0 = .3
    assert out.loc["d", "gap"] == pytest.approx(0.3)


def test_shnor_edges_a_missing_year_a_scored_boundary_and_an_empty_procedure():
    rows = [
        # G: new in 2025 (no 2024 row at all), one low procedure -> criterion 2 cannot hold
        result_row(2025, "G", marks=LOW),
        # H: ЕГЭ exactly 3 of 10 below the minimum (30%) in 2025, ОГЭ low in 2024 -> criterion 2
        result_row(2025, "H", procedure="EGE", subject="rus", grade=11, below=(3, 10)),
        result_row(2024, "H", procedure="OGE", grade=9, marks=LOW),
        # I: two procedures in 2025, one of them with no participants -> only one counts
        result_row(2025, "I", marks=LOW), result_row(2025, "I", subject="rus", marks=(0, 0, 0, 0)),
        # J: absent from 2025 but low twice in 2024 -> not on the 2025 list at all
        result_row(2024, "J", marks=LOW), result_row(2024, "J", subject="rus", marks=LOW),
    ]
    schools = schools_table([{"year": 2025, "school_id": s} for s in "GHI"]
                            + [{"year": 2024, "school_id": s} for s in "HJ"])
    out = flags.shnor(tidy(rows), schools, 2025, threshold=0.30,
                      procedures=["VPR", "OGE", "EGE"]).set_index("school_id")
    assert out["shnor"].to_dict() == {"G": False, "H": True, "I": False}
    assert out.loc["G", "n_low_prev"] == 0 and out.loc["G", "n_low_year"] == 1
    assert out.loc["H", "criterion_2"] and not out.loc["H", "criterion_1"]
    assert out.loc["I", "n_low_year"] == 1
