"""Benchmark: generating and writing the synthetic national dataset.

Run on demand (``python benchmarks/generator.py``); not part of the tests.  Each run is one
``python -m analysis.demo.synth`` in a subprocess (a fresh interpreter, as ``make`` and DVC
run it) writing into a temporary folder; its wall time is measured around the subprocess and
its peak resident memory is the child's own ``ru_maxrss`` (from ``os.wait4``, which, unlike
``getrusage(RUSAGE_CHILDREN)``, is not the maximum over all earlier children).

- default: the national dataset (40,000 schools, 2,300 municipalities, 85 regions, years
  2023-2025, all procedures, no students table), ``--repeat`` times (default 3); prints the
  medians and their ratio to the targets (30 s, 2 GB);
- ``--sizes``: the same at 5k, 10k, 20k and 40k schools (municipalities = schools / 17.4,
  regions = min(85, municipalities / 3)), to see how time and memory scale.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import child  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 30.0
TARGET_BYTES = 2 * 1024**3
NATIONAL = (40_000, 2_300, 85)
SIZES = (5_000, 10_000, 20_000, 40_000)
SCHOOLS_PER_MUNICIPALITY = 17.4
MAX_REGIONS = 85
MIN_MUNICIPALITIES_PER_REGION = 3


def run_once(n_schools: int, n_municipalities: int, n_regions: int, seed: int, work: Path
             ) -> tuple[float, int]:
    """Generate and write one dataset in a subprocess.

    Returns
    -------
    seconds : float
        Wall time of the subprocess (interpreter start-up and imports included).
    peak : int
        The subprocess's peak resident set size in bytes.
    """
    out = work / "run"
    cmd = [sys.executable, "-m", "analysis.demo.synth", "--out", str(out / "raw"),
           "--truth", str(out / "truth"), "--n-schools", str(n_schools),
           "--n-municipalities", str(n_municipalities), "--n-regions", str(n_regions),
           "--seed", str(seed), "--years", "2023", "2024", "2025"]
    env = {**os.environ, "PYTHONHASHSEED": "0",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"),
                                                        os.environ.get("PYTHONPATH")]))}
    run = child(cmd, cwd=ROOT, environ=env)
    if run.code != 0:
        raise SystemExit(f"generator failed with exit code {run.code}: {' '.join(cmd)}")
    shutil.rmtree(out)
    return run.seconds, run.maxrss


def scaled(n_schools: int) -> tuple[int, int, int]:
    """(schools, municipalities, regions) of a national-like dataset of ``n_schools``."""
    n_municipalities = round(n_schools / SCHOOLS_PER_MUNICIPALITY)
    return (n_schools, n_municipalities,
            min(MAX_REGIONS, n_municipalities // MIN_MUNICIPALITIES_PER_REGION))


def measure(size: tuple[int, int, int], repeat: int, seed: int, work: Path
            ) -> tuple[list[float], list[int]]:
    """Wall times and peak memory of ``repeat`` runs at ``size``."""
    times, peaks = [], []
    for _ in range(repeat):
        seconds, peak = run_once(*size, seed, work)
        times.append(seconds)
        peaks.append(peak)
    return times, peaks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="runs per size (default 3)")
    parser.add_argument("--seed", type=int, default=20250)
    parser.add_argument("--sizes", action="store_true",
                        help="also time 5k, 10k, 20k and 40k schools")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        times, peaks = measure(NATIONAL, args.repeat, args.seed, work)
        t, m = statistics.median(times), statistics.median(peaks)
        print(f"national dataset: {NATIONAL[0]} schools, {NATIONAL[1]} municipalities, "
              f"{NATIONAL[2]} regions, 3 years; {args.repeat} runs, medians")
        print(f"  wall time:     {t:7.2f} s   all: {_fmt(times)}")
        print(f"  peak RSS:      {m / 1024**3:7.2f} GB  all: {_fmt([p / 1024**3 for p in peaks])}")
        print(f"  time / target ({TARGET_SECONDS:.0f} s):   {t / TARGET_SECONDS:5.2f}")
        print(f"  memory / target (2 GB): {m / TARGET_BYTES:5.2f}")
        if args.sizes:
            print("by size (medians):")
            print("  schools  municipalities  regions   wall s   peak GB   s per 1k schools")
            for n in SIZES:
                size = scaled(n)
                times, peaks = measure(size, args.repeat, args.seed, work)
                t, m = statistics.median(times), statistics.median(peaks)
                print(f"  {size[0]:7d}  {size[1]:14d}  {size[2]:7d}  {t:7.2f}  "
                      f"{m / 1024**3:8.2f}   {t / n * 1000:8.3f}")
    return 0


def _fmt(xs: list[float]) -> str:
    return ", ".join(f"{x:.2f}" for x in xs)


if __name__ == "__main__":
    raise SystemExit(main())
