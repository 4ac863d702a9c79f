"""Run the whole study on an analyst's folder, outside DVC.

Usage (what ``make report DATA=<folder> YEAR=<year>`` calls)::

    python -m analysis.pipeline.run --data <folder> [--year 2025]
    python -m analysis.pipeline.run --data <folder> --check     # only read and validate (seconds)

``<folder>`` holds the raw tables (``schools.*``, ``results.*``: CSV, XLSX or Parquet),
optionally ``mapping.yaml`` (the analyst's headers -> canonical names) and ``params.yaml``
with overrides of the project's parameters (only the keys to change, in the same sections,
e.g. ``prepare: {quality_grades: [9]}``; a key's value replaces the project's whole).
``--year`` overrides ``year``.

The five stage notebooks run in order, with the project's ``params.yaml`` deep-merged
with the folder's overrides.  Each DATA run has its own folders, named from the data
folder and the year, so it never touches the DVC pipeline's ``reports/<year>/``:

- ``reports/<folder name>-<year>/``: ``report.html``, ``metrics.json``,
  ``validation.html`` and the executed notebooks, published whole when every stage has
  succeeded (:mod:`analysis.publish.folders`);
- ``reports/failed/<folder name>-<year>/``: when a run fails, its note, validation page
  and the failing stage's notebook (the published folder is left as it was);
- ``.runs/<folder name>-<year>/``: the work folder (ignored by git) with the processed
  tables and the merged ``params.yaml`` the run used; ``data/raw`` in it links to the
  data folder.

``--check`` writes only ``reports/checks/<folder name>-<year>/validation.html``.  One run
at a time per folder: a second one stops (exit code 75) naming the first.  No tracked
file of the repository is changed; DVC is not involved (``dvc repro`` remains the way to
run the demo region and experiments).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from analysis.config import PROCESSED, load_yaml, merge, select, stage_param_keys
from analysis.outputs import write_text
from analysis.pipeline.nbrun import fix_threads, report_failure, run_stage
from analysis.publish.folders import RunLock, staged

WORK = Path(".runs")


def study_params(root: Path, data_dir: Path, year: int | None = None) -> dict[str, Any]:
    """The project's params.yaml, overridden by ``data_dir/params.yaml`` and ``year``.

    Unknown keys in the overrides are an error (a typo would otherwise be ignored).  Paths
    are relative to the run's work folder, where ``data/raw`` is the data folder: a mapping
    file named in the overrides is relative to the data folder.
    """
    params = load_yaml(root / "params.yaml")
    override_file = data_dir / "params.yaml"
    if override_file.exists():
        override = load_yaml(override_file)
        _check_known(params, override, str(override_file))
        params = merge(params, override)
    if year is not None:
        params["year"] = int(year)
    params["prepare"]["raw_dir"] = "data/raw"
    mapping = params["prepare"].get("mapping")
    if mapping and not Path(mapping).is_absolute():
        params["prepare"]["mapping"] = f"data/raw/{Path(mapping).as_posix()}"
    return params


def _check_known(base: Mapping[str, Any], override: Mapping[str, Any], where: str) -> None:
    from analysis.errors import InputError, Problem

    unknown = [k for k in override if k not in base]
    unknown += [f"{k}.{sub}" for k, v in override.items()
                if isinstance(v, Mapping) and isinstance(base.get(k), Mapping)
                for sub in v if sub not in base[k]]
    if unknown:
        raise InputError(Problem(where, ", ".join(unknown), "parameters that exist in the "
                                 "project's params.yaml (same sections and names)"))


def report_dir(root: Path, data_dir: Path, year: int) -> Path:
    """The report folder of a DATA run: ``reports/<data folder name>-<year>/``.

    Never ``reports/<year>/``, which belongs to the DVC pipeline (``make report``).
    """
    return root / "reports" / f"{data_dir.name}-{year}"


def _start(data_dir: str | Path, year: int | None, root: str | Path, *, check: bool = False
           ) -> tuple[Path, dict[str, Any], Path, Path]:
    """Resolve the run: project root, merged parameters, its work folder and its output
    folder (for ``check``, ``reports/checks/<name>-<year>/``).  Nothing is written yet."""
    from analysis.errors import InputError, Problem

    root, data_dir = Path(root).resolve(), Path(data_dir).resolve()
    if not data_dir.is_dir():
        raise InputError(Problem(str(data_dir), "", "a folder with your schools and results "
                                 "files (make report DATA=<folder>)"))
    params = study_params(root, data_dir, year)
    name = f"{data_dir.name}-{params['year']}"
    if check:
        return root, params, root / WORK / "checks" / name, root / "reports" / "checks" / name
    return root, params, root / WORK / name, report_dir(root, data_dir, params["year"])


def _prepare_work(root: Path, work: Path, data_dir: Path, params: dict[str, Any]) -> None:
    """A fresh work folder laid out like the project: ``params.yaml`` (merged), ``dvc.yaml``
    and ``data/raw`` as a link to the data folder (a copy where links are not allowed), so
    the notebooks see the same relative paths as in the DVC pipeline and no absolute path of
    the analyst's machine reaches the executed notebooks or the report."""
    from analysis.outputs import OutputError

    try:
        shutil.rmtree(work, ignore_errors=True)
        (work / "data").mkdir(parents=True)
        raw = work / "data" / "raw"
        try:
            raw.symlink_to(data_dir, target_is_directory=True)
        except OSError:
            shutil.copytree(data_dir, raw)
        (work / "params.yaml").write_text(yaml.safe_dump(params, allow_unicode=True,
                                                         sort_keys=False), encoding="utf-8")
        shutil.copyfile(root / "dvc.yaml", work / "dvc.yaml")
    except OSError as exc:
        raise OutputError("prepare the work folder", work, exc) from exc


def run_study(data_dir: str | Path, year: int | None = None, root: str | Path = ".") -> Path:
    """Run the five stages on ``data_dir``; return the path of the published HTML report.

    One run at a time per output folder (:class:`analysis.publish.folders.RunLock`); the report
    folder ``reports/<name>-<year>/`` is replaced only when every stage succeeded.
    """
    root, params, work, out_dir = _start(data_dir, year, root)
    dvc = load_yaml(root / "dvc.yaml")
    stages = list(dvc["stages"])
    with RunLock(out_dir):
        _prepare_work(root, work, Path(data_dir).resolve(), params)
        for stage in stages:
            print(f"Running stage '{stage}'", flush=True)
            start = time.perf_counter()
            run_stage(stage, report_dir=out_dir, root=root, cwd=work,
                      parameters=select(params, stage_param_keys(dvc, stage)),
                      publish_to=stage == stages[-1], lang=params["lang"])
            print(f"  done in {time.perf_counter() - start:.1f} s", flush=True)
    return out_dir / "report.html"


def check_data(data_dir: str | Path, year: int | None = None, root: str | Path = ".") -> dict:
    """Read and validate the folder only (stage 01's checks, no notebooks); return the log.

    Raises :class:`InputError` as the full run would.  The validation page goes to
    ``reports/checks/<name>-<year>/validation.html`` (never beside a published report).
    """
    from analysis.ingest.stage import run_prepare
    from analysis.pipeline.nbrun import validation_page

    root, params, work, out_dir = _start(data_dir, year, root, check=True)
    with RunLock(out_dir):
        _prepare_work(root, work, Path(data_dir).resolve(), params)
        try:
            run_prepare(work, year=params["year"], **params["prepare"])
        finally:
            if (work / PROCESSED / "validation.json").exists():
                with staged(out_dir) as folder:
                    write_text(folder / "validation.html",
                               validation_page(work / PROCESSED, params["lang"]))
    return load_yaml(work / PROCESSED / "validation.json")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.pipeline.run", description=__doc__,
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
    fix_threads()
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
        return report_failure(exc)
    print(f"Report: {html}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
