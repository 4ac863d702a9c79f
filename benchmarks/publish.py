"""Benchmark: the municipal reports -- one stage rendering all, or one process per municipality.

Run on demand (``make bench``); not part of the tests. It needs the default region's
processed data (``make report`` first) and measures, side by side and interleaved:

- ``all in one``: :func:`analysis.publish.site.write_site` in one process, as the report
  stage does it (every municipal report, the index, tables.xlsx, the CSV and Parquet
  downloads), from process start;
- ``one per process``: rendering one municipality's report in a fresh process (start,
  imports, reading the processed data, one page): what a DVC ``foreach`` stage would pay for
  each municipality.

It prints the medians, the sizes of the pages, and the estimated ``foreach`` total
(one per process x municipalities) as a ratio to ``all in one``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

ALL = """
import yaml, sys
from pathlib import Path
from analysis.config import flatten
from analysis.publish import site
from analysis.publish.data import load_report_data
p = yaml.safe_load(open("params.yaml", encoding="utf-8"))
d = load_report_data(year=p["year"])
keys = ["year", "min_n", "lang", "prepare", "index", "quality_groups", "clusters", "similar",
        "ses_link", "multilevel", "flags", "report"]
site.write_site(d, flatten(p, keys), Path(sys.argv[1]))
"""

ONE = """
import yaml, sys
from analysis.config import flatten
from analysis.publish import site
from analysis.publish.data import load_report_data
p = yaml.safe_load(open("params.yaml", encoding="utf-8"))
d = load_report_data(year=p["year"])
keys = ["year", "min_n", "lang", "report", "flags"]
params = flatten(p, keys)
mun = sorted(d.flags["municipality"].dropna().unique())[0]
view = site.region_view(d, params, params["lang"])
page = site.municipal_page(d, mun, params, lang=params["lang"], view=view)
"""


def timed(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(args, cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    out = Path("/tmp/school-context-bench-site")
    if not (ROOT / "data" / "processed" / "flags.parquet").exists():
        print("run `make report` first (the benchmark reads data/processed/)")
        return 2
    times: dict[str, list[float]] = {"all in one": [], "one per process": []}
    for _ in range(args.repeat):  # interleaved: both see the same machine state
        times["all in one"].append(timed([sys.executable, "-c", ALL, str(out)]))
        times["one per process"].append(timed([sys.executable, "-c", ONE]))
    pages = sorted((out / "mun").glob("*.html"))
    med = {k: statistics.median(v) for k, v in times.items()}
    for k, v in times.items():
        print(f"{k:16s} median {med[k]:6.2f} s  (min {min(v):.2f}, max {max(v):.2f}, "
              f"n={len(v)})")
    foreach = med["one per process"] * len(pages)
    sizes = [p.stat().st_size for p in pages]
    print(f"municipal reports: {len(pages)}, {min(sizes) // 1024}-{max(sizes) // 1024} KB each, "
          f"{sum(sizes) // 1024} KB in all")
    print(f"foreach estimate: {len(pages)} x {med['one per process']:.2f} s = {foreach:.1f} s; "
          f"ratio foreach / all in one = {foreach / med['all in one']:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
