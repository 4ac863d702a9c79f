"""Benchmark: reading a national-size results CSV with :func:`analysis.ingest.readers.read_text`.

Run on demand; not part of the tests.  Target: the results file of 40,000 schools (about
865,000 rows) read in a few seconds and well under 1 GB, inside the pipeline's budget of
60 s and 2 GB for the whole run.

The file is built by tiling the default demo's ``data/raw/results.csv`` (generated in a
temporary folder when ``data/raw`` has none) with new school ids: copy *k* of school
``010001`` is school ``k:02d`` + ``010001``.  ``--semicolon`` writes it as Russian Excel
does (``;`` and decimal commas), which also measures the decimal-comma repair.

Each run reads the file in a fresh process, interleaved, ``--repeat`` times:

- ``current``: the reader in this working tree (pandas' C parser, vectorised checks);
- ``previous``: the reader of commit ``--previous`` (default: the last one with the pure
  Python CSV path, ``csv.reader`` and per-cell regular expressions), taken with
  ``git show`` into a temporary module.

Per run it records the wall time of the ``read_text`` call, the wall time of the whole
process (start and imports included), and the process's peak resident memory: the
``ru_maxrss`` the kernel reports to the parent for that child (``os.wait4``; it is what
``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`` gives with one child, which is a maximum
over all children so far and so cannot tell runs apart).  It prints the medians and the
ratios current / previous.  Before timing, one run of each checks that both readers return
the same table and report (``--no-check`` skips it).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import child  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
#: The last commit whose reader parses CSV in pure Python.
PREVIOUS = "39f120e"
NATIONAL_ROWS = 865_000
POINT_DECIMAL = re.compile(r"-?\d+\.\d+")


def demo_results(tmp: Path) -> Path:
    """The default demo's results table: ``data/raw/results.csv``, or a fresh one."""
    path = ROOT / "data" / "raw" / "results.csv"
    if path.is_file():
        return path
    from analysis.demo.synth import RegionSpec, generate_region, write_region

    write_region(generate_region(RegionSpec()), tmp / "demo_raw", tmp / "demo_truth")
    return tmp / "demo_raw" / "results.csv"


def build_csv(source: Path, out: Path, rows: int, semicolon: bool) -> tuple[int, int]:
    """Tile ``source`` to ``rows`` data rows with new school ids; (rows, schools) written."""
    with open(source, encoding="utf-8", newline="") as fh:
        header, *body = list(csv.reader(fh))
    sid = header.index("school_id")
    schools: set[str] = set()
    with open(out, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, delimiter=";" if semicolon else ",", lineterminator="\r\n")
        writer.writerow(header)
        written, copy = 0, 0
        while written < rows:
            for record in body[: rows - written]:
                record = list(record)
                record[sid] = f"{copy:02d}{record[sid]}"
                schools.add(record[sid])
                if semicolon:
                    record = [c.replace(".", ",") if POINT_DECIMAL.fullmatch(c) else c
                              for c in record]
                writer.writerow(record)
            written += min(len(body), rows - written)
            copy += 1
    return written, len(schools)


def previous_module(rev: str, tmp: Path) -> Path | None:
    """``readers.py`` of commit ``rev`` written to ``tmp``; ``None`` when git cannot show it."""
    shown = subprocess.run(["git", "-C", str(ROOT), "show",
                            f"{rev}:src/analysis/ingest/readers.py"],
                           check=False, capture_output=True, text=True)
    if shown.returncode != 0:
        print(f"previous reader not available ({shown.stderr.strip()}); timing current only")
        return None
    path = tmp / "previous_readers.py"
    path.write_text(shown.stdout, encoding="utf-8")
    return path


def run_once(module: str, path: Path, digest: bool) -> dict:
    """Read ``path`` with the reader in ``module`` (``-``: the current one), in this process."""
    import resource

    if module == "-":
        from analysis.ingest.readers import read_text
    else:
        import importlib.util

        spec = importlib.util.spec_from_file_location("previous_readers", module)
        previous = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = previous  # its dataclasses look their module up
        spec.loader.exec_module(previous)
        read_text = previous.read_text
    start = time.perf_counter()
    df, report = read_text(path)
    seconds = time.perf_counter() - start
    out = {"seconds": seconds, "rows": len(df), "columns": df.shape[1],
           "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if digest:
        import pandas as pd

        h = hashlib.sha256(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes())
        h.update(repr((list(df.columns), [str(t) for t in df.dtypes], report)).encode())
        h.update(repr(sorted({type(c).__name__ for c in df.iloc[:, 2:].to_numpy().ravel()}))
                 .encode())
        out["digest"] = h.hexdigest()
    return out


def measured(module: str, path: Path, env: dict[str, str], digest: bool = False) -> dict:
    """One read in a fresh process: its report, process wall time and peak RSS (MB)."""
    args = [sys.executable, __file__, "--run", module, str(path)] + (["--digest"] * digest)
    run = child(args, environ=env)
    if run.code != 0:
        raise RuntimeError(f"reader run failed ({run.code}): {run.stderr[-2000:]}")
    result = json.loads(run.stdout.strip().splitlines()[-1])
    return {**result, "process": run.seconds, "maxrss_mb": run.maxrss / 2**20}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--rows", type=int, default=NATIONAL_ROWS,
                        help="data rows of the built file (default: national size)")
    parser.add_argument("--semicolon", action="store_true",
                        help="write ';'-separated with decimal commas")
    parser.add_argument("--csv", type=Path, help="read this file instead of building one")
    parser.add_argument("--previous", default=PREVIOUS,
                        help="git revision of the reader to compare with ('' for none)")
    parser.add_argument("--no-check", action="store_true",
                        help="skip checking that both readers return the same table")
    parser.add_argument("--run", nargs=2, metavar=("MODULE", "CSV"), help=argparse.SUPPRESS)
    parser.add_argument("--digest", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.run:
        print(json.dumps(run_once(args.run[0], Path(args.run[1]), args.digest)))
        return 0
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.csv:
            path = args.csv
            print(f"file: {path} ({path.stat().st_size / 2**20:.1f} MiB)")
        else:
            path = tmp / "results.csv"
            rows, schools = build_csv(demo_results(tmp), path, args.rows, args.semicolon)
            print(f"file: {rows} rows, {schools} schools, {path.stat().st_size / 2**20:.1f} MiB"
                  f" ({'; and decimal commas' if args.semicolon else ', and decimal points'})")
        impls = {"current": "-"}
        previous = previous_module(args.previous, tmp) if args.previous else None
        if previous is not None:
            impls["previous"] = str(previous)
        if not args.no_check and previous is not None:
            digests = {k: measured(m, path, env, digest=True)["digest"] for k, m in impls.items()}
            same = len(set(digests.values())) == 1
            print(f"same table and report from both readers: {'yes' if same else 'NO'}")
        runs: dict[str, list[dict]] = {k: [] for k in impls}
        for _ in range(args.repeat):  # interleaved: both see the same machine state
            for label, module in impls.items():
                runs[label].append(measured(module, path, env))
    print(f"{args.repeat} interleaved runs each, fresh process per run; medians")
    med: dict[str, dict[str, float]] = {}
    for label, r in runs.items():
        med[label] = {k: statistics.median(x[k] for x in r)
                      for k in ("seconds", "process", "maxrss_mb")}
        each = ", ".join(f"{x['seconds']:.2f}" for x in r)
        print(f"  {label:8s} read_text {med[label]['seconds']:6.2f} s (all: {each})  "
              f"process {med[label]['process']:6.2f} s  "
              f"peak RSS {med[label]['maxrss_mb']:6.0f} MB  "
              f"({r[0]['rows']} rows x {r[0]['columns']} columns)")
    if "previous" in med:
        cur, old = med["current"], med["previous"]
        print(f"  ratio current / previous: read_text {cur['seconds'] / old['seconds']:.3f}, "
              f"process {cur['process'] / old['process']:.3f}, "
              f"peak RSS {cur['maxrss_mb'] / old['maxrss_mb']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
