"""What region to generate: :class:`RegionSpec`, its validation and the codes it implies.

:func:`_validate` refuses an impossible spec with a ``ValueError`` that says what to change;
:func:`_legacy_codes` and :func:`_municipality_digits` give the layout of the school codes,
which depends on the spec only, never on the draw (see :mod:`analysis.demo.synth`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from analysis.demo.synth.params import (
    MAX_LEGACY_MUNICIPALITIES,
    MAX_MUNICIPALITIES,
    MAX_REGIONS,
    MIN_MUNICIPALITIES_PER_REGION,
    MIN_SCHOOLS,
    PARAMS,
    SCHOOL_DIGITS,
)


@dataclass(frozen=True)
class RegionSpec:
    """What region to generate.

    Attributes
    ----------
    n_municipalities : int
        Number of municipalities (2..9999), all regions together.  Up to 99 in one region
        keep the 6-digit school codes ``MMSSSS``; beyond, codes take the region (see
        :mod:`analysis.demo.synth`).
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
