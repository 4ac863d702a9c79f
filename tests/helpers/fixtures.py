"""Tiny in-memory tables with hand-checkable answers."""

import pandas as pd

from analysis.ingest import io


def schools_table(rows: list[dict]) -> pd.DataFrame:
    """A typed schools table from dicts (defaults fill required columns)."""
    base = {"municipality": "МО 1", "settlement_type": "city", "school_type": "secondary",
            "enrollment": 500}
    df = pd.DataFrame([{**base, "school_name": f"СОШ № {r['school_id']}", **r} for r in rows])
    return _typed(df, "schools")


def result_row(year, school_id, procedure="VPR", subject="math", grade=5, marks=(1, 4, 3, 2),
               below=None):
    row = {"year": year, "school_id": school_id, "procedure": procedure, "subject": subject,
           "grade": grade}
    if below is None:
        row.update(participants=sum(marks), n_mark2=marks[0], n_mark3=marks[1],
                   n_mark4=marks[2], n_mark5=marks[3])
    else:
        row.update(participants=below[1], n_below_min=below[0])
    return row


def results_table(rows: list[dict]) -> pd.DataFrame:
    return _typed(pd.DataFrame(rows), "results")


def _typed(df: pd.DataFrame, table: str) -> pd.DataFrame:
    return io.from_frame(df, table)
