"""School-years, social indicators and the students who sit each assessment.

:func:`_panel` gives one row per school present in a year (its status that year, enrolment
and year effect), :func:`_indicators` the social and resource indicators of every
school-year and :func:`_sittings` the students: one entry per student x assessment
(:class:`_Sittings`), held in compact numpy arrays and processed in chunks of
:data:`~analysis.demo.synth.params.CHUNK` (:func:`_chunks`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.demo.synth.params import (
    CHUNK,
    COHORT_GRADES,
    GRADE_ASSESSMENTS,
    N_ASSESSMENTS,
    PARAMS,
)
from analysis.ingest import schema


def _panel(years: Sequence[int], schools: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """One row per school present in a year, sorted by (year, school_id).

    Columns: year, sidx (row of ``schools``), s_y (status of the year), enrollment, v (the
    school-year effect on results).
    """
    parts = []
    opened = schools["opened_year"].fillna(-1).to_numpy()
    closed = schools["closed_year"].fillna(10**6).to_numpy()
    p = PARAMS
    for year in years:
        present = np.flatnonzero((opened <= year) & (closed > year))
        n = len(present)
        drift = rng.normal(0.0, p["school_status"]["sd_year_drift"], n)
        vary = rng.uniform(-1.0, 1.0, n) * p["enrollment"]["year_variation"]
        parts.append(pd.DataFrame({
            "year": np.full(n, year, dtype="int64"),
            "sidx": present,
            "s_y": schools["s"].to_numpy()[present] + drift,
            "enrollment": np.rint(schools["enroll_base"].to_numpy()[present] * (1 + vary)
                                  ).astype("int64"),
            "v": rng.normal(0.0, p["student_model"]["sd_year_effect"], n),
        }))
    return pd.concat(parts, ignore_index=True)


def _indicators(panel: pd.DataFrame, schools: pd.DataFrame,
                rng: np.random.Generator) -> pd.DataFrame:
    """Social and resource indicators (fractions, 4 decimals) for every panel row."""
    n_schools = len(schools)
    sidx = panel["sidx"].to_numpy()
    s_y = panel["s_y"].to_numpy()
    school_type = schools["school_type"].to_numpy()[sidx]
    settlement = schools["settlement_type"].to_numpy()[sidx]
    enrollment = panel["enrollment"].to_numpy()
    out = {}
    for name, c in PARAMS["social_indicators"].items():
        noise = rng.normal(0.0, c["sd"], n_schools)[sidx]
        shift = pd.Series(school_type).map(c.get("type_shift", {})).fillna(0.0).to_numpy()
        p = _expit(c["intercept"] + c["slope"] * s_y + shift + noise)
        out[name] = rng.binomial(enrollment, p) / enrollment
    res = PARAMS["resource_indicators"]
    for name in schema.RESOURCE_INDICATORS:
        c = res[name]
        noise = rng.normal(0.0, c["sd"], n_schools)[sidx]
        shift = pd.Series(settlement).map(c["settlement_shift"]).to_numpy(dtype=float)
        yearly = rng.normal(0.0, res["sd_year"], len(panel))
        out[name] = _expit(c["intercept"] + c["slope"] * s_y + shift + noise + yearly)
    return pd.DataFrame(out).round(4)[list(schema.SCHOOLS_OPTIONAL)]


def _expit(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _chunks(n: int) -> Iterator[slice]:
    """Consecutive slices of at most :data:`CHUNK` entries covering ``range(n)``."""
    return (slice(i, min(i + CHUNK, n)) for i in range(0, n, CHUNK))


@dataclass
class _Sittings:
    """Students sitting an assessment: one entry per student x assessment.

    Entries are sorted by (panel row, assessment, student).

    Attributes
    ----------
    row : ndarray of int32
        The panel row (school-year).
    a : ndarray of int8
        Index into :data:`ASSESSMENTS`.
    ses : ndarray of float64 or None
        The student's status; ``None`` once :func:`.scores._latent_mean` has turned it,
        in place, into the latent mean (when there is no students table).
    student : ndarray of int64 or None
        Number of the student within the region (0-based); kept for the students table only.
    counts : ndarray of int64, (n_panel_rows, n_assessments)
        Sittings per panel row and assessment (the participants of the result rows).
    """

    row: np.ndarray
    a: np.ndarray
    ses: np.ndarray | None
    student: np.ndarray | None
    counts: np.ndarray


def _sittings(panel: pd.DataFrame, schools: pd.DataFrame, rng: np.random.Generator,
              keep_students: bool = False) -> _Sittings:
    """Students sitting an assessment: one entry per student x assessment.

    Cohorts per school-year and grade ~ Poisson(enrollment / 11) (grade 11: 40% of that, only
    in schools with a grade 11; no cohorts in ``adapted`` schools); each student sits each of
    the grade's two assessments with probability 0.93.  Students are numbered in the order
    (panel row, grade), in blocks of one (row, grade) each; the draws (cohorts, then every
    student's status, then whether they sit) are those of one call each, made in chunks.
    Every entry is written directly at its sorted position (the first entry of its cell
    (row, assessment) plus its rank among the cell's students), without a sort.
    """
    p = PARAMS["participation"]
    n_rows, n_grades = len(panel), len(COHORT_GRADES)
    sidx = panel["sidx"].to_numpy()
    takes = (schools["school_type"].to_numpy()[sidx] != "adapted")
    mean = panel["enrollment"].to_numpy() / p["cohort_divisor"] * takes
    factor = np.array([1.0, 1.0, 1.0, p["grade11_share_of_cohort"]])
    has11 = schools["grade11"].to_numpy()[sidx]
    lam = mean[:, None] * factor[None, :] * np.column_stack([np.ones((n_rows, 3)), has11])
    cohort = rng.poisson(lam).ravel()  # students per block (row, grade), row-major
    n_blocks, n_students = len(cohort), int(cohort.sum())
    block = np.repeat(np.arange(n_blocks, dtype=np.int32), cohort)  # of each student
    s_y = panel["s_y"].to_numpy()
    sd = PARAMS["student_model"]["sd_student_ses"]
    ses = np.empty(n_students)
    for sl in _chunks(n_students):
        ses[sl] = s_y[block[sl] // n_grades] + rng.normal(0.0, sd, sl.stop - sl.start)
    # whether each student sits subject j (0, 1), and prefix[b, j]: the sitters of j before
    # block b's first student (the last row: all sitters)
    sits = np.empty((n_students, 2), dtype=bool)
    bounds = np.append(np.cumsum(cohort) - cohort, n_students)
    prefix = np.empty((n_blocks + 1, 2), dtype=np.int64)
    seen = np.zeros(2, dtype=np.int64)
    lo = 0
    for sl in _chunks(n_students):
        sits[sl] = chunk = rng.random((sl.stop - sl.start, 2)) < p["p_sit"]
        running = np.cumsum(chunk, axis=0)
        hi = int(np.searchsorted(bounds, sl.stop, side="left"))
        at = bounds[lo:hi] - sl.start  # block starts within the chunk
        prefix[lo:hi] = seen + np.where((at > 0)[:, None], running[np.maximum(at - 1, 0)], 0)
        seen += running[-1]
        lo = hi
    prefix[lo:] = seen
    sitters = np.diff(prefix, axis=0)
    block_row, block_grade = np.divmod(np.arange(n_blocks), n_grades)
    block_a = GRADE_ASSESSMENTS[block_grade]  # (n_blocks, 2): the cell's assessment
    counts = np.zeros((n_rows, N_ASSESSMENTS), dtype=np.int64)
    for j in range(2):
        counts[block_row, block_a[:, j]] = sitters[:, j]
    flat = counts.ravel()
    start = np.cumsum(flat) - flat  # first entry of each cell (row * n_assessments + a)
    # entry of a student = offset[block, j] + number of the sitters of j up to the student
    offset = start[block_row[:, None] * N_ASSESSMENTS + block_a] - prefix[:-1] - 1
    n = int(flat.sum())
    out = _Sittings(row=np.empty(n, dtype=np.int32), a=np.empty(n, dtype=np.int8),
                    ses=np.empty(n), student=np.empty(n, dtype=np.int64) if keep_students
                    else None, counts=counts)
    seen[:] = 0
    for sl in _chunks(n_students):
        running = np.cumsum(sits[sl], axis=0)
        for j in range(2):
            chosen = np.flatnonzero(sits[sl, j])
            b = block[sl][chosen]
            pos = offset[b, j] + (seen[j] + running[chosen, j])
            out.row[pos] = b // n_grades
            out.a[pos] = block_a[b, j]
            out.ses[pos] = ses[sl][chosen]
            if out.student is not None:
                out.student[pos] = sl.start + chosen
        seen += running[-1]
    return out
