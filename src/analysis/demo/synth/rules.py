"""The rules that scores and truth both follow: the ШНОР rule and the score scales.

:func:`shnor_low_counts` counts the low procedures of the ``results`` table, the ШНОР rule's
building block; :func:`_meets_shnor` applies the rule to the aggregated sittings while the
planted low schools are redrawn.  :func:`_score_scales` gives, per assessment, the score
``clip(round(c0 + c1 y), lo, hi)`` and its thresholds, by which sittings are marked and the
expected shares of the truth are computed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.demo.synth.params import ASSESSMENTS, N_ASSESSMENTS, PARAMS


def shnor_low_counts(results: pd.DataFrame) -> pd.DataFrame:
    """Number of «low» procedures per school and year (the ШНОР rule's building block).

    A result row is low when ``n_mark2`` (marked) or ``n_below_min`` (scored) is at least
    30% of ``participants`` (compared in integers: ``10 * n_low >= 3 * participants``).

    Returns
    -------
    DataFrame indexed by school_id, one column per year (int counts, 0 when none).
    """
    n_low = results["n_mark2"].fillna(results["n_below_min"]).astype("int64")
    threshold = PARAMS["shnor_rule"]["threshold"]
    low = n_low.to_numpy() * 100 >= round(threshold * 100) * results["participants"].to_numpy()
    r = results.loc[low]
    return r.groupby(["school_id", "year"]).size().unstack("year", fill_value=0)


def _meets_shnor(n_low: np.ndarray, counts: np.ndarray, panel: pd.DataFrame, n_schools: int,
                 year: int) -> np.ndarray:
    """ШНОР rule for ``year`` Y (bool per school), from the aggregated sittings.

    ``n_low`` and ``counts`` give, per key ``row * n_assessments + a``, the sittings with «2»
    (ЕГЭ: below the minimum) and all sittings.  A result row is low as in
    :func:`shnor_low_counts`; the rule is met if (a) >= 2 low procedures in Y or (b) >= 1 low
    procedure in each of Y-1 and Y.
    """
    rule = PARAMS["shnor_rule"]
    participants = counts.ravel()
    low = (participants > 0) & (n_low * 100 >= round(rule["threshold"] * 100) * participants)
    per_row = low.reshape(-1, N_ASSESSMENTS).sum(axis=1)
    sidx, years = panel["sidx"].to_numpy(), panel["year"].to_numpy()
    now, before = np.zeros(n_schools, dtype=np.int64), np.zeros(n_schools, dtype=np.int64)
    now[sidx[years == year]] = per_row[years == year]
    before[sidx[years == year - 1]] = per_row[years == year - 1]
    return (now >= rule["min_low_in_year"]) | ((now >= 1) & (before >= 1))


def _score_scales(cuts: dict) -> dict[str, np.ndarray]:
    """Per assessment: the score ``clip(round(c0 + c1 y), lo, hi)`` and its thresholds.

    ``low`` is the smallest score that does not fail (mark 3 for ВПР/ОГЭ, the ЕГЭ minimum),
    ``good`` the smallest score with «4» (NaN for ЕГЭ).
    """
    primary, ege = PARAMS["marks"]["primary_score"], PARAMS["ege"]
    rows = []
    for proc, subject, _ in ASSESSMENTS:
        if proc in cuts:
            t = cuts[proc]["min_primary_score_for_mark_3_4_5"]
            rows.append((primary["intercept"], primary["slope"], primary["min"], primary["max"],
                         t[0], t[1]))
        else:
            c = ege["score"][subject]
            rows.append((c["intercept"], c["slope"], 0, ege["max_score"],
                         ege["min_score"][subject], np.nan))
    table = np.array(rows, dtype=float)
    return dict(zip(("c0", "c1", "lo", "hi", "low", "good"), table.T, strict=True))
