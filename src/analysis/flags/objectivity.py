"""Signs of non-objectivity (признаки необъективности результатов): screens, not verdicts.

Each screen lists evidence that a school's ВПР results may not be objective; none of them
accuses a school.  Every comparison carries an interval that keeps its width for small
schools and at shares of 0 or 1 (Wilson score intervals, and Newcombe's hybrid score
interval for a difference), and a screen is only assessed where each side has at least
``min_n`` participants.  Where a screen cannot be assessed the school gets ``<NA>`` and a
reason.

Screens (for the reporting year):

``vpr_oge``
    The school's ВПР standing (share of «4»+«5» in grades 5–6 minus the region's) far above
    its ОГЭ standing (grade 9, likewise): the lower bound of the gap's interval exceeds
    ``threshold``.
``top_marks``
    An unusual share of «5» in ВПР given the school's context *and* its ОГЭ quality: the
    Wilson lower bound of the observed share exceeds the share expected by a binomial GLM
    by more than ``threshold_top``.  A school strong in every procedure has a high expected
    share and is not caught.
``heaping``
    Student scores heaped at the mark cut-offs (needs the optional ``students`` table):
    too many students exactly at a cut score compared with one point below it.

Reasons (``<screen>_reason`` columns; ``""`` when the screen was assessed):

- ``no_procedure``: the year has no ВПР or no ОГЭ result in the screened subjects at all;
- ``few_participants``: fewer than ``min_n`` participants on a side of the comparison;
- ``no_context``: the school has no social index, settlement type or school type;
- ``too_few_schools`` / ``model_failed``: the expected-share model could not be fitted;
- ``no_scores``: no student scores with marks for the school in the year.

Default thresholds (:data:`THRESHOLD`, :data:`THRESHOLD_TOP`, :data:`THRESHOLD_HEAP`):
0.15 for the gap; 0.125 and 0.30 were tuned on the synthetic demo region (seeds 1..20, planted
schools with inflated ВПР) and checked on seeds not used for tuning: recall of the planted
schools about 0.98, precision about 0.97, no planted resilient school flagged.  The heaping
threshold is high because every school sits several assessments, so a region runs
thousands of heaping comparisons; the demo plants no heaping, so its sensitivity there is
only checked on hand-made cases.

The school table keeps values computed from fewer than ``min_n`` students (with their
intervals and the ``few_participants`` reason) for the analyst; the evidence table holds
assessed comparisons only, so a report built on it never shows a small-n value.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
import statsmodels.api as sm
from statsmodels.tools.sm_exceptions import PerfectSeparationError

SCREENS = ("vpr_oge", "top_marks", "heaping")
VPR, OGE = "VPR", "OGE"
VPR_GRADES: tuple[int, ...] = (5, 6)
OGE_GRADES: tuple[int, ...] = (9,)
ALL = "all"
#: Marks whose cut scores the heaping screen infers.
CUT_MARKS = (3, 4, 5)

NO_PROCEDURE = "no_procedure"
FEW_PARTICIPANTS = "few_participants"
NO_CONTEXT = "no_context"
TOO_FEW_SCHOOLS = "too_few_schools"
MODEL_FAILED = "model_failed"
NO_SCORES = "no_scores"

#: Default thresholds of the screens (see the module docstring).
THRESHOLD = 0.15
THRESHOLD_TOP = 0.125
THRESHOLD_HEAP = 0.30

#: Categories of settlement or school type with fewer fitting schools than this are pooled
#: with the reference category of the expected-share model (a dummy for one or two schools
#: would fit them exactly and hide them).
MIN_LEVEL_SCHOOLS = 10
#: The expected-share model needs at least this many schools per parameter.
MIN_SCHOOLS_PER_PARAMETER = 5

EVIDENCE_COLUMNS = ("school_id", "screen", "procedure", "subject", "grade", "value",
                    "reference", "low", "high", "threshold", "n", "n_other", "fired")


# ---------------------------------------------------------------------------------------------
# Intervals
# ---------------------------------------------------------------------------------------------


def wilson(k: np.ndarray | pd.Series | float, n: np.ndarray | pd.Series | float,
           z: float = 1.96) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of a binomial share ``k / n``, vectorised.

    Unlike the Wald interval ``p ± z·sqrt(p(1 − p)/n)``, it keeps its width at ``k = 0``
    and ``k = n``: 0 of 2 gives 0 to 0.658, not a point.

    Parameters
    ----------
    k, n : array-like of the same shape (or scalars)
        Successes and trials (``0 <= k <= n``).
    z : float
        Normal quantile (1.96 for 95%), positive.

    Returns
    -------
    low, high : ndarray of float64
        Interval bounds on 0..1; NaN where ``n == 0`` (the caller turns them into ``<NA>``).
    """
    if not z > 0:
        raise ValueError("z must be positive")
    k = np.asarray(k, dtype="float64")
    n = np.asarray(n, dtype="float64")
    z2 = z * z
    with np.errstate(divide="ignore", invalid="ignore"):
        p = k / n
        denom = 1.0 + z2 / n
        centre = p + z2 / (2.0 * n)
        half = z * np.sqrt(np.maximum(p * (1.0 - p), 0.0) / n + z2 / (4.0 * n * n))
        low = np.clip((centre - half) / denom, 0.0, 1.0)
        high = np.clip((centre + half) / denom, 0.0, 1.0)
    low = np.where(k == 0, 0.0, low)   # exact at the bounds (no rounding residue)
    high = np.where(k == n, 1.0, high)
    empty = ~(n > 0)
    return np.where(empty, np.nan, low), np.where(empty, np.nan, high)


def wilson_centre(k: np.ndarray | pd.Series, n: np.ndarray | pd.Series,
                  z: float = 1.96) -> np.ndarray:
    """Centre of the Wilson interval, ``(k + z²/2) / (n + z²)``: a share pulled towards 1/2,
    never 0 or 1 (NaN where ``n == 0``)."""
    k = np.asarray(k, dtype="float64")
    n = np.asarray(n, dtype="float64")
    return np.where(n > 0, (k + z * z / 2.0) / (n + z * z), np.nan)


def newcombe_diff(k1: np.ndarray | pd.Series | float, n1: np.ndarray | pd.Series | float,
                  k2: np.ndarray | pd.Series | float, n2: np.ndarray | pd.Series | float,
                  z: float = 1.96) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Newcombe's hybrid score interval for the difference of two independent shares.

    Method 10 of Newcombe (1998, *Statistics in Medicine* 17:873–890): with ``p_i = k_i/n_i``
    and Wilson intervals ``(l_i, u_i)``,
    ``low = d − sqrt((p1 − l1)² + (u2 − p2)²)`` and
    ``high = d + sqrt((u1 − p1)² + (p2 − l2)²)``, ``d = p1 − p2``.

    Parameters
    ----------
    k1, n1, k2, n2 : array-like of the same shape (or scalars)
        Successes and trials of the two samples.
    z : float
        Normal quantile (1.96 for 95%).

    Returns
    -------
    diff, low, high : ndarray of float64
        NaN where ``n1 == 0`` or ``n2 == 0``.
    """
    k1, n1, k2, n2 = (np.asarray(x, dtype="float64") for x in (k1, n1, k2, n2))
    l1, u1 = wilson(k1, n1, z)
    l2, u2 = wilson(k2, n2, z)
    with np.errstate(divide="ignore", invalid="ignore"):
        p1 = np.where(n1 > 0, k1 / n1, np.nan)
        p2 = np.where(n2 > 0, k2 / n2, np.nan)
    d = p1 - p2
    low = d - np.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = d + np.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return d, low, high


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def _float(values: np.ndarray | pd.Series, index: pd.Index | None = None) -> pd.Series:
    """Float64 Series with ``<NA>`` for NaN."""
    arr = np.asarray(values, dtype="float64")
    return pd.Series(pd.arrays.FloatingArray(np.nan_to_num(arr), np.isnan(arr)), index=index)


def _bool(values: np.ndarray, known: np.ndarray, index: pd.Index | None = None) -> pd.Series:
    """Nullable boolean Series: ``values`` where ``known``, ``<NA>`` elsewhere."""
    arr = pd.arrays.BooleanArray(np.asarray(values, dtype=bool) & np.asarray(known, dtype=bool),
                                 ~np.asarray(known, dtype=bool))
    return pd.Series(arr, index=index)


def _int(values: np.ndarray | pd.Series, index: pd.Index | None = None) -> pd.Series:
    return pd.Series(pd.array(np.asarray(values, dtype="int64"), dtype="Int64"), index=index)


def _reasons(index: pd.Index, *rules: tuple[np.ndarray, str]) -> pd.Series:
    """A ``string`` reason per row: the first rule whose mask holds, else ``""``."""
    out = np.full(len(index), "", dtype=object)
    for mask, reason in reversed(rules):  # the first rule wins
        out[np.asarray(mask, dtype=bool)] = reason
    return pd.Series(pd.array(out, dtype="string"), index=index)


def _schools(results: pd.DataFrame, year: int) -> pd.Index:
    """Sorted ids (``string``) of the schools with any result row in ``year``."""
    ids = results.loc[results["year"] == year, "school_id"].astype("string").unique()
    return pd.Index(np.sort(np.asarray(ids, dtype=object)), dtype="string", name="school_id")


def _marked(results: pd.DataFrame, year: int, procedure: str, grades: Sequence[int],
            subjects: Sequence[str]) -> pd.DataFrame:
    """Marked result rows of one procedure with participants: ``school_id, subject, n, k45,
    k5`` (float counts)."""
    cols = ["n_mark2", "n_mark3", "n_mark4", "n_mark5"]
    if not set(cols) <= set(results.columns):
        return pd.DataFrame(columns=["school_id", "subject", "n", "k45", "k5"])
    sel = ((results["year"] == year) & (results["procedure"] == procedure)
           & results["grade"].isin(list(grades)) & results["subject"].isin(list(subjects))
           & results[cols].notna().all(axis=1) & (results["participants"] > 0))
    r = results.loc[sel]
    return pd.DataFrame({
        "school_id": r["school_id"].astype("string").to_numpy(),
        "subject": r["subject"].astype("string").to_numpy(),
        "n": r[cols].astype("float64").sum(axis=1).to_numpy(),
        "k45": (r["n_mark4"].astype("float64") + r["n_mark5"].astype("float64")).to_numpy(),
        "k5": r["n_mark5"].astype("float64").to_numpy(),
    })


def _empty_evidence() -> pd.DataFrame:
    return pd.DataFrame({
        "school_id": pd.Series(dtype="string"), "screen": pd.Series(dtype="string"),
        "procedure": pd.Series(dtype="string"), "subject": pd.Series(dtype="string"),
        "grade": pd.Series(dtype="Int64"),
        **{c: pd.Series(dtype="Float64")
           for c in ("value", "reference", "low", "high", "threshold")},
        "n": pd.Series(dtype="Int64"), "n_other": pd.Series(dtype="Int64"),
        "fired": pd.Series(dtype="boolean")})


def _evidence(frame: pd.DataFrame, columns: dict[str, str], constants: dict[str, object]
              ) -> pd.DataFrame:
    """Evidence rows in :data:`EVIDENCE_COLUMNS` order and dtypes: ``columns`` maps an
    evidence column to a column of ``frame``, ``constants`` to a value for every row."""
    out = {col: (frame[columns[col]].to_numpy() if col in columns
                 else np.full(len(frame), constants[col], dtype=object))
           for col in EVIDENCE_COLUMNS}
    df = pd.DataFrame(out)
    return df.astype({"school_id": "string", "screen": "string", "procedure": "string",
                      "subject": "string", "grade": "Int64", "value": "Float64",
                      "reference": "Float64", "low": "Float64", "high": "Float64",
                      "threshold": "Float64", "n": "Int64", "n_other": "Int64",
                      "fired": "boolean"})


# ---------------------------------------------------------------------------------------------
# Screen 1: ВПР standing far above ОГЭ standing
# ---------------------------------------------------------------------------------------------


def _gap(vpr: pd.DataFrame, oge: pd.DataFrame, index: pd.Index, region: tuple[float, float],
         *, min_n: int, z: float, threshold: float) -> pd.DataFrame:
    """Gap between ВПР and ОГЭ standing for the rows of ``index`` (absent = 0 participants).

    ``vpr``, ``oge``: ``n`` and ``k45`` indexed like ``index``; ``region``: the region's
    ВПР and ОГЭ quality, treated as fixed.
    """
    v = vpr.reindex(index).fillna(0.0)
    o = oge.reindex(index).fillna(0.0)
    d, low, high = newcombe_diff(v["k45"], v["n"], o["k45"], o["n"], z)
    shift = region[0] - region[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        qv = np.where(v["n"] > 0, v["k45"] / v["n"], np.nan)
        qo = np.where(o["n"] > 0, o["k45"] / o["n"], np.nan)
    ok = (v["n"].to_numpy() >= min_n) & (o["n"].to_numpy() >= min_n)
    return pd.DataFrame({
        "vpr_quality": _float(qv, index), "oge_quality": _float(qo, index),
        "gap": _float(d - shift, index), "gap_low": _float(low - shift, index),
        "gap_high": _float(high - shift, index),
        "n_vpr": _int(v["n"], index), "n_oge": _int(o["n"], index),
        "fired": _bool(low - shift > threshold, ok, index), "assessable": ok,
    }, index=index)


def screen_vpr_oge(results: pd.DataFrame, year: int, *, subjects: Sequence[str] = ("rus", "math"),
                   min_n: int = 10, z: float = 1.96, threshold: float = THRESHOLD,
                   schools: pd.Index | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """ВПР standing far above ОГЭ standing.

    Per school: ВПР quality ``q_vpr`` = share of «4»+«5» pooled over ``subjects`` and grades
    5–6; ОГЭ quality ``q_oge`` likewise at grade 9.  Standing = school share − region share
    (the region's share pooled over all its schools, treated as fixed).
    ``gap = (q_vpr − R_vpr) − (q_oge − R_oge)`` with Newcombe's hybrid score interval.
    Fires when ``n_vpr >= min_n``, ``n_oge >= min_n`` and ``gap_low > threshold``.  The same
    comparison per subject is evidence only.

    Parameters
    ----------
    results : DataFrame
        Tidy results (:func:`analysis.ingest.prepare.tidy_results`).
    year : int
        Reporting year.
    subjects, min_n, z, threshold
        See :func:`objectivity_screens`.
    schools : Index, optional
        Schools to report (default: every school with a result row in ``year``).

    Returns
    -------
    table : DataFrame indexed by school_id
        ``vpr_oge`` (boolean), ``vpr_oge_reason`` (string), ``vpr_quality``,
        ``oge_quality``, ``gap``, ``gap_low``, ``gap_high`` (Float64), ``n_vpr``, ``n_oge``
        (Int64).
    evidence : DataFrame
        Assessed comparisons (:data:`EVIDENCE_COLUMNS`): subject ``all`` and each subject;
        ``value`` = gap, ``reference`` = 0 (the region's gap), ``n`` / ``n_other`` = ВПР /
        ОГЭ participants.
    """
    index = _schools(results, year) if schools is None else schools
    vpr = _marked(results, year, VPR, VPR_GRADES, subjects)
    oge = _marked(results, year, OGE, OGE_GRADES, subjects)
    no_proc = vpr.empty or oge.empty
    if no_proc:
        region = (np.nan, np.nan)
    else:
        region = (vpr["k45"].sum() / vpr["n"].sum(), oge["k45"].sum() / oge["n"].sum())
    cols = ["n", "k45"]
    pooled = _gap(vpr.groupby("school_id")[cols].sum(), oge.groupby("school_id")[cols].sum(),
                  index, region, min_n=min_n, z=z, threshold=threshold)
    table = pooled.drop(columns=["fired", "assessable"])
    table.insert(0, "vpr_oge", pooled["fired"])
    table.insert(1, "vpr_oge_reason", _reasons(
        index, (np.full(len(index), no_proc), NO_PROCEDURE),
        (~pooled["assessable"].to_numpy(), FEW_PARTICIPANTS)))
    if no_proc:
        return table, _empty_evidence()
    frames = [pooled.assign(subject=ALL)]
    for subject in subjects:
        v, o = vpr.loc[vpr["subject"] == subject], oge.loc[oge["subject"] == subject]
        if v.empty or o.empty:
            continue
        reg = (v["k45"].sum() / v["n"].sum(), o["k45"].sum() / o["n"].sum())
        frames.append(_gap(v.groupby("school_id")[cols].sum(),
                           o.groupby("school_id")[cols].sum(), index, reg, min_n=min_n, z=z,
                           threshold=threshold).assign(subject=subject))
    ev = pd.concat(frames).rename_axis("school_id").reset_index()
    ev = ev.loc[ev["assessable"]]
    evidence = _evidence(
        ev, {"school_id": "school_id", "subject": "subject", "value": "gap", "low": "gap_low",
             "high": "gap_high", "n": "n_vpr", "n_other": "n_oge", "fired": "fired"},
        {"screen": "vpr_oge", "procedure": f"{VPR}-{OGE}", "grade": pd.NA, "reference": 0.0,
         "threshold": threshold})
    return table, evidence


# ---------------------------------------------------------------------------------------------
# Screen 2: unusual share of «5» given context and ОГЭ
# ---------------------------------------------------------------------------------------------


def _context_year(context: pd.DataFrame | None, year: int, index: pd.Index) -> pd.DataFrame:
    """``social_index``, ``settlement_type``, ``school_type`` of each school (NaN/None where
    missing), indexed like ``index``."""
    cols = ["social_index", "settlement_type", "school_type"]
    if context is None or context.empty:
        return pd.DataFrame({c: np.nan for c in cols}, index=index)
    c = context.loc[context["year"] == year] if "year" in context.columns else context
    c = c.assign(school_id=c["school_id"].astype("string")).drop_duplicates(
        "school_id").set_index("school_id")
    out = pd.DataFrame(index=index)
    out["social_index"] = (pd.to_numeric(c["social_index"], errors="coerce").astype("float64")
                           if "social_index" in c else pd.Series(dtype="float64")
                           ).reindex(index).to_numpy()
    for col in cols[1:]:
        values = c[col].astype("string") if col in c else pd.Series(dtype="string")
        out[col] = values.reindex(index).astype(object).where(
            values.reindex(index).notna(), None).to_numpy()
    return out


def _dummies(values: pd.Series, fit: np.ndarray, prefix: str) -> pd.DataFrame:
    """Dummies of ``values`` for the categories with at least :data:`MIN_LEVEL_SCHOOLS` rows
    among ``fit``, except the most frequent one (the reference, which also takes rare
    categories)."""
    counts = values[fit].value_counts().sort_index()
    counts = counts.sort_values(ascending=False, kind="stable")
    keep = [lvl for lvl, k in counts.iloc[1:].items() if k >= MIN_LEVEL_SCHOOLS]
    return pd.DataFrame({f"{prefix}[{lvl}]": (values == lvl).to_numpy(dtype="float64")
                         for lvl in keep}, index=values.index)


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p / (1.0 - p))


def screen_top_marks(results: pd.DataFrame, context: pd.DataFrame | None, year: int, *,
                     subjects: Sequence[str] = ("rus", "math"), min_n: int = 10,
                     z: float = 1.96, threshold_top: float = THRESHOLD_TOP,
                     schools: pd.Index | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """An unusual share of «5» in ВПР given the school's context and its ОГЭ quality.

    Expected share of «5» (ВПР, grades 5–6, pooled over ``subjects``) from a binomial GLM
    (logit link) on counts ``(k5, n − k5)`` with the social index, dummies of settlement
    type and school type (categories with fewer than :data:`MIN_LEVEL_SCHOOLS` fitting
    schools join the reference) and the logit of the school's ОГЭ quality (Wilson-centred
    share of «4»+«5», so it is finite at 0 and 1).  It is fitted over the schools with
    ``n_vpr >= min_n``, ``n_oge >= min_n`` and complete context, and the screen fires where
    the Wilson lower bound of the observed share exceeds ``expected + threshold_top``.  A
    school strong at ОГЭ too has a high expected share, so it is not caught.

    Returns
    -------
    table : DataFrame indexed by school_id
        ``top_marks`` (boolean), ``top_marks_reason`` (string), ``top_share``,
        ``top_low``, ``top_high``, ``top_expected`` (Float64).
    evidence : DataFrame
        One row per assessed school: ``value`` = observed share of «5», ``reference`` =
        expected share, ``low``/``high`` = Wilson interval, ``n``/``n_other`` = ВПР/ОГЭ
        participants.
    """
    index = _schools(results, year) if schools is None else schools
    vpr = _marked(results, year, VPR, VPR_GRADES, subjects)
    oge = _marked(results, year, OGE, OGE_GRADES, subjects)
    v = vpr.groupby("school_id")[["n", "k5"]].sum().reindex(index).fillna(0.0)
    o = oge.groupby("school_id")[["n", "k45"]].sum().reindex(index).fillna(0.0)
    ctx = _context_year(context, year, index)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(v["n"] > 0, v["k5"] / v["n"], np.nan)
    low, high = wilson(v["k5"], v["n"], z)
    few = ~((v["n"].to_numpy() >= min_n) & (o["n"].to_numpy() >= min_n))
    no_ctx = ctx.isna().any(axis=1).to_numpy()
    fit = ~few & ~no_ctx
    expected = np.full(len(index), np.nan)
    failure = ""
    if vpr.empty or oge.empty:
        failure = NO_PROCEDURE
    elif fit.any():
        x = pd.concat([
            pd.DataFrame({"const": 1.0, "social_index": ctx["social_index"].to_numpy(),
                          "oge_logit": _logit(wilson_centre(o["k45"], o["n"], z))},
                         index=index),
            _dummies(ctx["settlement_type"], fit, "settlement_type"),
            _dummies(ctx["school_type"], fit, "school_type")], axis=1)
        if fit.sum() < MIN_SCHOOLS_PER_PARAMETER * x.shape[1]:
            failure = TOO_FEW_SCHOOLS
        else:
            y = np.column_stack([v["k5"].to_numpy()[fit], (v["n"] - v["k5"]).to_numpy()[fit]])
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    model = sm.GLM(y, x.to_numpy()[fit], family=sm.families.Binomial()).fit()
                pred = np.asarray(model.predict(x.to_numpy()[fit]), dtype="float64")
                if not (getattr(model, "converged", True) and np.isfinite(pred).all()):
                    raise ValueError("the expected-share model did not converge")
                expected[fit] = pred
            except (ValueError, np.linalg.LinAlgError, PerfectSeparationError):
                failure = MODEL_FAILED
    assessed = fit & ~np.isnan(expected)
    table = pd.DataFrame({
        "top_marks": _bool(low > expected + threshold_top, assessed, index),
        "top_marks_reason": _reasons(
            index, (np.full(len(index), failure == NO_PROCEDURE), NO_PROCEDURE),
            (few, FEW_PARTICIPANTS), (no_ctx, NO_CONTEXT),
            (np.full(len(index), bool(failure)), failure or MODEL_FAILED)),
        "top_share": _float(share, index), "top_low": _float(low, index),
        "top_high": _float(high, index), "top_expected": _float(expected, index),
    }, index=index)
    ev = table.loc[assessed].assign(n_vpr=v["n"][assessed], n_oge=o["n"][assessed])
    evidence = _evidence(
        ev.rename_axis("school_id").reset_index(),
        {"school_id": "school_id", "value": "top_share", "reference": "top_expected",
         "low": "top_low", "high": "top_high", "n": "n_vpr", "n_other": "n_oge",
         "fired": "top_marks"},
        {"screen": "top_marks", "procedure": VPR, "subject": ALL, "grade": pd.NA,
         "threshold": threshold_top})
    return table, evidence


# ---------------------------------------------------------------------------------------------
# Screen 3: heaping at cut scores
# ---------------------------------------------------------------------------------------------

ASSESSMENT = ["procedure", "subject", "grade"]


def _scored(students: pd.DataFrame | None, year: int) -> pd.DataFrame:
    """Students of ``year`` with a score and a mark: ``school_id, procedure, subject, grade,
    score, mark`` (the input's dtypes; no rows without a students table)."""
    cols = ["school_id", *ASSESSMENT, "score", "mark"]
    if students is None or not {"year", *cols} <= set(students.columns):
        return pd.DataFrame({c: pd.Series(dtype="float64" if c == "score" else "object")
                             for c in cols})
    keep = ((students["year"] == year) & students["score"].notna()
            & students["mark"].notna()).fillna(False).to_numpy(dtype=bool)
    return students.loc[keep, cols]


def _assessment_cuts(s: pd.DataFrame) -> tuple[pd.MultiIndex, np.ndarray, np.ndarray]:
    """Assessments of the scored students ``s`` and their inferred cut scores.

    Returns
    -------
    keys : MultiIndex (procedure, subject, grade), sorted
    codes : ndarray of int, shape (len(s),)
        Each student's row of ``keys``.
    cuts : ndarray of float, shape (len(keys), len(CUT_MARKS))
        Lowest score observed with each mark (NaN where no student got it).
    """
    grouped = s.groupby(ASSESSMENT, sort=True)
    codes = grouped.ngroup().to_numpy()
    keys = grouped.size().index
    score = s["score"].to_numpy(dtype="float64")
    mark = s["mark"].to_numpy(dtype="float64", na_value=np.nan)
    cuts = np.full((len(keys), len(CUT_MARKS)), np.nan)
    for j, m in enumerate(CUT_MARKS):
        sel = mark == m
        low = pd.Series(score[sel]).groupby(codes[sel]).min()
        cuts[low.index.to_numpy(), j] = low.to_numpy()
    return keys, codes, cuts


def cut_scores(students: pd.DataFrame | None, year: int) -> pd.DataFrame:
    """Inferred cut score of each mark per assessment: the lowest score observed with it.

    Returns
    -------
    DataFrame indexed by (procedure, subject, grade)
        One float column per mark of :data:`CUT_MARKS` (``cut3``, ``cut4``, ``cut5``), NaN
        where no student of the region got the mark.
    """
    s = _scored(students, year)
    if s.empty:
        return pd.DataFrame(columns=[f"cut{m}" for m in CUT_MARKS], dtype="float64")
    keys, _, cuts = _assessment_cuts(s)
    return pd.DataFrame(cuts, index=keys, columns=[f"cut{m}" for m in CUT_MARKS])


def screen_heaping(students: pd.DataFrame | None, year: int, *, min_n: int = 10,
                   z: float = 1.96, threshold_heap: float = THRESHOLD_HEAP,
                   schools: pd.Index | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Mark distributions heaped at cut scores (only where student scores exist).

    Per assessment (procedure, subject, grade of ``year``) the cut score of marks 3, 4, 5 is
    the lowest score observed with the mark in the region (:func:`cut_scores`).  Per school
    x assessment, ``a`` = students exactly at a cut score and ``b`` = students one point
    below one (a score that is both counts as ``a``); the region's ratio is
    ``r = A / (A + B)``.  An assessment fires when ``a + b >= min_n`` and the Wilson lower
    bound of ``a / (a + b)`` exceeds ``r + threshold_heap``; the school fires when any of its
    assessments does.

    Returns
    -------
    table : DataFrame indexed by school_id (``schools``; default: schools in ``students``)
        ``heaping`` (boolean), ``heaping_reason`` (string), ``n_heaped`` (Int64, assessments
        fired; ``<NA>`` when not assessed).
    evidence : DataFrame
        One row per assessed school x assessment: ``value`` = a / (a + b), ``reference`` =
        r, ``n`` = a + b, ``n_other`` = the school's scored students in the assessment.
    """
    s = _scored(students, year)
    school_code, school_ids = pd.factorize(s["school_id"].astype("string"), sort=True)
    index = schools if schools is not None else pd.Index(
        np.asarray(school_ids, dtype=object), dtype="string", name="school_id")
    if s.empty:
        table = pd.DataFrame({
            "heaping": _bool(np.zeros(len(index)), np.zeros(len(index)), index),
            "heaping_reason": _reasons(index, (np.ones(len(index)), NO_SCORES)),
            "n_heaped": pd.Series(pd.array([pd.NA] * len(index), dtype="Int64"), index=index),
        }, index=index)
        return table, _empty_evidence()
    keys, codes, cuts = _assessment_cuts(s)
    c = cuts[codes]  # (students, marks)
    score = s["score"].to_numpy(dtype="float64")[:, None]
    at = (score == c).any(axis=1)
    below = ~at & (score == c - 1.0).any(axis=1)
    # per school x assessment (sorted by school, then assessment)
    cell, inverse = np.unique(school_code * len(keys) + codes, return_inverse=True)
    a = np.bincount(inverse, at)
    b = np.bincount(inverse, below)
    total = np.bincount(inverse)
    school, assess = np.divmod(cell, len(keys))
    big_a = np.bincount(codes, at, minlength=len(keys))
    big_b = np.bincount(codes, below, minlength=len(keys))
    m = a + b
    with np.errstate(divide="ignore", invalid="ignore"):
        r = (big_a / (big_a + big_b))[assess]
        ratio = a / m
    low, high = wilson(a, m, z)
    ok = (m >= min_n) & ~np.isnan(r)
    fired = ok & (low > r + threshold_heap)
    g = pd.DataFrame({
        "school_id": pd.array(np.asarray(school_ids, dtype=object)[school], dtype="string"),
        **{k: keys.get_level_values(k).to_numpy()[assess] for k in ASSESSMENT},
        "ratio": ratio, "r": r, "low": low, "high": high, "m": m, "total": total, "ok": ok,
        "fired": fired})
    per = g.groupby("school_id").agg(ok=("ok", "any"), fired=("fired", "sum")).reindex(index)
    has = per["ok"].notna().to_numpy()
    ok_s = per["ok"].fillna(False).to_numpy(dtype=bool)
    n_fired = per["fired"].fillna(0).to_numpy(dtype="int64")
    table = pd.DataFrame({
        "heaping": _bool(n_fired > 0, ok_s, index),
        "heaping_reason": _reasons(index, (~has, NO_SCORES), (~ok_s, FEW_PARTICIPANTS)),
        "n_heaped": pd.Series(pd.arrays.IntegerArray(n_fired, ~ok_s), index=index),
    }, index=index)
    ev = g.loc[ok & g["school_id"].isin(index).to_numpy(dtype=bool)]
    evidence = _evidence(
        ev, {"school_id": "school_id", "procedure": "procedure", "subject": "subject",
             "grade": "grade", "value": "ratio", "reference": "r", "low": "low",
             "high": "high", "n": "m", "n_other": "total", "fired": "fired"},
        {"screen": "heaping", "threshold": threshold_heap})
    return table, evidence


# ---------------------------------------------------------------------------------------------
# All screens
# ---------------------------------------------------------------------------------------------


def objectivity_screens(results: pd.DataFrame, context: pd.DataFrame | None,
                        students: pd.DataFrame | None, year: int, *, min_n: int = 10,
                        z: float = 1.96, threshold: float = THRESHOLD,
                        threshold_top: float = THRESHOLD_TOP,
                        threshold_heap: float = THRESHOLD_HEAP,
                        subjects: Sequence[str] = ("rus", "math")
                        ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run the three screens for the reporting ``year``; list evidence, accuse no one.

    Parameters
    ----------
    results : DataFrame
        Tidy results (:func:`analysis.ingest.prepare.tidy_results`).
    context : DataFrame or None
        ``year`` (optional), ``school_id``, ``social_index`` (NaN allowed),
        ``settlement_type``, ``school_type``.
    students : DataFrame or None
        The optional students table (``year, school_id, procedure, subject, grade, score,
        mark``); without it (or without scores) the heaping screen is ``<NA>``.
    year : int
        Reporting year.
    min_n : int
        Minimum participants on each side of a comparison (and ``a + b`` for heaping).
    z : float
        Normal quantile of every interval (1.96 for 95%).
    threshold : float
        ``vpr_oge`` fires when the gap's lower bound exceeds it.
    threshold_top : float
        ``top_marks`` fires when the lower bound of the share of «5» exceeds the expected
        share by more than it.
    threshold_heap : float
        ``heaping`` fires when the lower bound of ``a / (a + b)`` exceeds the region's ratio
        by more than it.
    subjects : sequence of str
        Subjects pooled by ``vpr_oge`` and ``top_marks``.

    Returns
    -------
    schools : DataFrame, one row per school with any result in ``year`` (sorted by id)
        ``school_id``; ``vpr_oge``, ``top_marks``, ``heaping`` (boolean, ``<NA>`` when not
        assessable); ``n_signals`` (Int64, screens that fired); ``objectivity_flag`` (bool,
        any screen fired); ``vpr_quality, oge_quality, gap, gap_low, gap_high`` (Float64),
        ``n_vpr, n_oge`` (Int64); ``top_share, top_low, top_high, top_expected``
        (Float64); ``n_heaped`` (Int64); ``vpr_oge_reason, top_marks_reason,
        heaping_reason`` (string, ``""`` when assessed).
    evidence : DataFrame, long
        One row per assessed comparison (:data:`EVIDENCE_COLUMNS`): ``school_id, screen,
        procedure, subject`` (``all`` when pooled), ``grade`` (``<NA>`` when pooled),
        ``value, reference`` (region or expected), ``low, high, threshold`` (Float64),
        ``n, n_other`` (Int64), ``fired`` (boolean).  No NaN anywhere.
    """
    if min_n < 1:
        raise ValueError("min_n must be at least 1")
    index = _schools(results, year)
    gap, ev_gap = screen_vpr_oge(results, year, subjects=subjects, min_n=min_n, z=z,
                                 threshold=threshold, schools=index)
    top, ev_top = screen_top_marks(results, context, year, subjects=subjects, min_n=min_n, z=z,
                                   threshold_top=threshold_top, schools=index)
    heap, ev_heap = screen_heaping(students, year, min_n=min_n, z=z,
                                   threshold_heap=threshold_heap, schools=index)
    flags = pd.concat([gap["vpr_oge"], top["top_marks"], heap["heaping"]], axis=1)
    n_signals = flags.fillna(False).astype(bool).sum(axis=1)
    out = pd.DataFrame({
        "school_id": pd.array(index, dtype="string"),
        "vpr_oge": gap["vpr_oge"].array, "top_marks": top["top_marks"].array,
        "heaping": heap["heaping"].array,
        "n_signals": pd.array(n_signals.to_numpy(dtype="int64"), dtype="Int64"),
        "objectivity_flag": (n_signals > 0).to_numpy(dtype=bool),
    })
    for frame, cols in ((gap, ["vpr_quality", "oge_quality", "gap", "gap_low", "gap_high",
                               "n_vpr", "n_oge"]),
                        (top, ["top_share", "top_low", "top_high", "top_expected"]),
                        (heap, ["n_heaped"])):
        for col in cols:
            out[col] = frame[col].array
    out["vpr_oge_reason"] = gap["vpr_oge_reason"].array
    out["top_marks_reason"] = top["top_marks_reason"].array
    out["heaping_reason"] = heap["heaping_reason"].array
    evidence = pd.concat([e for e in (ev_gap, ev_top, ev_heap) if not e.empty]
                         or [_empty_evidence()], ignore_index=True)
    order = {s: i for i, s in enumerate(SCREENS)}
    evidence = evidence.assign(_o=evidence["screen"].map(order).astype("int64")).sort_values(
        ["school_id", "_o", "procedure", "subject", "grade"], kind="stable",
        na_position="first").drop(columns="_o").reset_index(drop=True)
    return out, evidence
