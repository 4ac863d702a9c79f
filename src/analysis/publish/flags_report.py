"""The report's sections 5 (lists of schools) and 6 (typological groups).

Inputs are the stage 04 outputs in :class:`analysis.publish.data.ReportData` (``flags``,
``cards``, ``shnor_details``, ``objectivity``, ``objectivity_evidence``, ``changes``,
``similar_peers``, ``flags_summary``) and ``params.yaml``'s ``flags`` section (the report
notebook's ``flags_*`` parameters, ``analysis.config.section(params, "flags")``).  A school
is put into words by :mod:`analysis.publish.flag_text`; section 5.7 shows the "why this
school" cards of :mod:`analysis.publish.flag_cards`.

What every function here keeps to:

- every string from the data is escaped (:func:`~analysis.publish.html.html_table` or
  :func:`html.escape`); every text comes from ``labels.yaml``;
- nothing computed from fewer than ``min_n`` participants is shown: a low ШНОР procedure
  with fewer participants is counted, never named, and its share is not shown; a card's
  procedure with fewer participants is «н/д»;
- a value that could not be computed is «н/д», never "nan".
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from analysis.flags.rules import TYPOLOGY
from analysis.i18n import label, t
from analysis.ingest.schema import SETTLEMENT_TYPES
from analysis.publish.data import ReportData
from analysis.publish.flag_cards import CARD_LISTS, flagged, school_cards
from analysis.publish.flag_text import (
    SCREENS,
    _blank_na,
    _criteria,
    _factor_label,
    _students_context,
    context_of,
    effect_ci,
    flag_params,
    fmt_values,
    labels_of,
    outcomes_of,
    prob_text,
    risk_reasons,
    school_names,
    shnor_procedures,
    student_status,
)
from analysis.publish.html import heading, html_table, listing, para, regions_of, stat

#: Lists compared with last year (analysis.flags.stage.LISTS).
CHANGE_LISTS = ("resilient", "shnor", "shnsu", "risk_zone")
#: Robustness specifications (analysis.flags.stage.SPECS), the fallback order.
SPECS = ("default", "context_measure", "multilevel", "terms", "context_cut", "interval_99")

#: Performance columns of the typology matrix, and the column of each typological group.
PERF = ("above", "expected", "below", "na")
PERF_OF = {"resilient": "above", "needs_review": "above", "above_unconfirmed": "above",
           "favourable": "above", "expected": "expected", "unfavourable": "below",
           "unrealised": "below", "na": "na"}
CONTEXTS = ("low", "favourable", "na")


# --- parameters and formatting ---------------------------------------------------------------

def context_text(p: Mapping[str, Any], lang: str) -> str:
    """What "context" means in this run: the students' mean status (where the students table
    has it) and/or the social well-being index."""
    counts = p.get("_context") or {}
    students, index = int(counts.get("students", 0)), int(counts.get("index", 0))
    if students and index:
        return t("flags.context_mixed", lang, students=students, index=index)
    if students:
        return t("flags.context_students", lang)
    return t("flags.context_index", lang)


def _opt(key: str, lang: str, **fmt: Any) -> str:
    """``t(key, **fmt)``, or "" when a value the sentence needs is unknown (``None``)."""
    if any(v is None for v in fmt.values()):
        return ""
    return t(key, lang, **fmt)


def short(value: Any) -> str | None:
    """A parameter as written, without trailing zeros (0.125 -> "0.125", 0.3 -> "0.3")."""
    return None if value is None else f"{float(value):.4g}"


def short_pct(value: Any) -> str | None:
    """A share parameter as a percentage without rounding it away (0.275 -> "27.5%")."""
    return None if value is None else f"{100.0 * float(value):.4g}%"


def _p(text: str) -> str:
    return f"<p>{html.escape(text)}</p>" if text else ""


def level_text(z: float | None) -> str | None:
    """Two-sided confidence level of ``z`` as a percentage (1.96 -> "95%")."""
    # 2 Phi(z) - 1 = erf(z / sqrt 2): no scipy.stats import (about 1 s) for one number
    return None if z is None else f"{math.erf(float(z) / math.sqrt(2.0)):.0%}"


def _count_share(n: pd.Series, total: pd.Series, lang: str) -> pd.Series:
    share = fmt_values(n / total.where(total > 0), ".1%", "")
    return (n.astype("int64").astype(str) + " (" + share + ")").where(total > 0, n.astype(
        "int64").astype(str))


# --- 5.1 resilient ---------------------------------------------------------------------------

def resilient_table(f: pd.DataFrame, lang: str, min_n: int) -> pd.DataFrame:
    """One row per school of ``f``: school, municipality, type, social index, effect with its
    interval, years above expected, "X из Y" specifications; the largest effect first."""
    f = f.sort_values(["effect", "school_id"], ascending=[False, True], kind="stable")
    specs = [t("flags.specs_of", lang, held=int(h), total=int(n))
             for h, n in zip(f["specs_held"], f["specs_total"])]
    return pd.DataFrame({
        "school_name": f["school_name"].astype(object),
        "municipality": f["municipality"].astype(object),
        "school_type": labels_of(f["school_type"], "school_type", lang),
        "social_index": fmt_values(f["social_index"], "+.2f", t("value.na", lang)),
        **({"context_index": student_status(f, lang, min_n)} if _students_context(f) else {}),
        "effect_ci": effect_ci(f, lang),
        "years_above_list": f["years_above_list"].fillna("").astype(object),
        "specs": pd.Series(specs, index=f.index, dtype=object),
    })


def settlement_table(f: pd.DataFrame, lang: str) -> pd.DataFrame:
    """By settlement type: schools, with an effect estimate, median participants, above and
    below expected (count and share of those with an estimate)."""
    g = f.assign(est=f["effect"].notna(), above=f["direction"].eq("above"),
                 below=f["direction"].eq("below"),
                 n=pd.to_numeric(f["n_students"], errors="coerce").astype("float64"),
                 settlement=f["settlement_type"].astype(object).fillna("_na"))
    agg = g.groupby("settlement", sort=False).agg(
        n_schools=("school_id", "size"), n_estimate=("est", "sum"),
        median_students=("n", "median"), above=("above", "sum"), below=("below", "sum"))
    order = [s for s in SETTLEMENT_TYPES if s in agg.index] + sorted(
        s for s in agg.index if s not in SETTLEMENT_TYPES)
    agg = agg.loc[order]
    names = pd.Series([t("value.na", lang) if s == "_na" else label("settlement_type", s, lang)
                       for s in agg.index], index=agg.index, dtype=object)
    return pd.DataFrame({
        "settlement_type": names,
        "n_schools": agg["n_schools"].astype("int64"),
        "n_estimate": agg["n_estimate"].astype("int64"),
        "median_students": fmt_values(agg["median_students"], ".0f", t("value.na", lang)),
        "above": _count_share(agg["above"], agg["n_estimate"], lang),
        "below": _count_share(agg["below"], agg["n_estimate"], lang),
    }).reset_index(drop=True)


def _factors_text(d: ReportData, lang: str) -> str:
    terms = d.flags_summary.get("spec", {}).get("terms") if d.flags_summary else None
    parts = ["social_index", *(terms or [])]
    return ", ".join(_factor_label(c, lang) for c in parts)


def _weights_text(w: Any, lang: str) -> str | None:
    if w is None:
        return None
    try:
        return t(f"flags.weights.{w}", lang)
    except KeyError:
        return t("flags.weights.other", lang, weights=w)


def _cut_how(p: Mapping[str, Any], lang: str, method_key: str, q_key: str) -> str:
    if p.get(method_key) == "quantile" and p.get(q_key) is not None:
        return t("flags.cut_quantile", lang, q=short_pct(p[q_key]))
    return ""


def section_resilient(d: ReportData, lang: str, p: Mapping[str, Any], *, min_n: int,
                      top_n: int) -> str:
    f = d.flags
    level = level_text(p.get("z"))
    cut = p.get("_low_context_cut")
    outcomes = outcomes_of(d)
    p_above = ("" if p.get("p_above") is None
               else t("flags.p_above", lang, p=short_pct(p["p_above"])))
    if p.get("method") == "quadrant":
        rule = _opt("flags.rule_resilient_quadrant", lang, min_n=min_n)
    else:
        rule = _opt("flags.rule_resilient", lang,
                    cut=None if cut is None else stat(cut, "+.2f", lang),
                    cut_how=_cut_how(p, lang, "low_context", "low_context_quantile"),
                    level=level, min_effect=short(p.get("min_effect")),
                    p_above=p_above, min_years=p.get("_min_years"), n_years=p.get("n_years"),
                    context=context_text(p, lang))
    effect = _opt("flags.effect_def", lang,
                  outcomes=", ".join(label("procedure", o, lang) for o in outcomes) or
                  t("value.na", lang), factors=_factors_text(d, lang),
                  n_years=p.get("n_years"), weights=_weights_text(p.get("year_weights"), lang),
                  multilevel=t("flags.multilevel", lang) if p.get("multilevel") else "",
                  level=level)
    specs = list((d.flags_summary or {}).get("specs") or SPECS)
    robust = t("flags.robustness", lang, total=len(specs),
               specs="; ".join(label("spec", s, lang) for s in specs))
    counts = (d.flags_summary or {}).get("spec_counts") or {}
    spec_table = pd.DataFrame({"spec": [label("spec", s, lang) for s in specs],
                               "n_resilient": [int(counts.get(s, 0)) for s in specs]})
    est = f["effect"].notna()
    n_review = int(f["direction"].eq("review").sum())
    directions = t("flags.directions", lang, n_est=int(est.sum()),
                   above=int(f["direction"].eq("above").sum()),
                   below=int(f["direction"].eq("below").sum()),
                   review=t("flags.directions_review", lang, n=n_review) if n_review else "")
    return "\n".join([
        heading("report.list_resilient", lang, 3),
        _p(effect), _p(rule), _p(robust),
        listing(resilient_table(f.loc[f["resilient"]], lang, min_n), lang, d, max_rows=top_n),
        heading("report.list_needs_review", lang, 4),
        para("flags.needs_review_text", lang),
        listing(resilient_table(f.loc[f["needs_review"]], lang, min_n), lang, d,
                max_rows=top_n),
        heading("report.list_specs", lang, 4),
        html_table(spec_table, lang),
        heading("report.list_by_settlement", lang, 4),
        _p(directions),
        html_table(settlement_table(f, lang), lang),
    ])


# --- 5.2 ШНОР --------------------------------------------------------------------------------

def shnor_table(d: ReportData, lang: str, min_n: int) -> pd.DataFrame:
    """One row per ШНОР school: criteria met, numbers of low procedures, the probabilistic
    label and probability, and the named low procedures (only those with at least
    ``min_n`` participants; the others counted)."""
    f = d.flags.loc[d.flags["shnor"]].sort_values(
        ["municipality", "school_name", "school_id"], kind="stable")
    procs = shnor_procedures(d, lang, min_n)
    return pd.DataFrame({
        "school_name": f["school_name"].astype(object),
        "municipality": f["municipality"].astype(object),
        "school_type": labels_of(f["school_type"], "school_type", lang),
        "criteria": _criteria(f, d.year, lang),
        "n_low_year": f["n_low_year"].astype("int64"),
        "n_low_prev": f["n_low_prev"].astype("int64"),
        "shnor_label": labels_of(_blank_na(f["shnor_label"]), "shnor_label", lang),
        "p_rule": prob_text(f["p_rule"], lang),
        "low_procedures": f["school_id"].map(procs).fillna("").astype(object),
    })


def section_shnor(d: ReportData, lang: str, p: Mapping[str, Any], *, min_n: int, top_n: int) -> str:
    f = d.flags
    on = f.loc[f["shnor"]]
    k = p.get("shnor_min_participants")
    sizes = (None if k is None else t("flags.shnor_all_sizes", lang) if int(k) <= 0
             else t("flags.shnor_min_participants", lang, k=int(k)))
    procs = p.get("shnor_procedures")
    low = _opt("flags.shnor_low", lang, thr=short_pct(p.get("shnor_threshold")),
               procedures=None if procs is None else ", ".join(
                   label("procedure", x, lang) for x in procs), participants=sizes)
    labels = on["shnor_label"].value_counts()
    rule = "".join([
        para("flags.shnor_rule", lang),
        "<ol>", f"<li>{html.escape(t('flags.shnor_criterion_1', lang, year=d.year))}</li>",
        f"<li>{html.escape(t('flags.shnor_criterion_2', lang, year=d.year, prev=d.year - 1))}"
        "</li></ol>"])
    return "\n".join([
        heading("report.list_shnor", lang, 3), rule, _p(low),
        _p(_opt("flags.shnor_labels", lang, sure=short_pct(p.get("shnor_sure")), min_n=min_n)),
        para("flags.shnor_count", lang, n=len(on), reliable=int(labels.get("reliable", 0)),
             borderline=int(labels.get("borderline", 0)),
             few=int(labels.get("few_participants", 0))),
        listing(shnor_table(d, lang, min_n), lang, d, max_rows=top_n),
    ])


# --- 5.3 ШНСУ, 5.4 risk zone ----------------------------------------------------------------

def section_shnsu(d: ReportData, lang: str, p: Mapping[str, Any], *, top_n: int) -> str:
    f = d.flags
    on = f.loc[f["shnsu"]].sort_values(["anchored_index", "school_id"], kind="stable")
    cut, ref = p.get("_shnsu_cut"), p.get("_shnsu_reference_year")
    cut_t = None if cut is None else stat(cut, "+.2f", lang)
    if p.get("shnsu_method") == "quantile":
        q = p.get("shnsu_quantile")
        rule = _opt("flags.shnsu_rule_quantile", lang, q=short_pct(q),
                    ref=ref, cut=cut_t)
    else:
        rule = _opt("flags.shnsu_rule", lang, cut=cut_t, ref=ref)
    prev = ((d.flags_summary or {}).get("previous_counts") or {}).get("shnsu")
    count = t("flags.shnsu_count", lang, year=d.year, prev=d.year - 1, n=len(on),
              n_index=int(f["anchored_index"].notna().sum()),
              prev_n=t("value.na", lang) if prev is None else int(prev))
    table = pd.DataFrame({
        "school_name": on["school_name"].astype(object),
        "municipality": on["municipality"].astype(object),
        "school_type": labels_of(on["school_type"], "school_type", lang),
        "settlement_type": labels_of(on["settlement_type"], "settlement_type", lang),
        "anchored_index": fmt_values(on["anchored_index"], "+.2f", t("value.na", lang)),
    })
    return "\n".join([heading("report.list_shnsu", lang, 3), _p(rule), _p(count),
                      listing(table, lang, d, max_rows=top_n)])


def section_risk(d: ReportData, lang: str, p: Mapping[str, Any], *, top_n: int) -> str:
    f = d.flags
    on = f.loc[f["risk_zone"]].sort_values(["municipality", "school_name", "school_id"],
                                           kind="stable")
    rule = _opt("flags.risk_rule", lang, n_years=p.get("n_years"),
                decline=short(p.get("decline_min")), level=level_text(p.get("z")),
                min_effect=short(p.get("min_effect")))
    table = pd.DataFrame({
        "school_name": on["school_name"].astype(object),
        "municipality": on["municipality"].astype(object),
        "school_type": labels_of(on["school_type"], "school_type", lang),
        "risk_reason": risk_reasons(on, lang, trend=False),
        "effect_ci": effect_ci(on, lang),
        "trend": fmt_values(on["trend"], "+.3f", t("value.na", lang)),
    })
    return "\n".join([
        heading("report.list_risk_zone", lang, 3), _p(rule),
        para("flags.risk_count", lang, n=len(on), declining=int(on["declining"].sum()),
             low_below=int(on["risk_low_below"].sum())),
        listing(table, lang, d, max_rows=top_n)])


# --- 5.5 objectivity -------------------------------------------------------------------------

def evidence_table(d: ReportData, lang: str, min_n: int) -> pd.DataFrame:
    """The comparisons behind each school's signs of non-objectivity: every row of a screen
    that fired for the school (the pooled one and by subject), with the school's value, the
    reference, the interval, the threshold and the participants on each side; rows with
    fewer than ``min_n`` on a side are left out."""
    ev = d.objectivity_evidence
    if "school_id" not in ev:  # no screen could be assessed at all
        ev = pd.DataFrame(columns=["school_id", "screen", "procedure", "subject", "grade",
                                   "value", "reference", "low", "high", "threshold", "n",
                                   "n_other", "fired"])
    flagged = d.flags.loc[d.flags["objectivity_flag"], ["school_id", "school_name",
                                                        "municipality"]]
    ev = ev.loc[ev["school_id"].isin(flagged["school_id"])]
    n = pd.to_numeric(ev["n"], errors="coerce").fillna(0)
    n_other = pd.to_numeric(ev["n_other"], errors="coerce").fillna(0)
    ev = ev.loc[(n >= min_n) & (n_other >= min_n)]
    fired = ev["fired"].astype("boolean").fillna(False).astype(bool)
    keep = fired.groupby([ev["school_id"], ev["screen"]]).transform("any")
    ev = ev.loc[keep].merge(flagged, on="school_id", how="left")
    order = {s: i for i, s in enumerate(SCREENS)}
    ev = ev.assign(_s=ev["screen"].map(order).fillna(len(order)),
                   _all=ev["subject"].ne("all")).sort_values(
        ["municipality", "school_name", "school_id", "_s", "_all", "subject", "grade"],
        kind="stable", ignore_index=True)
    diff = ev["screen"].eq("vpr_oge").to_numpy()
    na_t = t("value.na", lang)

    unit = t("flags.pp", lang, value="\0")
    pts = [unit if x else "\0" for x in diff]

    def show(col: str, signed: bool) -> pd.Series:
        """Gaps in percentage points, shares in percent."""
        points = fmt_values(ev[col].astype("Float64") * 100, "+.1f" if signed else ".1f", na_t)
        share = fmt_values(ev[col], ".1%", na_t)
        return pd.Series(np.where(diff, points, share), index=ev.index, dtype=object)

    def with_unit(text: pd.Series) -> pd.Series:
        return pd.Series([u.replace("\0", x) for u, x in zip(pts, text)], index=ev.index,
                         dtype=object)

    subject = labels_of(ev["subject"].mask(ev["subject"].eq("all")), "subject", lang,
                        empty=t("flags.all_subjects", lang))
    grade = ev["grade"].astype("string")
    comparison = pd.Series([s if pd.isna(g) else t("flags.ev_grade", lang, subject=s, grade=g)
                            for s, g in zip(subject, grade)], index=ev.index, dtype=object)
    thr = [t("flags.above_threshold", lang, value=t("flags.pp", lang, value=v))
           for v in fmt_values(ev["threshold"].astype("Float64") * 100, ".1f", na_t)]
    n_text = [t(f"flags.ev_n.{s}", lang, n=a, n_other=b) if s in SCREENS else f"{a} / {b}"
              for s, a, b in zip(ev["screen"], ev["n"], ev["n_other"])]
    return pd.DataFrame({
        "school_name": ev["school_name"].astype(object),
        "municipality": ev["municipality"].astype(object),
        "screen": labels_of(ev["screen"], "screen", lang),
        "comparison": comparison,
        "school_value": with_unit(show("value", True)),
        "reference": with_unit(show("reference", False)),
        "ci": with_unit("[" + show("low", True) + "; " + show("high", True) + "]"),
        "threshold": pd.Series(thr, index=ev.index, dtype=object),
        "n_text": pd.Series(n_text, index=ev.index, dtype=object),
        "fired": pd.Series(np.where(ev["fired"].astype("boolean").fillna(False), t(
            "value.yes", lang), t("value.no", lang)), index=ev.index, dtype=object),
    })


def section_objectivity(d: ReportData, lang: str, p: Mapping[str, Any], *, min_n: int,
                        top_n: int) -> str:
    obj = d.objectivity
    level = level_text(p.get("z"))
    items = [_opt(f"flags.objectivity_{s}", lang, thr=None if p.get(k) is None else t(
        "flags.pp", lang, value=short(100.0 * float(p[k])))) for s, k in (
        ("vpr_oge", "objectivity_threshold"), ("top_marks", "objectivity_top_threshold"),
        ("heaping", "objectivity_heap_threshold"))]
    items = "".join(f"<li>{html.escape(x)}</li>" for x in items if x)

    def assessed(col: str) -> int:
        return int(obj[col].notna().sum()) if col in obj else 0

    count = t("flags.objectivity_count", lang, n=int(d.flags["objectivity_flag"].sum()),
              n_vpr_oge=assessed("vpr_oge"), n_top=assessed("top_marks"),
              n_heap=assessed("heaping"))
    return "\n".join([
        heading("report.list_objectivity", lang, 3),
        _p(_opt("flags.objectivity_rule", lang, min_n=min_n, level=level)),
        f"<ul>{items}</ul>" if items else "", _p(count),
        listing(evidence_table(d, lang, min_n), lang, d, max_rows=top_n)])


# --- 5.6 changes -----------------------------------------------------------------------------

def changes_counts(d: ReportData, lang: str) -> pd.DataFrame:
    """Per list: schools this year and last year, entered, left."""
    ch = d.flag_changes
    prev = (d.flags_summary or {}).get("previous_counts") or {}
    na_t = t("value.na", lang)
    rows = []
    for name in CHANGE_LISTS:
        c = ch.loc[ch["list"] == name, "change"]
        rows.append({"list": label("list", name, lang),
                     "this_year": str(int(d.flags[name].sum())) if name in d.flags else na_t,
                     "last_year": str(int(prev[name])) if name in prev else na_t,
                     "entered": int(c.eq("entered").sum()), "left": int(c.eq("left").sum())})
    return pd.DataFrame(rows)


def changed_words(changed: pd.Series, lang: str) -> pd.Series:
    """"declining, direction" -> the criteria's catalogue labels, joined."""
    parts = changed.fillna("").astype(str).str.split(r",\s*").explode()
    parts = parts.loc[parts.ne("")]
    words = labels_of(parts, "criterion", lang)
    return words.groupby(level=0).agg(", ".join).reindex(changed.index).fillna("")


def changes_table(d: ReportData, lang: str) -> pd.DataFrame:
    ch = d.flag_changes
    names = school_names(d)
    order = {n: i for i, n in enumerate(CHANGE_LISTS)}
    ch = ch.join(names, on="school_id").assign(_l=ch["list"].map(order)).sort_values(
        ["_l", "change", "municipality", "school_name", "school_id"], kind="stable",
        ignore_index=True)
    return pd.DataFrame({
        "school_name": ch["school_name"].astype(object),
        "municipality": ch["municipality"].astype(object),
        "list": labels_of(ch["list"], "list", lang),
        "change": labels_of(ch["change"], "change", lang),
        "changed": changed_words(ch["changed"], lang),
    })


def section_changes(d: ReportData, lang: str, *, top_n: int) -> str:
    prev = (d.flags_summary or {}).get("previous_counts")
    out = [heading("report.list_changes", lang, 3)]
    if prev is None:
        return "\n".join(out + [para("flags.no_previous", lang, prev=d.year - 1)])
    out += [para("flags.changes_text", lang, prev=d.year - 1),
            html_table(changes_counts(d, lang), lang)]
    skipped = (d.flags_summary or {}).get("changes_not_compared") or []
    if skipped:
        out.append(para("flags.changes_not_compared", lang, prev=d.year - 1,
                        lists=", ".join(label("list", k, lang) for k in skipped)))
    if d.flag_changes.empty:
        out.append(para("flags.changes_none", lang))
    else:
        out.append(listing(changes_table(d, lang), lang, d, max_rows=top_n))
    return "\n".join(out)


# --- section 5 -------------------------------------------------------------------------------

def section_lists(d: ReportData, lang: str, flags: Mapping[str, Any] | None = None, *, min_n: int,
                  top_n: int) -> str:
    """Section 5 without the cards: 5.1 resilient (and «требует проверки»), 5.2 ШНОР,
    5.3 ШНСУ, 5.4 risk zone, 5.5 signs of non-objectivity, 5.6 changes since last year.

    ``flags`` is ``params.yaml``'s ``flags`` section."""
    p = flag_params(d, flags)
    return "\n".join([
        heading("report.lists", lang),
        para("flags.lists_intro", lang, top_n=top_n, min_n=min_n),
        section_resilient(d, lang, p, min_n=min_n, top_n=top_n),
        section_shnor(d, lang, p, min_n=min_n, top_n=top_n),
        section_shnsu(d, lang, p, top_n=top_n),
        section_risk(d, lang, p, top_n=top_n),
        section_objectivity(d, lang, p, min_n=min_n, top_n=top_n),
        section_changes(d, lang, top_n=top_n),
    ])


# --- 5.7 cards -------------------------------------------------------------------------------

def section_cards(d: ReportData, lang: str, flags: Mapping[str, Any] | None = None, *,
                  min_n: int, compact: bool = True) -> str:
    """5.7: every listed school's card, grouped by municipality (alphabetical), schools by
    name within it."""
    f = d.flags.loc[flagged(d.flags)].sort_values(
        ["municipality", "school_name", "school_id"], kind="stable")
    regions = regions_of(d)
    if regions is not None:  # thousands of cards would not read: the downloads hold them
        return "\n".join([heading("report.list_cards", lang),
                          para("report.national_cards", lang, n=len(f),
                               n_regions=regions.nunique())])
    cards = school_cards(d, lang, flags, min_n=min_n, compact=compact)
    out = [heading("report.list_cards", lang), para("flags.cards_text", lang, n=len(f),
                                                        min_n=min_n)]
    if compact:
        out.append(para("flags.cards_compact", lang))
    mun = f["municipality"].astype(object).fillna(t("value.na", lang))
    for name, ids in f.groupby(mun, sort=True)["school_id"]:
        title = t("flags.cards_municipality", lang, municipality=name, n=len(ids))
        out.append(f'<details class="mun" data-mun="{html.escape(str(name))}"><summary>'
                   f"{html.escape(title)}</summary>{''.join(cards.loc[ids].tolist())}</details>")
    return "\n".join(out)


# --- section 6 -------------------------------------------------------------------------------

def typology_matrix(f: pd.DataFrame) -> pd.DataFrame:
    """Counts of schools: context (rows :data:`CONTEXTS`; "na" only when some school has no
    index) x performance (columns :data:`PERF`), from each school's typological group."""
    perf = f["typology"].map(PERF_OF).fillna("na")
    m = pd.crosstab(context_of(f), perf).reindex(index=list(CONTEXTS), columns=list(PERF),
                                                 fill_value=0).astype("int64")
    if m.loc["na"].sum() == 0:
        m = m.drop(index="na")
    return m


def section_typology(d: ReportData, lang: str, flags: Mapping[str, Any] | None = None) -> str:
    """Section 6: the context x performance matrix, the typological groups (with what each
    means), and the groups by municipality."""
    p = flag_params(d, flags)
    f = d.flags
    m = typology_matrix(f)
    shown = m.copy()
    shown.columns = [label("direction", c, lang) for c in m.columns]
    shown[t("col.total", lang)] = m.sum(axis=1)
    shown.loc["_total"] = shown.sum(axis=0)
    shown.index = [t("col.total", lang) if c == "_total" else label("context", c, lang)
                   for c in shown.index]
    shown.index.name = "context"
    level = level_text(p.get("z"))
    if p.get("typology_axis") == "quality_group":
        axis = _opt("flags.axis_quality_group", lang, high=p.get("typology_high_group"),
                    low=p.get("typology_low_group"))
    else:
        axis = _opt("flags.axis_effect", lang, level=level, min_effect=short(p.get("min_effect")))
    cut = p.get("_low_context_cut")
    text = _opt("flags.typology_text", lang, context=context_text(p, lang),
                cut=None if cut is None else stat(cut, "+.2f", lang),
                cut_how=_cut_how(p, lang, "low_context", "low_context_quantile"),
                axis=axis or t("value.na", lang))
    counts = f["typology"].value_counts().reindex(list(TYPOLOGY), fill_value=0)
    groups = pd.DataFrame({"typology": [label("typology", k, lang) for k in TYPOLOGY],
                           "definition": [t(f"typology_def.{k}", lang) for k in TYPOLOGY],
                           "n_schools": counts.astype("int64").to_numpy()})
    regions = regions_of(d)  # a report over several regions counts by region, not by MO
    area = "municipality" if regions is None else "region"
    where = (f["municipality"].astype(object) if regions is None
             else f["municipality"].astype(str).map(regions).astype(object))
    by_mun = pd.crosstab(where, f["typology"]).reindex(columns=list(TYPOLOGY), fill_value=0)
    by_mun[t("col.total", lang)] = by_mun.sum(axis=1)
    by_mun.columns = [label("typology", c, lang) if c in TYPOLOGY else c
                      for c in by_mun.columns]
    by_mun.index.name = area
    return "\n".join([
        heading("report.typology", lang), _p(text),
        heading("report.typology_matrix", lang, 3), para("flags.typology_matrix_note", lang),
        html_table(shown, lang, index=True),
        heading("report.typology_labels", lang, 3), html_table(groups, lang),
        heading(f"report.typology_by_{area}", lang, 3),
        html_table(by_mun.sort_index(), lang, index=True),
    ])


# --- metrics ---------------------------------------------------------------------------------

def flag_metrics(d: ReportData) -> dict[str, Any]:
    """The flags' keys of ``metrics.json``: counts of each list, the typology, the ШНОР
    labels, how many specifications a resilience held in, the variance components, and the
    changes since last year."""
    f = d.flags
    s = d.flags_summary or {}
    held = f.loc[f["specs_held"] > 0, "specs_held"].value_counts()
    total = int(f["specs_total"].max()) if len(f) else len(SPECS)
    ch = d.flag_changes
    return {
        "lists": {c: int(f[c].sum()) for c in CARD_LISTS if c in f},
        "typology": {k: int((f["typology"] == k).sum()) for k in TYPOLOGY},
        "typology_matrix": {c: {k: int(v) for k, v in row.items()}
                            for c, row in typology_matrix(f).iterrows()},
        "shnor_labels": {k: int((f["shnor_label"] == k).sum())
                         for k in ("reliable", "borderline", "few_participants")},
        "specs_held": {str(k): int(held.get(k, 0)) for k in range(1, total + 1)},
        "spec_counts": {k: int(v) for k, v in (s.get("spec_counts") or {}).items()},
        "components": {str(c["outcome"]): {"tau2_u": c.get("tau2_u"), "tau2_v": c.get("tau2_v")}
                       for c in s.get("components") or []},
        "previous_counts": {k: int(v) for k, v in (s.get("previous_counts") or {}).items()},
        "changes": {name: {"entered": int(((ch["list"] == name) & (ch["change"] == "entered"))
                                          .sum()),
                           "left": int(((ch["list"] == name) & (ch["change"] == "left")).sum())}
                    for name in CHANGE_LISTS},
        "effects": {"n_estimate": int(f["effect"].notna().sum()),
                    "above": int(f["direction"].eq("above").sum()),
                    "below": int(f["direction"].eq("below").sum()),
                    "review": int(f["direction"].eq("review").sum())},
    }


def methods_text(d: ReportData, lang: str) -> str:
    """One sentence on the variance components of the school effects (flags.json)."""
    comps = (d.flags_summary or {}).get("components") or []
    if not comps:
        return ""
    items = "; ".join(t("report.methods_flags_item", lang, outcome=label(
        "procedure", c["outcome"], lang), tau2_u=stat(c.get("tau2_u"), ".4f", lang),
        tau2_v=stat(c.get("tau2_v"), ".4f", lang)) for c in comps)
    return t("report.methods_flags", lang, components=items)


__all__: Sequence[str] = (
    "section_lists", "section_cards", "section_typology", "shnor_table", "typology_matrix",
    "flag_metrics", "methods_text")


def shnsu_cut_on_index(d: ReportData) -> float | None:
    """The ШНСУ cut (set on the index anchored to the reference year) on the reporting
    year's social index, for the gradient figure: the anchored and the current index of the
    year's schools are linear in each other, so the cut maps by the fitted line. ``None``
    when the cut is unknown or fewer than 3 schools have both indices."""
    cut = (d.flags_summary or {}).get("shnsu_cut")
    f = d.flags
    both = f[["anchored_index", "social_index"]].apply(pd.to_numeric, errors="coerce").dropna()
    if cut is None or len(both) < 3 or both["anchored_index"].std() == 0:
        return None
    slope, icpt = np.polyfit(both["anchored_index"].to_numpy(float),
                             both["social_index"].to_numpy(float), 1)
    return float(icpt + slope * float(cut))
