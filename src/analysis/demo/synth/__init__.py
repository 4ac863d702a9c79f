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
order without a sort and processed in chunks of :data:`.params.CHUNK`; results are aggregated with
``bincount`` and the CSV files are formatted and joined by vectorised Arrow kernels.  The
national dataset (40,000 schools, 2,300 municipalities, 85 regions, three years, no students
table) takes about 10 s and 1.1 GB on two cores (``benchmarks/generator.py``).  Only the
per-municipality draws of school names (and of municipality names, per region) remain
Python loops, of a few cheap numpy calls each.

Command line (also the console script ``school-context-demo``)::

    python -m analysis.demo.synth --out data/raw --truth data/demo_truth \
        [--params params.yaml] [--n-schools N] [--n-municipalities M] [--n-regions R] \
        [--seed S] [--years 2023 2024 2025] [--missing-rate R] [--students]

Modules, each importing only those above it:

- :mod:`.params` -- the generating parameters (:data:`PARAMS`), assessments and limits;
- :mod:`.spec` -- :class:`RegionSpec`, its validation and the layout of the school codes;
- :mod:`.places` -- regions, municipalities, schools, their codes and names;
- :mod:`.panel` -- school-years, social indicators and the students' sittings;
- :mod:`.rules` -- the ШНОР rule (:func:`shnor_low_counts`) and the score scales;
- :mod:`.scores` -- the planted groups, school effects, scores and marks;
- :mod:`.tables` -- the contract tables ``schools``, ``results``, ``students``;
- :mod:`.truth` -- the truth tables and ``truth.json``'s parameters;
- :mod:`.region` -- :class:`Region` and :func:`generate_region`, every draw in order;
- :mod:`.write` -- :func:`write_region`: the CSV writer, ``students.parquet``, the truth
  README;
- :mod:`.cli` -- :func:`main`, the command line (``__main__`` runs it).

The public API is re-exported here; the modules' ``_private`` helpers are not.
"""

from __future__ import annotations

from analysis.demo.synth.cli import main
from analysis.demo.synth.params import MIN_MUNICIPALITIES_PER_REGION, PARAMS
from analysis.demo.synth.region import Region, generate_region
from analysis.demo.synth.rules import shnor_low_counts
from analysis.demo.synth.spec import RegionSpec
from analysis.demo.synth.truth import (
    TRUTH_COLUMNS,
    TRUTH_PROCEDURES_COLUMNS,
    TRUTH_YEARS_COLUMNS,
)
from analysis.demo.synth.write import CSV_DECIMALS, write_region

__all__ = [
    "CSV_DECIMALS",
    "MIN_MUNICIPALITIES_PER_REGION",
    "PARAMS",
    "TRUTH_COLUMNS",
    "TRUTH_PROCEDURES_COLUMNS",
    "TRUTH_YEARS_COLUMNS",
    "Region",
    "RegionSpec",
    "generate_region",
    "main",
    "shnor_low_counts",
    "write_region",
]
