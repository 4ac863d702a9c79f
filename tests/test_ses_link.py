"""The gradient regression: known answers from NIST's Longley data and a hand-built sandwich."""

import numpy as np
import pandas as pd
import pytest
from statsmodels.datasets import longley

from analysis.models.gradient import analysis_sample, fit_gradient, weighted_ols

# NIST StRD certified values for the Longley data (ordinary least squares).
NIST_COEF = [-3482258.63459582, 15.0618722713733, -0.358191792925910e-01, -2.02022980381683,
             -1.03322686717359, -0.511041056535807e-01, 1829.15146461355]
NIST_SE = [890420.383607373, 84.9149257747669, 0.334910077722432e-01, 0.488399681651699,
           0.214274163161675, 0.226073200069370, 455.478499142212]
NIST_R2 = 0.995479004577296


def test_weighted_ols_reproduces_nist_longley():
    data = longley.load_pandas()
    fit = weighted_ols(data.endog.to_numpy(), data.exog, cov_type="nonrobust")
    np.testing.assert_allclose(fit.params.to_numpy(), NIST_COEF, rtol=1e-7)
    np.testing.assert_allclose(fit.bse.to_numpy(), NIST_SE, rtol=1e-7)
    assert fit.rsquared == pytest.approx(NIST_R2, rel=1e-10)


def hc3_by_hand(y, x, w):
    X = np.column_stack([np.ones_like(x), x]) * np.sqrt(w)[:, None]
    yw = y * np.sqrt(w)
    bread = np.linalg.inv(X.T @ X)
    beta = bread @ X.T @ yw
    e = yw - X @ beta
    h = np.einsum("ij,jk,ik->i", X, bread, X)
    meat = X.T @ (X * (e**2 / (1 - h) ** 2)[:, None])
    return beta, np.sqrt(np.diag(bread @ meat @ bread))


def test_weighted_fit_and_hc3_errors_match_the_sandwich_formula():
    rng = np.random.default_rng(11)
    x = rng.normal(size=40)
    w = rng.integers(5, 200, size=40).astype(float)
    y = 0.5 + 0.08 * x + rng.normal(0, 1, 40) / np.sqrt(w)
    data = pd.DataFrame({"social_index": x, "quality_index": y, "n_students": w})
    grad, fitted = fit_gradient(data, cov_type="HC3")
    beta, se = hc3_by_hand(y, x, w)
    assert grad.intercept == pytest.approx(beta[0], rel=1e-10)
    assert grad.slope == pytest.approx(beta[1], rel=1e-10)
    assert grad.slope_se == pytest.approx(se[1], rel=1e-8)
    assert grad.slope_ci_low == pytest.approx(beta[1] - 1.959963984540054 * se[1], rel=1e-8)
    np.testing.assert_allclose(fitted["residual"], y - (beta[0] + beta[1] * x), atol=1e-12)
    assert grad.n_students == int(w.sum()) and grad.n_schools == 40


def test_exact_line_is_recovered_and_curvature_detected():
    x = np.linspace(-2, 2, 21)
    line = pd.DataFrame({"social_index": x, "quality_index": 0.4 + 0.1 * x, "n_students": 30})
    grad, _ = fit_gradient(line)
    assert grad.slope == pytest.approx(0.1) and grad.r2 == pytest.approx(1.0)
    assert grad.quad == pytest.approx(0.0, abs=1e-12)
    curved = line.assign(quality_index=0.4 + 0.1 * x + 0.02 * x**2)
    grad_q, fitted = fit_gradient(curved, quadratic=True)
    assert grad_q.quad == pytest.approx(0.02) and grad_q.quadratic_in_fit
    np.testing.assert_allclose(fitted["residual"], 0.0, atol=1e-12)
    with pytest.raises(ValueError, match="cov_type"):
        fit_gradient(line, cov_type="HC9")


def test_analysis_sample_books_every_school_it_leaves_out():
    schools = pd.DataFrame({"year": [2025] * 4 + [2024], "school_id": list("abcda"),
                            "source_file": "schools.csv", "source_row": [2, 3, 4, 5, 6]})
    index = pd.DataFrame({"year": [2025] * 3, "school_id": list("abc"),
                          "social_index": [0.1, 0.2, 0.3]})
    quality = pd.DataFrame({"year": [2025] * 3, "school_id": list("abd"),
                            "quality_index": [0.5, 0.6, 0.7], "n_students": [50, 9, 40],
                            "n_tests": [100, 18, 80], "n_components": [4, 4, 4]})
    sample, (led, acc) = analysis_sample(schools, index, quality, year=2025, min_n=10)
    assert list(sample["school_id"]) == ["a"]
    reasons = dict(zip(led["school_id"], led["reason"]))
    assert reasons == {"b": "below_min_n", "c": "no_quality_results", "d": "no_social_index"}
    assert acc[["in_scope", "used", "excluded"]].values.tolist() == [[4, 1, 3]]


def test_cluster_term_gives_the_within_cluster_slope():
    # quality = 0.1 * index + 0.5 in cluster 2: the clusters differ in both, so the plain
    # slope mixes the two; with the cluster term the slope is the within-cluster 0.1
    x = np.array([-2.0, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5])
    cluster = pd.Series(np.repeat([1, 2], 6), name="cluster")
    data = pd.DataFrame({"social_index": x, "n_students": 20,
                         "quality_index": 0.3 + 0.1 * x + 0.5 * (cluster == 2)})
    plain, _ = fit_gradient(data, cov_type="HC1")
    within, fitted = fit_gradient(data, cov_type="HC1", groups=cluster)
    assert plain.slope > 0.2
    assert within.slope == pytest.approx(0.1, abs=1e-10)
    assert within.controls == ("cluster",) and plain.controls == ()
    np.testing.assert_allclose(fitted["residual"], 0.0, atol=1e-10)
    assert within.to_dict()["controls"] == ["cluster"] or within.to_dict()["controls"] == (
        "cluster",)
