"""What the report shows, read from the processed files of stages 01-04.

:class:`ReportData` holds every table and summary the report's sections, the municipal
reports, the downloads and ``metrics.json`` are built from; :func:`load_report_data` reads
them (:data:`analysis.files.FILES`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.files import read, read_json, read_ledger


@dataclass(kw_only=True)
class ReportData:
    """Everything the report shows, read from the processed files: each field is named like
    the file it holds (:data:`analysis.files.FILES`), and is built by keyword."""

    year: int
    schools: pd.DataFrame
    results: pd.DataFrame
    school_year: pd.DataFrame
    social_index: pd.DataFrame
    quality_groups: pd.DataFrame
    clusters: pd.DataFrame
    similar: pd.DataFrame
    similar_peers: pd.DataFrame
    ses_sample: pd.DataFrame
    estimates: pd.DataFrame
    ses_curve: pd.DataFrame
    component_points: pd.DataFrame
    flags: pd.DataFrame
    shnor: pd.DataFrame
    shnor_details: pd.DataFrame
    objectivity: pd.DataFrame
    objectivity_evidence: pd.DataFrame
    school_effects: pd.DataFrame
    flag_cards: pd.DataFrame
    flag_changes: pd.DataFrame
    #: ``context.json``, ``ses_link.json``, ``flags.json``, ``validation.json``
    context_summary: dict[str, Any]
    ses_link_summary: dict[str, Any]
    flags_summary: dict[str, Any]
    validation: dict[str, Any]
    #: every stage's ledger of excluded rows, and the row accounting
    ledger: pd.DataFrame
    accounting: pd.DataFrame

    @property
    def schools_year(self) -> pd.DataFrame:
        """Schools of the reporting year."""
        return self.schools.loc[self.schools["year"] == self.year]


#: The processed tables and JSON summaries :class:`ReportData` holds, by their FILES name.
TABLES = ("schools", "results", "school_year", "social_index", "quality_groups", "clusters",
          "similar", "similar_peers", "ses_sample", "estimates", "ses_curve", "component_points",
          "flags", "shnor", "shnor_details", "objectivity", "objectivity_evidence",
          "school_effects", "flag_cards", "flag_changes")
SUMMARIES = ("context_summary", "ses_link_summary", "flags_summary", "validation")


def load_report_data(root: str | Path = ".", *, year: int) -> ReportData:
    """Read every processed file the report shows (:data:`analysis.files.FILES`) and all
    stages' ledgers."""
    led, acc = read_ledger(root)
    return ReportData(year=year, **{n: read(root, n) for n in TABLES},
                      **{n: read_json(root, n) for n in SUMMARIES}, ledger=led, accounting=acc)
