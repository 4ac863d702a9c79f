"""Stage 01 on the processed files: read the analyst's files, validate, tidy, write.

:func:`run_prepare` is what ``notebooks/01_prepare.ipynb`` calls; its keyword arguments
are the notebook's parameters (``year`` and the ``prepare`` section of params.yaml), and
every file it writes is an ``outs`` entry of ``01_prepare`` in ``dvc.yaml``
(:data:`analysis.files.FILES`).  :func:`run` is the same with a params.yaml-shaped dict.

This stage's kernel imports neither scikit-learn nor statsmodels nor matplotlib: at module
level this module imports only pandas and the shared helpers, and :func:`run_prepare`
imports the readers and validation when it runs.  Import time is most of a regional
stage's cost (docs/benchmarks.md); ``benchmarks/regional.py`` measures it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from analysis import files
from analysis.errors import InputError

if TYPE_CHECKING:
    from analysis.ingest import prepare

#: The ``dvc.yaml`` stage this module runs (its ledger's name).
STAGE = "01_prepare"


def run_prepare(root: str | Path = ".", *, year: int, raw_dir: str, mapping: str | None = None,
                sheet: str | int | None = None, header_row: int | None = None,
                quality_procedures: Sequence[str], quality_subjects: Sequence[str],
                quality_grades: Sequence[int], quality_formula: str = "good_share"
                ) -> prepare.Prepared:
    """Read ``raw_dir`` (through ``mapping``), validate, tidy, compute the quality index.

    Whether the input passes or not, the validation log (files read, repairs, warnings,
    errors) is written to ``data/processed/validation.json``; then an :class:`InputError`
    is raised again.  The page is rendered from it when the run publishes.
    """
    from analysis.ingest import io, prepare, validate
    from analysis.ingest.readers import ReadOptions

    root = Path(root)
    raw = root / raw_dir  # an absolute path stays as it is
    mapping_path = None if mapping is None else root / mapping
    reads: list = []
    repairs: list[str] = []
    warnings: list[str] = []
    try:
        tables = io.read_tables(
            raw, year=year, options=ReadOptions(sheet=sheet, header_row=header_row),
            mapping=io.find_mapping(raw, mapping_path), reports=reads, repairs=repairs,
            warnings=warnings)
        students = io.read_tables(
            raw, ("students",), required=False,
            options=ReadOptions(sheet=sheet, header_row=header_row),
            mapping=io.find_mapping(raw, mapping_path), reports=reads, repairs=repairs,
            warnings=warnings)["students"]
        out = prepare.prepare(tables["schools"], tables["results"], year=year,
                              procedures=quality_procedures, subjects=quality_subjects,
                              grades=quality_grades, formula=quality_formula, validated=True)
    except InputError as exc:
        write_validation(root, validate.to_json(exc, reads, repairs=repairs, warnings=warnings))
        raise
    write_validation(root, validate.to_json(
        validate.ValidationResult(out.schools, out.results), reads, repairs=repairs,
        warnings=warnings))
    files.write(out.schools, root, "schools")
    files.write(out.results, root, "results")
    files.write(out.school_year, root, "school_year")
    files.write(prepare.tidy_students(students), root, "students")
    files.write_ledger((out.ledger, out.accounting), root, STAGE)
    return out


def write_validation(root: str | Path, doc: Mapping[str, Any]) -> None:
    """The validation log as JSON (``data/processed/validation.json``).

    The page (``validation.html``) is rendered from it when the run publishes its report
    folder, or its failure note (:mod:`analysis.pipeline.nbrun`).
    """
    files.write_json(doc, root, "validation")


def run(root: str | Path, params: Mapping[str, Any]) -> prepare.Prepared:
    """Stage 01 with a params.yaml-shaped dict: ``year`` and the ``prepare`` section.

    Parameters
    ----------
    root : str or Path
        The project (or work) folder the relative paths start from.
    params : mapping
        ``params.yaml`` as parsed (other sections are ignored).

    Returns
    -------
    Prepared
        What :func:`run_prepare` returns.
    """
    return run_prepare(root, year=params["year"], **params["prepare"])
