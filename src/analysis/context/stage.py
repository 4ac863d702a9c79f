"""Stage 02 on the processed files: the two axes, clusters and similar schools.

:func:`context_stage` computes the stage in memory (for tests and the scale benchmark);
:func:`run_context` is what ``notebooks/02_context_clusters.ipynb`` calls: it reads stage
01's files, runs :func:`context_stage` and writes the outputs of ``02_context_clusters``
in ``dvc.yaml`` (:data:`analysis.files.FILES`).  :func:`run` is the same with a
params.yaml-shaped dict.

At module level this module imports only pandas and the shared helpers;
:func:`context_stage` imports scikit-learn (through :mod:`analysis.context.clusters` and
:mod:`analysis.context.similar`) when it runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from analysis import files, ledger

if TYPE_CHECKING:
    from analysis.context.clusters import ContextClusters
    from analysis.context.similar import SimilarResult
    from analysis.context.stability import Stability

#: The ``dvc.yaml`` stage this module runs (its ledger's name).
STAGE = "02_context_clusters"


@dataclass
class ContextResult:
    """Everything stage 02 computes (what :func:`run_context` writes)."""

    index: pd.DataFrame
    quality_groups: pd.DataFrame
    clusters: pd.DataFrame
    model: ContextClusters
    stability: Stability | None
    similar: SimilarResult
    summary: dict[str, Any]
    ledger: tuple[pd.DataFrame, pd.DataFrame]


def context_stage(schools: pd.DataFrame, school_year: pd.DataFrame, *, year: int, min_n: int,
                  index: Mapping[str, Any], quality_groups: Mapping[str, Any],
                  clusters: Mapping[str, Any], similar: Mapping[str, Any]) -> ContextResult:
    """Stage 02 in memory (no files): for tests and the scale benchmark.

    Parameters
    ----------
    schools, school_year : DataFrame
        Stage 01's prepared schools (one row per school-year) and quality index.
    year, min_n : int
    index, quality_groups, clusters, similar : mapping
        The params.yaml sections of the same names.

    Steps: the social index of every school-year (each year its own reference) with bands;
    quality groups of every year; clusters of the reporting year's schools on mixed context
    features, their criterion curve, bootstrap stability, profiles and names; each school's
    ``similar.k`` context twins (same encoded features, same level of schooling) and its
    rank among them.  Schools set aside are booked in the ledger with the reason.
    """
    from analysis.context import quality
    from analysis.context import similar as similar_mod
    from analysis.context.clusters import ContextClusters
    from analysis.context.features import context_features
    from analysis.context.index import social_index_by_year
    from analysis.ingest import schema

    index_warnings: list[dict] = []
    summaries: list[dict] = []
    idx, led, acc = social_index_by_year(
        schools, index["indicators"], index["method"], index["min_indicators"],
        weights=index.get("weights"), impute=index.get("impute", True),
        band_edges=index["band_edges"], index_warnings=index_warnings, summaries=summaries)
    books = [(led, acc)]
    # quality groups, each year on its own
    groups = school_year[["year", "school_id"]].copy()
    groups["quality_group"] = pd.array([pd.NA] * len(groups), dtype="Int64")
    for _, part in school_year.groupby("year", sort=True):
        groups.loc[part.index, "quality_group"] = quality.quality_groups(
            part, min_n=min_n, method=quality_groups["method"],
            n_groups=quality_groups["n_groups"], cutoffs=quality_groups["cutoffs"])
    sy_now = school_year.loc[school_year["year"] == year]
    described = quality.describe_groups(sy_now, groups.loc[sy_now.index, "quality_group"],
                                        min_n=min_n)
    grouped = groups.merge(school_year[["year", "school_id", "quality_index", "n_students"]],
                           on=["year", "school_id"])
    books.append(ledger.record(grouped, grouped["quality_group"].isna(),
                               analysis="quality_groups", table="schools",
                               reason="below_min_n"))
    # clusters of the reporting year's schools
    scope = schools.loc[schools["year"] == year]
    X = context_features(scope, idx, clusters["numeric"], clusters["categorical"])
    model = ContextClusters(
        method=clusters["method"], k=clusters["k"], k_range=tuple(clusters["k_range"]),
        n_init=clusters["n_init"], seed=clusters["seed"],
        silhouette_sample=clusters["silhouette_sample"], ward_sample=clusters["ward_sample"],
        fit_sample=clusters["fit_sample"],
        numeric=clusters["numeric"], categorical=clusters["categorical"]).fit(X)
    stab = model.stability(X, clusters["n_boot"])
    table = X.reset_index()
    table.insert(2, "cluster", model.labels_)
    clustered = pd.MultiIndex.from_frame(scope[list(schema.SCHOOL_KEY)]).isin(
        pd.MultiIndex.from_frame(table[list(schema.SCHOOL_KEY)]))
    books.append(ledger.record(scope, pd.Series(~clustered, index=scope.index),
                               analysis="clusters", table="schools", reason="no_social_index"))
    # similar schools: the same encoded context, within the level of schooling
    feats = pd.DataFrame(model.encoder_.transform(X), columns=model.feature_names_,
                         index=table["school_id"].to_numpy())
    levels = similar_mod.school_levels(
        scope.set_index("school_id")["school_type"]).reindex(feats.index)
    sim = similar_mod.similar_schools(feats, levels, sy_now[["school_id", "quality_index",
                                                             "n_students"]],
                                      k=similar["k"], min_n=min_n)
    unranked = sim.ranks.set_index("school_id")["reason"]
    ranked_scope = scope.set_index("school_id").loc[feats.index].reset_index()
    reason = pd.Series(unranked.reindex(ranked_scope["school_id"]).to_numpy(),
                       index=ranked_scope.index)
    books.append(ledger.record(ranked_scope, reason.notna(), analysis="similar",
                               table="schools", reason=reason))
    now = next((sm for sm in summaries if sm["year"] == year), None)
    bands = idx.loc[idx["year"] == year, "social_band"].value_counts().sort_index()
    summary = {
        "index": {
            "method": index["method"], "band_edges": list(index["band_edges"]),
            "reporting_year": now, "years": summaries, "warnings": index_warnings,
            "variance_explained": None if now is None else now["variance_explained"],
            "bands": {str(int(b)): int(c) for b, c in bands.items()},
        },
        "quality_groups": {
            "method": quality_groups["method"], "n_groups": quality_groups["n_groups"],
            "cutoffs": list(quality_groups["cutoffs"]),
            "groups": described.reset_index(names="quality_group").to_dict("records"),
        },
        "clusters": {
            "method": clusters["method"], "k_requested": clusters["k"], "k": model.k_,
            "silhouette": model.silhouette_, "inertia": model.inertia_,
            "numeric": list(clusters["numeric"]), "categorical": list(clusters["categorical"]),
            "sizes": {str(c): int((model.labels_ == c).sum()) for c in range(1, model.k_ + 1)},
            "names": {lang: {str(c): str(v) for c, v in model.names_[lang].items()}
                      for lang in model.names_.columns},
            "stability_ari": None if stab is None else stab.ari,
            "stability": None if stab is None else stab.to_dict(),
            "n_boot": clusters["n_boot"],
        },
        "similar": similar_mod.summary(sim),
    }
    return ContextResult(idx, groups, table, model, stab, sim, summary, ledger.combine(books))


def run_context(root: str | Path = ".", *, year: int, min_n: int, index: Mapping[str, Any],
                quality_groups: Mapping[str, Any], clusters: Mapping[str, Any],
                similar: Mapping[str, Any], model_terms: Sequence[str] = ()) -> ContextResult:
    """Stage 02 on the processed files: :func:`context_stage`, then write its outputs.

    ``cluster_terms.parquet`` is what stages 03 and 04 read of the clusters: each school's
    cluster when ``cluster`` is one of the models' terms (``model_terms``, params.yaml
    ``ses_link.terms``), else no rows.  A clustering experiment (``dvc exp run -S
    clusters.k=6``) then leaves that file's bytes unchanged, and DVC re-runs only this stage
    and the report, not the models and flags that do not use the clusters.

    Data that cannot support the index or the clusters stop the run with an
    :class:`InputError` naming the parameter.  ``context.json`` holds the summaries the report
    shows (index loadings and variance explained, quality groups, clusters with names and
    stability, similar schools).
    """
    root = Path(root)
    res = context_stage(files.read(root, "schools"), files.read(root, "school_year"),
                        year=year, min_n=min_n, index=index, quality_groups=quality_groups,
                        clusters=clusters, similar=similar)
    files.write(res.index, root, "social_index")
    files.write(res.quality_groups, root, "quality_groups")
    files.write(res.clusters, root, "clusters")
    terms = res.clusters[["year", "school_id", "cluster"]]
    files.write(terms if "cluster" in model_terms else terms.iloc[:0], root, "cluster_terms")
    files.write(res.similar.ranks, root, "similar")
    files.write(res.similar.peers, root, "similar_peers")
    files.write(res.model.criterion_, root, "k_curve")
    files.write_ledger(res.ledger, root, STAGE)
    files.write_json(res.summary, root, "context_summary")
    return res


def run(root: str | Path, params: Mapping[str, Any]) -> ContextResult:
    """Stage 02 with a params.yaml-shaped dict: ``year``, ``min_n``, the ``index``,
    ``quality_groups``, ``clusters`` and ``similar`` sections and ``ses_link.terms``.

    Parameters
    ----------
    root : str or Path
        The project (or work) folder the processed files are under.
    params : mapping
        ``params.yaml`` as parsed (other sections are ignored).

    Returns
    -------
    ContextResult
        What :func:`run_context` returns.
    """
    return run_context(root, year=params["year"], min_n=params["min_n"],
                       index=params["index"], quality_groups=params["quality_groups"],
                       clusters=params["clusters"], similar=params["similar"],
                       model_terms=params["ses_link"]["terms"])
