"""Planted groups and scores: which schools are planted, and every sitting's score and mark.

:func:`_plant` chooses the resilient, low and inflated-ВПР schools (:class:`_Planted`) and
:func:`_school_effects` draws the persistent school effects u_i with the planted ones set.
:func:`_score` draws the students' latent scores, calibrates the mark thresholds on the
region, scores and marks every sitting, redraws the planted low schools until they meet the
ШНОР rule and aggregates the sittings per result key (:class:`_Scored`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.demo.synth.panel import _chunks, _Sittings
from analysis.demo.synth.params import (
    _MARKED,
    _PROCEDURE,
    _VPR,
    ASSESSMENTS,
    N_ASSESSMENTS,
    PARAMS,
)
from analysis.demo.synth.rules import _meets_shnor, _score_scales


@dataclass
class _Planted:
    resilient: np.ndarray  # bool per school
    low: np.ndarray
    inflated: np.ndarray


def _plant(schools: pd.DataFrame, panel: pd.DataFrame, counts: np.ndarray,
           rng: np.random.Generator) -> _Planted:
    """Choose the planted groups among ordinary schools with results.

    Participants per grade: the mean participants of a school's ВПР/ОГЭ result rows over all
    years.  Status quantiles are over schools with results.
    """
    p = PARAMS["planted"]
    per_grade = _participants_per_grade(schools, panel, counts)
    with_results = per_grade > 0
    ordinary = with_results & schools["opened_year"].isna().to_numpy() & schools[
        "closed_year"].isna().to_numpy()
    s = schools["s"].to_numpy()
    n_ref = int(with_results.sum())

    def pick(share: float, eligible: np.ndarray) -> np.ndarray:
        chosen = np.zeros(len(schools), dtype=bool)
        candidates = np.flatnonzero(eligible)
        n = min(max(1, round(share * n_ref)), len(candidates))
        chosen[rng.choice(candidates, n, replace=False)] = True
        return chosen

    def below(q: float) -> np.ndarray:
        return s <= np.quantile(s[with_results], q)

    cr, cl, ci = p["resilient"], p["low"], p["inflated_vpr"]
    resilient = pick(cr["share"], ordinary & below(cr["max_ses_quantile"])
                     & (per_grade >= cr["min_participants_per_grade"]))
    low = pick(cl["share"], ordinary & ~resilient & below(cl["max_ses_quantile"])
               & (per_grade >= cl["min_participants_per_grade"]))
    inflated = pick(ci["share"], ordinary & ~resilient & ~low & below(ci["max_ses_quantile"])
                    & (per_grade >= ci["min_participants_per_grade"]))
    return _Planted(resilient, low, inflated)


def _participants_per_grade(schools: pd.DataFrame, panel: pd.DataFrame,
                            counts: np.ndarray) -> np.ndarray:
    """Mean participants per ВПР/ОГЭ result row of each school (0 without results)."""
    rows, a = np.nonzero(counts * _MARKED[None, :])
    sidx = panel["sidx"].to_numpy()[rows]
    total = np.bincount(sidx, weights=counts[rows, a], minlength=len(schools))
    n_rows = np.bincount(sidx, minlength=len(schools))
    return np.divide(total, n_rows, out=np.zeros(len(schools)), where=n_rows > 0)


def _school_effects(planted: _Planted, rng: np.random.Generator) -> np.ndarray:
    """u_i ~ N(0, sd) with the planted resilient (+1) and low (-1) schools set."""
    p = PARAMS
    u = rng.normal(0.0, p["student_model"]["sd_school_effect"], len(planted.low))
    u[planted.resilient] = p["planted"]["resilient"]["school_effect"]
    u[planted.low] = p["planted"]["low"]["school_effect"]
    return u


#: Columns of :attr:`_Scored.tallies`: sittings with marks 2, 3, 4, 5 (ВПР, ОГЭ), ЕГЭ
#: sittings below the minimum, ЕГЭ sittings at or above it.
N_TALLIES = 6


@dataclass
class _Scored:
    """The scored sittings, aggregated per result key (panel row x assessment).

    Attributes
    ----------
    cuts : dict
        The calibrated mark thresholds (:func:`_calibrate`).
    tallies : ndarray of int64, (n_panel_rows * n_assessments, N_TALLIES)
        Per key ``row * n_assessments + a``: sittings by mark (see :data:`N_TALLIES`).
    score_sum : ndarray of float64, (n_panel_rows * n_assessments,)
        Sum of the scores per key.
    meets_shnor : ndarray of bool
        The ШНОР rule for the last year, per school.
    score, mark : ndarray or None
        Per sitting (float64 score, int8 mark, 0 for ЕГЭ), for the students table only.
    """

    cuts: dict
    tallies: np.ndarray
    score_sum: np.ndarray
    meets_shnor: np.ndarray
    score: np.ndarray | None
    mark: np.ndarray | None


def _score(sittings: _Sittings, panel: pd.DataFrame, schools: pd.DataFrame,
           planted: _Planted, years: Sequence[int], rng: np.random.Generator) -> _Scored:
    """Latent scores, test scores and marks; planted low schools are redrawn until they meet
    the ШНОР rule (their student noise ``e`` in the last two years is drawn again).

    The draws are those of whole-array calls: ``e`` for every sitting, then ``e`` again for
    the sittings of failing schools.  ``y = base + e (+ the ВПР shift of inflated schools)``
    is held in one array; only the shifted and the redrawn sittings are touched again.
    """
    sd = PARAMS["student_model"]["sd_student"]
    row, a, counts = sittings.row, sittings.a, sittings.counts
    n, n_keys = len(row), counts.size
    base = _latent_mean(sittings, panel, schools)
    y = rng.normal(0.0, sd, n)  # e, then base + e in place
    y += base
    cuts = _calibrate(y, a)
    scale = _score_scales(cuts)
    tables = _mark_tables(cuts, scale)
    sidx = panel["sidx"].to_numpy()
    shift = PARAMS["planted"]["inflated_vpr"]["vpr_shift"]
    inflated = _cell_entries(counts, np.flatnonzero(planted.inflated[sidx]), _VPR)
    y[inflated] += shift

    def key(idx: slice | np.ndarray) -> np.ndarray:
        return row[idx].astype(np.int64) * N_ASSESSMENTS + a[idx]

    keep = sittings.student is not None
    # float scores for the students table (they keep the -0.0 of rint), else compact
    score = np.empty(n, dtype=float if keep else np.uint8)
    mark = np.empty(n, dtype=np.int8)
    below = np.empty(n, dtype=bool)
    n_low = np.zeros(n_keys, dtype=np.int64)
    for sl in _chunks(n):
        score[sl], mark[sl], below[sl] = _marks(y[sl], a[sl], scale, tables)
        _add_counts(n_low, key(sl)[(mark[sl] == 2) | below[sl]])
    recent = panel["year"].to_numpy() >= years[-1] - 1
    for _ in range(PARAMS["planted"]["low"]["max_redraws"]):
        meets = _meets_shnor(n_low, counts, panel, len(schools), years[-1])
        failing = planted.low & ~meets
        if not failing.any():
            break
        redo = _cell_entries(counts, np.flatnonzero(failing[sidx] & recent),
                             np.ones(N_ASSESSMENTS, dtype=bool))
        y[redo] = base[redo] + rng.normal(0.0, sd, len(redo))
        y[redo] += np.where(_VPR[a[redo]] & planted.inflated[sidx[row[redo]]], shift, 0.0)
        k = key(redo)
        _add_counts(n_low, k[(mark[redo] == 2) | below[redo]], sign=-1)
        score[redo], mark[redo], below[redo] = _marks(y[redo], a[redo], scale, tables)
        _add_counts(n_low, k[(mark[redo] == 2) | below[redo]])
    else:
        raise RuntimeError("planted low schools do not meet the ШНОР rule")
    del base, y
    tallies = np.zeros(n_keys * N_TALLIES, dtype=np.int64)
    score_sum = np.zeros(n_keys)
    for sl in _chunks(n):
        k = key(sl)
        category = np.where(_MARKED[a[sl]], mark[sl] - 2, 5 - below[sl].astype(np.int8))
        _add_counts(tallies, k * N_TALLIES + category)
        _add_counts(score_sum, k, weights=score[sl])
    return _Scored(cuts=cuts, tallies=tallies.reshape(n_keys, N_TALLIES), score_sum=score_sum,
                   meets_shnor=meets, score=score if keep else None,
                   mark=mark if keep else None)


def _add_counts(total: np.ndarray, keys: np.ndarray, weights: np.ndarray | None = None,
                sign: int = 1) -> None:
    """``total += sign * bincount(keys, weights)``, touching only the range of ``keys``.

    (A full-length ``bincount`` per chunk would allocate and add the whole ``total`` each
    time.)  Sums of integer weights are exact, so chunking does not change them.
    """
    if len(keys) == 0:
        return
    lo, hi = int(keys.min()), int(keys.max())
    counts = np.bincount(keys - lo, weights=weights, minlength=hi - lo + 1)
    if sign > 0:
        total[lo:hi + 1] += counts
    else:
        total[lo:hi + 1] -= counts


def _cell_entries(counts: np.ndarray, rows: np.ndarray, assessments: np.ndarray
                  ) -> np.ndarray:
    """Indices (ascending) of the sittings of panel ``rows`` in the ``assessments`` (bool
    per assessment): the sittings are sorted by (row, assessment), so a cell's sittings are
    a contiguous range starting after those of all earlier cells."""
    flat = counts.ravel()
    first = np.cumsum(flat) - flat
    cells = (rows[:, None] * N_ASSESSMENTS + np.flatnonzero(assessments)[None, :]).ravel()
    size = flat[cells]
    return np.repeat(first[cells] - (np.cumsum(size) - size), size) + np.arange(size.sum())


def _latent_mean(sittings: _Sittings, panel: pd.DataFrame, schools: pd.DataFrame
                 ) -> np.ndarray:
    """Everything of y but the student noise e (and the planted ВПР inflation).

    Without a students table the students' statuses are not needed afterwards: the mean
    overwrites them (``sittings.ses`` becomes ``None``).
    """
    p = PARAMS["student_model"]
    sidx = panel["sidx"].to_numpy()
    s_y, v = panel["s_y"].to_numpy(), panel["v"].to_numpy()
    type_effect = schools["school_type"].map(p["type_effect"]).to_numpy(dtype=float)[sidx]
    u = schools["u"].to_numpy()[sidx]
    d = np.array([p["d_assessment"]["/".join(map(str, a))] for a in ASSESSMENTS])
    ses, row, a = sittings.ses, sittings.row, sittings.a
    out = ses if sittings.student is None else np.empty_like(ses)
    for sl in _chunks(len(row)):
        r = row[sl]
        out[sl] = (p["b_ses"] * ses[sl] + p["b_comp"] * s_y[r] + type_effect[r] + u[r] + v[r]
                   + d[a[sl]])
    if sittings.student is None:
        sittings.ses = None
    return out


def _calibrate(y: np.ndarray, a: np.ndarray) -> dict:
    """Region-wide mark thresholds on the primary score, per marked procedure.

    The threshold for mark k+1 is the primary score nearest to the latent quantile at the
    cumulative target share of marks up to k; ``latent`` gives the equivalent cut-points on y.
    """
    c = PARAMS["marks"]["primary_score"]
    cuts = {}
    for proc, shares in PARAMS["marks"]["target_shares"].items():
        selected = y[(_PROCEDURE == proc)[a]]
        q = np.quantile(selected, np.cumsum(shares)[:-1], overwrite_input=True)
        del selected
        thresholds = np.rint(c["intercept"] + 0.5 + c["slope"] * q).astype(int)
        latent = (thresholds - c["intercept"] - 0.5) / c["slope"]
        cuts[proc] = {"min_primary_score_for_mark_3_4_5": thresholds.tolist(),
                      "latent_cut_points": [round(float(x), 6) for x in latent]}
    return cuts


def _mark_tables(cuts: dict, scale: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Mark and ЕГЭ failure of every possible score, per assessment.

    Returns
    -------
    mark : ndarray of int8, (n_assessments, max score + 1)
        2 + the number of thresholds (marks 3, 4, 5) reached (ВПР, ОГЭ); 0 for ЕГЭ.
    below : ndarray of bool, (n_assessments, max score + 1)
        ЕГЭ score below the minimum (False for ВПР, ОГЭ).
    """
    scores = np.arange(int(scale["hi"].max()) + 1)
    mark = np.zeros((N_ASSESSMENTS, len(scores)), dtype=np.int8)
    for i, (proc, _, _) in enumerate(ASSESSMENTS):
        if proc in cuts:
            t = np.array(cuts[proc]["min_primary_score_for_mark_3_4_5"])
            mark[i] = 2 + (scores[:, None] >= t[None, :]).sum(axis=1)
    below = ~_MARKED[:, None] & (scores[None, :] < scale["low"][:, None])
    return mark, below


def _marks(y: np.ndarray, a: np.ndarray, scale: dict[str, np.ndarray],
           tables: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Score, mark and ЕГЭ failure of sittings with latent scores ``y`` and assessments ``a``.

    Returns
    -------
    score : ndarray of float64
        ``clip(round(c0 + c1 y), lo, hi)``: the primary score (ВПР, ОГЭ) or ЕГЭ test score.
    mark : ndarray of int8
        2..5 from the calibrated thresholds (ВПР, ОГЭ); 0 for ЕГЭ (see :func:`_mark_tables`).
    below : ndarray of bool
        ЕГЭ score below the minimum (False for ВПР, ОГЭ).
    """
    score = np.rint(scale["c0"][a] + scale["c1"][a] * y)
    # Clipped with scalar bounds, which keep the -0.0 that rint gives to small negative
    # values (array bounds would not), as the files always had.
    lo, hi = scale["lo"], scale["hi"]
    if (lo == lo[0]).all():
        np.clip(score, lo[0], hi.max(), out=score)
        np.minimum(score, hi[a], out=score)
    else:
        for low, high in sorted(set(zip(lo.tolist(), hi.tolist(), strict=True))):
            sel = (lo[a] == low) & (hi[a] == high)
            score[sel] = np.clip(score[sel], low, high)
    mark_table, below_table = tables
    cell = a.astype(np.intp) * mark_table.shape[1] + score.astype(np.intp)
    return score, mark_table.ravel()[cell], below_table.ravel()[cell]
