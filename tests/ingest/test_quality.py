"""The quality index formulas, scored-only regions, and quality groups."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
import yaml

from analysis.context import quality
from analysis.errors import InputError
from analysis.ingest import prepare
from analysis.ingest.quality import FORMULAS
from analysis.pipeline import run
from helpers.fixtures import result_row, results_table, schools_table
from helpers.project import make_project


@pytest.fixture
def two_schools():
    return schools_table([{"year": 2025, "school_id": "001"}, {"year": 2025, "school_id": "002"}])


@pytest.fixture
def mixed(two_schools):
    res = results_table([
        result_row(2025, "001", subject="math", marks=(1, 4, 3, 2)),
        result_row(2025, "001", subject="rus", marks=(0, 2, 6, 2)),
        result_row(2025, "001", procedure="EGE", subject="rus", grade=11, below=(2, 8)),
        result_row(2025, "002", grade=6, marks=(5, 5, 0, 0)),
    ])
    return two_schools, res


def run_prepare(tables, formula, procedures=("VPR", "OGE", "EGE"), grades=(5, 6, 9, 11)):
    return prepare.prepare(*tables, year=2025, procedures=list(procedures),
                           subjects=["rus", "math"], grades=list(grades), formula=formula)


def test_three_formulas_by_hand(mixed):
    q = {f: run_prepare(mixed, f).school_year.set_index("school_id")
         for f in FORMULAS}
    # good_share: VPR only (ЕГЭ has no marks): (5 + 8) / 20
    assert q["good_share"].loc["001", "quality_index"] == pytest.approx(13 / 20)
    # mean_mark: marks 2*1+3*4+4*3+5*2 = 36 and 3*2+4*6+5*2 = 40 over 20 -> mean 3.8
    assert q["mean_mark"].loc["001", "quality_index"] == pytest.approx((3.8 - 2) / 3)
    assert q["mean_mark"].loc["002", "quality_index"] == pytest.approx((2.5 - 2) / 3)
    # not_failing: 1 «2» of 20 on ВПР, 2 below the minimum of 8 on ЕГЭ -> 25 of 28
    assert q["not_failing"].loc["001", "quality_index"] == pytest.approx(25 / 28)
    assert q["not_failing"].loc["001", "n_tests"] == 28
    assert q["not_failing"].loc["002", "quality_index"] == pytest.approx(0.5)


def test_ege_is_summarised_on_its_own_when_the_index_uses_marks(mixed):
    sy = run_prepare(mixed, "good_share").school_year.set_index("school_id")
    assert sy.loc["001", "ege_not_failing"] == pytest.approx(6 / 8)
    assert sy.loc["001", "n_ege"] == 8
    assert pd.isna(sy.loc["002", "ege_not_failing"]) and pd.isna(sy.loc["002", "n_ege"])
    # pooled marks of the marked components, for the groups' distributions
    assert sy.loc["001", ["n_mark2", "n_mark3", "n_mark4", "n_mark5"]].tolist() == [1, 6, 9, 4]
    counted = run_prepare(mixed, "not_failing").school_year
    assert counted["ege_not_failing"].isna().all()  # already inside the index


def test_a_results_table_with_no_mark_columns_is_tidied(two_schools):
    res = results_table([result_row(2025, "001", procedure="EGE", subject="rus", grade=11,
                                    below=(3, 12)),
                         result_row(2025, "002", procedure="EGE", subject="rus", grade=11,
                                    below=(0, 9))])
    assert not any(c.startswith("n_mark") for c in res.columns)
    out = prepare.prepare(two_schools, res, year=2025, procedures=["EGE"], subjects=["rus"],
                          grades=[11], formula="not_failing")
    assert out.school_year["quality_index"].tolist() == [pytest.approx(0.75), 1.0]
    assert (out.results["kind"] == "scored").all()


def test_a_formula_the_data_cannot_feed_names_the_setting_and_what_the_data_hold(two_schools):
    res = results_table([result_row(2025, "001", procedure="EGE", subject="rus", grade=11,
                                    below=(3, 12))])
    with pytest.raises(InputError) as err:
        prepare.prepare(two_schools, res, year=2025, procedures=["EGE"], subjects=["rus"],
                        grades=[11], formula="good_share")
    msg = str(err.value)
    assert "column 'prepare.quality_formula'" in msg and "EGE (scored: subjects rus" in msg
    assert "set prepare.quality_formula: not_failing" in msg


def test_unknown_formula_is_rejected(mixed):
    with pytest.raises(ValueError, match="quality_formula"):
        run_prepare(mixed, "median")


def quality_table(values, n=20):
    return pd.DataFrame({"quality_index": values, "n_students": n})


def test_quantile_groups_have_equal_sizes_and_keep_ties_together():
    q = quality_table(np.arange(14) / 14)
    g = quality.quality_groups(q, min_n=10)
    assert g.tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7]
    tied = quality.quality_groups(quality_table([0.5] * 5 + [0.9]), min_n=10, n_groups=2)
    assert tied.tolist() == [2, 2, 2, 2, 2, 2] or tied.nunique() == 1


def test_cutoff_groups_put_an_edge_value_in_the_upper_group_and_skip_small_schools():
    q = pd.DataFrame({"quality_index": [0.1, 0.3, 0.35, 0.8, np.nan, 0.9],
                      "n_students": [20, 20, 20, 20, 20, 5]})
    g = quality.quality_groups(q, min_n=10, method="cutoffs", cutoffs=[0.3, 0.5, 0.7])
    assert g.astype("float64").tolist()[:4] == [1.0, 2.0, 2.0, 4.0]
    assert g.isna().tolist() == [False] * 4 + [True, True]  # no result; fewer than min_n
    with pytest.raises(ValueError, match="cutoffs"):
        quality.quality_groups(q, min_n=10, method="cutoffs", cutoffs=[0.5, 0.3])


def test_groups_are_described_by_mean_level_and_marks():
    q = pd.DataFrame({"quality_index": [0.5, 0.7, 0.2], "n_tests": [10, 30, 4],
                      "n_students": [10, 30, 4],
                      "n_mark2": [1, 3, 2], "n_mark3": [4, 6, 1], "n_mark4": [3, 15, 1],
                      "n_mark5": [2, 6, 0]})
    groups = pd.Series(pd.array([1, 1, 2], "Int64"))
    d = quality.describe_groups(q, groups, min_n=10)
    assert d.loc[1, "n_schools"] == 2
    assert d.loc[1, "mean_quality"] == pytest.approx((5 + 21) / 40)
    assert d.loc[1, ["share_mark2", "share_mark5"]].tolist() == [pytest.approx(4 / 40),
                                                                 pytest.approx(8 / 40)]
    assert d.loc[2, ["share_mark2", "share_mark3"]].isna().all()  # 4 marks < min_n


# --- regions whose only assessments are scored, end to end ------------------------------------

def scored_only_export(region, dest, kind):
    """The tiny region as an analyst with only scored results would export it."""
    dest.mkdir(parents=True)
    region.schools.to_csv(dest / "schools.csv", index=False)
    res = region.results
    if kind == "ege":
        res = res.loc[res["procedure"] == "EGE"]
        override = {"quality_procedures": ["EGE"], "quality_grades": [11],
                    "quality_subjects": ["rus", "math_profile", "math_base"]}
    else:  # a regional test reported only as the share below its threshold
        res = res.loc[res["procedure"] == "VPR"].assign(
            procedure="DIAG", n_below_min=lambda d: d["n_mark2"], mean_score=np.nan)
        override = {"quality_procedures": ["DIAG"]}
    res = res.drop(columns=[c for c in res.columns if c.startswith(("n_mark", "pct_mark"))])
    res.dropna(axis=1, how="all").to_csv(dest / "results.csv", index=False)
    params = {"prepare": {"quality_formula": "not_failing", **override},
              "clusters": {"k": 3, "n_init": 5}, "flags": {"shnor_procedures": [
                  "EGE" if kind == "ege" else "DIAG"]}}
    (dest / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    return dest


@pytest.mark.pipeline
@pytest.mark.parametrize("kind", ["ege", "diag"])
def test_a_region_with_only_scored_results_runs_end_to_end(tmp_path, tiny_region, kind):
    root = make_project(tmp_path / "proj", None)
    data = scored_only_export(tiny_region, tmp_path / kind, kind)
    assert run.main(["--data", str(data), "--year", "2025", "--root", str(root)]) == 0
    folder = root / "reports" / f"{kind}-2025"
    metrics = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["ses"]["gradient"]["n_schools"] >= 10 and metrics["accounting_balanced"]
    assert metrics["counts"]["shnor"] >= 1  # the ШНОР rule works on scored procedures
    page = (folder / "report.html").read_text(encoding="utf-8")
    assert "не ниже минимального порога" in page  # the formula the index used is stated
    text = re.sub(r"data:[^\"')]+", "", page)  # embedded images are base64
    assert not re.search(r"\bnan\b", text, flags=re.IGNORECASE)
