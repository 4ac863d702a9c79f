"""Generating parameters of the synthetic region (all recorded in ``truth.json``).

:data:`PARAMS` holds every coefficient of the generating model, :data:`SETTLEMENT_MIX` and
:data:`TYPE_MIX` the mixes of settlement and school types.  :data:`ASSESSMENTS` lists the
assessments (procedure, subject, grade) in the sort order of result rows, with lookup arrays
per assessment (``_PROCEDURE``, ``_SUBJECT``, ``_GRADE``, ``_MARKED``, ``_VPR``).  The limits
of a spec (:data:`MIN_SCHOOLS`, :data:`MAX_MUNICIPALITIES`, ...) and the chunk size of the
student-level arrays (:data:`CHUNK`) are here too.  Nothing here draws random numbers.
"""

from __future__ import annotations

import numpy as np

from analysis.ingest import schema

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
