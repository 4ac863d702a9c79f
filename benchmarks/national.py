"""Benchmark: the national run -- every stage's growth from 5,000 to 40,000 schools.

Run on demand (``make bench``); not part of the tests.  For each size (default 5k, 10k,
20k and 40k schools; municipalities and regions in the national proportions: 40,000
schools in 2,300 municipalities of 85 regions) it generates the synthetic data (three
years, all procedures, no students table) and runs the whole study on it as an analyst
would, ``python -m analysis.pipeline.run --data <folder>`` (five notebooks, the national
report, downloads; ``--municipal`` adds every municipal report).  It prints per size:
generation time and peak memory, the run's wall time and the peak memory of its process
tree (kernels included), and each stage's time; then each stage's fitted growth exponent b
of ``time = a * n^b`` (least squares on the logs; b <= 1.1 is linear up to the constant
costs, ~2 would be quadratic).  Medians of ``--repeat`` runs at the largest size.

Targets (issue "Speed and scale"): generation <= 30 s and <= 2 GB; the run <= 60 s and
<= 2 GB at 40,000 schools; every stage at most n log n.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import BIN, ROOT, Sample, gb, median, run  # noqa: E402

STAGES = ("01_prepare", "02_context_clusters", "03_ses_link", "04_flags", "05_report")
SCHOOLS_PER_MUNICIPALITY = 40_000 / 2_300
REGIONS = 85


def shape(n: int) -> tuple[int, int]:
    """Municipalities and regions for ``n`` schools, in the national proportions."""
    munis = max(2, round(n / SCHOOLS_PER_MUNICIPALITY))
    return munis, max(1, min(REGIONS, munis // 3))


def generate(n: int, out: Path, params: Path) -> Sample:
    munis, regions = shape(n)
    return run([BIN / "python", "-m", "analysis.demo.synth", "--params", params, "--out", out,
                "--truth", out.parent / f"{out.name}_truth", "--n-schools", n,
                "--n-municipalities", munis, "--n-regions", regions])


def study(data: Path, work: Path) -> tuple[Sample, dict[str, float]]:
    """The whole run on ``data`` in a scratch copy of the project; each stage's seconds."""
    sample = run([BIN / "python", "-m", "analysis.pipeline.run", "--data", data], cwd=work)
    names = re.findall(r"Running stage '([^']+)'", sample.output)
    took = [float(x) for x in re.findall(r"done in ([0-9.]+) s", sample.output)]
    return sample, dict(zip(names, took, strict=True))


def scratch_project(dest: Path, municipal: bool) -> Path:
    """The project's pipeline files in ``dest`` (the code is the installed package)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import make_project

    return make_project(dest, None, {"report": {"municipal": municipal}})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 10000, 20000, 40000])
    parser.add_argument("--repeat", type=int, default=3, help="runs at the largest size")
    parser.add_argument("--municipal", action="store_true",
                        help="also every municipal report (2,300 at 40,000 schools)")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
        params["demo"]["write_students"] = False
        (tmp / "params.yaml").write_text(yaml.safe_dump(params, allow_unicode=True),
                                         encoding="utf-8")
        work = scratch_project(tmp / "proj", args.municipal)
        for n in args.sizes:
            data = tmp / f"n{n}"
            gen = generate(n, data, tmp / "params.yaml")
            repeat = args.repeat if n == max(args.sizes) else 1
            runs = [study(data, work) for _ in range(repeat)]
            s = median([r[0] for r in runs])
            stage = {k: float(np.median([r[1][k] for r in runs])) for k in STAGES}
            rows.append((n, gen, s, stage))
            munis, regions = shape(n)
            print(f"{n:6d} schools, {munis:5d} municipalities, {regions:3d} regions: "
                  f"generate {gen.seconds:5.1f} s {gb(gen.peak_bytes)}; run {s.seconds:5.1f} s "
                  f"{gb(s.peak_bytes)} (median of {repeat}); "
                  + " ".join(f"{k[:2]} {v:.1f}" for k, v in stage.items()), flush=True)
    if len(rows) >= 2:
        n = np.log([r[0] for r in rows])
        print("growth exponent b of time = a n^b (fitted over the sizes):")
        for k in STAGES:
            b = np.polyfit(n, np.log([r[3][k] for r in rows]), 1)[0]
            print(f"  {k:22s} b = {b:4.2f}")
        b = np.polyfit(n, np.log([r[2].seconds for r in rows]), 1)[0]
        print(f"  {'whole run':22s} b = {b:4.2f}")
        b = np.polyfit(n, np.log([r[1].seconds for r in rows]), 1)[0]
        print(f"  {'generation':22s} b = {b:4.2f}")
    last = rows[-1]
    print(f"largest size: run {last[2].seconds:.1f} s (target <= 60 s: ratio "
          f"{last[2].seconds / 60:.2f}), peak {gb(last[2].peak_bytes)} (target <= 2 GB: ratio "
          f"{last[2].peak_bytes / 2 / 1024**3:.2f}); generation {last[1].seconds:.1f} s, "
          f"{gb(last[1].peak_bytes)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
