"""The report's section 4 "family social status and results": text, tables and metrics.

Every number comes from the tidy table of model estimates, read by
:mod:`analysis.publish.ses_estimates` (which describes the table and the models in it).
``section_*`` functions (and :func:`gradient_by_table`) return escaped HTML: cells go through
:func:`analysis.publish.html.html_table`, prose through :func:`html.escape`.  A value that
could not be computed is shown as «н/д (reason)», a variance estimated at the boundary (zero)
is said in words, never as a number; no cell ever reads "nan" or "-0.00".  :func:`spec_text`
states the expected-result model in words; :func:`ses_metrics` gives the section's headline
numbers for ``metrics.json``.  Strings come from the ``ses.*`` block of ``labels.yaml``.

The section's figures are drawn by :mod:`analysis.publish.ses_figures`.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from analysis.i18n import label, t
from analysis.outputs import round_sig
from analysis.publish.html import col_label, heading, html_table, stat
from analysis.publish.ses_estimates import (
    ALL,
    BINOMIAL,
    BOUNDARY,
    EXPECTED,
    FAIL,
    GRADIENT,
    ML,
    ML_EMPTY,
    QUALITY,
    ST,
    ST_EMPTY,
    TREND_TERMS,
    Est,
    _ci,
    _components,
    _est,
    _explained,
    _frame,
    _icc,
    _latest_year,
    _main_outcome,
    _one,
    _point,
    _select,
    _subset_key,
    _trend,
    _year_or_latest,
    fmt,
    municipality_effects,
    na_text,
    subset_label,
)

#: Reasons that mark only a missing standard error, not worth a «н/д» in the SE cell.
_QUIET_SE_REASONS = ("", "no_standard_error", BOUNDARY)


# --- table cells -----------------------------------------------------------------------------

def _plain(value: float | None, spec: str, lang: str) -> str:
    """Like :func:`fmt`, but an empty string for a missing value (secondary cells)."""
    return "" if value is None else stat(value, spec, lang)


def _scaled(e: Est, scale: float) -> Est:
    def s(v: float | None) -> float | None:
        return None if v is None else v * scale

    return Est(e.term, s(e.estimate), s(e.std_error), s(e.ci_low), s(e.ci_high), e.n, e.reason,
               e.year)


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


# --- metrics ---------------------------------------------------------------------------------

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
