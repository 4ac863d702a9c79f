"""The one tidy table of model estimates (``data/processed/estimates.parquet``).

Every model of the analysis reports its numbers as rows of one long table, one row per
(model, outcome, year, subset, level, term), so the report, the metrics and the tests read
them in one way (:func:`lookup`) whatever model produced them.

Columns (:data:`COLUMNS`) and their dtypes (:data:`DTYPES`):

- ``model`` -- which model: ``"expected"``, ``"gradient"``, ``"binomial"``, ...;
- ``outcome`` -- what was modelled: ``"quality_index"``, ``"VPR/math/5"``, ...;
- ``year`` -- the reporting year (nullable ``Int64``; ``<NA>`` for rows across years);
- ``subset`` -- which schools: ``"all"``, ``"settlement_type=city"``, ...;
- ``level`` -- ``"school"``, ``"municipality"`` or ``"student"`` (:data:`LEVELS`);
- ``term`` -- the statistic (conventions below);
- ``estimate``, ``std_error``, ``ci_low``, ``ci_high`` -- nullable ``Float64`` in the units of
  the term; a number that could not be computed is ``<NA>``, never NaN or infinite;
- ``n`` -- number of units behind the row (schools, unless the model says otherwise;
  nullable ``Int64``);
- ``reason`` -- why a number of the row is missing (:data:`REASONS`), ``""`` otherwise.

Term conventions: ``"coef:<name>"`` (a regression coefficient), ``"var:<group>"`` and
``"var:residual"`` (variance components), ``"icc"``, ``"r2"``, ``"slope"``,
``"slope_at:<x>"``, ``"curvature"``, ``"gap_top_bottom_quarter"``, ``"odds_ratio_per_sd"``,
``"dispersion"``, ``"ame_per_sd"`` (see the producing modules for their units).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from numbers import Number
from typing import Any

import numpy as np
import pandas as pd

COLUMNS = ("model", "outcome", "year", "subset", "level", "term", "estimate", "std_error",
           "ci_low", "ci_high", "n", "reason")
#: The key: no two rows of a valid table share it.
KEY = ("model", "outcome", "year", "subset", "level", "term")
STRING_COLUMNS = ("model", "outcome", "subset", "level", "term", "reason")
FLOAT_COLUMNS = ("estimate", "std_error", "ci_low", "ci_high")
INT_COLUMNS = ("year", "n")
DTYPES: dict[str, str] = {**dict.fromkeys(STRING_COLUMNS, "str"),
                          **dict.fromkeys(FLOAT_COLUMNS, "Float64"),
                          **dict.fromkeys(INT_COLUMNS, "Int64")}
LEVELS = ("school", "municipality", "student")
#: Defaults :func:`make` fills for columns a row leaves out (``model`` and ``term`` have none).
DEFAULTS: dict[str, Any] = {"outcome": "", "year": None, "subset": "all", "level": "school",
                            "estimate": None, "std_error": None, "ci_low": None,
                            "ci_high": None, "n": None, "reason": ""}
#: Reason codes used by the models (a row may carry another code; these are the common ones).
REASONS = {
    "not_finite": "the computation gave no finite number",
    "missing": "no value was given",
    "no_standard_error": "the statistic has no standard error (a share, a bound, a scale)",
    "too_few_schools": "fewer schools than the minimum for the model",
    "no_variation": "the outcome or the index has the same value for every school",
    "too_few_distinct_index_values": "the term needs more distinct index values",
    "too_few_clusters": "cluster-robust errors need schools in 2 or more municipalities",
    "too_few_years": "a trend needs slopes with standard errors in 2 or more years",
    "full_leverage_school": "a school alone determines a coefficient (HC2/HC3 undefined)",
    "too_few_municipalities": "the multilevel model needs schools in 5 or more municipalities",
    "boundary": "the variance is estimated at zero (the boundary of the parameter space)",
}
#: The two-sided 95% normal quantile (confidence intervals built here).
Z95 = 1.959963984540054


def empty() -> pd.DataFrame:
    """An estimates table with no rows (the columns and dtypes of :data:`COLUMNS`)."""
    return pd.DataFrame({c: pd.Series([], dtype=DTYPES[c]) for c in COLUMNS})


def _is_missing(value: object) -> bool:
    if value is None or value is pd.NA:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _float(value: object, column: str, i: int) -> tuple[float | None, bool]:
    """``(value as float or None, whether it was non-finite)``."""
    if _is_missing(value):
        return None, isinstance(value, float | np.floating)
    if not isinstance(value, Number | np.number) or isinstance(value, bool):
        raise TypeError(f"estimates row {i}, column '{column}': expected a number, got "
                         f"{value!r}")
    v = float(value)  # type: ignore[arg-type]
    return (v, False) if math.isfinite(v) else (None, True)


def _int(value: object, column: str, i: int) -> int | None:
    if _is_missing(value):
        return None
    if isinstance(value, bool) or not isinstance(value, Number | np.number):
        raise TypeError(f"estimates row {i}, column '{column}': expected a whole number, got "
                         f"{value!r}")
    v = float(value)  # type: ignore[arg-type]
    if not math.isfinite(v) or v != int(v):
        raise ValueError(f"estimates row {i}, column '{column}': expected a whole number, got "
                         f"{value!r}")
    return int(v)


def make(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Build a valid estimates table from row dicts.

    Parameters
    ----------
    rows : iterable of mappings
        Each with ``model`` and ``term`` and any of the other :data:`COLUMNS`; missing ones
        take :data:`DEFAULTS` (``subset="all"``, ``level="school"``, numbers ``<NA>``,
        ``reason=""``).

    Returns
    -------
    DataFrame, shape (n_rows, 12)
        Columns in the order of :data:`COLUMNS` with :data:`DTYPES`, rows in the given order.
        A NaN or infinite number becomes ``<NA>`` and the row's reason ``"not_finite"``
        unless it gave one; a row without an estimate and without a reason gets ``"missing"``.

    Raises
    ------
    ValueError
        An unknown column, a row without ``model`` or ``term``, a ``year`` or ``n`` that is
        not a whole number, or a table :func:`validate` rejects (e.g. a duplicate key).
    TypeError
        A number column given something that is not a number (e.g. a string).
    """
    out: dict[str, list] = {c: [] for c in COLUMNS}
    for i, row in enumerate(rows):
        unknown = sorted(set(row) - set(COLUMNS))
        if unknown:
            raise ValueError(f"estimates row {i}: unknown column(s) {unknown}; the columns are "
                             f"{list(COLUMNS)}")
        for col in ("model", "term"):
            if _is_missing(row.get(col)) or str(row.get(col)) == "":
                raise ValueError(f"estimates row {i}: column '{col}' is required")
        full = {**DEFAULTS, **row}
        reason = "" if _is_missing(full["reason"]) else str(full["reason"])
        floats: dict[str, float | None] = {}
        not_finite = False
        for col in FLOAT_COLUMNS:
            floats[col], bad = _float(full[col], col, i)
            not_finite |= bad
        if not reason:
            if not_finite:
                reason = "not_finite"
            elif floats["estimate"] is None:
                reason = "missing"
        for col in STRING_COLUMNS:
            out[col].append(reason if col == "reason" else str(full[col]))
        for col in FLOAT_COLUMNS:
            out[col].append(floats[col])
        for col in INT_COLUMNS:
            out[col].append(_int(full[col], col, i))
    df = pd.DataFrame({c: pd.array(out[c], dtype=DTYPES[c]) for c in COLUMNS})
    validate(df)
    return df


def _describe(df: pd.DataFrame, pos: int) -> str:
    row = df.iloc[pos]
    key = ", ".join(f"{k}={row[k]!s}" for k in KEY if k in df.columns)
    return f"row {pos} ({key})"


def validate(df: pd.DataFrame) -> None:
    """Raise unless ``df`` is a valid estimates table.

    Checks: every column of :data:`COLUMNS` present with its :data:`DTYPES` dtype (strings
    as pandas ``str``, floats as nullable ``Float64``, ``year``/``n`` as nullable ``Int64``);
    no NaN or infinite number (missing is ``<NA>``); no missing string (``""`` instead);
    ``level`` one of :data:`LEVELS`; ``n`` not negative; a row without an estimate has a
    reason; no duplicate key (:data:`KEY`).

    Raises
    ------
    ValueError
        Naming the first offending column and the row (position and key).
    """
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"estimates table: missing column(s) {missing}")
    for col in COLUMNS:
        dtype = df[col].dtype
        if col in STRING_COLUMNS:
            ok = isinstance(dtype, pd.StringDtype)
        else:
            ok = str(dtype) == DTYPES[col]
        if not ok:
            raise ValueError(f"estimates table: column '{col}' has dtype {dtype}, expected "
                             f"{DTYPES[col]}")
    for col in FLOAT_COLUMNS:
        values = df[col].array.to_numpy(dtype="float64", na_value=0.0)
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise ValueError(f"estimates table: column '{col}', {_describe(df, int(bad[0]))}: "
                             f"{values[bad[0]]} (a missing number must be <NA>, never NaN or "
                             "infinite)")
    for col in STRING_COLUMNS:
        bad = np.flatnonzero(df[col].isna().to_numpy())
        if bad.size:
            raise ValueError(f"estimates table: column '{col}', {_describe(df, int(bad[0]))}: "
                             "missing (use \"\" for no value)")
    bad = np.flatnonzero(~df["level"].isin(LEVELS).to_numpy())
    if bad.size:
        raise ValueError(f"estimates table: column 'level', {_describe(df, int(bad[0]))}: "
                         f"{df['level'].iloc[bad[0]]!r}, expected one of {LEVELS}")
    bad = np.flatnonzero((df["n"] < 0).fillna(False).to_numpy())
    if bad.size:
        raise ValueError(f"estimates table: column 'n', {_describe(df, int(bad[0]))}: "
                         "negative")
    bad = np.flatnonzero((df["estimate"].isna() & (df["reason"] == "")).to_numpy())
    if bad.size:
        raise ValueError(f"estimates table: column 'reason', {_describe(df, int(bad[0]))}: "
                         "the estimate is missing, so the row needs a reason code")
    dup = np.flatnonzero(df.duplicated(list(KEY), keep="first").to_numpy())
    if dup.size:
        raise ValueError(f"estimates table: duplicate key {list(KEY)} at "
                         f"{_describe(df, int(dup[0]))}")


def concat(frames: Iterable[pd.DataFrame]) -> pd.DataFrame:
    """Stack estimates tables, sorted by :data:`KEY` (``year`` ``<NA>`` first).

    Returns
    -------
    DataFrame
        A valid table with a fresh 0..n-1 index; the order does not depend on the order of
        ``frames``.

    Raises
    ------
    ValueError
        A frame is invalid, or two frames share a key.
    """
    frames = [f for f in frames]
    for f in frames:
        validate(f)
    frames = [f for f in frames if len(f)]
    if not frames:
        return empty()
    out = pd.concat(frames, ignore_index=True)
    out = out.astype(DTYPES)
    out = out.sort_values(list(KEY), na_position="first", kind="mergesort", ignore_index=True)
    validate(out)
    return out[list(COLUMNS)]


def from_statsmodels(res: Any, *, model: str, outcome: str, year: int | None, subset: str,
                     level: str = "school", n: int | None,
                     names: Sequence[str] | Mapping[str, str] | None = None) -> pd.DataFrame:
    """Rows ``"coef:<name>"`` for every coefficient of a fitted statsmodels model.

    Parameters
    ----------
    res : statsmodels results
        With ``params``, ``bse`` and ``conf_int()`` (95%, in the distribution the fit
        used: normal or t).
    model, outcome, year, subset, level, n
        The row labels (see the module docstring).
    names : sequence or mapping, optional
        The coefficient names: a sequence (one per coefficient, in order) or a mapping
        renaming some; default the names statsmodels holds (``exog_names``).

    Returns
    -------
    DataFrame, one row per coefficient
        ``estimate`` = coefficient, ``std_error`` = its standard error, ``ci_low`` /
        ``ci_high`` = the 95% interval; non-finite numbers become ``<NA>`` (``"not_finite"``).
    """
    params = np.asarray(res.params, dtype="float64")
    bse = np.asarray(res.bse, dtype="float64")
    ci = np.asarray(res.conf_int(alpha=0.05), dtype="float64")
    index = getattr(res.params, "index", None)
    held = list(index) if index is not None else list(res.model.exog_names)
    if names is None:
        labels = [str(k) for k in held]
    elif isinstance(names, Mapping):
        labels = [str(names.get(k, k)) for k in held]
    else:
        labels = [str(k) for k in names]
        if len(labels) != params.size:
            raise ValueError(f"names: {len(labels)} given for {params.size} coefficients")
    return make({"model": model, "outcome": outcome, "year": year, "subset": subset,
                 "level": level, "term": f"coef:{name}", "estimate": params[j],
                 "std_error": bse[j], "ci_low": ci[j, 0], "ci_high": ci[j, 1], "n": n}
                for j, name in enumerate(labels))


def _plain(value: object) -> object:
    if _is_missing(value):
        return None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def lookup(df: pd.DataFrame, model: str, term: str, outcome: str | None = None,
           year: int | None = None, subset: str | None = None) -> dict[str, Any] | None:
    """The one row of ``df`` with ``model`` and ``term`` (and the given filters), as a dict.

    Parameters
    ----------
    df : DataFrame
        An estimates table.
    model, term : str
    outcome, year, subset : optional
        Filters; ``None`` means any.

    Returns
    -------
    dict or None
        Column -> plain Python value (``<NA>`` -> ``None``); ``None`` when no row matches.

    Raises
    ------
    ValueError
        More than one row matches (give ``outcome``, ``year`` or ``subset``).
    """
    sel = (df["model"] == model) & (df["term"] == term)
    if outcome is not None:
        sel &= df["outcome"] == outcome
    if year is not None:
        sel &= (df["year"] == year).fillna(False)
    if subset is not None:
        sel &= df["subset"] == subset
    hit = df.loc[sel.fillna(False).astype(bool)]
    if hit.empty:
        return None
    if len(hit) > 1:
        keys = hit[list(KEY)].astype("object").to_dict("records")
        raise ValueError(f"estimates lookup model={model!r}, term={term!r}: {len(hit)} rows "
                         f"match ({keys[:3]}...); narrow by outcome, year or subset")
    return {c: _plain(v) for c, v in hit.iloc[0].items()}
