"""Stage 03 on the processed files: the link between family social status and results.

:func:`run_ses_link` is what ``notebooks/03_ses_link.ipynb`` calls: it reads the files of
stages 01 and 02, runs :func:`analysis.models.link.ses_link_stage` and writes the outputs
of ``03_ses_link`` in ``dvc.yaml`` (:data:`analysis.files.FILES`).  :func:`run` is the
same with a params.yaml-shaped dict.

At module level this module imports only the shared helpers; :func:`run_ses_link` imports
the models (statsmodels) when it runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from analysis import files

if TYPE_CHECKING:
    from analysis.models import link

#: The ``dvc.yaml`` stage this module runs (its ledger's name).
STAGE = "03_ses_link"


def run_ses_link(root: str | Path = ".", *, year: int, min_n: int,
                 ses_link: Mapping[str, Any], multilevel: Mapping[str, Any],
                 quality_procedures: Sequence[str], quality_subjects: Sequence[str],
                 quality_grades: Sequence[int], quality_formula: str = "good_share"
                 ) -> link.SesLinkResult:
    """Stage 03 on the processed files: :func:`analysis.models.link.ses_link_stage`, then
    write the gradient sample (with each school's expected quality and residual), the one
    table of estimates, the curve and component points for the figures, the ledger and the
    summary ``ses_link.json``.

    Fewer than ``ses_link.min_schools`` schools, or a social or quality index with no
    variation among them, stop the run with an :class:`InputError` that counts the schools
    left out by reason (:func:`analysis.models.sample.check_sample`).
    """
    from analysis.models import link

    root = Path(root)
    res = link.ses_link_stage(
        files.read(root, "schools"), files.read(root, "social_index"),
        files.read(root, "school_year"), files.read(root, "results"),
        files.read(root, "students"), files.read(root, "cluster_terms"), year=year,
        min_n=min_n, ses_link=ses_link, multilevel=multilevel, procedures=quality_procedures,
        subjects=quality_subjects, grades=quality_grades, formula=quality_formula)
    files.write(res.sample, root, "ses_sample")
    files.write(res.estimates, root, "estimates")
    files.write(res.curve, root, "ses_curve")
    files.write(res.component_points, root, "component_points")
    files.write(res.sample[["school_id", "social_index", "quality_index", "fitted"]], root,
                "gradient_points")
    files.write_ledger(res.ledger, root, STAGE)
    files.write_json(res.summary, root, "ses_link_summary")
    return res


def run(root: str | Path, params: Mapping[str, Any]) -> link.SesLinkResult:
    """Stage 03 with a params.yaml-shaped dict: ``year``, ``min_n``, the ``ses_link`` and
    ``multilevel`` sections and the quality index's keys of ``prepare``.

    Parameters
    ----------
    root : str or Path
        The project (or work) folder the processed files are under.
    params : mapping
        ``params.yaml`` as parsed (other sections are ignored).

    Returns
    -------
    SesLinkResult
        What :func:`run_ses_link` returns.
    """
    prep = params["prepare"]
    return run_ses_link(root, year=params["year"], min_n=params["min_n"],
                        ses_link=params["ses_link"], multilevel=params["multilevel"],
                        quality_procedures=prep["quality_procedures"],
                        quality_subjects=prep["quality_subjects"],
                        quality_grades=prep["quality_grades"],
                        quality_formula=prep["quality_formula"])
