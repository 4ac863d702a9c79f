"""Benchmark: the regional run against its floor, and an experiment's incremental run.

Run on demand (``make bench``); not part of the tests.  In throw-away copies of the project
with the default demo region it measures, side by side and interleaved, ``--repeat`` times:

- ``floor``: what any five-stage papermill pipeline with these libraries pays -- five
  ``papermill`` runs of an empty notebook that imports numpy, pandas, scikit-learn,
  statsmodels, seaborn and matplotlib (each a process and a kernel, as a stage is), plus
  one ``jupyter nbconvert --to html``;
- ``pipeline``: ``dvc repro --force`` (the five stages, every municipal report and the
  downloads: what ``make report`` does once .venv and data/raw exist);
- ``regional only``: the same with ``report.municipal: false`` (the regional report and
  its downloads, no municipal reports);
- ``experiment``: ``dvc exp run -S clusters.k=K`` after a committed baseline (DVC re-runs
  the stages that read ``clusters``, and skips 01).

Then, once, each stage's wall time as a process (``python -m analysis.pipeline.nbrun``)
beside its computation alone (the stage function in a warm process), so the rest --
process start, imports, kernel, notebook I/O, HTML export -- shows per stage.

It prints medians (wall seconds, peak memory of the process tree) and the ratios the issue
sets targets for: pipeline / floor <= 0.6 and experiment / pipeline <= 0.5.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import yaml
from nbformat.v4 import new_code_cell, new_notebook

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import BIN, ROOT, Sample, env, fmt_s, gb, median, run  # noqa: E402

IMPORTS = "import numpy, pandas, sklearn, statsmodels.api, seaborn, matplotlib.pyplot"
STAGES = ("01_prepare", "02_context_clusters", "03_ses_link", "04_flags", "05_report")
COMPUTE = """
import sys, time, yaml
from pathlib import Path
from analysis.config import flatten
from analysis.context import stage as s02
from analysis.flags import stage as s04
from analysis.ingest import stage as s01
from analysis.models import stage as s03
from analysis.publish.data import load_report_data
p = yaml.safe_load(open("params.yaml", encoding="utf-8")); y = p["year"]
steps = {"01_prepare": s01.run, "02_context_clusters": s02.run, "03_ses_link": s03.run,
         "04_flags": s04.run}
for name, fn in steps.items():
    fn(".", p)  # warm: imports and first calls
for name, fn in steps.items():
    t = time.perf_counter(); fn(".", p); print(name, time.perf_counter() - t)
from analysis.publish import site
t = time.perf_counter()
d = load_report_data(year=y)
keys = [k for k in ("year", "min_n", "lang", "prepare", "index", "quality_groups", "clusters",
                    "similar", "ses_link", "multilevel", "flags", "report") if k in p]
site.write_site(d, flatten(p, keys), Path("/tmp/_bench_site"))
print("05_report (site only)", time.perf_counter() - t)
"""


def empty_notebook(path: Path) -> Path:
    """A notebook like a stage's: a parameters cell and the stages' imports, nothing else."""
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "school-context", "display_name": "school-context",
                                 "language": "python"}
    params = new_code_cell("year = 2025")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, new_code_cell(IMPORTS)]
    nbformat.write(nb, path)
    return path


def floor(tmp: Path, nb: Path) -> Sample:
    """Five papermill processes of the empty notebook, plus one nbconvert to HTML."""
    out = tmp / "empty_out.ipynb"
    parts = [run([BIN / "papermill", nb, out, "-k", "school-context", "--no-progress-bar"],
                 cwd=tmp) for _ in STAGES]
    parts.append(run([BIN / "jupyter", "nbconvert", "--to", "html", "--no-input", out,
                      "--output", tmp / "empty.html"], cwd=tmp))
    return Sample(sum(p.seconds for p in parts), max(p.peak_bytes for p in parts))


def project(dest: Path, municipal: bool) -> Path:
    from analysis.demo.synth import RegionSpec, generate_region
    from conftest import make_project

    demo = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))["demo"]
    spec = RegionSpec(**{**demo, "years": tuple(demo["years"])})  # as `make data`: students too
    root = make_project(dest, generate_region(spec), {"report": {"municipal": municipal}},
                        git=True)
    run([BIN / "dvc", "repro", "-q"], cwd=root)  # the baseline, committed with its lock
    subprocess.run(["git", "-c", "user.name=b", "-c", "user.email=b@b", "add", "-A"], cwd=root,
                   check=True, env=env())
    subprocess.run(["git", "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm",
                    "baseline"], cwd=root, check=True, env=env())
    return root


def stage_profile(root: Path) -> None:
    """Each stage as a process beside its computation alone."""
    walls = {}
    for stage in STAGES:
        extra = ["--publish"] if stage == STAGES[-1] else []
        walls[stage] = run([BIN / "python", "-m", "analysis.pipeline.nbrun", stage,
                            "--report-dir", "reports/2025", *extra], cwd=root).seconds
    out = subprocess.run([BIN / "python", "-c", COMPUTE], cwd=root, env=env(), check=True,
                         capture_output=True, text=True).stdout
    compute = {}
    for line in out.splitlines():
        name, _, value = line.rpartition(" ")
        compute[name.split(" ")[0]] = float(value)
    print("per stage (one run): process wall | computation alone | the rest")
    for stage in STAGES:
        c = compute.get(stage, float("nan"))
        print(f"  {stage:22s} {walls[stage]:6.2f} s | {c:6.2f} s | {walls[stage] - c:6.2f} s")
    print(f"  {'all':22s} {sum(walls.values()):6.2f} s | {sum(compute.values()):6.2f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "tests"))
    from analysis.pipeline.nbrun import ensure_kernel

    ensure_kernel()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        full, regional = project(tmp / "full", True), project(tmp / "regional", False)
        nb = empty_notebook(tmp / "empty.ipynb")
        rows: dict[str, list[Sample]] = {"floor": [], "pipeline": [], "regional only": [],
                                         "experiment": []}
        for i in range(args.repeat):
            rows["floor"].append(floor(tmp, nb))
            rows["pipeline"].append(run([BIN / "dvc", "repro", "--force", "-q"], cwd=full))
            rows["regional only"].append(run([BIN / "dvc", "repro", "--force", "-q"],
                                             cwd=regional))
            k = 4 + i % 2  # never the baseline's choice twice in a row
            rows["experiment"].append(run([BIN / "dvc", "exp", "run", "-q", "-S",
                                           f"clusters.k={k}"], cwd=full))
            subprocess.run([BIN / "dvc", "exp", "remove", "--all-commits", "-q"], cwd=full,
                           env=env(), check=False)
            subprocess.run(["git", "checkout", "-q", "--", "."], cwd=full, check=True)
        med = {name: median(samples) for name, samples in rows.items()}
        print(f"runs: {args.repeat} (interleaved); medians: wall seconds, peak memory of the "
              "process tree")
        for name, m in med.items():
            print(f"  {name:14s} {m.seconds:7.2f} s  {gb(m.peak_bytes):>9s}   "
                  f"all: {fmt_s(rows[name])}")
        f = med["floor"].seconds
        print(f"  ratio pipeline / floor:          {med['pipeline'].seconds / f:5.2f}"
              "   (target <= 0.60)")
        print(f"  ratio regional only / floor:     {med['regional only'].seconds / f:5.2f}")
        print(f"  ratio experiment / pipeline:     "
              f"{med['experiment'].seconds / med['pipeline'].seconds:5.2f}   (target <= 0.50)")
        print(f"  municipal reports beyond the regional run: "
              f"{med['pipeline'].seconds - med['regional only'].seconds:5.2f} s   "
              "(target <= 30 s)")
        stage_profile(full)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
