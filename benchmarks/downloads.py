"""Benchmark: the downloads (:mod:`analysis.publish.downloads`) at national size.

Run on demand; not part of the tests.  The report stage writes every published table to
one workbook and one CSV each; at 40,000 schools that is the slowest part of the national
run, whose budget is 60 s and 2 GB on 2 cores.

Two synthetic tables are built once with vectorised numpy (seeded) and stored as Parquet:

- ``schools``: ``--schools`` rows (default 40,000) x 30 mixed columns, as the published
  schools table: ids, names, municipalities and regions (text), labels (text with missing
  values), floats with missing values, shares (``0.0%``), integers, nullable integers,
  booleans;
- ``procedures``: ``--procedures`` rows (default 800,000) x 10 columns, one per school,
  year and procedure: id, name, municipality, year, procedure, subject, grade,
  participants, a share (``0.0%``) and a mean.

Each run loads them in a fresh process and times one call, ``--repeat`` times, interleaved:

- ``xlsx``: :func:`write_workbook` of both tables (two sheets, the shares formatted);
- ``csv``: :func:`write_csv` of each table (the total of the two).

``current`` is the module in this working tree; ``previous`` the one of commit
``--previous`` (default: the last one with the openpyxl writer, a Python call and an
object per cell), taken with ``git show`` into a temporary module.  The previous workbook
takes minutes at national size, so it runs ``--previous-repeat`` times (default 1).  Per
run it records the wall time of the call and the process's peak resident memory
(``ru_maxrss`` of that child, from ``os.wait4``), and prints the medians and the ratios
current / previous.  Before timing, one run of each checks that both write the same CSV
bytes and the same cell values (``--no-check`` skips it; the values are read back with
openpyxl, which takes a while).

Measured on the project's 2-core machine (shared, so only indicative): with the default
tables (9.2 million cells) the workbook takes about 53 s and 0.64 GB instead of 151 s and
4.9 GB, the CSVs 3.3 s instead of 15 s; with ``--procedures 70000`` (1.9 million cells,
about the national workbook) 10.5 s and 0.26 GB instead of 31 s and 1.05 GB, the CSVs
1.1 s instead of 2.9 s.  XlsxWriter costs about 5.5 us per cell, most of it in its own
cell and XML code.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import child  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MODULE = "src/analysis/publish/downloads.py"
#: The parent of the commit that replaced openpyxl with XlsxWriter in :data:`MODULE`.
PREVIOUS = "af50bcd^"
SHEETS = {"schools": "Школы", "procedures": "Процедуры ШНОР"}


def build_tables(out: Path, n_schools: int, n_procedures: int, seed: int = 1) -> dict[str, int]:
    """Write ``schools.parquet`` and ``procedures.parquet`` to ``out``; cells of each."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    n = n_schools
    n_mun = max(1, n // 17)
    region = rng.integers(1, 86, n_mun)[rng.integers(0, n_mun, n)]
    mun = rng.integers(0, n_mun, n)
    ids = pd.Series([f"{r:02d}{m:04d}{k:03d}" for r, m, k in
                     zip(region.tolist(), mun.tolist(), (np.arange(n) % 1000).tolist())])
    kinds = np.array(["Средняя школа", "Гимназия", "Лицей", "Основная школа", "Центр образования"])
    names = pd.Series(kinds[rng.integers(0, len(kinds), n)]) + " № " + pd.Series(
        (np.arange(n) % 300 + 1).astype(str)) + " г. Пункт-" + pd.Series(mun.astype(str))
    mun_names = pd.Series(["Муниципальный район «Район-" + str(m) + "»" for m in range(n_mun)])
    settlement = np.array(["город", "посёлок", "село", None], dtype=object)
    lists = np.array(["ШНОР", "ШНСУ; резильентная", "зона риска", "", None], dtype=object)

    def floats(scale: float, missing: float) -> np.ndarray:
        x = rng.standard_normal(n) * scale
        x[rng.random(n) < missing] = np.nan
        return x

    cols: dict[str, object] = {
        "school_id": ids, "school_name": names, "municipality": mun_names[mun].to_numpy(),
        "region": np.char.add("Регион ", region.astype(str)).astype(object),
        "settlement": settlement[rng.integers(0, 4, n)], "lists": lists[rng.integers(0, 5, n)],
        "typology": np.array(["A", "B", "C", "D"], dtype=object)[rng.integers(0, 4, n)],
    }
    for k in range(10):
        cols[f"value_{k}"] = floats(10.0 ** (k % 4 - 1), 0.05)
    for k in range(5):
        cols[f"share_{k}"] = np.where(rng.random(n) < 0.05, np.nan, rng.random(n))
    for k in range(3):
        cols[f"count_{k}"] = rng.integers(0, 2000, n)
    cols["students"] = pd.array(np.where(rng.random(n) < 0.1, None, rng.integers(5, 3000, n)),
                                dtype="Int64")
    for k in range(4):
        cols[f"flag_{k}"] = rng.random(n) < 0.2
    schools = pd.DataFrame(cols)
    school = rng.integers(0, n, n_procedures)
    procedures = pd.DataFrame({
        "school_id": ids.to_numpy()[school], "school_name": names.to_numpy()[school],
        "municipality": mun_names[mun[school]].to_numpy(),
        "year": rng.integers(2021, 2026, n_procedures),
        "procedure": np.array(["ВПР", "ОГЭ", "ЕГЭ"], dtype=object)[rng.integers(0, 3,
                                                                          n_procedures)],
        "subject": np.array(["Математика", "Русский язык", "Физика", "История", "Биология"],
                            dtype=object)[rng.integers(0, 5, n_procedures)],
        "grade": rng.integers(4, 12, n_procedures),
        "participants": rng.integers(1, 200, n_procedures),
        "share_low": np.round(rng.random(n_procedures), 4),
        "mean": rng.standard_normal(n_procedures) * 10 + 50,
    })
    out.mkdir(parents=True, exist_ok=True)
    schools.to_parquet(out / "schools.parquet")
    procedures.to_parquet(out / "procedures.parquet")
    return {"schools": schools.size, "procedures": procedures.size}


def previous_module(rev: str, tmp: Path) -> Path | None:
    """``downloads.py`` of commit ``rev`` written to ``tmp``; ``None`` when git cannot."""
    shown = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:{MODULE}"],
                           check=False, capture_output=True, text=True)
    if shown.returncode != 0:
        print(f"previous module not available ({shown.stderr.strip()}); timing current only")
        return None
    path = tmp / "previous_downloads.py"
    path.write_text(shown.stdout, encoding="utf-8")
    return path


def load_module(module: str):
    """The downloads module: ``-`` for the current one, else the file ``module``."""
    if module == "-":
        from analysis.publish import downloads
        return downloads
    import importlib.util

    spec = importlib.util.spec_from_file_location("previous_downloads", module)
    previous = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = previous
    spec.loader.exec_module(previous)
    return previous


def run_once(module: str, what: str, data: Path, out: Path, digest: bool) -> dict:
    """One ``what`` (``xlsx`` or ``csv``) with the module ``module``, in this process."""
    import resource

    import pandas as pd

    downloads = load_module(module)
    tables = {k: pd.read_parquet(data / f"{k}.parquet") for k in SHEETS}
    start = time.perf_counter()
    if what == "xlsx":
        formats = {SHEETS[k]: {c: "0.0%" for c in df.columns if c.startswith("share")}
                   for k, df in tables.items()}
        paths = [downloads.write_workbook({SHEETS[k]: df for k, df in tables.items()},
                                          out / "tables.xlsx", formats=formats)]
    else:
        paths = [downloads.write_csv(df, out / f"{k}.csv") for k, df in tables.items()]
    seconds = time.perf_counter() - start
    result = {"seconds": seconds, "mb": sum(p.stat().st_size for p in paths) / 2**20,
              "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if digest:
        h = hashlib.sha256()
        if what == "csv":
            for p in paths:
                h.update(p.read_bytes())
        else:  # the cells as read back: values, types, number formats
            import openpyxl

            wb = openpyxl.load_workbook(paths[0], read_only=True)
            for ws in wb.worksheets:
                h.update(ws.title.encode())
                for row in ws.iter_rows():  # an empty cell and '' both read as None
                    h.update(repr([(c.value, c.data_type, c.number_format)
                                   if c.value is not None else None for c in row]).encode())
        result["digest"] = h.hexdigest()
    return result


def measured(module: str, what: str, data: Path, out: Path, env: dict[str, str],
             digest: bool = False) -> dict:
    """One run in a fresh process: its report and the process's peak RSS (MB)."""
    args = [sys.executable, __file__, "--run", module, what, str(data), str(out)]
    args += ["--digest"] * digest
    run = child(args, environ=env)
    if run.code != 0:
        raise RuntimeError(f"{what} run failed: {run.stderr[-2000:]}")
    result = json.loads(run.stdout.strip().splitlines()[-1])
    return {**result, "maxrss_mb": run.maxrss / 2**20}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--previous-repeat", type=int, default=1,
                        help="runs of the previous module (slow at national size)")
    parser.add_argument("--schools", type=int, default=40_000)
    parser.add_argument("--procedures", type=int, default=800_000)
    parser.add_argument("--previous", default=PREVIOUS,
                        help="git revision of the module to compare with ('' for none)")
    parser.add_argument("--no-check", action="store_true",
                        help="skip checking that both write the same CSV and cell values")
    parser.add_argument("--run", nargs=4, metavar=("MODULE", "WHAT", "DATA", "OUT"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--digest", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.run:
        module, what, data, out = args.run
        print(json.dumps(run_once(module, what, Path(data), Path(out), args.digest)))
        return 0
    env = {**os.environ, "PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1",
           "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cells = build_tables(tmp / "data", args.schools, args.procedures)
        print(f"tables: schools {args.schools} rows ({cells['schools']} cells), procedures "
              f"{args.procedures} rows ({cells['procedures']} cells)")
        impls = {"current": "-"}
        previous = previous_module(args.previous, tmp) if args.previous else None
        if previous is not None:
            impls["previous"] = str(previous)
        (tmp / "out").mkdir()
        if not args.no_check and previous is not None:
            for what in ("csv", "xlsx"):
                digests = {k: measured(m, what, tmp / "data", tmp / "out", env,
                                       digest=True)["digest"] for k, m in impls.items()}
                same = len(set(digests.values())) == 1
                print(f"same {what} {'bytes' if what == 'csv' else 'cells'} from both: "
                      f"{'yes' if same else 'NO'}", flush=True)
        runs: dict[tuple[str, str], list[dict]] = {}
        for i in range(args.repeat):  # interleaved: all see the same machine state
            for what in ("xlsx", "csv"):
                for label, module in impls.items():
                    if label == "previous" and i >= args.previous_repeat:
                        continue
                    runs.setdefault((label, what), []).append(
                        measured(module, what, tmp / "data", tmp / "out", env))
    print(f"fresh process per run, interleaved; medians (current: {args.repeat} runs, "
          f"previous: {min(args.repeat, args.previous_repeat)})")
    med = {key: {k: statistics.median(x[k] for x in r) for k in ("seconds", "maxrss_mb")}
           for key, r in runs.items()}
    for (label, what), r in runs.items():
        each = ", ".join(f"{x['seconds']:.2f}" for x in r)
        m = med[label, what]
        print(f"  {label:8s} {what:4s} {m['seconds']:7.2f} s (all: {each})  "
              f"peak RSS {m['maxrss_mb']:6.0f} MB  ({r[0]['mb']:.1f} MiB written)")
    for what in ("xlsx", "csv"):
        if ("previous", what) in med:
            cur, old = med["current", what], med["previous", what]
            print(f"  ratio current / previous, {what}: time "
                  f"{cur['seconds'] / old['seconds']:.3f}, peak RSS "
                  f"{cur['maxrss_mb'] / old['maxrss_mb']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
