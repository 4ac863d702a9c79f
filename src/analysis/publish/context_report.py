"""The report's context sections: the two indices, quality groups, clusters, similar schools.

Each ``section_*`` function returns escaped HTML (strings from the data go through
:func:`analysis.publish.html.html_table` or :func:`html.escape`); each ``fig_*`` returns a
matplotlib figure the notebook displays.  Inputs are the stage 02 outputs in
:class:`analysis.publish.data.ReportData` (``context`` is ``context.json``).
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from analysis.i18n import label, t
from analysis.publish.data import ReportData
from analysis.publish.figures import ROLE
from analysis.publish.html import (
    col_label,
    fmt_num,
    fmt_pct,
    heading,
    html_table,
    label_categories,
    listing,
    para,
    stat,
)
from analysis.publish.typeset import number

#: Similar schools shown in the report: those below this percentile among their twins.
LOW_PERCENTILE = 20.0


# --- 2. the indices and quality groups -------------------------------------------------------

def index_table(ctx: Mapping[str, Any], lang: str = "ru") -> pd.DataFrame:
    """Weight of each indicator in the reporting year's index (signed z-scores)."""
    now = ctx["index"].get("reporting_year") or {}
    weights = now.get("weights", {})
    imputation = now.get("imputation", {})
    rows = [{"indicator": label("indicator", c, lang), "weight": w,
             "n_imputed": int(imputation.get(c, {}).get("n_imputed", 0))}
            for c, w in weights.items()]
    return pd.DataFrame(rows, columns=["indicator", "weight", "n_imputed"])


def section_index(ctx: Mapping[str, Any], lang: str = "ru") -> str:
    """Method, weights, variance explained, imputed values and bands of the social index."""
    idx = ctx["index"]
    now = idx.get("reporting_year") or {}
    edges = idx["band_edges"]
    bands = pd.DataFrame({
        "band": list(range(1, len(edges) + 2)),
        "band_range": _band_ranges(edges),
        "n_schools": [int(idx["bands"].get(str(b), 0)) for b in range(1, len(edges) + 2)],
    })
    return "\n".join([
        heading("report.index_method", lang, 3),
        para("report.index_method_text", lang, method=t(f"index_method.{idx['method']}", lang),
             ve=stat(idx.get("variance_explained"), ".0%", lang, "not_computed"),
             n_imputed=now.get("n_imputed_schools", 0)),
        html_table(index_table(ctx, lang), lang, formats={"weight": fmt_num(3)}),
        para("report.index_bands_text", lang, n=len(edges) + 1),
        html_table(bands, lang),
    ])


def _band_ranges(edges: list[float]) -> list[str]:
    lows = [None, *edges]
    highs = [*edges, None]
    out = []
    for lo, hi in zip(lows, highs, strict=True):
        if lo is None:
            out.append(f"< {hi:+.1f}")
        elif hi is None:
            out.append(f"≥ {lo:+.1f}")
        else:
            out.append(f"{lo:+.1f} … {hi:+.1f}")
    return out


def section_quality_groups(ctx: Mapping[str, Any], lang: str, min_n: int) -> str:
    """Each quality group's mean level, range and distribution of students over marks."""
    q = ctx["quality_groups"]
    groups = pd.DataFrame(q["groups"])
    cols = ["quality_group", "n_schools", "mean_quality", "min_quality", "max_quality",
            "share_mark2", "share_mark3", "share_mark4", "share_mark5"]
    groups = groups.reindex(columns=cols)
    how = (t("report.quality_groups_quantiles", lang, n=q["n_groups"])
           if q["method"] == "quantiles" else
           t("report.quality_groups_cutoffs", lang,
             cutoffs=", ".join(f"{c:.2f}" for c in q["cutoffs"])))
    na = t("value.na", lang)
    shares = {c: (lambda v: na if pd.isna(v) else fmt_pct(v)) for c in cols[5:]}
    return "\n".join([
        heading("report.quality_groups", lang, 3),
        para("report.quality_groups_text", lang, how=how, min_n=min_n),
        html_table(groups, lang, formats={"mean_quality": fmt_num(3), "min_quality": fmt_num(3),
                                          "max_quality": fmt_num(3), **shares}),
    ])


# --- 3. clusters -----------------------------------------------------------------------------

def cluster_table(d: ReportData, lang: str, min_n: int) -> pd.DataFrame:
    """Profile of each cluster: name, size, mean index, median enrollment, settlement and
    main type, mean quality (schools with at least ``min_n`` students), stability."""
    c = d.context_summary["clusters"]
    sy = d.schools_year[["school_id", "enrollment", "settlement_type", "school_type"]]
    df = d.clusters[["school_id", "cluster", "social_index"]].merge(sy, on="school_id",
                                                                    how="left")
    sy_now = d.school_year.loc[d.school_year["year"] == d.year]
    q = sy_now.loc[sy_now["n_students"] >= min_n, ["school_id", "quality_index"]]
    df = df.merge(q, on="school_id", how="left")
    # ЕГЭ on its own (when the quality index uses marks): pooled over the cluster's schools
    # with at least min_n ЕГЭ sittings
    ege = sy_now.reindex(columns=["school_id", "ege_not_failing", "n_ege"])
    ege = ege.loc[ege["n_ege"].fillna(0).astype("int64") >= min_n]
    df = df.merge(ege, on="school_id", how="left")
    n_ege = df["n_ege"].astype("float64")
    df["ege_pass"] = df["ege_not_failing"].astype("float64") * n_ege
    df["n_ege_f"] = n_ege
    g = df.groupby("cluster", sort=True)
    out = pd.DataFrame({
        "cluster_name": pd.Series(c["names"][lang]).rename(index=int),
        "n_schools": g.size(),
        "social_index": g["social_index"].mean(),
        "enrollment_median": g["enrollment"].median(),
        "share_city": g["settlement_type"].agg(lambda s: (s == "city").mean()),
        "share_village": g["settlement_type"].agg(lambda s: (s == "village").mean()),
        "main_type": g["school_type"].agg(lambda s: s.value_counts().sort_index()
                                          .sort_values(ascending=False, kind="stable")
                                          .index[0]),
        "quality_index": g["quality_index"].mean(),
        "ege_not_failing": g["ege_pass"].sum(min_count=1) / g["n_ege_f"].sum(min_count=1),
    })
    if out["ege_not_failing"].isna().all():  # no ЕГЭ, or ЕГЭ already inside the index
        out = out.drop(columns="ege_not_failing")
    jac = (c.get("stability") or {}).get("jaccard") or {}
    out["stability_jaccard"] = [jac.get(str(k)) for k in out.index]
    out.index.name = "cluster"
    out = out.reset_index()
    return label_categories(out.rename(columns={"main_type": "school_type"}), lang).rename(
        columns={"school_type": "main_type"})


def index_warnings(records: Sequence[Mapping[str, Any]], lang: str = "ru") -> str:
    """A note listing the indicators left out of the index (no variance or no values)."""
    if not records:
        return ""
    items = "; ".join(t("report.index_dropped_item", lang, indicator=r["indicator"],
                        year=r["year"], reason=t(f"na.{r['reason']}", lang)) for r in records)
    return para("report.index_dropped", lang, items=items)


def section_clusters(d: ReportData, lang: str, min_n: int) -> str:
    c = d.context_summary["clusters"]
    feats = ", ".join(col_label(f, lang) for f in [*c["numeric"], *c["categorical"]])
    how_k = (t("report.clusters_k_auto", lang, criterion=t(
        "report.criterion_bic" if c["method"] == "gmm" else "report.criterion_silhouette",
        lang)) if c["k_requested"] == "auto" else t("report.clusters_k_given", lang))
    stab = c.get("stability_ari")
    na_silhouette = "one_cluster" if c["k"] == 1 else "not_computed"
    na = t("value.na", lang)
    table = cluster_table(d, lang, min_n)
    return "\n".join([
        heading("report.clusters", lang),
        para("report.clusters_text", lang, k=c["k"], method=t(f"cluster_method.{c['method']}",
                                                               lang),
             features=feats, how_k=how_k,
             silhouette=stat(c.get("silhouette"), ".2f", lang, na_silhouette)),
        para("report.clusters_stability", lang, n_boot=c.get("n_boot", 0),
             ari=stat(stab, ".2f", lang, "not_computed")),
        index_warnings(d.context_summary["index"].get("warnings", []), lang),
        para("report.clusters_ege", lang, min_n=min_n) if "ege_not_failing" in table else "",
        html_table(table, lang, formats={
            "share_city": fmt_pct, "share_village": fmt_pct, "social_index": fmt_num(2),
            "quality_index": lambda v: na if pd.isna(v) else f"{v:.3f}",
            "ege_not_failing": lambda v: na if pd.isna(v) else fmt_pct(v),
            "enrollment_median": fmt_num(0),
            "stability_jaccard": lambda v: na if v is None or pd.isna(v) else f"{v:.2f}"}),
    ])


def fig_criterion(curve: pd.DataFrame, chosen: int, method: str, lang: str = "ru"
                  ) -> plt.Figure:
    """The clustering criterion by k (silhouette on a sample; BIC for mixtures)."""
    fig, ax = plt.subplots(figsize=(6, 3.2))
    col = "bic" if method == "gmm" else "silhouette"
    data = curve.dropna(subset=[col])
    ax.plot(data["k"], data[col], marker="o", color=ROLE["fit"])
    if chosen in set(data["k"]):
        y = float(data.loc[data["k"] == chosen, col].iloc[0])
        ax.scatter([chosen], [y], s=120, facecolors="none", edgecolors=ROLE["highlight"],
                   linewidths=2, zorder=3)
    ax.set_xlabel(t("report.axis_k", lang))
    ax.set_ylabel(t(f"report.criterion_{col}", lang))
    ax.set_xticks(list(data["k"]))
    fig.tight_layout()
    return fig


def fig_profile_heatmap(d: ReportData, lang: str = "ru") -> plt.Figure:
    """Heatmap of the clusters' profiles: each feature's cluster mean in SDs of the region
    (numbers), or share (categories, 0..1 shown as the difference from the region)."""
    c = d.context_summary["clusters"]
    df = d.clusters.copy()
    rows = {}
    for f in c["numeric"]:
        v = df[f].astype("float64")
        sd = v.std(ddof=0) or 1.0
        rows[col_label(f, lang)] = (
            (v - v.mean()) / sd).groupby(df["cluster"]).mean()
    sy = d.schools_year.set_index("school_id")
    for cat in ("settlement_type", "school_type"):
        values = df["school_id"].map(sy[cat]) if cat not in df.columns else df[cat]
        for lev in sorted(values.dropna().unique()):
            share = (values == lev).astype("float64")
            rows[f"{col_label(cat, lang)}: {label(cat, lev, lang)}"] = (
                share.groupby(df["cluster"]).mean() - share.mean())
    mat = pd.DataFrame(rows).T
    mat.columns = [textwrap.fill(f"{k}. {c['names'][lang][str(k)]}", 22) for k in mat.columns]
    fig, ax = plt.subplots(figsize=(2.4 + 1.6 * mat.shape[1], 0.4 * mat.shape[0] + 1.4))
    annot = mat.apply(lambda col: [number(v, "+.2f", lang) for v in col])
    values = mat.to_numpy(dtype="float64")
    span = (float(np.nanmax(np.abs(values))) if np.isfinite(values).any() else 0.0) or 1.0
    ax.imshow(values, cmap="RdBu_r", vmin=-span, vmax=span, aspect="auto",
              interpolation="nearest")
    for (i, j), text in np.ndenumerate(annot.to_numpy()):  # k x rows cells: a few dozen
        dark = abs(values[i, j]) > 0.6 * span
        ax.text(j, i, text, ha="center", va="center", fontsize=8,
                color="white" if dark else "black")
    ax.set_xticks(range(mat.shape[1]), list(mat.columns), fontsize=8)
    ax.set_yticks(range(mat.shape[0]), list(mat.index), fontsize=8)
    ax.xaxis.tick_top()
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    fig.tight_layout()
    return fig


# --- 3.x similar schools ---------------------------------------------------------------------

def similar_table(d: ReportData, lang: str, min_n: int) -> pd.DataFrame:
    """Ranked schools below :data:`LOW_PERCENTILE` among their twins, with the closest twin
    that does better and by how much (every number rests on >= ``min_n`` students)."""
    r = d.similar.loc[d.similar["rank"].notna()].copy()
    r = r.loc[r["percentile"].astype("float64") < LOW_PERCENTILE]
    better = d.similar_peers.loc[d.similar_peers["gap"].astype("float64") > 0]
    best = (better.sort_values(["school_id", "order"], kind="stable")
            .drop_duplicates("school_id")[["school_id", "peer_id", "gap"]])
    names = d.schools_year.set_index("school_id")["school_name"]
    r = r.merge(best.rename(columns={"gap": "twin_gap"}), on="school_id", how="left")
    r = r.merge(d.schools_year[["school_id", "school_name", "municipality"]], on="school_id",
                how="left")
    r["twin_better"] = r["peer_id"].map(names)
    r["rank_text"] = [f"{int(a)} / {int(b)}" for a, b in zip(r["rank"], r["n_group"],
                                                            strict=True)]
    r = r.sort_values(["percentile", "school_id"], kind="stable")
    cols = ["school_id", "school_name", "municipality", "rank_text", "percentile",
            "n_better", "twin_better", "twin_gap"]
    return r[cols]


def section_similar(d: ReportData, lang: str, min_n: int, top_n: int) -> str:
    s = d.context_summary["similar"]
    table = similar_table(d, lang, min_n)
    na = t("value.na", lang)
    return "\n".join([
        heading("report.similar", lang, 3),
        para("report.similar_text", lang, k=s["k"], min_n=min_n, n_ranked=s["n_ranked"],
             n=s["n_schools"]),
        para("report.similar_low", lang, p=int(LOW_PERCENTILE)),
        listing(table, lang, d, max_rows=top_n, formats={
            "percentile": lambda v: na if pd.isna(v) else f"{float(v):.0f}",
            "twin_gap": lambda v: na if pd.isna(v) else f"+{float(v):.3f}",
            "twin_better": lambda v: "" if pd.isna(v) else str(v)}, group=None),
    ])


def metrics(ctx: Mapping[str, Any]) -> dict[str, Any]:
    """The context keys of ``metrics.json`` (``dvc exp show`` columns)."""
    c = ctx["clusters"]
    return {
        "index": {"method": ctx["index"]["method"],
                  "variance_explained": ctx["index"].get("variance_explained")},
        "clusters": {"method": c["method"], "k": c["k"], "silhouette": c.get("silhouette"),
                     "stability_ari": c.get("stability_ari"), "sizes": c["sizes"]},
        "similar": {"k": ctx["similar"]["k"], "n_ranked": ctx["similar"]["n_ranked"]},
    }
