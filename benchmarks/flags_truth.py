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
    parser.add_argument("--seeds", type=int, nargs="+", default=[20250, 1, 2, 3, 4, 5])
    parser.add_argument("--n-schools", type=int, default=1000)
    parser.add_argument("--out", type=Path, help="also write the per-seed metrics as CSV")
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    args = parser.parse_args(argv)
    from analysis.config import load_yaml

    params = load_yaml(args.params)
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


if __name__ == "__main__":
    raise SystemExit(main())
