"""How well stage 04's flags recover the synthetic region's planted truth.

Run on demand (``make bench``); never imported by the pipeline, not part of the tests.  For
each seed a fresh demo region (the ``demo`` section of ``params.yaml``, with the seed and the
number of schools of the command line) is written to a temporary project root and run
through stages 01-04 in-process (:func:`analysis.pipeline.flow.run_all` with the project's
``params.yaml``).  The flags of the reporting year are then scored against the truth the
pipeline never sees (``truth.csv`` and ``truth_procedures.csv`` of
:mod:`analysis.demo.synth`):

- resilient: precision, recall and F1 against ``planted_resilient``;
- resilient_true: share of the flagged schools with a positive true school effect u and a
  latent social status in the bottom 40%;
- type fairness: among low-context schools with u <= 0, the rate flagged per school type
  and the largest ratio of a type's rate (types with at least 5 such schools) to the rate of
  ``secondary`` (СОШ);
- village recall: recall of the planted resilient schools in villages;
- inflated: planted inflated-ВПР schools that are flagged (must be 0);
- opposite sign: among schools published ``above``/``below``, the share whose true u has the
  opposite sign; effect corr: correlation of the estimated persistent effect with u;
- ШНОР: among schools labelled ``reliable``, the share with a procedure (reporting year or
  the year before) whose true expected share of «2» reaches the rule's threshold; recall of
  ``meets_shnor``; counts per label;
- objectivity: precision and recall of ``objectivity_flag`` against ``planted_inflated_vpr``.

The resilient-set metrics are shown side by side for the published flag (``resilient``, the
default method) and the naive PISA quadrant (``quadrant``: bottom quarter of the index x top
quarter of the raw one-year quality index).  Truth quantiles are taken over the schools with
results in the reporting year.  A metric whose flag column stage 04 does not (yet) write
prints ``n/a``.  Wall time per seed and the peak resident memory are printed at the end.

    python benchmarks/flags_truth.py [--seeds 20250 1 2 3 4 5] [--n-schools 1000] [--out F]

``--modes`` prints the trade-off of issue #22 instead: each fresh seed's region (default
seeds 31, 32, 33, none of the tests') is run in both modes, ``index`` (the region without
its students table, as most regions: the context measure is the social index) and
``students`` (with it), through stages 01-03 once per seed and mode, then stage 04 alone
for every confidence ``flags.z`` x ``flags.min_effect`` of the grid.  For each mode and
setting: the share of above/below calls with the opposite true sign (``opp_sign``), the
share of resilient flags with u > 0 and a true status in the bottom 40%
(``resilient_true``), the recall of the planted resilient schools and the number flagged;
medians over the seeds, then the per-seed values.  ``goals`` marks the settings that meet
#22's goals on the median (opposite sign <= 5%, resilient_true >= 95%, recall >= 0.80).

    python benchmarks/flags_truth.py --modes [--seeds 31 32 33] [--z 1.64 1.96 2.33 2.58]
        [--min-effect 0 0.05 0.1] [--n-schools 1000] [--out F]
"""

from __future__ import annotations

import argparse
import math
import resource
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.demo.evaluate import METHODS, NAN, SCHOOL_TYPES, evaluate

ROOT = Path(__file__).resolve().parents[1]
#: Seeds of the default tables (``--modes`` uses 31, 32, 33 unless ``--seeds`` is given).
DEFAULT_SEEDS = [20250, 1, 2, 3, 4, 5]


def region_spec(params: Mapping[str, Any], seed: int, n_schools: int) -> Any:
    """The demo region of ``params`` with this seed and number of schools."""
    from analysis.demo.synth import RegionSpec

    demo = dict(params.get("demo") or {})
    values = {k: v for k, v in demo.items() if k in RegionSpec.__dataclass_fields__}
    values["years"] = tuple(int(y) for y in values.get("years", RegionSpec().years))
    n_munis = int(values.get("n_municipalities", RegionSpec().n_municipalities))
    values.update(seed=seed, n_schools=n_schools,
                  n_municipalities=max(2, min(n_munis, n_schools // 3)))
    return RegionSpec(**values)


def run_seed(seed: int, n_schools: int, params: Mapping[str, Any]) -> dict[str, Any]:
    """Generate, run stages 01-04 in a temporary root, evaluate; adds ``seconds``."""
    from analysis.demo.synth import generate_region, write_region
    from analysis.pipeline.flow import run_all

    start = time.perf_counter()
    # the region goes to the temporary root whatever the project's raw folder is
    p = {**params, "prepare": {**params["prepare"], "raw_dir": "data/raw", "mapping": None}}
    region = generate_region(region_spec(p, seed, n_schools))
    with tempfile.TemporaryDirectory(prefix="flags_truth_") as tmp:
        root = Path(tmp)
        write_region(region, root / "data" / "raw", root / "demo_truth")
        data = run_all(root, p)
    f = p["flags"]
    out = evaluate(data.flags, data.shnor, data.objectivity, region.truth,
                   region.truth_procedures, year=int(p["year"]),
                   threshold=float(f.get("shnor_threshold", 0.30)),
                   procedures=f.get("shnor_procedures"))
    return {"seed": seed, **out, "seconds": time.perf_counter() - start}


#: The two modes of ``--modes``: whether the region keeps its students table.
MODES = {"index": False, "students": True}
#: #22's goals: (metric, bound, "max" or "min").
GOALS = (("opposite_sign", 0.05, "max"), ("default.true_share", 0.95, "min"),
         ("default.recall", 0.80, "min"))
#: Columns of the trade-off tables: (metric, header, format).
MODE_COLUMNS = (("opposite_sign", "opp_sign", ".3f"), ("default.true_share", "resilient_true",
                                                        ".3f"),
                ("default.recall", "recall", ".3f"), ("default.n_flagged", "n_resilient",
                                                      ".0f"))


def run_modes(seed: int, n_schools: int, params: Mapping[str, Any],
              grid: Sequence[tuple[float, float]]) -> list[dict[str, Any]]:
    """One seed in both :data:`MODES`: stages 01-03 once, stage 04 per (z, min_effect).

    Returns
    -------
    list of dict
        One row per mode and setting: ``seed, mode, z, min_effect``, the metrics of
        :func:`analysis.demo.evaluate.evaluate` and ``seconds`` (stage 04 alone).
    """
    from analysis.config import merge
    from analysis.demo.synth import generate_region, write_region
    from analysis.pipeline.flow import run_slice

    p = {**params, "prepare": {**params["prepare"], "raw_dir": "data/raw", "mapping": None},
         "demo": {**(params.get("demo") or {}), "write_students": True}}
    region = generate_region(region_spec(p, seed, n_schools))
    rows = []
    for mode, keep in MODES.items():
        with tempfile.TemporaryDirectory(prefix=f"flags_truth_{mode}_") as tmp:
            root = Path(tmp)
            write_region(region, root / "data" / "raw", root / "demo_truth")
            if not keep:  # the same region, without the pupil data
                (root / "data" / "raw" / "students.parquet").unlink()
            start = time.perf_counter()
            run_slice(root, p, stop="03_ses_link")
            print(f"  seed {seed} {mode}: stages 01-03 {time.perf_counter() - start:.1f} s",
                  flush=True)
            for z, min_effect in grid:
                q = merge(p, {"flags": {"z": z, "min_effect": min_effect}})
                start = time.perf_counter()
                res = run_slice(root, q, start="04_flags", stop="04_flags")
                f = q["flags"]
                out = evaluate(res.flags, res.shnor, res.objectivity, region.truth,
                               region.truth_procedures, year=int(q["year"]),
                               threshold=float(f.get("shnor_threshold", 0.30)),
                               procedures=f.get("shnor_procedures"))
                rows.append({"seed": seed, "mode": mode, "z": z, "min_effect": min_effect,
                             **out, "seconds": time.perf_counter() - start})
    return rows


def meets_goals(row: Mapping[str, Any]) -> str:
    """``yes``, or the goals of :data:`GOALS` the row misses (NaN misses)."""
    missed = []
    for key, bound, kind in GOALS:
        v = float(row.get(key, NAN))
        if math.isnan(v) or (v > bound if kind == "max" else v < bound):
            missed.append(key.replace("default.", "").replace("true_share", "resilient_true"))
    return "yes" if not missed else "no: " + ", ".join(missed)


def modes_report(rows: Sequence[Mapping[str, Any]], defaults: tuple[float, float]) -> str:
    """Per mode: one line per (z, min_effect) with the medians, the per-seed values and
    whether #22's goals are met; ``*`` marks today's defaults."""
    df = pd.DataFrame(rows)
    seeds = sorted(int(s) for s in df["seed"].unique())
    lines = []
    for mode in MODES:
        sub = df.loc[df["mode"] == mode]
        lines.append(f"\nmode: {mode} ({'with' if MODES[mode] else 'without'} the students "
                     f"table); median over seeds {seeds} [per seed]")
        header = ["z", "min_effect", *(h for _, h, _ in MODE_COLUMNS), "goals of #22"]
        cells = []
        for (z, me), g in sub.groupby(["z", "min_effect"], sort=True):
            g = g.sort_values("seed")
            med = {k: float(np.nanmedian(g[k].astype(float))) if g[k].notna().any() else NAN
                   for k, _, _ in MODE_COLUMNS}
            mark = "*" if (float(z), float(me)) == defaults else ""
            cells.append([f"{z:g}{mark}", f"{me:g}", *(
                f"{fmt(med[k], s)} [{' '.join(fmt(v, s) for v in g[k])}]"
                for k, _, s in MODE_COLUMNS), meets_goals(med)])
        widths = [max(len(x) for x in col) for col in zip(header, *cells, strict=True)]
        lines += ["  ".join(x.ljust(w) for x, w in zip(line, widths, strict=True)).rstrip()
                  for line in (header, *cells)]
    return "\n".join(lines)


# --- printing ------------------------------------------------------------------------------------


def fmt(value: Any, spec: str = ".3f") -> str:
    """A number with ``spec``; ``n/a`` for NaN/None, ``inf`` for infinity."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, str):
        return value or "-"
    if math.isinf(value):
        return "inf"
    return format(value, spec)


def mean_row(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Mean over seeds of every numeric metric (NaN ignored; NaN if all are)."""
    out: dict[str, Any] = {"seed": "mean"}
    for key in rows[0]:
        if key == "seed":
            continue
        values = [r[key] for r in rows]
        if all(isinstance(v, int | float) for v in values):
            finite = [float(v) for v in values if not math.isnan(float(v))]
            out[key] = float(np.mean(finite)) if finite else NAN
        else:
            out[key] = ""
    return out


#: Resilient-set columns: (metric, header, format).
SET_COLUMNS = (("precision", "P", ".3f"), ("recall", "R", ".3f"), ("f1", "F1", ".3f"),
               ("n_flagged", "n", ".0f"), ("true_share", "true", ".3f"),
               ("village_recall", "vill", ".3f"), ("n_village", "n_vill", ".0f"),
               ("inflated", "infl", ".0f"),
               ("max_ratio", "type_ratio", ".2f"), ("max_type", "max_type", "s"))
OTHER_COLUMNS = (("opposite_sign", "opp_sign", ".3f"), ("n_published", "n_pub", ".0f"),
                 ("effect_corr", "eff_corr", ".3f"),
                 ("shnor.reliable_precision", "shnor_rel_P", ".3f"),
                 ("shnor.n_reliable", "n_rel", ".0f"), ("shnor.n_borderline", "n_bord", ".0f"),
                 ("shnor.n_few_participants", "n_few", ".0f"),
                 ("shnor.recall", "shnor_R", ".3f"), ("shnor.n_shnor", "n_shnor", ".0f"),
                 ("objectivity.precision", "obj_P", ".3f"),
                 ("objectivity.recall", "obj_R", ".3f"),
                 ("objectivity.n_flagged", "n_obj", ".0f"), ("seconds", "time_s", ".1f"))


def _table(rows: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str, str]]
           ) -> list[str]:
    cells = [[str(r["seed"])] + [fmt(r.get(k, NAN), s if s != "s" else "")
                                 for k, _, s in columns] for r in rows]
    header = ["seed"] + [h for _, h, _ in columns]
    widths = [max(len(x) for x in col) for col in zip(header, *cells, strict=True)]
    return ["  ".join(x.rjust(w) for x, w in zip(line, widths, strict=True))
            for line in (header, *cells)]


def report(rows: Sequence[Mapping[str, Any]]) -> str:
    """The printed tables: one row per seed and the mean."""
    table = [*rows, mean_row(rows)]
    lines = []
    for method, column in METHODS.items():
        lines.append(f"\nresilient set: {method} (flags.{column}) vs planted_resilient")
        cols = [(f"{method}.{k}", h, s) for k, h, s in SET_COLUMNS]
        lines += _table(table, cols)
    for method, column in METHODS.items():
        lines.append(f"\ntype fairness: {method} (flags.{column}) rate among low-context "
                     "schools with u <= 0 (n)")
        per_type = []
        for r in table:
            cell = {"seed": r["seed"]}
            for kind in SCHOOL_TYPES:
                rate, n = r.get(f"{method}.rate_{kind}", NAN), r.get(f"{method}.n_{kind}", NAN)
                cell[kind] = f"{fmt(rate, '.3f')} ({fmt(n, '.0f')})"
            per_type.append(cell)
        lines += _table(per_type, [(k, k, "s") for k in SCHOOL_TYPES])
    lines.append("\nsign of published effects, ШНОР, objectivity screen, wall time")
    lines += _table(table, OTHER_COLUMNS)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command line: run every seed, print the tables, optionally write ``--out``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=DEFAULT_SEEDS)
    parser.add_argument("--n-schools", type=int, default=1000)
    parser.add_argument("--out", type=Path, help="also write the per-seed metrics as CSV")
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    parser.add_argument("--modes", action="store_true",
                        help="both modes (index only, students) over the z x min_effect grid")
    parser.add_argument("--z", type=float, nargs="+", default=[1.64, 1.96, 2.33, 2.58])
    parser.add_argument("--min-effect", type=float, nargs="+", default=[0.0, 0.05, 0.1])
    args = parser.parse_args(argv)
    from analysis.config import load_yaml

    params = load_yaml(args.params)
    if args.modes:
        return main_modes(args, params)
    print(f"flags against planted truth: {args.n_schools} schools, reporting year "
          f"{params['year']}, seeds {args.seeds}")
    rows = []
    for seed in args.seeds:
        rows.append(run_seed(seed, args.n_schools, params))
        print(f"  seed {seed}: {rows[-1]['seconds']:.1f} s", flush=True)
    print(report(rows))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(f"\npeak RSS {peak:.0f} MiB; total {sum(r['seconds'] for r in rows):.1f} s")
    if args.out is not None:
        pd.DataFrame([*rows, mean_row(rows)]).to_csv(args.out, index=False)
        print(f"wrote {args.out}")
    return 0


def main_modes(args: argparse.Namespace, params: Mapping[str, Any]) -> int:
    """``--modes``: the trade-off tables of both modes (default seeds 31, 32, 33)."""
    seeds = args.seeds if args.seeds != DEFAULT_SEEDS else [31, 32, 33]
    grid = [(float(z), float(me)) for z in args.z for me in args.min_effect]
    f = params["flags"]
    defaults = (float(f["z"]), float(f["min_effect"]))
    print(f"flags against planted truth, both modes: {args.n_schools} schools, reporting year "
          f"{params['year']}, seeds {seeds}, z {args.z}, min_effect {args.min_effect}")
    start, rows = time.perf_counter(), []
    for seed in seeds:
        rows += run_modes(seed, args.n_schools, params, grid)
    print(modes_report(rows, defaults))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(f"\n* today's defaults (z = {defaults[0]:g}, min_effect = {defaults[1]:g}); stage 04 "
          f"median {np.median([r['seconds'] for r in rows]):.1f} s per setting; peak RSS "
          f"{peak:.0f} MiB; total {time.perf_counter() - start:.0f} s")
    if args.out is not None:
        pd.DataFrame(rows).to_csv(args.out, index=False)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
