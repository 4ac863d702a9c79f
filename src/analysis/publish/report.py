"""Stage 05: tables, figures and metrics of the annual report.

Functions return plain values (HTML strings, matplotlib figures, dicts); the report
notebook only displays them.  Every table goes through :func:`html_table`, which escapes
every cell (school names are data, not markup) and renders numbers deterministically.
Values computed from fewer than ``min_n`` participants are replaced with a suppression
mark by :func:`suppress` before they reach a table.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from analysis.i18n import label, t
from analysis.outputs import write_json

Formatter = Callable[[Any], str]


def is_missing(v: Any) -> bool:
    """``None``, ``pd.NA`` or a non-finite float: a value that could not be computed."""
    return v is None or v is pd.NA or (isinstance(v, (float, np.floating))
                                       and not np.isfinite(v))


def na(lang: str = "ru", reason: str | None = None) -> str:
    """«н/д», with the catalogue's reason in brackets when one is known."""
    mark = t("value.na", lang)
    return f"{mark} ({t(f'na.{reason}', lang)})" if reason else mark


def stat(value: Any, spec: str, lang: str = "ru", reason: str | None = None) -> str:
    """``value`` formatted with ``spec`` (``"+.3f"``, ``".0%"``), or «н/д (reason)» when it
    could not be computed; never "nan", never a negative zero."""
    if is_missing(value):
        return na(lang, reason)
    text = format(float(value), spec)
    if text.startswith("-") and not re.search(r"[1-9]", text):
        text = text[1:]  # "-0.000" -> "0.000", "-0%" -> "0%"
    return text


def fmt_num(digits: int = 2) -> Formatter:
    return lambda v: "" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.{digits}f}"


def fmt_pct(v: Any) -> str:
    return "" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{100 * v:.1f}%"


def col_label(col: str, lang: str = "ru") -> str:
    """Label of column ``col``: catalogue key ``col.<col>`` when it exists, else ``col``."""
    try:
        return t(f"col.{col}", lang)
    except KeyError:
        return str(col)


def html_table(df: pd.DataFrame, lang: str = "ru", *, formats: Mapping[str, Formatter] | None = None,
               max_rows: int | None = None, index: bool = False) -> str:
    """Render a DataFrame as an escaped HTML table with catalogue column labels.

    Column ``c`` is labelled with catalogue key ``col.<c>`` when the catalogue has it, else shown as is.
    Every cell is converted with its formatter (or ``str``) and then HTML-escaped.
    """
    formats = dict(formats or {})
    if index:
        df = df.reset_index()
    if df.empty:
        return f'<p class="sc-note">{html.escape(t("value.empty", lang))}</p>'
    shown = df if max_rows is None else df.head(max_rows)

    numeric = {c for c in shown.columns if pd.api.types.is_numeric_dtype(shown[c])}
    lines = ['<table class="sc-table">', "<thead><tr>"]
    lines += [f"<th>{html.escape(col_label(c, lang))}</th>" for c in shown.columns]
    lines.append("</tr></thead><tbody>")
    for row in shown.itertuples(index=False):
        cells = []
        for col, value in zip(shown.columns, row):
            text = formats.get(col, _default)(value)
            cls = ' class="num"' if col in numeric else ""
            cells.append(f"<td{cls}>{html.escape(text)}</td>")
        lines.append("<tr>" + "".join(cells) + "</tr>")
    lines.append("</tbody></table>")
    if max_rows is not None and len(df) > max_rows:
        more = t("col.more_rows", lang, n=len(df) - max_rows)
        lines.append(f'<p class="sc-note">{html.escape(more)}</p>')
    return "\n".join(lines)


def _default(value: Any) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, (bool, np.bool_)):
        return "✓" if value else ""
    if isinstance(value, (float, np.floating)):
        return f"{value:.3f}"
    return str(value)


def suppress(values: pd.Series, n: pd.Series, min_n: int, lang: str = "ru",
             formatter: Formatter = fmt_pct) -> pd.Series:
    """Format ``values``, replacing those computed from fewer than ``min_n`` with a mark."""
    mark = t("value.suppressed", lang, min_n=min_n)
    return pd.Series([mark if k < min_n else formatter(v) for v, k in zip(values, n)],
                     index=values.index, dtype="object")


def label_categories(df: pd.DataFrame, lang: str = "ru") -> pd.DataFrame:
    """Replace category codes (school type, settlement, typology, procedure, subject,
    reason, analysis, table) with their catalogue labels."""
    out = df.copy()
    for col in ("school_type", "settlement_type", "typology", "procedure", "subject",
                "reason", "analysis", "table"):
        if col in out:
            out[col] = out[col].map(lambda v, c=col: label(c, v, lang) if pd.notna(v) else "")
    return out


# --- sections ---------------------------------------------------------------------------

def summary_table(counts: Mapping[str, int], lang: str = "ru") -> str:
    """Two-column table: measure label -> count (keys are ``report.summary_<key>``)."""
    df = pd.DataFrame({"measure": [t(f"report.summary_{k}", lang) for k in counts],
                       "count": list(counts.values())})
    return html_table(df, lang)


def quality_formula_text(p: Mapping[str, Any], lang: str = "ru") -> str:
    """One sentence stating the quality index's formula and components, from the report's
    notebook parameters ``p`` (``prepare_quality_formula``, ``prepare_quality_procedures``,
    ``prepare_quality_subjects``, ``prepare_quality_grades``)."""
    procs = join_labels(p["prepare_quality_procedures"], "procedure", lang)
    subjects = join_labels(p["prepare_quality_subjects"], "subject", lang)
    grades = join_labels(p["prepare_quality_grades"], None)
    components = f"{procs}; {subjects}; {t('report.grades_word', lang)} {grades}"
    return t(f"report.quality_formula.{p['prepare_quality_formula']}", lang,
             components=components)


def fig_distributions(index: pd.Series, quality: pd.Series, lang: str = "ru") -> plt.Figure:
    """Histograms of the social well-being index and the quality index."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    sns.histplot(index.dropna(), bins=30, ax=axes[0], color="#4C72B0")
    axes[0].set_xlabel(t("report.gradient_axis_x", lang))
    sns.histplot(quality.dropna(), bins=30, ax=axes[1], color="#55A868")
    axes[1].set_xlabel(t("report.gradient_axis_y", lang))
    for ax in axes:
        ax.set_ylabel(t("col.n_schools", lang))
    fig.tight_layout()
    return fig


def dynamics(results: pd.DataFrame) -> pd.DataFrame:
    """Regional share of «4»/«5» and of low results by procedure and year (participant-weighted)."""
    r = results.loc[results["participants"] > 0].assign(
        good=lambda d: (d["n_mark4"] + d["n_mark5"]).astype("float64"),
        low=lambda d: d["n_low"].astype("float64"),
        n=lambda d: d["participants"].astype("float64"),
        n_marked=lambda d: d["participants"].where(d["kind"] == "marked", 0).astype("float64"),
    )
    g = r.groupby(["procedure", "year"], sort=True)[["good", "low", "n", "n_marked"]].sum()
    out = pd.DataFrame({
        "share_quality": (g["good"] / g["n_marked"]).where(g["n_marked"] > 0),
        "share_low": g["low"] / g["n"],
        "participants": g["n"].astype("int64"),
    })
    return out.reset_index()


def params_table(params: Mapping[str, Any], lang: str = "ru") -> pd.DataFrame:
    """Parameters of the run as ``parameter, value`` rows (lists and dicts as compact JSON,
    an unset value as «не задано»)."""
    rows = []
    for key, value in params.items():
        if value is None:
            text = t("value.not_set", lang)
        else:
            text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        rows.append({"parameter": key, "value": text})
    return pd.DataFrame(rows)


def data_files_table(validation: Mapping[str, Any]) -> pd.DataFrame:
    """The input files of the run (names inside the data folder), sizes and SHA-256."""
    return pd.DataFrame([{"file": f["file"], "size_bytes": f.get("size", 0),
                          "sha256": f.get("sha256", "")} for f in validation.get("files", [])],
                        columns=["file", "size_bytes", "sha256"])


def code_version_text(version: Mapping[str, Any], lang: str = "ru") -> str:
    """One line: package version, git trees of the code and notebooks, uncommitted changes."""
    parts = [f"school-context {version.get('package') or '?'}"]
    if version.get("src"):
        parts.append(t("report.code_trees", lang, src=version["src"],
                       notebooks=version.get("notebooks") or "?"))
        parts.append(t("report.code_clean" if version.get("clean") else "report.code_dirty",
                       lang))
    else:
        parts.append(t("report.code_no_git", lang))
    return "; ".join(parts)


def packages_table(versions: Mapping[str, str]) -> pd.DataFrame:
    return pd.DataFrame({"package": list(versions), "version": list(versions.values())})


def write_metrics(path: str | Path, metrics: Mapping[str, Any]) -> Path:
    """Write metrics as sorted, indented, strict JSON (see :func:`analysis.outputs.write_json`):
    floats rounded to :data:`~analysis.outputs.FLOAT_DIGITS` significant digits, a value that
    could not be computed as ``null``, never NaN."""
    return write_json(path, metrics)


def join_labels(values: Sequence[Any], kind: str | None, lang: str = "ru") -> str:
    """Comma-joined labels of category values (or the values themselves)."""
    return ", ".join(label(kind, v, lang) if kind else str(v) for v in values)


# --- the report's sections (each returns HTML; figures are separate) -----------------------

def heading(key: str, lang: str = "ru", level: int = 2) -> str:
    return f"<h{level}>{html.escape(t(key, lang))}</h{level}>"


def para(key: str, lang: str = "ru", **fmt: Any) -> str:
    return f"<p>{html.escape(t(key, lang, **fmt))}</p>"


def summary_counts(d, lang: str = "ru") -> dict[str, int]:
    """Headline counts of the report (and of metrics.json): schools, results, and the number
    of schools on each list of section 5."""
    f = d.flags
    return {
        "schools": int(d.schools_year["school_id"].nunique()),
        "municipalities": int(d.schools_year["municipality"].nunique()),
        "results": int(len(d.results)),
        # schools with a school effect (the others are "н/д" in the typology)
        "analysed": int(f["effect"].notna().sum()),
        "resilient": int(f["resilient"].sum()),
        "needs_review": int(f["needs_review"].sum()),
        "shnor": int(d.shnor["shnor"].sum()),
        "shnsu": int(f["shnsu"].sum()),
        "risk_zone": int(f["risk_zone"].sum()),
        "objectivity": int(d.objectivity["objectivity_flag"].sum()),
        # rows of the schools and results tables (student rows: in the exclusions table)
        "excluded": int((d.ledger["table"] != "students").sum()),
    }


def section_title(d, lang: str, min_n: int) -> str:
    sy = d.schools_year
    return "\n".join([
        f"<h1>{html.escape(t('report.title', lang))}</h1>",
        para("report.subtitle", lang, year=d.year, prev=d.year - 1,
             n_mun=sy["municipality"].nunique(), n_schools=sy["school_id"].nunique()),
        para("report.intro", lang, min_n=min_n),
    ])


def section_summary(d, lang: str) -> str:
    """Headline counts and the social gradient (PISA-style: the index alone, all schools)."""
    from analysis.publish.ses_report import fmt, ses_metrics

    g = ses_metrics(d.estimates, year=d.year)["gradient"]
    return "\n".join([
        heading("report.summary", lang), summary_table(summary_counts(d, lang), lang),
        para("report.summary_slope", lang, slope=fmt(g["slope"], "+.3f", lang),
             lo=fmt(g["slope_ci_low"], ".3f", lang), hi=fmt(g["slope_ci_high"], ".3f", lang),
             r2=fmt(g["r2"], ".0%", lang)),
    ])


def index_warnings(records: Sequence[Mapping[str, Any]], lang: str = "ru") -> str:
    """A note listing the indicators left out of the index (no variance or no values)."""
    if not records:
        return ""
    items = "; ".join(t("report.index_dropped_item", lang, indicator=r["indicator"],
                        year=r["year"], reason=t(f"na.{r['reason']}", lang)) for r in records)
    return para("report.index_dropped", lang, items=items)


def section_dynamics(d, lang: str) -> str:
    dyn = label_categories(dynamics(d.results), lang)
    return "\n".join([
        heading("report.dynamics", lang), para("report.dynamics_text", lang),
        html_table(dyn, lang, formats={"share_quality": fmt_pct, "share_low": fmt_pct}),
    ])


def section_methods(d, lang: str, params: Mapping[str, Any]) -> str:
    """Methods appendix: method in words, the data files with their SHA-256, the code and
    package versions, and every parameter of the run (paths relative to the project)."""
    from analysis.publish.flags_report import methods_text
    from analysis.publish.provenance import code_version, package_versions

    p = params
    flags_methods = methods_text(d, lang)
    signed = ", ".join(f"{k} ({'+' if v > 0 else '−'})" for k, v in p["index_indicators"].items())
    return "\n".join([
        heading("report.methods", lang),
        para("report.methods_text", lang, method=p["index_method"], indicators=signed,
             min_ind=p["index_min_indicators"], quality=quality_formula_text(p, lang),
             cov=p["ses_link_cov_type"], min_n=p["min_n"], seed=p["clusters_seed"]),
        f"<p>{html.escape(flags_methods)}</p>" if flags_methods else "",
        heading("report.data_files", lang, 3),
        para("report.data_files_text", lang),
        html_table(data_files_table(d.validation), lang),
        heading("report.code_version", lang, 3),
        f"<p>{html.escape(code_version_text(code_version(), lang))}</p>",
        html_table(packages_table(package_versions()), lang),
        heading("report.params_table", lang, 3),
        html_table(params_table(p, lang), lang),
    ])


def section_exclusions(d, lang: str, top_n: int) -> str:
    acc = label_categories(d.accounting, lang)
    led = d.ledger.sort_values(["analysis", "table", "year", "school_id"], kind="stable")
    cols = ["analysis", "table", "year", "school_id", "procedure", "subject", "grade",
            "source_row", "reason"]
    return "\n".join([
        heading("report.exclusions", lang, 3), para("report.exclusions_text", lang),
        html_table(acc, lang),
        heading("report.exclusions_list", lang, 3),
        html_table(label_categories(led[cols], lang), lang, max_rows=top_n),
    ])


def build_metrics(d, params: Mapping[str, Any]) -> dict[str, Any]:
    """metrics.json: headline numbers a researcher compares across runs (dvc exp show).

    Required keys (issue "Context"): ``index.variance_explained``, ``clusters.silhouette``,
    ``clusters.stability_ari``, ``similar.n_ranked``, and the flag counts (``counts``).
    """
    from analysis.publish.context_report import metrics as context_metrics
    from analysis.publish.flags_report import flag_metrics
    from analysis.publish.ses_report import ses_metrics

    counts = summary_counts(d)
    flags = flag_metrics(d)
    return {
        "year": d.year,
        "counts": counts,
        # schools with an estimate by typological group (sums to counts.analysed); the
        # schools without one: flags.typology_matrix, column "na"
        "typology": {k: v for k, v in flags.pop("typology").items() if k != "na"},
        "flags": flags,
        "ses": ses_metrics(d.estimates, year=d.year),
        **context_metrics(d.context),
        "accounting_balanced": bool(
            (d.accounting["in_scope"] == d.accounting["used"] + d.accounting["excluded"]).all()),
    }
