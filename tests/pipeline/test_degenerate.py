"""Degenerate data stops with a message naming the parameter, never a confident report.

GitHub issue "Degenerate data gives a confident, meaningless report with exit 0": constant
social indicators, too few schools for the clusters, too few schools for the gradient.
Fast unit tests at function level; a few end-to-end runs (``analysis.pipeline.run.main``) marked
``pipeline``.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from analysis import files
from analysis.config import load_yaml
from analysis.context.clusters import ContextClusters
from analysis.context.index import SocialIndex, social_index_by_year
from analysis.context.stage import run_context
from analysis.errors import InputError, InputWarning
from analysis.ingest.stage import run_prepare
from analysis.models import estimates
from analysis.models.gradients import gradient_stats
from analysis.models.sample import check_sample
from analysis.pipeline import run
from helpers.project import TINY_PARAMS, make_project

INDICATORS = ("share_parents_higher_ed", "share_low_income", "share_single_parent",
              "share_unemployed_parents", "share_disability", "share_non_native",
              "share_prevention_register")


# --- the social index -----------------------------------------------------------------------

def test_constant_indicator_is_dropped_and_the_index_is_computed_without_it():
    X = pd.DataFrame({"a": [0.1, 0.2, np.nan, 0.4, 0.5], "b": [0.5, 0.1, 0.2, 0.3, 0.4],
                      "c": [0.3] * 5, "d": [np.nan] * 5})
    with pytest.warns(InputWarning, match="'c'.*0.3"):
        est = SocialIndex({"a": 1, "b": -1, "c": 1, "d": -1}, min_indicators=1).fit(X)
    assert est.columns_ == ["a", "b"]
    assert est.dropped_ == {"c": "no_variance", "d": "no_values"}
    without = SocialIndex({"a": 1, "b": -1}, min_indicators=1).fit_transform(X)
    np.testing.assert_allclose(est.transform(X), without, atol=1e-12)


def test_all_indicators_constant_stops_naming_the_parameters_year_and_values():
    schools = pd.DataFrame({"year": 2025, "school_id": list("abcd"),
                            "share_low_income": 0.2, "share_disability": 0.05})
    with pytest.raises(InputError) as err, pytest.warns(InputWarning):
        social_index_by_year(schools, {"share_low_income": -1, "share_disability": -1})
    msg = str(err.value)
    for part in ("index.indicators", "index.min_indicators", "2025", "params.yaml",
                 "share_low_income = 0.2", "share_disability = 0.05"):
        assert part in msg, (part, msg)


def test_too_few_varying_indicators_for_min_indicators_stops():
    schools = pd.DataFrame({"year": 2024, "school_id": list("abcd"),
                            "a": [0.1, 0.2, 0.3, 0.4], "b": 0.5})
    with pytest.raises(InputError, match="index.min_indicators = 2"), \
            pytest.warns(InputWarning):
        social_index_by_year(schools, {"a": 1, "b": -1}, min_indicators=2)


def test_index_warnings_are_recorded_per_year():
    schools = pd.DataFrame({
        "year": [2024] * 3 + [2025] * 3, "school_id": list("123") * 2,
        "a": [0.1, 0.2, 0.3, 0.5, 0.6, 0.7], "b": [0.3, 0.3, 0.3, 0.1, 0.0, 0.2],
        "c": [np.nan] * 3 + [0.1, 0.2, 0.4],
    })
    found: list[dict] = []
    with pytest.warns(InputWarning):
        index, _, _ = social_index_by_year(schools, {"a": 1, "b": -1, "c": -1},
                                           min_indicators=1, index_warnings=found)
    assert found == [{"year": 2024, "indicator": "b", "reason": "no_variance"},
                     {"year": 2024, "indicator": "c", "reason": "no_values"}]
    assert len(index) == 6 and index["social_index"].notna().all()


# --- clusters -------------------------------------------------------------------------------

def features(n: int, distinct: int | None = None, year: int = 2025) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    values = rng.normal(size=(distinct or n, 2))
    rows = values[np.arange(n) % len(values)]
    index = pd.MultiIndex.from_arrays([[year] * n, [str(i) for i in range(n)]],
                                      names=["year", "school_id"])
    return pd.DataFrame(rows, columns=["social_index", "log_enrollment"], index=index)


NUMERIC_ONLY = {"numeric": ("social_index", "log_enrollment"), "categorical": ()}


def test_clusters_refuse_k_larger_than_the_schools_allow():
    with pytest.raises(InputError) as err:
        ContextClusters(k=5, n_init=2, **NUMERIC_ONLY).fit(features(3))
    msg = str(err.value)
    for part in ("clusters.k", "'5'", "3 schools", "2025", "at most 2", "params.yaml",
                 "DATA="):
        assert part in msg, (part, msg)


def test_clusters_refuse_k_larger_than_the_distinct_profiles():
    with pytest.raises(InputError, match=r"clusters\.k.*at most 2.*only 2 distinct"):
        ContextClusters(k=3, n_init=2, **NUMERIC_ONLY).fit(features(8, distinct=2))
    assert ContextClusters(k=2, n_init=2, **NUMERIC_ONLY).fit(
        features(8, distinct=2)).silhouette_ > 0.9


def test_constant_feature_column_changes_nothing():
    X = features(40, distinct=40)
    model = ContextClusters(k=3, n_init=5, seed=1, **NUMERIC_ONLY).fit(X)
    with_const = ContextClusters(k=3, n_init=5, seed=1, categorical=(),
                                 numeric=("social_index", "log_enrollment", "urbanicity")
                                 ).fit(X.assign(urbanicity=1.0))
    np.testing.assert_array_equal(with_const.labels_, model.labels_)
    assert with_const.silhouette_ == pytest.approx(model.silhouette_)
    assert (with_const.centers_["urbanicity"] == 1.0).all()


def test_one_cluster_has_no_silhouette():
    model = ContextClusters(k=1, n_init=1, **NUMERIC_ONLY).fit(features(5))
    assert model.silhouette_ is None and (model.labels_ == 1).all()
    assert model.stability(features(5), 3).ari == 1.0


def test_criterion_curve_only_evaluates_the_k_the_data_supports():
    curve = ContextClusters(k=2, n_init=2, **NUMERIC_ONLY).fit(
        features(6, distinct=3)).criterion_
    assert curve["k"].tolist() == [2, 3]  # k <= min(n - 1, distinct profiles)
    assert list(curve.columns) == ["k", "silhouette", "bic", "inertia"]
    assert curve["bic"].isna().all() and curve["inertia"].notna().all()
    # one distinct profile: only k = 1, whose row has no silhouette
    one = ContextClusters(k=1, n_init=2, **NUMERIC_ONLY).fit(features(4, distinct=1))
    assert one.criterion_["k"].tolist() == [1]
    assert one.criterion_["silhouette"].isna().all()
    with pytest.raises(InputError, match=r"clusters\.k': got 'auto'.*at most 1 clusters"):
        ContextClusters(k="auto", **NUMERIC_ONLY).fit(features(4, distinct=1))


# --- the gradient ---------------------------------------------------------------------------

def sample(n: int, seed: int = 4) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    return pd.DataFrame({"social_index": x, "quality_index": 0.5 + 0.05 * x
                         + rng.normal(0, 0.02, n), "n_students": rng.integers(20, 80, n)})


def test_gradient_refuses_too_few_schools():
    with pytest.raises(InputError) as err:
        check_sample(sample(5))
    msg = str(err.value)
    for part in ("ses_link.min_schools", "= 10", "'5 schools'", "min_n", "params.yaml"):
        assert part in msg, (part, msg)
    check_sample(sample(5), min_schools=5)
    with pytest.raises(InputError, match=r"ses_link\.min_schools': got '2'.*>= 3"):
        check_sample(sample(5), min_schools=2)


@pytest.mark.parametrize("column", ["social_index", "quality_index"])
def test_gradient_refuses_a_constant_index(column):
    with pytest.raises(InputError, match=f"column '{column}'.*same value"):
        check_sample(sample(20).assign(**{column: 0.3}))


def test_gradient_rows_have_no_nan_and_say_what_is_unavailable():
    # three schools leave no degrees of freedom for the squared term
    three = gradient_stats(sample(3).assign(municipality="a"), y="quality_index",
                           min_schools=3, cov_type="HC1")
    two = pd.concat([sample(4), sample(4)]).assign(social_index=[0.0, 1.0] * 4,
                                                     municipality="a")
    # one school alone at x = 1 fits exactly: HC3 divides 0 by 0 for it
    lone = sample(10).assign(social_index=[0.0] * 9 + [1.0], municipality="a")
    for rows in (three, gradient_stats(two, y="quality_index", min_schools=3, cov_type="HC1"),
                 gradient_stats(lone, y="quality_index", cov_type="HC3")):
        estimates.validate(rows)
        assert not rows[["estimate", "std_error", "ci_low", "ci_high"]].isna().any().any() or (
            rows.loc[rows["estimate"].isna() | rows["std_error"].isna(), "reason"] != "").all()
    curvature = two.pipe(gradient_stats, y="quality_index", min_schools=3, cov_type="HC1")
    assert curvature.set_index("term").loc["curvature", "reason"] == (
        "too_few_distinct_index_values")
    assert lone.pipe(gradient_stats, y="quality_index", cov_type="HC3").set_index(
        "term").loc["slope", "reason"] != ""


# --- the stage writes the index warnings for the report -------------------------------------

def test_run_context_writes_index_warnings(tmp_path, tiny_region):
    root = make_project(tmp_path / "proj", tiny_region, TINY_PARAMS)
    raw = root / "data" / "raw" / "schools.csv"
    schools = pd.read_csv(raw, dtype=str, keep_default_na=False)
    schools.loc[schools["year"] == "2024", "share_disability"] = "0.05"
    schools.to_csv(raw, index=False)
    params = load_yaml(root / "params.yaml")
    run_prepare(root, year=2025, **params["prepare"])
    with pytest.warns(InputWarning, match="share_disability"):
        run_context(root, year=2025, min_n=params["min_n"], index=params["index"],
                    quality_groups=params["quality_groups"],
                    clusters=params["clusters"], similar=params["similar"])
    summary = files.read_json(root, "context_summary")
    assert summary["index"]["warnings"] == [
        {"year": 2024, "indicator": "share_disability", "reason": "no_variance"}]


# --- end to end: `make report DATA=…` -------------------------------------------------------

def data_folder(path, schools, results, params: dict | None = None):
    path.mkdir(parents=True)
    schools.to_csv(path / "schools.csv", index=False)
    results.to_csv(path / "results.csv", index=False)
    if params:
        (path / "params.yaml").write_text(json.dumps(params), encoding="utf-8")
    return path


def three_schools(region):
    ids = region.schools.loc[region.schools["year"] == 2025, "school_id"].head(3)
    return (region.schools.loc[region.schools["school_id"].isin(ids)],
            region.results.loc[region.results["school_id"].isin(ids)])


def run_fails(tmp_path, capsys, data) -> str:
    root = make_project(tmp_path / "proj", None)
    code = run.main(["--data", str(data), "--year", "2025", "--root", str(root)])
    out = capsys.readouterr()
    text = out.out + out.err
    assert code == 2, text
    assert "Traceback" not in text
    assert not list((root / "reports").rglob("report.html"))  # nothing published
    return out.err


@pytest.mark.pipeline
def test_constant_indicators_stop_the_run(tmp_path, capsys, tiny_region):
    schools = tiny_region.schools.assign(**dict.fromkeys(INDICATORS, 0.2))
    data = data_folder(tmp_path / "const", schools, tiny_region.results,
                       {"clusters": {"k": 3, "n_init": 5}})
    err = run_fails(tmp_path, capsys, data)
    assert "index.min_indicators" in err and "share_low_income = 0.2" in err


@pytest.mark.pipeline
def test_three_schools_and_two_clusters_stop_at_the_gradient(tmp_path, capsys, tiny_region):
    data = data_folder(tmp_path / "three", *three_schools(tiny_region),
                       {"clusters": {"k": 2, "n_init": 5}})
    err = run_fails(tmp_path, capsys, data)
    assert "ses_link.min_schools" in err and "min_n" in err


@pytest.mark.pipeline
def test_three_schools_and_a_fixed_k_name_clusters_k(tmp_path, capsys, tiny_region):
    data = data_folder(tmp_path / "three", *three_schools(tiny_region), {"clusters": {"k": 5}})
    err = run_fails(tmp_path, capsys, data)
    assert "clusters.k" in err and "at most 2" in err and "params.yaml" in err


@pytest.mark.pipeline
def test_three_schools_and_k_auto_stop_at_the_gradient(tmp_path, capsys, tiny_region):
    """With k: auto three schools make two clusters; the gradient then needs more schools."""
    data = data_folder(tmp_path / "three", *three_schools(tiny_region))
    err = run_fails(tmp_path, capsys, data)
    assert "ses_link.min_schools" in err and "clusters.k" not in err
