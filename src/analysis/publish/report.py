"""Stage 05: the regional report's own sections, its figure captions and metrics.json.

The title and the main findings, data coverage and exclusions, three years of dynamics, the
glossary and the methods appendix (each ``section_*`` returns escaped HTML), the
distributions figure, :func:`figure` (a figure numbered and captioned from the catalogue) and
:func:`build_metrics`.  Functions return plain values (HTML strings, matplotlib figures,
dicts); the report notebook only displays them.  The other sections are
:mod:`~analysis.publish.context_report`, :mod:`~analysis.publish.ses_report` and
:mod:`~analysis.publish.flags_report`; the tables, headings and values every section shares
are :mod:`analysis.publish.html`'s (every cell escaped, a value behind fewer than ``min_n``
participants suppressed).
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd

from analysis.i18n import catalogue, label, t
from analysis.outputs import write_json
from analysis.publish.context_report import metrics as context_metrics
from analysis.publish.data import ReportData
from analysis.publish.figures import ROLE, figure_html
from analysis.publish.flags_report import flag_metrics, methods_text
from analysis.publish.html import (
    fmt_pct,
    heading,
    html_table,
    label_categories,
    para,
    regions_of,
    stat,
    suppress,
)
from analysis.publish.page import header_html
from analysis.publish.provenance import code_version, package_versions
from analysis.publish.ses_estimates import fmt
from analysis.publish.ses_report import ses_metrics


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
    # plain matplotlib: seaborn's import (with scipy.stats) costs more than the figure
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    for ax, values, colour, axis in ((axes[0], index, ROLE["fit"], "x"),
                                     (axes[1], quality, ROLE["resilient"], "y")):
        ax.hist(values.dropna().to_numpy(dtype="float64"), bins=30, color=colour, alpha=0.75,
                edgecolor="white", linewidth=0.5)
        ax.set_xlabel(t(f"report.gradient_axis_{axis}", lang))
    for ax in axes:
        ax.set_ylabel(t("col.n_schools", lang))
    fig.tight_layout()
    return fig


def _param_keys() -> dict[str, str]:
    """Notebook parameter name (``clusters_k``) -> its dotted params.yaml key (``clusters.k``),
    from the catalogue's ``param.*`` names."""
    out = {}
    for key in catalogue():
        if key.startswith("param."):
            dotted = key[len("param."):]
            out[dotted.replace(".", "_", 1) if "." in dotted else dotted] = dotted
    return out


def param_value_text(dotted: str, value: Any, lang: str = "ru") -> str:
    """A parameter's value in words: options by their catalogue names (``mean_z`` ->
    «среднее стандартизованных показателей»), yes/no, «не задано», lists joined,
    indicator → sign or weight by the indicators' names."""
    cat = catalogue()

    def one(v: Any) -> str:
        code = "null" if v is None else str(v).lower() if isinstance(v, bool) else str(v)
        if dotted == "lang":  # the catalogue cannot key an entry by a language's code
            code = f"lang_{code}"
        if f"param_enum.{dotted}.{code}" in cat:
            return t(f"param_enum.{dotted}.{code}", lang)
        if f"param_value.{code}" in cat and (v is None or isinstance(v, bool) or code == "auto"):
            return t(f"param_value.{code}", lang)
        if isinstance(v, float):
            return f"{v:g}"
        return str(v)

    if isinstance(value, Mapping):
        def ind(k: str) -> str:
            return label("indicator", k, lang) if f"indicator.{k}" in cat else str(k)
        return "; ".join(f"{ind(k)}: {v:+g}" if isinstance(v, (int, float)) else f"{ind(k)}: {v}"
                         for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(one(v) for v in value) if value else t("param_value.null", lang)
    return one(value)


def params_table(params: Mapping[str, Any], lang: str = "ru") -> pd.DataFrame:
    """Parameters of the run by their names in ``lang``, values in words, and the key in
    ``params.yaml`` (for ``dvc exp run -S``)."""
    keys = _param_keys()
    rows = []
    for name, value in params.items():
        dotted = keys.get(name, name)
        title = t(f"param.{dotted}", lang) if dotted in keys.values() else name
        rows.append({"parameter": title, "value": param_value_text(dotted, value, lang),
                     "code": dotted})
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

def summary_counts(d: ReportData, lang: str = "ru") -> dict[str, int]:
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


def edition_date(iso: str | None, lang: str = "ru") -> str:
    """``"2025-11-30"`` -> «30.11.2025» (ru) or «30 November 2025» (en); "" when unset."""
    if not iso:
        return ""
    y, m, d = (int(x) for x in str(iso).split("-"))
    if lang == "ru":
        return f"{d:02d}.{m:02d}.{y}"
    return f"{d} {t(f'page.month_{m}', 'en')} {y}"


def report_meta(d: ReportData, lang: str, params: Mapping[str, Any]) -> dict[str, str]:
    """The document's metadata rows: region, reporting year, issuing date, edition, code."""
    v = code_version()
    code = f"school-context {v.get('package') or '?'}"
    if v.get("src"):
        code += f" ({str(v['src'])[:12]}{'' if v.get('clean') else ', ' + t('page.dirty', lang)})"
    return {"region": params.get("report_region") or "",
            "year": t("page.school_year", lang, year=d.year, prev=d.year - 1),
            "date": edition_date(params.get("report_date"), lang),
            "edition": params.get("report_edition") or "",
            "code": code}


def section_title(d: ReportData, lang: str, min_n: int,
                  params: Mapping[str, Any] | None = None) -> str:
    """The page's header: issuing body, title, metadata (region, year, date, edition, code
    version) and the introduction."""
    p = dict(params or {})
    sy = d.schools_year
    lead = "\n".join([
        para("report.subtitle", lang, year=d.year, prev=d.year - 1,
             n_mun=sy["municipality"].nunique(), n_schools=sy["school_id"].nunique()),
        para("report.intro", lang, min_n=min_n)])
    return header_html(t("report.title", lang), lang, meta=report_meta(d, lang, p),
                       issuer=p.get("report_issuer"), lead=lead)


def key_findings(d: ReportData, lang: str) -> list[str]:
    """The year's main findings as sentences, computed from the results (plain text)."""
    c = summary_counts(d, lang)
    f = d.flags
    prev = (d.flags_summary or {}).get("previous_counts") or {}
    g = ses_metrics(d.estimates, year=d.year)["gradient"]
    out = [t("key.coverage", lang, schools=c["schools"], mun=c["municipalities"],
             analysed=c["analysed"], excluded=c["excluded"])]
    if g.get("slope") is not None:
        out.append(t("key.gradient", lang, slope=fmt(g["slope"], "+.3f", lang),
                     lo=fmt(g["slope_ci_low"], ".3f", lang),
                     hi=fmt(g["slope_ci_high"], ".3f", lang), r2=fmt(g["r2"], ".0%", lang)))
    out.append(t("key.resilient", lang, n=c["resilient"], review=c["needs_review"],
                 prev=prev.get("resilient", t("value.na", lang))))
    sure = int((f["shnor"] & f["shnor_label"].eq("reliable")).sum())
    out.append(t("key.shnor", lang, n=c["shnor"], sure=sure,
                 prev=prev.get("shnor", t("value.na", lang))))
    both = int((f["shnsu"] & f["shnor"]).sum()) if {"shnsu", "shnor"} <= set(f) else 0
    out.append(t("key.shnsu", lang, n=c["shnsu"], both=both,
                 prev=prev.get("shnsu", t("value.na", lang))))
    if c["risk_zone"] or c["objectivity"]:
        out.append(t("key.risk", lang, risk=c["risk_zone"], objectivity=c["objectivity"]))
    return out


def section_summary(d: ReportData, lang: str) -> str:
    """The year's main findings in words, then the headline counts."""
    items = "".join(f"<li>{html.escape(x)}</li>" for x in key_findings(d, lang))
    return "\n".join([
        heading("report.summary", lang),
        f'<div class="key"><p><strong>{html.escape(t("key.title", lang))}</strong></p>'
        f"<ul>{items}</ul></div>",
        summary_table(summary_counts(d, lang), lang),
    ])


def coverage_table(d: ReportData, min_n: int) -> pd.DataFrame:
    """Schools and participants by procedure, subject, grade and year (regional totals;
    every total is far above ``min_n`` or it is not shown)."""
    r = d.results.loc[d.results["participants"] > 0]
    g = r.groupby(["procedure", "subject", "grade", "year"], sort=True).agg(
        n_schools=("school_id", "nunique"), participants=("participants", "sum")).reset_index()
    return g


def section_coverage(d: ReportData, lang: str, min_n: int, top_n: int) -> str:
    """Data coverage, the validation summary and the exclusions (every excluded row)."""
    v = d.validation or {}
    cov = coverage_table(d, min_n)
    small = cov["participants"] < min_n
    cov = label_categories(cov, lang)
    cov["participants"] = suppress(cov["participants"], cov["participants"].where(~small, 0),
                                   min_n, lang, lambda x: str(int(x)))
    files = ", ".join(f["file"] for f in v.get("files", []))
    return "\n".join([
        heading("report.coverage", lang),
        para("report.coverage_text", lang, files=files or t("value.na", lang), min_n=min_n),
        html_table(cov, lang, max_rows=top_n,
                   caption=t("report.coverage_caption", lang)),
        heading("report.validation_summary", lang, 3),
        para("report.validation_text", lang, repairs=len(v.get("repairs", [])),
             warnings=len(v.get("warnings", [])), errors=len(v.get("errors", []))),
        _bullets(v.get("warnings", [])), _bullets(v.get("repairs", [])),
        section_exclusions(d, lang, top_n),
    ])


def _bullets(items: Sequence[str]) -> str:
    return ("<ul>" + "".join(f"<li>{html.escape(str(x))}</li>" for x in items) + "</ul>"
            if items else "")


def section_glossary(lang: str) -> str:
    """Terms and abbreviations of the report, alphabetical in ``lang``."""
    keys = sorted({k.split(".")[1] for k in catalogue() if k.startswith("glossary.")},
                  key=lambda k: t(f"glossary.{k}.term", lang).lower())
    rows = "".join(f"<dt>{html.escape(t(f'glossary.{k}.term', lang))}</dt>"
                   f"<dd>{html.escape(t(f'glossary.{k}.text', lang))}</dd>" for k in keys)
    return "\n".join([heading("report.glossary", lang),
                      f'<dl class="glossary">{rows}</dl>'])


def dynamics(results: pd.DataFrame, min_n: int = 0) -> pd.DataFrame:
    """Regional share of «4»/«5» and of low results by procedure, subject, grade and year
    (participant-weighted), with the participants behind each; a share behind fewer than
    ``min_n`` participants is missing (never shown)."""
    r = results.loc[results["participants"] > 0].assign(
        good=lambda d: (d["n_mark4"] + d["n_mark5"]).astype("float64"),
        low=lambda d: d["n_low"].astype("float64"),
        n=lambda d: d["participants"].astype("float64"),
        n_marked=lambda d: d["participants"].where(d["kind"] == "marked", 0).astype("float64"),
    )
    g = r.groupby(["procedure", "subject", "grade", "year"], sort=True)[
        ["good", "low", "n", "n_marked"]].sum()
    out = pd.DataFrame({
        "share_quality": (g["good"] / g["n_marked"]).where(g["n_marked"] >= max(min_n, 1)),
        "share_low": (g["low"] / g["n"]).where(g["n"] >= max(min_n, 1)),
        "participants": g["n"].astype("int64"),
    })
    return out.reset_index()


def cohort_drop(dyn: pd.DataFrame, procedure: str = "VPR") -> pd.DataFrame:
    """The change of the share of «4»/«5» from grade 4 to grade 5 of the same cohort (grade 4
    in year y, grade 5 in y + 1), by subject: the regional drop at the move to basic school.
    Empty when the data hold no grade 4 with a following year."""
    v = dyn.loc[dyn["procedure"] == procedure]
    g4 = v.loc[v["grade"] == 4, ["subject", "year", "share_quality"]]
    g5 = v.loc[v["grade"] == 5, ["subject", "year", "share_quality"]].assign(
        year=lambda d: d["year"] - 1)
    m = g4.merge(g5, on=["subject", "year"], suffixes=("_4", "_5"))
    m = m.dropna(subset=["share_quality_4", "share_quality_5"])
    return m.assign(year_5=m["year"] + 1,
                    change=m["share_quality_5"] - m["share_quality_4"])[
        ["subject", "year", "share_quality_4", "year_5", "share_quality_5", "change"]]


def section_dynamics(d: ReportData, lang: str, min_n: int = 10, top_n: int = 30) -> str:
    """Three years of regional results by procedure, subject and grade, and the drop from
    grade 4 to grade 5 where the data hold both."""
    dyn = dynamics(d.results, min_n)
    drop = cohort_drop(dyn)
    na = t("value.suppressed", lang, min_n=min_n)
    shown = label_categories(dyn, lang)
    pct = {c: (lambda v: na if pd.isna(v) else fmt_pct(v)) for c in ("share_quality", "share_low")}
    parts = [heading("report.dynamics", lang), para("report.dynamics_text", lang),
             html_table(shown, lang, formats=pct, max_rows=top_n)]
    parts.append(heading("report.cohort", lang, 3))
    if drop.empty:
        parts.append(para("report.cohort_none", lang))
    else:
        parts += [para("report.cohort_text", lang),
                  html_table(label_categories(drop, lang), lang, formats={
                      "share_quality_4": fmt_pct, "share_quality_5": fmt_pct,
                      "change": lambda v: stat(100 * v, "+.1f", lang) + " п. п."
                      if lang == "ru" else stat(100 * v, "+.1f", lang) + " pp"})]
    return "\n".join(parts)


def section_methods(d: ReportData, lang: str, params: Mapping[str, Any]) -> str:
    """Methods appendix: method in words, the data files with their SHA-256, the code and
    package versions, and every parameter of the run (paths relative to the project)."""
    p = params
    flags_methods = methods_text(d, lang)
    signed = ", ".join(f"{label('indicator', k, lang)} ({'+' if v > 0 else '−'})"
                       for k, v in p["index_indicators"].items())
    return "\n".join([
        heading("report.methods", lang),
        para("report.methods_text", lang,
             method=param_value_text("index.method", p["index_method"], lang),
             indicators=signed, min_ind=p["index_min_indicators"],
             quality=quality_formula_text(p, lang),
             cov=param_value_text("ses_link.cov_type", p["ses_link_cov_type"], lang),
             min_n=p["min_n"], seed=p["clusters_seed"]),
        f"<p>{html.escape(flags_methods)}</p>" if flags_methods else "",
        heading("report.data_files", lang, 3),
        para("report.data_files_text", lang),
        html_table(data_files_table(d.validation), lang),
        heading("report.code_version", lang, 3),
        f"<p>{html.escape(code_version_text(code_version(), lang))}</p>",
        html_table(packages_table(package_versions()), lang),
        heading("report.params_table", lang, 3),
        para("report.params_text", lang),
        html_table(params_table(p, lang), lang),
    ])


def excluded_rows(ledger: pd.DataFrame) -> pd.DataFrame:
    """The excluded rows of the schools and results tables, one per row with its reason
    (students' rows are only counted: :func:`excluded_students`)."""
    cols = ["analysis", "table", "year", "school_id", "procedure", "subject", "grade",
            "source_row", "reason"]
    led = ledger.loc[ledger["table"] != "students"].reindex(columns=cols)
    return led.sort_values(["analysis", "table", "year", "school_id"], kind="stable",
                           ignore_index=True)


def excluded_students(ledger: pd.DataFrame) -> pd.DataFrame:
    """Excluded rows of the students table counted by analysis and reason: nothing about a
    single student is published, not even which row was left out."""
    st = ledger.loc[ledger["table"] == "students"]
    return (st.groupby(["analysis", "reason"], sort=True).size().rename("n_rows")
            .reset_index())


def section_exclusions(d: ReportData, lang: str, top_n: int) -> str:
    acc = label_categories(d.accounting, lang)
    led = excluded_rows(d.ledger)
    students = excluded_students(d.ledger)
    regions = regions_of(d)
    listed = (para("report.national_exclusions", lang, n=len(led), n_regions=regions.nunique())
              if regions is not None else
              html_table(label_categories(led, lang), lang, max_rows=top_n,
                         caption=t("report.exclusions_caption", lang, n=len(led))))
    return "\n".join([
        heading("report.exclusions", lang, 3), para("report.exclusions_text", lang),
        html_table(acc, lang),
        heading("report.exclusions_list", lang, 3),
        listed,
        *([para("report.exclusions_students", lang),
           html_table(label_categories(students, lang), lang)] if len(students) else []),
    ])


def build_metrics(d: ReportData, params: Mapping[str, Any]) -> dict[str, Any]:
    """metrics.json: headline numbers a researcher compares across runs (dvc exp show).

    Required keys (issue "Context"): ``index.variance_explained``, ``clusters.silhouette``,
    ``clusters.stability_ari``, ``similar.n_ranked``, and the flag counts (``counts``).
    """
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
        **context_metrics(d.context_summary),
        "accounting_balanced": bool(
            (d.accounting["in_scope"] == d.accounting["used"] + d.accounting["excluded"]).all()),
    }


def figure(fig: plt.Figure, key: str, lang: str = "ru", close: bool = True, **fmt: Any) -> str:
    """Figure ``fig`` as numbered, captioned HTML with alt text, from the catalogue's
    ``fig.<key>.caption`` and ``fig.<key>.alt`` (:func:`analysis.publish.figures.figure_html`)."""
    return figure_html(fig, caption=t(f"fig.{key}.caption", lang, **fmt),
                       alt=t(f"fig.{key}.alt", lang, **fmt), lang=lang, close=close)
