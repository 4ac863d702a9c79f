"""Flags: school effects shrunk empirical-Bayes (hand computations), the variance components,
resilience, the typology, ШНСУ on the anchored index, the risk zone and the changes.

The ШНОР rule is tested in test_shnor.py, the objectivity screens in test_objectivity.py.
"""

import numpy as np
import pandas as pd
import pytest

from analysis.flags import effects, rules


def _res(rows):
    return pd.DataFrame(rows, columns=["outcome", "school_id", "year", "residual", "s2", "n",
                                       "fitted", "value"])


def test_eb_shrinkage_matches_a_hand_computation():
    # tau2_u = 0.01, tau2_v = 0.002, a school of 100 students at f = 0.5: s2 = 0.0025
    est, sd, lam = effects.shrink(np.array([0.10]), np.array([0.0025]), np.array([0.01]),
                                  np.array([0.002]))
    assert lam[0] == pytest.approx(0.01 / 0.0145)
    assert est[0] == pytest.approx(0.10 * 0.01 / 0.0145)
    assert sd[0] == pytest.approx(np.sqrt(0.01 * (1 - 0.01 / 0.0145)))


def test_pooled_effect_is_the_posterior_given_every_year():
    comps = pd.DataFrame({"outcome": ["VPR"], "tau2_u": [0.01], "tau2_v": [0.002]})
    res = _res([("VPR", "a", 2023, 0.08, 0.0025, 100, 0.5, 0.58),
                ("VPR", "a", 2024, 0.12, 0.0050, 50, 0.5, 0.62),
                ("VPR", "a", 2025, 0.10, 0.0025, 100, 0.5, 0.60)])
    spec = effects.EffectSpec(weights="precision")
    pooled, yearly = effects.school_effects(res, comps, year=2025, spec=spec)
    noise = np.array([0.0045, 0.0070, 0.0045])
    prec = 1 / 0.01 + (1 / noise).sum()
    assert pooled.loc[0, "estimate"] == pytest.approx((np.array([0.08, 0.12, 0.10])
                                                       / noise).sum() / prec)
    assert pooled.loc[0, "sd"] == pytest.approx(np.sqrt(1 / prec))
    assert pooled.loc[0, "n_years"] == 3 and pooled.loc[0, "n"] == 250
    # the year-to-year variance keeps three lucky years from looking certain
    no_v = effects.school_effects(res, comps.assign(tau2_v=0.0), year=2025, spec=spec)[0]
    assert no_v.loc[0, "sd"] < pooled.loc[0, "sd"]
    assert len(yearly) == 3


def test_fft_321_weights_shrink_the_weighted_mean_by_its_reliability():
    comps = pd.DataFrame({"outcome": ["OGE"], "tau2_u": [0.01], "tau2_v": [0.0]})
    res = _res([("OGE", "a", 2023, 0.3, 0.01, 25, 0.5, 0.8),
                ("OGE", "a", 2024, 0.0, 0.01, 25, 0.5, 0.5),
                ("OGE", "a", 2025, 0.0, 0.01, 25, 0.5, 0.5)])
    pooled = effects.school_effects(res, comps, year=2025,
                                    spec=effects.EffectSpec(weights="321"))[0]
    mean = (1 * 0.3) / 6                       # weights 3 (2025), 2 (2024), 1 (2023)
    var = (9 + 4 + 1) * 0.01 / 36
    lam = 0.01 / (0.01 + var)
    assert pooled.loc[0, "estimate"] == pytest.approx(lam * mean)
    assert pooled.loc[0, "sd"] == pytest.approx(np.sqrt(0.01 * (1 - lam)))


def test_variance_components_recover_planted_values():
    rng = np.random.default_rng(7)
    n_s, years = 4000, 3
    u = rng.normal(0, 0.1, n_s)                       # tau2_u = 0.01
    v = rng.normal(0, np.sqrt(0.003), (n_s, years))   # tau2_v = 0.003
    s2 = rng.uniform(0.001, 0.004, (n_s, years))
    r = u[:, None] + v + rng.normal(0, np.sqrt(s2))
    res = pd.DataFrame({"outcome": "VPR", "school_id": np.repeat(np.arange(n_s), years),
                        "year": np.tile([2023, 2024, 2025], n_s), "residual": r.ravel(),
                        "s2": s2.ravel()})
    c = effects.variance_components(res).iloc[0]
    assert c["tau2_u"] == pytest.approx(0.01, rel=0.08)
    assert c["tau2_v"] == pytest.approx(0.003, rel=0.15)
    assert c["identified"] and c["n_multi"] == n_s
    one = effects.variance_components(res.loc[res["year"] == 2025]).iloc[0]
    assert not one["identified"] and one["tau2_v"] == 0.0  # one year: v is not told from u


def test_combined_effect_is_precision_weighted_and_never_overconfident():
    e = pd.DataFrame({"school_id": ["a", "a"], "estimate": [0.1, 0.0], "sd": [0.02, 0.04]})
    c = effects.combine_outcomes(e).iloc[0]
    w = np.array([1 / 0.0004, 1 / 0.0016])
    assert c["estimate"] == pytest.approx((w * [0.1, 0.0]).sum() / w.sum())
    assert c["sd"] == pytest.approx((w * [0.02, 0.04]).sum() / w.sum())
    assert c["sd"] > np.sqrt(1 / w.sum())  # the independent-outcomes SD would be smaller


def test_direction_needs_the_interval_beyond_the_smallest_effect():
    low = pd.Series([0.06, 0.01, -0.20, -0.03, np.nan])
    high = pd.Series([0.20, 0.15, -0.06, 0.03, np.nan])
    assert rules.direction(low, high, 0.05).tolist() == ["above", "expected", "below",
                                                         "expected", "na"]


def test_low_context_absolute_and_quantile():
    x = pd.Series([-2.0, -0.5, -0.1, 0.0, 1.0, np.nan])
    a, cut = rules.low_context(x, method="absolute", threshold=-0.1, quantile=0.25)
    assert a.tolist() == [True, True, True, False, False, False] and cut == -0.1
    q, cut = rules.low_context(x, method="quantile", threshold=-0.1, quantile=0.25)
    assert cut == pytest.approx(-0.5) and q.sum() == 2


def test_resilient_needs_low_context_above_and_two_of_three_years():
    low = pd.Series([True, True, True, False])
    d = pd.Series(["above", "above", "expected", "above"])
    held = pd.Series([2, 1, 3, 3])
    assert rules.resilient(low, d, held, min_years=2).tolist() == [True, False, False, False]
    p = pd.Series([0.99, 0.99, 0.99, 0.99])
    assert rules.resilient(low, d, held, min_years=2, p_above=p,
                           p_threshold=0.975).tolist() == [True, False, True, False]


def test_years_held_counts_years_above_zero():
    y = pd.DataFrame({"school_id": ["a"] * 3 + ["b"], "year": [2023, 2024, 2025, 2025],
                      "low": [0.01, -0.02, 0.03, 0.2], "high": [0.1, 0.1, 0.1, 0.3]})
    h = rules.years_held(y, year=2025, n_years=3, min_effect=0.0)
    assert h.loc["a", "years_above"] == 2 and h.loc["a", "years_above_list"] == "2023, 2025"
    assert h.loc["b", "years_assessed"] == 1


def test_typology_labels_only_what_the_evidence_supports():
    low = pd.Series([True, True, True, True, False, False, False, True])
    perf = pd.Series(["above", "above", "above", "expected", "above", "expected", "below",
                      "below"])
    res = pd.Series([True, False, False, False, False, False, False, False])
    review = pd.Series([False, True, False, False, False, False, False, False])
    got = rules.typology(low, perf, res, review).tolist()
    assert got == ["resilient", "needs_review", "above_unconfirmed", "expected", "favourable",
                   "expected", "unrealised", "unfavourable"]
    assert set(got) <= set(rules.TYPOLOGY)


def test_quality_group_axis():
    g = pd.Series([7, 4, 1, np.nan])
    axis = rules.performance_axis(pd.Series(["expected"] * 4), g, axis="quality_group",
                                  high_group=6, low_group=2)
    assert axis.tolist() == ["above", "expected", "below", "na"]
    with pytest.raises(ValueError, match="typology_axis"):
        rules.performance_axis(g, g, axis="rank", high_group=6, low_group=2)


def test_quadrant_is_bottom_quarter_of_index_and_top_quarter_of_quality():
    idx = pd.Series(np.arange(8, dtype=float))
    q = pd.Series([0.9, 0.1, 0.2, 0.3, 0.9, 0.9, 0.5, 0.6])
    out = rules.quadrant(idx, q)
    assert out.tolist() == [True, False, False, False, False, False, False, False]


def test_shnsu_on_the_anchored_index_can_change_between_years():
    # the same schools; in 2025 every school's passport is worse: a per-year index would
    # still put a quarter below its cut, the anchored one puts them all below
    rng = np.random.default_rng(1)
    base = pd.DataFrame({"share_a": rng.uniform(0.1, 0.5, 40),
                         "share_b": rng.uniform(0.1, 0.5, 40)})
    schools = pd.concat([base.assign(year=2024), (base + 0.4).assign(year=2025)],
                        ignore_index=True)
    schools["school_id"] = [f"s{i}" for i in range(40)] * 2
    a = rules.anchored_index(schools, {"share_a": -1, "share_b": -1}, method="mean_z",
                             min_indicators=2, weights=None, impute=True,
                             reference_year=2024)
    now = a.loc[a["year"] == 2025, "anchored_index"]
    before = a.loc[a["year"] == 2024, "anchored_index"]
    assert before.mean() == pytest.approx(0.0, abs=1e-9)
    flag_now, _ = rules.shnsu(now, method="absolute", threshold=-0.67, quantile=0.25)
    flag_before, _ = rules.shnsu(before, method="absolute", threshold=-0.67, quantile=0.25)
    assert flag_now.sum() > 30 and flag_before.sum() < 15


def test_decline_larger_than_noise():
    comps = pd.DataFrame({"outcome": ["VPR"], "tau2_u": [0.01], "tau2_v": [0.0005]})
    rows = []
    for sid, path, s2 in (("fall", (0.10, 0.0, -0.10), 0.0005), ("flat", (0.0, 0.01, 0.0), 0.0005),
                          ("noisy", (0.10, 0.0, -0.10), 0.05)):
        rows += [("VPR", sid, y, r, s2, 100, 0.5, 0.5) for y, r in zip((2023, 2024, 2025), path)]
    out = rules.decline(_res(rows), comps, year=2025, n_years=3, min_drop=0.05)
    assert out["declining"].to_dict() == {"fall": True, "flat": False, "noisy": False}
    assert out.loc["fall", "trend"] == pytest.approx(-0.10)


def test_changes_name_the_criteria_that_moved():
    now = pd.DataFrame({"school_id": ["a", "b", "c"], "resilient": [True, False, True],
                        "low_context": [True, True, True], "direction": ["above"] * 3})
    before = pd.DataFrame({"school_id": ["a", "b", "d"], "resilient": [False, True, True],
                           "low_context": [False, True, True],
                           "direction": ["above", "above", "above"]})
    ch = rules.changes(now, before, ["resilient"], {"resilient": ["low_context", "direction"]})
    got = {r.school_id: (r.change, r.changed) for r in ch.itertuples()}
    assert got == {"a": ("entered", "low_context"), "b": ("left", ""),
                   "c": ("entered", "new_school"), "d": ("left", "not_in_year")}


def test_years_held_with_no_school_above_is_empty_text_not_an_error():
    y = pd.DataFrame({"school_id": ["a", "b"], "year": pd.array([2025, 2025], dtype="Int64"),
                      "low": [-0.1, -0.2], "high": [0.1, 0.0]})
    h = rules.years_held(y, year=2025, n_years=3, min_effect=0.0)
    assert h["years_above_list"].tolist() == ["", ""] and h["years_above"].sum() == 0


def test_context_measure_is_the_students_mean_status_where_there_is_one():
    index = pd.DataFrame({"year": 2025, "school_id": ["a", "b", "c"],
                          "social_index": [0.5, -0.5, 0.0]})
    students = pd.DataFrame({
        "year": 2025, "school_id": ["a"] * 3 + ["b"] * 2, "procedure": "VPR",
        "subject": ["rus", "rus", "math", "rus", "rus"], "grade": 5,
        "ses": [1.0, 3.0, 2.0, -1.0, -1.0]})
    m = effects.context_measure(index, students).set_index("school_id")
    # means 2 and -1, standardised over the two schools; c keeps its index
    assert m.loc["a", "social_index"] == pytest.approx(1 / np.sqrt(2))
    assert m.loc["b", "social_index"] == pytest.approx(-1 / np.sqrt(2))
    assert m.loc["c", "social_index"] == 0.0 and m.loc["c", "context_source"] == "index"
    assert m.loc["a", "context_n"] == 2 and m.loc["b", "context_n"] == 2
    only = effects.context_measure(index, students, how="index")
    assert (only["context_source"] == "index").all() and only["context_n"].isna().all()
    assert effects.context_measure(index, None)["social_index"].tolist() == [0.5, -0.5, 0.0]
