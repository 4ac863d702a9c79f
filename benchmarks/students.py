"""Benchmark: student-level input at scale (national out of core; regional in memory).

Run on demand (not part of the tests)::

    .venv/bin/python benchmarks/students.py                  # 20 million rows, 3 repeats
    .venv/bin/python benchmarks/students.py --rows 2000000 --repeat 1   # a quick look

Two targets:

- **national** (b): a synthetic national students table (``--rows``, default 20,000,000
  student x procedure rows, ~40,000 schools, one year; columns and types as the demo's
  ``students.parquet``) is written to a temporary folder chunk by chunk
  (``pyarrow.parquet.ParquetWriter``, one row group per ``--chunk-rows``, vectorised numpy),
  never held in memory whole.  It is aggregated to the ``results`` table by
  ``python -m analysis.ingest.aggregate`` in a fresh process (``--repeat`` times): median
  wall time and median peak RSS of that process (``os.wait4``: the child's own
  ``ru_maxrss``) against the **4 GB** target, the peak size of DuckDB's spill folder, and
  whether the output bytes are the same in every run.  Side by side, the same aggregation
  in pandas in memory (:func:`analysis.ingest.aggregate.aggregate_pandas` after
  ``pandas.read_parquet``), run ``--pandas-repeat`` times (default once) under an address
  space limit (``RLIMIT_AS``, ``--pandas-cap-gb``, default 8): "exceeded" if it dies.
- **regional** (a): the default demo region (``params.yaml`` ``demo``; about 900,000 student
  rows), each part in a fresh process, against the **2 GB** target: the DuckDB aggregation
  of its ``students.parquet``; stage 01's reading of the students table
  (:func:`analysis.ingest.io.read_tables` then :func:`analysis.ingest.prepare.tidy_students`,
  as :func:`analysis.ingest.stage.run_prepare` does); and stage 03's student-level part
  (the processed students table, the gradient's sample,
  :func:`analysis.models.students.student_frame` and
  :func:`~analysis.models.students.fit_student_models` with ``multilevel.student_*``), with
  one BLAS thread as the pipeline's kernels run.

Figures are medians; the temporary folder (with the national file) is deleted at the end.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
GB = 1024**3
#: Targets of the issue: peak RSS of the national aggregation and of the regional part.
NATIONAL_TARGET_GB, REGIONAL_TARGET_GB = 4.0, 2.0
#: The demo's ЕГЭ minimum thresholds (the national file is scored on the same scales).
MIN_SCORES = {"rus": 24, "math_profile": 27}
#: Cohorts: (procedure, grade, (subject 1, subject 2), share of students).
COHORTS = (("VPR", 4, ("math", "rus"), 0.15), ("VPR", 5, ("math", "rus"), 0.15),
           ("VPR", 6, ("math", "rus"), 0.15), ("VPR", 7, ("math", "rus"), 0.14),
           ("VPR", 8, ("math", "rus"), 0.14), ("OGE", 9, ("math", "rus"), 0.15),
           ("EGE", 11, ("math_profile", "rus"), 0.12))
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


# --- the national file ----------------------------------------------------------------------


def school_ids(n_schools: int, n_regions: int = 85) -> pa.Array:
    """``n_schools`` codes ``RRNNNN`` (region, number within it), as strings."""
    region = np.arange(n_schools) * n_regions // n_schools
    first = np.searchsorted(region, region)
    return pa.array([f"{r + 1:02d}{k + 1:04d}" for r, k in zip(region, np.arange(n_schools)
                                                               - first, strict=True)])


def pseudo_keys(ids: np.ndarray) -> pa.Array:
    """Unique pseudonymous keys: 12 hex digits of a bijective scramble of ``ids`` (< 2**48).

    Parameters
    ----------
    ids : ndarray of int64, shape (n,)

    Returns
    -------
    pyarrow string array, shape (n,)
    """
    x = (ids.astype(np.uint64) * np.uint64(0x9E3779B97F4B)) & np.uint64((1 << 48) - 1)
    x ^= x >> np.uint64(23)
    shifts = np.arange(44, -1, -4, dtype=np.uint64)
    chars = HEX[((x[:, None] >> shifts[None, :]) & np.uint64(15)).astype(np.intp)]
    return pa.array(np.ascontiguousarray(chars).view("S12").ravel()).cast(pa.string())


def write_national(path: Path, *, rows: int, n_schools: int, chunk_rows: int,
                   year: int = 2025, seed: int = 20250) -> dict[str, float]:
    """Write the national students table to ``path`` chunk by chunk; return its figures.

    Each student sits the two subjects of their cohort (:data:`COHORTS`), so the table has
    ``rows // 2`` students; schools have lognormal sizes.  The latent result is
    ``0.3 ses + 0.3 school_ses + u_school + a_student + e``; ВПР/ОГЭ give a primary score
    0..30 and a mark 2..5 by fixed cuts, ЕГЭ a score 0..100 and no mark.  About 5% of the
    students have no ``ses``.  Only per-school arrays (``n_schools``) and one chunk
    (``chunk_rows`` rows) are in memory at a time.

    Returns
    -------
    dict: ``rows``, ``students``, ``schools``, ``row_groups``, ``bytes``, ``seconds``.
    """
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    n_students = rows // 2
    weights = rng.lognormal(0.0, 0.8, n_schools)
    per_school = rng.multinomial(n_students, weights / weights.sum())
    school_of = np.repeat(np.arange(n_schools, dtype=np.int32), per_school)
    school_ses = rng.normal(0.0, 0.6, n_schools)
    school_u = rng.normal(0.0, 0.3, n_schools)
    ids = school_ids(n_schools)
    shares = np.array([c[3] for c in COHORTS])
    procs = pa.array([c[0] for c in COHORTS])
    grades = np.array([c[1] for c in COHORTS], dtype=np.int64)
    subjects = pa.array([s for c in COHORTS for s in c[2]])
    scored = np.array([c[0] == "EGE" for c in COHORTS])
    schema = pa.schema([("year", pa.int64()), ("school_id", pa.string()),
                        ("procedure", pa.string()), ("subject", pa.string()),
                        ("grade", pa.int64()), ("student_key", pa.string()),
                        ("score", pa.float64()), ("mark", pa.int64()), ("ses", pa.float64())])
    per_chunk = max(1, chunk_rows // 2)
    groups = 0
    with pq.ParquetWriter(path, schema) as writer:
        for lo in range(0, n_students, per_chunk):
            hi = min(lo + per_chunk, n_students)
            n = hi - lo
            school = school_of[lo:hi]
            cohort = rng.choice(len(COHORTS), n, p=shares / shares.sum())
            order = np.lexsort((cohort, school))  # as exports come: by school, then cohort
            school, cohort = school[order], cohort[order]
            ses = np.round(school_ses[school] + rng.normal(0.0, 0.8, n), 3) + 0.0
            no_ses = rng.random(n) < 0.05
            ability = rng.normal(0.0, 0.7, n)
            # two rows per student: the cohort's two subjects
            s2, c2 = np.repeat(school, 2), np.repeat(cohort, 2)
            y = (0.3 * np.repeat(ses, 2) + 0.3 * school_ses[s2] + school_u[s2]
                 + np.repeat(ability, 2) + rng.normal(0.0, 0.7, 2 * n))
            ege = scored[c2]
            score = np.where(ege, np.clip(np.rint(60 + 15 * y), 0, 100),
                             np.clip(np.rint(15 + 6 * y), 0, 30))
            mark = 2 + (score[:, None] >= np.array([10.0, 15.0, 21.0])[None, :]).sum(axis=1)
            table = pa.table({
                "year": np.full(2 * n, year, dtype=np.int64),
                "school_id": ids.take(pa.array(s2)),
                "procedure": procs.take(pa.array(c2)),
                "subject": subjects.take(pa.array(2 * c2 + np.tile([0, 1], n))),
                "grade": grades[c2],
                "student_key": pseudo_keys(np.repeat(np.arange(lo, hi, dtype=np.int64), 2)),
                "score": score,
                "mark": pa.array(mark.astype(np.int64), mask=ege),
                "ses": pa.array(np.repeat(ses, 2), mask=np.repeat(no_ses, 2)),
            }, schema=schema)
            writer.write_table(table, row_group_size=len(table))
            groups += 1
    return {"rows": 2 * n_students, "students": n_students, "schools": n_schools,
            "row_groups": groups, "bytes": path.stat().st_size,
            "seconds": time.perf_counter() - start}


# --- measuring a child process --------------------------------------------------------------


def folder_bytes(path: Path) -> int:
    total = 0
    for dirpath, _, names in os.walk(path):
        for name in names:
            try:
                total += os.stat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total


def measure(cmd: Sequence[str], *, cap_gb: float | None = None, watch: Path | None = None,
            env: dict[str, str] | None = None) -> dict[str, object]:
    """Run ``cmd`` in a fresh process; its wall time, peak RSS and exit status.

    Parameters
    ----------
    cmd : the command
    cap_gb : float, optional
        Address-space limit (``RLIMIT_AS``) of the child, in GiB.
    watch : Path, optional
        A folder whose total size is sampled every 0.1 s (DuckDB's spill folder).

    Returns
    -------
    dict: ``seconds`` (wall), ``rss_gb`` (the child's ``ru_maxrss``, GiB), ``ok`` (exit 0),
    ``watch_gb`` (largest sampled size of ``watch``, GiB), ``stderr`` (last lines).
    """
    def limit() -> None:
        if cap_gb is not None:
            cap = int(cap_gb * GB)
            resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.1):
            peak[0] = max(peak[0], folder_bytes(watch))

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(list(cmd), cwd=ROOT, env=env, preexec_fn=limit, stdout=out,
                                stderr=err)
        sampler = threading.Thread(target=sample, daemon=True) if watch else None
        if sampler:
            sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        done.set()
        if sampler:
            sampler.join()
        out.seek(0)
        err.seek(0)
        text, errors = (f.read().decode(errors="replace").strip() for f in (out, err))
    return {"seconds": seconds, "rss_gb": usage.ru_maxrss * 1024 / GB,
            "ok": proc.returncode == 0, "code": proc.returncode, "watch_gb": peak[0] / GB,
            "stdout": text, "stderr": "\n".join(errors.splitlines()[-3:])}


def child_env() -> dict[str, str]:
    """The environment of the measured processes: hash seed 0, one BLAS thread."""
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    env.update({v: "1" for v in THREAD_VARS})
    return env


def repeat(n: int, cmd: Sequence[str], **kw) -> list[dict[str, object]]:
    runs = []
    for _ in range(n):
        runs.append(measure(cmd, env=child_env(), **kw))
        if not runs[-1]["ok"]:
            break
    return runs


def median(runs: list[dict[str, object]], key: str) -> float:
    return statistics.median(float(r[key]) for r in runs)


def report(label: str, runs: list[dict[str, object]], target_gb: float, rows: int) -> None:
    """Print the medians of ``runs`` (time, rows/s, peak RSS and its ratio to the target)."""
    if not runs or not all(r["ok"] for r in runs):
        bad = runs[-1] if runs else {}
        print(f"  {label}: exceeded / failed (exit {bad.get('code')}, peak RSS "
              f"{float(bad.get('rss_gb', 0)):.2f} GB, after {float(bad.get('seconds', 0)):.1f} s)"
              f"  {bad.get('stderr', '')}")
        return
    t, rss = median(runs, "seconds"), median(runs, "rss_gb")
    print(f"  {label}: {len(runs)} run(s)")
    print(f"    wall time   {t:8.2f} s    all: {_fmt(runs, 'seconds')}   "
          f"({rows / t / 1e6:.2f} M rows/s)")
    print(f"    peak RSS    {rss:8.2f} GB   all: {_fmt(runs, 'rss_gb')}   "
          f"ratio to the {target_gb:g} GB target: {rss / target_gb:.2f}")


def _fmt(runs: list[dict[str, object]], key: str) -> str:
    return ", ".join(f"{float(r[key]):.2f}" for r in runs)


# --- the two targets ------------------------------------------------------------------------


PANDAS = """
import sys
import pandas as pd
from analysis.ingest.aggregate import aggregate_pandas, write
df = pd.read_parquet(sys.argv[1])
agg = aggregate_pandas(df, min_scores={min_scores!r})
del df
write(agg, sys.argv[2], sys.argv[3])
print(agg.rows_in, len(agg.results))
"""

STAGE01 = """
import sys
from analysis.ingest import io, prepare
from analysis.ingest.readers import ReadOptions
from analysis.outputs import write_table
students = io.read_tables(sys.argv[1], ("students",), required=False,
                          options=ReadOptions())["students"]
tidy = prepare.tidy_students(students)
del students
write_table(tidy, sys.argv[2])
print(len(tidy))
"""

STAGE03 = """
import sys
from analysis.config import load_yaml
from analysis import files
from analysis.models import sample as sample_mod, students
root = sys.argv[1]
p = load_yaml(f"{root}/params.yaml")
year, prep, ml = p["year"], p["prepare"], p["multilevel"]
table = files.read(root, "students")
sample, _ = sample_mod.analysis_sample(files.read(root, "schools"),
                                       files.read(root, "social_index"),
                                       files.read(root, "school_year"), year=year,
                                       min_n=p["min_n"])
data, _ = students.student_frame(table, sample, year=year,
                                 procedures=prep["quality_procedures"],
                                 subjects=prep["quality_subjects"], grades=prep["quality_grades"])
rows, fits = students.fit_student_models(data, fixed=ml["student_fixed"],
                                         random=ml["student_random"], year=year,
                                         min_schools=p["ses_link"]["min_schools"])
est = rows.set_index("term")["estimate"]
print(len(table), len(data), round(float(est["within_slope"]), 6),
      round(float(est["contextual_effect"]), 6))
"""


def national(args: argparse.Namespace, tmp: Path) -> None:
    path = tmp / "national_students.parquet"
    info = write_national(path, rows=args.rows, n_schools=args.schools,
                          chunk_rows=args.chunk_rows)
    rss_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GB
    print(f"national students file: {info['rows']:,} rows ({info['students']:,} students, "
          f"{info['schools']:,} schools, 1 year), {info['row_groups']} row groups, "
          f"{info['bytes'] / 1e6:,.0f} MB on disk ({info['bytes'] / info['rows']:.1f} bytes/row)"
          f"; written in {info['seconds']:.1f} s by a process of peak RSS {rss_self:.2f} GB")
    thresholds = [a for s, v in MIN_SCORES.items() for a in ("--min-score", f"{s}={v}")]
    runs, outs = [], []
    for i in range(args.repeat):
        spill = tmp / f"spill{i}"
        spill.mkdir()
        out = tmp / f"duck{i}" / "results.parquet"
        runs += repeat(1, [sys.executable, "-m", "analysis.ingest.aggregate", "--students",
                           str(path), "--out", str(out), "--memory-limit", args.memory_limit,
                           "--threads", str(args.threads), "--temp-dir", str(spill),
                           *thresholds], watch=spill)
        if not runs[-1]["ok"]:
            break
        outs.append((out.read_bytes(), out.with_name("results_ses.parquet").read_bytes()))
    print(f"aggregate to results, DuckDB out of core (python -m analysis.ingest.aggregate, "
          f"memory_limit {args.memory_limit}, {args.threads} threads), medians:")
    report("DuckDB", runs, NATIONAL_TARGET_GB, info["rows"])
    if runs and all(r["ok"] for r in runs):
        print(f"    spill peak  {median(runs, 'watch_gb'):8.2f} GB   all: "
              f"{_fmt(runs, 'watch_gb')}")
        print(f"    output: {runs[0]['stdout']}")
        print(f"    output bytes identical in all runs: {len(set(outs)) == 1}")
    if args.pandas_repeat < 1:
        return
    prun = repeat(args.pandas_repeat, [
        sys.executable, "-c", PANDAS.format(min_scores=MIN_SCORES), str(path),
        str(tmp / "pandas" / "results.parquet"), str(tmp / "pandas" / "results_ses.parquet")],
        cap_gb=args.pandas_cap_gb)
    print(f"the same aggregation in pandas, in memory (read_parquet + aggregate_pandas; "
          f"RLIMIT_AS {args.pandas_cap_gb:g} GB):")
    report("pandas", prun, NATIONAL_TARGET_GB, info["rows"])
    if prun and all(r["ok"] for r in prun) and outs:
        same = (tmp / "pandas" / "results.parquet").read_bytes() == outs[0][0] and (
            tmp / "pandas" / "results_ses.parquet").read_bytes() == outs[0][1]
        print(f"    output bytes identical to DuckDB's: {same}")
        if runs and all(r["ok"] for r in runs):
            print(f"  pandas / DuckDB: time {median(prun, 'seconds') / median(runs, 'seconds'):.2f}"
                  f", peak RSS {median(prun, 'rss_gb') / median(runs, 'rss_gb'):.2f}")
    path.unlink()


def regional(args: argparse.Namespace, tmp: Path) -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    from analysis.config import load_yaml
    from analysis.context.stage import run_context
    from analysis.ingest.stage import run_prepare
    from conftest import make_project

    root = make_project(tmp / "proj")
    raw = root / "data" / "raw"
    subprocess.run([sys.executable, "-m", "analysis.demo.synth", "--params",
                    str(root / "params.yaml"), "--out", str(raw), "--truth",
                    str(root / "data" / "demo_truth")], cwd=root, env=child_env(), check=True,
                   stdout=subprocess.DEVNULL)
    students = raw / "students.parquet"
    rows = pq.ParquetFile(students).metadata.num_rows
    p = load_yaml(root / "params.yaml")
    year = p["year"]
    print(f"regional (the default demo region: {rows:,} student rows, "
          f"{students.stat().st_size / 1e6:.1f} MB on disk), each part in a fresh process:")
    thresholds = [a for s, v in MIN_SCORES.items() for a in ("--min-score", f"{s}={v}")]
    report("aggregate to results (DuckDB, python -m analysis.ingest.aggregate)",
           repeat(args.repeat, [sys.executable, "-m", "analysis.ingest.aggregate",
                                "--students", str(students), "--out",
                                str(tmp / "regional" / "results.parquet"), "--memory-limit",
                                args.memory_limit, "--threads", str(args.threads),
                                *thresholds]), REGIONAL_TARGET_GB, rows)
    only = tmp / "students_only"
    only.mkdir()
    shutil.copy2(students, only / "students.parquet")
    report("stage 01: read the students table (io.read_tables + tidy_students)",
           repeat(args.repeat, [sys.executable, "-c", STAGE01, str(only),
                                str(tmp / "tidy_students.parquet")]), REGIONAL_TARGET_GB, rows)
    # the processed files stage 03 reads (stages 01 and 02, run here, not measured)
    run_prepare(root, year=year, **p["prepare"])
    run_context(root, year=year, min_n=p["min_n"], index=p["index"],
                quality_groups=p["quality_groups"], clusters=p["clusters"],
                similar=p["similar"])
    runs = repeat(args.repeat, [sys.executable, "-c", STAGE03, str(root)])
    report("stage 03: student models (student_frame + fit_student_models)", runs,
           REGIONAL_TARGET_GB, rows)
    if runs and runs[-1]["ok"]:
        n, used, within, context = runs[-1]["stdout"].split()
        print(f"    {int(used):,} of {int(n):,} student rows in the models; within-school slope "
              f"{within}, compositional effect {context}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=20_000_000,
                        help="rows of the national students table (even)")
    parser.add_argument("--schools", type=int, default=40_000)
    parser.add_argument("--chunk-rows", type=int, default=1_000_000,
                        help="rows per chunk and row group of the national file")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--memory-limit", default="3GB", help="DuckDB memory_limit")
    parser.add_argument("--threads", type=int, default=2, help="DuckDB threads")
    parser.add_argument("--pandas-repeat", type=int, default=1,
                        help="runs of the pandas comparison (0: skip it)")
    parser.add_argument("--pandas-cap-gb", type=float, default=8.0,
                        help="address-space limit of the pandas process (GiB)")
    parser.add_argument("--skip-national", action="store_true")
    parser.add_argument("--skip-regional", action="store_true")
    parser.add_argument("--tmp", type=Path, help="parent of the temporary folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-students-", dir=args.tmp) as tmp:
        if not args.skip_national:
            national(args, Path(tmp))
        if not args.skip_regional:
            regional(args, Path(tmp))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
