"""What is published besides the regional report: downloads, municipal reports, the index.

:func:`write_site` writes, into one folder (``data/processed/site/``, copied whole into the
report folder by :func:`analysis.pipeline.nbrun.publish_report`):

- ``tables.xlsx``: one sheet per table, Russian headers, frozen header row, numbers as
  numbers, plus a sheet describing every column (:mod:`analysis.publish.downloads`);
- ``data/<table>.csv`` (UTF-8 with BOM, ``;``, decimal comma: as Russian Excel opens it)
  and ``data/schools.parquet``: the same tables with stable column codes, one row per
  school for the schools table;
- ``mun/<slug>.html``: one report per municipality, its schools shown against the region;
- ``index.html``: every report and download.

Everything published obeys the small-cell rule: a value computed from fewer than
``min_n`` participants is left empty (downloads) or shown as «<min_n» (pages), and a
procedure with fewer than ``min_n`` participants is never named. No student key and no
student-level value is written. Every string from the data is escaped in HTML and
neutralised in CSV/XLSX (a name cannot run as a formula).
"""

from __future__ import annotations

import html
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.config import section
from analysis.i18n import label, t
from analysis.outputs import OutputError, write_text
from analysis.publish import downloads
from analysis.publish import flag_cards as fc
from analysis.publish import flag_text as ft
from analysis.publish import flags_report as fr
from analysis.publish import report as rp
from analysis.publish.data import ReportData
from analysis.publish.figures import use_style
from analysis.publish.html import (
    col_label,
    fmt_pct,
    heading,
    html_table,
    label_categories,
    para,
    table_wrap,
)
from analysis.publish.page import document, header_html
from analysis.publish.ses_figures import GradientCanvas

#: Columns of the schools table (one row per school of the reporting year), in order.
SCHOOL_COLUMNS = (
    "school_id", "school_name", "municipality", "settlement_type", "school_type",
    "enrollment", "social_index", "social_band", "anchored_index", "cluster", "cluster_name",
    "quality_index", "n_students", "quality_group", "effect", "effect_low", "effect_high",
    "direction", "years_above", "specs_held", "specs_total", "typology", "resilient",
    "needs_review", "shnor", "shnor_label", "p_rule", "shnsu", "risk_zone", "objectivity_flag",
)
_TRANSLIT = dict(zip("абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
                     ["a", "b", "v", "g", "d", "e", "e", "zh", "z", "i", "y", "k", "l", "m", "n",
                      "o", "p", "r", "s", "t", "u", "f", "kh", "ts", "ch", "sh", "shch", "",
                      "y", "", "e", "yu", "ya"]))


def slug(name: str) -> str:
    """A file name for a municipality: transliterated, lower case, ``a-z0-9-`` only."""
    text = "".join(_TRANSLIT.get(ch, ch) for ch in str(name).lower())
    text = re.sub(r"[^a-z0-9]+", "-", text).strip("-")
    return text[:60].rstrip("-") or "mo"


def municipality_files(names: list[str]) -> dict[str, str]:
    """Municipality -> ``mun/<slug>.html``, unique (a clash gets ``-2``, ``-3``, ...)."""
    out: dict[str, str] = {}
    used: set[str] = set()
    for name in sorted(names):
        base = slug(name)
        s, i = base, 1
        while s in used:
            i += 1
            s = f"{base}-{i}"
        used.add(s)
        out[name] = f"mun/{s}.html"
    return out


# --- tables ---------------------------------------------------------------------------------

def schools_table(d: ReportData, min_n: int, lang: str = "ru") -> pd.DataFrame:
    """One row per school of the reporting year: context, indices, effect, every flag.

    The quality index and quality group of a school with fewer than ``min_n`` students are
    left empty (a small school's result is never published).
    """
    f = d.flags.copy()
    sy = d.schools_year.drop_duplicates("school_id").set_index("school_id")
    f["enrollment"] = f["school_id"].map(sy["enrollment"]) if "enrollment" in sy else pd.NA
    idx = (d.social_index.loc[d.social_index["year"] == d.year]
           .drop_duplicates("school_id").set_index("school_id"))
    f["social_band"] = f["school_id"].map(idx["social_band"]).astype("Int64")
    cl = d.clusters.loc[d.clusters["year"] == d.year].drop_duplicates("school_id").set_index(
        "school_id")
    f["cluster"] = f["school_id"].map(cl["cluster"]).astype("Int64")
    by_lang = (d.context_summary.get("clusters", {}).get("names") or {}).get(lang) or {}
    names = {int(k): v for k, v in by_lang.items()}
    f["cluster_name"] = f["cluster"].map(lambda c: names.get(int(c), "") if pd.notna(c) else "")
    qg = d.quality_groups.loc[d.quality_groups["year"] == d.year].drop_duplicates(
        "school_id").set_index("school_id")
    f["quality_group"] = f["school_id"].map(qg["quality_group"]).astype("Int64")
    small = pd.to_numeric(f["n_students"], errors="coerce").fillna(0) < min_n
    f["quality_index"] = f["quality_index"].where(~small)
    f["quality_group"] = f["quality_group"].where(~small)
    columns = list(SCHOOL_COLUMNS)
    if "region" in sy:  # a national file: each school's region beside its municipality
        f["region"] = f["school_id"].map(sy["region"])
        columns.insert(columns.index("municipality"), "region")
    out = f.reindex(columns=columns)
    return out.sort_values([c for c in ("region", "municipality", "school_name", "school_id")
                            if c in out], kind="stable", ignore_index=True)


def shnor_procedures_table(d: ReportData, min_n: int) -> pd.DataFrame:
    """The low procedures of the ШНОР schools with at least ``min_n`` participants; a
    smaller procedure is never listed (the report's ШНОР table only counts it)."""
    det = d.shnor_details
    ids = set(d.flags.loc[d.flags["shnor"], "school_id"])
    if det.empty or "low" not in det:
        return pd.DataFrame(columns=["school_id", "school_name", "municipality", "year",
                                     "procedure", "subject", "grade", "participants",
                                     "share_low"])
    det = det.loc[det["school_id"].isin(ids)
                  & det["low"].astype("boolean").fillna(False).to_numpy(dtype=bool)]
    big = det.loc[pd.to_numeric(det["participants"], errors="coerce").fillna(0) >= min_n]
    names = ft.school_names(d)
    out = big.assign(school_name=big["school_id"].map(names["school_name"]),
                     municipality=big["school_id"].map(names["municipality"]))
    return out[["school_id", "school_name", "municipality", "year", "procedure", "subject",
                "grade", "participants", "share_low"]].sort_values(
        ["municipality", "school_name", "school_id", "year", "procedure", "subject", "grade"],
        kind="stable", ignore_index=True)


def typology_by_municipality(d: ReportData) -> pd.DataFrame:
    """Schools of each typological group by municipality (one row per municipality)."""
    f = d.flags
    m = pd.crosstab(f["municipality"], f["typology"].fillna("na"))
    return m.reset_index().rename_axis(columns=None)


def tables(d: ReportData, params: Mapping[str, Any]) -> dict[str, pd.DataFrame]:
    """Every published table, by its code: the downloads' content."""
    min_n = int(params["min_n"])
    return {
        "schools": schools_table(d, min_n, params.get("lang", "ru")),
        "shnor_procedures": shnor_procedures_table(d, min_n),
        "typology_by_municipality": typology_by_municipality(d),
        "changes": d.flag_changes.merge(ft.school_names(d).reset_index(), on="school_id",
                                   how="left").reindex(columns=[
                                       "school_id", "school_name", "municipality", "list",
                                       "change", "changed"]),
        "dynamics": rp.dynamics(d.results, min_n),
        "coverage": rp.coverage_table(d, min_n).pipe(
            lambda c: c.assign(participants=c["participants"].where(c["participants"] >= min_n))),
        "exclusions": rp.excluded_rows(d.ledger),
        "excluded_students": rp.excluded_students(d.ledger),
        "parameters": rp.params_table(params, params.get("lang", "ru")),
    }


def workbook_sheets(tabs: Mapping[str, pd.DataFrame], lang: str
                    ) -> tuple[dict[str, pd.DataFrame], dict[str, dict[str, str]]]:
    """The workbook's sheets: each table with labelled headers and category labels, plus a
    sheet describing the columns; and the number formats of the share columns."""
    sheets: dict[str, pd.DataFrame] = {}
    formats: dict[str, dict[str, str]] = {}
    fields = []
    for code, df in tabs.items():
        name = t(f"download.{code}", lang)
        shown = label_categories(df, lang)
        for kind in ("direction", "shnor_label", "list", "change"):  # codes -> words
            if kind in shown:
                shown[kind] = shown[kind].map(
                    lambda v, k=kind: label(k, v, lang) if isinstance(v, str) and v else "")
        titles = {c: label("typology", c, lang) if code == "typology_by_municipality"
                  and c != "municipality" else col_label(c, lang) for c in shown.columns}
        sheets[name] = shown.rename(columns=titles)
        formats[name] = {titles[c]: "0.0%" for c in shown.columns
                         if c.startswith("share_") or c == "p_rule"}
        fields += [{"sheet": name, "code": c, "title": titles[c]} for c in shown.columns]
    sheets[t("download.fields", lang)] = pd.DataFrame(fields).rename(columns={
        "sheet": t("download.col_sheet", lang), "code": t("download.col_code", lang),
        "title": t("download.col_title", lang)})
    return sheets, formats


# --- municipal reports ----------------------------------------------------------------------

def _counts(f: pd.DataFrame) -> dict[str, int]:
    return {"schools": len(f), "analysed": int(f["effect"].notna().sum()),
            "resilient": int(f["resilient"].sum()), "needs_review": int(f["needs_review"].sum()),
            "shnor": int(f["shnor"].sum()), "shnsu": int(f["shnsu"].sum()),
            "risk_zone": int(f["risk_zone"].sum()),
            "objectivity": int(f["objectivity_flag"].sum())}


def municipal_schools_table(s: pd.DataFrame, lang: str, min_n: int) -> pd.DataFrame:
    """The municipality's schools for its page: context, result, effect and lists."""
    na = t("value.na", lang)
    q = ft.fmt_values(s["quality_index"], ".3f", t("value.suppressed", lang, min_n=min_n))
    lists = fc.lists_text(s, lang) if len(s) else pd.Series(dtype=object)
    return pd.DataFrame({
        "school_name": s["school_name"].astype(object),
        "school_type": ft.labels_of(s["school_type"], "school_type", lang),
        "settlement_type": ft.labels_of(s["settlement_type"], "settlement_type", lang),
        "social_index": ft.fmt_values(s["social_index"], "+.2f", na),
        "quality_index": q,
        "effect_ci": ft.effect_ci(s, lang),
        "typology": ft.labels_of(s["typology"].fillna("na"), "typology", lang),
        "lists": lists.where(lists.astype(bool), "").astype(object),
    })


def municipal_dynamics(d: ReportData, mun: str, min_n: int, regional: pd.DataFrame) -> pd.DataFrame:
    """The municipality's shares by procedure, subject, grade and year beside the region's
    (``regional``: :func:`analysis.publish.report.dynamics` of all results); a share behind
    fewer than ``min_n`` participants is missing."""
    ids = set(d.schools.loc[d.schools["municipality"] == mun, "school_id"])
    own = rp.dynamics(d.results.loc[d.results["school_id"].isin(ids)], min_n)
    reg = regional
    keys = ["procedure", "subject", "grade", "year"]
    m = own[keys + ["share_quality", "share_low", "participants"]].merge(
        reg[keys + ["share_quality", "share_low"]], on=keys, suffixes=("", "_region"))
    m["participants"] = m["participants"].where(m["participants"] >= min_n)
    return m


def gradient_canvas(d: ReportData, lang: str):
    """The regional gradient of the municipal reports, drawn once
    (:class:`analysis.publish.ses_figures.GradientCanvas`)."""
    model = d.ses_link_summary.get("model", {})
    quarters = d.ses_sample["social_index"].quantile([0.25, 0.5, 0.75]).tolist()
    return GradientCanvas(d.ses_sample, d.ses_curve, tuple(model.get("support_bounds") or ()),
                          quarters, lang, shnsu_cut=fr.shnsu_cut_on_index(d))


@dataclass
class RegionView:
    """What every municipal page shows of the region, computed once per run (not once per
    municipality): the document's metadata, the region's counts and dynamics, each
    municipality's schools, every school's card and the gradient canvas."""

    meta: dict[str, str]
    counts: dict[str, int]
    dynamics: pd.DataFrame
    schools: dict[str, pd.DataFrame]
    cards: pd.Series
    canvas: Any

    def close(self) -> None:
        self.canvas.close()


def region_view(d: ReportData, params: Mapping[str, Any], lang: str) -> RegionView:
    """The :class:`RegionView` of a run (close it when the pages are written)."""
    f = d.flags
    return RegionView(
        meta=rp.report_meta(d, lang, params), counts=_counts(f),
        dynamics=rp.dynamics(d.results, int(params["min_n"])),
        schools={str(k): g.sort_values(["school_name", "school_id"], kind="stable")
                 for k, g in f.groupby("municipality", sort=True)},
        cards=fc.school_cards(d, lang, rp_flags(params), min_n=int(params["min_n"])),
        canvas=gradient_canvas(d, lang))


def municipal_page(d: ReportData, mun: str, params: Mapping[str, Any], *, lang: str,
                   view: RegionView) -> str:
    """The report of one municipality: its schools against the region (``view``)."""
    min_n = int(params["min_n"])
    s = view.schools.get(mun, d.flags.iloc[:0])
    own, region = _counts(s), view.counts
    counts = pd.DataFrame({"measure": [t(f"report.summary_{k}", lang) for k in own],
                           "municipality_n": list(own.values()),
                           "region_n": list(region.values())})
    with view.canvas.highlighted(s["school_id"], str(mun)) as fig:
        figure = rp.figure(fig, "gradient_mun", lang, close=False, municipality=mun, year=d.year)
    flagged = s.loc[fc.flagged(s), "school_id"]
    dyn = municipal_dynamics(d, mun, min_n, view.dynamics)
    sup = t("value.suppressed", lang, min_n=min_n)
    pct = {c: (lambda v: sup if pd.isna(v) else fmt_pct(v))
           for c in ("share_quality", "share_low", "share_quality_region", "share_low_region")}
    pct["participants"] = lambda v: sup if pd.isna(v) else str(int(v))
    meta = view.meta
    meta = {"region": meta["region"], "municipality": mun, "year": meta["year"],
            "date": meta["date"], "edition": meta["edition"], "code": meta["code"]}
    links = (f'<p><a href="../index.html">{html.escape(t("site.all_reports", lang))}</a> · '
             f'<a href="../report.html">{html.escape(t("site.regional_report", lang))}</a></p>')
    lead = links + para("site.mun_intro", lang, municipality=mun, min_n=min_n)
    body = "\n".join([
        heading("site.mun_summary", lang),
        html_table(counts, lang, caption=t("site.mun_summary_caption", lang,
                                           municipality=mun)),
        heading("site.mun_gradient", lang),
        figure,
        heading("site.mun_schools", lang),
        para("site.mun_schools_text", lang, min_n=min_n),
        html_table(municipal_schools_table(s, lang, min_n), lang,
                   caption=t("site.mun_schools_caption", lang, municipality=mun)),
        heading("site.mun_cards", lang),
        para("site.mun_cards_text", lang, n=len(flagged)),
        "".join(view.cards.reindex(flagged.tolist()).dropna().tolist()),
        heading("site.mun_trends", lang),
        html_table(label_categories(dyn, lang), lang, formats=pct,
                   caption=t("site.mun_trends_caption", lang, municipality=mun)),
    ])
    title = t("site.mun_title", lang, municipality=mun, year=d.year)
    header = header_html(title, lang, meta=meta, issuer=params.get("report_issuer"), lead=lead)
    return document(header + body, title=title, lang=lang)


# --- the index page -------------------------------------------------------------------------

def index_page(d: ReportData, params: Mapping[str, Any], files: Mapping[str, str], lang: str,
               downloads_list: list[tuple[str, str]], meta: Mapping[str, str]) -> str:
    """``index.html``: the regional report, every municipal report, every download."""
    f = d.flags
    by_mun = {str(k): g for k, g in f.groupby("municipality", sort=True)}
    rows = []
    for mun, path in files.items():
        c = _counts(by_mun.get(mun, f.iloc[:0]))
        rows.append(f'<tr data-mun="{html.escape(mun)}"><td><a href="{html.escape(path)}">'
                    f"{html.escape(mun)}</a></td><td class=\"num\">{c['schools']}</td>"
                    f"<td class=\"num\">{c['resilient']}</td><td class=\"num\">{c['shnor']}</td>"
                    f"<td class=\"num\">{c['shnsu']}</td><td class=\"num\">{c['risk_zone']}"
                    "</td></tr>")
    num = ' class="num"'
    heads = "".join(f'<th scope="col"{num if i else ""}>'
                    f"{html.escape(t(k, lang))}</th>" for i, k in enumerate(
                        ("col.municipality", "col.n_schools", "site.col_resilient",
                         "site.col_shnor", "site.col_shnsu", "site.col_risk")))
    table = table_wrap(f'<table class="sc-table"><caption><span class="tab-no"></span> '
                       f'{html.escape(t("site.index_caption", lang))}</caption><thead><tr>'
                       f'{heads}</tr></thead><tbody>{"".join(rows)}</tbody></table>')
    dl = "".join(f'<li><a href="{html.escape(p)}"><code translate="no">{html.escape(p)}</code>'
                 f"</a> — {html.escape(what)}</li>" for p, what in downloads_list)
    body = "\n".join([
        heading("site.index_regional", lang),
        f'<p><a href="report.html">{html.escape(t("site.regional_report", lang))}</a></p>',
        heading("site.index_municipal", lang), table,
        heading("site.index_downloads", lang), f"<ul>{dl}</ul>",
        para("site.index_privacy", lang, min_n=int(params["min_n"])),
    ])
    title = t("site.index_title", lang, year=d.year)
    return document(header_html(title, lang, meta=meta, issuer=params.get("report_issuer"))
                    + body, title=title, lang=lang)


# --- all of it ------------------------------------------------------------------------------

def write_site(d: ReportData, params: Mapping[str, Any], out: str | Path) -> list[Path]:
    """Write the downloads, the municipal reports and ``index.html`` into ``out`` (replaced
    whole). Returns the written files, sorted."""
    use_style()
    out = Path(out)
    lang = params.get("lang", "ru")
    try:
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
    except OSError as exc:
        raise OutputError("replace the folder", out, exc) from exc
    written: list[Path] = []
    tabs = tables(d, params)
    sheets, formats = workbook_sheets(tabs, lang)
    written.append(downloads.write_workbook(sheets, out / "tables.xlsx", formats=formats))
    listing = [("tables.xlsx", t("site.dl_xlsx", lang))]
    for code, df in tabs.items():
        written.append(downloads.write_csv(df, out / "data" / f"{code}.csv"))
        listing.append((f"data/{code}.csv", t(f"download.{code}", lang)))
    written.append(downloads.write_parquet(tabs["schools"], out / "data" / "schools.parquet"))
    listing.append(("data/schools.parquet", t("site.dl_parquet", lang)))
    files: dict[str, str] = {}
    if params.get("report_municipal", True):
        names = sorted(d.flags["municipality"].dropna().astype(str).unique())
        files = municipality_files(names)
        view = region_view(d, params, lang)
        try:
            for mun, path in files.items():
                page = municipal_page(d, mun, params, lang=lang, view=view)
                written.append(write_text(out / path, page))
        finally:
            view.close()
    written.append(write_text(out / "index.html", index_page(
        d, params, files, lang, listing, rp.report_meta(d, lang, params))))
    return sorted(written)


def rp_flags(params: Mapping[str, Any]) -> dict[str, Any]:
    """The ``flags`` section of the report's parameters (``flags_<key>`` -> ``<key>``)."""
    return section(dict(params), "flags")
