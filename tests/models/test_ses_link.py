"""The gradient regression: known answers from NIST's Longley data and a hand-built sandwich."""

import numpy as np
import pandas as pd
import pytest

from analysis.models.expected import ExpectedSpec, fit_expected
from analysis.models.gradients import gradient_stats
from analysis.models.sample import analysis_sample


def hc3_by_hand(y, x, w):
    X = np.column_stack([np.ones_like(x), x]) * np.sqrt(w)[:, None]
    yw = y * np.sqrt(w)
    bread = np.linalg.inv(X.T @ X)
    beta = bread @ X.T @ yw
    e = yw - X @ beta
    h = np.einsum("ij,jk,ik->i", X, bread, X)
    meat = X.T @ (X * (e**2 / (1 - h) ** 2)[:, None])
    return beta, np.sqrt(np.diag(bread @ meat @ bread))


LINEAR = ExpectedSpec(terms=(), shape="linear", cov_type="HC3")


def test_weighted_fit_and_hc3_errors_match_the_sandwich_formula():
    rng = np.random.default_rng(11)
    x = rng.normal(size=40)
    w = rng.integers(5, 200, size=40).astype(float)
    y = 0.5 + 0.08 * x + rng.normal(0, 1, 40) / np.sqrt(w)
    data = pd.DataFrame({"social_index": x, "quality_index": y, "n_students": w})
    fit = fit_expected(data, LINEAR)
    beta, se = hc3_by_hand(y, x, w)
    slope, slope_se = fit.slope_at(0.0)
    assert slope == pytest.approx(beta[1], rel=1e-10)
    assert slope_se == pytest.approx(se[1], rel=1e-8)
    np.testing.assert_allclose(fit.fitted["residual"], y - (beta[0] + beta[1] * x), atol=1e-12)
    assert fit.n_students == int(w.sum()) and fit.n_schools == 40


def test_exact_line_is_recovered_and_curvature_detected():
    x = np.linspace(-2, 2, 21)
    line = pd.DataFrame({"social_index": x, "quality_index": 0.4 + 0.1 * x, "n_students": 30,
                         "municipality": "a"})
    rows = gradient_stats(line, y="quality_index", cov_type="HC3").set_index("term")
    assert rows.loc["slope", "estimate"] == pytest.approx(0.1)
    assert rows.loc["r2", "estimate"] == pytest.approx(1.0)
    assert rows.loc["curvature", "estimate"] == pytest.approx(0.0, abs=1e-12)
    curved = line.assign(quality_index=0.4 + 0.1 * x + 0.02 * x**2)
    rows = gradient_stats(curved, y="quality_index", cov_type="HC3").set_index("term")
    assert rows.loc["curvature", "estimate"] == pytest.approx(0.02)
    # the quadratic expected model is exact inside its support (the whole range here)
    fit = fit_expected(curved, ExpectedSpec(terms=(), shape="quadratic", support=(0, 1),
                                            cov_type="HC3"))
    np.testing.assert_allclose(fit.fitted["residual"], 0.0, atol=1e-12)


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
    cluster = np.repeat(["1", "2"], 6)
    data = pd.DataFrame({"social_index": x, "n_students": 20, "cluster": cluster,
                         "quality_index": 0.3 + 0.1 * x + 0.5 * (cluster == "2")})
    plain = fit_expected(data, ExpectedSpec(terms=(), shape="linear", cov_type="HC1"))
    within = fit_expected(data, ExpectedSpec(terms=("cluster",), shape="linear",
                                             cov_type="HC1"))
    assert plain.slope_at(0.0)[0] > 0.2
    assert within.slope_at(0.0)[0] == pytest.approx(0.1, abs=1e-10)
    np.testing.assert_allclose(within.fitted["residual"], 0.0, atol=1e-10)
