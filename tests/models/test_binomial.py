"""The binomial model of the failing share against statsmodels GLM and a simulation."""

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy.special import expit

from analysis.errors import InputError
from analysis.models import estimates
from analysis.models.binomial import fit_binomial
from analysis.models.expected import ExpectedSpec

LINEAR = ExpectedSpec(shape="linear")


def schools(n=150, seed=0, beta=(-1.2, -0.4), rho=0.0, municipalities=15):
    """Counts of «2» per school; ``rho`` > 0 makes them beta-binomial (overdispersed)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    total = rng.integers(5, 80, size=n)
    settlement = rng.choice(["city", "town", "village"], n, p=[0.5, 0.3, 0.2])
    school_type = rng.choice(["secondary", "gymnasium", "basic"], n, p=[0.7, 0.15, 0.15])
    mu = expit(beta[0] + beta[1] * x + 0.2 * (settlement == "village")
               - 0.3 * (school_type == "gymnasium"))
    p = mu if rho == 0 else rng.beta(mu * (1 - rho) / rho, (1 - mu) * (1 - rho) / rho)
    return pd.DataFrame({
        "social_index": x, "n_total": total, "n_fail": rng.binomial(total, p),
        "municipality": [f"МО {k}" for k in rng.integers(0, municipalities, n)],
        "settlement_type": settlement, "school_type": school_type,
    })


def hand_design(data):
    cols = {"const": np.ones(len(data)), "x": data["social_index"].to_numpy()}
    for term in ("settlement_type", "school_type"):
        counts = data[term].value_counts()
        ref = min(counts.index, key=lambda k: (-counts[k], k))
        for level in sorted(set(data[term]) - {ref}):
            cols[f"{term}[{level}]"] = (data[term] == level).to_numpy(dtype=float)
    return pd.DataFrame(cols, index=data.index)


def reference_glm(data, **fit):
    endog = np.column_stack([data["n_fail"], data["n_total"] - data["n_fail"]])
    return sm.GLM(endog, hand_design(data), family=sm.families.Binomial()).fit(**fit)


def test_coefficients_and_cluster_errors_equal_statsmodels_glm():
    data = schools()
    fit = fit_binomial(data, LINEAR)
    groups = pd.factorize(data["municipality"], sort=True)[0]
    ref = reference_glm(data, cov_type="cluster", cov_kwds={"groups": groups})
    assert fit.columns == tuple(hand_design(data).columns)
    np.testing.assert_allclose(fit.result.params, ref.params, rtol=1e-8)
    np.testing.assert_allclose(fit.result.bse, ref.bse, rtol=1e-8)
    p = ref.fittedvalues.to_numpy()
    np.testing.assert_allclose(fit.fitted["fitted"], p, rtol=1e-8)
    f, t = data["n_fail"].to_numpy(), data["n_total"].to_numpy()
    phi = np.sum((f - t * p) ** 2 / (t * p * (1 - p))) / (len(data) - len(ref.params))
    assert fit.dispersion == pytest.approx(phi, rel=1e-8)
    naive = reference_glm(data)
    np.testing.assert_allclose(fit.quasi_bse, naive.bse * np.sqrt(phi), rtol=1e-8)
    est = fit.to_estimates("VPR/share_mark2", 2024)
    estimates.validate(est)
    coefs = est[est["term"].str.startswith("coef:")]
    np.testing.assert_allclose(coefs["estimate"].to_numpy(dtype=float), ref.params, rtol=1e-8)


def test_odds_ratio_and_average_marginal_effect():
    data = schools(seed=1)
    fit = fit_binomial(data, LINEAR)
    est = fit.to_estimates("VPR/share_mark2", 2024)
    b, ci = fit.result.params["x"], fit.result.conf_int().loc["x"]
    odds = estimates.lookup(est, "binomial", "odds_ratio_per_sd")
    assert odds is not None
    assert odds["estimate"] == pytest.approx(np.exp(b), rel=1e-10)
    assert odds["ci_low"] == pytest.approx(np.exp(ci[0]), rel=1e-10)
    assert odds["ci_high"] == pytest.approx(np.exp(ci[1]), rel=1e-10)
    assert odds["std_error"] == pytest.approx(np.exp(b) * fit.result.bse["x"], rel=1e-10)
    margeff = fit.result.get_margeff()  # average over schools of dp/dx, delta-method SE
    j = list(fit.columns).index("x") - 1  # get_margeff leaves out the constant
    ame = estimates.lookup(est, "binomial", "ame_per_sd")
    assert ame is not None
    assert ame["estimate"] == pytest.approx(margeff.margeff[j], rel=1e-8)
    assert ame["std_error"] == pytest.approx(margeff.margeff_se[j], rel=1e-6)
    dispersion = estimates.lookup(est, "binomial", "dispersion")
    assert dispersion is not None and dispersion["reason"] == "no_standard_error"


def test_spline_odds_ratio_is_at_the_named_point():
    data = schools(n=300, seed=2)
    fit = fit_binomial(data, ExpectedSpec(shape="spline", slope_at=0.5))
    slope, _ = fit.slope_at(0.5)
    g = fit.basis.derivative([0.5]).iloc[0]
    params = fit.result.params
    assert slope == pytest.approx(float(sum(g[c] * params[c] for c in g.index)), rel=1e-10)
    odds = estimates.lookup(fit.to_estimates("x", 2024), "binomial", "odds_ratio_per_sd")
    assert odds is not None and odds["estimate"] == pytest.approx(np.exp(slope), rel=1e-10)
    curve = fit.curve()
    assert len(curve) == 101
    assert ((0 < curve["ci_low"]) & (curve["ci_low"] < curve["fit"])
            & (curve["fit"] < curve["ci_high"]) & (curve["ci_high"] < 1)).all()
    np.testing.assert_allclose(fit.predict(data.iloc[:5]), fit.fitted["fitted"].iloc[:5],
                               rtol=1e-12)


def test_schools_without_participants_are_left_out_and_bad_counts_stop():
    data = schools(n=60, seed=3)
    data.loc[[4, 9], "n_total"] = 0
    data.loc[[4, 9], "n_fail"] = 0
    fit = fit_binomial(data, LINEAR)
    assert list(fit.excluded) == [4, 9] and fit.n_schools == 58
    assert 4 not in fit.fitted.index
    ref = fit_binomial(data.drop(index=[4, 9]), LINEAR)
    np.testing.assert_allclose(fit.result.params, ref.result.params, rtol=1e-12)
    with pytest.raises(InputError, match="n_fail > n_total"):
        fit_binomial(data.assign(n_fail=data["n_total"] + 1), LINEAR)
    with pytest.raises(InputError, match="ses_link.terms"):
        fit_binomial(data.drop(columns="school_type"), LINEAR)


def test_small_schools_weigh_less_than_in_a_regression_of_shares():
    rng = np.random.default_rng(4)
    n = 40
    x = rng.normal(size=2 * n)
    total = np.r_[np.full(n, 200), np.full(n, 2)]
    # large schools: the true link; small schools: the opposite link
    p = np.r_[expit(-1.0 - 0.5 * x[:n]), expit(-1.0 + 1.5 * x[n:])]
    data = pd.DataFrame({"social_index": x, "n_total": total, "n_fail": rng.binomial(total, p),
                         "municipality": np.arange(2 * n) % 20})
    spec = ExpectedSpec(terms=(), shape="linear")
    counts = fit_binomial(data, spec).result.params["x"]
    share = data["n_fail"] / data["n_total"]
    X = sm.add_constant(data["social_index"])
    weighted = sm.GLM(share, X, family=sm.families.Binomial(),
                      var_weights=data["n_total"]).fit().params["social_index"]
    unweighted = sm.GLM(share, X, family=sm.families.Binomial()).fit().params["social_index"]
    assert counts == pytest.approx(weighted, rel=1e-8)  # the count form = shares x n
    assert counts == pytest.approx(-0.5, abs=0.15)
    assert unweighted > counts + 0.4  # each 2-pupil school counts as much as a 200-pupil one


def test_overdispersion_is_detected_and_robust_intervals_keep_their_coverage():
    spec = ExpectedSpec(terms=(), shape="linear")
    truth, reps = -0.4, 200
    robust = quasi = naive = 0
    phis = []
    for r in range(reps):
        rng = np.random.default_rng(1000 + r)
        n = 80
        x = rng.normal(size=n)
        total = rng.integers(20, 60, size=n)
        mu, rho = expit(-1.2 + truth * x), 0.08
        p = rng.beta(mu * (1 - rho) / rho, (1 - mu) * (1 - rho) / rho)
        data = pd.DataFrame({"social_index": x, "n_total": total,
                             "n_fail": rng.binomial(total, p), "municipality": np.arange(n) // 2})
        fit = fit_binomial(data, spec)
        phis.append(fit.dispersion)
        lo, hi = fit.result.conf_int().loc["x"]
        robust += lo <= truth <= hi
        b, se_quasi = fit.quasi.params["x"], fit.quasi.bse["x"]
        quasi += abs(b - truth) <= 1.96 * se_quasi
        naive += abs(b - truth) <= 1.96 * se_quasi / np.sqrt(fit.dispersion)
    assert min(phis) > 1.5 and np.mean(phis) > 3  # 1 + (n - 1) rho ~ 4
    assert 0.90 <= robust / reps <= 0.99
    assert 0.90 <= quasi / reps <= 0.99
    assert naive / reps < 0.80  # plain binomial errors are far too small
