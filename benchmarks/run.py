"""Benchmark: the whole pipeline against the floor of one empty papermill run.

Run on demand (``make bench``); not part of the tests.  In a throw-away copy of the project
with the default demo region it measures, side by side in one run and interleaved:

- ``pipeline``: ``dvc repro --force`` (all five stages, what ``make report`` does once
  .venv and data/raw exist);
- ``floor``: one papermill run of an empty notebook with the same imports, in the same
  kernel (the irreducible cost of one stage);
- ``demo data``: generating the default demo region.

It prints medians and the ratio pipeline / floor (and per stage: pipeline / (5 x floor)).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
IMPORTS = ("import numpy, pandas, sklearn, statsmodels.api, seaborn, matplotlib.pyplot\n"
           "import analysis.pipeline.stages, analysis.publish.report")


def empty_notebook(path: Path) -> Path:
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "school-context", "display_name": "school-context",
                                 "language": "python"}
    params = new_code_cell("year = 2025")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, new_code_cell(IMPORTS)]
    nbformat.write(nb, path)
    return path


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "tests"))
    import papermill as pm

    from analysis.demo.synth import RegionSpec, generate_region, write_region
    from analysis.pipeline.nbrun import ensure_kernel
    from conftest import make_project

    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
           "DVC_NO_ANALYTICS": "1", "JUPYTER_PLATFORM_DIRS": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        root = make_project(tmp / "proj", None, git=True)
        data = []
        for i in range(args.repeat):
            out = tmp / f"raw{i}"
            data.append(timed(lambda: write_region(generate_region(RegionSpec()), out,
                                                   tmp / f"truth{i}")))
        shutil.copytree(tmp / "raw0", root / "data" / "raw", dirs_exist_ok=True)
        nb = empty_notebook(tmp / "empty.ipynb")
        kernel = ensure_kernel()

        def floor() -> None:
            pm.execute_notebook(str(nb), str(tmp / "empty_out.ipynb"), parameters={"year": 2025},
                                kernel_name=kernel, cwd=str(root), progress_bar=False)

        def pipeline() -> None:
            subprocess.run([str(BIN / "dvc"), "repro", "--force", "-q"], cwd=root, env=env,
                           check=True)

        floors, pipes = [], []
        for _ in range(args.repeat):
            floors.append(timed(floor))
            pipes.append(timed(pipeline))
    f, p, d = (statistics.median(x) for x in (floors, pipes, data))
    print(f"runs: {args.repeat} (interleaved); medians in seconds")
    print(f"  floor (one empty papermill run, same imports): {f:7.2f}   all: {_fmt(floors)}")
    print(f"  pipeline (dvc repro --force, 5 stages):        {p:7.2f}   all: {_fmt(pipes)}")
    print(f"  demo region generation (default size):         {d:7.2f}   all: {_fmt(data)}")
    print(f"  ratio pipeline / floor:        {p / f:5.1f}")
    print(f"  ratio pipeline / (5 x floor):  {p / (5 * f):5.2f}")
    return 0


def _fmt(xs: list[float]) -> str:
    return ", ".join(f"{x:.2f}" for x in xs)


if __name__ == "__main__":
    raise SystemExit(main())
