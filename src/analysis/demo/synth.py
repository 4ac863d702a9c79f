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

Regions (``n_regions > 1``, e.g. a national dataset of 85 regions): the municipalities are
split into contiguous blocks, one per region (at least :data:`MIN_MUNICIPALITIES_PER_REGION`
each, the rest multinomial over lognormal region weights, at most 999 per region when the spec
allows it), and every region gets a unique Russian-style name («Республика …», «… область»,
«… край», «… автономный округ»).  Municipality names are drawn per region as for a single
region; a name drawn in two or more regions gets its region in parentheses, so names are
unique nationally.  The ``schools`` table and ``truth.csv`` then have a column ``region``
(before ``municipality``).  With ``n_regions == 1`` there is no such column.

School codes (``school_id``): strings of digits of a fixed width that depends on the spec only,
never on the draw, so codes are unique and sort like the schools:

- one region with at most 99 municipalities (the default): ``MMSSSS``, the municipality's
  number ``MM`` (01..99) and the school's number within its municipality ``SSSS``
  (0001..9999);
- otherwise: ``RRMMMSSSS``, the region's number ``RR`` (01..99), the municipality's number
  within its region ``MMM`` (001..999) and ``SSSS``; when the spec allows more than 999
  municipalities in one region (``n_municipalities > 999 * n_regions``) the municipality
  takes four digits, ``RRMMMMSSSS``.

A municipality that draws more than 9,999 schools is refused (``ValueError``).

Determinism: one ``numpy.random.default_rng(seed)`` drives every draw in a fixed order, rows
are sorted by their keys and files are written with fixed number formats, so the same
:class:`RegionSpec` gives byte-identical files.  The truth tables draw no random numbers.

Size: the student-level draws are held in compact numpy arrays (one entry per student x
assessment, about 36 million for 40,000 schools over three years), placed in their sorted
order without a sort and processed in chunks of :data:`CHUNK`; results are aggregated with
``bincount`` and the CSV files are formatted and joined by vectorised Arrow kernels.  The
national dataset (40,000 schools, 2,300 municipalities, 85 regions, three years, no students
table) takes about 10 s and 1.1 GB on two cores (``benchmarks/generator.py``).  Only the
per-municipality draws of school names (and of municipality names, per region) remain
Python loops, of a few cheap numpy calls each.

Command line::

    python -m analysis.demo.synth --out data/raw --truth data/demo_truth \
        [--params params.yaml] [--n-schools N] [--n-municipalities M] [--n-regions R] \
        [--seed S] [--years 2023 2024 2025] [--missing-rate R] [--students]
"""

from __future__ import annotations

import argparse
import csv
import io
import itertools
import json
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
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
N_ASSESSMENTS = len(ASSESSMENTS)
_PROCEDURE = np.array([x[0] for x in ASSESSMENTS], dtype=object)
_SUBJECT = np.array([x[1] for x in ASSESSMENTS], dtype=object)
_GRADE = np.array([x[2] for x in ASSESSMENTS], dtype=np.int64)
#: Per assessment: marked 2..5 (ВПР, ОГЭ) rather than scored against a minimum (ЕГЭ).
_MARKED = np.array([x[0] in schema.MARKED_PROCEDURES for x in ASSESSMENTS])
_VPR = _PROCEDURE == "VPR"
#: Smallest region: room for every school type, the planted groups and the open/close pair.
MIN_SCHOOLS = 30
#: Most municipalities (all regions together) and most regions (2-digit region codes).
MAX_MUNICIPALITIES = 9999
MAX_REGIONS = 99
#: Fewest municipalities of a region when there are several regions.
MIN_MUNICIPALITIES_PER_REGION = 3
#: Most municipalities of the legacy 6-digit codes ``MMSSSS`` (one region only).
MAX_LEGACY_MUNICIPALITIES = 99
#: Digits of a school's number within its municipality (``SSSS``).
SCHOOL_DIGITS = 4
#: Entries of the student-level arrays processed at once (bounds the temporary memory).
CHUNK = 1 << 18
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
#: Masculine adjectives of invented regions: «X край», «X автономный округ», and in the
#: feminine «X-ая область».
REGION_STEMS = (
    "Северский", "Приозёрский", "Заречный", "Лесогорский", "Нагорный", "Прибрежный",
    "Верхнеобский", "Ангарский", "Белогорский", "Светлогорский", "Краснореченский",
    "Сосногорский", "Каменногорский", "Среднеуральский", "Южноуральский", "Приволжский",
    "Прикамский", "Донской", "Окский", "Волховский", "Онежский", "Ладожский", "Вычегодский",
    "Печорский", "Мезенский", "Сухонский", "Ветлужский", "Сурский", "Мокшанский", "Цнинский",
    "Хопёрский", "Медведицкий", "Сальский", "Манычский", "Терский", "Сунженский", "Кумский",
    "Иртышский", "Ишимский", "Кондинский", "Чулымский", "Кетский", "Катунский", "Бердский",
    "Енисейский", "Канский", "Витимский", "Олёкминский", "Алданский", "Зейский", "Бурейский",
    "Селемджинский", "Уссурийский", "Шилкинский", "Аргунский", "Ононский", "Селенгинский",
    "Баргузинский", "Тункинский", "Саянский", "Абаканский", "Хемчикский", "Колымский",
    "Индигирский", "Анадырский", "Охотский", "Тауйский", "Пенжинский", "Вилюйский",
    "Ленский", "Тымский", "Васюганский", "Пуровский", "Тазовский", "Надымский", "Усинский",
    "Ижемский", "Вишерский", "Чусовской", "Сылвенский",
)
#: Names of invented republics («Республика X»).
REPUBLIC_NAMES = (
    "Северия", "Полесье", "Заречье", "Приуралье", "Подгорье", "Поморье", "Ставрия", "Задонье",
    "Прибайкалье", "Заволжье", "Приобье", "Беломорье", "Поволжье", "Забайкалье", "Присаянье",
    "Предгорье", "Заонежье", "Поречье", "Ополье", "Приладожье", "Притоболье", "Закамье",
    "Семиречье", "Залесье", "Приамурье", "Понизовье",
)
#: Shares of republics, krais and autonomous okrugs among the regions (the rest: oblasts).
REGION_KIND_SHARES = {"republic": 0.26, "krai": 0.11, "okrug": 0.05}

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
        Number of municipalities (2..9999), all regions together.  Up to 99 in one region
        keep the 6-digit school codes ``MMSSSS``; beyond, codes take the region (see the
        module docstring).
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
    n_regions : int
        Number of regions (1..99), each with at least 3 municipalities when there are
        several.  With more than one, the ``schools`` table and ``truth.csv`` get a column
        ``region``; with one (the default) they have none and the output is that of a
        single region.
    """

    n_municipalities: int = 30
    n_schools: int = 1000
    years: tuple[int, ...] = (2023, 2024, 2025)
    seed: int = 20250
    missing_rate: float = 0.05
    write_students: bool = False
    n_regions: int = 1


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
    """Refuse an impossible spec with a ``ValueError`` that says what to change."""
    if not 1 <= spec.n_regions <= MAX_REGIONS:
        raise ValueError(f"n_regions must be from 1 to {MAX_REGIONS} (2-digit region codes), "
                         f"got {spec.n_regions}")
    if not 2 <= spec.n_municipalities <= MAX_MUNICIPALITIES:
        raise ValueError(f"n_municipalities must be from 2 to {MAX_MUNICIPALITIES}, "
                         f"got {spec.n_municipalities}")
    if spec.n_regions > 1 and (spec.n_municipalities
                               < MIN_MUNICIPALITIES_PER_REGION * spec.n_regions):
        raise ValueError(
            f"n_municipalities must be at least {MIN_MUNICIPALITIES_PER_REGION} per region "
            f"({MIN_MUNICIPALITIES_PER_REGION * spec.n_regions} for {spec.n_regions} regions), "
            f"got {spec.n_municipalities}")
    n_min = PARAMS["municipality"]["min_schools"]
    if spec.n_schools < max(MIN_SCHOOLS, n_min * spec.n_municipalities):
        raise ValueError(f"n_schools must be at least {MIN_SCHOOLS} and {n_min} per "
                         f"municipality ({max(MIN_SCHOOLS, n_min * spec.n_municipalities)} "
                         f"for {spec.n_municipalities} municipalities), got {spec.n_schools}")
    most = 10**SCHOOL_DIGITS - 1
    if spec.n_schools > most * spec.n_municipalities:
        raise ValueError(f"n_schools must be at most {most} per municipality "
                         f"({SCHOOL_DIGITS}-digit school numbers), got {spec.n_schools} for "
                         f"{spec.n_municipalities} municipalities")
    years = list(spec.years)
    if not years or any(b <= a for a, b in itertools.pairwise(years)):
        raise ValueError(f"years must be a non-empty, strictly increasing sequence, got {years}")
    if not 0.0 <= spec.missing_rate < 1.0:
        raise ValueError(f"missing_rate must be in [0, 1), got {spec.missing_rate}")


def _legacy_codes(spec: RegionSpec) -> bool:
    """Whether school codes are the 6-digit ``MMSSSS`` (one region, at most 99 municipalities)."""
    return spec.n_regions == 1 and spec.n_municipalities <= MAX_LEGACY_MUNICIPALITIES


def _municipality_digits(spec: RegionSpec) -> int:
    """Digits of a municipality's number within its region in the long school codes.

    Three, unless the spec allows more than 999 municipalities in one region; then four.
    Depends on the spec only (regions are capped at ``10**digits - 1`` municipalities).
    """
    return 3 if spec.n_municipalities <= 999 * spec.n_regions else 4


def _draw_categories(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One category index per row of ``probs`` (n, k), by inverse CDF of one uniform."""
    cdf = np.cumsum(probs, axis=1)
    cdf /= cdf[:, -1:]
    return (rng.random(len(probs))[:, None] >= cdf[:, :-1]).sum(axis=1)


def _municipalities(spec: RegionSpec, rng: np.random.Generator) -> pd.DataFrame:
    """Municipalities in the order of their codes, one row each.

    Columns: ``code`` (1..n over all regions), ``region`` (0-based index), ``region_name``,
    ``in_region`` (number within the region, from 1), ``municipality`` (name, unique),
    ``urban``, ``m`` (status), ``weight`` (relative number of schools).  At least one urban
    and one rural municipality.

    With one region the draws are those of the original single-region generator; with
    several, the region sizes, the region names and the names of each region's
    municipalities are drawn after ``weight``.
    """
    n = spec.n_municipalities
    p = PARAMS["municipality"]
    n_urban = int(np.clip(round(p["share_urban"] * n), 1, n - 1))
    urban = np.zeros(n, dtype=bool)
    urban[rng.permutation(n)[:n_urban]] = True
    shift = np.where(urban, p["status_shift"]["urban"], p["status_shift"]["rural"])
    m = rng.normal(0.0, p["sd_status"], n) + shift
    weight = rng.lognormal(0.0, p["size_weight_sd_log"], n)
    weight *= np.where(urban, p["size_weight_urban"], 1.0)
    if spec.n_regions == 1:
        sizes = np.array([n])
        region_names = np.array([""], dtype=object)
        names = _municipality_names(urban, rng)
    else:
        cap = 10 ** _municipality_digits(spec) - 1
        sizes = _region_sizes(n, spec.n_regions, cap, rng)
        region_names = _region_names(spec.n_regions, rng)
        starts = np.concatenate([[0], np.cumsum(sizes)])
        # one loop iteration per region: a few cheap draws each
        names = [name for r in range(spec.n_regions)
                 for name in _municipality_names(urban[starts[r]:starts[r + 1]], rng)]
    region = np.repeat(np.arange(len(sizes)), sizes)
    in_region = np.arange(n) - np.repeat(np.cumsum(sizes) - sizes, sizes) + 1
    names = _unique_across_regions(np.asarray(names, dtype=object), region, region_names)
    return pd.DataFrame({"code": np.arange(1, n + 1), "region": region,
                         "region_name": region_names[region], "in_region": in_region,
                         "municipality": names, "urban": urban, "m": m, "weight": weight})


def _region_sizes(n: int, n_regions: int, cap: int, rng: np.random.Generator) -> np.ndarray:
    """Municipalities per region: at least the minimum, at most ``cap``, summing to ``n``.

    The municipalities beyond the minimum are multinomial over lognormal region weights; a
    region over ``cap`` gives its excess to the regions with the most room (ties: the first).
    """
    low = MIN_MUNICIPALITIES_PER_REGION
    weight = rng.lognormal(0.0, 0.6, n_regions)
    sizes = low + rng.multinomial(n - low * n_regions, weight / weight.sum())
    excess = int(np.maximum(sizes - cap, 0).sum())
    sizes = np.minimum(sizes, cap)
    for r in np.argsort(cap - sizes, kind="stable")[::-1]:  # most room first
        if excess == 0:
            break
        take = min(cap - int(sizes[r]), excess)
        sizes[r] += take
        excess -= take
    return sizes


def _region_names(n_regions: int, rng: np.random.Generator) -> np.ndarray:
    """Unique Russian-style region names (object array), in a random order.

    About a quarter are republics («Республика X»), a tenth krais («X край»), a twentieth
    autonomous okrugs («X автономный округ») and the rest oblasts («X-ая область»).
    """
    shares = REGION_KIND_SHARES
    n_rep = min(round(shares["republic"] * n_regions), len(REPUBLIC_NAMES))
    n_krai = round(shares["krai"] * n_regions)
    n_okrug = round(shares["okrug"] * n_regions)
    n_oblast = n_regions - n_rep - n_krai - n_okrug
    stems = [str(s) for s in rng.permutation(REGION_STEMS)[: n_regions - n_rep]]
    republics = [f"Республика {x}" for x in rng.permutation(REPUBLIC_NAMES)[:n_rep]]
    oblasts = [f"{s[:-2]}ая область" for s in stems[:n_oblast]]
    krais = [f"{s} край" for s in stems[n_oblast:n_oblast + n_krai]]
    okrugs = [f"{s} автономный округ" for s in stems[n_oblast + n_krai:]]
    names = np.array(oblasts + republics + krais + okrugs, dtype=object)
    return names[rng.permutation(n_regions)]


def _municipality_names(urban: np.ndarray, rng: np.random.Generator) -> list[str]:
    """Unique Russian-style names: «X городской округ», «Город X», «X муниципальный район».

    Urban municipalities are «Город X» with probability 0.3 while city names last; the others
    take the district stems in a random order, then their «Верхне-/Нижне-/Ново-» forms.  Past
    those (more than about 150 municipalities in a region) a stem comes again with «№ 2», ...
    """
    stems = np.array([str(s) for s in rng.permutation(DISTRICT_STEMS)]
                     + [p + s.lower() for p in NAME_PREFIXES for s in DISTRICT_STEMS
                        if not s.startswith(NAME_PREFIXES)], dtype=object)
    cities = np.array([str(c) for c in rng.permutation(CITY_NAMES)], dtype=object)
    as_city = rng.random(len(urban)) < 0.3
    city_slot = urban & as_city
    city_rank = np.cumsum(city_slot) - 1
    is_city = city_slot & (city_rank < len(cities))
    stem_rank = np.cumsum(~is_city) - 1
    kind = np.where(urban, " городской округ", " муниципальный район").astype(object)
    round_, within = np.divmod(stem_rank, len(stems))
    suffix = np.where(round_ > 0, " № " + (round_ + 1).astype(str).astype(object), "")
    names = np.where(is_city, "Город " + cities[np.minimum(city_rank, len(cities) - 1)],
                     stems[within] + kind + suffix.astype(object))
    return [str(x) for x in names]


def _unique_across_regions(names: np.ndarray, region: np.ndarray,
                           region_names: np.ndarray) -> np.ndarray:
    """Municipality names unique nationally: a name drawn in several regions gets its region
    in parentheses («Каменский муниципальный район (Северская область)»)."""
    if len(region_names) == 1:
        return names
    frame = pd.DataFrame({"name": names, "region": region})
    shared = frame.groupby("name", sort=False)["region"].transform("nunique").to_numpy() > 1
    out = names.copy()
    out[shared] = names[shared] + " (" + region_names[region[shared]] + ")"
    return out


def _school_ids(spec: RegionSpec, munis: pd.DataFrame, mi: np.ndarray,
                k: np.ndarray) -> np.ndarray:
    """School codes (object array of digit strings, see the module docstring)."""
    if _legacy_codes(spec):
        number = munis["code"].to_numpy()[mi].astype(np.int64) * 10**SCHOOL_DIGITS + k
        width = 2 + SCHOOL_DIGITS
    else:
        digits = _municipality_digits(spec)
        number = ((munis["region"].to_numpy()[mi].astype(np.int64) + 1)
                  * 10 ** (digits + SCHOOL_DIGITS)
                  + munis["in_region"].to_numpy()[mi].astype(np.int64) * 10**SCHOOL_DIGITS + k)
        width = 2 + digits + SCHOOL_DIGITS
    return np.strings.zfill(number.astype(str), width).astype(object)


def _schools(spec: RegionSpec, munis: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Static school attributes, one row per school, ordered by school_id.

    Columns: school_id, code, region, municipality, urban, settlement_type, school_type,
    grade11, s (latent social status), enroll_base, opened_year, closed_year, school_name.
    """
    n_min = PARAMS["municipality"]["min_schools"]
    extra = rng.multinomial(spec.n_schools - n_min * len(munis),
                            munis["weight"] / munis["weight"].sum())
    per_muni = n_min + extra
    if per_muni.max() >= 10**SCHOOL_DIGITS:
        raise ValueError(f"a municipality drew {per_muni.max()} schools, more than "
                         f"{SCHOOL_DIGITS}-digit school numbers allow; use more municipalities")
    mi = np.repeat(np.arange(len(munis)), per_muni)
    k = np.arange(len(mi)) - np.repeat(np.cumsum(per_muni) - per_muni, per_muni) + 1
    df = pd.DataFrame({
        "school_id": _school_ids(spec, munis, mi, k),
        "code": munis["code"].to_numpy()[mi],
        "region": munis["region_name"].to_numpy()[mi],
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
    df["school_name"] = _school_names(df, per_muni, rng)
    return df


def _settlements(urban: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    kinds = schema.SETTLEMENT_TYPES
    table = np.array([[SETTLEMENT_MIX[u][k] for k in kinds] for u in ("rural", "urban")])
    mix = table[np.asarray(urban, dtype=np.intp)]
    out = np.asarray(kinds, dtype=object)[_draw_categories(rng, mix)]
    return _ensure_present(out, kinds, mix, rng)


def _school_types(settlement: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    kinds = schema.SCHOOL_TYPES
    places = schema.SETTLEMENT_TYPES
    table = np.array([[TYPE_MIX[s][k] for k in kinds] for s in places])
    mix = table[pd.Index(places).get_indexer(settlement)]
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


def _school_names(df: pd.DataFrame, per_muni: np.ndarray,
                  rng: np.random.Generator) -> np.ndarray:
    """Russian-style names, unique within each municipality; exactly one contains ``&``.

    Village secondary schools are «МКОУ «СОШ с. X»» and village basic schools «МКОУ «X-ская
    ООШ»» while the municipality's village names last; the others are numbered («МБОУ СОШ
    № 12»; «МКОУ» in villages), with numbers drawn without replacement within the
    municipality.  The draws are made municipality by municipality (one loop iteration of a
    few cheap draws each, in the order of the original generator); the names are then built
    for all schools at once.
    """
    n, n_muni = len(df), len(per_muni)
    numbers = np.empty(n, dtype=np.int64)
    variant = np.empty(n, dtype=np.int64)
    form_draw = np.empty(n)
    village_order = np.empty((n_muni, len(VILLAGES)), dtype=np.intp)
    adjective_order = np.empty((n_muni, len(VILLAGE_ADJECTIVES)), dtype=np.intp)
    start = 0
    for j, size in enumerate(per_muni.tolist()):
        end = start + size
        numbers[start:end] = rng.permutation(np.arange(1, 3 * size + 10))[:size]
        village_order[j] = rng.permutation(len(VILLAGES))
        adjective_order[j] = rng.permutation(len(VILLAGE_ADJECTIVES))
        variant[start:end] = rng.integers(0, 6, size)
        form_draw[start:end] = rng.random(size)
        start = end
    mi = np.repeat(np.arange(n_muni), per_muni)
    first = np.cumsum(per_muni) - per_muni
    kind = df["school_type"].to_numpy()
    village = df["settlement_type"].to_numpy() == "village"

    def rank(flag: np.ndarray) -> np.ndarray:
        """Rank (from 0) of each flagged school among the flagged of its municipality."""
        seen = np.cumsum(flag)
        return seen - 1 - np.concatenate([[0], seen])[first][mi]

    form = np.where(village, "МКОУ", np.where(form_draw < 0.5, "МАОУ", "МБОУ")).astype(object)
    number = numbers.astype(str).astype(object)
    names = np.empty(n, dtype=object)
    for pattern_kind, patterns in NUMBERED_NAMES.items():
        for v, pattern in enumerate(patterns):
            sel = (kind == pattern_kind) & (variant % len(patterns) == v)
            head, _, tail = pattern.partition("{n}")
            before, has_form, after = head.partition("{form}")
            left = before + form[sel] + after if has_form else head
            names[sel] = left + number[sel] + tail
    is_vs = village & (kind == "secondary")
    r = rank(is_vs)
    use = is_vs & (r < len(VILLAGES))
    places = np.asarray(VILLAGES, dtype=object)[village_order[mi[use], r[use]]]
    names[use] = "МКОУ «СОШ с. " + places + "»"
    is_vb = village & (kind == "basic")
    r = rank(is_vb)
    use = is_vb & (r < len(VILLAGE_ADJECTIVES))
    words = np.asarray(VILLAGE_ADJECTIVES, dtype=object)[adjective_order[mi[use], r[use]]]
    names[use] = "МКОУ «" + words + " ООШ»"
    names[np.flatnonzero(kind == "other")[0]] = SPECIAL_NAME
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
        The student's status; ``None`` once :func:`_latent_mean` has turned it, in place,
        into the latent mean (when there is no students table).
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


# ---------------------------------------------------------------------------------------------
# Planted groups and scores
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# Output tables
# ---------------------------------------------------------------------------------------------


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


def _truth(schools: pd.DataFrame, planted: _Planted, meets_shnor: np.ndarray,
           regional: bool = False) -> pd.DataFrame:
    """Truth per school (:data:`TRUTH_COLUMNS`; ``region`` before ``municipality`` if
    ``regional``)."""
    out = pd.DataFrame({
        "school_id": pd.array(schools["school_id"], dtype="string"),
        "region": pd.array(schools["region"], dtype="string"),
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
        "meets_shnor": meets_shnor,
    })
    columns = list(TRUTH_COLUMNS)
    if regional:
        columns.insert(columns.index("municipality"), "region")
    return out[columns]


def _round4(x: np.ndarray) -> np.ndarray:
    """Round to 4 decimals as the CSV files do (``+ 0.0`` turns ``-0.0`` into ``0.0``)."""
    return np.round(np.asarray(x, dtype=float), 4) + 0.0


def _truth_years(counts: np.ndarray, panel: pd.DataFrame, schools: pd.DataFrame
                 ) -> pd.DataFrame:
    """Truth per school-year: s_iy, v_iy, u_i + v_iy and the ВПР+ОГЭ sittings (panel order)."""
    sidx = panel["sidx"].to_numpy()
    v = panel["v"].to_numpy()
    out = pd.DataFrame({
        "school_id": pd.array(schools["school_id"].to_numpy()[sidx], dtype="string"),
        "year": panel["year"].to_numpy(dtype="int64"),
        "latent_ses_year": _round4(panel["s_y"].to_numpy()),
        "year_effect": _round4(v),
        "effect": _round4(schools["u"].to_numpy()[sidx] + v),
        "participants": counts[:, _MARKED].sum(axis=1).astype("int64"),
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


def _truth_procedures(counts: np.ndarray, panel: pd.DataFrame, schools: pd.DataFrame,
                      planted: _Planted, cuts: dict) -> pd.DataFrame:
    """True expected shares of «2» (below the minimum) and of «4»/«5» per result row.

    Keys and order are those of :func:`_results`.  A student's latent score given the
    school-year is ``y ~ N(mu, sd)`` (see the module docstring).
    """
    p = PARAMS["student_model"]
    _, row, a, n = _result_keys(counts)
    sidx = panel["sidx"].to_numpy()[row]
    type_effect = schools["school_type"].map(p["type_effect"]).to_numpy(dtype=float)
    d = np.array([p["d_assessment"]["/".join(map(str, x))] for x in ASSESSMENTS])
    shift = np.where(_VPR[a] & planted.inflated[sidx],
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
        "procedure": pd.array(_PROCEDURE[a], dtype="string"),
        "subject": pd.array(_SUBJECT[a], dtype="string"),
        "grade": _GRADE[a],
        "participants": n,
        "expected_share_low": _round4(p_low),
        "expected_share_good": _round4(p_good),
    })
    return out[list(TRUTH_PROCEDURES_COLUMNS)]


def _truth_params(spec: RegionSpec, munis: pd.DataFrame, schools: pd.DataFrame,
                  planted: _Planted, cuts: dict, schools_table: pd.DataFrame,
                  results: pd.DataFrame, truth: pd.DataFrame) -> dict:
    """Everything ``truth.json`` records (the spec, the model, the counts, planted schools).

    With one region (the default) neither the spec nor the counts mention regions, so the
    single-region file is unchanged; with several, ``counts`` has ``regions`` and the file
    lists each region's code, name and number of municipalities under ``regions``.
    """
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
    spec_values = {**asdict(spec), "years": list(spec.years)}
    out = {
        "spec": spec_values,
        "model": json.loads(json.dumps(PARAMS)),
        "cut_points": cuts,
        "counts": counts,
        "closed_schools": ids(truth["closed_year"].notna()),
        "opened_schools": ids(truth["opened_year"].notna()),
        "planted_schools": {"resilient": ids(planted.resilient), "low": ids(planted.low),
                            "inflated_vpr": ids(planted.inflated)},
        "special_name": SPECIAL_NAME,
    }
    if spec.n_regions == 1:
        del spec_values["n_regions"]
    else:
        counts["regions"] = spec.n_regions
        sizes = munis.groupby("region", sort=True)["region_name"].agg(["first", "size"])
        out["regions"] = [{"code": f"{r + 1:02d}", "name": str(name),
                           "municipalities": int(size)}
                          for r, (name, size) in zip(sizes.index, sizes.to_numpy(),
                                                     strict=True)]
    return out


# ---------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------

#: Decimals of float columns in CSV files (others: 4).
CSV_DECIMALS = {"mean_score": 2}


def _write_csv(df: pd.DataFrame, path: Path) -> Path:
    """CSV with fixed formats: ints without ``.0``, floats with fixed decimals, NA empty.

    The bytes are those of ``DataFrame.to_csv(index=False, lineterminator="\\n",
    na_rep="")`` on the formatted text (UTF-8, ``,``, a field quoted only when it holds a
    delimiter, a quote or a line break), but columns are formatted and rows joined by
    vectorised Arrow kernels (one pass per column), not row by row.
    """
    header = ",".join(_csv_quote(pa.array([str(c) for c in df.columns], type=pa.string()))
                      .to_pylist()) + "\n"
    with path.open("wb") as handle:
        handle.write(header.encode("utf-8"))
        if len(df):
            columns = [_column_text(df[col], CSV_DECIMALS.get(col, 4)) for col in df]
            columns[-1] = pc.binary_join_element_wise(columns[-1], "", "\n")
            rows = pc.binary_join_element_wise(*columns, ",") if len(columns) > 1 else columns[0]
            handle.write(_string_data(rows))
    return path


def _string_data(values: pa.Array) -> memoryview:
    """The concatenated UTF-8 bytes of an Arrow string array without nulls (no copy)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    offset_type = np.int64 if pa.types.is_large_string(values.type) else np.int32
    _, offsets, data = values.buffers()
    bounds = np.frombuffer(offsets, dtype=offset_type)[values.offset:values.offset + len(values)
                                                       + 1]
    return memoryview(data)[int(bounds[0]):int(bounds[-1])]


def _column_text(col: pd.Series, decimals: int) -> pa.Array:
    """One column as CSV fields (an Arrow string array; missing values are empty fields)."""
    if pd.api.types.is_bool_dtype(col):
        flags = np.where(col.isna().to_numpy(), 2, col.to_numpy(dtype=bool, na_value=False))
        return _pick(("False", "True", ""), flags)
    if pd.api.types.is_integer_dtype(col):
        values = pa.array(col.to_numpy(dtype="int64", na_value=0), mask=col.isna().to_numpy())
        return pc.fill_null(pc.cast(values, pa.string()), "")
    if pd.api.types.is_float_dtype(col):
        return _fixed_decimals(col.to_numpy(dtype=float, na_value=np.nan), decimals)
    values = pa.array(col, from_pandas=True)  # the Arrow data of a ``string`` column
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    return _csv_quote(pc.fill_null(values.cast(pa.string()), ""))


def _fixed_decimals(values: np.ndarray, decimals: int) -> pa.Array:
    """``f"{v:.{decimals}f}"`` of every value (NaN: empty field), vectorised.

    The digits are ``rint(|v| * 10**decimals)`` split at the decimal point; that rounding
    equals Python's (correctly rounded) formatting unless ``|v| * 10**decimals`` lies within
    1e-6 of a half or is huge (or infinite), and those few values are formatted by Python.
    """
    scale = 10**decimals
    missing = np.isnan(values)
    if missing.all():
        return pc.fill_null(pa.nulls(len(values), pa.string()), "")
    scaled = np.abs(np.where(np.isfinite(values), values, 0.0)) * scale
    fast = missing | (np.isfinite(values) & (scaled < 1e9)
                      & (np.abs(scaled - np.floor(scaled) - 0.5) > 1e-6))
    whole, frac = np.divmod(np.rint(np.where(fast, scaled, 0.0)).astype(np.int64), scale)
    text = pc.binary_join_element_wise(
        pc.binary_join_element_wise(_pick(("", "-"), np.signbit(values)),
                                    pc.cast(pa.array(whole), pa.string()), ""),
        pc.utf8_lpad(pc.cast(pa.array(frac), pa.string()), width=decimals, padding="0"), ".")
    text = pc.if_else(pa.array(missing), "", text)
    if not fast.all():
        slow = ~fast
        text = pc.replace_with_mask(text, pa.array(slow), pa.array(
            [f"{v:.{decimals}f}" for v in values[slow]], type=pa.string()))
    return text


def _pick(words: Sequence[str], which: np.ndarray) -> pa.Array:
    """``words[which[i]]`` for every i, as an Arrow string array (a take, not an ``if_else``
    of scalars, which is much slower)."""
    return pc.take(pa.array(list(words), type=pa.string()), pa.array(which.astype(np.int8)))


def _csv_quote(values: pa.Array) -> pa.Array:
    """Text fields quoted as the ``csv`` module (and so pandas) quotes them.

    Only fields holding a delimiter, a quote or a line break can need quoting; they are few,
    and ``csv.writer`` itself writes them, so the quoting is exactly that of ``to_csv``.
    """
    special = pc.fill_null(pc.match_substring_regex(values, '[,"\\r\\n]'), False)
    if not pc.any(special).as_py():
        return values
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    quoted = []
    for field in pc.filter(values, special).to_pylist():
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([field])
        quoted.append(buffer.getvalue()[:-1])
    return pc.replace_with_mask(values, special, pa.array(quoted, type=pa.string()))


def _truth_readme(params: dict) -> str:
    """The truth folder's README, filled with this region's counts and parameters."""
    c, spec = params["counts"], params["spec"]
    sm, pl = params["model"]["student_model"], params["model"]["planted"]
    res, low, inf = pl["resilient"], pl["low"], pl["inflated_vpr"]
    years = spec["years"]
    text = TRUTH_README
    if "regions" in c:
        text = text.replace("{n_munis} municipalities,",
                            "{n_munis} municipalities of {n_regions} regions,")
        text = text.replace(MUNICIPALITY_ROW, REGION_ROW + MUNICIPALITY_ROW)
    return text.format(
        n_schools=c["schools"], n_munis=c["municipalities"], n_regions=c.get("regions", 1),
        seed=spec["seed"],
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


MUNICIPALITY_ROW = "| `municipality` | its municipality |\n"
REGION_ROW = ("| `region` | its region (several regions only; a municipality lies in exactly one, "
              "and municipality names are unique across regions) |\n")
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
    parser.add_argument("--n-regions", type=int,
                        help="number of regions (default 1; more adds a `region` column)")
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
             "n_regions": args.n_regions, "seed": args.seed, "years": args.years,
             "missing_rate": args.missing_rate, "write_students": args.students}
    values.update({k: v for k, v in flags.items() if v is not None})
    if "years" in values:
        values["years"] = tuple(int(y) for y in values["years"])
    return RegionSpec(**values)


if __name__ == "__main__":
    raise SystemExit(main())
