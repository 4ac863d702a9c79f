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
from typing import TYPE_CHECKING, Any

import pandas as pd

from analysis import ledger
from analysis.config import PROCESSED
from analysis.errors import InputError
from analysis.outputs import write_json, write_table

if TYPE_CHECKING:  # each stage imports what it uses when it runs (see the note below)
    from analysis.context.clusters import ContextClusters
    from analysis.context.similar import SimilarResult
    from analysis.context.stability import Stability
    from analysis.flags.stage import FlagsResult
    from analysis.ingest import prepare
    from analysis.models import link

# A stage's kernel imports this module, so it imports only pandas and the shared helpers:
# each ``run_*`` imports its own libraries (stage 01 needs neither scikit-learn nor
# statsmodels nor matplotlib).  Import time is most of a regional stage's cost
# (docs/benchmarks.md); ``benchmarks/regional.py`` measures it.

#: Every processed file, by name (relative to the project root).
FILES: dict[str, Path] = {
    name: PROCESSED / f"{name}.parquet"
    for name in ("schools", "results", "school_year", "social_index", "quality_groups",
                 "clusters", "cluster_terms", "similar", "similar_peers", "students", "ses_sample", "estimates",
                 "ses_curve", "component_points", "flags", "shnor", "shnor_details",
                 "objectivity", "school_effects", "flag_cards", "objectivity_evidence",
                 "flag_changes")
}
FILES.update({
    "context_summary": PROCESSED / "context.json",
    "ses_link_summary": PROCESSED / "ses_link.json",
    "flags_summary": PROCESSED / "flags.json",
    "k_curve": PROCESSED / "plots" / "k_curve.csv",
    "gradient_points": PROCESSED / "plots" / "gradient.csv",
    "validation": PROCESSED / "validation.json",
    "metrics": PROCESSED / "metrics.json",
    "site": PROCESSED / "site",
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
    from analysis.ingest import io, prepare, validate
    from analysis.ingest.readers import ReadOptions

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
        students = io.read_tables(
            raw, ("students",), required=False,
            options=ReadOptions(sheet=sheet, header_row=header_row),
            mapping=io.find_mapping(raw, mapping_path), reports=reads, repairs=repairs,
            warnings=warnings)["students"]
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
    _write(prepare.tidy_students(students), root, "students")
    _write_ledger((out.ledger, out.accounting), root, "01_prepare")
    return out


def write_validation(root: Path, doc: Mapping[str, Any]) -> None:
    """The validation log as JSON (``data/processed/validation.json``).

    The page (``validation.html``) is rendered from it when the run publishes its report
    folder, or its failure note (:mod:`analysis.pipeline.nbrun`).
    """
    write_json(root / FILES["validation"], doc)


# --- 02 context: the two axes, clusters, similar schools ------------------------------------

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
    res = context_stage(read(root, "schools"), read(root, "school_year"), year=year,
                        min_n=min_n, index=index, quality_groups=quality_groups,
                        clusters=clusters, similar=similar)
    _write(res.index, root, "social_index")
    _write(res.quality_groups, root, "quality_groups")
    _write(res.clusters, root, "clusters")
    terms = res.clusters[["year", "school_id", "cluster"]]
    _write(terms if "cluster" in model_terms else terms.iloc[:0], root, "cluster_terms")
    _write(res.similar.ranks, root, "similar")
    _write(res.similar.peers, root, "similar_peers")
    _write(res.model.criterion_, root, "k_curve")
    _write_ledger(res.ledger, root, "02_context_clusters")
    _write_json(res.summary, root, "context_summary")
    return res


# --- 03 social status and results -----------------------------------------------------------

def run_ses_link(root: str | Path = ".", *, year: int, min_n: int,
                 ses_link: Mapping[str, Any], multilevel: Mapping[str, Any],
                 quality_procedures: Sequence[str], quality_subjects: Sequence[str],
                 quality_grades: Sequence[int], quality_formula: str = "good_share"
                 ) -> link.SesLinkResult:
    """Stage 03 on the processed files: :func:`analysis.models.link.ses_link_stage`, then
    write the gradient sample (with each school's expected quality and residual), the one
    table of estimates, the curve and component points for the figures, the ledger and the
    summary ``ses_link.json``.

    Fewer than ``ses_link.min_schools`` schools, or a social or quality index with no
    variation among them, stop the run with an :class:`InputError` that counts the schools
    left out by reason (:func:`analysis.models.sample.check_sample`).
    """
    from analysis.models import link

    root = Path(root)
    res = link.ses_link_stage(
        read(root, "schools"), read(root, "social_index"), read(root, "school_year"),
        read(root, "results"), read(root, "students"), read(root, "cluster_terms"), year=year,
        min_n=min_n, ses_link=ses_link, multilevel=multilevel, procedures=quality_procedures,
        subjects=quality_subjects, grades=quality_grades, formula=quality_formula)
    _write(res.sample, root, "ses_sample")
    _write(res.estimates, root, "estimates")
    _write(res.curve, root, "ses_curve")
    _write(res.component_points, root, "component_points")
    _write(res.sample[["school_id", "social_index", "quality_index", "fitted"]], root,
           "gradient_points")
    _write_ledger(res.ledger, root, "03_ses_link")
    _write_json(res.summary, root, "ses_link_summary")
    return res


# --- 04 flags -------------------------------------------------------------------------------

def run_flags(root: str | Path = ".", *, year: int, min_n: int, flags: Mapping[str, Any],
              ses_link: Mapping[str, Any], index: Mapping[str, Any],
              quality_procedures: Sequence[str], quality_subjects: Sequence[str],
              quality_grades: Sequence[int], quality_formula: str) -> FlagsResult:
    """Stage 04: school effects, resilience, typology, ШНСУ, risk zone, ШНОР, objectivity
    and the changes since last year (:func:`analysis.flags.stage.flags_stage`)."""
    from analysis.flags.stage import flags_stage

    root = Path(root)
    students = read(root, "students") if (root / FILES["students"]).exists() else None
    schools = read(root, "schools")
    res = flags_stage(
        schools, read(root, "results"), read(root, "social_index"), year=year,
        min_n=min_n, flags=flags, ses_link=ses_link, index_params=index,
        procedures=quality_procedures, subjects=quality_subjects, grades=quality_grades,
        formula=quality_formula, clusters=read(root, "cluster_terms"),
        quality_groups=read(root, "quality_groups"),
        students=students if students is not None and len(students) else None,
        school_year=read(root, "school_year"))
    # criterion 2 of ШНОР needs the previous year: schools new to the data are booked
    scope = schools.loc[schools["year"] == year]
    previous = schools.loc[schools["year"] == year - 1, "school_id"]
    _write_ledger(ledger.combine([
        ledger.record(scope, ~scope["school_id"].isin(previous), analysis="shnor_criterion_2",
                      table="schools", reason="one_year_only"), res.ledger]), root, "04_flags")
    for name, df in (("flags", res.flags), ("school_effects", res.effects),
                     ("flag_cards", res.cards), ("shnor", res.shnor),
                     ("shnor_details", res.shnor_details), ("objectivity", res.objectivity),
                     ("objectivity_evidence", res.objectivity_evidence),
                     ("flag_changes", res.changes)):
        _write(df, root, name)
    _write_json(res.summary, root, "flags_summary")
    return res


# --- 05 report ------------------------------------------------------------------------------

@dataclass
class ReportData:
    """Everything the report shows, read from the processed files."""

    year: int
    schools: pd.DataFrame
    results: pd.DataFrame
    school_year: pd.DataFrame
    index: pd.DataFrame
    quality_groups: pd.DataFrame
    clusters: pd.DataFrame
    similar: pd.DataFrame
    similar_peers: pd.DataFrame
    sample: pd.DataFrame
    flags: pd.DataFrame
    shnor: pd.DataFrame
    shnor_details: pd.DataFrame
    objectivity: pd.DataFrame
    ledger: pd.DataFrame
    accounting: pd.DataFrame
    context: dict[str, Any]
    gradient: dict[str, Any]
    validation: dict[str, Any]
    estimates: pd.DataFrame
    curve: pd.DataFrame
    component_points: pd.DataFrame
    effects: pd.DataFrame
    cards: pd.DataFrame
    objectivity_evidence: pd.DataFrame
    changes: pd.DataFrame
    flags_summary: dict[str, Any]

    @property
    def schools_year(self) -> pd.DataFrame:
        """Schools of the reporting year."""
        return self.schools.loc[self.schools["year"] == self.year]


def load_report_data(root: str | Path = ".", *, year: int) -> ReportData:
    names = ("schools", "results", "school_year", "social_index", "quality_groups", "clusters",
             "similar", "similar_peers", "ses_sample", "flags", "shnor", "shnor_details",
             "objectivity")
    t = {n: read(root, n) for n in names}
    led, acc = read_ledger(root)
    return ReportData(
        year, t["schools"], t["results"], t["school_year"], t["social_index"],
        t["quality_groups"], t["clusters"], t["similar"], t["similar_peers"], t["ses_sample"],
        t["flags"], t["shnor"], t["shnor_details"], t["objectivity"], led, acc,
        read_json(root, "context_summary"), read_json(root, "ses_link_summary"),
        read_json(root, "validation"), read(root, "estimates"), read(root, "ses_curve"),
        read(root, "component_points"), read(root, "school_effects"), read(root, "flag_cards"),
        read(root, "objectivity_evidence"), read(root, "flag_changes"),
        read_json(root, "flags_summary"))


def run_all(root: str | Path, params: Mapping[str, Any]) -> ReportData:
    """Stages 01-04 as plain functions with a ``params.yaml``-shaped dict (no notebooks),
    then the report's data, ``metrics.json`` and the published site's files (downloads,
    municipal reports, index: :func:`analysis.publish.site.write_site`): the pipeline's
    logic in one call, for tests and scripts.

    Each section's keys are the stage function's keyword arguments.
    """
    year = params["year"]
    run_prepare(root, year=year, **params["prepare"])
    run_context(root, year=year, min_n=params["min_n"], index=params["index"],
                quality_groups=params["quality_groups"], clusters=params["clusters"],
                similar=params["similar"], model_terms=params["ses_link"]["terms"])
    prep = params["prepare"]
    run_ses_link(root, year=year, min_n=params["min_n"], ses_link=params["ses_link"],
                 multilevel=params["multilevel"], quality_procedures=prep["quality_procedures"],
                 quality_subjects=prep["quality_subjects"], quality_grades=prep["quality_grades"],
                 quality_formula=prep["quality_formula"])
    run_flags(root, year=year, min_n=params["min_n"], flags=params["flags"],
              ses_link=params["ses_link"], index=params["index"],
              quality_procedures=prep["quality_procedures"],
              quality_subjects=prep["quality_subjects"], quality_grades=prep["quality_grades"],
              quality_formula=prep["quality_formula"])
    from analysis.config import flatten
    from analysis.publish import report, site

    data = load_report_data(root, year=year)
    write_json(Path(root) / FILES["metrics"], report.build_metrics(data, params))

    keys = [k for k in ("year", "min_n", "lang", "prepare", "index", "quality_groups",
                        "clusters", "similar", "ses_link", "multilevel", "flags", "report")
            if k in params]
    site.write_site(data, flatten(params, keys), Path(root) / FILES["site"])
    return data
