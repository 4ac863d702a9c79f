"""The report's section "family social status and results": figures, tables and metrics.

Every number comes from the tidy table of model estimates (``data/processed/estimates.parquet``:
one row per model x outcome x year x subset x level x term, with ``estimate``, ``std_error``,
``ci_low``, ``ci_high``, ``n`` and a ``reason`` code, ``""`` when none).  The models read here:

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
(:func:`analysis.models.gradients.trend`); without it, :func:`gradient_by_table` computes it
from the yearly slopes the same way.

``section_*`` functions (and :func:`gradient_by_table`) return escaped HTML: cells go through
:func:`analysis.publish.html.html_table`, prose through :func:`html.escape`.  A value that
could not be computed is shown as «н/д (reason)», a variance estimated at the boundary (zero)
is said in words, never as a number; no cell ever reads "nan" or "-0.00".  ``fig_*``
functions return matplotlib figures.  Strings come from the ``ses.*`` block of
``labels.yaml``.
"""

from __future__ import annotations

import html
import math
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib import transforms
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from analysis.i18n import catalogue, label, t
from analysis.outputs import round_sig
from analysis.publish.figures import ROLE
from analysis.publish.html import col_label, heading, html_table, is_missing, stat

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
#: Municipality labels are written on the caterpillar plot up to this many municipalities.
MAX_LABELLED = 60
#: Terms of the gradient's trend across years (:mod:`analysis.models.gradients` writes the first).
TREND_TERMS = ("slope_trend_per_year", "slope_trend")
#: Reasons that mark only a missing standard error, not worth a «н/д» in the SE cell.
_QUIET_SE_REASONS = ("", "no_standard_error", BOUNDARY)
#: Order of procedures in the small multiples.
_PROCEDURE_ORDER = ("VPR", "OGE", "EGE")
_Z95 = 1.959963984540054

#: Colours by meaning, from the colour-blind-safe palette shared by every figure.
_GREY, _BLUE, _RED, _ORANGE = ROLE["schools"], ROLE["fit"], ROLE["below"], ROLE["secondary"]


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


# --- formatting -------------------------------------------------------------------------------

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


def _plain(value: float | None, spec: str, lang: str) -> str:
    """Like :func:`fmt`, but an empty string for a missing value (secondary cells)."""
    return "" if value is None else stat(value, spec, lang)


def _scaled(e: Est, scale: float) -> Est:
    def s(v: float | None) -> float | None:
        return None if v is None else v * scale

    return Est(e.term, s(e.estimate), s(e.std_error), s(e.ci_low), s(e.ci_high), e.n, e.reason,
               e.year)


def _ci(e: Est) -> tuple[float | None, float | None]:
    """The 95% interval of ``e``, from ``ci_low``/``ci_high`` or else ``estimate ± 1.96 SE``."""
    if e.ci_low is not None and e.ci_high is not None:
        return e.ci_low, e.ci_high
    if e.estimate is not None and e.std_error is not None:
        return e.estimate - _Z95 * e.std_error, e.estimate + _Z95 * e.std_error
    return None, None


def _cells(e: Est | None, spec: str, lang: str, scale: float = 1.0) -> dict[str, str]:
    """Estimate, SE, 95% interval and n of ``e`` as text cells."""
    if e is None:
        return {"estimate": na_text(lang, "not_computed"), "se": "", "ci": "", "n": ""}
    n = "" if e.n is None else str(e.n)
    if e.boundary:
        return {"estimate": t("ses.boundary_cell", lang), "se": "", "ci": "", "n": n}
    if e.estimate is None:
        return {"estimate": na_text(lang, e.reason), "se": "", "ci": "", "n": n}
    e = _scaled(e, scale)
    lo, hi = _ci(e)
    plain = spec.lstrip("+")
    ci = "" if lo is None or hi is None else f"{stat(lo, plain, lang)}…{stat(hi, plain, lang)}"
    se = (na_text(lang, e.reason) if e.std_error is None and e.reason not in _QUIET_SE_REASONS
          else _plain(e.std_error, plain, lang))
    return {"estimate": stat(e.estimate, spec, lang), "se": se, "ci": ci, "n": n}


def _table(rows: Sequence[tuple[str, dict[str, str]]], lang: str, *,
           first: str = "measure", n_label: str = "n_schools") -> str:
    """An HTML table of ``(label, cells)`` rows; SE, interval and n columns only when used."""
    cols = {"label": t(f"ses.col.{first}", lang), "estimate": t("ses.col.estimate", lang),
            "se": t("ses.col.se", lang), "ci": t("ses.col.ci", lang),
            "n": t(f"ses.col.{n_label}", lang)}
    data = {cols["label"]: [r[0] for r in rows]}
    for key in ("estimate", "se", "ci", "n"):
        values = [r[1].get(key, "") for r in rows]
        if key == "estimate" or any(values):
            data[cols[key]] = values
    return html_table(pd.DataFrame(data), lang)


def _p(text: str) -> str:
    return f"<p>{html.escape(text)}</p>"


def _mpl(text: str) -> str:
    """Text safe for matplotlib (no mathtext from a ``$`` in a municipality's name)."""
    return str(text).replace("$", r"\$")


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


# --- 4.1 the gradient and the expected result --------------------------------------------------

def section_gradient(estimates: pd.DataFrame, points: pd.DataFrame, lang: str = "ru", *,
                     year: int, min_n: int, spec_text: str) -> str:
    """Heading, the expected-result model in words, and the headline gradient table.

    Parameters
    ----------
    estimates : DataFrame
        The estimates table (see the module docstring).
    points : DataFrame
        One row per school of the gradient sample (``school_id``, ``n_students``, ...): gives
        the number of schools and participants.
    lang : {"ru", "en"}
    year : int
        Reporting year: the rows of this year (or without a year) are shown.
    min_n : int
        Least number of participants of a school in the sample.
    spec_text : str
        The expected-result model in words, from the caller (e.g. «индекс (натуральный
        кубический сплайн, 3 df, ...) + тип поселения + тип школы»); escaped here.

    Returns
    -------
    str
        HTML: heading, paragraphs and a table with the slope of the expected result at each
        named point (SE, 95% interval), the PISA slope, R² (%), curvature and the gap between
        the top and bottom quarters, each «н/д (reason)» when missing.
    """
    est = _frame(estimates)
    pts = points if points is not None else pd.DataFrame()
    n_students = (int(pd.to_numeric(pts["n_students"], errors="coerce").fillna(0).sum())
                  if "n_students" in pts else 0)
    exp_outcome = _main_outcome(est, EXPECTED) or QUALITY
    g = {"outcome": QUALITY, "subset": ALL, "year": year}
    e = {"outcome": exp_outcome, "year": year}

    at_rows = _select(est, EXPECTED, year=year, outcome=exp_outcome)
    at_rows = at_rows.loc[at_rows["term"].str.startswith("slope_at:")]
    at_rows = at_rows.drop_duplicates("term")
    slopes_at = sorted((_est(r) for _, r in at_rows.iterrows()),
                       key=lambda s: (_point(s.term) is None, _point(s.term) or 0.0))
    rows: list[tuple[str, dict[str, str]]] = []
    if not slopes_at:
        rows.append((t("ses.slope_at_zero", lang), _cells(None, "+.3f", lang)))
    for s in slopes_at:
        x = _point(s.term)
        name = (t("ses.slope_at_zero", lang) if x == 0 else
                t("ses.slope_at", lang, x=s.term.partition(":")[2] if x is None
                  else stat(x, "+.2f", lang)))
        rows.append((name, _cells(s, "+.3f", lang)))
    rows += [
        (t("ses.slope_pisa", lang), _cells(_one(est, GRADIENT, "slope", **g), "+.3f", lang)),
        (t("ses.r2_pisa", lang), _cells(_one(est, GRADIENT, "r2", **g), ".1%", lang)),
    ]
    r2_expected = _one(est, EXPECTED, "r2", **e)
    if r2_expected is not None:
        rows.append((t("ses.r2_expected", lang), _cells(r2_expected, ".1%", lang)))
    rows += [
        (t("ses.curvature", lang), _cells(_one(est, GRADIENT, "curvature", **g), "+.3f", lang)),
        (t("ses.gap_quarters", lang),
         _cells(_one(est, GRADIENT, "gap_top_bottom_quarter", **g), "+.3f", lang)),
    ]

    parts = [
        heading("ses.title", lang),
        _p(t("ses.gradient_model", lang, spec=spec_text, n_schools=len(pts),
             n_students=n_students, min_n=min_n, year=year)),
    ]
    x_other = [_point(s.term) for s in slopes_at if _point(s.term) not in (0, None)]
    parts.append(_p(t("ses.slope_where", lang)))
    if x_other:
        parts.append(_p(t("ses.slope_where_other", lang)))
    lo = _one(est, EXPECTED, "support_low", **e)
    hi = _one(est, EXPECTED, "support_high", **e)
    if lo is not None and hi is not None and lo.value is not None and hi.value is not None:
        parts.append(_p(t("ses.support_text", lang, lo=stat(lo.value, "+.2f", lang),
                          hi=stat(hi.value, "+.2f", lang))))
    parts.append(_p(t("ses.gradient_terms", lang)))
    parts.append(_table(rows, lang))
    return "\n".join(parts)


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


def gradient_by_table(estimates: pd.DataFrame, lang: str = "ru", *, year: int | None = None
                      ) -> str:
    """Gradient slopes by settlement type and school type, and by year with the trend.

    Parameters
    ----------
    estimates : DataFrame
        The estimates table; ``gradient`` rows of outcome ``quality_index``.
    lang : {"ru", "en"}
    year : int, optional
        Year of the by-group table; the latest year of the gradient rows by default.

    Returns
    -------
    str
        HTML: a heading, the by-group table (slope, SE, 95% interval, R², schools) and the
        by-year table ending in the trend row (change of the slope per year).  The trend is
        the ``gradient`` row with term ``slope_trend`` when the table has one, else the
        inverse-variance weighted regression of the yearly slopes on the year.  A slope that
        could not be estimated reads «н/д (reason)», e.g. «н/д (мало школ)».
    """
    est = _frame(estimates)
    year = year if year is not None else _latest_year(est, GRADIENT, QUALITY)
    slopes = _select(est, GRADIENT, term="slope", outcome=QUALITY)
    cols = {"group": t("ses.col.group", lang), "estimate": t("ses.col.slope", lang),
            "se": t("ses.col.se", lang), "ci": t("ses.col.ci", lang),
            "r2": t("ses.col.r2", lang), "n": t("ses.col.n_schools", lang),
            "year": t("ses.col.year", lang)}

    def row(name: str, s: Est | None, r2: Est | None, first: str = "group") -> dict[str, str]:
        c = _cells(s, "+.3f", lang)
        r2_text = "" if r2 is None or r2.estimate is None else stat(r2.estimate, ".1%", lang)
        return {cols[first]: name, cols["estimate"]: c["estimate"], cols["se"]: c["se"],
                cols["ci"]: c["ci"], cols["r2"]: r2_text, cols["n"]: c["n"]}

    # by group, one year
    here = slopes if year is None else slopes.loc[slopes["_year"] == year]
    subsets = sorted(set(here["subset"]) - {ALL, ""}, key=_subset_key)
    groups = []
    for sub in [ALL, *subsets]:
        f = {"outcome": QUALITY, "subset": sub, "year": year}
        groups.append(row(subset_label(sub, lang), _one(est, GRADIENT, "slope", **f),
                          _one(est, GRADIENT, "r2", **f)))
    # by year, all schools
    all_slopes = _select(est, GRADIENT, term="slope", outcome=QUALITY, subset=ALL)
    years = sorted({int(y) for y in all_slopes["_year"].dropna()})
    yearly = [_one(est, GRADIENT, "slope", outcome=QUALITY, subset=ALL, year=y) for y in years]
    by_year = [row(str(y), s, _one(est, GRADIENT, "r2", outcome=QUALITY, subset=ALL, year=y),
                   "year") for y, s in zip(years, yearly, strict=True)]
    given = _select(est, GRADIENT, outcome=QUALITY, subset=ALL)
    given = given.loc[given["term"].isin(TREND_TERMS)]
    computed = False
    if not given.empty:
        trend: Est = _est(given.iloc[0])
    else:
        trend, computed = _trend([s for s in yearly if s is not None])
    trend_row = row(t("ses.trend_row", lang), trend, None, "year")
    trend_row[cols["n"]] = ""
    by_year.append(trend_row)

    parts = [
        heading("ses.by_group", lang, 3),
        _p(t("ses.by_group_text", lang, year=year if year is not None else "")),
        html_table(pd.DataFrame(groups), lang),
        _p(t("ses.by_year_text", lang)),
        html_table(pd.DataFrame(by_year), lang),
    ]
    if computed:
        parts.append(_p(t("ses.trend_note", lang)))
    return "\n".join(parts)


# --- 4.2 the share of «2» ------------------------------------------------------------------

def section_binomial(estimates: pd.DataFrame, lang: str = "ru", *, year: int | None = None
                     ) -> str:
    """The share of «2» / below the minimum: odds ratio and average marginal effect per SD of
    the index, and the dispersion with a one-line explanation of overdispersion.

    Parameters
    ----------
    estimates : DataFrame
        The estimates table; ``binomial`` rows (outcome ``share_fail`` preferred).
    lang : {"ru", "en"}
    year : int, optional
        The latest year of the ``binomial`` rows by default.

    Returns
    -------
    str
        HTML; "" when the table has no ``binomial`` rows.
    """
    est = _frame(estimates)
    if _select(est, BINOMIAL).empty:
        return ""
    outcome = _main_outcome(est, BINOMIAL, prefer=FAIL)
    year = year if year is not None else _latest_year(est, BINOMIAL, outcome)
    f = {"outcome": outcome, "year": year}
    odds = _one(est, BINOMIAL, "odds_ratio_per_sd", **f)
    ame = _one(est, BINOMIAL, "ame_per_sd", **f)
    disp = _one(est, BINOMIAL, "dispersion", **f)
    rows = [(t("ses.odds_ratio", lang), _cells(odds, ".2f", lang)),
            (t("ses.ame", lang), _cells(ame, "+.1f", lang, scale=100.0)),
            (t("ses.dispersion", lang), _cells(disp, ".2f", lang))]
    phi = None if disp is None else disp.value
    if phi is None:
        note = t("ses.dispersion_na", lang, value=na_text(lang, None if disp is None
                                                             else disp.reason))
    elif phi > 1.0:
        note = t("ses.overdispersed", lang, phi=stat(phi, ".2f", lang),
                 root=stat(math.sqrt(phi), ".2f", lang))
    else:
        note = t("ses.not_overdispersed", lang, phi=stat(phi, ".2f", lang))
    return "\n".join([heading("ses.binomial", lang, 3), _p(t("ses.binomial_text", lang)),
                      _table(rows, lang), _p(note)])


# --- 4.3 schools within municipalities -------------------------------------------------------

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


def _explained_cell(empty: Est | None, cond: Est | None, lang: str) -> str:
    if (empty is not None and empty.boundary) or (cond is not None and cond.boundary):
        return t("ses.boundary_cell", lang)
    return fmt(_explained(empty, cond), ".0%", lang, "not_computed")


def _variance_table(comps: dict[str, dict[str, Est | None]], names: dict[str, str],
                    lang: str, empty: str, cond: str) -> str:
    c0, c1 = comps[empty], comps[cond]
    heads = {k: t(f"ses.col.{k}", lang) for k in ("component", "empty_model",
                                                  "conditional_model", "explained")}
    data: list[dict[str, str]] = []
    for key in ("between", "within", "slope"):
        if c0[key] is None and c1[key] is None:
            continue
        data.append({heads["component"]: names[key],
                     heads["empty_model"]: _var_cell(c0[key], lang),
                     heads["conditional_model"]: _var_cell(c1[key], lang),
                     heads["explained"]: (_explained_cell(c0[key], c1[key], lang)
                                          if key != "slope" else "")})
    data.append({heads["component"]: t("ses.icc", lang),
                 heads["empty_model"]: _cells(_icc(c0), ".1%", lang)["estimate"],
                 heads["conditional_model"]: _cells(_icc(c1), ".1%", lang)["estimate"],
                 heads["explained"]: ""})
    return html_table(pd.DataFrame(data), lang)


def _var_spec(v: float | None) -> str:
    """Fixed-point format with 3 significant digits for a variance: 0.00511, 0.0000427, 0.300
    (never scientific notation)."""
    if v is None or v == 0:
        return ".3f"
    return f".{min(12, max(3, 2 - math.floor(math.log10(abs(v)))))}f"


def _var_cell(e: Est | None, lang: str) -> str:
    if e is None:
        return ""
    return _cells(e, _var_spec(e.estimate), lang)["estimate"]


def _boundary_notes(comps: dict[str, dict[str, Est | None]], models: dict[str, str],
                    keys: dict[str, str], lang: str) -> list[str]:
    """One sentence per variance component estimated at the boundary."""
    notes = []
    for model, c in comps.items():
        for key, what in keys.items():
            e = c[key]
            if e is not None and e.boundary:
                notes.append(_p(t("ses.boundary_text", lang, what=what, model=models[model])))
    return notes


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


def section_multilevel(estimates: pd.DataFrame, lang: str = "ru", *, year: int | None = None,
                       top_n: int = 30) -> str:
    """Schools within municipalities: variance components, ICC, explained variance at each
    level, fixed effects and the municipalities whose effect differs from zero.

    Parameters
    ----------
    estimates : DataFrame
        The estimates table; ``multilevel_empty`` and ``multilevel`` rows.
    lang : {"ru", "en"}
    year : int, optional
        The latest year of the multilevel rows by default.
    top_n : int
        At most this many municipalities listed.

    Returns
    -------
    str
        HTML; "" when the table has no multilevel rows.  A variance estimated at the
        boundary (zero) is said in words; the ICC and explained variance that rest on it are
        not shown as numbers.
    """
    est = _frame(estimates)
    if _select(est, [ML_EMPTY, ML]).empty:
        return ""
    outcome = _main_outcome(est, [ML_EMPTY, ML])
    year = year if year is not None else _latest_year(est, [ML_EMPTY, ML], outcome)
    comps = {m: _components(est, m, year, outcome, "municipality") for m in (ML_EMPTY, ML)}
    names = {"between": t("ses.var_municipality", lang),
             "within": t("ses.var_school_in_municipality", lang),
             "slope": t("ses.var_municipality_slope", lang)}
    model_names = {ML_EMPTY: t("ses.model_empty_lc", lang),
                   ML: t("ses.model_conditional_lc", lang)}
    parts = [heading("ses.multilevel", lang, 3), _p(t("ses.multilevel_text", lang))]
    n_sch = next((c["within"].n for c in (comps[ML], comps[ML_EMPTY])
                  if c["within"] is not None and c["within"].n is not None), None)
    n_mun = next((c["between"].n for c in (comps[ML], comps[ML_EMPTY])
                  if c["between"] is not None and c["between"].n is not None), None)
    effects = municipality_effects(est, year=year)
    n_mun = n_mun if n_mun is not None else (len(effects) or None)
    if n_sch is not None or n_mun is not None:
        parts.append(_p(t("ses.multilevel_n", lang,
                          n_schools=n_sch if n_sch is not None else na_text(lang),
                          n_municipalities=n_mun if n_mun is not None else na_text(lang))))
    parts.append(_variance_table(comps, names, lang, ML_EMPTY, ML))
    parts += _boundary_notes(comps, model_names, {"between": names["between"],
                                                  "slope": names["slope"]}, lang)

    coefs = _select(est, ML, year=year, outcome=outcome)
    coefs = coefs.loc[coefs["term"].str.startswith("coef:")].drop_duplicates("term")
    if not coefs.empty:
        rows = [(_coef_label(r["term"], lang), _cells(_est(r), "+.3f", lang))
                for _, r in coefs.iterrows()]
        parts += [_p(t("ses.fixed_effects", lang)), _table(rows, lang, first="term")]

    shown = effects.loc[effects["side"] != 0]
    if not effects.empty:
        if shown.empty:
            parts.append(_p(t("ses.no_municipality_differs", lang)))
        else:
            shown = shown.sort_values(["estimate", "municipality"], ascending=[False, True],
                                      kind="stable")
            df = pd.DataFrame({
                t("ses.col.municipality", lang): shown["municipality"],
                t("ses.col.effect", lang): [fmt(v, "+.3f", lang) for v in shown["estimate"]],
                t("ses.col.ci", lang): [f"{stat(a, '.3f', lang)}…{stat(b, '.3f', lang)}"
                                        for a, b in zip(shown["ci_low"], shown["ci_high"],
                                                        strict=True)],
                t("ses.col.n_schools", lang): ["" if pd.isna(n) else str(int(n))
                                               for n in shown["n"]],
            })
            parts += [_p(t("ses.municipalities_differ", lang, n=len(shown), total=len(effects))),
                      html_table(df, lang, max_rows=top_n)]
    return "\n".join(parts)


def _structural(term: str) -> bool:
    """Whether ``term`` is a model statistic rather than a group's name (a ranef row)."""
    return term == "icc" or term.startswith(("var:", "cov:", "coef:"))


def _coef_label(term: str, lang: str) -> str:
    """``coef:social_index`` -> «Индекс соц. благополучия»; ``coef:settlement_type[village]``
    (or patsy's ``C(settlement_type)[T.village]``) -> «Местность: село»; the intercept ->
    «Свободный член»."""
    name = term.partition(":")[2] or term
    if name.lower() in ("intercept", "const", "(intercept)"):
        return t("ses.intercept", lang)
    # the index basis of the expected model (analysis.models.expected.IndexBasis)
    if name in ("x", "x2") or (name.startswith("ns") and name[2:].isdigit()):
        part = {"x": t("ses.coef_x", lang), "x2": t("ses.coef_x2", lang)}.get(name)
        return part or t("ses.coef_ns", lang, j=name[2:])
    col, bracket, rest = name.partition("[")
    if col.startswith("C(") and col.endswith(")"):  # patsy: C(settlement_type)[T.village]
        col = col[2:-1].split(",")[0].strip()
    if bracket and rest.endswith("]"):
        level = rest[:-1].removeprefix("T.")
        try:
            shown = label(col, level, lang)
        except KeyError:
            shown = level
        return f"{col_label(col, lang)}: {shown}"
    return col_label(name, lang)


# --- 4.4 students within schools ------------------------------------------------------------

def section_students(estimates: pd.DataFrame, lang: str = "ru", *, year: int | None = None
                     ) -> str:
    """Students within schools: within-school, between-school and contextual effects of
    status, the random slope variance and the explained variance by level.

    Parameters
    ----------
    estimates : DataFrame
        The estimates table; ``student_empty`` and ``student`` rows.
    lang : {"ru", "en"}
    year : int, optional
        The latest year of the student rows by default.

    Returns
    -------
    str
        HTML; "" when the table has no student rows (no students table was given).
    """
    est = _frame(estimates)
    if _select(est, [ST_EMPTY, ST]).empty:
        return ""
    outcome = _main_outcome(est, [ST_EMPTY, ST])
    year = year if year is not None else _latest_year(est, [ST_EMPTY, ST], outcome)
    f = {"year": year, "outcome": outcome}
    effects = [(t(f"ses.{k}", lang), _cells(_one(est, ST, k, **f), "+.3f", lang))
               for k in ("within_slope", "between_slope", "contextual_effect")]
    comps = {m: _components(est, m, year, outcome, "school") for m in (ST_EMPTY, ST)}
    names = {"between": t("ses.var_school", lang), "within": t("ses.var_student", lang),
             "slope": t("ses.var_school_slope", lang)}
    model_names = {ST_EMPTY: t("ses.model_empty_lc", lang),
                   ST: t("ses.model_conditional_lc", lang)}

    # the model's own R² by level, when it gives them (else the variance table's column)
    r2 = [(t(f"ses.{term}", lang), {"estimate": _cells(given, ".0%", lang)["estimate"]})
          for term in ("r2_level1", "r2_level2")
          if (given := _one(est, ST, term, **f)) is not None]
    return "\n".join([
        heading("ses.students", lang, 3), _p(t("ses.students_text", lang)),
        _table(effects, lang, n_label="n"),
        _variance_table(comps, names, lang, ST_EMPTY, ST),
        *_boundary_notes(comps, model_names, {"between": names["between"],
                                              "slope": names["slope"]}, lang),
        _table(r2, lang) if r2 else "",
    ])


# --- metrics ------------------------------------------------------------------------------

def _m(v: float | None) -> float | None:
    return None if v is None else float(round_sig(v, 6))


def ses_metrics(estimates: pd.DataFrame, *, year: int | None = None) -> dict[str, Any]:
    """Headline numbers of the section for ``reports/metrics.json``.

    Parameters
    ----------
    estimates : DataFrame
        The estimates table.
    year : int, optional
        Reporting year; the latest year of the gradient rows by default.

    Returns
    -------
    dict
        ``{"year", "gradient": {...}, "expected": {...}, "binomial": {...},
        "multilevel": {...}, "students": {...}}``: plain floats rounded to 6 significant
        digits (counts as int), ``None`` for a value that is missing or a variance at the
        boundary.  The keys are the same whatever the data, so runs compare column by column.
    """
    est = _frame(estimates)
    year = year if year is not None else _latest_year(est, GRADIENT, QUALITY)

    def val(e: Est | None, attr: str = "estimate") -> float | None:
        if e is None or e.boundary:
            return None
        return _m(getattr(e, attr))

    g = {"outcome": QUALITY, "subset": ALL, "year": year}
    slope = _one(est, GRADIENT, "slope", **g)
    lo, hi = _ci(slope) if slope is not None else (None, None)
    yearly = [_one(est, GRADIENT, "slope", outcome=QUALITY, subset=ALL, year=int(y))
              for y in sorted(set(_select(est, GRADIENT, term="slope", outcome=QUALITY,
                                          subset=ALL)["_year"].dropna()))]
    given = next((e for term in TREND_TERMS
                  if (e := _one(est, GRADIENT, term, outcome=QUALITY, subset=ALL)) is not None),
                 None)
    trend = given if given is not None else _trend([s for s in yearly if s is not None])[0]
    gradient = {
        "slope": val(slope), "slope_se": val(slope, "std_error"), "slope_ci_low": _m(lo),
        "slope_ci_high": _m(hi), "r2": val(_one(est, GRADIENT, "r2", **g)),
        "curvature": val(_one(est, GRADIENT, "curvature", **g)),
        "gap_top_bottom_quarter": val(_one(est, GRADIENT, "gap_top_bottom_quarter", **g)),
        "slope_trend": val(trend), "n_schools": None if slope is None else slope.n,
    }

    eo = _main_outcome(est, EXPECTED)
    e = {"outcome": eo, "year": _year_or_latest(est, EXPECTED, year, eo)}
    at_rows = _select(est, EXPECTED, **e)
    at_terms = sorted((x for x in set(at_rows["term"]) if x.startswith("slope_at:")),
                      key=lambda x: (_point(x) != 0, x))
    at0 = _one(est, EXPECTED, at_terms[0], **e) if at_terms else None
    expected = {"slope_at_0": val(at0), "slope_at_0_se": val(at0, "std_error"),
                "r2": val(_one(est, EXPECTED, "r2", **e)),
                "support_low": val(_one(est, EXPECTED, "support_low", **e)),
                "support_high": val(_one(est, EXPECTED, "support_high", **e))}

    bo = _main_outcome(est, BINOMIAL, prefer=FAIL)
    b = {"outcome": bo, "year": _year_or_latest(est, BINOMIAL, year, bo)}
    odds = _one(est, BINOMIAL, "odds_ratio_per_sd", **b)
    binomial = {"odds_ratio_per_sd": val(odds), "odds_ratio_ci_low": val(odds, "ci_low"),
                "odds_ratio_ci_high": val(odds, "ci_high"),
                "ame_per_sd": val(_one(est, BINOMIAL, "ame_per_sd", **b)),
                "dispersion": val(_one(est, BINOMIAL, "dispersion", **b))}

    mo = _main_outcome(est, [ML_EMPTY, ML])
    my = _year_or_latest(est, [ML_EMPTY, ML], year, mo)
    mc = {m: _components(est, m, my, mo, "municipality") for m in (ML_EMPTY, ML)}
    multilevel = {
        "icc_empty": val(_icc(mc[ML_EMPTY])), "icc": val(_icc(mc[ML])),
        "var_municipality_empty": val(mc[ML_EMPTY]["between"]),
        "var_residual_empty": val(mc[ML_EMPTY]["within"]),
        "var_municipality": val(mc[ML]["between"]), "var_residual": val(mc[ML]["within"]),
        "explained_municipality": _m(_explained(mc[ML_EMPTY]["between"], mc[ML]["between"])),
        "explained_school": _m(_explained(mc[ML_EMPTY]["within"], mc[ML]["within"])),
        "n_municipalities_differ": int((municipality_effects(est, year=my)["side"] != 0).sum()),
    }

    so = _main_outcome(est, [ST_EMPTY, ST])
    sy = _year_or_latest(est, [ST_EMPTY, ST], year, so)
    s = {"outcome": so, "year": sy}
    sc = {m: _components(est, m, sy, so, "school") for m in (ST_EMPTY, ST)}
    students = {k: val(_one(est, ST, k, **s))
                for k in ("within_slope", "between_slope", "contextual_effect",
                          "r2_level1", "r2_level2")}
    students |= {"icc_empty": val(_icc(sc[ST_EMPTY])),
                 "var_school_slope": val(sc[ST]["slope"])}
    return {"year": year, "gradient": gradient, "expected": expected, "binomial": binomial,
            "multilevel": multilevel, "students": students}


# --- figures --------------------------------------------------------------------------------

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


def spec_text(model: Mapping[str, Any], lang: str = "ru") -> str:
    """The expected-result model in words (``ses_link.json`` ``model``), e.g. «индекс
    благополучия (натуральный кубический сплайн, 3 степени свободы; вне 2.5–97.5% школ по
    индексу — прямая) + Местность + Вид ОО; взвешено по числу участников, ...»."""
    shape = t(f"ses.spec_shape.{model['shape']}", lang, df=model.get("df", ""))
    lo, hi = (100 * float(q) for q in model["support"])
    terms = "".join(f" + {col_label(term, lang)}" for term in model.get("terms", []))
    cov = model.get("cov_type", "cluster")
    cov_text = (t("ses.spec_cov.cluster", lang) if cov == "cluster"
                else t("ses.spec_cov.other", lang, cov=cov))
    return (t("ses.spec", lang, shape=shape, lo=f"{lo:g}", hi=f"{hi:g}", terms=terms)
            + t("ses.spec_weights", lang, cov=cov_text))
