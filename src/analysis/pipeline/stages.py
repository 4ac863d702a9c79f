"""The pipeline stages as functions: read inputs, compute, write outputs.

Each ``run_*`` function is what one notebook calls; its keyword arguments are the
notebook's parameters (params.yaml), and every file it writes is an ``outs`` entry of its
stage in ``dvc.yaml`` (see :data:`FILES`).  Keeping them here lets tests run a slice of the
pipeline in memory and on disk without Jupyter.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score

from analysis import flags, ledger
from analysis.config import PROCESSED
from analysis.context.clusters import ContextClusters, context_features, distinct_rows
from analysis.context.index import social_index_by_year
from analysis.errors import InputError
from analysis.ingest import io, prepare, schema, validate
from analysis.ingest.readers import ReadOptions
from analysis.models import gradient
from analysis.outputs import write_json, write_table
from analysis.publish import report

#: Every processed file, by name (relative to the project root).
FILES: dict[str, Path] = {
    name: PROCESSED / f"{name}.parquet"
    for name in ("schools", "results", "school_year", "social_index", "clusters", "ses_sample",
                 "flags", "shnor", "shnor_details", "objectivity")
}
FILES.update({
    "clusters_summary": PROCESSED / "clusters.json",
    "ses_link_summary": PROCESSED / "ses_link.json",
    "kmeans_k": PROCESSED / "plots" / "kmeans_k.csv",
    "gradient_points": PROCESSED / "plots" / "gradient.csv",
    "validation": PROCESSED / "validation.json",
    "metrics": PROCESSED / "metrics.json",
})
LEDGER_DIR = PROCESSED / "ledger"


def _write(df: pd.DataFrame, root: Path, name: str) -> None:
    write_table(df, root / FILES[name])


def _write_json(obj: Mapping[str, Any], root: Path, name: str) -> None:
    write_json(root / FILES[name], obj)


def _write_ledger(book: tuple[pd.DataFrame, pd.DataFrame], root: Path, stage: str) -> None:
    write_table(book[0], root / LEDGER_DIR / f"{stage}.parquet")
    write_table(book[1], root / LEDGER_DIR / f"{stage}_accounting.parquet")


def read(root: str | Path, name: str) -> pd.DataFrame:
    """Read a processed table by its :data:`FILES` name."""
    path = Path(root) / FILES[name]
    return pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)


def read_json(root: str | Path, name: str) -> dict[str, Any]:
    return json.loads((Path(root) / FILES[name]).read_text(encoding="utf-8"))


def read_ledger(root: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """All stages' ledgers and accounting tables, concatenated."""
    folder = Path(root) / LEDGER_DIR
    parts = [(pd.read_parquet(p), pd.read_parquet(p.with_name(p.stem + "_accounting.parquet")))
             for p in sorted(folder.glob("*.parquet")) if not p.stem.endswith("_accounting")]
    return ledger.combine(parts)


# --- 01 prepare -----------------------------------------------------------------------------

def run_prepare(root: str | Path = ".", *, year: int, raw_dir: str, mapping: str | None = None,
                sheet: str | int | None = None, header_row: int | None = None,
                quality_procedures: Sequence[str], quality_subjects: Sequence[str],
                quality_grades: Sequence[int], quality_formula: str = "good_share"
                ) -> prepare.Prepared:
    """Read ``raw_dir`` (through ``mapping``), validate, tidy, compute the quality index.

    Whether the input passes or not, the validation log (files read, repairs, warnings,
    errors) is written to ``data/processed/validation.json``; then an :class:`InputError`
    is raised again.  The page is rendered from it when the run publishes.
    """
    root = Path(root)
    raw = root / raw_dir  # an absolute path stays as it is
    mapping_path = None if mapping is None else root / mapping
    reads: list = []
    repairs: list[str] = []
    warnings: list[str] = []
    try:
        tables = io.read_tables(
            raw, year=year, options=ReadOptions(sheet=sheet, header_row=header_row),
            mapping=io.find_mapping(raw, mapping_path), reports=reads, repairs=repairs,
            warnings=warnings)
        out = prepare.prepare(tables["schools"], tables["results"], year=year,
                              procedures=quality_procedures, subjects=quality_subjects,
                              grades=quality_grades, formula=quality_formula, validated=True)
    except InputError as exc:
        write_validation(root, validate.to_json(exc, reads, repairs=repairs, warnings=warnings))
        raise
    write_validation(root, validate.to_json(
        validate.ValidationResult(out.schools, out.results), reads, repairs=repairs,
        warnings=warnings))
    _write(out.schools, root, "schools")
    _write(out.results, root, "results")
    _write(out.school_year, root, "school_year")
    _write_ledger((out.ledger, out.accounting), root, "01_prepare")
    return out


def write_validation(root: Path, doc: Mapping[str, Any]) -> None:
    """The validation log as JSON (``data/processed/validation.json``).

    The page (``validation.html``) is rendered from it when the run publishes its report
    folder, or its failure note (:mod:`analysis.pipeline.nbrun`).
    """
    write_json(root / FILES["validation"], doc)


# --- 02 context and clusters ----------------------------------------------------------------

@dataclass
class ContextResult:
    index: pd.DataFrame
    clusters: pd.DataFrame
    model: ContextClusters
    k_curve: pd.DataFrame


def k_curve(X: pd.DataFrame, ks: Sequence[int], seed: int, n_init: int = 10) -> pd.DataFrame:
    """Inertia and silhouette of k-means for each k (for choosing k; a DVC plot).

    Parameters
    ----------
    X : DataFrame, shape (n_schools, n_features)
        Context features (standardised here; a constant feature stays 0).
    ks : sequence of int
        Candidate numbers of clusters; only those the data supports are evaluated:
        ``2 <= k < d``, ``d`` the number of distinct rows (so also ``k < n_schools``).

    Returns
    -------
    DataFrame, one row per evaluated k (possibly none)
        ``k``, ``inertia`` (within-cluster sum of squares, standardised units) and
        ``silhouette`` (-1..1; NaN in the table where undefined).
    """
    z = ((X - X.mean()) / X.std(ddof=0).replace(0.0, 1.0)).to_numpy()
    distinct = distinct_rows(z)
    rows = []
    for k in ks:
        if not 2 <= k < distinct:
            continue
        km = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(z)
        found = len(set(km.labels_))
        rows.append({"k": k, "inertia": km.inertia_, "silhouette": (
            float(silhouette_score(z, km.labels_)) if 2 <= found < len(z) else None)})
    return pd.DataFrame(rows, columns=["k", "inertia", "silhouette"])


def run_context(root: str | Path = ".", *, year: int, indicators: Mapping[str, int],
                method: str, min_indicators: int, features: Sequence[str], k: int,
                n_init: int, seed: int) -> ContextResult:
    """Social index for every school-year; k-means clusters of the reporting year's schools.

    Indicators left out of a year's index (no variance, no values) are listed in
    ``clusters.json`` under ``index_warnings`` (records ``{"year", "indicator",
    "reason"}``; empty list when none) for the report.  Data that cannot support the index
    or ``k`` clusters stop the run with an :class:`InputError` naming the parameter.
    """
    root = Path(root)
    schools = read(root, "schools")
    index_warnings: list[dict] = []
    index, led, acc = social_index_by_year(schools, indicators, method, min_indicators,
                                                   index_warnings=index_warnings)
    X = context_features(schools.loc[schools["year"] == year], index, features)
    model = ContextClusters(k=k, n_init=n_init, seed=seed).fit(X)
    clusters = X.reset_index()
    clusters.insert(2, "cluster", model.labels_)
    scope = schools.loc[schools["year"] == year]
    clustered = pd.MultiIndex.from_frame(scope[list(schema.SCHOOL_KEY)]).isin(
        pd.MultiIndex.from_frame(clusters[list(schema.SCHOOL_KEY)]))
    book_c = ledger.record(scope, pd.Series(~clustered, index=scope.index),
                           analysis="clusters", table="schools", reason="no_social_index")
    curve = k_curve(X, range(2, 11), seed)
    _write(index, root, "social_index")
    _write(clusters, root, "clusters")
    _write(curve, root, "kmeans_k")
    _write_ledger(ledger.combine([(led, acc), book_c]), root, "02_context_clusters")
    _write_json({
        "k": k, "silhouette": model.silhouette_, "inertia": model.inertia_,
        "sizes": {str(c): int((model.labels_ == c).sum()) for c in range(1, k + 1)},
        "features": list(features), "index_method": method, "index_warnings": index_warnings,
    }, root, "clusters_summary")
    return ContextResult(index, clusters, model, curve)


# --- 03 social status and results -----------------------------------------------------------

def run_ses_link(root: str | Path = ".", *, year: int, min_n: int, quadratic: bool,
                 cov_type: str, min_schools: int = gradient.MIN_SCHOOLS,
                 cluster_term: bool = False) -> tuple[gradient.Gradient, pd.DataFrame]:
    """Fit the gradient on the reporting year's schools with at least ``min_n`` students.

    With ``cluster_term`` the expected quality also has a term per context cluster
    (stage 02), so a school is compared with what its index predicts within its cluster.

    Fewer than ``min_schools`` such schools, or a social or quality index with no variation
    among them, stop the run with an :class:`InputError` that counts the schools left out
    by reason (:func:`analysis.models.gradient.check_sample`).
    """
    root = Path(root)
    sample, book = gradient.analysis_sample(
        read(root, "schools"), read(root, "social_index"), read(root, "school_year"),
        year=year, min_n=min_n)
    gradient.check_sample(sample, min_schools=min_schools, year=year, min_n=min_n,
                          excluded=book[0]["reason"].value_counts(sort=False).to_dict())
    groups = None
    if cluster_term:
        sample = sample.merge(read(root, "clusters")[["school_id", "cluster"]],
                              on="school_id", how="left")
        groups = sample["cluster"]
    grad, fitted = gradient.fit_gradient(sample, quadratic=quadratic, cov_type=cov_type,
                                         min_schools=min_schools, groups=groups)
    sample = pd.concat([sample, fitted], axis=1)
    _write(sample, root, "ses_sample")
    _write(sample[["school_id", "social_index", "quality_index", "fitted"]], root,
           "gradient_points")
    _write_ledger(book, root, "03_ses_link")
    _write_json(grad.to_dict(), root, "ses_link_summary")
    return grad, sample


# --- 04 flags -------------------------------------------------------------------------------

@dataclass
class FlagsResult:
    flags: pd.DataFrame
    shnor: pd.DataFrame
    shnor_details: pd.DataFrame
    objectivity: pd.DataFrame


def run_flags(root: str | Path = ".", *, year: int, low_context_quantile: float, z: float,
              min_effect: float, objectivity_threshold: float, shnor_threshold: float,
              shnor_procedures: Sequence[str], shnor_min_participants: int) -> FlagsResult:
    """Resilience, typology, ШНСУ, objectivity screen and the ШНОР rule."""
    root = Path(root)
    results, schools = read(root, "results"), read(root, "schools")
    sample = read(root, "ses_sample")
    obj = flags.objectivity_gap(results, year, z=z, threshold=objectivity_threshold)
    table = flags.school_flags(sample, sample[["fitted", "residual"]], obj,
                               low_context_quantile=low_context_quantile, z=z,
                               min_effect=min_effect)
    table["low_context_cut"] = table.attrs.pop("low_context_cut")
    rule = dict(threshold=shnor_threshold, procedures=shnor_procedures,
                min_participants=shnor_min_participants)
    sh = flags.shnor(results, schools, year, **rule)
    details = flags.shnor_details(results, sh, year, **rule)
    # criterion 2 needs the previous year: schools new to the data are booked, not dropped
    scope = schools.loc[schools["year"] == year]
    previous = schools.loc[schools["year"] == year - 1, "school_id"]
    _write_ledger(ledger.record(scope, ~scope["school_id"].isin(previous),
                                analysis="shnor_criterion_2", table="schools",
                                reason="one_year_only"), root, "04_flags")
    _write(table, root, "flags")
    _write(sh, root, "shnor")
    _write(details, root, "shnor_details")
    _write(obj, root, "objectivity")
    return FlagsResult(table, sh, details, obj)


# --- 05 report ------------------------------------------------------------------------------

@dataclass
class ReportData:
    """Everything the report shows, read from the processed files."""

    year: int
    schools: pd.DataFrame
    results: pd.DataFrame
    school_year: pd.DataFrame
    index: pd.DataFrame
    clusters: pd.DataFrame
    sample: pd.DataFrame
    flags: pd.DataFrame
    shnor: pd.DataFrame
    shnor_details: pd.DataFrame
    objectivity: pd.DataFrame
    ledger: pd.DataFrame
    accounting: pd.DataFrame
    clusters_summary: dict[str, Any]
    gradient: dict[str, Any]
    validation: dict[str, Any]

    @property
    def schools_year(self) -> pd.DataFrame:
        """Schools of the reporting year."""
        return self.schools.loc[self.schools["year"] == self.year]


def load_report_data(root: str | Path = ".", *, year: int) -> ReportData:
    names = ("schools", "results", "school_year", "social_index", "clusters", "ses_sample",
             "flags", "shnor", "shnor_details", "objectivity")
    t = {n: read(root, n) for n in names}
    led, acc = read_ledger(root)
    return ReportData(
        year, t["schools"], t["results"], t["school_year"], t["social_index"], t["clusters"],
        t["ses_sample"], t["flags"], t["shnor"], t["shnor_details"], t["objectivity"], led, acc,
        read_json(root, "clusters_summary"), read_json(root, "ses_link_summary"),
        read_json(root, "validation"))


def run_all(root: str | Path, params: Mapping[str, Any]) -> ReportData:
    """Stages 01-04 as plain functions with a ``params.yaml``-shaped dict (no notebooks),
    then the report's data and ``metrics.json``: the pipeline's logic in one call, for
    tests and scripts.

    Each section's keys are the stage function's keyword arguments.
    """
    year = params["year"]
    run_prepare(root, year=year, **params["prepare"])
    run_context(root, year=year, **params["index"], **params["clusters"])
    run_ses_link(root, year=year, min_n=params["min_n"], **params["ses_link"])
    run_flags(root, year=year, **params["flags"])
    data = load_report_data(root, year=year)
    write_json(Path(root) / FILES["metrics"], report.build_metrics(data, params))
    return data
