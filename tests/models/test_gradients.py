"""PISA-style gradient statistics against statsmodels WLS and hand computations."""

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from analysis.models import estimates
from analysis.models.gradients import (
    TERMS,
    component_gradients,
    gradient_stats,
    gradients_by,
    trend,
)


def schools(n=120, seed=0, slope=0.05, curve=0.0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    w = rng.integers(10, 120, size=n).astype(float)
    return pd.DataFrame({
        "school_id": np.arange(n), "social_index": x, "n_students": w,
        "quality_index": 0.5 + slope * x + curve * x**2 + rng.normal(0, 0.3, n) / np.sqrt(w),
        "municipality": [f"МО {k}" for k in rng.integers(0, 12, n)],
        "settlement_type": rng.choice(["city", "town", "village"], n),
        "year": rng.choice([2022, 2023, 2024], n),
    })


def row(df, term):
    hit = estimates.lookup(df, "gradient", term)
    assert hit is not None
    return hit


def groups_of(data):
    return pd.factorize(data["municipality"], sort=True)[0]


def no_nan(df):
    values = df[list(estimates.FLOAT_COLUMNS)].to_numpy(dtype="float64", na_value=0.0)
    return bool(np.isfinite(values).all())


def test_slope_intercept_r2_curvature_match_statsmodels_wls():
    data = schools(curve=0.01)
    out = gradient_stats(data, y="quality_index")
    estimates.validate(out)
    assert out["term"].tolist() == list(TERMS)
    x, y, w = data["social_index"], data["quality_index"], data["n_students"]
    lin = sm.WLS(y, sm.add_constant(x), weights=w).fit(
        cov_type="cluster", cov_kwds={"groups": groups_of(data)})
    slope, intercept = row(out, "slope"), row(out, "intercept")
    assert slope["estimate"] == pytest.approx(lin.params["social_index"], rel=1e-12)
    assert slope["std_error"] == pytest.approx(lin.bse["social_index"], rel=1e-12)
    assert slope["ci_low"] == pytest.approx(lin.conf_int().loc["social_index", 0], rel=1e-12)
    assert intercept["estimate"] == pytest.approx(lin.params["const"], rel=1e-12)
    r2 = row(out, "r2")
    assert r2["estimate"] == pytest.approx(lin.rsquared, rel=1e-12)
    # the weighted R² by hand
    yhat = lin.fittedvalues
    ybar = np.average(y, weights=w)
    assert r2["estimate"] == pytest.approx(
        1 - np.sum(w * (y - yhat) ** 2) / np.sum(w * (y - ybar) ** 2), rel=1e-10)
    assert r2["std_error"] is None and r2["reason"] == "no_standard_error"
    quad = sm.WLS(y.to_numpy(), np.column_stack([np.ones(len(x)), x, x**2]), weights=w).fit(
        cov_type="cluster", cov_kwds={"groups": groups_of(data)})
    curvature = row(out, "curvature")
    assert curvature["estimate"] == pytest.approx(quad.params[2], rel=1e-12)
    assert curvature["std_error"] == pytest.approx(quad.bse[2], rel=1e-12)
    assert set(out["n"]) == {len(data), int(row(out, "gap_top_bottom_quarter")["n"])}
    hc3 = gradient_stats(data, y="quality_index", cov_type="HC3")
    ref = sm.WLS(y, sm.add_constant(x), weights=w).fit(cov_type="HC3")
    assert row(hc3, "slope")["std_error"] == pytest.approx(ref.bse["social_index"], rel=1e-12)


def test_gap_is_the_weighted_mean_difference_of_the_top_and_bottom_quarters():
    data = schools(n=101, seed=1)
    out = gradient_stats(data, y="quality_index")
    x = data["social_index"].to_numpy()
    q25, q75 = np.quantile(x, [0.25, 0.75])
    top, bottom = data[x >= q75], data[x <= q25]
    by_hand = (np.sum(top["quality_index"] * top["n_students"]) / top["n_students"].sum()
               - np.sum(bottom["quality_index"] * bottom["n_students"])
               / bottom["n_students"].sum())
    gap = row(out, "gap_top_bottom_quarter")
    assert gap["estimate"] == pytest.approx(by_hand, rel=1e-12)
    assert gap["n"] == len(top) + len(bottom) == 52
    both = pd.concat([bottom, top])
    dummy = np.r_[np.zeros(len(bottom)), np.ones(len(top))]
    ref = sm.WLS(both["quality_index"].to_numpy(), sm.add_constant(dummy),
                 weights=both["n_students"].to_numpy()).fit(
        cov_type="cluster", cov_kwds={"groups": groups_of(both)})
    assert ref.params[1] == pytest.approx(by_hand, rel=1e-10)
    assert gap["std_error"] == pytest.approx(ref.bse[1], rel=1e-10)


def test_too_few_schools_or_no_variation_give_na_with_a_reason_never_nan():
    data = schools(n=30, seed=2)
    few = gradient_stats(data.iloc[:9], y="quality_index", min_schools=10)
    assert few["estimate"].isna().all() and set(few["reason"]) == {"too_few_schools"}
    assert set(few["n"]) == {9}
    flat_x = gradient_stats(data.assign(social_index=0.3), y="quality_index")
    flat_y = gradient_stats(data.assign(quality_index=0.5), y="quality_index")
    empty = gradient_stats(data.iloc[:0], y="quality_index")
    for out in (few, flat_x, flat_y, empty):
        estimates.validate(out)
        assert no_nan(out) and len(out) == len(TERMS)
    assert set(flat_x["reason"]) == set(flat_y["reason"]) == {"no_variation"}
    assert set(empty["reason"]) == {"too_few_schools"}


def test_thin_data_keep_what_can_be_estimated():
    data = schools(n=30, seed=3)
    two_values = data.assign(social_index=np.where(data["social_index"] > 0, 1.0, -1.0))
    out = gradient_stats(two_values, y="quality_index")
    assert row(out, "slope")["estimate"] is not None
    assert row(out, "curvature")["reason"] == "too_few_distinct_index_values"
    assert row(out, "gap_top_bottom_quarter")["estimate"] is not None
    one_municipality = gradient_stats(data.assign(municipality="МО 1"), y="quality_index")
    slope = row(one_municipality, "slope")
    assert slope["estimate"] is not None and slope["std_error"] is None
    assert slope["reason"] == "too_few_clusters"
    missing = data.copy()
    missing.loc[:4, "quality_index"] = np.nan
    missing.loc[5, "n_students"] = 0
    out = gradient_stats(missing, y="quality_index")
    assert row(out, "slope")["n"] == 24
    assert row(out, "slope")["estimate"] == pytest.approx(
        row(gradient_stats(data.iloc[6:], y="quality_index"), "slope")["estimate"], rel=1e-12)
    for frame in (out, one_municipality):
        assert no_nan(frame)


def test_gradients_by_labels_subsets_and_years_and_equals_the_per_group_fit():
    data = schools(n=300, seed=4)
    by_settlement = gradients_by(data, y="quality_index", by="settlement_type", min_schools=10,
                                 year=2024)
    assert sorted(set(by_settlement["subset"])) == [
        "settlement_type=city", "settlement_type=town", "settlement_type=village"]
    assert set(by_settlement["year"]) == {2024}
    town = data[data["settlement_type"] == "town"]
    expect = gradient_stats(town, y="quality_index", year=2024, subset="settlement_type=town")
    got = by_settlement[by_settlement["subset"] == "settlement_type=town"]
    pd.testing.assert_frame_equal(got.reset_index(drop=True),
                                  estimates.concat([expect]).reset_index(drop=True))
    by_year = gradients_by(data, y="quality_index", by="year", min_schools=10)
    assert set(by_year["subset"]) == {"all"} and sorted(set(by_year["year"])) == [2022, 2023,
                                                                                   2024]
    both = gradients_by(data, y="quality_index", by=["year", "settlement_type"],
                        min_schools=40)
    keys = both[list(estimates.KEY)].astype("object").to_records(index=False).tolist()
    assert keys == sorted(keys)
    assert "too_few_schools" in set(both["reason"])
    assert no_nan(both)


def components_frame(seed=5):
    """Components as quality.components() returns them, for two outcomes and two years."""
    rng = np.random.default_rng(seed)
    rows = []
    for year in (2023, 2024):
        for school in range(40):
            for procedure, subject, grade in (("VPR", "math", 5), ("OGE", "rus", 9)):
                if procedure == "OGE" and school >= 8:
                    continue  # only 8 schools sit it: too few
                rows.append({"year": year, "school_id": school, "procedure": procedure,
                             "subject": subject, "grade": grade,
                             "participants": int(rng.integers(3, 60)),
                             "value": float(rng.uniform(0.2, 0.9)), "kind": "marked"})
    comp = pd.DataFrame(rows)
    index = pd.DataFrame([{"year": y, "school_id": s, "social_index": float(v)}
                          for y in (2023, 2024) for s, v in
                          zip(range(40), rng.normal(size=40), strict=True)])
    sch = pd.DataFrame([{"year": y, "school_id": s, "municipality": f"МО {s % 6}"}
                        for y in (2023, 2024) for s in range(40)])
    return comp, index, sch


def test_component_gradients_per_procedure_subject_grade_year():
    comp, index, sch = components_frame()
    out = component_gradients(comp, index, sch, min_n=10, min_schools=10)
    estimates.validate(out)
    assert sorted(set(out["outcome"])) == ["OGE/rus/9", "VPR/math/5"]
    assert sorted(set(out["year"])) == [2023, 2024]
    oge = out[out["outcome"] == "OGE/rus/9"]
    assert set(oge["reason"]) == {"too_few_schools"}
    vpr = comp[(comp["procedure"] == "VPR") & (comp["year"] == 2024)
               & (comp["participants"] >= 10)].merge(index, on=["year", "school_id"]).merge(
        sch, on=["year", "school_id"])
    expect = gradient_stats(vpr, y="value", weight="participants", outcome="VPR/math/5",
                            year=2024, min_schools=10)
    got = out[(out["outcome"] == "VPR/math/5") & (out["year"] == 2024)]
    np.testing.assert_allclose(got.set_index("term").loc[list(TERMS), "estimate"].to_numpy(
        dtype=float), expect["estimate"].to_numpy(dtype=float), rtol=1e-12)
    assert row(expect, "slope")["n"] == len(vpr) < 40
    assert no_nan(out)


def test_trend_is_the_inverse_variance_weighted_line_through_the_yearly_slopes():
    est = estimates.make([
        {"model": "gradient", "outcome": "quality_index", "year": year, "term": "slope",
         "estimate": b, "std_error": se, "n": 100}
        for year, b, se in ((2021, 0.040, 0.010), (2022, 0.046, 0.008), (2023, 0.047, 0.012),
                            (2024, 0.055, 0.009))
    ] + [{"model": "gradient", "outcome": "VPR/math/5", "year": 2024, "term": "slope",
          "estimate": 0.03, "std_error": 0.01, "n": 50},
         {"model": "gradient", "outcome": "quality_index", "year": 2024, "term": "r2",
          "estimate": 0.3, "reason": "no_standard_error"}])
    out = trend(est)
    estimates.validate(out)
    assert set(out["term"]) == {"slope", "slope_trend_per_year"}
    t = np.array([2021, 2022, 2023, 2024.0])
    b = np.array([0.040, 0.046, 0.047, 0.055])
    w = 1 / np.array([0.010, 0.008, 0.012, 0.009]) ** 2
    tbar = np.sum(w * t) / np.sum(w)
    slope = np.sum(w * (t - tbar) * b) / np.sum(w * (t - tbar) ** 2)
    se = 1 / np.sqrt(np.sum(w * (t - tbar) ** 2))
    got = estimates.lookup(out, "gradient", "slope_trend_per_year", outcome="quality_index")
    assert got is not None and got["year"] is None and got["n"] == 4
    assert got["estimate"] == pytest.approx(slope, rel=1e-10)
    assert got["std_error"] == pytest.approx(se, rel=1e-10)
    assert got["ci_low"] == pytest.approx(slope - 1.959963984540054 * se, rel=1e-8)
    single = estimates.lookup(out, "gradient", "slope_trend_per_year", outcome="VPR/math/5")
    assert single is not None and single["estimate"] is None
    assert single["reason"] == "too_few_years"
    assert len(out[out["term"] == "slope"]) == 5
