"""The generator: :func:`generate_region` turns a :class:`RegionSpec` into a :class:`Region`.

One ``numpy.random.default_rng(seed)`` drives every draw in a fixed order: places, panel,
indicators, sittings, planted groups, school effects, scores, missing cells; the contract
tables and the truth are then built from them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.demo.synth.panel import _indicators, _panel, _sittings
from analysis.demo.synth.places import _municipalities, _schools
from analysis.demo.synth.scores import _plant, _school_effects, _score
from analysis.demo.synth.spec import RegionSpec, _validate
from analysis.demo.synth.tables import _missing_mask, _results, _schools_table, _students_table
from analysis.demo.synth.truth import _truth, _truth_params, _truth_procedures, _truth_years


@dataclass
class Region:
    """A generated region: raw contract tables plus the planted truth.

    Attributes
    ----------
    schools : DataFrame, (n_school_years, 16 or 17)
        Contract table ``schools`` in :data:`schema.SCHOOLS_COLUMNS` order, sorted by
        (year, school_id); with several regions a column ``region`` comes before
        ``municipality``.  Text columns have dtype ``string``, ``year``/``enrollment``
        ``int64``, shares ``float64`` (fractions 0..1, NaN = missing).
    results : DataFrame, (n_result_rows, 17)
        Contract table ``results`` in :data:`schema.RESULTS_COLUMNS` order, sorted by
        (year, school_id, procedure, subject, grade).  Counts are ``Int64`` (NA where the
        procedure does not give them), ``pct_*`` are all NaN, ``mean_score`` (ЕГЭ only) is
        ``float64``.
    students : DataFrame or None, (n_student_rows, 9)
        Contract table ``students`` (:data:`schema.STUDENTS_COLUMNS`), one row per student x
        assessment, in result order; ``None`` unless ``spec.write_students``.
        ``student_key`` (``s000001``...) is the same for a student's two subjects in a year
        and not linked across years; ``score`` is the ВПР/ОГЭ primary score (0..40) or the
        ЕГЭ test score (0..100); ``mark`` is ``Int64`` (NA for ЕГЭ); ``ses`` has 3 decimals.
    truth : DataFrame, (n_schools, 13 or 14)
        One row per school_id: see :data:`TRUTH_COLUMNS` (and ``region`` before
        ``municipality`` with several regions) and the README written by
        :func:`write_region`.
    truth_years : DataFrame, (n_school_years, 6)
        One row per school-year of the panel (the rows of ``schools``, same order):
        :data:`TRUTH_YEARS_COLUMNS`.  ``latent_ses_year`` is s_iy, ``year_effect`` v_iy,
        ``effect`` u_i + v_iy (the school's true effect that year, student-SD units; floats
        rounded to 4 decimals), ``participants`` (``int64``) the ВПР+ОГЭ sittings of the year
        (0 for a school without results).
    truth_procedures : DataFrame, (n_result_rows, 8)
        One row per row of ``results`` (same keys, same order):
        :data:`TRUTH_PROCEDURES_COLUMNS`.  ``expected_share_low`` is the true probability that
        a student of the school-year gets «2» (ВПР, ОГЭ) or an ЕГЭ score below the minimum;
        ``expected_share_good`` the probability of «4» or «5» (NaN for ЕГЭ); both from the
        generating model (see :mod:`analysis.demo.synth`), rounded to 4 decimals.
    truth_params : dict
        The generating parameters, the spec and the counts of each planted group
        (JSON-serialisable).
    """

    schools: pd.DataFrame
    results: pd.DataFrame
    students: pd.DataFrame | None
    truth: pd.DataFrame
    truth_years: pd.DataFrame
    truth_procedures: pd.DataFrame
    truth_params: dict


def generate_region(spec: RegionSpec = RegionSpec()) -> Region:
    """Generate a synthetic region deterministically from ``spec``.

    Parameters
    ----------
    spec : RegionSpec

    Returns
    -------
    Region
        Same ``spec`` -> identical tables (and byte-identical files via
        :func:`write_region`).

    Raises
    ------
    ValueError
        If the spec is impossible (see :class:`RegionSpec`).
    """
    _validate(spec)
    rng = np.random.default_rng(spec.seed)
    munis = _municipalities(spec, rng)
    schools = _schools(spec, munis, rng)
    panel = _panel(spec.years, schools, rng)
    indicators = _indicators(panel, schools, rng)
    sittings = _sittings(panel, schools, rng, keep_students=spec.write_students)
    counts = sittings.counts
    planted = _plant(schools, panel, counts, rng)
    schools["u"] = _school_effects(planted, rng)
    scored = _score(sittings, panel, schools, planted, spec.years, rng)
    students = (_students_table(sittings, scored, panel, schools) if spec.write_students
                else None)
    del sittings  # the student-level arrays are no longer needed
    results = _results(counts, scored, panel, schools)
    mask = _missing_mask(panel, planted, spec.missing_rate, rng)
    regional = spec.n_regions > 1
    schools_table = _schools_table(panel, schools, indicators.mask(mask), regional)
    truth = _truth(schools, planted, scored.meets_shnor, regional)
    params = _truth_params(spec, munis, schools, planted, scored.cuts, schools_table, results,
                           truth)
    return Region(schools=schools_table, results=results, students=students, truth=truth,
                  truth_years=_truth_years(counts, panel, schools),
                  truth_procedures=_truth_procedures(counts, panel, schools, planted,
                                                     scored.cuts),
                  truth_params=params)
