"""Canonical names of the raw data contract: one place for every column and category.

The raw contract (``DATA_CONTRACT.md`` in the shared folder, restated in the README)
defines three tables.  Everything downstream refers to columns through the constants
here, so a renamed column is renamed once.
"""

from __future__ import annotations

from typing import Final

# --- table `schools`: one row per school per year -------------------------------------------
SCHOOL_KEY: Final = ("year", "school_id")
SCHOOLS_REQUIRED: Final = (
    "year",
    "school_id",
    "school_name",
    "municipality",
    "settlement_type",
    "school_type",
    "enrollment",
)
#: Social indicators (shares on 0..1) with the sign of their link to social well-being.
SOCIAL_INDICATORS: Final[dict[str, int]] = {
    "share_parents_higher_ed": +1,
    "share_low_income": -1,
    "share_single_parent": -1,
    "share_unemployed_parents": -1,
    "share_disability": -1,
    "share_non_native": -1,
    "share_prevention_register": -1,
}
#: Resource factors: shares, but not part of the social index.
RESOURCE_INDICATORS: Final = ("teacher_vacancy_rate", "share_teachers_top_category")
SCHOOLS_OPTIONAL: Final = tuple(SOCIAL_INDICATORS) + RESOURCE_INDICATORS
SCHOOLS_COLUMNS: Final = SCHOOLS_REQUIRED + SCHOOLS_OPTIONAL
#: Beyond the contract: the region (субъект РФ) of a school in a national file.  Without it
#: the data are one region; with it a national report summarises by region what a regional
#: report lists by municipality (:func:`analysis.publish.html.listing`).
SCHOOLS_EXTRA: Final = ("region",)

SETTLEMENT_TYPES: Final = ("city", "town", "village")
SCHOOL_TYPES: Final = ("basic", "secondary", "advanced", "gymnasium", "lyceum", "adapted", "other")

# --- table `results`: one row per school x year x procedure x subject x grade ---------------
RESULT_KEY: Final = ("year", "school_id", "procedure", "subject", "grade")
RESULTS_REQUIRED: Final = RESULT_KEY + ("participants",)
MARK_COUNTS: Final = ("n_mark2", "n_mark3", "n_mark4", "n_mark5")
MARK_SHARES: Final = ("pct_mark2", "pct_mark3", "pct_mark4", "pct_mark5")
RESULTS_OPTIONAL: Final = MARK_COUNTS + MARK_SHARES + ("n_below_min", "pct_below_min", "mean_score")
RESULTS_COLUMNS: Final = RESULTS_REQUIRED + RESULTS_OPTIONAL

PROCEDURES: Final = ("VPR", "OGE", "EGE")  # known labels; any other label is accepted too
MARKED_PROCEDURES: Final = ("VPR", "OGE")
SCORED_PROCEDURES: Final = ("EGE",)
SUBJECTS: Final = ("rus", "math", "math_base", "math_profile")
GRADES: Final = tuple(range(4, 12))

#: Every share column of the contract (values on 0..1; percent exports are converted).
SHARE_COLUMNS: Final = frozenset({*SCHOOLS_OPTIONAL, *MARK_SHARES, "pct_below_min"})

# --- table `students` (optional): one row per student x procedure ---------------------------
STUDENTS_COLUMNS: Final = RESULT_KEY + ("student_key", "score", "mark", "ses")

#: Each table's canonical columns, and the required ones (students: the result key).
TABLE_COLUMNS: Final[dict[str, tuple[str, ...]]] = {
    "schools": SCHOOLS_COLUMNS + SCHOOLS_EXTRA, "results": RESULTS_COLUMNS,
    "students": STUDENTS_COLUMNS,
}
REQUIRED_COLUMNS: Final[dict[str, tuple[str, ...]]] = {
    "schools": SCHOOLS_REQUIRED, "results": RESULTS_REQUIRED, "students": RESULT_KEY,
}

#: Raw file stems the pipeline looks for in the raw folder (any of .csv, .xlsx, .parquet).
TABLES: Final = ("schools", "results", "students")

# --- category forms accepted in the raw files ------------------------------------------------
#: Spellings analysts use for the categories, matched after normalisation (lowercase, ё -> е,
#: spaces collapsed and trimmed); the canonical English codes are accepted in any case too.
CATEGORY_SYNONYMS: Final[dict[str, dict[str, str]]] = {
    "settlement_type": {
        "город": "city", "г.": "city", "г": "city", "городской": "city",
        "городская": "city", "городская местность": "city",
        "поселок": "town", "п.": "town", "п": "town", "пгт": "town", "пгт.": "town",
        "поселок городского типа": "town",
        "село": "village", "деревня": "village", "с.": "village", "с": "village",
        "д.": "village", "д": "village", "сельская": "village", "сельский": "village",
        "сельская местность": "village",
    },
    "school_type": {
        "оош": "basic", "основная": "basic", "основная школа": "basic",
        "сош": "secondary", "средняя": "secondary", "средняя школа": "secondary",
        "сош с уиоп": "advanced", "уиоп": "advanced", "углубленным": "advanced",
        "с углубленным изучением": "advanced",
        "гимназия": "gymnasium", "лицей": "lyceum",
        "аооп": "adapted", "коррекционная": "adapted", "адаптированная": "adapted",
        "прочее": "other", "другое": "other", "прочие": "other", "другая": "other",
    },
}
