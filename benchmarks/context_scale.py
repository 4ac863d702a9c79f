"""Benchmark: stage 02 (index, quality groups, clusters with bootstrap stability, similar
schools) at national scale.

Run on demand (``make bench``); not part of the tests.  Target (issue "Context"): 40,000
schools, clusters chosen over ``clusters.k_range`` with 50 bootstrap resamples, and every
school's similar schools, in under 60 s and 2 GB peak memory on 2 cores.

The synthetic regions are generated and prepared once (stage 01, in a separate process:
the generator itself is not measured).  Then each size is timed in fresh processes,
interleaved, ``--repeat`` times: the wall time of :func:`analysis.context.stage.
context_stage` with the project's ``params.yaml`` (only ``year`` set), and the process's
peak resident memory (imports and tables included).  Medians are printed side by side with
the ratio to the demo size.  Like the pipeline's kernels, runs use one BLAS/OpenMP thread.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from analysis.pipeline.nbrun import THREAD_VARS

ROOT = Path(__file__).resolve().parents[1]
#: (label, municipalities, schools): the demo region and the national case.  The generator
#: allows 99 municipalities at most; stage 02 does not depend on their number.
SIZES = (("demo", 30, 1000), ("national", 99, 40000))
YEARS = (2024, 2025)


def make_data(out: Path, n_municipalities: int, n_schools: int, seed: int = 1) -> None:
    """Generate a region and write stage 01's schools and school_year tables."""
    from analysis.config import load_yaml
    from analysis.demo.synth import RegionSpec, generate_region
    from analysis.ingest import io, prepare

    p = load_yaml(ROOT / "params.yaml")["prepare"]
    region = generate_region(RegionSpec(n_municipalities=n_municipalities,
                                        n_schools=n_schools, years=YEARS, seed=seed))
    schools = io.from_frame(region.schools, "schools")
    results = io.from_frame(region.results, "results")
    prep = prepare.prepare(schools, results, year=YEARS[-1],
                           procedures=p["quality_procedures"], subjects=p["quality_subjects"],
                           grades=p["quality_grades"], formula=p["quality_formula"],
                           validated=True)
    out.mkdir(parents=True, exist_ok=True)
    prep.schools.to_parquet(out / "schools.parquet")
    prep.school_year.to_parquet(out / "school_year.parquet")


def run_once(data: Path) -> dict:
    """Stage 02 in memory on ``data``; wall seconds and peak RSS (MB) of this process."""
    import pandas as pd

    from analysis.config import load_yaml
    from analysis.context.stage import context_stage

    params = load_yaml(ROOT / "params.yaml")
    schools = pd.read_parquet(data / "schools.parquet")
    school_year = pd.read_parquet(data / "school_year.parquet")
    start = time.perf_counter()
    res = context_stage(schools, school_year, year=YEARS[-1], min_n=params["min_n"],
                        index=params["index"], quality_groups=params["quality_groups"],
                        clusters=params["clusters"], similar=params["similar"])
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": seconds, "peak_mb": peak, "schools": len(res.clusters),
            "k": res.model.k_, "n_boot": params["clusters"]["n_boot"],
            "n_ranked": res.summary["similar"]["n_ranked"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--make-data", nargs=3, metavar=("OUT", "MUNICIPALITIES", "SCHOOLS"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--run", metavar="DATA", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.make_data:
        make_data(Path(args.make_data[0]), int(args.make_data[1]), int(args.make_data[2]))
        return 0
    if args.run:
        print(json.dumps(run_once(Path(args.run))))
        return 0
    # the pipeline's kernels run with one BLAS/OpenMP thread (identical sums on any machine)
    env = {**os.environ, **dict.fromkeys(THREAD_VARS, "1")}
    runs: dict[str, list[dict]] = {label: [] for label, _, _ in SIZES}
    with tempfile.TemporaryDirectory() as tmp:
        for label, munis, schools in SIZES:
            subprocess.run([sys.executable, __file__, "--make-data", str(Path(tmp) / label),
                            str(munis), str(schools)], check=True, env=env)
        for _ in range(args.repeat):
            for label, _, _ in SIZES:
                out = subprocess.run([sys.executable, __file__, "--run", str(Path(tmp) / label)],
                                     check=True, env=env, capture_output=True, text=True).stdout
                runs[label].append(json.loads(out.strip().splitlines()[-1]))
    print(f"stage 02 in memory; {args.repeat} interleaved runs per size; medians")
    base = None
    for label, _, _ in SIZES:
        r = runs[label]
        sec = statistics.median(x["seconds"] for x in r)
        mb = statistics.median(x["peak_mb"] for x in r)
        base = base or sec
        first = r[0]
        each = ", ".join(f"{x['seconds']:.2f}" for x in r)
        print(f"  {label:9s} {first['schools']:6d} schools  k={first['k']}  "
              f"boot={first['n_boot']}  ranked={first['n_ranked']:6d}  "
              f"time {sec:6.2f} s (all: {each})  "
              f"peak {mb:6.0f} MB  ratio {sec / base:5.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
