"""PISA-style socio-economic gradient statistics, per outcome, subgroup and year.

For one set of schools and one outcome ``y`` (the quality index, or one component such as
ВПР mathematics grade 5), school-level weighted least squares on the social index ``x``
(weighted by participants) gives, as rows of the estimates table (model ``"gradient"``,
level ``"school"``, ``n`` = number of schools behind the row):

- ``"intercept"`` -- expected ``y`` at index 0 (the region's mean school), units of ``y``;
- ``"slope"`` -- units of ``y`` per 1 SD of the index (the social index is in SD units of
  the region's schools, so ``x`` enters as is), from ``y ~ x``;
- ``"r2"`` -- strength: the weighted R² of ``y ~ x`` (share 0..1), no standard error;
- ``"curvature"`` -- the coefficient of ``x²`` in ``y ~ x + x²`` (units of ``y`` per SD²);
- ``"gap_top_bottom_quarter"`` -- the participant-weighted mean ``y`` of the schools in the
  top quarter of the index minus that of the bottom quarter.  Quarters are quarters of
  *schools* (unweighted quantiles of ``x``; a school exactly on a cut belongs to the
  quarter), so they match the school-level flags; its standard error comes from a WLS of
  ``y`` on a top-quarter dummy over the schools of the two quarters, whose coefficient is
  exactly this difference.  ``n`` is the number of schools in the two quarters.

Standard errors are cluster-robust by municipality by default (statsmodels defaults: small
sample correction ``G/(G-1) (N-1)/(N-K)``, normal intervals); ``HC0`` .. ``HC3`` or
``nonrobust`` can be chosen.  Schools with a missing ``y``, ``x`` or weight, or a weight
<= 0, are left out before counting; a missing municipality forms its own cluster.

Nothing here raises on thin data: fewer than ``min_schools`` schools gives rows with
estimate ``<NA>`` and reason ``"too_few_schools"``; an index or outcome with the same value
for every school gives ``"no_variation"``; a curvature with fewer than 3 distinct index
values (or a gap whose quarters overlap) ``"too_few_distinct_index_values"``; standard
errors with schools in a single municipality ``"too_few_clusters"`` (the estimate is kept).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import statsmodels.api as sm

from analysis.ingest import schema
from analysis.models import estimates
from analysis.numeric import is_constant

MODEL = "gradient"
TERMS = ("intercept", "slope", "r2", "curvature", "gap_top_bottom_quarter")
COV_TYPES = ("cluster", "HC0", "HC1", "HC2", "HC3", "nonrobust")
#: Default least number of schools (as ``ses_link.min_schools``).
MIN_SCHOOLS = 10
#: The trend row of :func:`trend`.
TREND_TERM = "slope_trend_per_year"


def _wls(y: np.ndarray, X: np.ndarray, w: np.ndarray, cov_type: str,
         groups: np.ndarray | None) -> Any:
    kwargs: dict = {"cov_type": cov_type}
    if cov_type == "cluster":
        kwargs["cov_kwds"] = {"groups": groups}
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        return sm.WLS(y, X, weights=w).fit(**kwargs)


def _full_leverage(fit: Any) -> bool:
    """Whether some school has leverage 1: it alone determines a coefficient, and HC2/HC3
    (which divide by 1 - h) are undefined, even where rounding makes them finite."""
    q, _ = np.linalg.qr(np.asarray(fit.model.wexog, dtype="float64"))
    return bool(np.any((q**2).sum(axis=1) >= 1.0 - 1e-8))


def _coef_row(fit: Any, j: int, se_reason: str) -> dict:
    """Estimate, SE and 95% CI of coefficient ``j`` (SE blank when ``se_reason``, or with
    HC2/HC3 when a school has leverage 1: ``full_leverage_school``)."""
    row = {"estimate": float(fit.params[j])}
    if not se_reason and fit.cov_type in ("HC2", "HC3") and _full_leverage(fit):
        se_reason = "full_leverage_school"
    if se_reason:
        row["reason"] = se_reason
    else:
        ci = np.asarray(fit.conf_int(alpha=0.05), dtype="float64")
        row.update(std_error=float(fit.bse[j]), ci_low=float(ci[j, 0]), ci_high=float(ci[j, 1]))
    return row


def _groups(values: pd.Series) -> tuple[np.ndarray, int]:
    codes, uniques = pd.factorize(values.astype("object"), sort=True, use_na_sentinel=False)
    return codes, len(uniques)


def gradient_stats(data: pd.DataFrame, *, y: str, x: str = "social_index",
                   weight: str = "n_students", cluster: str = "municipality",
                   cov_type: str = "cluster", min_schools: int = MIN_SCHOOLS,
                   outcome: str | None = None, year: int | None = None,
                   subset: str = "all") -> pd.DataFrame:
    """Gradient statistics of ``y`` on ``x`` for one set of schools (module docstring).

    Parameters
    ----------
    data : DataFrame, shape (n_schools, ...)
        Columns ``y``, ``x`` (SD units), ``weight`` (participants) and, for
        ``cov_type="cluster"``, ``cluster`` (the municipality).
    y, x, weight, cluster : str
        Column names.
    cov_type : {"cluster", "HC0", "HC1", "HC2", "HC3", "nonrobust"}
    min_schools : int
        Fewer schools give rows with reason ``"too_few_schools"``.
    outcome, year, subset : labels of the rows
        ``outcome`` defaults to ``y``.

    Returns
    -------
    DataFrame, 5 rows (:data:`TERMS`), estimates-table format
        Never NaN; missing numbers are ``<NA>`` with a reason.

    Raises
    ------
    ValueError
        An unknown ``cov_type`` or a missing column (a programming error, not thin data).
    """
    if cov_type not in COV_TYPES:
        raise ValueError(f"cov_type must be one of {COV_TYPES}, got '{cov_type}'")
    needed = [y, x, weight] + ([cluster] if cov_type == "cluster" else [])
    missing = [c for c in needed if c not in data.columns]
    if missing:
        raise ValueError(f"gradient_stats: data lack column(s) {missing}")
    yv_all = pd.to_numeric(data[y], errors="coerce").astype("float64").to_numpy()
    xv_all = pd.to_numeric(data[x], errors="coerce").astype("float64").to_numpy()
    wv_all = pd.to_numeric(data[weight], errors="coerce").astype("float64").to_numpy()
    ok = np.isfinite(yv_all) & np.isfinite(xv_all) & np.isfinite(wv_all) & (wv_all > 0)
    d = data.loc[ok]
    yv, xv, wv = yv_all[ok], xv_all[ok], wv_all[ok]
    n = int(ok.sum())
    labels = {"model": MODEL, "outcome": y if outcome is None else outcome, "year": year,
              "subset": subset, "level": "school", "n": n}
    if n < max(int(min_schools), 1):
        return estimates.make({**labels, "term": t, "reason": "too_few_schools"} for t in TERMS)
    if is_constant(xv) or is_constant(yv):
        return estimates.make({**labels, "term": t, "reason": "no_variation"} for t in TERMS)

    def cov_for(mask: np.ndarray) -> tuple[str, np.ndarray | None, str]:
        if cov_type != "cluster":
            return cov_type, None, ""
        codes, k = _groups(pd.Series(d[cluster].to_numpy()[mask]))
        if k < 2:
            return "nonrobust", None, "too_few_clusters"
        return "cluster", codes, ""

    everyone = np.ones(n, dtype=bool)
    ct, groups, se_reason = cov_for(everyone)
    X = np.column_stack([np.ones(n), xv])
    lin = _wls(yv, X, wv, ct, groups)
    rows = [{**labels, "term": "intercept", **_coef_row(lin, 0, se_reason)},
            {**labels, "term": "slope", **_coef_row(lin, 1, se_reason)},
            {**labels, "term": "r2", "estimate": float(lin.rsquared),
             "reason": "no_standard_error"}]
    if np.unique(xv).size >= 3 and n > 3:
        quad = _wls(yv, np.column_stack([X, xv**2]), wv, ct, groups)
        rows.append({**labels, "term": "curvature", **_coef_row(quad, 2, se_reason)})
    else:
        rows.append({**labels, "term": "curvature", "reason": "too_few_distinct_index_values"})
    q25, q75 = np.quantile(xv, [0.25, 0.75])
    bottom, top = xv <= q25, xv >= q75
    gap = {**labels, "term": "gap_top_bottom_quarter"}
    if (bottom & top).any() or not bottom.any() or not top.any():
        gap["reason"] = "too_few_distinct_index_values"
    else:
        both = bottom | top
        gap["n"] = int(both.sum())
        ct_g, groups_g, reason_g = cov_for(both)
        fit = _wls(yv[both], np.column_stack([np.ones(both.sum()), top[both]]).astype("float64"),
                   wv[both], ct_g, groups_g)
        gap.update(_coef_row(fit, 1, reason_g))
        # the coefficient is the weighted mean difference; state it from the means directly
        gap["estimate"] = float(np.average(yv[top], weights=wv[top])
                                - np.average(yv[bottom], weights=wv[bottom]))
    rows.append(gap)
    return estimates.make(rows)


def _subset_label(by: Sequence[str], key: tuple) -> tuple[str, int | None]:
    parts, year = [], None
    for col, value in zip(by, key, strict=True):
        if col == "year":
            year = int(value)
        else:
            parts.append(f"{col}={value}")
    return (";".join(parts) or "all"), year


def gradients_by(data: pd.DataFrame, *, y: str, by: str | Sequence[str],
                 min_schools: int = MIN_SCHOOLS, x: str = "social_index",
                 weight: str = "n_students", cluster: str = "municipality",
                 cov_type: str = "cluster", outcome: str | None = None,
                 year: int | None = None) -> pd.DataFrame:
    """:func:`gradient_stats` per group of ``by``.

    Parameters
    ----------
    by : str or list of str
        Grouping columns.  ``"year"`` goes to the ``year`` column of the rows; the others
        make the subset label, ``"settlement_type=city"`` (several joined by ``";"``), or
        ``"all"`` when ``by`` is only ``"year"``.  Rows with a missing group value are left
        out.
    year : int, optional
        The year label when ``"year"`` is not in ``by``.
    Other parameters as :func:`gradient_stats`.

    Returns
    -------
    DataFrame
        Estimates rows of every group, sorted by the table key.
    """
    cols = [by] if isinstance(by, str) else list(by)
    if not cols:
        raise ValueError("gradients_by: give at least one column in by")
    missing = [c for c in cols if c not in data.columns]
    if missing:
        raise ValueError(f"gradients_by: data lack column(s) {missing}")
    frames = []
    for key, group in data.groupby(cols, sort=True, dropna=True):
        subset, group_year = _subset_label(cols, key if isinstance(key, tuple) else (key,))
        frames.append(gradient_stats(
            group, y=y, x=x, weight=weight, cluster=cluster, cov_type=cov_type,
            min_schools=min_schools, outcome=outcome,
            year=group_year if "year" in cols else year, subset=subset))
    return estimates.concat(frames)


def component_gradients(components: pd.DataFrame, index: pd.DataFrame, schools: pd.DataFrame,
                        *, min_n: int, min_schools: int = MIN_SCHOOLS,
                        x: str = "social_index", cluster: str = "municipality",
                        cov_type: str = "cluster") -> pd.DataFrame:
    """Gradient statistics per procedure x subject x grade x year component.

    Parameters
    ----------
    components : DataFrame
        One row per school x year x procedure x subject x grade, as
        :func:`analysis.ingest.quality.components` returns: ``year``, ``school_id``,
        ``procedure``, ``subject``, ``grade``, ``participants`` and ``value`` (0..1).
    index : DataFrame
        ``year``, ``school_id`` and ``x`` (the social index).
    schools : DataFrame
        ``year``, ``school_id`` and ``cluster`` (the municipality).
    min_n : int
        Only school-components with at least ``min_n`` participants enter.
    min_schools : int
        Components with fewer such schools give ``"too_few_schools"`` rows.

    Returns
    -------
    DataFrame
        Estimates rows, ``outcome`` = ``"<procedure>/<subject>/<grade>"`` (e.g.
        ``"VPR/math/5"``), ``year`` set, ``subset`` ``"all"``; ``y`` = the component value
        weighted by its participants.
    """
    key = list(schema.SCHOOL_KEY)
    need = key + ["procedure", "subject", "grade", "participants", "value"]
    missing = [c for c in need if c not in components.columns]
    if missing:
        raise ValueError(f"component_gradients: components lack column(s) {missing}")
    comp = components[need].merge(index[key + [x]], on=key, how="left")
    if cov_type == "cluster" and cluster not in comp.columns:
        comp = comp.merge(schools[key + [cluster]], on=key, how="left")
    comp["participants"] = pd.to_numeric(comp["participants"]).astype("float64")
    comp.loc[comp["participants"] < min_n, "participants"] = np.nan
    frames = []
    for (procedure, subject, grade, year), group in comp.groupby(
            ["procedure", "subject", "grade", "year"], sort=True):
        grade_label = str(int(grade)) if float(grade).is_integer() else str(grade)
        frames.append(gradient_stats(
            group, y="value", x=x, weight="participants", cluster=cluster,
            cov_type=cov_type, min_schools=min_schools,
            outcome=f"{procedure}/{subject}/{grade_label}", year=int(year)))
    return estimates.concat(frames)


def trend(est: pd.DataFrame) -> pd.DataFrame:
    """The slope by year and its linear trend across years.

    For each (model, outcome, subset, level) with ``"slope"`` rows in several years, a WLS
    of the yearly slopes on the year with weights 1/SE², the yearly SEs taken as known
    (statsmodels ``cov_type="fixed scale"``, scale 1: a fixed-effect meta-regression).  The
    yearly slopes are treated as independent although they share schools, which tends to
    overstate the trend's SE when the same schools recur.

    Parameters
    ----------
    est : DataFrame
        An estimates table (e.g. from :func:`gradients_by` with ``by="year"``).

    Returns
    -------
    DataFrame
        The yearly ``"slope"`` rows and, per group, a ``"slope_trend_per_year"`` row (year
        ``<NA>``; units of the slope per year; ``n`` = number of years used), ``<NA>`` with
        reason ``"too_few_years"`` when fewer than 2 years have a slope with an SE > 0.
    """
    estimates.validate(est)
    slopes = est.loc[(est["term"] == "slope") & est["year"].notna()]
    rows = []
    for (model, outcome, subset, level), g in slopes.groupby(
            ["model", "outcome", "subset", "level"], sort=True):
        labels = {"model": model, "outcome": outcome, "year": None, "subset": subset,
                  "level": level, "term": TREND_TERM}
        use = g.loc[g["estimate"].notna() & g["std_error"].notna() & (g["std_error"] > 0)]
        if use["year"].nunique() < 2 or len(use) != use["year"].nunique():
            rows.append({**labels, "n": int(use["year"].nunique()), "reason": "too_few_years"})
            continue
        t = use["year"].to_numpy(dtype="float64")
        s = use["estimate"].to_numpy(dtype="float64")
        se = use["std_error"].to_numpy(dtype="float64")
        fit = sm.WLS(s, np.column_stack([np.ones_like(t), t]), weights=1 / se**2).fit(
            cov_type="fixed scale")
        rows.append({**labels, "n": len(use), **_coef_row(fit, 1, "")})
    return estimates.concat([slopes, estimates.make(rows)])
