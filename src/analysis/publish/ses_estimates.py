"""The table of model estimates, as the report's section 4 and its figures read it.

Every number of the section comes from the tidy table of model estimates
(``data/processed/estimates.parquet``: one row per model x outcome x year x subset x level x
term, with ``estimate``, ``std_error``, ``ci_low``, ``ci_high``, ``n`` and a ``reason`` code,
``""`` when none).  The models read here:

- ``gradient``: the PISA-style gradient of the quality index (and of each component outcome
  such as ``"VPR/math/5"``) on the social index, by year and subset (``"all"``,
  ``"settlement_type=city"``, ...): ``slope``, ``intercept``, ``r2``, ``curvature``,
  ``gap_top_bottom_quarter``;
- ``expected``: the expected-result model behind the flags: ``slope_at:<x>``, ``r2``,
  ``support_low``/``support_high``, ``coef:<col>``;
- ``binomial``: the share of «2» / below the minimum (quasi-binomial GLM on counts):
  ``odds_ratio_per_sd``, ``ame_per_sd``, ``dispersion``;
- ``multilevel_empty``/``multilevel``: schools within municipalities (REML): ``coef:*``,
  ``var:municipality`` (optionally ``var:municipality:<re>``, a random slope),
  ``var:residual``, ``icc`` -- read by term whatever their ``level`` -- and one row per
  municipality at level ``municipality`` (``term`` is its name, the estimate its effect);
  variance rows of a boundary fit carry reason ``"boundary"``;
- ``student_empty``/``student``: students within schools: ``within_slope``,
  ``between_slope``, ``contextual_effect``, ``var:school``, ``var:school:<re>``,
  ``var:residual``, ``r2_level1``, ``r2_level2``.

The trend of the slope across years is the ``gradient`` row ``slope_trend_per_year``
(:func:`analysis.models.gradients.trend`); without it, :func:`_trend` computes it from the
yearly slopes the same way.

This module reads the table (a row as :class:`Est`, rows selected by model, term, outcome,
subset and year), derives what the section and the figures share (intervals, the trend,
variance components, the ICC, municipality effects) and puts values and codes into words
(:func:`fmt`: «н/д (reason)» for a value that could not be computed, never "nan"; outcome and
subset labels).  The text and tables are :mod:`analysis.publish.ses_report`'s, the figures
:mod:`analysis.publish.ses_figures`'s.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from analysis.i18n import catalogue, label, t
from analysis.publish.html import col_label, is_missing, stat

#: Columns of the estimates table (``data/processed/estimates.parquet``).
COLUMNS = ("model", "outcome", "year", "subset", "level", "term", "estimate", "std_error",
           "ci_low", "ci_high", "n", "reason")
_TEXT_COLUMNS = ("model", "outcome", "subset", "level", "term", "reason")

GRADIENT = "gradient"
EXPECTED = "expected"
BINOMIAL = "binomial"
ML_EMPTY, ML = "multilevel_empty", "multilevel"
ST_EMPTY, ST = "student_empty", "student"
QUALITY = "quality_index"
FAIL = "share_fail"
ALL = "all"
#: Reason code of a variance component estimated at zero (the boundary of its range).
BOUNDARY = "boundary"
#: Terms of the gradient's trend across years (:mod:`analysis.models.gradients` writes the first).
TREND_TERMS = ("slope_trend_per_year", "slope_trend")
#: Order of procedures in the small multiples.
_PROCEDURE_ORDER = ("VPR", "OGE", "EGE")
_Z95 = 1.959963984540054


# --- reading the estimates table ---------------------------------------------------------------

@dataclass(frozen=True)
class Est:
    """One row of the estimates table, with missing values as ``None``.

    Attributes
    ----------
    term : str
    estimate, std_error, ci_low, ci_high : float or None
    n : int or None
        Schools (or municipalities, students) behind the estimate.
    reason : str
        Why the estimate is missing or special (``"boundary"``), ``""`` when none.
    year : int or None
    """

    term: str
    estimate: float | None
    std_error: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    n: int | None = None
    reason: str = ""
    year: int | None = None

    @property
    def boundary(self) -> bool:
        """Whether the estimate sits at the boundary of its range (a variance at zero)."""
        return self.reason == BOUNDARY

    @property
    def value(self) -> float | None:
        """The estimate, or ``None`` when missing or at the boundary."""
        return None if self.boundary else self.estimate


def _float(v: Any) -> float | None:
    if v is None or v is pd.NA or is_missing(v):
        return None
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _int(v: Any) -> int | None:
    x = _float(v)
    return None if x is None else int(x)


def _frame(estimates: pd.DataFrame | None) -> pd.DataFrame:
    """The estimates with every column present, text columns as ``str`` (``""`` for missing)
    and a float ``_year`` column (NaN for a row without a year)."""
    est = pd.DataFrame() if estimates is None else estimates
    est = est.reindex(columns=list(dict.fromkeys([*est.columns, *COLUMNS])))
    out = pd.DataFrame(index=est.index)
    for col in COLUMNS:
        s = est[col]
        if col in _TEXT_COLUMNS:
            out[col] = [("" if v is None or v is pd.NA or (isinstance(v, float) and
                                                           math.isnan(v)) else str(v))
                        for v in s]
        else:
            out[col] = s
    out["_year"] = pd.to_numeric(est["year"], errors="coerce").astype("float64")
    return out.reset_index(drop=True)


def _select(est: pd.DataFrame, models: str | Iterable[str], *, term: str | None = None,
            outcome: str | None = None, subset: str | None = None, year: int | None = None,
            level: str | None = None) -> pd.DataFrame:
    """Rows of ``models`` matching the filters; with ``year``, rows of that year come first,
    followed by rows without a year (a model fitted once for all years)."""
    models = [models] if isinstance(models, str) else list(models)
    m = est["model"].isin(models)
    if term is not None:
        m &= est["term"] == term
    if outcome is not None:
        m &= est["outcome"] == outcome
    if subset is not None:
        m &= est["subset"].isin([ALL, ""]) if subset == ALL else est["subset"] == subset
    if level is not None:
        m &= est["level"] == level
    out = est.loc[m]
    if year is not None:
        y = out["_year"]
        out = out.loc[y.isna() | (y == year)]
        out = out.assign(_later=out["_year"].isna()).sort_values("_later", kind="stable")
    return out


def _est(row: pd.Series) -> Est:
    return Est(term=row["term"], estimate=_float(row["estimate"]),
               std_error=_float(row["std_error"]), ci_low=_float(row["ci_low"]),
               ci_high=_float(row["ci_high"]), n=_int(row["n"]), reason=row["reason"],
               year=_int(row["_year"]))


def _one(est: pd.DataFrame, models: str | Iterable[str], term: str, **filters: Any
         ) -> Est | None:
    rows = _select(est, models, term=term, **filters)
    return None if rows.empty else _est(rows.iloc[0])


def _latest_year(est: pd.DataFrame, models: str | Iterable[str],
                 outcome: str | None = None) -> int | None:
    years = _select(est, models, outcome=outcome)["_year"].dropna()
    return None if years.empty else int(years.max())


def _year_or_latest(est: pd.DataFrame, models: str | Iterable[str], year: int | None,
                    outcome: str | None) -> int | None:
    """``year`` when ``models`` have rows of it (or rows without a year), else their latest."""
    if year is not None and not _select(est, models, outcome=outcome, year=year).empty:
        return year
    return _latest_year(est, models, outcome)


def _main_outcome(est: pd.DataFrame, models: str | Iterable[str], prefer: str = QUALITY
                  ) -> str | None:
    outcomes = sorted(set(_select(est, models)["outcome"]))
    if not outcomes:
        return None
    return prefer if prefer in outcomes else outcomes[0]


# --- what the rows give: intervals, the trend, variance components, municipalities -----------

def _ci(e: Est) -> tuple[float | None, float | None]:
    """The 95% interval of ``e``, from ``ci_low``/``ci_high`` or else ``estimate ± 1.96 SE``."""
    if e.ci_low is not None and e.ci_high is not None:
        return e.ci_low, e.ci_high
    if e.estimate is not None and e.std_error is not None:
        return e.estimate - _Z95 * e.std_error, e.estimate + _Z95 * e.std_error
    return None, None


def _point(term: str) -> float | None:
    """The index value of a ``slope_at:<x>`` term."""
    return _float(term.partition(":")[2])


def _share(part: float | None, whole: float | None) -> float | None:
    if part is None or whole is None or whole <= 0:
        return None
    return part / whole


def _explained(empty: Est | None, cond: Est | None) -> float | None:
    """``1 - var_conditional / var_empty`` (``None`` when either is missing or at zero)."""
    if empty is None or cond is None or empty.value is None or cond.value is None:
        return None
    return None if empty.value <= 0 else 1.0 - cond.value / empty.value


def _trend(yearly: Sequence[Est]) -> tuple[Est, bool]:
    """Change of the slope per year: inverse-variance weighted least squares of the yearly
    slopes on the year (their SEs taken as known, the years as independent).

    Returns the estimate and whether it could be computed."""
    usable = [s for s in yearly if s.value is not None and s.std_error and s.year is not None]
    if len(usable) < 2:
        return Est("slope_trend", None, reason="too_few_years"), False
    x = np.array([s.year for s in usable], dtype="float64")
    y = np.array([s.value for s in usable], dtype="float64")
    w = 1.0 / np.array([s.std_error for s in usable], dtype="float64") ** 2
    xc = x - np.sum(w * x) / np.sum(w)
    sxx = float(np.sum(w * xc**2))
    if sxx <= 0:
        return Est("slope_trend", None, reason="too_few_years"), False
    b = float(np.sum(w * xc * y) / sxx)
    se = math.sqrt(1.0 / sxx)
    return Est("slope_trend", b, se, b - _Z95 * se, b + _Z95 * se, reason=""), True


def _components(est: pd.DataFrame, model: str, year: int | None, outcome: str | None,
                unit: str) -> dict[str, Est | None]:
    """Variance components of a two-level model: ``between`` (``var:<unit>``), ``within``
    (``var:residual``), ``slope`` (``var:<unit>:...``, a random slope), ``icc``."""
    f = {"year": year, "outcome": outcome}
    rows = _select(est, model, **f)
    slope_terms = sorted(x for x in set(rows["term"]) if x.startswith(f"var:{unit}:"))
    return {"between": _one(est, model, f"var:{unit}", **f),
            "within": _one(est, model, "var:residual", **f),
            "slope": _one(est, model, slope_terms[0], **f) if slope_terms else None,
            "icc": _one(est, model, "icc", **f)}


def _icc(c: dict[str, Est | None]) -> Est | None:
    """The ICC: the table's ``icc`` row, else between / (between + within); at the boundary
    when the between variance is."""
    between, within = c["between"], c["within"]
    if between is not None and between.boundary:
        return Est("icc", None, reason=BOUNDARY)
    if c["icc"] is not None:
        return c["icc"]
    if between is None or within is None or between.value is None or within.value is None:
        return None
    share = _share(between.value, between.value + within.value)
    return Est("icc", share, reason="" if share is not None else "not_finite")


def municipality_effects(estimates: pd.DataFrame, *, model: str | None = None,
                         year: int | None = None) -> pd.DataFrame:
    """Municipality effects of the multilevel model (``level == "municipality"``).

    Returns
    -------
    DataFrame
        ``municipality, estimate, std_error, ci_low, ci_high, n, reason`` (floats, ``NaN``
        when missing; the interval from ``estimate ± 1.96 SE`` when only the SE is given),
        sorted by estimate, and ``side``: ``1`` above zero, ``-1`` below zero with an interval
        excluding zero, ``0`` otherwise.  Empty when there are no such rows.
    """
    est = _frame(estimates)
    models = [model] if model else [ML, ML_EMPTY]
    for m in models:
        rows = _select(est, m, level="municipality")
        if rows.empty:
            continue
        outcome = _main_outcome(est, m)
        y = year if year is not None else _latest_year(est, m, outcome)
        rows = _select(est, m, level="municipality", outcome=outcome, year=y)
        rows = rows.loc[~rows["term"].map(_structural)].drop_duplicates("term")
        recs = []
        for _, r in rows.iterrows():
            e = _est(r)
            lo, hi = _ci(e)
            recs.append({"municipality": e.term, "estimate": e.estimate, "std_error": e.std_error,
                         "ci_low": lo, "ci_high": hi, "n": e.n, "reason": e.reason})
        if not recs:
            continue
        out = pd.DataFrame(recs).astype({c: "float64" for c in
                                         ("estimate", "std_error", "ci_low", "ci_high")})
        out["side"] = np.where(out["ci_low"] > 0, 1, np.where(out["ci_high"] < 0, -1, 0))
        return out.sort_values(["estimate", "municipality"], kind="stable",
                               na_position="first").reset_index(drop=True)
    return pd.DataFrame(columns=["municipality", "estimate", "std_error", "ci_low", "ci_high",
                                 "n", "reason", "side"])


def _structural(term: str) -> bool:
    """Whether ``term`` is a model statistic rather than a group's name (a ranef row)."""
    return term == "icc" or term.startswith(("var:", "cov:", "coef:"))


# --- in words --------------------------------------------------------------------------------

def reason_text(reason: str | None, lang: str = "ru") -> str:
    """Words for a reason code: ``ses.reason.<code>``, else ``na.<code>``, else the code."""
    code = reason or "not_computed"
    for key in (f"ses.reason.{code}", f"na.{code}"):
        if key in catalogue():
            return t(key, lang)
    return code


def na_text(lang: str = "ru", reason: str | None = None) -> str:
    """«н/д (reason)» for a value that could not be computed."""
    return f"{t('value.na', lang)} ({reason_text(reason, lang)})"


def fmt(value: Any, spec: str, lang: str = "ru", reason: str | None = None) -> str:
    """``value`` formatted with ``spec``, or «н/д (reason)»; never "nan", never "-0.00"."""
    if _float(value) is None:
        return na_text(lang, reason)
    return stat(_float(value), spec, lang)


def subset_label(subset: str, lang: str = "ru") -> str:
    """``"settlement_type=city"`` -> «Местность: город»; ``"all"`` -> «все школы»."""
    if subset in (ALL, ""):
        return t("ses.all_schools", lang)
    if ";" in subset:  # several grouping columns: "settlement_type=city;school_type=lyceum"
        return ", ".join(subset_label(part, lang) for part in subset.split(";") if part)
    col, sep, value = subset.partition("=")
    if not sep:
        return subset
    try:
        shown = label(col, value, lang)
    except KeyError:
        shown = value
    return f"{col_label(col, lang)}: {shown}"


def outcome_label(outcome: str, lang: str = "ru", sep: str = " · ") -> str:
    """``"VPR/math/5"`` -> «ВПР · математика · 5 класс»; ``"quality_index"`` -> its label."""
    if outcome == QUALITY:
        return t("ses.quality_index", lang)
    parts = outcome.split("/")
    if len(parts) != 3:
        return outcome
    proc, subject, grade = parts
    return sep.join([label("procedure", proc, lang), label("subject", subject, lang),
                     t("ses.grade", lang, grade=grade)])


def _outcome_key(outcome: str) -> tuple[int, int, str, str]:
    parts = outcome.split("/")
    if len(parts) != 3:
        return (len(_PROCEDURE_ORDER), 0, "", outcome)
    proc, subject, grade = parts
    order = _PROCEDURE_ORDER.index(proc) if proc in _PROCEDURE_ORDER else len(_PROCEDURE_ORDER)
    return (order, int(grade) if grade.isdigit() else 0, subject, outcome)


def _subset_key(subset: str) -> tuple[int, str, int, str]:
    col, _, value = subset.partition("=")
    known = [k.split(".", 1)[1] for k in catalogue() if k.startswith(f"{col}.")]
    kinds = ("settlement_type", "school_type")
    return (kinds.index(col) if col in kinds else len(kinds), col,
            known.index(value) if value in known else len(known), value)
