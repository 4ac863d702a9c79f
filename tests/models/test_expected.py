"""The expected-result model: bounded index shapes, categorical terms, robust errors.

Known answers come from statsmodels WLS fitted here on a design built by hand, from
patsy's natural cubic regression splines, or from derivatives written out.
"""

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from patsy import dmatrix

from analysis.errors import InputError
from analysis.models import estimates
from analysis.models.expected import (
    ExpectedSpec,
    IndexBasis,
    design,
    fit_expected,
    term_levels,
)

SETTLEMENTS = np.array(["city", "town", "village"])
TYPES = np.array(["secondary", "gymnasium", "basic", "lyceum"])


def region(n=240, seed=0, premium=0.0, slope=0.05, curve=0.0, municipalities=16):
    """Schools with an index, participants, municipality, settlement and school type.

    ``premium`` is added to the quality of gymnasiums and lyceums (a selection premium,
    no school effect); their share is higher in high context but not zero in low context.
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    w = rng.integers(15, 150, size=n).astype(float)
    selective = rng.random(n) < np.where(x > 0, 0.3, 0.12)
    school_type = np.where(selective, rng.choice(TYPES[[1, 3]], n),
                           rng.choice(TYPES[[0, 2]], n, p=[0.8, 0.2]))
    settlement = rng.choice(SETTLEMENTS, n, p=[0.5, 0.3, 0.2])
    y = (0.5 + slope * x + curve * x**2 + premium * selective
         + 0.02 * (settlement == "city") + rng.normal(0, 0.4, n) / np.sqrt(w))
    return pd.DataFrame({
        "school_id": np.arange(n), "social_index": x, "quality_index": y, "n_students": w,
        "municipality": [f"МО {k}" for k in rng.integers(0, municipalities, n)],
        "settlement_type": settlement, "school_type": school_type,
    })


def tangent_square(x, lo, hi):
    return np.where(x < lo, lo**2 + 2 * lo * (x - lo),
                    np.where(x > hi, hi**2 + 2 * hi * (x - hi), x**2))


def hand_design(data, lo, hi, shape="quadratic"):
    """const, x, (x2), then dummies with the most frequent level as reference."""
    x = data["social_index"].to_numpy()
    cols = {"const": np.ones(len(x)), "x": x}
    if shape == "quadratic":
        cols["x2"] = tangent_square(x, lo, hi)
    for term in ("settlement_type", "school_type"):
        counts = data[term].value_counts()
        ref = min(counts.index, key=lambda k: (-counts[k], k))
        for level in sorted(set(data[term]) - {ref}):
            cols[f"{term}[{level}]"] = (data[term] == level).to_numpy(dtype=float)
    return pd.DataFrame(cols, index=data.index)


# --- the index basis -------------------------------------------------------------------------

@pytest.mark.parametrize("shape,df", [("quadratic", 2), ("spline", 3), ("spline", 5)])
def test_basis_is_linear_beyond_the_support_and_curved_inside(shape, df):
    x = np.random.default_rng(1).normal(size=300)
    basis = IndexBasis(shape, df, (0.05, 0.95)).fit(x)
    lo, hi = basis.bounds_
    assert (lo, hi) == pytest.approx(tuple(np.quantile(x, [0.05, 0.95])))
    assert len(basis.columns_) == (2 if shape == "quadratic" else df)
    step = 0.01
    for grid in (np.arange(lo - 3, lo + step / 2, step), np.arange(hi, hi + 3, step)):
        second = np.diff(basis.transform(grid).to_numpy(), n=2, axis=0)
        np.testing.assert_allclose(second, 0.0, atol=1e-9)
    inside = np.arange(lo, hi, step)
    second = np.abs(np.diff(basis.transform(inside).to_numpy(), n=2, axis=0)).max(axis=0)
    assert second[0] == pytest.approx(0.0, abs=1e-12)  # the x column itself
    assert np.all(second[1:] > 1e-6)


@pytest.mark.parametrize("shape,df", [("quadratic", 2), ("spline", 4)])
def test_basis_value_and_slope_are_continuous_and_derivative_is_exact(shape, df):
    x = np.random.default_rng(2).normal(size=200)
    basis = IndexBasis(shape, df).fit(x)
    eps = 1e-7
    for bound in basis.bounds_:
        below, above = np.array([bound - eps]), np.array([bound + eps])
        np.testing.assert_allclose(basis.transform(below), basis.transform(above), atol=1e-5)
        np.testing.assert_allclose(basis.derivative(below), basis.derivative(above), atol=1e-5)
    grid = np.linspace(-4, 4, 161)
    h = 1e-5
    numeric = (basis.transform(grid + h).to_numpy() - basis.transform(grid - h).to_numpy()) / (
        2 * h)
    np.testing.assert_allclose(basis.derivative(grid).to_numpy(), numeric, atol=1e-6)


def test_quadratic_basis_is_the_square_with_tangent_lines():
    x = np.random.default_rng(3).normal(size=100)
    basis = IndexBasis("quadratic", support=(0.1, 0.9)).fit(x)
    lo, hi = np.quantile(x, [0.1, 0.9])
    grid = np.linspace(-5, 5, 41)
    out = basis.transform(pd.Series(grid, index=range(100, 141)))
    assert list(out.columns) == ["x", "x2"] and list(out.index) == list(range(100, 141))
    np.testing.assert_allclose(out["x2"], tangent_square(grid, lo, hi))
    np.testing.assert_allclose(basis.derivative(grid)["x2"], 2 * np.clip(grid, lo, hi))


def test_spline_spans_patsys_natural_cubic_splines_with_the_same_knots():
    x = np.random.default_rng(4).normal(size=400)
    basis = IndexBasis("spline", 4, (0.025, 0.975)).fit(x)
    lo, hi = basis.bounds_
    inside = np.sort(x[(x >= lo) & (x <= hi)])
    interior = np.quantile(inside, [0.25, 0.5, 0.75])
    np.testing.assert_allclose(basis.knots_, [lo, *interior, hi])
    grid = np.linspace(-5, 5, 201)  # also beyond the boundary knots
    ours = np.column_stack([np.ones_like(grid), basis.transform(grid).to_numpy()])
    theirs = np.asarray(dmatrix(f"cr(x, knots={tuple(interior)}, lower_bound={lo}, "
                                f"upper_bound={hi}) - 1", {"x": grid}))
    assert ours.shape[1] == theirs.shape[1] == 5
    coef, *_ = np.linalg.lstsq(ours, theirs, rcond=None)
    np.testing.assert_allclose(ours @ coef, theirs, atol=1e-8)


def test_degenerate_support_and_tied_knots_simplify_with_a_note():
    flat = np.r_[np.zeros(98), 1.0, 2.0]
    basis = IndexBasis("spline", 3).fit(flat)
    assert basis.columns_ == ("x",) and "straight line" in basis.notes_[0]
    tied = np.r_[np.zeros(50), np.linspace(-1, 1, 50)]
    basis = IndexBasis("spline", 4).fit(tied)
    assert len(basis.columns_) < 4 and "interior spline knots" in basis.notes_[0]
    assert IndexBasis("spline", 1).fit(tied).columns_ == ("x",)


# --- design ---------------------------------------------------------------------------------

def test_design_dummies_reference_is_the_most_frequent_level_ties_alphabetical():
    data = pd.DataFrame({"social_index": [0.0, 1, 2, 3, 4, 5],
                         "settlement_type": ["town", "village", "village", "town", "city",
                                             "city"],
                         "school_type": ["lyceum", "basic", "basic", "basic", "lyceum",
                                         "secondary"]})
    levels = term_levels(data, ["settlement_type", "school_type"])
    assert levels == {"settlement_type": ("city", "town", "village"),
                      "school_type": ("basic", "lyceum", "secondary")}
    spec = ExpectedSpec(shape="linear")
    basis = IndexBasis("linear").fit(data["social_index"])
    X = design(data, spec, basis)
    assert list(X.columns) == ["x", "settlement_type[town]", "settlement_type[village]",
                               "school_type[lyceum]", "school_type[secondary]"]
    assert (X.dtypes == "float64").all()
    np.testing.assert_array_equal(X["settlement_type[village]"], [0, 1, 1, 0, 0, 0])
    # a level absent from a prediction frame gives zeros; an unknown level is an error
    new = data.iloc[[0]].assign(settlement_type="city")
    row = design(new, spec, basis, levels=levels)
    assert row.filter(like="settlement_type").to_numpy().tolist() == [[0.0, 0.0]]
    with pytest.raises(InputError, match="hamlet"):
        design(new.assign(settlement_type="hamlet"), spec, basis, levels=levels)


# --- the fit --------------------------------------------------------------------------------

def test_cluster_robust_errors_equal_statsmodels_wls_on_a_hand_built_design():
    data = region(seed=5)
    spec = ExpectedSpec(shape="quadratic", support=(0.05, 0.95))
    fit = fit_expected(data, spec)
    lo, hi = np.quantile(data["social_index"], [0.05, 0.95])
    X = hand_design(data, lo, hi)
    groups = pd.factorize(data["municipality"], sort=True)[0]
    ref = sm.WLS(data["quality_index"], X, weights=data["n_students"]).fit(
        cov_type="cluster", cov_kwds={"groups": groups})
    assert fit.columns == tuple(X.columns)
    np.testing.assert_allclose(fit.result.params, ref.params, rtol=1e-10)
    np.testing.assert_allclose(fit.result.bse, ref.bse, rtol=1e-10)
    np.testing.assert_allclose(fit.fitted["residual"], data["quality_index"] - ref.fittedvalues,
                               atol=1e-12)
    assert fit.r2 == pytest.approx(ref.rsquared, rel=1e-12)
    est = fit.to_estimates("quality_index", 2024)
    coefs = est.loc[est["term"].str.startswith("coef:")]
    np.testing.assert_allclose(coefs["std_error"].to_numpy(dtype=float), ref.bse, rtol=1e-10)
    hc3 = fit_expected(data, ExpectedSpec(shape="quadratic", support=(0.05, 0.95),
                                          cov_type="HC3"))
    ref3 = sm.WLS(data["quality_index"], X, weights=data["n_students"]).fit(cov_type="HC3")
    np.testing.assert_allclose(hc3.result.bse, ref3.bse, rtol=1e-10)


def test_slope_at_equals_the_analytic_derivative():
    data = region(seed=6, curve=0.01)
    lin = fit_expected(data, ExpectedSpec(shape="linear"))
    b, se = lin.slope_at(1.7)
    assert b == pytest.approx(lin.result.params["x"], rel=1e-12)
    assert se == pytest.approx(lin.result.bse["x"], rel=1e-12)
    quad = fit_expected(data, ExpectedSpec(shape="quadratic"))
    p, V = quad.result.params, quad.result.cov_params()
    lo, hi = quad.support_bounds
    for x0, at in ((0.3, 0.3), (lo - 2.0, lo), (hi + 1.0, hi)):
        est, se = quad.slope_at(x0)
        assert est == pytest.approx(p["x"] + 2 * at * p["x2"], rel=1e-10)
        var = V.loc["x", "x"] + 4 * at**2 * V.loc["x2", "x2"] + 4 * at * V.loc["x", "x2"]
        assert se == pytest.approx(np.sqrt(var), rel=1e-10)


def test_planted_type_premium_is_absorbed_by_the_terms_not_read_as_a_school_effect():
    data = region(n=600, seed=7, premium=0.12)
    selective = data["school_type"].isin(["gymnasium", "lyceum"])
    low = data["social_index"] < data["social_index"].quantile(0.25)
    with_terms = fit_expected(data, ExpectedSpec(shape="spline"))
    without = fit_expected(data, ExpectedSpec(terms=(), shape="spline"))

    def mean_residual(fit, mask):
        return np.average(fit.fitted.loc[mask, "residual"], weights=data.loc[mask, "n_students"])

    for school_type in TYPES:
        assert mean_residual(with_terms, data["school_type"] == school_type) == pytest.approx(
            0.0, abs=1e-10)
    assert abs(mean_residual(with_terms, selective & low)) < 0.02
    assert mean_residual(without, selective) > 0.06
    assert mean_residual(without, selective & low) > 0.06
    assert with_terms.result.params["school_type[gymnasium]"] == pytest.approx(0.12, abs=0.02)


def test_missing_term_column_names_the_parameter():
    data = region(n=60).drop(columns="school_type")
    with pytest.raises(InputError) as err:
        fit_expected(data, ExpectedSpec(terms=("settlement_type", "school_type", "cluster")))
    message = str(err.value)
    assert "ses_link.terms" in message and "school_type, cluster" in message


def test_bad_spec_and_bad_inputs_are_clear_errors():
    with pytest.raises(InputError, match="ses_link.shape"):
        ExpectedSpec(shape="cubic")
    with pytest.raises(InputError, match="ses_link.spline_df"):
        ExpectedSpec(df=0)
    with pytest.raises(InputError, match="ses_link.support"):
        ExpectedSpec(support=(0.9, 0.1))
    assert ExpectedSpec(terms=["school_type"]).terms == ("school_type",)
    data = region(n=60)
    with pytest.raises(InputError, match="ses_link.cov_type"):
        fit_expected(data.assign(municipality="МО 1"))
    with pytest.raises(InputError, match="n_students"):
        fit_expected(data.assign(n_students=0))
    with pytest.raises(InputError, match="quality_index"):
        fit_expected(data.assign(quality_index=np.nan))


def test_single_level_term_is_dropped_with_a_note():
    data = region(n=80, seed=8).assign(settlement_type="village")
    fit = fit_expected(data, ExpectedSpec(shape="linear"))
    assert fit.dropped_terms == ("settlement_type",)
    assert any("settlement_type dropped" in note for note in fit.notes)
    assert not any(c.startswith("settlement_type[") for c in fit.columns)


def test_curve_is_the_typical_school_with_an_interval_and_straight_outside():
    data = region(seed=9, curve=0.02)
    fit = fit_expected(data, ExpectedSpec(shape="spline", df=4))
    curve = fit.curve()
    assert len(curve) == 101 and list(curve.columns) == ["x", "fit", "ci_low", "ci_high"]
    assert curve["x"].iloc[0] == data["social_index"].min()
    assert curve["x"].iloc[-1] == data["social_index"].max()
    assert (curve["ci_low"] < curve["fit"]).all() and (curve["fit"] < curve["ci_high"]).all()
    dummies = [c for c in fit.columns if "[" in c]
    typical = np.average(fit.result.model.exog[:, [fit.columns.index(c) for c in dummies]],
                         axis=0, weights=data["n_students"])
    grid = np.array([-3.0, 0.0, 0.5])
    basis = fit.basis.transform(grid)
    p = fit.result.params
    by_hand = p["const"] + basis.to_numpy() @ p[list(basis.columns)] + typical @ p[dummies]
    np.testing.assert_allclose(fit.curve(grid)["fit"], by_hand, rtol=1e-12)
    lo, hi = fit.support_bounds
    for outside in (np.linspace(lo - 2, lo, 21), np.linspace(hi, hi + 2, 21)):
        values = fit.curve(outside)["fit"].to_numpy()
        np.testing.assert_allclose(np.diff(values, n=2), 0.0, atol=1e-12)


def test_predict_reproduces_fitted_values():
    data = region(seed=10)
    fit = fit_expected(data)
    np.testing.assert_allclose(fit.predict(data), fit.fitted["fitted"], rtol=1e-12)
    with pytest.raises(InputError, match="levels the expected model was fitted on"):
        fit.predict(data.assign(school_type="unknown"))


def test_to_estimates_rows_and_determinism():
    data = region(seed=11)
    spec = ExpectedSpec(slope_at=0.5)
    one = fit_expected(data, spec).to_estimates("quality_index", 2024)
    two = fit_expected(data, spec).to_estimates("quality_index", 2024)
    pd.testing.assert_frame_equal(one, two)
    estimates.validate(one)
    terms = one["term"].tolist()
    assert terms[:4] == ["coef:const", "coef:x", "coef:ns1", "coef:ns2"]
    assert terms[-4:] == ["slope_at:0.5", "r2", "support_low", "support_high"]
    fit = fit_expected(data, spec)
    slope = estimates.lookup(one, "expected", "slope_at:0.5")
    assert slope is not None
    assert (slope["estimate"], slope["std_error"]) == pytest.approx(fit.slope_at(0.5))
    r2 = estimates.lookup(one, "expected", "r2")
    assert r2 is not None and r2["std_error"] is None and r2["reason"] == "no_standard_error"
    assert set(one["n"]) == {len(data)}
    more = fit.to_estimates("quality_index", 2024, points=(-1.5, 0.5, 1))
    assert [t for t in more["term"] if t.startswith("slope_at:")] == [
        "slope_at:0.5", "slope_at:-1.5", "slope_at:1"]
    low = estimates.lookup(more, "expected", "slope_at:-1.5")
    assert low is not None and low["estimate"] == pytest.approx(fit.slope_at(-1.5)[0])
    shuffled = data.sample(frac=1.0, random_state=0)
    again = fit_expected(shuffled, spec).to_estimates("quality_index", 2024)
    np.testing.assert_allclose(again["estimate"].to_numpy(dtype=float),
                               one["estimate"].to_numpy(dtype=float), rtol=1e-9)
