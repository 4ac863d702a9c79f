"""The five stages in order, as plain functions (no notebooks): for tests and scripts.

Each stage's logic lives in its subpackage's ``stage`` module, with the same entry point
``run(root, params)``; this module only calls them in the order of ``dvc.yaml``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from analysis.context import stage as context_stage
from analysis.flags import stage as flags_stage
from analysis.ingest import stage as ingest_stage
from analysis.models import stage as models_stage
from analysis.publish import stage as publish_stage
from analysis.publish.data import ReportData

#: The stage modules, in the order of the stages of ``dvc.yaml``.
STAGES = (ingest_stage, context_stage, models_stage, flags_stage, publish_stage)
#: Their names in ``dvc.yaml``.
NAMES = ("01_prepare", "02_context_clusters", "03_ses_link", "04_flags", "05_report")


def run_slice(root: str | Path, params: Mapping[str, Any], *, start: str = "01_prepare",
              stop: str = "05_report") -> Any:
    """Stages ``start`` to ``stop`` (names of :data:`NAMES`, both included), in order.

    A test of one stage stops there (the report's municipal pages are not built for a test
    of the flags), and one that varies a later stage's parameters runs the earlier stages
    once and starts after them.

    Returns
    -------
    What the last stage's ``run`` returns (e.g. :class:`analysis.flags.stage.FlagsResult`).
    """
    first, last = NAMES.index(start), NAMES.index(stop)
    if first > last:
        raise ValueError(f"stage {start} comes after {stop}")
    out = None
    for module in STAGES[first:last + 1]:
        out = module.run(root, params)
    return out


def run_all(root: str | Path, params: Mapping[str, Any]) -> ReportData:
    """Stages 01-04 with a ``params.yaml``-shaped dict (no notebooks), then the report's
    data, ``metrics.json`` and the published site's files (downloads, municipal reports,
    index: :func:`analysis.publish.site.write_site`): the pipeline's logic in one call.

    Parameters
    ----------
    root : str or Path
        The project (or work) folder: ``data/raw`` under it (or ``prepare.raw_dir``) and
        the processed files written under ``data/processed``.
    params : mapping
        ``params.yaml`` as parsed; each stage reads the sections it uses.

    Returns
    -------
    ReportData
        What the report shows (:func:`analysis.publish.stage.run`).
    """
    return run_slice(root, params)
