"""A Parquet file to a grid of text cells: its column names, then its typed values as text.

Values are converted column by column at once (``_series_text``), to the same texts as
value by value (:func:`~analysis.ingest.readers.common._value_text`); they are typed, so no
decimal comma is ever converted.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analysis.ingest.readers.common import (
    ReadOptions,
    _column,
    _Grid,
    _unreadable,
    _value_text,
)


def _read_parquet(path: Path, options: ReadOptions) -> _Grid:
    try:
        df = pd.read_parquet(path)
    except Exception as exc:  # noqa: BLE001 - any library failure means "unreadable"
        raise _unreadable(path.name, "parquet", exc) from None
    if not isinstance(df.index, pd.RangeIndex):
        df = df.reset_index()
    columns = []
    for name in df.columns:
        cells = np.empty(len(df) + 1, dtype=object)
        cells[0] = _value_text(name)
        cells[1:] = _series_text(df[name])
        columns.append(_column(cells))
    notes = ("header row option ignored: a Parquet file's header is row 1",) if (
        options.header_row not in (None, 1)) else ()
    return _Grid(columns, np.arange(1, len(df) + 2, dtype=np.int64), notes=notes)


#: Floats whose whole values convert to int64 exactly (below 2**53 in magnitude).
_EXACT_INT = 2.0**53


def _series_text(values: pd.Series) -> np.ndarray:
    """:func:`_value_text` of every value of a typed column, by the column's dtype at once.

    Integer, float, boolean and text columns are converted in bulk (a per-value call costs
    about 1 us: 10 s for a students table of 900,000 rows x 9 columns); any other dtype
    (dates, categories, mixed objects) value by value.  Same texts either way.
    """
    dtype = values.dtype
    out = np.empty(len(values), dtype=object)
    if dtype == np.bool_:
        out[:] = np.where(values.to_numpy(), "TRUE", "FALSE")
        return out
    if pd.api.types.is_integer_dtype(dtype):
        missing = values.isna().to_numpy()
        filled = values.to_numpy(dtype="int64", na_value=0)
        out[:] = filled.astype(str).astype(object)
        out[missing] = None
        return out
    if pd.api.types.is_float_dtype(dtype):
        x = values.to_numpy(dtype="float64", na_value=np.nan)
        with np.errstate(invalid="ignore"):
            whole = np.isfinite(x) & (x == np.trunc(x))
        small = whole & (np.abs(x) < _EXACT_INT)
        out[small] = x[small].astype("int64").astype(str).astype(object)
        big = whole & ~small
        out[big] = [str(int(v)) for v in x[big].tolist()]
        other = ~whole & ~np.isnan(x)
        out[other] = [repr(v) for v in x[other].tolist()]  # shortest round-trip, as _float_text
        return out  # NaN: None (the array's initial value)
    if pd.api.types.is_string_dtype(dtype) or dtype == np.dtype(object):
        items = values.tolist()
        if all(type(v) is str or v is None for v in items):
            out[:] = [v if v else None for v in items]
            return out
        out[:] = [_value_text(v) for v in items]
        return out
    out[:] = [_value_text(v) for v in values.tolist()]
    return out
