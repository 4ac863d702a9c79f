"""The small HTML pieces every page of the report is built from.

The section modules (:mod:`~analysis.publish.report`, :mod:`~analysis.publish.context_report`,
:mod:`~analysis.publish.ses_report`, :mod:`~analysis.publish.flags_report`,
:mod:`~analysis.publish.site`) import them from here, and this module imports none of them:
values as text (:func:`stat`, :func:`fmt_pct`, ...: never "nan", «н/д (reason)» where a value
could not be computed), headings and paragraphs from the catalogue (:func:`heading`,
:func:`para`), and tables.  Every table goes through :func:`html_table`, which escapes every
cell (school names are data, not markup) and renders numbers deterministically, in the one
box a table scrolls in (:func:`table_wrap`).  Values computed from fewer than ``min_n``
participants are replaced with a suppression mark by :func:`suppress` before they reach a
table; :func:`listing` shows a list of schools in full, or counted by region in a report over
several regions.

Import names from it (``from analysis.publish.html import heading``): a plain ``import html``
is the standard library's.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from analysis.i18n import label, t
from analysis.publish.data import ReportData

Formatter = Callable[[Any], str]


# --- values and labels -----------------------------------------------------------------------

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
    return text  # pages are typeset whole (analysis.publish.typeset), figures in figure_html


def fmt_num(digits: int = 2) -> Formatter:
    """A formatter: a number with ``digits`` decimals, "" for a missing value."""
    return lambda v: ("" if v is None or (isinstance(v, float) and np.isnan(v))
                      else f"{v:.{digits}f}")


def fmt_pct(v: Any) -> str:
    """A share as a percentage with one decimal (0.253 -> "25.3%"), "" for a missing value."""
    return "" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{100 * v:.1f}%"


def col_label(col: str, lang: str = "ru") -> str:
    """Label of column ``col``: catalogue key ``col.<col>`` when it exists, else ``col``."""
    try:
        return t(f"col.{col}", lang)
    except KeyError:
        return str(col)


def label_categories(df: pd.DataFrame, lang: str = "ru") -> pd.DataFrame:
    """Replace category codes (school type, settlement, typology, procedure, subject,
    reason, analysis, table) with their catalogue labels."""
    out = df.copy()
    for col in ("school_type", "settlement_type", "typology", "procedure", "subject",
                "reason", "analysis", "table"):
        if col in out:
            out[col] = out[col].map(lambda v, c=col: label(c, v, lang) if pd.notna(v) else "")
    return out


# --- headings and paragraphs -----------------------------------------------------------------

def anchor(key: str) -> str:
    """The stable ``id`` of the heading of catalogue key ``key`` (``report.summary`` ->
    ``summary``): links from the municipal reports and the index point at it."""
    return key.split(".", 1)[-1].replace(".", "-").replace("_", "-")


def heading(key: str, lang: str = "ru", level: int = 2) -> str:
    """``<h{level}>`` with the text of catalogue key ``key`` and its stable id (:func:`anchor`)."""
    return f'<h{level} id="{anchor(key)}">{html.escape(t(key, lang))}</h{level}>'


def para(key: str, lang: str = "ru", **fmt: Any) -> str:
    """``<p>`` with the text of catalogue key ``key`` (formatted with ``fmt``), escaped."""
    return f"<p>{html.escape(t(key, lang, **fmt))}</p>"


# --- tables ----------------------------------------------------------------------------------

#: Columns whose values are codes, hashes or versions: shown exactly as written (no number
#: typesetting, :mod:`analysis.publish.typeset`).
RAW_COLUMNS = frozenset({"school_id", "peer_id", "sha256", "version", "package", "file",
                         "tree", "code"})
#: A cell that reads as a number (right-aligned): digits with sign, decimal mark, spaces,
#: percent, an interval "a…b" or "a [lo; hi]", a suppression mark «<10».
_NUMERIC_CELL = re.compile(r"^[−+\-]?[\d\s\u202f.,]+%?(…[−+\-]?[\d\s\u202f.,]+%?)?"
                           r"(\s*\[[−+\-]?[\d.,]+%?;\s*[−+\-]?[\d.,]+%?\])?$|^<\d+$")


def _is_numeric_column(values: pd.Series, texts: list[str], lang: str) -> bool:
    if pd.api.types.is_bool_dtype(values):
        return False
    if pd.api.types.is_numeric_dtype(values):
        return True
    na_mark = t("value.na", lang)
    shown = [x for x in texts if x and not x.startswith(na_mark)]
    return bool(shown) and all(_NUMERIC_CELL.match(x) for x in shown)


def html_table(df: pd.DataFrame, lang: str = "ru", *,
               formats: Mapping[str, Formatter] | None = None, max_rows: int | None = None,
               index: bool = False, caption: str | None = None, group: str | None = None
               ) -> str:
    """Render a DataFrame as a complete, escaped HTML table with catalogue column labels.

    Column ``c`` is labelled with catalogue key ``col.<c>`` when the catalogue has it, else
    shown as is. Every cell is converted with its formatter (or ``str``) and then escaped;
    columns whose cells all read as numbers are right-aligned, text is left-aligned. Codes
    (:data:`RAW_COLUMNS`) are marked ``translate="no"``: never typeset.

    Nothing is ever cut: a table longer than ``max_rows`` rows is collapsed into a
    ``<details>`` element that says how many rows it holds. With ``group`` (a column, e.g.
    ``"municipality"``) the rows are stably sorted by it and each group gets a header row;
    rows of a table with a ``municipality`` column carry ``data-mun`` for the page's
    filter. The table scrolls sideways inside its box on a narrow screen
    (:func:`table_wrap`).
    """
    formats = dict(formats or {})
    if index:
        df = df.reset_index()
    if df.empty:
        return f'<p class="sc-note">{html.escape(t("value.empty", lang))}</p>'
    if group is not None and group in df:
        df = df.sort_values(group, kind="stable")
    mun = df["municipality"].astype(str).tolist() if "municipality" in df else None
    groups = df[group].astype(str).tolist() if group is not None and group in df else None
    shown = df.drop(columns=[group]) if groups is not None else df
    cols = list(shown.columns)
    texts = {c: [formats.get(c, _default)(v) for v in shown[c].tolist()] for c in cols}
    numeric = {c for c in cols if _is_numeric_column(shown[c], texts[c], lang)}
    num_cls = ' class="num"'
    head = "".join(f'<th{num_cls if c in numeric else ""} scope="col">'
                   f"{html.escape(col_label(c, lang))}</th>" for c in cols)
    lines = ['<table class="sc-table">']
    if caption:
        lines.append(f'<caption><span class="tab-no"></span> {html.escape(caption)}</caption>')
    lines.append(f"<thead><tr>{head}</tr></thead>")
    attrs = {c: (num_cls if c in numeric else "")
             + (' translate="no"' if c in RAW_COLUMNS else "") for c in cols}
    sizes = pd.Series(groups).value_counts().to_dict() if groups is not None else {}
    if groups is None:
        lines.append("<tbody>")
    for i in range(len(shown)):
        data_mun = f' data-mun="{html.escape(mun[i])}"' if mun is not None else ""
        if groups is not None and (i == 0 or groups[i] != groups[i - 1]):
            # one <tbody> per group: its header row, and the filter hides it whole
            mark = f' data-mun="{html.escape(mun[i])}"' if group == "municipality" else ""
            title = f"{groups[i]} ({sizes[groups[i]]})"
            lines.append(("</tbody>" if i else "") + f'<tbody{mark}><tr class="grp">'
                         f'<th colspan="{len(cols)}" scope="rowgroup">{html.escape(title)}'
                         "</th></tr>")
        row_mun = data_mun if groups is None else ""
        cells = "".join(f"<td{attrs[c]}>{html.escape(texts[c][i])}</td>" for c in cols)
        lines.append(f"<tr{row_mun}>{cells}</tr>")
    lines.append("</tbody></table>")
    table = table_wrap("".join(lines))
    if max_rows is not None and len(df) > max_rows:
        summary = t("page.show_rows", lang, n=len(df))
        table = f"<details><summary>{html.escape(summary)}</summary>{table}</details>"
    return table


def table_wrap(table_html: str) -> str:
    """``<div class="tbl">`` around a table: it scrolls sideways, the page does not."""
    return f'<div class="tbl">{table_html}</div>'


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


# --- lists of schools ------------------------------------------------------------------------

def regions_of(d: ReportData) -> pd.Series | None:
    """Municipality -> region when the schools come from several regions (a national file
    with the optional ``region`` column), else ``None`` (a regional report)."""
    sy = d.schools_year
    if "region" not in sy or sy["region"].nunique(dropna=True) < 2:
        return None
    return (sy.dropna(subset=["region"]).drop_duplicates("municipality")
            .set_index("municipality")["region"].astype(str))


def by_region(df: pd.DataFrame, regions: pd.Series) -> pd.DataFrame:
    """A list of schools (a ``municipality`` column) counted per region: every region, with
    the schools listed and the municipalities that have any."""
    mun = df["municipality"].astype(str)
    table = pd.DataFrame({"region": mun.map(regions).fillna(""), "municipality": mun})
    counts = table.groupby("region", sort=True).agg(
        n_listed=("municipality", "size"), n_municipalities_listed=("municipality", "nunique"))
    every = pd.Index(sorted(set(regions)), name="region")
    return counts.reindex(every, fill_value=0).astype("int64").reset_index()


def listing(df: pd.DataFrame, lang: str, d, *, max_rows: int | None = None,
            formats: Mapping[str, Formatter] | None = None,
            group: str | None = "municipality") -> str:
    """A list of schools: in full, grouped by municipality (a regional report); in a report
    over several regions, counted per region (:func:`by_region`) and the full list left to
    the downloads, so a national page stays readable (2,300 municipalities)."""
    regions = regions_of(d)
    if regions is None or "municipality" not in df:
        return html_table(df, lang, max_rows=max_rows, group=group, formats=formats)
    return "\n".join([para("report.national_listing", lang, n=len(df),
                           n_regions=regions.nunique()),
                      html_table(by_region(df, regions), lang, max_rows=max_rows)])
