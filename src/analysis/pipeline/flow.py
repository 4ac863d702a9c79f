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
    for module in STAGES[:-1]:
        module.run(root, params)
    return publish_stage.run(root, params)
