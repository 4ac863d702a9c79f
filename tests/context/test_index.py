"""The social well-being index: methods, imputation, bands and summaries, on known answers."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.decomposition import PCA

from analysis.context.index import DEFAULT_BAND_EDGES, SocialIndex, bands, social_index_by_year
from analysis.errors import InputWarning


def signed_z(X: pd.DataFrame, signs: dict) -> pd.DataFrame:
    return (X - X.mean()) / X.std(ddof=0) * pd.Series(signs)


def standardise(s):
    s = np.asarray(s, dtype="float64")
    return (s - s.mean()) / s.std()


def correlated(n=300, seed=3, p=4):
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=n)
    loads = np.array([1.0, -0.8, 0.6, -0.3, 0.5, 0.9, -0.4][:p])
    data = latent[:, None] * loads + rng.normal(0, [0.5, 0.7, 1.0, 0.9, 0.6, 0.8, 1.1][:p],
                                                 (n, p))
    X = pd.DataFrame(0.4 + 0.05 * data, columns=list("abcdefg"[:p]))
    signs = {c: (1 if w > 0 else -1) for c, w in zip(X.columns, loads, strict=True)}
    return X, signs, latent


# --- the three methods ----------------------------------------------------------------------

def test_mean_z_by_hand_on_a_4x2_table():
    X = pd.DataFrame({"a": [0.1, 0.2, 0.3, 0.6], "b": [0.5, 0.4, 0.4, 0.3]})
    est = SocialIndex({"a": 1, "b": -1}).fit(X)
    za = (X["a"] - 0.3) / np.sqrt(0.035)          # mean 0.3, var (.04+.01+0+.09)/4
    zb = -(X["b"] - 0.4) / np.sqrt(0.005)         # mean 0.4, var (.01+0+0+.01)/4
    np.testing.assert_allclose(est.transform(X), standardise((za + zb) / 2), atol=1e-12)
    assert est.weights_.to_dict() == {"a": 0.5, "b": 0.5}
    r = np.corrcoef(np.c_[za, zb, (za + zb) / 2].T)
    assert est.variance_explained_ == pytest.approx((r[0, 2] ** 2 + r[1, 2] ** 2) / 2, abs=1e-12)


def test_weights_by_hand_and_sign_from_indicators():
    X = pd.DataFrame({"a": [0.1, 0.2, 0.3, 0.6], "b": [0.5, 0.4, 0.4, 0.3]})
    est = SocialIndex({"a": 1, "b": -1}, method="weights", weights={"a": 3, "b": 1}).fit(X)
    z = signed_z(X, {"a": 1, "b": -1})
    np.testing.assert_allclose(est.transform(X), standardise(0.75 * z["a"] + 0.25 * z["b"]),
                               atol=1e-12)
    assert est.weights_.to_dict() == {"a": 0.75, "b": 0.25}
    # equal weights are mean_z
    eq = SocialIndex({"a": 1, "b": -1}, method="weights", weights={"a": 2, "b": 2})
    np.testing.assert_allclose(eq.fit_transform(X), SocialIndex({"a": 1, "b": -1})
                               .fit_transform(X), atol=1e-12)


def test_dropped_indicator_drops_its_weight_and_renormalises():
    X = pd.DataFrame({"a": [0.1, 0.2, 0.3, 0.6], "b": [0.5, 0.4, 0.4, 0.3],
                      "c": [0.2] * 4, "d": [0.1, 0.4, 0.2, 0.3]})
    signs = {"a": 1, "b": -1, "c": 1, "d": 1}
    with pytest.warns(InputWarning, match="'c'"):
        est = SocialIndex(signs, method="weights", weights={"a": 2, "b": 1, "c": 5, "d": 1}
                          ).fit(X)
    assert est.weights_.to_dict() == {"a": 0.5, "b": 0.25, "d": 0.25}
    z = signed_z(X[["a", "b", "d"]], {"a": 1, "b": -1, "d": 1})
    np.testing.assert_allclose(est.transform(X), standardise(z @ est.weights_), atol=1e-12)


@pytest.mark.parametrize("weights, match", [
    (None, "needs index.weights"), ({"a": 1}, "no weight for: b"),
    ({"a": 1, "b": -2}, "not a positive number"), ({"a": 1, "b": 0}, "not a positive number"),
    ({"a": 1, "b": 1, "zz": 1}, "not in index.indicators: zz"),
    ({"a": 1, "b": "x"}, "not a positive number"), ([1, 2], "must map")])
def test_bad_weights_are_rejected_naming_the_parameter(weights, match):
    with pytest.raises(ValueError, match=match) as err:
        SocialIndex({"a": 1, "b": -1}, method="weights", weights=weights)
    assert "index.weights" in str(err.value) and "params.yaml" in str(err.value)


def test_pca_loadings_and_variance_explained_equal_sklearn():
    X, signs, latent = correlated()
    est = SocialIndex(signs, method="pca").fit(X)
    z = signed_z(X, signs).to_numpy()
    pca = PCA(n_components=1).fit(z)
    ref = pca.components_[0] * np.sign(pca.components_[0].sum())
    np.testing.assert_allclose(est.weights_.to_numpy(), ref, atol=1e-10)
    assert est.weights_.sum() > 0 and np.linalg.norm(est.weights_) == pytest.approx(1.0)
    assert est.variance_explained_ == pytest.approx(pca.explained_variance_ratio_[0], abs=1e-10)
    np.testing.assert_allclose(est.transform(X), standardise(pca.transform(z)[:, 0])
                               * np.sign(pca.components_[0].sum()), atol=1e-10)
    assert np.corrcoef(est.transform(X), latent)[0, 1] > 0.8
    # PC1 explains the most variance of any weighting
    assert est.variance_explained_ >= SocialIndex(signs).fit(X).variance_explained_


def test_pca_on_the_completed_matrix_equals_sklearn():
    X, signs, _ = correlated(seed=8)
    X.iloc[::7, 1] = np.nan
    X.iloc[3::11, 2] = np.nan
    est = SocialIndex(signs, method="pca")
    detail = est.fit(X).transform_detail(X)
    assert detail["imputed"].sum() == X.isna().any(axis=1).sum()
    completed = est._complete(est._signed_z(X))[0]  # the completed signed z matrix
    pca = PCA(n_components=1).fit(completed)
    ref = pca.components_[0] * np.sign(pca.components_[0].sum())
    np.testing.assert_allclose(est.weights_.to_numpy(), ref, atol=1e-10)
    assert est.variance_explained_ == pytest.approx(pca.explained_variance_ratio_[0], abs=1e-10)


# --- imputation -----------------------------------------------------------------------------

def exact_relation():
    """z_c = 0.5 z_a - 0.3 z_b + 0.1 exactly on the complete rows; rows 8, 9 lack c."""
    rng = np.random.default_rng(1)
    za, zb = rng.normal(size=10), rng.normal(size=10)
    X = pd.DataFrame({"a": 0.5 + 0.1 * za, "b": 0.3 + 0.05 * zb,
                      "c": 0.2 + 0.02 * (0.5 * za - 0.3 * zb + 0.1)})
    X.loc[[8, 9], "c"] = np.nan
    X.loc[7, ["a"]] = np.nan  # row 7 lacks a
    return X


def test_regression_imputation_predicts_from_the_complete_cases():
    X = exact_relation()
    signs = {"a": 1, "b": -1, "c": 1}
    est = SocialIndex(signs, method="mean_z").fit(X)
    z = signed_z(X, signs)
    done = z.notna().all(axis=1)
    # OLS on the complete cases, by hand
    Xd = np.c_[np.ones(done.sum()), z.loc[done, ["a", "b"]]]
    beta = np.linalg.lstsq(Xd, z.loc[done, "c"], rcond=None)[0]
    pred_c = beta[0] + z.loc[[8, 9], ["a", "b"]].to_numpy() @ beta[1:]
    Xd = np.c_[np.ones(done.sum()), z.loc[done, ["b", "c"]]]
    beta = np.linalg.lstsq(Xd, z.loc[done, "a"], rcond=None)[0]
    pred_a = beta[0] + z.loc[7, ["b", "c"]].to_numpy() @ beta[1:]
    completed = est._complete(est._signed_z(X))[0]
    np.testing.assert_allclose(completed[[8, 9], 2], pred_c, atol=1e-10)
    assert completed[7, 0] == pytest.approx(pred_a, abs=1e-10)
    # the index is the standardised mean of the completed matrix
    np.testing.assert_allclose(est.transform(X), standardise(completed.mean(axis=1)),
                               atol=1e-12)
    detail = est.transform_detail(X)
    assert list(detail.columns) == ["social_index", "n_indicators", "n_imputed", "imputed"]
    assert detail["imputed"].tolist() == [False] * 7 + [True] * 3
    assert detail["n_indicators"].tolist() == [3] * 7 + [2] * 3
    assert detail["n_imputed"].tolist() == [0] * 7 + [1] * 3
    assert est.imputation_ == {"a": {"n_imputed": 1, "method": "regression", "n_mean": 0},
                               "c": {"n_imputed": 2, "method": "regression", "n_mean": 0}}
    assert est.n_complete_ == 7 and est.n_imputed_schools_ == 3


def test_imputed_value_follows_an_exact_linear_relation():
    """c = 0.2 + 0.02 (0.5 za - 0.3 zb + 0.1) on every complete row: the imputed share of c
    on rows 8, 9 is that formula, whatever the signs."""
    X = exact_relation()
    rng = np.random.default_rng(1)
    za, zb = rng.normal(size=10), rng.normal(size=10)  # as in exact_relation
    c_true = 0.2 + 0.02 * (0.5 * za - 0.3 * zb + 0.1)
    for signs in ({"a": 1, "b": 1, "c": 1}, {"a": -1, "b": 1, "c": -1}):
        est = SocialIndex(signs).fit(X)
        completed = est._complete(est._signed_z(X))[0]
        expected = (c_true[[8, 9]] - X["c"].mean()) / X["c"].std(ddof=0) * signs["c"]
        np.testing.assert_allclose(completed[[8, 9], 2], expected, atol=1e-10)
        assert est.transform_detail(X).loc[[8, 9], "imputed"].all()


def test_too_few_complete_cases_fall_back_to_the_mean():
    # 3 complete cases; a school missing c has 2 observed -> needs 4 complete cases
    X = pd.DataFrame({"a": [0.1, 0.2, 0.4, 0.3, 0.5, np.nan],
                      "b": [0.5, 0.3, 0.2, 0.1, np.nan, 0.4],
                      "c": [0.2, 0.3, 0.6, np.nan, 0.1, 0.3]})
    est = SocialIndex({"a": 1, "b": -1, "c": 1}).fit(X)
    assert est.n_complete_ == 3
    completed = est._complete(est._signed_z(X))[0]
    assert completed[3, 2] == 0.0 and completed[4, 1] == 0.0 and completed[5, 0] == 0.0
    assert est.imputation_ == {c: {"n_imputed": 1, "method": "mean", "n_mean": 1}
                               for c in "abc"}
    z = signed_z(X, {"a": 1, "b": -1, "c": 1}).fillna(0.0)
    np.testing.assert_allclose(est.transform(X), standardise(z.mean(axis=1)), atol=1e-12)


def test_impute_false_keeps_mean_of_available_and_zero_fill():
    X = exact_relation()
    signs = {"a": 1, "b": -1, "c": 1}
    z = signed_z(X, signs)
    est = SocialIndex(signs, impute=False).fit(X)
    np.testing.assert_allclose(est.transform(X), standardise(z.mean(axis=1)), atol=1e-12)
    assert est.imputation_ == {} and not est.transform_detail(X)["imputed"].any()
    w = SocialIndex(signs, method="weights", weights={"a": 1, "b": 1, "c": 2},
                    impute=False).fit(X)
    np.testing.assert_allclose(w.transform(X), standardise(z.fillna(0) @ [.25, .25, .5]),
                               atol=1e-12)


def test_schools_below_min_indicators_get_no_index_and_no_imputation():
    X = exact_relation()
    X.loc[9, "b"] = np.nan  # row 9: only a
    est = SocialIndex({"a": 1, "b": -1, "c": 1}, min_indicators=2).fit(X)
    detail = est.transform_detail(X)
    assert np.isnan(detail.loc[9, "social_index"]) and detail.loc[9, "n_imputed"] == 0
    assert detail.loc[9, "n_indicators"] == 1 and not detail.loc[9, "imputed"]
    idx = detail["social_index"].dropna()
    assert idx.mean() == pytest.approx(0.0, abs=1e-12) and idx.std(ddof=0) == pytest.approx(1)


# --- bands ----------------------------------------------------------------------------------

def test_bands_with_edge_values_going_up():
    s = pd.Series([-3.0, -1.5, -1.2, -0.5, 0.0, 0.5, 1.0, 1.49, 1.5, 9.0, np.nan],
                  index=list("abcdefghijk"))
    got = bands(s, DEFAULT_BAND_EDGES)
    assert str(got.dtype) == "Int64" and got.name == "social_band"
    assert got.index.equals(s.index)
    assert got.iloc[:10].tolist() == [1, 2, 2, 4, 4, 5, 6, 6, 7, 7] and got.isna().iloc[10]
    assert bands(pd.Series([-1.0, 0.0, 1.0]), [0]).tolist() == [1, 2, 2]


@pytest.mark.parametrize("edges", [[], [1.0, 0.0], [0.0, 0.0], [0.0, np.nan], "abc", 0.5,
                                   [0.0, "1"]])
def test_bad_band_edges_are_rejected(edges):
    with pytest.raises(ValueError, match="index.band_edges"):
        bands(pd.Series([0.0]), edges)


# --- by year: output and summaries ----------------------------------------------------------

def two_years():
    X, signs, _ = correlated(n=40, seed=5, p=3)
    Y, _, _ = correlated(n=30, seed=6, p=3)
    X.iloc[[2, 5], 1] = np.nan
    X.iloc[7, [0, 1]] = np.nan  # one indicator only -> no index
    schools = pd.concat([X.assign(year=2024, school_id=[f"s{i}" for i in range(40)]),
                         Y.assign(year=2025, school_id=[f"s{i}" for i in range(30)])],
                        ignore_index=True)
    return schools, signs


def test_index_by_year_columns_bands_and_summaries():
    schools, signs = two_years()
    summaries: list[dict] = []
    index, led, _ = social_index_by_year(schools, signs, "pca", summaries=summaries)
    assert list(index.columns) == ["year", "school_id", "social_index", "social_band",
                                   "n_indicators", "n_imputed", "imputed"]
    assert len(index) == 69 and led["school_id"].tolist() == ["s7"]
    assert index.loc[index["imputed"], "school_id"].tolist() == ["s2", "s5"]
    pd.testing.assert_series_equal(index["social_band"], bands(index["social_index"]))
    assert [s["year"] for s in summaries] == [2024, 2025]
    s24 = summaries[0]
    assert set(s24) == {"year", "method", "weights", "variance_explained", "n_schools",
                        "n_imputed_schools", "imputation"}
    est = SocialIndex(signs, "pca").fit(schools[schools["year"] == 2024])
    assert s24["method"] == "pca" and s24["n_schools"] == 39 and s24["n_imputed_schools"] == 2
    assert s24["weights"] == pytest.approx(est.weights_.to_dict())
    assert s24["variance_explained"] == pytest.approx(est.variance_explained_)
    assert s24["imputation"] == {"b": {"n_imputed": 2, "method": "regression", "n_mean": 0}}
    assert summaries[1]["imputation"] == {} and summaries[1]["n_imputed_schools"] == 0
    json.dumps(summaries, allow_nan=False)  # plain JSON types
    assert all(type(v) is float for v in s24["weights"].values())
    for _, grp in index.groupby("year"):
        assert grp["social_index"].mean() == pytest.approx(0, abs=1e-12)
        assert grp["social_index"].std(ddof=0) == pytest.approx(1)


def test_index_by_year_checks_parameters_first():
    schools, signs = two_years()
    with pytest.raises(ValueError, match="index.band_edges"):
        social_index_by_year(schools, signs, band_edges=[1.0, 1.0])
    with pytest.raises(ValueError, match="index.weights"):
        social_index_by_year(schools, signs, "weights")


def test_index_by_year_is_deterministic():
    schools, signs = two_years()
    runs = []
    for _ in range(2):
        summaries: list[dict] = []
        index, _, _ = social_index_by_year(schools.sample(frac=1, random_state=0), signs,
                                           "pca", summaries=summaries)
        runs.append((index, summaries))
    pd.testing.assert_frame_equal(runs[0][0], runs[1][0])
    assert runs[0][1] == runs[1][1]
    shuffled, _, _ = social_index_by_year(schools, signs, "pca")
    pd.testing.assert_frame_equal(runs[0][0], shuffled, atol=1e-12)


def test_forty_thousand_schools_seven_indicators_three_years_run():
    """National scale runs and imputes (speed is checked by benchmarks/context_scale.py,
    never by a timed test)."""
    rng = np.random.default_rng(0)
    n, cols = 40_000, [f"c{j}" for j in range(7)]
    signs = {c: (1 if j % 2 else -1) for j, c in enumerate(cols)}
    frames = []
    for year in (2023, 2024, 2025):
        latent = rng.normal(size=n)
        d = pd.DataFrame({c: 0.3 + 0.1 * s * latent + rng.normal(0, 0.05, n)
                          for c, s in signs.items()})
        d = d.mask(rng.random(d.shape) < 0.05)
        frames.append(d.assign(year=year, school_id=np.arange(n).astype(str)))
    schools = pd.concat(frames, ignore_index=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", InputWarning)
        index, _, _ = social_index_by_year(schools, signs, "pca")
    assert len(index) > 119_000 and index["imputed"].any()
