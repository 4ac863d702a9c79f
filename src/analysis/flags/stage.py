"""Stage 04 in memory: every flag of the reporting year, from the processed tables.

:func:`flags_stage` returns what the stage writes (see :class:`FlagsResult`).  The steps:

1. school effects (:mod:`analysis.flags.effects`) per outcome and year, shrunk
   empirical-Bayes, combined over the years and outcomes;
2. resilience (:mod:`analysis.flags.rules`): low context, an effect above expected, held
   in at least ``min_years`` of the last years, no sign of non-objectivity; re-estimated
   under the robustness specifications ("held in X of Y");
3. the typology, ШНСУ on the anchored index, the risk zone;
4. the ШНОР rule, exact and probabilistic (:mod:`analysis.flags.shnor`);
5. objectivity screens (:mod:`analysis.flags.objectivity`);
6. the same lists for the previous year, and what changed.

:func:`run_flags` is what ``notebooks/04_flags.ipynb`` calls: it reads the files of stages
01 and 02, runs :func:`flags_stage` and writes the outputs of ``04_flags`` in ``dvc.yaml``
(:data:`analysis.files.FILES`).  :func:`run` is the same with a params.yaml-shaped dict.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis import files, ledger
from analysis.context.index import social_index_by_year
from analysis.flags import effects, objectivity, rules, shnor
from analysis.models import expected

#: Lists whose changes since last year are reported, and the criteria that explain them.
LISTS = ("resilient", "shnor", "shnsu", "risk_zone")
CRITERIA = {
    "resilient": ("low_context", "direction", "years_above", "procedures_agree",
                  "objectivity_flag"),
    "shnor": ("n_low_year", "n_low_prev"),
    "shnsu": ("shnsu",),
    "risk_zone": ("declining", "direction", "low_context"),
}
#: Robustness specifications, in the report's order.
SPECS = ("default", "context_measure", "multilevel", "terms", "context_cut", "interval_99")
#: The ``dvc.yaml`` stage this module runs (its ledger's name).
STAGE = "04_flags"


@dataclass
class FlagsResult:
    """What stage 04 computes."""

    flags: pd.DataFrame        # one row per school of the reporting year
    effects: pd.DataFrame      # school x outcome (year = NA: pooled) and x year
    cards: pd.DataFrame        # reporting year, school x outcome: the expected value by factor
    shnor: pd.DataFrame        # one row per school of the year (exact + probabilistic)
    shnor_details: pd.DataFrame  # counted procedures with p_low
    objectivity: pd.DataFrame
    objectivity_evidence: pd.DataFrame
    changes: pd.DataFrame
    summary: dict[str, Any]
    ledger: tuple[pd.DataFrame, pd.DataFrame]


def _context(schools: pd.DataFrame, index: pd.DataFrame) -> pd.DataFrame:
    return schools[["year", "school_id", "settlement_type", "school_type"]].merge(
        index[["year", "school_id", "social_index"]], on=["year", "school_id"], how="left")


def _other_index(schools: pd.DataFrame, index_params: Mapping[str, Any]) -> pd.DataFrame:
    """The index by the other method (pca <-> mean_z), for the robustness check."""
    other = "mean_z" if index_params["method"] == "pca" else "pca"
    idx, _, _ = social_index_by_year(
        schools, index_params["indicators"], other, index_params["min_indicators"],
        impute=index_params["impute"])
    return idx


def _school_rows(base: pd.DataFrame, est: dict[str, Any], p: Mapping[str, Any], *,
                 year: int, index_col: str = "context_index") -> pd.DataFrame:
    """Effect, direction, years held, low context and the resilience criteria per school."""
    s = est["school"].set_index("school_id")
    out = base.copy()
    for c in ("estimate", "sd", "low", "high", "p_above"):
        out[f"effect{'' if c == 'estimate' else '_' + c}"] = out["school_id"].map(s[c])
    out["direction"] = rules.direction(out["effect_low"], out["effect_high"],
                                       float(p["min_effect"]))
    held = rules.years_held(est["school_yearly"], year=year, n_years=int(p["n_years"]),
                            min_effect=0.0)
    for c in held.columns:
        out[c] = out["school_id"].map(held[c])
    out[["years_assessed", "years_above", "years_below"]] = out[
        ["years_assessed", "years_above", "years_below"]].fillna(0).astype("int64")
    out["years_above_list"] = out["years_above_list"].fillna("")
    # every procedure assessed agrees: its own effect's interval lies above 0 (ВПР results
    # that ОГЭ does not support do not make a school resilient)
    pooled = est["pooled"]
    agree = (pooled["low"] > 0).groupby(pooled["school_id"]).all()
    out["procedures_agree"] = out["school_id"].map(agree).astype("boolean").fillna(
        False).astype(bool)
    out["low_context"], cut = rules.low_context(
        out[index_col], method=p["low_context"], threshold=float(p["low_context_threshold"]),
        quantile=float(p["low_context_quantile"]))
    out.attrs["low_context_cut"] = cut
    return out


def _resilient(rows: pd.DataFrame, p: Mapping[str, Any], *, agree: bool = True) -> pd.Series:
    """Low context, above expected (or P(effect > 0) high enough), held over the years and,
    with ``agree``, above expected in every procedure; before the objectivity screen."""
    p_thr = p.get("p_above")
    out = rules.resilient(rows["low_context"], rows["direction"], rows["years_above"],
                          min_years=int(p["_min_years"]), p_above=rows["effect_p_above"],
                          p_threshold=None if p_thr is None else float(p_thr))
    return out & rows["procedures_agree"] if agree else out


@dataclass
class _Inputs:
    """What every specification of stage 04 shares."""

    schools: pd.DataFrame
    results: pd.DataFrame
    passport: pd.DataFrame     # the social well-being index of stage 02
    measure: pd.DataFrame      # the context measure (effects.context_measure)
    base: pd.DataFrame         # the reporting year's schools
    p: dict[str, Any]          # params.yaml flags, with _min_years
    year: int
    years: list[int]
    min_n: int
    comp: dict[str, Any]       # the quality components (procedures, subjects, grades, formula)
    clusters: pd.DataFrame | None


def _robustness(x: _Inputs, spec: effects.EffectSpec, est: dict[str, Any],
                panel: pd.DataFrame, index_params: Mapping[str, Any]) -> pd.DataFrame:
    """Would-be resilient (before the objectivity screen) under each of :data:`SPECS`.

    - context_measure: the index when the students' status is the measure, else the index
      by the other method (mean_z <-> pca);
    - multilevel: with (without) a random intercept per municipality;
    - terms: without (with) settlement and school type;
    - context_cut: the relative cut (bottom quarter) instead of the absolute one, or back;
    - interval_99: 99% intervals.
    """
    p, year = x.p, x.year
    held = {"default": _resilient(_school_rows(x.base, est, p, year=year), p)}
    alt = (x.passport if (x.measure["context_source"] == "students").any()
           else _other_index(x.schools, index_params))
    no_terms = () if spec.model.terms else ("settlement_type", "school_type")
    variants = {
        "context_measure": (effects.outcome_panel(x.results, x.schools, alt, years=x.years,
                                                  clusters=x.clusters, **x.comp), spec, alt),
        "multilevel": (panel, dataclasses.replace(spec, multilevel=not spec.multilevel),
                       x.measure),
        "terms": (panel, dataclasses.replace(spec, model=dataclasses.replace(
            spec.model, terms=no_terms)), x.measure),
    }
    for name, (pan, sp, idx) in variants.items():
        e = effects.estimate_effects(pan, sp, year=year, min_n=x.min_n)
        b = x.base.drop(columns="context_index").merge(
            idx.loc[idx["year"] == year, ["school_id", "social_index"]].rename(
                columns={"social_index": "context_index"}), on="school_id", how="left")
        held[name] = _resilient(_school_rows(b, e, p, year=year), p)
    other = "quantile" if p["low_context"] == "absolute" else "absolute"
    held["context_cut"] = _resilient(_school_rows(x.base, est, {**p, "low_context": other},
                                                  year=year), p)
    z99 = rules.p_to_z(0.99)
    e99 = {**est, "school": effects.intervals(est["school"][["school_id", "estimate", "sd"]],
                                              z99),
           "school_yearly": effects.intervals(
               est["school_yearly"][["school_id", "year", "estimate", "sd"]], z99)}
    held["interval_99"] = _resilient(_school_rows(x.base, e99, p, year=year), p)
    return pd.DataFrame({k: np.asarray(held[k], dtype=bool) for k in SPECS})


def _specs_columns(table: pd.DataFrame) -> pd.DataFrame:
    """``specs_held``, ``specs_total`` and ``specs_failed`` (names, comma-separated)."""
    failed = pd.DataFrame({c: np.where(table[c], "", c) for c in SPECS})
    text = (failed.add(",").sum(axis=1).str.replace(r",+", ",", regex=True).str.strip(",")
            .str.replace(",", ", "))
    return pd.DataFrame({"specs_held": table.sum(axis=1).astype("int64"),
                         "specs_total": len(SPECS), "specs_failed": text.to_numpy()})


def _shnsu(x: _Inputs, rows: pd.DataFrame, index_params: Mapping[str, Any]
           ) -> tuple[pd.DataFrame, float, int]:
    """ШНСУ on the index anchored to the reference year (all schools with an index)."""
    p = x.p
    ref_year = int(p.get("shnsu_reference_year") or min(x.years))
    anchored = rules.anchored_index(
        x.schools.loc[x.schools["year"] <= x.year], index_params["indicators"],
        method=index_params["method"], min_indicators=index_params["min_indicators"],
        weights=index_params.get("weights"), impute=index_params["impute"],
        reference_year=ref_year)
    now = anchored.loc[anchored["year"] == x.year].set_index("school_id")["anchored_index"]
    a = rows["school_id"].map(now)
    flag, cut = rules.shnsu(a, method=p["shnsu_method"], threshold=float(p["shnsu_threshold"]),
                            quantile=float(p["shnsu_quantile"]))
    return pd.DataFrame({"anchored_index": a, "shnsu": flag}), cut, ref_year


def _risk(x: _Inputs, rows: pd.DataFrame, est: dict[str, Any]) -> pd.DataFrame:
    """The risk zone: a decline beyond noise, or low context and below expected."""
    p = x.p
    dec = rules.decline(est["residuals"], est["components"], year=x.year,
                        n_years=int(p["n_years"]), z=float(p["z"]),
                        min_drop=float(p["decline_min"]))
    declining = rows["school_id"].map(dec["declining"]).astype("boolean").fillna(False)
    low_below = rows["low_context"] & rows["direction"].eq("below")
    return pd.DataFrame({"trend": rows["school_id"].map(dec["trend"]),
                         "declining": declining.astype(bool), "risk_low_below": low_below,
                         "risk_zone": declining.astype(bool) | low_below})


def _typology(x: _Inputs, rows: pd.DataFrame,
              quality_groups: pd.DataFrame | None) -> np.ndarray:
    p = x.p
    qg = pd.Series(pd.NA, index=rows.index)
    if quality_groups is not None and "quality_group" in quality_groups:
        g = quality_groups.loc[quality_groups["year"] == x.year].set_index("school_id")
        qg = rows["school_id"].map(g["quality_group"])
    perf = rules.performance_axis(rows["direction"], qg, axis=p["typology_axis"],
                                  high_group=int(p["typology_high_group"]),
                                  low_group=int(p["typology_low_group"]))
    return rules.typology(rows["low_context"], perf, rows["resilient"], rows["needs_review"])


def _base(schools: pd.DataFrame, passport: pd.DataFrame, measure: pd.DataFrame,
          school_year: pd.DataFrame | None, year: int) -> pd.DataFrame:
    """The reporting year's schools with the index, the context measure, the quality index."""
    key = ["year", "school_id"]
    now = schools.loc[schools["year"] == year]
    base = now[[*key, "school_name", "municipality", "school_type", "settlement_type"]].merge(
        passport[[*key, "social_index"]], on=key, how="left").merge(
        measure.rename(columns={"social_index": "context_index"})[
            [*key, "context_index", "context_source", "context_n"]], on=key, how="left")
    base["context_source"] = base["context_source"].fillna("index")
    base = base.sort_values("school_id", kind="stable", ignore_index=True)
    if school_year is not None:
        sy = school_year.loc[school_year["year"] == year, ["school_id", "quality_index",
                                                          "n_students"]]
        base = base.merge(sy, on="school_id", how="left")
    return base


def flags_stage(schools: pd.DataFrame, results: pd.DataFrame, index: pd.DataFrame, *,
                year: int, min_n: int, flags: Mapping[str, Any], ses_link: Mapping[str, Any],
                index_params: Mapping[str, Any], procedures: Sequence[str],
                subjects: Sequence[str], grades: Sequence[int], formula: str,
                clusters: pd.DataFrame | None = None,
                quality_groups: pd.DataFrame | None = None,
                students: pd.DataFrame | None = None, school_year: pd.DataFrame | None = None,
                previous: bool = True) -> FlagsResult:
    """Stage 04 on DataFrames; see the module docstring.

    Parameters
    ----------
    schools, results, index : the processed schools, results and social index (stage 02)
    flags, ses_link, index_params : params.yaml's ``flags``, ``ses_link`` and ``index``
    procedures, subjects, grades, formula : the quality index's components (``prepare``)
    clusters, quality_groups, students, school_year : optional processed tables
    previous : also compute last year's lists and what changed (and the robustness
        specifications, which only the reporting year's lists show)
    """
    spec = effects.spec_from_params(expected.ExpectedSpec.from_params(ses_link), flags)
    years = sorted(int(y) for y in schools["year"].unique() if y <= year)
    # a region with fewer years than min_years: the flag needs every year it has (stated)
    window = [y for y in years if y > year - spec.n_years]
    p = {**flags, "_min_years": min(int(flags["min_years"]), len(window))}
    comp = dict(procedures=procedures, subjects=subjects, grades=grades, formula=formula)
    measure = effects.context_measure(index, students, how=str(p.get("context", "auto")))
    x = _Inputs(schools, results, index, measure, _base(schools, index, measure, school_year,
                                                         year),
                p, year, years, min_n, comp,
                clusters if "cluster" in spec.model.terms else None)
    panel = effects.outcome_panel(results, schools, measure, years=years, clusters=x.clusters,
                                  **comp)
    est = effects.estimate_effects(panel, spec, year=year, min_n=min_n)
    rows = _school_rows(x.base, est, p, year=year)
    ctx = _context(schools, index)

    obj, evidence = objectivity.objectivity_screens(
        results, ctx, students, year, min_n=min_n, z=float(p["z"]),
        threshold=float(p["objectivity_threshold"]),
        threshold_top=float(p["objectivity_top_threshold"]),
        threshold_heap=float(p["objectivity_heap_threshold"]))
    objf = rows["school_id"].map(obj.set_index("school_id")["objectivity_flag"]).astype(
        "boolean").fillna(False).astype(bool)
    rows["objectivity_flag"] = objf

    # resilience; a would-be resilient school with an objectivity signal, or whose
    # procedures disagree (ВПР above expected, ОГЭ not), needs review
    would = _resilient(rows, p, agree=False)
    rows["resilient"] = would & rows["procedures_agree"] & ~objf
    rows["needs_review"] = would & (objf | ~rows["procedures_agree"])
    # an above-expected result with a sign of non-objectivity is not published as above
    rows["direction"] = rows["direction"].mask(objf & rows["direction"].eq("above"), "review")
    quality = rows["quality_index"].where(rows["n_students"] >= min_n) \
        if "quality_index" in rows else pd.Series(np.nan, index=rows.index)
    quad = rules.quadrant(rows["context_index"], quality)
    rows["quadrant"] = quad & ~objf
    if p["method"] == "quadrant":
        rows["resilient"], rows["needs_review"] = quad & ~objf, quad & objf
    # last year's lists (previous=False) need no robustness: every specification = default
    held = (_robustness(x, spec, est, panel, index_params) if previous else
            pd.DataFrame({k: _resilient(rows, p).to_numpy() for k in SPECS}))
    rows = pd.concat([rows, _specs_columns(held).set_index(rows.index)], axis=1)
    rows["typology"] = _typology(x, rows, quality_groups)
    shnsu_cols, shnsu_cut, ref_year = _shnsu(x, rows, index_params)
    rows = pd.concat([rows, shnsu_cols, _risk(x, rows, est)], axis=1)

    sh_detail, sh = shnor.shnor_probabilistic(
        results, ctx, year, threshold=float(p["shnor_threshold"]),
        procedures=list(p["shnor_procedures"]),
        min_participants=int(p["shnor_min_participants"]), min_n=min_n,
        sure=float(p["shnor_sure"]))
    rows = rows.merge(sh[["school_id", "shnor", "n_low_year", "n_low_prev", "label",
                          "p_rule"]].rename(columns={"label": "shnor_label"}),
                      on="school_id", how="left")
    rows = rows.fillna({"n_low_year": 0, "n_low_prev": 0, "shnor_label": "", "p_rule": 0.0})
    rows["shnor"] = rows["shnor"].astype("boolean").fillna(False).astype(bool)
    rows[["n_low_year", "n_low_prev"]] = rows[["n_low_year", "n_low_prev"]].astype("int64")

    summary = {
        "year": year, "context": {k: int(v) for k, v in
                                  x.base["context_source"].value_counts().sort_index().items()},
        "spec": {"terms": list(spec.model.terms), "multilevel": spec.multilevel,
                 "weights": spec.weights, "n_years": spec.n_years, "z": spec.z},
        "components": est["components"].to_dict("records"),
        "low_context_cut": rows.attrs.get("low_context_cut"),
        "shnsu_cut": shnsu_cut, "shnsu_reference_year": ref_year,
        "specs": list(SPECS), "years": window, "min_years": p["_min_years"],
        "spec_counts": {k: int(held[k].sum()) for k in SPECS},
    }
    changes = pd.DataFrame(columns=["school_id", "list", "change", "changed"])
    if previous and year - 1 in years:
        prev = flags_stage(schools, results, index, year=year - 1, min_n=min_n, flags=flags,
                           ses_link=ses_link, index_params=index_params, clusters=clusters,
                           quality_groups=quality_groups, students=students,
                           school_year=school_year, previous=False, **comp)
        # last year's decline needs n_years years before it: without them the risk zone
        # of last year is not comparable, and its changes are not listed (stated)
        short = len(prev.summary["years"]) < spec.n_years
        lists = [k for k in LISTS if not (short and k == "risk_zone")]
        keep = list(dict.fromkeys(["school_id", *lists,
                                   *(c for k in lists for c in CRITERIA[k])]))
        changes = rules.changes(rows[keep], prev.flags[keep], lists, CRITERIA)
        summary["previous_counts"] = {k: int(prev.flags[k].sum()) for k in lists}
        summary["changes_not_compared"] = [k for k in LISTS if k not in lists]

    no_effect = rows["effect"].isna()
    in_panel = rows["school_id"].isin(panel.loc[panel["year"] == year, "school_id"])
    clustered = (rows["school_id"].isin(x.clusters.loc[x.clusters["cluster"].notna(),
                                                       "school_id"])
                 if x.clusters is not None else pd.Series(True, index=rows.index))
    reason = pd.Series(np.select(
        [~no_effect, rows["context_index"].isna(), ~clustered, ~in_panel],
        ["", "no_social_index", "no_cluster", "no_quality_results"], default="below_min_n"),
        index=rows.index)
    rows["effect_reason"] = reason
    book = ledger.record(rows[["year", "school_id"]], no_effect, analysis="school_effect",
                         table="schools", reason=reason[no_effect])
    if x.clusters is not None:
        book = ledger.combine([book, _earlier_years_book(panel, year=year, min_n=min_n)])
    floats = [c for c in rows.columns if pd.api.types.is_float_dtype(rows[c])]
    rows[floats] = rows[floats].astype("Float64")
    return FlagsResult(rows, _effects_table(est), _cards(est, year), sh, sh_detail, obj,
                       evidence, changes, summary, book)


def _earlier_years_book(panel: pd.DataFrame, *, year: int, min_n: int
                        ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Ledger of the earlier years' expected models when ``cluster`` is a model term.

    The clusters are the reporting year's, so a school of an earlier year with a social
    index and at least ``min_n`` participants but no cluster (no index, or no row, in the
    reporting year) is left out of that year's expected models (reason ``no_cluster``).
    Scope: the earlier years' school-years the models could use but for the cluster.
    """
    use = panel.loc[(panel["year"] < year) & panel["social_index"].notna()
                    & (panel["n"] >= min_n)]
    scope = (use.assign(no_cluster=use["cluster"].isna())
             .groupby(["year", "school_id"], sort=True, observed=True)["no_cluster"].any()
             .reset_index())
    return ledger.record(scope[["year", "school_id"]], scope["no_cluster"],
                         analysis="expected_model_years", table="schools", reason="no_cluster")


def _effects_table(est: dict[str, Any]) -> pd.DataFrame:
    """School x outcome effects: pooled over the years (year <NA>) and per year."""
    cols = ["school_id", "outcome", "year", "estimate", "sd", "low", "high", "direction", "n"]
    eff = pd.concat([est["pooled"].assign(year=pd.NA)[cols], est["yearly"][cols]],
                    ignore_index=True)
    eff["year"] = eff["year"].astype("Int64")
    return eff


def _cards(est: dict[str, Any], year: int) -> pd.DataFrame:
    """Reporting year, per school x outcome: value, expected value split by factor."""
    res = est["residuals"]
    parts = []
    for (outcome, y), fit in est["fits"].items():
        if y != year:
            continue
        sub = res.loc[(res["outcome"] == outcome) & (res["year"] == y)]
        c = effects.contributions(fit, sub, sub)
        c["municipality"] = sub["municipal"].to_numpy()
        parts.append(pd.concat([sub[["school_id", "outcome", "value", "n", "fitted"]], c],
                               axis=1))
    if not parts:
        return pd.DataFrame(columns=["school_id", "outcome", "value", "n", "fitted"])
    return pd.concat(parts, ignore_index=True).sort_values(["school_id", "outcome"],
                                                           kind="stable", ignore_index=True)


def run_flags(root: str | Path = ".", *, year: int, min_n: int, flags: Mapping[str, Any],
              ses_link: Mapping[str, Any], index: Mapping[str, Any],
              quality_procedures: Sequence[str], quality_subjects: Sequence[str],
              quality_grades: Sequence[int], quality_formula: str) -> FlagsResult:
    """Stage 04 on the processed files: school effects, resilience, typology, ШНСУ, risk
    zone, ШНОР, objectivity and the changes since last year (:func:`flags_stage`), then
    write them, the ledger and the summary ``flags.json``."""
    root = Path(root)
    has_students = (root / files.FILES["students"]).exists()
    students = files.read(root, "students") if has_students else None
    schools = files.read(root, "schools")
    res = flags_stage(
        schools, files.read(root, "results"), files.read(root, "social_index"), year=year,
        min_n=min_n, flags=flags, ses_link=ses_link, index_params=index,
        procedures=quality_procedures, subjects=quality_subjects, grades=quality_grades,
        formula=quality_formula, clusters=files.read(root, "cluster_terms"),
        quality_groups=files.read(root, "quality_groups"),
        students=students if students is not None and len(students) else None,
        school_year=files.read(root, "school_year"))
    # criterion 2 of ШНОР needs the previous year: schools new to the data are booked
    scope = schools.loc[schools["year"] == year]
    previous = schools.loc[schools["year"] == year - 1, "school_id"]
    files.write_ledger(ledger.combine([
        ledger.record(scope, ~scope["school_id"].isin(previous), analysis="shnor_criterion_2",
                      table="schools", reason="one_year_only"), res.ledger]), root, STAGE)
    for name, df in (("flags", res.flags), ("school_effects", res.effects),
                     ("flag_cards", res.cards), ("shnor", res.shnor),
                     ("shnor_details", res.shnor_details), ("objectivity", res.objectivity),
                     ("objectivity_evidence", res.objectivity_evidence),
                     ("flag_changes", res.changes)):
        files.write(df, root, name)
    files.write_json(res.summary, root, "flags_summary")
    return res


def run(root: str | Path, params: Mapping[str, Any]) -> FlagsResult:
    """Stage 04 with a params.yaml-shaped dict: ``year``, ``min_n``, the ``flags``,
    ``ses_link`` and ``index`` sections and the quality index's keys of ``prepare``.

    Parameters
    ----------
    root : str or Path
        The project (or work) folder the processed files are under.
    params : mapping
        ``params.yaml`` as parsed (other sections are ignored).

    Returns
    -------
    FlagsResult
        What :func:`run_flags` returns.
    """
    prep = params["prepare"]
    return run_flags(root, year=params["year"], min_n=params["min_n"], flags=params["flags"],
                     ses_link=params["ses_link"], index=params["index"],
                     quality_procedures=prep["quality_procedures"],
                     quality_subjects=prep["quality_subjects"],
                     quality_grades=prep["quality_grades"],
                     quality_formula=prep["quality_formula"])
