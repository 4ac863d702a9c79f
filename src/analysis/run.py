"""Run the whole study on an analyst's folder, outside DVC.

Usage (what ``make report DATA=<folder> YEAR=<year>`` calls)::

    python -m analysis.run --data <folder> [--year 2025]
    python -m analysis.run --data <folder> --check     # only read and validate (seconds)

``<folder>`` holds the raw tables (``schools.*``, ``results.*``: CSV, XLSX or Parquet),
optionally ``mapping.yaml`` (the analyst's headers -> canonical names) and ``params.yaml``
with overrides of the project's parameters (only the keys to change, in the same sections,
e.g. ``prepare: {quality_grades: [9]}``; a key's value replaces the project's whole).  ``--year`` overrides ``year``.

The five stage notebooks run in order, with the project's ``params.yaml`` deep-merged
with the folder's overrides.  Outputs:

- ``reports/<year>/report.html``, ``reports/<year>/metrics.json``,
  ``reports/<year>/validation.html`` (also when the input fails) and the executed
  notebooks in ``reports/<year>/notebooks/``;
- the processed tables in a work folder ``.runs/<folder name>-<year>/`` (ignored by git),
  with the merged ``params.yaml`` the run used.

No tracked file of the repository is changed; DVC is not involved (``dvc repro`` remains
the way to run the demo region and experiments).
"""

from __future__ import annotations

import argparse
import copy
import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from .config import flatten, load_yaml, stage_param_keys
from .nbrun import export_html, report_failure, run_notebook

WORK = Path(".runs")


def merge_params(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``override`` applied: sections merge key by key, one level deep.

    A value inside a section replaces the project's value whole, so an override of
    ``index.indicators`` lists exactly the indicators to use.
    """
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = {**out[key], **copy.deepcopy(dict(value))}
        else:
            out[key] = copy.deepcopy(value)
    return out


def study_params(root: Path, data_dir: Path, year: int | None = None) -> dict[str, Any]:
    """The project's params.yaml, overridden by ``data_dir/params.yaml`` and ``year``.

    Unknown keys in the overrides are an error (a typo would otherwise be ignored).
    """
    params = load_yaml(root / "params.yaml")
    override_file = data_dir / "params.yaml"
    if override_file.exists():
        override = load_yaml(override_file)
        _check_known(params, override, str(override_file))
        params = merge_params(params, override)
    if year is not None:
        params["year"] = int(year)
    params["prepare"]["raw_dir"] = str(data_dir.resolve())
    mapping = params["prepare"].get("mapping")
    if mapping and not Path(mapping).is_absolute():
        params["prepare"]["mapping"] = str((data_dir / mapping).resolve())
    return params


def _check_known(base: Mapping[str, Any], override: Mapping[str, Any], where: str) -> None:
    from .errors import InputError, Problem

    unknown = [k for k in override if k not in base]
    unknown += [f"{k}.{sub}" for k, v in override.items()
                if isinstance(v, Mapping) and isinstance(base.get(k), Mapping)
                for sub in v if sub not in base[k]]
    if unknown:
        raise InputError(Problem(where, ", ".join(unknown), "parameters that exist in the "
                                 "project's params.yaml (same sections and names)"))


def _start(data_dir: str | Path, year: int | None, root: str | Path
           ) -> tuple[Path, dict[str, Any], Path, Path]:
    """Resolve the run: project root, merged parameters, a fresh work folder holding the
    run's record (merged params.yaml and the dvc.yaml it follows), and the output folder."""
    from .errors import InputError, Problem

    root, data_dir = Path(root).resolve(), Path(data_dir).resolve()
    if not data_dir.is_dir():
        raise InputError(Problem(str(data_dir), "", "a folder with your schools and results "
                                 "files (make report DATA=<folder>)"))
    params = study_params(root, data_dir, year)
    work = root / WORK / f"{data_dir.name}-{params['year']}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    (work / "params.yaml").write_text(yaml.safe_dump(params, allow_unicode=True,
                                                     sort_keys=False), encoding="utf-8")
    shutil.copyfile(root / "dvc.yaml", work / "dvc.yaml")
    return root, params, work, root / "reports" / str(params["year"])


def _publish_validation(work: Path, out_dir: Path) -> None:
    """Copy the validation page to the reports, whether the input passed or not."""
    page = work / "reports" / out_dir.name / "validation.html"
    if page.exists():
        out_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(page, out_dir / "validation.html")


def run_study(data_dir: str | Path, year: int | None = None, root: str | Path = ".") -> Path:
    """Run the five stages on ``data_dir``; return the path of the HTML report."""
    root, params, work, out_dir = _start(data_dir, year, root)
    dvc = load_yaml(root / "dvc.yaml")
    try:
        for stage in dvc["stages"]:
            print(f"Running stage '{stage}'", flush=True)
            try:
                run_notebook(stage, root=root, cwd=work,
                             output=out_dir / "notebooks" / f"{stage}.ipynb",
                             parameters=flatten(params, stage_param_keys(dvc, stage)))
            except Exception as exc:
                exc.add_note(f"stage {stage}")
                raise
    finally:
        _publish_validation(work, out_dir)
    html = export_html(out_dir / "notebooks" / "05_report.ipynb", out_dir / "report.html",
                       lang=params["lang"])
    shutil.copyfile(work / "reports" / "metrics.json", out_dir / "metrics.json")
    return html


def check_data(data_dir: str | Path, year: int | None = None, root: str | Path = ".") -> dict:
    """Read and validate the folder only (stage 01's checks, no notebooks); return the log.

    Raises :class:`InputError` as the full run would; writes nothing outside the work
    folder and ``reports/<year>/validation.html``.
    """
    from .stages import run_prepare

    _, params, work, out_dir = _start(data_dir, year, root)
    try:
        run_prepare(work, year=params["year"], lang=params["lang"], **params["prepare"])
    finally:
        _publish_validation(work, out_dir)
    return load_yaml(work / "data" / "processed" / "validation.json")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="folder with your raw files")
    parser.add_argument("--year", type=int, help="reporting year (default: params.yaml)")
    parser.add_argument("--root", default=".", help="project root (default: current folder)")
    parser.add_argument("--check", action="store_true",
                        help="only read and validate the files (fast; no report)")
    parser.add_argument("--traceback", action="store_true",
                        help="show the Python traceback of a failure")
    args = parser.parse_args(argv)
    os.environ.setdefault("JUPYTER_PLATFORM_DIRS", "1")
    try:
        if args.check:
            log = check_data(args.data, args.year, args.root)
            for kind in ("repairs", "warnings"):
                for line in log[kind]:
                    print(f"{kind[:-1]}: {line}")
            print(f"The input passes the checks ({len(log['files'])} files).")
            return 0
        html = run_study(args.data, args.year, args.root)
    except Exception as exc:  # noqa: BLE001 -- a human message, see nbrun.report_failure
        if args.traceback:
            raise
        stage = next((n.removeprefix("stage ") for n in getattr(exc, "__notes__", [])
                      if n.startswith("stage ")), "setup")
        return report_failure(stage, exc)
    print(f"Report: {html}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
