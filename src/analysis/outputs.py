"""Every file the pipeline writes goes through here: atomic, rounded, strict, named errors.

Three guarantees, for processed tables, JSON summaries, CSV plot data, executed notebooks
and report pages alike:

- **Atomic.** A file is written to a temporary name in its own folder and moved over the
  final name only when complete (:func:`os.replace`), so no reader, and no later stage,
  ever sees a partially written file at a final path.
- **Same bytes on any machine.** Floating-point numbers are rounded to
  :data:`FLOAT_DIGITS` (7) significant decimal digits, never finer than 1e-10
  (:data:`FLOAT_FLOOR`), before they are written (:func:`round_sig`; printed numbers in
  notebooks by :func:`round_text`).  Different CPUs, BLAS kernels and NumPy's vector paths
  disagree in the last bits of a result: after the computations were made stable the
  largest difference left is about 1e-13 relative (``benchmarks/float_noise.py``), a
  million times below the rounding quantum, so both machines write the same decimal and
  processed tables, ``metrics.json`` and the reports keep their hashes (and DVC's cache stays
  valid).  docs/reproducibility.md gives the measurement and the margin.
- **Strict JSON.** ``NaN`` and ``±Infinity`` are written as ``null``; a value that cannot be
  computed is absent-with-a-reason in the report, never a number that is not one.

An I/O failure is raised as :class:`OutputError`, which names the operation and the file
(``could not write data/processed/flags.parquet: No space left on device``).
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

#: Significant decimal digits kept in every float the pipeline writes (docs/reproducibility.md):
#: far below anything published (2-4 digits) and far above the cross-machine noise that
#: is left once the computations are stable (measured by ``benchmarks/float_noise.py``).
#: ``None`` writes floats unrounded (only that benchmark does, to measure the noise).
FLOAT_DIGITS: int | None = 7
#: The finest decimal place kept, whatever the magnitude: values are multiples of
#: ``10**FLOAT_FLOOR`` (1e-10).  A difference of two O(1) numbers that is near 0 carries
#: an absolute noise of 1e-16 .. 1e-15 (``-1.8e-17`` on one machine, ``3.2e-17`` on another);
#: significant digits alone would keep that noise, the floor writes ``0.0`` on both.
FLOAT_FLOOR: int = -10
#: Floats that are whole numbers below this are kept exactly (counts and sums of counts are
#: exact in any order of addition, so they carry no noise to round away).
_EXACT_INTEGERS = 2.0**53
_POW10_EXP = np.arange(-330, 309)
#: Exact decimal powers of ten (parsed from text: correctly rounded on every machine).
_POW10 = np.array([float(f"1e{k}") for k in _POW10_EXP])


class OutputError(OSError):
    """Writing, copying or moving an output failed; the message names the file and the step."""

    def __init__(self, operation: str, path: str | Path, cause: BaseException | str):
        reason = cause.strerror if isinstance(cause, OSError) and cause.strerror else str(cause)
        errno = cause.errno if isinstance(cause, OSError) else None
        super().__init__(errno, " ".join(f"could not {operation} {path}".split()) + f": {reason}")
        self.operation, self.path, self.reason = operation, str(path), reason

    def __str__(self) -> str:
        return self.strerror


def round_sig(values: Any, digits: int | None = None, floor: int | None = None) -> np.ndarray:
    """Round floats to ``digits`` significant decimal digits, never finer than ``10**floor``.

    Parameters
    ----------
    values : array-like of float, any shape
    digits : int, optional
        Significant digits to keep (1..15); default :data:`FLOAT_DIGITS`.  When that is
        ``None`` (noise measurement only) the values are returned unchanged.
    floor : int, optional
        Decimal exponent of the finest place kept; default :data:`FLOAT_FLOOR` (-10).

    Returns
    -------
    ndarray of float64, same shape
        Each finite ``x`` becomes the float nearest to ``x`` rounded to ``digits``
        significant digits, or to a multiple of ``10**floor`` when that is coarser
        (``0.1234 + 1e-13`` -> ``0.1234``; ``3e-17`` -> ``0.0``); whole numbers below 2**53
        (counts) are kept as they are, NaN and infinities are unchanged and ``-0.0``
        becomes ``0.0``.  Only comparisons with exact powers of ten,
        one multiplication, ``rint`` and one division are used, each correctly rounded by
        IEEE 754 on every machine (no ``log10``, whose last bit differs between libm builds).
    """
    x = np.asarray(values, dtype="float64")
    if digits is None:
        digits = FLOAT_DIGITS
    if digits is None:
        return x.copy()
    finite, shift = _rounding_shift(x, digits, floor)
    # scale by 10**shift; split it when one factor would overflow (tiny magnitudes)
    big = shift > 300
    s1 = _POW10[np.clip(np.where(big, 300, shift), -330, 308) + 330]
    s2 = _POW10[np.clip(np.where(big, shift - 300, 0), -330, 308) + 330]
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.rint(x * s1 * s2) / s2 / s1
    out = np.where(out == 0.0, 0.0, out)  # -0.0 (from rint of a small negative) -> 0.0
    return np.where(finite, out, np.where(x == 0.0, 0.0, x))


def _rounding_shift(x: np.ndarray, digits: int, floor: int | None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Which values are rounded (finite, non-zero, not a whole number below 2**53) and the
    decimal shift of each: the value is rounded to a multiple of ``10**-shift``."""
    if floor is None:
        floor = FLOAT_FLOOR
    finite = np.isfinite(x) & (x != 0.0)
    with np.errstate(invalid="ignore"):
        whole = finite & (np.abs(x) < _EXACT_INTEGERS) & (np.rint(x) == x)
    finite &= ~whole
    mag = np.abs(np.where(finite, x, 1.0))
    exp10 = _POW10_EXP[np.clip(np.searchsorted(_POW10, mag, side="right") - 1, 0, None)]
    return finite, np.minimum(digits - 1 - exp10, -floor)


def rounding_step(values: Any, digits: int | None = None,
                  floor: int | None = None) -> np.ndarray:
    """The step :func:`round_sig` rounds each value to: ``10**(exponent - digits + 1)``, at
    least ``10**floor``; ``inf`` where a value is kept as it is (zero, whole numbers below
    2**53, NaN, infinities).  ``benchmarks/float_noise.py`` sets the noise against it."""
    x = np.asarray(values, dtype="float64")
    finite, shift = _rounding_shift(x, FLOAT_DIGITS if digits is None else digits, floor)
    step = _POW10[np.clip(-shift, -330, 308) + 330]
    return np.where(finite, step, np.inf)


def round_frame(df: pd.DataFrame, digits: int | None = None) -> pd.DataFrame:
    """A copy of ``df`` with every float column rounded by :func:`round_sig`."""
    out = df.copy()
    for col in out.columns:
        if pd.api.types.is_float_dtype(out[col].dtype):
            out[col] = pd.Series(round_sig(out[col].to_numpy(dtype="float64", na_value=np.nan),
                                           digits), index=out.index).astype(out[col].dtype)
    return out


def clean_json(obj: Any, digits: int | None = None) -> Any:
    """Plain JSON-ready values: floats rounded, NaN/Infinity -> None, numpy scalars unboxed."""
    if isinstance(obj, Mapping):
        return {str(k): clean_json(v, digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean_json(v, digits) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return float(round_sig(v, digits)) if math.isfinite(v) else None
    if obj is pd.NA or obj is pd.NaT:
        return None
    return obj


#: A decimal number in text: digits, a decimal point, digits, maybe an exponent; not part
#: of a longer word, version or code (``v0.1.0``, ``2025-12-04``, hex ids have no match).
_NUMBER = re.compile(r"(?<![\w.])-?\d+\.\d+(?:[eE][+-]?\d+)?(?![\w.])")


def round_text(text: str, digits: int | None = None) -> str:
    """Numbers printed in ``text`` rounded like written floats (:func:`round_sig`).

    For what a notebook shows: a printed float (``0.7226666666666667``, ``-1.788879e-17``)
    carries the machine's last bits.  Each decimal number that rounding changes, and every
    zero, is rewritten in its shortest form (``0.7226667``, ``0.0``); every other character,
    and every other number rounding leaves as it is, stays byte for byte.
    """
    def sub(m: re.Match[str]) -> str:
        v = float(m.group(0))
        r = float(round_sig(v, digits))
        # a zero has one text (``0.000000e+00``, ``-0.0``, ``1e-17`` after rounding: ``0.0``)
        return m.group(0) if (r == v and r != 0.0) or not math.isfinite(v) else repr(r)
    return _NUMBER.sub(sub, text)


def display_float(value: float) -> str:
    """How a stage notebook shows a float in a table: rounded like a written float
    (:func:`round_sig`), then its shortest text (``0.7226667``, ``0.0``, ``993.0``).

    pandas would otherwise choose each column's format from its values: a mean of
    ``-1.8e-17`` on one run and ``0.0`` on the next gives a column in scientific notation, or
    not, and other widths; rounded first, the text and the alignment are the same on any
    machine and in any run.
    """
    return repr(float(round_sig(value)))


def use_rounded_display() -> None:
    """Make pandas show floats through :func:`display_float` (plain text and HTML tables).

    The pipeline's runner calls it when a stage's kernel starts
    (:func:`analysis.pipeline.nbrun.run_notebook`); numbers printed otherwise are rounded in
    the executed notebook by :func:`round_text`.
    """
    pd.set_option("display.float_format", display_float)


def dumps_json(obj: Any) -> str:
    """Sorted, indented, strict JSON (no NaN/Infinity) with a trailing newline."""
    return json.dumps(clean_json(obj), ensure_ascii=False, indent=2, sort_keys=True,
                      allow_nan=False) + "\n"


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def atomic_write(path: str | Path, writer: Callable[[Path], Any], *,
                 operation: str = "write") -> Path:
    """Call ``writer(tmp)`` to produce the file at a temporary name, then move it to ``path``.

    On any error the temporary file is removed, ``path`` keeps its previous content (or stays
    absent), and an :class:`OutputError` naming ``path`` is raised.
    """
    path = Path(path)
    tmp = _tmp_name(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        writer(tmp)
        os.replace(tmp, path)
    except OutputError:
        tmp.unlink(missing_ok=True)
        raise
    except OSError as exc:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise OutputError(operation, path, exc) from exc
    return path


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            fh.write(data)
    return atomic_write(path, write)


def write_text(path: str | Path, text: str) -> Path:
    """Write UTF-8 ``text`` (``\\n`` line ends) to ``path`` atomically."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, obj: Mapping[str, Any]) -> Path:
    """Write ``obj`` as strict, sorted JSON (see :func:`dumps_json`) atomically."""
    return write_text(path, dumps_json(obj))


def write_table(df: pd.DataFrame, path: str | Path) -> Path:
    """Write a table as Parquet (or CSV for a ``.csv`` path), floats rounded, atomically.

    CSV is UTF-8 with ``,`` and ``\\n`` and floats in their shortest round-trip form
    (after rounding), for DVC plots; missing values are empty cells.
    """
    path = Path(path)
    data = round_frame(df)
    if path.suffix == ".csv":
        return atomic_write(path, lambda tmp: data.to_csv(tmp, index=False, lineterminator="\n"))
    return atomic_write(path, lambda tmp: data.to_parquet(tmp, index=False))


def copy_file(src: str | Path, dst: str | Path) -> Path:
    """Copy ``src`` to ``dst`` atomically; errors name the file being written (or read)."""
    src = Path(src)
    if not src.is_file():
        raise OutputError("copy", src, "the file does not exist")
    return atomic_write(dst, lambda tmp: shutil.copyfile(src, tmp), operation="write")
