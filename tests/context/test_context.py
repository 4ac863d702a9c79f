"""Social well-being index and context clusters, on hand-checkable data."""

import numpy as np
import pandas as pd
import pytest
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score

from analysis.context.clusters import ContextClusters
from analysis.context.index import SocialIndex, social_index_by_year
from analysis.errors import InputError, InputWarning


def test_mean_z_index_is_the_standardised_mean_of_signed_z_scores():
    X = pd.DataFrame({"a": [0.1, 0.2, 0.3, 0.4], "b": [0.4, 0.3, 0.2, 0.1]})
    idx = SocialIndex({"a": 1, "b": -1}).fit_transform(X)
    expected = (X["a"] - 0.25) / np.sqrt(0.0125)  # a and -b carry the same signal
    np.testing.assert_allclose(idx, expected, atol=1e-12)
    assert idx.mean() == pytest.approx(0.0, abs=1e-12)
    assert idx.std(ddof=0) == pytest.approx(1.0)


def test_sign_flips_direction_and_missing_indicators_follow_min_indicators():
    X = pd.DataFrame({"a": [0.1, 0.2, 0.3, 0.4, 0.5], "b": [0.5, 0.1, 0.2, np.nan, 0.4]})
    up = SocialIndex({"a": 1, "b": 1}, min_indicators=2).fit_transform(X)
    assert np.isnan(up.iloc[3]) and up.notna().sum() == 4
    one = SocialIndex({"a": 1, "b": 1}, min_indicators=1).fit_transform(X)
    assert one.notna().all()
    down = SocialIndex({"a": -1, "b": -1}, min_indicators=1).fit_transform(X)
    np.testing.assert_allclose(down, -one, atol=1e-12)


def test_pca_index_matches_sklearn_first_component():
    rng = np.random.default_rng(3)
    latent = rng.normal(size=200)
    X = pd.DataFrame({"a": latent + rng.normal(0, .5, 200), "b": -latent + rng.normal(0, .8, 200),
                      "c": latent + rng.normal(0, 1.0, 200)})
    signs = {"a": 1, "b": -1, "c": 1}
    idx = SocialIndex(signs, method="pca").fit_transform(X)
    z = (X - X.mean()) / X.std(ddof=0) * pd.Series(signs)
    pc1 = PCA(n_components=1).fit_transform(z.to_numpy())[:, 0]
    assert abs(np.corrcoef(idx, pc1)[0, 1]) == pytest.approx(1.0, abs=1e-10)
    mean_z = SocialIndex(signs).fit_transform(X)
    assert np.corrcoef(idx, mean_z)[0, 1] > 0.95
    assert np.corrcoef(idx, latent)[0, 1] > 0.8


def test_bad_parameters_are_rejected():
    with pytest.raises(ValueError, match="method"):
        SocialIndex({"a": 1}, method="mystery")
    with pytest.raises(ValueError, match="signs"):
        SocialIndex({"a": 2})
    with pytest.raises(InputError, match=r"index\.indicators.*0 of 1 indicators vary"), \
            pytest.warns(InputWarning, match="'zz' has no values"):
        SocialIndex({"zz": 1}).fit(pd.DataFrame({"a": [1.0]}))


def test_index_by_year_standardises_each_year_and_books_the_missing():
    schools = pd.DataFrame({
        "year": [2024] * 3 + [2025] * 3, "school_id": ["1", "2", "3"] * 2,
        "a": [0.1, 0.2, 0.3, 0.5, 0.6, np.nan], "b": [0.3, 0.2, 0.1, 0.1, 0.0, np.nan],
    })
    index, led, acc = social_index_by_year(schools, {"a": 1, "b": -1}, min_indicators=1)
    assert len(index) == 5
    for _, grp in index.groupby("year"):
        assert grp["social_index"].mean() == pytest.approx(0.0, abs=1e-12)
    assert led[["year", "school_id", "reason"]].values.tolist() == [[2025, "3",
                                                                      "too_few_indicators"]]
    assert acc[["year", "in_scope", "used", "excluded"]].values.tolist() == [[2024, 3, 3, 0],
                                                                              [2025, 3, 2, 1]]


def blobs(seed=0, n=60):
    rng = np.random.default_rng(seed)
    centres = np.array([[2.0, 0.0], [-2.0, 3.0], [0.0, -3.0]])
    truth = np.repeat([0, 1, 2], n)
    X = pd.DataFrame(centres[truth] + rng.normal(0, 0.3, (3 * n, 2)),
                     columns=["social_index", "log_enrollment"])
    return X, truth


NUMERIC_ONLY = {"numeric": ("social_index", "log_enrollment"), "categorical": ()}


def test_clusters_recover_separated_groups_and_are_numbered_by_context():
    X, truth = blobs()
    model = ContextClusters(k=3, n_init=10, seed=1, **NUMERIC_ONLY).fit(X)
    assert adjusted_rand_score(truth, model.labels_) == 1.0
    # cluster 1 = lowest mean social index (the blob centred at -2), 3 = highest
    assert (model.labels_[truth == 1] == 1).all() and (model.labels_[truth == 0] == 3).all()
    assert model.centers_["social_index"].is_monotonic_increasing
    np.testing.assert_allclose(model.centers_.loc[1, "social_index"], -2.0, atol=0.1)
    assert model.silhouette_ > 0.7
    np.testing.assert_array_equal(model.predict(model.centers_), [1, 2, 3])


def test_clusters_are_deterministic_given_the_seed():
    X, _ = blobs(seed=5)
    a = ContextClusters(k=4, n_init=5, seed=7, **NUMERIC_ONLY).fit(X)
    b = ContextClusters(k=4, n_init=5, seed=7, **NUMERIC_ONLY).fit(X)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    pd.testing.assert_frame_equal(a.criterion_, b.criterion_)
    with pytest.raises(InputError, match=r"clusters\.k': got '10'; expected at most 4"):
        ContextClusters(k=10, **NUMERIC_ONLY).fit(X.head(5))
