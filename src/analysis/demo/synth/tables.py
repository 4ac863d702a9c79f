"""Output tables: the contract tables ``schools``, ``results`` and ``students``.

Built from the panel, the indicators and the aggregated (or, for ``students``, the single)
sittings, in the contract's column order and dtypes (:mod:`analysis.ingest.schema`).
:func:`_missing_mask` chooses the indicator cells that are set missing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.demo.synth.panel import _Sittings
from analysis.demo.synth.params import (
    _GRADE,
    _MARKED,
    _PROCEDURE,
    _SUBJECT,
    N_ASSESSMENTS,
    PARAMS,
)
from analysis.demo.synth.scores import _Planted, _Scored
from analysis.ingest import schema


def _result_keys(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The result rows: keys ``row * n_assessments + a`` with participants, ascending.

    Returns
    -------
    keys, row, a, participants : ndarray of int64
    """
    flat = counts.ravel()
    keys = np.flatnonzero(flat)
    row, a = np.divmod(keys, N_ASSESSMENTS)
    return keys, row, a, flat[keys].astype("int64")


def _results(counts: np.ndarray, scored: _Scored, panel: pd.DataFrame, schools: pd.DataFrame
             ) -> pd.DataFrame:
    """The contract table ``results`` from the aggregated sittings (rows with participants)."""
    keys, row, a, n = _result_keys(counts)
    marked = _MARKED[a]
    out = pd.DataFrame({
        "year": panel["year"].to_numpy()[row],
        "school_id": pd.array(schools["school_id"].to_numpy()[panel["sidx"].to_numpy()[row]],
                              dtype="string"),
        "procedure": pd.array(_PROCEDURE[a], dtype="string"),
        "subject": pd.array(_SUBJECT[a], dtype="string"),
        "grade": _GRADE[a],
        "participants": n,
    })
    tallies = scored.tallies[keys]
    for k, col in enumerate(schema.MARK_COUNTS):
        out[col] = _nullable_int(tallies[:, k], marked)
    for col in schema.MARK_SHARES:
        out[col] = np.nan
    out["n_below_min"] = _nullable_int(tallies[:, 4], ~marked)
    out["pct_below_min"] = np.nan
    mean = scored.score_sum[keys] / n
    out["mean_score"] = np.where(marked, np.nan, np.round(mean, 2))
    return out[list(schema.RESULTS_COLUMNS)]


def _nullable_int(values: np.ndarray, keep: np.ndarray) -> pd.arrays.IntegerArray:
    """Integer counts as ``Int64``, NA where ``keep`` is False."""
    return pd.arrays.IntegerArray(np.rint(values).astype("int64"), ~keep)


def _missing_mask(panel: pd.DataFrame, planted: _Planted, rate: float,
                  rng: np.random.Generator) -> np.ndarray:
    """Cells (panel rows x optional indicators) set missing.

    Each cell is missing with probability ``rate``; in addition (when ``rate > 0``) about
    0.5% of school-years (at least one), never of a planted school, lose all seven social
    indicators.
    """
    mask = rng.random((len(panel), len(schema.SCHOOLS_OPTIONAL))) < rate
    if rate > 0:
        sidx = panel["sidx"].to_numpy()
        planted_any = planted.resilient | planted.low | planted.inflated
        candidates = np.flatnonzero(~planted_any[sidx])
        n = max(1, round(PARAMS["missing"]["share_all_social_missing"] * len(panel)))
        rows = rng.choice(candidates, min(n, len(candidates)), replace=False)
        mask[rows, : len(schema.SOCIAL_INDICATORS)] = True
    return mask


def _schools_table(panel: pd.DataFrame, schools: pd.DataFrame, indicators: pd.DataFrame,
                   regional: bool = False) -> pd.DataFrame:
    """The contract table ``schools`` (with ``region`` before ``municipality`` if
    ``regional``)."""
    sidx = panel["sidx"].to_numpy()
    out = pd.DataFrame({"year": panel["year"].to_numpy()})
    columns = list(schema.SCHOOLS_COLUMNS)
    text = ["school_id", "school_name", "municipality", "settlement_type", "school_type"]
    if regional:
        columns.insert(columns.index("municipality"), "region")
        text.append("region")
    for col in text:
        out[col] = pd.array(schools[col].to_numpy()[sidx], dtype="string")
    out["enrollment"] = panel["enrollment"].to_numpy()
    out = pd.concat([out, indicators.reset_index(drop=True)], axis=1)
    return out[columns]


def _students_table(sittings: _Sittings, scored: _Scored, panel: pd.DataFrame,
                    schools: pd.DataFrame) -> pd.DataFrame:
    """The optional ``students`` table: one row per student x assessment, in result order."""
    row, a, student = sittings.row, sittings.a, sittings.student
    width = max(6, len(str(int(student.max()) + 1)))
    keys = np.strings.add("s", np.strings.zfill((student + 1).astype(str), width))
    out = pd.DataFrame({
        "year": panel["year"].to_numpy()[row],
        "school_id": pd.array(schools["school_id"].to_numpy()[panel["sidx"].to_numpy()[row]],
                              dtype="string"),
        "procedure": pd.array(_PROCEDURE[a], dtype="string"),
        "subject": pd.array(_SUBJECT[a], dtype="string"),
        "grade": _GRADE[a],
        "student_key": pd.array(keys.astype(object), dtype="string"),
        "score": scored.score.astype(float),
        "mark": pd.arrays.IntegerArray(scored.mark.astype("int64"), ~_MARKED[a]),
        "ses": np.round(sittings.ses, 3) + 0.0,
    })
    return out[list(schema.STUDENTS_COLUMNS)]
