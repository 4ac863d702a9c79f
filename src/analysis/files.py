"""The processed files: where each stage writes its outputs and how the next stage reads them.

Every file a stage writes is an ``outs`` entry of its stage in ``dvc.yaml`` and has a name
in :data:`FILES`; the ledger of each stage goes to :data:`LEDGER_DIR`.  This module is the
bottom layer the stage modules (``analysis.<subpackage>.stage``) share: it imports only
pandas and the shared helpers, never a stage, so a stage's kernel pays for nothing it does
not use.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from analysis import ledger, outputs
from analysis.config import PROCESSED

#: Every processed file, by name (relative to the project root).
FILES: dict[str, Path] = {
    name: PROCESSED / f"{name}.parquet"
    for name in ("schools", "results", "school_year", "social_index", "quality_groups",
                 "clusters", "cluster_terms", "similar", "similar_peers", "students",
                 "ses_sample", "estimates", "ses_curve", "component_points", "flags", "shnor",
                 "shnor_details", "objectivity", "school_effects", "flag_cards",
                 "objectivity_evidence", "flag_changes")
}
FILES.update({
    "context_summary": PROCESSED / "context.json",
    "ses_link_summary": PROCESSED / "ses_link.json",
    "flags_summary": PROCESSED / "flags.json",
    "k_curve": PROCESSED / "plots" / "k_curve.csv",
    "gradient_points": PROCESSED / "plots" / "gradient.csv",
    "validation": PROCESSED / "validation.json",
    "metrics": PROCESSED / "metrics.json",
    "site": PROCESSED / "site",
})
#: Each stage's exclusions ledger and accounting (``<stage>.parquet``,
#: ``<stage>_accounting.parquet``).
LEDGER_DIR = PROCESSED / "ledger"


def write(df: pd.DataFrame, root: str | Path, name: str) -> None:
    """Write a processed table by its :data:`FILES` name (atomically, floats rounded)."""
    outputs.write_table(df, Path(root) / FILES[name])


def write_json(obj: Mapping[str, Any], root: str | Path, name: str) -> None:
    """Write a summary by its :data:`FILES` name (strict JSON, atomically)."""
    outputs.write_json(Path(root) / FILES[name], obj)


def write_ledger(book: tuple[pd.DataFrame, pd.DataFrame], root: str | Path, stage: str
                 ) -> None:
    """Write a stage's ledger and accounting tables into :data:`LEDGER_DIR`."""
    outputs.write_table(book[0], Path(root) / LEDGER_DIR / f"{stage}.parquet")
    outputs.write_table(book[1], Path(root) / LEDGER_DIR / f"{stage}_accounting.parquet")


def read(root: str | Path, name: str) -> pd.DataFrame:
    """Read a processed table by its :data:`FILES` name."""
    path = Path(root) / FILES[name]
    return pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)


def read_json(root: str | Path, name: str) -> dict[str, Any]:
    """Read a summary by its :data:`FILES` name."""
    return json.loads((Path(root) / FILES[name]).read_text(encoding="utf-8"))


def read_ledger(root: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """All stages' ledgers and accounting tables, concatenated."""
    folder = Path(root) / LEDGER_DIR
    parts = [(pd.read_parquet(p), pd.read_parquet(p.with_name(p.stem + "_accounting.parquet")))
             for p in sorted(folder.glob("*.parquet")) if not p.stem.endswith("_accounting")]
    return ledger.combine(parts)
