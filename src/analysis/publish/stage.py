"""Stage 05: the report's data, ``metrics.json`` and the published site's files.

``notebooks/05_report.ipynb`` reads the processed files with :func:`load_report_data`,
shows the report's sections (rendered to ``report.html`` by
:func:`analysis.pipeline.nbrun.export_html`) and, in its last cell, writes
``metrics.json`` and the site (downloads, municipal reports, index) with
:func:`write_outputs`.  :func:`run_report` does the same without the notebook: the data,
then the files; :func:`run` is the same with a params.yaml-shaped dict.

At module level this module imports only pandas and the shared helpers;
:func:`write_outputs` imports the report's modules (matplotlib) when it runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from analysis.config import flatten
from analysis.files import FILES
from analysis.publish.data import ReportData, load_report_data

__all__ = ["PARAM_KEYS", "ReportData", "load_report_data", "run", "run_report",
           "write_outputs"]

#: The params.yaml keys the report receives (the ``params:`` of ``05_report`` in dvc.yaml).
PARAM_KEYS = ("year", "min_n", "lang", "prepare", "index", "quality_groups", "clusters",
              "similar", "ses_link", "multilevel", "flags", "report")


def write_outputs(data: ReportData, params: Mapping[str, Any], root: str | Path = "."
                  ) -> list[Path]:
    """Write ``metrics.json`` and the published site's files (downloads, municipal reports,
    index: :func:`analysis.publish.site.write_site`) under ``root``.

    Parameters
    ----------
    data : ReportData
        What :func:`load_report_data` read.
    params : mapping
        The report's parameters, flattened as the notebook receives them
        (:func:`analysis.config.flatten`: ``report_top_n``, ``flags_z``, ...).
    root : str or Path
        The project (or work) folder the processed files are under.

    Returns
    -------
    list of Path
        The site's files, sorted (what :func:`analysis.publish.site.write_site` wrote).
    """
    from analysis.publish import report, site

    root = Path(root)
    report.write_metrics(root / FILES["metrics"], report.build_metrics(data, params))
    return site.write_site(data, params, root / FILES["site"])


def run_report(root: str | Path = ".", *, year: int, params: Mapping[str, Any]
               ) -> ReportData:
    """Stage 05 without the notebook: read the report's data, write ``metrics.json`` and
    the site (:func:`write_outputs`); the HTML report itself is the notebook's.

    Parameters
    ----------
    root : str or Path
        The project (or work) folder the processed files are under.
    year : int
        The reporting year.
    params : mapping
        The report's flattened parameters (see :func:`write_outputs`).

    Returns
    -------
    ReportData
        The data the report shows.
    """
    data = load_report_data(root, year=year)
    write_outputs(data, params, root)
    return data


def run(root: str | Path, params: Mapping[str, Any]) -> ReportData:
    """Stage 05 with a params.yaml-shaped dict: the sections of :data:`PARAM_KEYS` it holds,
    flattened as the notebook receives them.

    Parameters
    ----------
    root : str or Path
        The project (or work) folder the processed files are under.
    params : mapping
        ``params.yaml`` as parsed.

    Returns
    -------
    ReportData
        What :func:`run_report` returns.
    """
    flat = flatten(params, [k for k in PARAM_KEYS if k in params])
    return run_report(root, year=params["year"], params=flat)
