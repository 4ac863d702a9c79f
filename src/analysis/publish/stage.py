"""Stage 05: the report's data, ``metrics.json`` and the published site's files.

``notebooks/05_report.ipynb`` calls :func:`run` with a display function: it reads the
processed files (:func:`load_report_data`), displays the report's sections
(:mod:`analysis.publish.sections`; nbconvert renders them into ``report.html``,
:func:`analysis.pipeline.nbrun.export_html`), then writes ``metrics.json`` and the site
(downloads, municipal reports, index) with :func:`write_outputs`.
:func:`analysis.pipeline.flow.run_all` calls the same :func:`run` without a display
function.

At module level this module imports only pandas and the shared helpers;
:func:`write_outputs` imports the report's modules (matplotlib) when it runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from analysis.config import flatten
from analysis.files import FILES
from analysis.publish.data import ReportData, load_report_data

__all__ = ["PARAM_KEYS", "ReportData", "load_report_data", "run",
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


def run(root: str | Path, params: Mapping[str, Any],
        show: Callable[[str], Any] | None = None) -> ReportData:
    """Stage 05 with a params.yaml-shaped dict (the sections of :data:`PARAM_KEYS` it
    holds): read the report's data, hand each section of the report to ``show``, then write
    ``metrics.json`` and the site (:func:`write_outputs`).

    Parameters
    ----------
    root : str or Path
        The project (or work) folder the processed files are under.
    params : mapping
        ``params.yaml`` as parsed (other sections are ignored).
    show : callable, optional
        Called with each section's HTML, in order (:func:`analysis.publish.sections.
        report_sections`): the notebook displays them and nbconvert makes ``report.html``
        of them.  Without it (:func:`analysis.pipeline.flow.run_all`) no section is built.

    Returns
    -------
    ReportData
        The data the report shows.
    """
    flat = flatten(params, [k for k in PARAM_KEYS if k in params])
    data = load_report_data(root, year=params["year"])
    if show is not None:
        from analysis.publish.sections import report_sections  # matplotlib: only when shown

        for part in report_sections(data, flat, root):
            show(part)
    write_outputs(data, flat, root)
    return data
