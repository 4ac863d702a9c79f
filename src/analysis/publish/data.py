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


@dataclass
class ReportData:
    """Everything the report shows, read from the processed files."""

    year: int
    schools: pd.DataFrame
    results: pd.DataFrame
    school_year: pd.DataFrame
    index: pd.DataFrame
    quality_groups: pd.DataFrame
    clusters: pd.DataFrame
    similar: pd.DataFrame
    similar_peers: pd.DataFrame
    sample: pd.DataFrame
    flags: pd.DataFrame
    shnor: pd.DataFrame
    shnor_details: pd.DataFrame
    objectivity: pd.DataFrame
    ledger: pd.DataFrame
    accounting: pd.DataFrame
    context: dict[str, Any]
    gradient: dict[str, Any]
    validation: dict[str, Any]
    estimates: pd.DataFrame
    curve: pd.DataFrame
    component_points: pd.DataFrame
    effects: pd.DataFrame
    cards: pd.DataFrame
    objectivity_evidence: pd.DataFrame
    changes: pd.DataFrame
    flags_summary: dict[str, Any]

    @property
    def schools_year(self) -> pd.DataFrame:
        """Schools of the reporting year."""
        return self.schools.loc[self.schools["year"] == self.year]


def load_report_data(root: str | Path = ".", *, year: int) -> ReportData:
    """Read every processed file the report shows (:data:`analysis.files.FILES`) and all
    stages' ledgers."""
    names = ("schools", "results", "school_year", "social_index", "quality_groups", "clusters",
             "similar", "similar_peers", "ses_sample", "flags", "shnor", "shnor_details",
             "objectivity")
    t = {n: read(root, n) for n in names}
    led, acc = read_ledger(root)
    return ReportData(
        year, t["schools"], t["results"], t["school_year"], t["social_index"],
        t["quality_groups"], t["clusters"], t["similar"], t["similar_peers"], t["ses_sample"],
        t["flags"], t["shnor"], t["shnor_details"], t["objectivity"], led, acc,
        read_json(root, "context_summary"), read_json(root, "ses_link_summary"),
        read_json(root, "validation"), read(root, "estimates"), read(root, "ses_curve"),
        read(root, "component_points"), read(root, "school_effects"), read(root, "flag_cards"),
        read(root, "objectivity_evidence"), read(root, "flag_changes"),
        read_json(root, "flags_summary"))
