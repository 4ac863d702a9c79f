"""The figures of the report's section 4 "family social status and results".

The schools and the expected result along the social index (:func:`fig_gradient`;
:class:`GradientCanvas` draws it once for the municipal reports), the variance decomposition
(:func:`fig_variance`), the municipality effects (:func:`fig_caterpillar`) and one panel per
component outcome (:func:`fig_small_multiples`).  Each returns a matplotlib figure, a "no
data" figure when the estimates lack its rows; the estimates are read and their values put
into words by :mod:`analysis.publish.ses_estimates`.  Strings come from the ``ses.*`` block of
``labels.yaml``.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from contextlib import contextmanager
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib import transforms
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from analysis.i18n import t
from analysis.publish.figures import ROLE
from analysis.publish.html import stat
from analysis.publish.ses_estimates import (
    ALL,
    BOUNDARY,
    GRADIENT,
    ML,
    ML_EMPTY,
    ST,
    ST_EMPTY,
    Est,
    _components,
    _float,
    _frame,
    _icc,
    _latest_year,
    _main_outcome,
    _one,
    _outcome_key,
    _select,
    fmt,
    municipality_effects,
    outcome_label,
)

#: Municipality labels are written on the caterpillar plot up to this many municipalities.
MAX_LABELLED = 60

#: Colours by meaning, from the colour-blind-safe palette shared by every figure.
_GREY, _BLUE, _RED, _ORANGE = ROLE["schools"], ROLE["fit"], ROLE["below"], ROLE["secondary"]


def _mpl(text: str) -> str:
    """Text safe for matplotlib (no mathtext from a ``$`` in a municipality's name)."""
    return str(text).replace("$", r"\$")


def _empty_figure(lang: str, size: tuple[float, float] = (6.0, 2.0)) -> Figure:
    fig, ax = plt.subplots(figsize=size)
    ax.text(0.5, 0.5, t("ses.no_data", lang), ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()
    return fig


def _sizes(n: pd.Series, lo: float = 6.0, span: float = 60.0) -> np.ndarray:
    v = pd.to_numeric(n, errors="coerce").astype("float64").fillna(1.0).clip(lower=1.0)
    top = float(v.max()) if len(v) else 1.0
    return lo + span * np.sqrt(v.to_numpy() / (top or 1.0))


def _quarter_edges(cuts: Sequence[float] | None, xmin: float, xmax: float) -> list[float]:
    vals = [float(c) for c in (cuts or []) if _float(c) is not None]
    if len(vals) == 3:
        vals = [min(xmin, vals[0]), *vals, max(xmax, vals[-1])]
    return vals if len(vals) == 5 else []


def fig_gradient(points: pd.DataFrame, curve: pd.DataFrame | None,
                 support: Sequence[float | None] | None,
                 quartile_cuts: Sequence[float] | None, lang: str = "ru", *,
                 shnsu_cut: float | None = None, resilient: Sequence[Any] | None = None,
                 highlight: Sequence[Any] | None = None, highlight_label: str = "") -> Figure:
    """Schools and the expected quality of a typical school along the social index.

    Parameters
    ----------
    points : DataFrame
        ``social_index``, ``quality_index``, ``n_students`` (and ``school_id`` for
        ``resilient``/``highlight``) per school.
    curve : DataFrame or None
        ``x, fit, ci_low, ci_high``: the expected quality and its 95% band.
    support : (float, float) or None
        Index values beyond which the fit is linear (dashed vertical lines); ``None`` or a
        non-finite bound is not drawn.
    quartile_cuts : sequence of float or None
        The three inner cuts of the index quarters (or all five edges); quarters 2 and 4 are
        shaded and every quarter labelled Q1..Q4 at the top.
    lang : {"ru", "en"}
    shnsu_cut : float, optional
        The ШНСУ cut on the index (drawn as a solid vertical line, labelled).
    resilient : sequence of school_id, optional
        Resilient schools, drawn in green with a dark edge (never in red: they do well).
    highlight : sequence of school_id, optional
        Schools to stand out (a municipality's own), in orange, labelled ``highlight_label``.

    Returns
    -------
    Figure
        One axes: the schools (points sized by the square root of participants, with a
        size legend), the band and the line of the fit, the support lines and the cut.
    """
    fig, ax = plt.subplots(figsize=(8, 5))
    pts = points if points is not None else pd.DataFrame()
    xs: list[float] = []
    if len(pts):
        x = pd.to_numeric(pts["social_index"], errors="coerce").astype("float64")
        y = pd.to_numeric(pts["quality_index"], errors="coerce").astype("float64")
        n = pts.get("n_students", pd.Series(1.0, index=pts.index))
        size = _sizes(n)
        ids = pts["school_id"] if "school_id" in pts else pd.Series("", index=pts.index)
        hi = ids.isin([] if highlight is None else list(highlight)).to_numpy()
        res = ids.isin([] if resilient is None else list(resilient)).to_numpy()
        base = ~(hi | res)
        ax.scatter(x[base], y[base], s=size[base], alpha=0.3 if not hi.any() else 0.18,
                   color=_GREY, linewidths=0, label=t("ses.legend_schools", lang))
        if res.any():
            ax.scatter(x[res], y[res], s=size[res], color=ROLE["resilient"], alpha=0.9,
                       edgecolors="#1a1a1a", linewidths=0.5, zorder=4,
                       label=t("ses.legend_resilient", lang))
        if hi.any():
            ax.scatter(x[hi], y[hi], s=size[hi], color=ROLE["highlight"], alpha=0.95,
                       edgecolors="#1a1a1a", linewidths=0.6, zorder=5,
                       label=highlight_label or t("ses.legend_highlight", lang))
        xs += [float(x.min()), float(x.max())]
        _size_legend(ax, pd.to_numeric(n, errors="coerce"), lang)
    if curve is not None and len(curve):
        c = curve.astype({k: "float64" for k in ("x", "fit", "ci_low", "ci_high")
                          if k in curve}).sort_values("x")
        if {"ci_low", "ci_high"} <= set(c.columns):
            ax.fill_between(c["x"], c["ci_low"], c["ci_high"], color=ROLE["band"], alpha=0.3,
                            linewidth=0, label=t("ses.legend_band", lang))
        ax.plot(c["x"], c["fit"], color=_BLUE, lw=2, label=t("ses.legend_fit", lang))
        xs += [float(c["x"].min()), float(c["x"].max())]
    labelled = False
    for bound in support or []:
        b = _float(bound)
        if b is None:
            continue
        ax.axvline(b, color="#555555", ls="--", lw=1,
                   label=None if labelled else t("ses.legend_linear_beyond", lang))
        labelled = True
    if _float(shnsu_cut) is not None:
        ax.axvline(float(shnsu_cut), color=ROLE["cut"], lw=1.2, ls=":",
                   label=t("ses.legend_shnsu_cut", lang))
    xs = [v for v in xs if math.isfinite(v)]
    edges = _quarter_edges(quartile_cuts, min(xs, default=0.0), max(xs, default=0.0))
    if edges:
        top = transforms.blended_transform_factory(ax.transData, ax.transAxes)
        for q in range(4):
            a, b = edges[q], edges[q + 1]
            if q % 2 == 1:
                ax.axvspan(a, b, color="#000000", alpha=0.04, linewidth=0)
            ax.text((a + b) / 2, 0.98, t("ses.quarter", lang, q=q + 1), transform=top,
                    ha="center", va="top", fontsize=9, color="#444444",
                    bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1})
    ax.set_xlabel(t("ses.axis_index", lang))
    ax.set_ylabel(t("ses.axis_quality", lang))
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=8)
    fig.tight_layout()
    return fig


class GradientCanvas:
    """The regional gradient drawn once, for many figures that differ only in which schools
    stand out (the municipal reports): :meth:`highlighted` adds one group's schools and the
    legend entry, and takes them away again when the figure has been saved.

    Parameters are those of :func:`fig_gradient` (without ``highlight``).
    """

    def __init__(self, points: pd.DataFrame, curve: pd.DataFrame | None,
                 support: Sequence[float | None] | None,
                 quartile_cuts: Sequence[float] | None, lang: str = "ru", *,
                 shnsu_cut: float | None = None) -> None:
        self.fig = fig_gradient(points, curve, support, quartile_cuts, lang,
                                shnsu_cut=shnsu_cut)
        self.ax = self.fig.axes[0]
        self.lang = lang
        pts = points if points is not None else pd.DataFrame()
        self._ids = pts["school_id"] if "school_id" in pts else pd.Series(dtype=object)
        self._x = pd.to_numeric(pts.get("social_index"), errors="coerce")
        self._y = pd.to_numeric(pts.get("quality_index"), errors="coerce")
        self._size = _sizes(pts.get("n_students", pd.Series(1.0, index=pts.index))) \
            if len(pts) else np.array([])

    @contextmanager
    def highlighted(self, ids: Sequence[Any], label: str):
        """The figure with the schools ``ids`` in orange, labelled ``label`` in the legend."""
        sel = self._ids.isin(list(ids)).to_numpy()
        coll = None
        if sel.any():
            coll = self.ax.scatter(self._x[sel], self._y[sel], s=self._size[sel],
                                   color=ROLE["highlight"], alpha=0.95, edgecolors="#1a1a1a",
                                   linewidths=0.6, zorder=5,
                                   label=textwrap.fill(_mpl(label), 34))
        self.ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=8)
        try:
            yield self.fig
        finally:
            if coll is not None:
                coll.remove()

    def close(self) -> None:
        plt.close(self.fig)


def _size_legend(ax, n: pd.Series, lang: str) -> None:
    """A second legend: what the point sizes mean (participants)."""
    v = n.dropna()
    v = v.loc[v > 0]
    if v.empty:
        return
    top = float(v.max())
    marks = sorted({int(round(float(v.quantile(q)), -1)) or int(v.min()) for q in (0.1, 0.5, 1.0)})
    handles = [Line2D([], [], marker="o", linestyle="", color=_GREY, alpha=0.6,
                      markersize=math.sqrt(float(_sizes(pd.Series([m, top]))[0])))
               for m in marks]
    legend = ax.legend(handles, [str(m) for m in marks], title=t("ses.legend_size", lang),
                       loc="lower left", bbox_to_anchor=(1.01, 0.0), frameon=False, fontsize=8,
                       title_fontsize=8, labelspacing=1.0)
    ax.add_artist(legend)


def fig_variance(estimates: pd.DataFrame, lang: str = "ru", *, year: int | None = None
                 ) -> Figure:
    """Variance decomposition of the empty and the conditional multilevel models.

    One panel of stacked horizontal bars per hierarchy: between municipalities vs between
    schools within municipalities, and (when the student models exist) between schools vs
    within schools.  Each bar is in % of the empty model's total variance, so the conditional
    bar falls short by the variance explained; the ICC is printed beside each bar (a variance
    at the boundary is said in words).

    Returns
    -------
    Figure
        One or two axes with two bar segments per model; a "no data" figure when the table
        has no multilevel rows.
    """
    est = _frame(estimates)
    panels = []
    for empty, cond, unit, key_b, key_w, title in (
            (ML_EMPTY, ML, "municipality", "ses.var_municipality",
             "ses.var_school_in_municipality", "ses.panel_schools_in_municipalities"),
            (ST_EMPTY, ST, "school", "ses.var_school", "ses.var_student",
             "ses.panel_students_in_schools")):
        if _select(est, [empty, cond]).empty:
            continue
        outcome = _main_outcome(est, [empty, cond])
        y = year if year is not None else _latest_year(est, [empty, cond], outcome)
        comps = {m: _components(est, m, y, outcome, unit) for m in (empty, cond)}
        panels.append((comps, empty, cond, t(key_b, lang), t(key_w, lang), t(title, lang)))
    if not panels:
        return _empty_figure(lang)
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 2.2 * len(panels) + 0.6),
                             squeeze=False)
    for ax, (comps, empty, cond, name_b, name_w, title) in zip(axes[:, 0], panels,
                                                               strict=True):
        ax.set_title(title, fontsize=10, loc="left")
        def var(e: Est | None) -> float:
            return 0.0 if e is None or e.value is None else max(e.value, 0.0)

        c0 = comps[empty]
        total = var(c0["between"]) + var(c0["within"])
        models = [m for m in (cond, empty) if any(v is not None for v in comps[m].values())]
        labels = [t("ses.model_conditional" if m == cond else "ses.model_empty", lang)
                  for m in models]
        for i, m in enumerate(models):
            c = comps[m]
            b, w = var(c["between"]), var(c["within"])
            scale = 100.0 / (total if total > 0 else (b + w) or 1.0)
            bars = ax.barh([i, i], [b * scale, w * scale], left=[0, b * scale],
                           color=[_ORANGE, _BLUE], height=0.6,
                           label=[name_b, name_w] if i == 0 else ["_", "_"])
            for rect, share in zip(bars, (b * scale, w * scale), strict=True):
                if share >= 6:
                    ax.text(rect.get_x() + rect.get_width() / 2, i, stat(share, ".0f", lang) + "%",
                            ha="center", va="center", color="white", fontsize=9)
            icc = _icc(c)
            text = (t("ses.icc_boundary_short", lang) if icc is not None and icc.boundary
                    else t("ses.icc_short", lang, icc=fmt(None if icc is None else icc.value,
                                                          ".1%", lang)))
            ax.text((b + w) * scale + 1.5, i, text, va="center", fontsize=9)
        ax.set_yticks(range(len(models)), labels)
        ax.set_xlim(0, 135)
        ax.set_xlabel(t("ses.axis_variance_share", lang))
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.45), ncol=2, frameon=False,
                  fontsize=9)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    fig.tight_layout()
    return fig


def fig_caterpillar(estimates: pd.DataFrame, lang: str = "ru", top: int | None = None, *,
                    model: str | None = None, year: int | None = None) -> Figure:
    """Municipality effects of the multilevel model, sorted, with 95% intervals.

    Parameters
    ----------
    estimates : DataFrame
        The estimates table; ``level == "municipality"`` rows of ``multilevel`` (else of
        ``multilevel_empty``, or of ``model``).
    lang : {"ru", "en"}
    top : int, optional
        Show only the ``top`` municipalities with the largest absolute effect.
    model, year : optional
        Which model and year (default: the conditional model, its latest year).

    Returns
    -------
    Figure
        One axes: a horizontal interval and a point per municipality, a zero line, the
        municipalities whose interval excludes zero in colour.  Names are written up to
        :data:`MAX_LABELLED` municipalities; beyond that the axis has no labels.
    """
    eff = municipality_effects(estimates, model=model, year=year)
    eff = eff.loc[eff["estimate"].notna()]
    if top is not None and len(eff) > top:
        keep = eff["estimate"].abs().sort_values(ascending=False, kind="stable").index[:top]
        eff = eff.loc[sorted(keep)]
    eff = eff.reset_index(drop=True)
    if eff.empty:
        return _empty_figure(lang)
    n = len(eff)
    labelled = n <= MAX_LABELLED
    height = min(max(2.5, 0.24 * n + 1.3), 16.0) if labelled else 7.0
    fig, ax = plt.subplots(figsize=(7.5, height))
    pos = np.arange(n)
    colours = np.where(eff["side"] > 0, _BLUE, np.where(eff["side"] < 0, _RED, _GREY))
    has_ci = eff["ci_low"].notna() & eff["ci_high"].notna()
    ax.hlines(pos[has_ci], eff.loc[has_ci, "ci_low"], eff.loc[has_ci, "ci_high"],
              colors=colours[has_ci.to_numpy()], lw=1.2 if labelled else 0.5,
              alpha=1.0 if labelled else 0.35)
    ax.axvline(0, color="#333333", lw=0.8)
    size = 22 if labelled else 6
    for side, colour, key in ((1, _BLUE, "ses.legend_above"), (-1, _RED, "ses.legend_below"),
                              (0, _GREY, "ses.legend_includes_zero")):
        sel = (eff["side"] == side).to_numpy()
        if sel.any():
            ax.scatter(eff.loc[sel, "estimate"], pos[sel], s=size, color=colour, zorder=3,
                       label=t(key, lang))
    if labelled:
        ax.set_yticks(pos, [_mpl(m) for m in eff["municipality"]], fontsize=8)
    else:
        ax.set_yticks([])
        ax.set_ylabel(t("ses.axis_municipalities", lang, n=n))
    ax.set_ylim(-0.8, n - 0.2)
    ax.set_xlabel(t("ses.axis_effect", lang))
    if (eff["reason"] == BOUNDARY).any():
        ax.set_title(t("ses.caterpillar_boundary", lang), fontsize=9)
    ax.legend(loc="lower right", frameon=False, fontsize=8)
    fig.tight_layout()
    return fig


def fig_small_multiples(component_points: pd.DataFrame, estimates: pd.DataFrame,
                        lang: str = "ru", *, year: int | None = None, ncols: int = 3
                        ) -> Figure:
    """One panel per component outcome: schools and the linear gradient line.

    Parameters
    ----------
    component_points : DataFrame
        ``school_id, outcome, social_index, value, n`` (school x component, ``n >= min_n``).
    estimates : DataFrame
        The estimates table; the ``gradient`` rows (``subset == "all"``) of each outcome give
        ``intercept`` and ``slope``.
    lang : {"ru", "en"}
    year : int, optional
        Year of the gradient rows; each outcome's latest year by default.
    ncols : int
        Panels per row.

    Returns
    -------
    Figure
        One axes per outcome (shared axes), titled by procedure · subject · grade and the
        slope (or «н/д (reason)»); unused grid cells are removed.
    """
    est = _frame(estimates)
    cp = component_points if component_points is not None else pd.DataFrame()
    outcomes = sorted(set(cp["outcome"].astype(str)), key=_outcome_key) if len(cp) else []
    if not outcomes:
        return _empty_figure(lang)
    ncols = max(1, min(ncols, len(outcomes)))
    nrows = math.ceil(len(outcomes) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.4 * ncols, 2.9 * nrows + 0.5),
                             sharex=True, sharey=True, squeeze=False)
    flat = list(axes.ravel())
    x_all = pd.to_numeric(cp["social_index"], errors="coerce").astype("float64")
    span = np.array([x_all.min(), x_all.max()], dtype="float64")
    for ax, outcome in zip(flat, outcomes, strict=False):
        d = cp.loc[cp["outcome"].astype(str) == outcome]
        ax.scatter(pd.to_numeric(d["social_index"], errors="coerce").astype("float64"),
                   pd.to_numeric(d["value"], errors="coerce").astype("float64"),
                   s=_sizes(d["n"] if "n" in d else pd.Series(1.0, index=d.index), 4.0, 30.0),
                   alpha=0.3, color=_GREY, linewidths=0)
        y = year if year is not None else _latest_year(est, GRADIENT, outcome)
        f = {"outcome": outcome, "subset": ALL, "year": y}
        slope = _one(est, GRADIENT, "slope", **f)
        icpt = _one(est, GRADIENT, "intercept", **f)
        if (slope is not None and slope.value is not None and icpt is not None
                and icpt.value is not None and np.isfinite(span).all()):
            ax.plot(span, icpt.value + slope.value * span, color=_BLUE, lw=2)
        slope_text = fmt(None if slope is None else slope.value, "+.3f", lang,
                         "not_computed" if slope is None else slope.reason)
        ax.set_title(_mpl(f"{outcome_label(outcome, lang)}\n"
                          f"{t('ses.panel_slope', lang, slope=slope_text)}"), fontsize=9)
    for i, ax in enumerate(flat[:len(outcomes)]):
        if i + ncols >= len(outcomes):  # nothing below it: its own x tick labels
            ax.tick_params(labelbottom=True)
    for ax in flat[len(outcomes):]:
        fig.delaxes(ax)
    fig.supxlabel(t("ses.axis_index", lang), fontsize=10)
    fig.supylabel(t("ses.axis_component", lang), fontsize=10)
    fig.tight_layout()
    return fig
