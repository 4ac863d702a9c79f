"""A seeded, deterministic synthetic region with planted ground truth (the embedded demo).

The region imitates what a regional institute (ИРО) brings to the study: the contract
tables ``schools`` and ``results`` (and optionally ``students``) for several years, for
schools of every settlement type and every type of school, with social passports
(social indicators) that are partly missing, and results of ВПР (grades 5, 6), ОГЭ
(grade 9) and ЕГЭ (grade 11) aggregated from a student-level latent model.

Into it are planted groups whose truth the pipeline must recover: resilient schools, schools
with low results (ШНОР), schools with inflated ВПР results, one school that closes and one
that opens.  The truth goes to a separate folder that the pipeline never reads:

- ``truth.csv``: one row per school (its latent status, persistent effect, planted groups);
- ``truth_years.csv``: one row per school-year (the year's status s_iy, year effect v_iy,
  true effect u_i + v_iy, ВПР+ОГЭ sittings);
- ``truth_procedures.csv``: one row per result row (school x year x assessment), with the
  *true* probabilities that a student of that school-year fails (mark «2», or an ЕГЭ score
  below the minimum) or gets «4»/«5», computed analytically from the generating model;
- ``truth.json`` and ``README.md``: every generating parameter and a description.

Generating model (all coefficients are in :data:`PARAMS` and in ``truth.json``):

- municipality status ``m_j ~ N(0, 0.5)``, shifted up for urban districts (городской округ);
- school status ``s_i = m_j + settlement effect + type effect + N(0, 0.6)``, and in each
  year ``s_iy = s_i + N(0, 0.05)``;
- social indicators: shares of a binomial draw over the enrolment with a logistic
  probability in ``s_iy`` and a persistent school noise;
- students: ``ses = s_iy + N(0, 0.8)``;
  ``y = b_ses * ses + b_comp * s_iy + type effect + u_i + v_iy + d_assessment + e``,
  with ``u_i ~ N(0, 0.25)`` (persistent school effect), ``v_iy ~ N(0, 0.1)``,
  ``e ~ N(0, 1)`` (standard deviations);
- ВПР/ОГЭ: primary score ``clip(round(20 + 6 y), 0, 40)`` and marks 2..5 from primary-score
  thresholds calibrated on the region; ЕГЭ: test score ``clip(round(a + b y), 0, 100)``.

Expected shares (``truth_procedures.csv``): given the school-year, a student's latent score is
``y ~ N(mu, sd)`` with ``mu = (b_ses + b_comp) s_iy + type effect + u_i + v_iy + d_assessment``
(+ the ВПР shift of a planted inflated school) and ``sd = sqrt(b_ses^2 sd_ses^2 + sd_e^2)``.
A score ``clip(round(c0 + c1 y), lo, hi)`` is below a threshold ``k`` (``lo < k <= hi``)
exactly when ``c0 + c1 y < k - 0.5``, so ``P(score < k) = Phi(((k - 0.5 - c0) / c1 - mu) / sd)``
(0 when ``k <= lo``, 1 when ``k > hi``).

Determinism: one ``numpy.random.default_rng(seed)`` drives every draw in a fixed order, rows
are sorted by their keys and files are written with fixed number formats, so the same
:class:`RegionSpec` gives byte-identical files.  The truth tables draw no random numbers.

Command line::

    python -m analysis.demo.synth --out data/raw --truth data/demo_truth \
        [--params params.yaml] [--n-schools N] [--n-municipalities M] [--seed S] \
        [--years 2023 2024 2025] [--missing-rate R] [--students]
"""

from __future__ import annotations

import argparse
import itertools
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import ndtr

from analysis.ingest import schema

# ---------------------------------------------------------------------------------------------
# Generating parameters (recorded in truth.json)
# ---------------------------------------------------------------------------------------------

#: Settlement mix of schools in an urban (городской округ) and a rural (район) municipality.
SETTLEMENT_MIX: dict[str, dict[str, float]] = {
    "urban": {"city": 0.85, "town": 0.15, "village": 0.0},
    "rural": {"city": 0.0, "town": 0.35, "village": 0.65},
}
#: School-type mix by settlement type (rows sum to 1; order of schema.SCHOOL_TYPES).
TYPE_MIX: dict[str, dict[str, float]] = {
    "city": {"basic": 0.02, "secondary": 0.48, "advanced": 0.14, "gymnasium": 0.12,
             "lyceum": 0.12, "adapted": 0.06, "other": 0.06},
    "town": {"basic": 0.08, "secondary": 0.68, "advanced": 0.05, "gymnasium": 0.04,
             "lyceum": 0.03, "adapted": 0.05, "other": 0.07},
    "village": {"basic": 0.34, "secondary": 0.56, "advanced": 0.01, "gymnasium": 0.0,
                "lyceum": 0.0, "adapted": 0.03, "other": 0.06},
}
#: Types whose schools have a grade 11 (and so sit ЕГЭ); ``other`` schools have one with
#: probability ``share_other_with_grade11``.
GRADE11_TYPES = ("secondary", "advanced", "gymnasium", "lyceum")

PARAMS: dict = {
    "municipality": {
        "share_urban": 0.4,
        "sd_status": 0.5,
        "status_shift": {"urban": 0.2, "rural": -0.2},
        "size_weight_sd_log": 0.4,
        "size_weight_urban": 1.6,
        "min_schools": 3,
    },
    "school_status": {
        "settlement_effect": {"city": 0.3, "town": 0.0, "village": -0.4},
        "type_effect": {"basic": -0.3, "secondary": 0.0, "advanced": 0.3, "gymnasium": 0.5,
                        "lyceum": 0.5, "adapted": -0.6, "other": 0.0},
        "sd_school": 0.6,
        "sd_year_drift": 0.05,
    },
    "settlement_mix": SETTLEMENT_MIX,
    "type_mix": TYPE_MIX,
    "enrollment": {
        "median": {"city": 900, "town": 520, "village": 90},
        "sd_log": {"city": 0.3, "town": 0.3, "village": 0.55},
        "type_factor": {"basic": 0.5, "secondary": 1.0, "advanced": 1.0, "gymnasium": 1.0,
                        "lyceum": 1.0, "adapted": 0.3, "other": 0.8},
        "minimum": 12,
        "year_variation": 0.05,
    },
    "participation": {
        "cohort_divisor": 11,
        "grade11_share_of_cohort": 0.4,
        "p_sit": 0.93,
        "share_other_with_grade11": 0.5,
        "grade11_types": list(GRADE11_TYPES),
    },
    # logit(p) = intercept + slope * s_iy + N(0, sd) (persistent per school)
    # + type_shift[type] (+ settlement_shift for resources)
    "social_indicators": {
        "share_parents_higher_ed": {"intercept": -0.6, "slope": 0.9, "sd": 0.7},
        "share_low_income": {"intercept": -1.75, "slope": -0.8, "sd": 0.6},
        "share_single_parent": {"intercept": -1.4, "slope": -0.45, "sd": 0.3},
        "share_unemployed_parents": {"intercept": -2.6, "slope": -0.8, "sd": 0.5},
        "share_disability": {"intercept": -3.5, "slope": -0.8, "sd": 0.4,
                             "type_shift": {"adapted": 4.0}},
        "share_non_native": {"intercept": -3.4, "slope": -0.6, "sd": 0.6},
        "share_prevention_register": {"intercept": -4.3, "slope": -0.6, "sd": 0.5},
    },
    "resource_indicators": {
        "teacher_vacancy_rate": {"intercept": -2.9, "slope": -0.05, "sd": 0.55,
                                 "settlement_shift": {"city": -0.15, "town": 0.0,
                                                      "village": 0.3}},
        "share_teachers_top_category": {"intercept": -0.9, "slope": 0.1, "sd": 0.45,
                                        "settlement_shift": {"city": 0.05, "town": 0.0,
                                                             "village": -0.15}},
        "sd_year": 0.15,
    },
    "missing": {"share_all_social_missing": 0.005},
    "student_model": {
        "b_ses": 0.3,
        "b_comp": 0.3,
        "sd_student_ses": 0.8,
        "sd_school_effect": 0.25,
        "sd_year_effect": 0.1,
        "sd_student": 1.0,
        "type_effect": {"basic": -0.1, "secondary": 0.0, "advanced": 0.15, "gymnasium": 0.25,
                        "lyceum": 0.25, "adapted": -0.5, "other": 0.0},
        "d_assessment": {"VPR/rus/5": 0.0, "VPR/math/5": 0.05, "VPR/rus/6": -0.05,
                         "VPR/math/6": -0.1, "OGE/rus/9": 0.1, "OGE/math/9": -0.1,
                         "EGE/rus/11": 0.3, "EGE/math_profile/11": 0.3},
    },
    "marks": {
        "primary_score": {"intercept": 20, "slope": 6, "min": 0, "max": 40},
        "target_shares": {"VPR": [0.15, 0.40, 0.33, 0.12], "OGE": [0.08, 0.40, 0.37, 0.15]},
    },
    "ege": {
        "score": {"rus": {"intercept": 60, "slope": 15}, "math_profile": {"intercept": 50,
                                                                          "slope": 18}},
        "min_score": {"rus": 24, "math_profile": 27},
        "max_score": 100,
    },
    "planted": {
        "resilient": {"share": 0.04, "school_effect": 1.0, "max_ses_quantile": 0.30,
                      "min_participants_per_grade": 25},
        "low": {"share": 0.04, "school_effect": -1.0, "max_ses_quantile": 0.70,
                "min_participants_per_grade": 10, "max_redraws": 200},
        "inflated_vpr": {"share": 0.02, "vpr_shift": 1.2, "max_ses_quantile": 0.70,
                         "min_participants_per_grade": 25},
    },
    "shnor_rule": {"threshold": 0.30, "min_low_in_year": 2},
}

#: Assessments as (procedure, subject, grade), in the sort order of result rows.
ASSESSMENTS: tuple[tuple[str, str, int], ...] = tuple(sorted(
    (proc, subj, grade)
    for proc, subjects, grades in (("VPR", ("rus", "math"), (5, 6)), ("OGE", ("rus", "math"), (9,)),
                                   ("EGE", ("rus", "math_profile"), (11,)))
    for subj in subjects for grade in grades
))
COHORT_GRADES = (5, 6, 9, 11)
#: For each cohort grade, the two assessments (indices into ASSESSMENTS) its students sit.
GRADE_ASSESSMENTS = np.array([[i for i, a in enumerate(ASSESSMENTS) if a[2] == g]
                              for g in COHORT_GRADES])
#: Smallest region: room for every school type, the planted groups and the open/close pair.
MIN_SCHOOLS = 30
SPECIAL_NAME = 'МАОУ «Центр образования "Наука & Искусство"»'

# --- names ------------------------------------------------------------------------------------
DISTRICT_STEMS = (
    "Берёзовский", "Каменский", "Сосновский", "Ключевский", "Озёрский", "Камышловский",
    "Артёмовский", "Белоярский", "Ирбитский", "Талицкий", "Тугулымский", "Пышминский",
    "Богдановичский", "Алапаевский", "Режевской", "Невьянский", "Кушвинский", "Тавдинский",
    "Туринский", "Слободской", "Байкаловский", "Шалинский", "Нижнесергинский", "Ачитский",
    "Красноуфимский", "Артинский", "Сысертский", "Полевской", "Ревдинский", "Кировградский",
    "Верхотурский", "Гаринский", "Махнёвский", "Таборинский", "Серовский", "Ивдельский",
    "Берёзовоярский", "Ольховский", "Липовский", "Рябиновский",
)
CITY_NAMES = (
    "Заречный", "Лесной", "Нагорный", "Светлый", "Солнечный", "Первомайский", "Октябрьский",
    "Южный", "Северный", "Рассветный", "Радужный", "Сосновоборск",
)
NAME_PREFIXES = ("Верхне", "Нижне", "Ново")
VILLAGES = (
    "Ключи", "Сосновка", "Берёзовка", "Каменка", "Покровское", "Никольское", "Петровка",
    "Ивановка", "Михайловка", "Знаменское", "Успенка", "Троицкое", "Вознесенка", "Горки",
    "Луговое", "Ольховка", "Рябиновка", "Черёмухово", "Малиновка", "Заозёрье", "Подгорное",
    "Красная Поляна", "Большие Брусяны", "Малая Кочёвка", "Кирга", "Шата", "Ялунино", "Озерки",
    "Липовка", "Кедровое", "Травянское", "Белоносова", "Колчедан", "Позариха", "Щелкун",
    "Бродово", "Мостовское", "Слобода", "Калиновка", "Зайково",
)
VILLAGE_ADJECTIVES = (
    "Сосновская", "Берёзовская", "Ключевская", "Каменская", "Покровская", "Никольская",
    "Петровская", "Ивановская", "Михайловская", "Знаменская", "Успенская", "Троицкая",
    "Горкинская", "Луговская", "Ольховская", "Рябиновская", "Черёмуховская", "Малиновская",
    "Заозёрская", "Подгорновская", "Кедровская", "Липовская", "Озерковская", "Шатинская",
    "Киргинская", "Колчеданская", "Слободская", "Калиновская", "Зайковская", "Бродовская",
)
NUMBERED_NAMES = {
    "basic": ("{form} ООШ № {n}",),
    "secondary": ("{form} СОШ № {n}", "{form} «СОШ № {n}»"),
    "advanced": ("{form} «СОШ с УИОП № {n}»",),
    "gymnasium": ("{form} «Гимназия № {n}»",),
    "lyceum": ("{form} «Лицей № {n}»",),
    "adapted": ("ГКОУ «Школа-интернат № {n}» (АООП)", "ГБОУ «Школа № {n}, реализующая АООП»"),
    "other": ("{form} «Центр образования № {n}»", "{form} «Кадетская школа № {n}»",
              "{form} «Школа-комплекс № {n}»"),
}


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RegionSpec:
    """What region to generate.

    Attributes
    ----------
    n_municipalities : int
        Number of municipalities (2..99).
    n_schools : int
        Number of distinct schools; all of them exist in the middle years (every year but the
        first and the last).  At least 30 and ``3 * n_municipalities``.
    years : tuple of int
        Calendar years in which the school years end, strictly increasing.
    seed : int
        Seed of the single random generator.
    missing_rate : float
        Share (0..1) of social/resource indicator cells set missing at random.
    write_students : bool
        Also build (and write) the optional ``students`` table.
    """

    n_municipalities: int = 30
    n_schools: int = 1000
    years: tuple[int, ...] = (2023, 2024, 2025)
    seed: int = 20250
    missing_rate: float = 0.05
    write_students: bool = False


@dataclass
class Region:
    """A generated region: raw contract tables plus the planted truth.

    Attributes
    ----------
    schools : DataFrame, (n_school_years, 16)
        Contract table ``schools`` in :data:`schema.SCHOOLS_COLUMNS` order, sorted by
        (year, school_id).  Text columns have dtype ``string``, ``year``/``enrollment``
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
    truth : DataFrame, (n_schools, 13)
        One row per school_id: see :data:`TRUTH_COLUMNS` and the README written by
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
        generating model (see the module docstring), rounded to 4 decimals.
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


TRUTH_COLUMNS = (
    "school_id", "municipality", "school_type", "settlement_type", "context_group", "latent_ses",
    "school_effect", "planted_resilient", "planted_low", "planted_inflated_vpr", "opened_year",
    "closed_year", "meets_shnor",
)
TRUTH_YEARS_COLUMNS = (
    "school_id", "year", "latent_ses_year", "year_effect", "effect", "participants",
)
TRUTH_PROCEDURES_COLUMNS = (
    "school_id", "year", "procedure", "subject", "grade", "participants", "expected_share_low",
    "expected_share_good",
)


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
    munis = _municipalities(spec.n_municipalities, rng)
    schools = _schools(spec, munis, rng)
    panel = _panel(spec.years, schools, rng)
    indicators = _indicators(panel, schools, rng)
    sittings = _sittings(panel, schools, rng)
    planted = _plant(schools, panel, sittings, rng)
    schools["u"] = _school_effects(planted, rng)
    scored = _score(sittings, panel, schools, planted, spec.years, rng)
    results = _results(scored.sittings, panel, schools)
    mask = _missing_mask(panel, planted, spec.missing_rate, rng)
    schools_table = _schools_table(panel, schools, indicators.mask(mask))
    truth = _truth(schools, planted, results, spec.years[-1])
    students = _students_table(scored.sittings, panel, schools) if spec.write_students else None
    params = _truth_params(spec, munis, schools, planted, scored.cuts, schools_table, results,
                           truth)
    return Region(schools=schools_table, results=results, students=students, truth=truth,
                  truth_years=_truth_years(scored.sittings, panel, schools),
                  truth_procedures=_truth_procedures(scored.sittings, panel, schools, planted,
                                                     scored.cuts),
                  truth_params=params)


def write_region(region: Region, raw_dir: Path, truth_dir: Path) -> list[Path]:
    """Write the region's raw tables to ``raw_dir`` and its truth to ``truth_dir``.

    Writes ``schools.csv``, ``results.csv`` (UTF-8, ``,``, ``.`` decimal, shares with 4
    decimals, counts as integers, missing = empty cell), ``students.parquet`` when the region
    has students, and ``truth.csv``, ``truth_years.csv``, ``truth_procedures.csv`` (same
    formats), ``truth.json``, ``README.md``.

    Returns
    -------
    list of Path
        The written files, in the order above.
    """
    raw_dir, truth_dir = Path(raw_dir), Path(truth_dir)
    raw_dir.mkdir(parents=True, exist_ok=True)
    truth_dir.mkdir(parents=True, exist_ok=True)
    paths = [_write_csv(region.schools, raw_dir / "schools.csv"),
             _write_csv(region.results, raw_dir / "results.csv")]
    if region.students is not None:
        path = raw_dir / "students.parquet"
        region.students.to_parquet(path, index=False)
        paths.append(path)
    paths.append(_write_csv(region.truth, truth_dir / "truth.csv"))
    paths.append(_write_csv(region.truth_years, truth_dir / "truth_years.csv"))
    paths.append(_write_csv(region.truth_procedures, truth_dir / "truth_procedures.csv"))
    path = truth_dir / "truth.json"
    path.write_text(json.dumps(region.truth_params, sort_keys=True, indent=2,
                               ensure_ascii=False) + "\n", encoding="utf-8")
    paths.append(path)
    path = truth_dir / "README.md"
    path.write_text(_truth_readme(region.truth_params), encoding="utf-8")
    paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    """Command line: generate the region and write it (see the module docstring)."""
    args = _parser().parse_args(argv)
    spec = _spec_from_args(args)
    region = generate_region(spec)
    paths = write_region(region, args.out, args.truth)
    counts = region.truth_params["counts"]
    print(f"synthetic region: {counts['schools']} schools, {counts['school_years']} "
          f"school-years, {counts['result_rows']} result rows (seed {spec.seed})")
    for path in paths:
        print(f"  wrote {path}")
    return 0


# ---------------------------------------------------------------------------------------------
# Structure: municipalities and schools
# ---------------------------------------------------------------------------------------------


def _validate(spec: RegionSpec) -> None:
    if not 2 <= spec.n_municipalities <= 99:
        raise ValueError("n_municipalities must be from 2 to 99")
    if spec.n_schools < max(MIN_SCHOOLS, PARAMS["municipality"]["min_schools"]
                            * spec.n_municipalities):
        raise ValueError(f"n_schools must be at least {MIN_SCHOOLS} and 3 per municipality")
    if spec.n_schools > 9999 * spec.n_municipalities:
        raise ValueError("too many schools for 4-digit school numbers")
    years = list(spec.years)
    if not years or any(b <= a for a, b in itertools.pairwise(years)):
        raise ValueError("years must be a non-empty, strictly increasing sequence")
    if not 0.0 <= spec.missing_rate < 1.0:
        raise ValueError("missing_rate must be in [0, 1)")


def _draw_categories(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One category index per row of ``probs`` (n, k), by inverse CDF of one uniform."""
    cdf = np.cumsum(probs, axis=1)
    cdf /= cdf[:, -1:]
    return (rng.random(len(probs))[:, None] >= cdf[:, :-1]).sum(axis=1)


def _municipalities(n: int, rng: np.random.Generator) -> pd.DataFrame:
    """Municipalities: ``code`` (1..n), ``municipality`` (name), ``urban``, ``m``, ``weight``.

    At least one urban and one rural municipality.
    """
    p = PARAMS["municipality"]
    n_urban = int(np.clip(round(p["share_urban"] * n), 1, n - 1))
    urban = np.zeros(n, dtype=bool)
    urban[rng.permutation(n)[:n_urban]] = True
    shift = np.where(urban, p["status_shift"]["urban"], p["status_shift"]["rural"])
    m = rng.normal(0.0, p["sd_status"], n) + shift
    weight = rng.lognormal(0.0, p["size_weight_sd_log"], n)
    weight *= np.where(urban, p["size_weight_urban"], 1.0)
    return pd.DataFrame({"code": np.arange(1, n + 1), "municipality": _municipality_names(
        urban, rng), "urban": urban, "m": m, "weight": weight})


def _municipality_names(urban: np.ndarray, rng: np.random.Generator) -> list[str]:
    """Unique Russian-style names: «X городской округ», «Город X», «X муниципальный район»."""
    stems = [str(s) for s in rng.permutation(DISTRICT_STEMS)]
    stems += [p + s.lower() for p in NAME_PREFIXES for s in DISTRICT_STEMS
              if not s.startswith(NAME_PREFIXES)]
    cities = [str(c) for c in rng.permutation(CITY_NAMES)]
    as_city = rng.random(len(urban)) < 0.3
    names = []
    for is_urban, city in zip(urban, as_city, strict=True):
        if is_urban and city and cities:
            names.append(f"Город {cities.pop(0)}")
        else:
            kind = "городской округ" if is_urban else "муниципальный район"
            names.append(f"{stems.pop(0)} {kind}")
    return names


def _schools(spec: RegionSpec, munis: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Static school attributes, one row per school, ordered by school_id.

    Columns: school_id, code, municipality, urban, settlement_type, school_type, grade11,
    s (latent social status), enroll_base, opened_year, closed_year, school_name.
    """
    n_min = PARAMS["municipality"]["min_schools"]
    extra = rng.multinomial(spec.n_schools - n_min * len(munis),
                            munis["weight"] / munis["weight"].sum())
    per_muni = n_min + extra
    mi = np.repeat(np.arange(len(munis)), per_muni)
    k = np.concatenate([np.arange(1, c + 1) for c in per_muni])
    code = munis["code"].to_numpy()[mi]
    df = pd.DataFrame({
        "school_id": [f"{c:02d}{j:04d}" for c, j in zip(code, k, strict=True)],
        "code": code,
        "municipality": munis["municipality"].to_numpy()[mi],
        "urban": munis["urban"].to_numpy()[mi],
    })
    df["settlement_type"] = _settlements(df["urban"].to_numpy(), rng)
    df["school_type"] = _school_types(df["settlement_type"].to_numpy(), rng)
    other11 = rng.random(len(df)) < PARAMS["participation"]["share_other_with_grade11"]
    df["grade11"] = df["school_type"].isin(GRADE11_TYPES) | ((df["school_type"] == "other")
                                                             & other11)
    df["s"] = _school_status(df, munis["m"].to_numpy()[mi], rng)
    df["enroll_base"] = _enrollment_base(df, rng)
    df[["opened_year", "closed_year"]] = _open_close(df, spec.years, rng)
    df["school_name"] = _school_names(df, rng)
    return df


def _settlements(urban: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    kinds = schema.SETTLEMENT_TYPES
    mix = np.array([[SETTLEMENT_MIX["urban" if u else "rural"][k] for k in kinds] for u in urban])
    out = np.asarray(kinds, dtype=object)[_draw_categories(rng, mix)]
    return _ensure_present(out, kinds, mix, rng)


def _school_types(settlement: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    kinds = schema.SCHOOL_TYPES
    mix = np.array([[TYPE_MIX[s][k] for k in kinds] for s in settlement])
    out = np.asarray(kinds, dtype=object)[_draw_categories(rng, mix)]
    return _ensure_present(out, kinds, mix, rng)


def _ensure_present(values: np.ndarray, kinds: Sequence[str], mix: np.ndarray,
                    rng: np.random.Generator) -> np.ndarray:
    """Make every category of ``kinds`` appear at least once.

    A missing category replaces the value of a random row that may take it (its probability
    in ``mix`` is positive) and that holds the currently most frequent category.
    """
    values = values.copy()
    for j, kind in enumerate(kinds):
        if (values == kind).any():
            continue
        allowed = mix[:, j] > 0
        kinds_here, counts = np.unique(values[allowed], return_counts=True)
        donor = kinds_here[np.argmax(counts)]
        rows = np.flatnonzero(allowed & (values == donor))
        values[rng.choice(rows)] = kind
    return values


def _school_status(df: pd.DataFrame, m: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    p = PARAMS["school_status"]
    return (m + df["settlement_type"].map(p["settlement_effect"]).to_numpy(dtype=float)
            + df["school_type"].map(p["type_effect"]).to_numpy(dtype=float)
            + rng.normal(0.0, p["sd_school"], len(df)))


def _enrollment_base(df: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
    p = PARAMS["enrollment"]
    median = df["settlement_type"].map(p["median"]).to_numpy(dtype=float)
    sd = df["settlement_type"].map(p["sd_log"]).to_numpy(dtype=float)
    factor = df["school_type"].map(p["type_factor"]).to_numpy(dtype=float)
    return np.maximum(median * factor * np.exp(rng.normal(0.0, 1.0, len(df)) * sd),
                      p["minimum"])


def _open_close(df: pd.DataFrame, years: Sequence[int], rng: np.random.Generator) -> pd.DataFrame:
    """``opened_year``/``closed_year`` (Int64): one secondary school closes in the last year
    (absent in it), another opens in the second year (absent in the first)."""
    out = pd.DataFrame({"opened_year": pd.array([pd.NA] * len(df), dtype="Int64"),
                        "closed_year": pd.array([pd.NA] * len(df), dtype="Int64")})
    if len(years) < 2:
        return out
    closer, opener = rng.choice(np.flatnonzero(df["school_type"] == "secondary"), 2,
                                replace=False)
    out.loc[closer, "closed_year"] = years[-1]
    out.loc[opener, "opened_year"] = years[1]
    return out


def _school_names(df: pd.DataFrame, rng: np.random.Generator) -> list[str]:
    """Russian-style names, unique within each municipality; exactly one contains ``&``."""
    names: list[str] = []
    for _, group in df.groupby("code", sort=True):
        names += _municipality_school_names(group, rng)
    others = np.flatnonzero(df["school_type"].to_numpy() == "other")
    names[others[0]] = SPECIAL_NAME
    return names


def _municipality_school_names(group: pd.DataFrame, rng: np.random.Generator) -> list[str]:
    numbers = rng.permutation(np.arange(1, 3 * len(group) + 10))[: len(group)]
    villages = [str(v) for v in rng.permutation(VILLAGES)]
    adjectives = [str(v) for v in rng.permutation(VILLAGE_ADJECTIVES)]
    variant = rng.integers(0, 6, len(group))
    form = np.where(rng.random(len(group)) < 0.5, "МАОУ", "МБОУ")
    names = []
    for i, (kind, place) in enumerate(zip(group["school_type"], group["settlement_type"],
                                          strict=True)):
        if place == "village" and kind == "secondary" and villages:
            names.append(f"МКОУ «СОШ с. {villages.pop(0)}»")
        elif place == "village" and kind == "basic" and adjectives:
            names.append(f"МКОУ «{adjectives.pop(0)} ООШ»")
        else:
            patterns = NUMBERED_NAMES[kind]
            school_form = "МКОУ" if place == "village" else form[i]
            names.append(patterns[variant[i] % len(patterns)].format(form=school_form,
                                                                      n=numbers[i]))
    return names


# ---------------------------------------------------------------------------------------------
# School-years, social indicators, students
# ---------------------------------------------------------------------------------------------


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


def _sittings(panel: pd.DataFrame, schools: pd.DataFrame,
              rng: np.random.Generator) -> pd.DataFrame:
    """Students sitting an assessment: one row per student x assessment.

    Cohorts per school-year and grade ~ Poisson(enrollment / 11) (grade 11: 40% of that, only
    in schools with a grade 11; no cohorts in ``adapted`` schools); each student sits each of
    the grade's two assessments with probability 0.93.

    Returns
    -------
    DataFrame sorted by (row, assessment, student)
        ``row`` (panel row), ``a`` (index into :data:`ASSESSMENTS`), ``student`` (number of
        the student within the region, 0-based), ``ses`` (student's status).
    """
    p = PARAMS["participation"]
    sidx = panel["sidx"].to_numpy()
    takes = (schools["school_type"].to_numpy()[sidx] != "adapted")
    mean = panel["enrollment"].to_numpy() / p["cohort_divisor"] * takes
    factor = np.array([1.0, 1.0, 1.0, p["grade11_share_of_cohort"]])
    has11 = schools["grade11"].to_numpy()[sidx]
    lam = mean[:, None] * factor[None, :] * np.column_stack([np.ones((len(panel), 3)), has11])
    cohort = rng.poisson(lam)  # (rows, grades)
    n_students = int(cohort.sum())
    row = np.repeat(np.repeat(np.arange(len(panel)), len(COHORT_GRADES)), cohort.ravel())
    grade_i = np.repeat(np.tile(np.arange(len(COHORT_GRADES)), len(panel)), cohort.ravel())
    ses = panel["s_y"].to_numpy()[row] + rng.normal(
        0.0, PARAMS["student_model"]["sd_student_ses"], n_students)
    sits = rng.random((n_students, 2)) < p["p_sit"]
    student, subject = np.nonzero(sits)
    out = pd.DataFrame({"row": row[student], "a": GRADE_ASSESSMENTS[grade_i[student], subject],
                        "student": student, "ses": ses[student]})
    return out.sort_values(["row", "a", "student"], kind="stable", ignore_index=True)


# ---------------------------------------------------------------------------------------------
# Planted groups and scores
# ---------------------------------------------------------------------------------------------


@dataclass
class _Planted:
    resilient: np.ndarray  # bool per school
    low: np.ndarray
    inflated: np.ndarray


def _plant(schools: pd.DataFrame, panel: pd.DataFrame, sittings: pd.DataFrame,
           rng: np.random.Generator) -> _Planted:
    """Choose the planted groups among ordinary schools with results.

    Participants per grade: the mean participants of a school's ВПР/ОГЭ result rows over all
    years.  Status quantiles are over schools with results.
    """
    p = PARAMS["planted"]
    per_grade = _participants_per_grade(schools, panel, sittings)
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
                            sittings: pd.DataFrame) -> np.ndarray:
    """Mean participants per ВПР/ОГЭ result row of each school (0 without results)."""
    marked = np.array([a[0] in schema.MARKED_PROCEDURES for a in ASSESSMENTS])
    s = sittings.loc[marked[sittings["a"].to_numpy()]]
    rows = s.groupby(["row", "a"], sort=True).size()
    sidx = panel["sidx"].to_numpy()[rows.index.get_level_values("row")]
    mean = rows.groupby(sidx).mean()
    return mean.reindex(range(len(schools)), fill_value=0.0).to_numpy()


def _school_effects(planted: _Planted, rng: np.random.Generator) -> np.ndarray:
    """u_i ~ N(0, sd) with the planted resilient (+1) and low (-1) schools set."""
    p = PARAMS
    u = rng.normal(0.0, p["student_model"]["sd_school_effect"], len(planted.low))
    u[planted.resilient] = p["planted"]["resilient"]["school_effect"]
    u[planted.low] = p["planted"]["low"]["school_effect"]
    return u


@dataclass
class _Scored:
    sittings: pd.DataFrame  # with y, score, mark (0 for ЕГЭ), below
    cuts: dict


def _score(sittings: pd.DataFrame, panel: pd.DataFrame, schools: pd.DataFrame,
           planted: _Planted, years: Sequence[int], rng: np.random.Generator) -> _Scored:
    """Latent scores, test scores and marks; planted low schools are redrawn until they meet
    the ШНОР rule (their student noise ``e`` in the last two years is drawn again)."""
    base = _latent_mean(sittings, panel, schools)
    e = rng.normal(0.0, PARAMS["student_model"]["sd_student"], len(sittings))
    cuts = _calibrate(base + e, sittings["a"].to_numpy())
    sidx = panel["sidx"].to_numpy()[sittings["row"].to_numpy()]
    year = panel["year"].to_numpy()[sittings["row"].to_numpy()]
    shift = _inflation(sittings, sidx, planted)
    recent = year >= years[-1] - 1
    for _ in range(PARAMS["planted"]["low"]["max_redraws"]):
        out = _marks(sittings.assign(y=base + e + shift), cuts)
        failing = planted.low & ~_meets_shnor(_results(out, panel, schools), schools, years[-1])
        if not failing.any():
            return _Scored(out, cuts)
        redo = failing[sidx] & recent
        e[redo] = rng.normal(0.0, PARAMS["student_model"]["sd_student"], int(redo.sum()))
    raise RuntimeError("planted low schools do not meet the ШНОР rule")


def _latent_mean(sittings: pd.DataFrame, panel: pd.DataFrame, schools: pd.DataFrame
                 ) -> np.ndarray:
    """Everything of y but the student noise e (and the planted ВПР inflation)."""
    p = PARAMS["student_model"]
    row = sittings["row"].to_numpy()
    sidx = panel["sidx"].to_numpy()[row]
    type_effect = schools["school_type"].map(p["type_effect"]).to_numpy(dtype=float)
    d = np.array([p["d_assessment"]["/".join(map(str, a))] for a in ASSESSMENTS])
    return (p["b_ses"] * sittings["ses"].to_numpy() + p["b_comp"] * panel["s_y"].to_numpy()[row]
            + type_effect[sidx] + schools["u"].to_numpy()[sidx] + panel["v"].to_numpy()[row]
            + d[sittings["a"].to_numpy()])


def _inflation(sittings: pd.DataFrame, sidx: np.ndarray, planted: _Planted) -> np.ndarray:
    vpr = np.array([a[0] == "VPR" for a in ASSESSMENTS])[sittings["a"].to_numpy()]
    return np.where(vpr & planted.inflated[sidx], PARAMS["planted"]["inflated_vpr"]["vpr_shift"],
                    0.0)


def _primary(y: np.ndarray) -> np.ndarray:
    c = PARAMS["marks"]["primary_score"]
    return np.clip(np.rint(c["intercept"] + c["slope"] * y), c["min"], c["max"])


def _calibrate(y: np.ndarray, a: np.ndarray) -> dict:
    """Region-wide mark thresholds on the primary score, per marked procedure.

    The threshold for mark k+1 is the primary score nearest to the latent quantile at the
    cumulative target share of marks up to k; ``latent`` gives the equivalent cut-points on y.
    """
    c = PARAMS["marks"]["primary_score"]
    procedure = np.array([x[0] for x in ASSESSMENTS])[a]
    cuts = {}
    for proc, shares in PARAMS["marks"]["target_shares"].items():
        q = np.quantile(y[procedure == proc], np.cumsum(shares)[:-1])
        thresholds = np.rint(c["intercept"] + 0.5 + c["slope"] * q).astype(int)
        latent = (thresholds - c["intercept"] - 0.5) / c["slope"]
        cuts[proc] = {"min_primary_score_for_mark_3_4_5": thresholds.tolist(),
                      "latent_cut_points": [round(float(x), 6) for x in latent]}
    return cuts


def _marks(sittings: pd.DataFrame, cuts: dict) -> pd.DataFrame:
    """Add ``score`` (primary or ЕГЭ score), ``mark`` (2..5; 0 for ЕГЭ) and ``below``."""
    a = sittings["a"].to_numpy()
    y = sittings["y"].to_numpy()
    score = _primary(y)
    mark = np.zeros(len(y), dtype="int64")
    below = np.zeros(len(y), dtype=bool)
    ege = PARAMS["ege"]
    for i, (proc, subject, _) in enumerate(ASSESSMENTS):
        sel = a == i
        if proc in cuts:
            t = np.array(cuts[proc]["min_primary_score_for_mark_3_4_5"])
            mark[sel] = 2 + (score[sel][:, None] >= t[None, :]).sum(axis=1)
        else:
            c = ege["score"][subject]
            score[sel] = np.clip(np.rint(c["intercept"] + c["slope"] * y[sel]), 0,
                                 ege["max_score"])
            below[sel] = score[sel] < ege["min_score"][subject]
    return sittings.assign(score=score, mark=mark, below=below)


# ---------------------------------------------------------------------------------------------
# Output tables
# ---------------------------------------------------------------------------------------------


def _results(sittings: pd.DataFrame, panel: pd.DataFrame, schools: pd.DataFrame
             ) -> pd.DataFrame:
    """Aggregate sittings to the contract table ``results`` (rows with participants only)."""
    code = sittings["row"].to_numpy() * len(ASSESSMENTS) + sittings["a"].to_numpy()
    keys, inverse = np.unique(code, return_inverse=True)
    n = np.bincount(inverse)
    row, a = np.divmod(keys, len(ASSESSMENTS))
    marked = np.array([x[0] in schema.MARKED_PROCEDURES for x in ASSESSMENTS])[a]
    mark = sittings["mark"].to_numpy()
    out = pd.DataFrame({
        "year": panel["year"].to_numpy()[row],
        "school_id": pd.array(schools["school_id"].to_numpy()[panel["sidx"].to_numpy()[row]],
                              dtype="string"),
        "procedure": pd.array([ASSESSMENTS[i][0] for i in a], dtype="string"),
        "subject": pd.array([ASSESSMENTS[i][1] for i in a], dtype="string"),
        "grade": np.array([ASSESSMENTS[i][2] for i in a], dtype="int64"),
        "participants": n.astype("int64"),
    })
    for k, col in zip(range(2, 6), schema.MARK_COUNTS, strict=True):
        out[col] = _nullable_int(np.bincount(inverse, mark == k), marked)
    for col in schema.MARK_SHARES:
        out[col] = np.nan
    out["n_below_min"] = _nullable_int(np.bincount(inverse, sittings["below"].to_numpy()),
                                       ~marked)
    out["pct_below_min"] = np.nan
    mean = np.bincount(inverse, sittings["score"].to_numpy()) / n
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


def _schools_table(panel: pd.DataFrame, schools: pd.DataFrame,
                   indicators: pd.DataFrame) -> pd.DataFrame:
    sidx = panel["sidx"].to_numpy()
    out = pd.DataFrame({"year": panel["year"].to_numpy()})
    for col in ("school_id", "school_name", "municipality", "settlement_type", "school_type"):
        out[col] = pd.array(schools[col].to_numpy()[sidx], dtype="string")
    out["enrollment"] = panel["enrollment"].to_numpy()
    out = pd.concat([out, indicators.reset_index(drop=True)], axis=1)
    return out[list(schema.SCHOOLS_COLUMNS)]


def _students_table(sittings: pd.DataFrame, panel: pd.DataFrame, schools: pd.DataFrame
                    ) -> pd.DataFrame:
    """The optional ``students`` table: one row per student x assessment, in result order."""
    row, a = sittings["row"].to_numpy(), sittings["a"].to_numpy()
    width = max(6, len(str(int(sittings["student"].max()) + 1)))
    ege = np.array([x[0] not in schema.MARKED_PROCEDURES for x in ASSESSMENTS])[a]
    out = pd.DataFrame({
        "year": panel["year"].to_numpy()[row],
        "school_id": pd.array(schools["school_id"].to_numpy()[panel["sidx"].to_numpy()[row]],
                              dtype="string"),
        "procedure": pd.array(np.array([x[0] for x in ASSESSMENTS])[a], dtype="string"),
        "subject": pd.array(np.array([x[1] for x in ASSESSMENTS])[a], dtype="string"),
        "grade": np.array([x[2] for x in ASSESSMENTS], dtype="int64")[a],
        "student_key": pd.array([f"s{k + 1:0{width}d}" for k in sittings["student"]],
                                dtype="string"),
        "score": sittings["score"].to_numpy(dtype=float),
        "mark": pd.arrays.IntegerArray(sittings["mark"].to_numpy(), ege),
        "ses": np.round(sittings["ses"].to_numpy(), 3) + 0.0,
    })
    return out[list(schema.STUDENTS_COLUMNS)]


# ---------------------------------------------------------------------------------------------
# Truth
# ---------------------------------------------------------------------------------------------


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


def _meets_shnor(results: pd.DataFrame, schools: pd.DataFrame, year: int) -> np.ndarray:
    """ШНОР rule for ``year`` Y (bool per school of ``schools``).

    Met if (a) >= 2 low procedures in Y or (b) >= 1 low procedure in each of Y-1 and Y.
    """
    counts = shnor_low_counts(results)
    now = counts.get(year, pd.Series(dtype="int64"))
    before = counts.get(year - 1, pd.Series(dtype="int64"))
    ids = schools["school_id"]
    now = ids.map(now).fillna(0).to_numpy()
    before = ids.map(before).fillna(0).to_numpy()
    return (now >= PARAMS["shnor_rule"]["min_low_in_year"]) | ((now >= 1) & (before >= 1))


def _truth(schools: pd.DataFrame, planted: _Planted, results: pd.DataFrame, year: int
           ) -> pd.DataFrame:
    out = pd.DataFrame({
        "school_id": pd.array(schools["school_id"], dtype="string"),
        "municipality": pd.array(schools["municipality"], dtype="string"),
        "school_type": pd.array(schools["school_type"], dtype="string"),
        "settlement_type": pd.array(schools["settlement_type"], dtype="string"),
        "context_group": pd.array(np.where(schools["urban"], "urban", "rural")
                                  + "/" + schools["settlement_type"].to_numpy(dtype=str),
                                  dtype="string"),
        "latent_ses": np.round(schools["s"].to_numpy(), 4) + 0.0,
        "school_effect": np.round(schools["u"].to_numpy(), 4) + 0.0,
        "planted_resilient": planted.resilient,
        "planted_low": planted.low,
        "planted_inflated_vpr": planted.inflated,
        "opened_year": pd.array(schools["opened_year"], dtype="Int64"),
        "closed_year": pd.array(schools["closed_year"], dtype="Int64"),
        "meets_shnor": _meets_shnor(results, schools, year),
    })
    return out[list(TRUTH_COLUMNS)]


def _round4(x: np.ndarray) -> np.ndarray:
    """Round to 4 decimals as the CSV files do (``+ 0.0`` turns ``-0.0`` into ``0.0``)."""
    return np.round(np.asarray(x, dtype=float), 4) + 0.0


def _truth_years(sittings: pd.DataFrame, panel: pd.DataFrame, schools: pd.DataFrame
                 ) -> pd.DataFrame:
    """Truth per school-year: s_iy, v_iy, u_i + v_iy and the ВПР+ОГЭ sittings (panel order)."""
    sidx = panel["sidx"].to_numpy()
    v = panel["v"].to_numpy()
    marked = np.array([x[0] in schema.MARKED_PROCEDURES for x in ASSESSMENTS])
    rows = sittings["row"].to_numpy()[marked[sittings["a"].to_numpy()]]
    out = pd.DataFrame({
        "school_id": pd.array(schools["school_id"].to_numpy()[sidx], dtype="string"),
        "year": panel["year"].to_numpy(dtype="int64"),
        "latent_ses_year": _round4(panel["s_y"].to_numpy()),
        "year_effect": _round4(v),
        "effect": _round4(schools["u"].to_numpy()[sidx] + v),
        "participants": np.bincount(rows, minlength=len(panel)).astype("int64"),
    })
    return out[list(TRUTH_YEARS_COLUMNS)]


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


def _p_score_below(k: np.ndarray, scale: dict[str, np.ndarray], a: np.ndarray,
                   mu: np.ndarray, sd: float) -> np.ndarray:
    """P(clip(round(c0 + c1 y), lo, hi) < k) for y ~ N(mu, sd), per row (assessment ``a``).

    For ``lo < k <= hi`` the score is below ``k`` exactly when ``c0 + c1 y < k - 0.5`` (the
    clipping cannot move a score across ``k``; ties have probability 0).
    """
    c0, c1, lo, hi = (scale[name][a] for name in ("c0", "c1", "lo", "hi"))
    p = ndtr(((k - 0.5 - c0) / c1 - mu) / sd)
    return np.where(k <= lo, 0.0, np.where(k > hi, 1.0, p))


def _truth_procedures(sittings: pd.DataFrame, panel: pd.DataFrame, schools: pd.DataFrame,
                      planted: _Planted, cuts: dict) -> pd.DataFrame:
    """True expected shares of «2» (below the minimum) and of «4»/«5» per result row.

    Keys and order are those of :func:`_results`.  A student's latent score given the
    school-year is ``y ~ N(mu, sd)`` (see the module docstring).
    """
    p = PARAMS["student_model"]
    code = sittings["row"].to_numpy() * len(ASSESSMENTS) + sittings["a"].to_numpy()
    keys, n = np.unique(code, return_counts=True)
    row, a = np.divmod(keys, len(ASSESSMENTS))
    sidx = panel["sidx"].to_numpy()[row]
    type_effect = schools["school_type"].map(p["type_effect"]).to_numpy(dtype=float)
    d = np.array([p["d_assessment"]["/".join(map(str, x))] for x in ASSESSMENTS])
    vpr = np.array([x[0] == "VPR" for x in ASSESSMENTS])[a]
    shift = np.where(vpr & planted.inflated[sidx],
                     PARAMS["planted"]["inflated_vpr"]["vpr_shift"], 0.0)
    mu = ((p["b_ses"] + p["b_comp"]) * panel["s_y"].to_numpy()[row] + type_effect[sidx]
          + schools["u"].to_numpy()[sidx] + panel["v"].to_numpy()[row] + d[a] + shift)
    sd = float(np.hypot(p["b_ses"] * p["sd_student_ses"], p["sd_student"]))
    scale = _score_scales(cuts)
    good = scale["good"][a]
    p_low = _p_score_below(scale["low"][a], scale, a, mu, sd)
    p_good = np.where(np.isnan(good), np.nan,
                      1.0 - _p_score_below(np.nan_to_num(good), scale, a, mu, sd))
    out = pd.DataFrame({
        "school_id": pd.array(schools["school_id"].to_numpy()[sidx], dtype="string"),
        "year": panel["year"].to_numpy(dtype="int64")[row],
        "procedure": pd.array([ASSESSMENTS[i][0] for i in a], dtype="string"),
        "subject": pd.array([ASSESSMENTS[i][1] for i in a], dtype="string"),
        "grade": np.array([ASSESSMENTS[i][2] for i in a], dtype="int64"),
        "participants": n.astype("int64"),
        "expected_share_low": _round4(p_low),
        "expected_share_good": _round4(p_good),
    })
    return out[list(TRUTH_PROCEDURES_COLUMNS)]


def _truth_params(spec: RegionSpec, munis: pd.DataFrame, schools: pd.DataFrame,
                  planted: _Planted, cuts: dict, schools_table: pd.DataFrame,
                  results: pd.DataFrame, truth: pd.DataFrame) -> dict:
    social = list(schema.SOCIAL_INDICATORS)
    indicators = schools_table[list(schema.SCHOOLS_OPTIONAL)]

    def ids(mask: np.ndarray | pd.Series) -> list[str]:
        return [str(x) for x in truth.loc[np.asarray(mask, dtype=bool), "school_id"]]

    counts = {
        "municipalities": len(munis),
        "municipalities_urban": int(munis["urban"].sum()),
        "schools": len(schools),
        "school_years": len(schools_table),
        "schools_by_year": {str(y): int(n) for y, n in
                            schools_table.groupby("year").size().items()},
        "schools_with_results": int(results["school_id"].nunique()),
        "result_rows": len(results),
        "result_rows_under_10_participants": int((results["participants"] < 10).sum()),
        "planted_resilient": int(planted.resilient.sum()),
        "planted_low": int(planted.low.sum()),
        "planted_inflated_vpr": int(planted.inflated.sum()),
        "meets_shnor": int(truth["meets_shnor"].sum()),
        "school_years_all_social_missing": int(indicators[social].isna().all(axis=1).sum()),
        "indicator_cells_missing_share": round(float(indicators.isna().to_numpy().mean()), 6),
    }
    return {
        "spec": {**asdict(spec), "years": list(spec.years)},
        "model": json.loads(json.dumps(PARAMS)),
        "cut_points": cuts,
        "counts": counts,
        "closed_schools": ids(truth["closed_year"].notna()),
        "opened_schools": ids(truth["opened_year"].notna()),
        "planted_schools": {"resilient": ids(planted.resilient), "low": ids(planted.low),
                            "inflated_vpr": ids(planted.inflated)},
        "special_name": SPECIAL_NAME,
    }


# ---------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------

#: Decimals of float columns in CSV files (others: 4).
CSV_DECIMALS = {"mean_score": 2}


def _write_csv(df: pd.DataFrame, path: Path) -> Path:
    """CSV with fixed formats: ints without ``.0``, floats with fixed decimals, NA empty."""
    text = pd.DataFrame({col: _column_text(df[col], CSV_DECIMALS.get(col, 4)) for col in df})
    text.to_csv(path, index=False, lineterminator="\n", encoding="utf-8", na_rep="")
    return path


def _column_text(col: pd.Series, decimals: int) -> pd.Series:
    if pd.api.types.is_bool_dtype(col):
        return col.map({True: "True", False: "False"}).astype(object)
    if pd.api.types.is_integer_dtype(col):
        return col.astype("Int64").astype("string").astype(object)
    if pd.api.types.is_float_dtype(col):
        values = col.to_numpy(dtype=float, na_value=np.nan)
        text = [None if np.isnan(v) else f"{v:.{decimals}f}" for v in values]
        return pd.Series(text, index=col.index, dtype=object)
    return col.astype(object)


def _truth_readme(params: dict) -> str:
    """The truth folder's README, filled with this region's counts and parameters."""
    c, spec = params["counts"], params["spec"]
    sm, pl = params["model"]["student_model"], params["model"]["planted"]
    res, low, inf = pl["resilient"], pl["low"], pl["inflated_vpr"]
    years = spec["years"]
    return TRUTH_README.format(
        n_schools=c["schools"], n_munis=c["municipalities"], seed=spec["seed"],
        years=", ".join(str(y) for y in years), last=years[-1],
        second=years[1] if len(years) > 1 else "—",
        b_ses=sm["b_ses"], b_comp=sm["b_comp"], sd_u=sm["sd_school_effect"],
        sd_v=sm["sd_year_effect"], sd_e=sm["sd_student"],
        n_res=c["planted_resilient"], res_q=f"{res['max_ses_quantile']:.0%}",
        res_n=res["min_participants_per_grade"], res_u=res["school_effect"],
        n_low=c["planted_low"], low_q=f"{low['max_ses_quantile']:.0%}",
        low_n=low["min_participants_per_grade"], low_u=low["school_effect"],
        n_inf=c["planted_inflated_vpr"], inf_q=f"{inf['max_ses_quantile']:.0%}",
        inf_n=inf["min_participants_per_grade"], inf_shift=inf["vpr_shift"],
        closed=", ".join(params["closed_schools"]) or "none",
        opened=", ".join(params["opened_schools"]) or "none", n_shnor=c["meets_shnor"],
    )


TRUTH_README = """\
# Planted ground truth of the synthetic demo region

Generated by `analysis.demo.synth`: {n_schools} schools in {n_munis} municipalities, years {years},
seed {seed}.

**The pipeline never reads this folder**: it is the answer key against which tests check
what the pipeline finds in `data/raw/`.

Files: `truth.csv` (one row per school), `truth_years.csv` (one row per school-year),
`truth_procedures.csv` (one row per row of `results.csv`: the true expected shares of «2»
and of «4»/«5»), `truth.json` (every generating parameter, the spec, the calibrated mark
thresholds and the counts of each planted group).

## Columns of `truth.csv`

| column | meaning |
|---|---|
| `school_id` | the school's code, as in `schools.csv` (string with leading zeros) |
| `municipality` | its municipality |
| `school_type` | `basic`, `secondary`, `advanced`, `gymnasium`, `lyceum`, `adapted`, `other` |
| `settlement_type` | `city`, `town`, `village` |
| `context_group` | municipality kind × settlement type: `urban/city`, `urban/town`, `rural/town`, `rural/village` (`urban` = городской округ, `rural` = муниципальный район) |
| `latent_ses` | the school's latent social status s_i (before the yearly drift N(0, 0.05)) |
| `school_effect` | the persistent school effect u_i on students' latent scores |
| `planted_resilient` | planted resilient school (see below) |
| `planted_low` | planted low-result school (see below) |
| `planted_inflated_vpr` | planted school with inflated ВПР results (see below) |
| `opened_year` | year from which a newly opened school is present (empty otherwise) |
| `closed_year` | first year in which a closed school is absent (empty otherwise) |
| `meets_shnor` | the ШНОР rule for the last year, computed from the generated `results` |

## Columns of `truth_years.csv`

One row per school present in a year (the rows of `schools.csv`, in the same order).

| column | meaning |
|---|---|
| `school_id` | the school's code |
| `year` | the year |
| `latent_ses_year` | the school's latent social status that year, s_iy = s_i + N(0, 0.05) |
| `year_effect` | the school-year effect v_iy on students' latent scores |
| `effect` | the school's true effect that year, u_i + v_iy (student-SD units) |
| `participants` | ВПР + ОГЭ sittings (student × assessment) that year; 0 without results |

## Columns of `truth_procedures.csv`

One row per row of `results.csv` (school × year × procedure × subject × grade, same order).

| column | meaning |
|---|---|
| `school_id`, `year`, `procedure`, `subject`, `grade` | the result row's key |
| `participants` | its participants (as in `results.csv`) |
| `expected_share_low` | true probability of failing: «2» (ВПР, ОГЭ) or ЕГЭ below the minimum |
| `expected_share_good` | true probability of «4» or «5» (ВПР, ОГЭ); empty for ЕГЭ |

Both come analytically from the generating model, not from the drawn students.  Given the
school-year, a student's latent score is y ~ N(mu, sd) with
mu = (b_ses + b_comp)·s_iy + type effect + u_i + v_iy + d_assessment (+ the ВПР shift of a
planted inflated school) and sd = sqrt(b_ses²·0.8² + {sd_e}²).  A score
clip(round(c0 + c1·y), lo, hi) is below a threshold k (lo < k ≤ hi) exactly when
c0 + c1·y < k − 0.5, so P(score < k) = Φ(((k − 0.5 − c0)/c1 − mu)/sd); the thresholds are
the calibrated `cut_points` (ВПР, ОГЭ) and the ЕГЭ minima.  The observed share of «2» of a
row is a binomial draw around `expected_share_low`, except for the planted low schools in
the last two years, whose student noise was redrawn until they meet the ШНОР rule (their
observed shares are selected upwards).

## The generating model

- Municipality status m_j ~ N(0, 0.5), shifted up for urban districts (городской округ).
- School status s_i = m_j + settlement effect (city +0.3, town 0, village −0.4) + type
  effect (gymnasium/lyceum +0.5, advanced +0.3, basic −0.3, adapted −0.6) + N(0, 0.6);
  each year s_iy = s_i + N(0, 0.05).
- Social indicators: shares of a binomial draw over the enrolment with probability
  logistic in s_iy plus a persistent school noise; resource factors likewise (weakly related
  to s).  Cells are missing at random at the spec's `missing_rate`; in addition about 0.5%
  of school-years (never of a planted school) lose all seven social indicators.
- Students: cohorts per grade ~ Poisson(enrolment / 11) (grade 11: 40% of that, only in
  schools with a grade 11); each student sits each of the grade's two assessments with
  probability 0.93; ses = s_iy + N(0, 0.8);
  y = b_ses·ses + b_comp·s_iy + type effect + u_i + v_iy + d_assessment + e with
  b_ses = {b_ses}, b_comp = {b_comp}, u_i ~ N(0, {sd_u}), v_iy ~ N(0, {sd_v}), e ~ N(0, {sd_e})
  (standard deviations); the type effects and d_assessment are in `truth.json`.
- ВПР (grades 5, 6) and ОГЭ (grade 9): primary score clip(round(20 + 6y), 0, 40), marks from
  primary-score thresholds calibrated on the whole region (`cut_points` in `truth.json`).
  ЕГЭ (grade 11): rus clip(round(60 + 15y), 0, 100), math_profile clip(round(50 + 18y), 0,
  100); below the minimum: rus < 24, math_profile < 27.
- `adapted` schools (АООП) write no result rows at all: in this region they do not sit
  ВПР/ОГЭ/ЕГЭ.  They are in `schools.csv` all the same.

## Planted groups

"Participants per grade" is the mean number of participants of a school's ВПР/ОГЭ result
rows over all years; status quantiles are taken over schools with results.  The school that
closes and the one that opens are never planted.

- **Resilient** ({n_res} schools): chosen at random among schools in the bottom {res_q} of
  s_i with at least {res_n} participants per grade; their school effect is set to
  u_i = +{res_u}.  None of them is inflated.
- **Low** ({n_low} schools): chosen at random among the other schools with at least
  {low_n} participants per grade and s_i below its {low_q} quantile (a school at the very
  top of the social scale would not reach 30% of «2»); u_i = {low_u}.
  The student noise of a planted low school in the last two years is redrawn until the
  school meets the ШНОР rule, so every planted low school does.
- **Inflated ВПР** ({n_inf} schools): chosen at random among the other schools with at least
  {inf_n} participants per grade (so that the ВПР-over-ОГЭ screen can see them) and s_i
  below its {inf_q} quantile (near the ceiling of «4»/«5» an inflation cannot be seen);
  their students' ВПР latent scores get +{inf_shift} before scoring and marking
  (ОГЭ and ЕГЭ untouched).  Some of them are in unfavourable context: a school whose ВПР
  results are not objective must not be called resilient.
- **Closing school** ({closed}): an ordinary secondary school present in every year but the
  last ({last}); `closed_year` = {last}.
- **Opening school** ({opened}): an ordinary secondary school absent in the first year and
  present from {second}; `opened_year` = {second}.

## The ШНОР rule (`meets_shnor`, {n_shnor} schools)

For the last year Y: a procedure (one procedure × subject × grade row of `results`) is low
when n_mark2 / participants (ВПР, ОГЭ) or n_below_min / participants (ЕГЭ) is at least 0.30.
A school meets the rule if it has at least two low procedures in Y, or at least one in Y
and at least one in Y − 1.  Every school with results can meet it, not only planted ones:
small schools meet it by chance.
"""


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m analysis.demo.synth",
                                     description="Generate the synthetic demo region.")
    parser.add_argument("--out", type=Path, required=True, help="raw data folder (data/raw)")
    parser.add_argument("--truth", type=Path, required=True,
                        help="ground-truth folder (data/demo_truth)")
    parser.add_argument("--params", type=Path,
                        help="params.yaml whose `demo` section gives the spec")
    parser.add_argument("--n-schools", type=int)
    parser.add_argument("--n-municipalities", type=int)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--years", type=int, nargs="+")
    parser.add_argument("--missing-rate", type=float)
    parser.add_argument("--students", action="store_true", default=None,
                        help="also write students.parquet")
    return parser


def _spec_from_args(args: argparse.Namespace) -> RegionSpec:
    """Spec: defaults, overridden by the params file's ``demo`` section, then by flags."""
    values: dict = {}
    if args.params is not None:
        import yaml

        demo = yaml.safe_load(args.params.read_text(encoding="utf-8")).get("demo") or {}
        values.update({k: v for k, v in demo.items() if k in RegionSpec.__dataclass_fields__})
    flags = {"n_schools": args.n_schools, "n_municipalities": args.n_municipalities,
             "seed": args.seed, "years": args.years, "missing_rate": args.missing_rate,
             "write_students": args.students}
    values.update({k: v for k, v in flags.items() if v is not None})
    if "years" in values:
        values["years"] = tuple(int(y) for y in values["years"])
    return RegionSpec(**values)


if __name__ == "__main__":
    raise SystemExit(main())
