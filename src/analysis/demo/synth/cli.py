"""Command line: ``python -m analysis.demo.synth`` and the ``school-context-demo`` script.

The spec is :class:`RegionSpec`'s defaults, overridden by the ``demo`` section of the
``--params`` file and then by the flags (see :mod:`analysis.demo.synth`).  ``--students``
and ``--no-students`` override ``demo.write_students``: the latter writes the index-only
region, without ``students.parquet`` (``make data STUDENTS=0``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from analysis.demo.synth.region import generate_region
from analysis.demo.synth.spec import RegionSpec
from analysis.demo.synth.write import write_region


def main(argv: list[str] | None = None) -> int:
    """Command line: generate the region and write it (see :mod:`analysis.demo.synth`)."""
    args = _parser().parse_args(argv)
    spec = _spec_from_args(args)
    region = generate_region(spec)
    paths = write_region(region, args.out, args.truth)
    counts = region.truth_params["counts"]
    print(f"synthetic region: {counts['schools']} schools, {counts['school_years']} "
          f"school-years, {counts['result_rows']} result rows (seed {spec.seed})")
    for path in paths:
        print(f"  wrote {path}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m analysis.demo.synth",
                                     description="Generate the synthetic demo region.")
    parser.add_argument("--out", type=Path, required=True, help="raw data folder (data/raw)")
    parser.add_argument("--truth", type=Path, required=True,
                        help="ground-truth folder (data/demo_truth)")
    parser.add_argument("--params", type=Path,
                        help="params.yaml whose `demo` section gives the spec")
    parser.add_argument("--n-schools", type=int)
    parser.add_argument("--n-municipalities", type=int)
    parser.add_argument("--n-regions", type=int,
                        help="number of regions (default 1; more adds a `region` column)")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--years", type=int, nargs="+")
    parser.add_argument("--missing-rate", type=float)
    students = parser.add_mutually_exclusive_group()
    students.add_argument("--students", action="store_true", default=None,
                          help="also write students.parquet")
    students.add_argument("--no-students", dest="students", action="store_false",
                          help="write no students.parquet, whatever the params file says "
                               "(the index-only region: most regions have no pupil data)")
    return parser


def _spec_from_args(args: argparse.Namespace) -> RegionSpec:
    """Spec: defaults, overridden by the params file's ``demo`` section, then by flags."""
    values: dict = {}
    if args.params is not None:
        import yaml

        demo = yaml.safe_load(args.params.read_text(encoding="utf-8")).get("demo") or {}
        values.update({k: v for k, v in demo.items() if k in RegionSpec.__dataclass_fields__})
    flags = {"n_schools": args.n_schools, "n_municipalities": args.n_municipalities,
             "n_regions": args.n_regions, "seed": args.seed, "years": args.years,
             "missing_rate": args.missing_rate, "write_students": args.students}
    values.update({k: v for k, v in flags.items() if v is not None})
    if "years" in values:
        values["years"] = tuple(int(y) for y in values["years"])
    return RegionSpec(**values)
