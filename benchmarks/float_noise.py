"""How much do the pipeline's numbers move with the CPU, and does the rounding absorb it?

Runs stages 01-04 and the report's data (the library, no notebooks) on the demo region
three times, each in a fresh process with the floats written **unrounded**
(``analysis.outputs.FLOAT_DIGITS = None``):

- ``default``: this machine as it is;
- ``other-cpu``: another BLAS kernel, NumPy's vector paths off, one thread
  (``OPENBLAS_CORETYPE=SandyBridge``, ``NPY_DISABLE_CPU_FEATURES=...``);
- ``4-threads``: BLAS and OpenMP on 4 threads.

Then, for every float in every processed table and JSON summary, the noise ``|a - b|``
against ``default``, and for each candidate rounding rule (``digits`` significant digits,
never finer than ``10**analysis.outputs.FLOAT_FLOOR``) the quantum ``q`` of each value:

- ``flips``: values that round differently in the two runs (what would change a hash);
- ``expected``: the expected number of such values, ``sum(|a - b| / q)`` (the chance that a
  rounding boundary falls between ``a`` and ``b``): the margin of the rule on this data.

Unrounded intermediate files let the noise of one stage reach the next, so the noise is
an upper bound of what the pipeline (which rounds at every write) sees.  Usage::

    python benchmarks/float_noise.py [--index-only] [--keep DIR]

docs/reproducibility.md records the result and the rule chosen from it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import ROOT, env  # noqa: E402

ENVS: dict[str, dict[str, str]] = {
    "default": {},
    "other-cpu": {"OPENBLAS_CORETYPE": "SandyBridge", "OPENBLAS_NUM_THREADS": "1",
                  "OMP_NUM_THREADS": "1",
                  "NPY_DISABLE_CPU_FEATURES": "X86_V3 X86_V4 AVX512_ICL AVX512_SPR"},
    "4-threads": {"OPENBLAS_NUM_THREADS": "4", "OMP_NUM_THREADS": "4"},
}
RULES = (6, 7, 8, 9, 10)

RUN = """
import sys
from pathlib import Path
import analysis.outputs as outputs
outputs.FLOAT_DIGITS = None  # unrounded: measure the noise itself
from analysis.config import load_yaml
from analysis.pipeline.flow import run_all
root = Path(sys.argv[1])
run_all(root, load_yaml(root / "params.yaml"))
"""


def _floats(path: Path) -> dict[str, np.ndarray]:
    """Every float of a processed file, by ``file:column`` (tables) or ``file`` (JSON)."""
    if path.suffix == ".parquet":
        df = pd.read_parquet(path)
        return {f"{path.name}:{c}": df[c].to_numpy(dtype="float64", na_value=np.nan)
                for c in df.columns if pd.api.types.is_float_dtype(df[c])}
    values: list[float] = []

    def walk(x: object) -> None:
        if isinstance(x, dict):
            for k in sorted(x):
                walk(x[k])
        elif isinstance(x, list):
            for v in x:
                walk(v)
        elif isinstance(x, float):
            values.append(x)
    walk(json.loads(path.read_text(encoding="utf-8")))
    return {path.name: np.array(values, dtype="float64")}


def collect(root: Path) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    processed = root / "data" / "processed"
    for path in sorted(processed.rglob("*")):
        if path.suffix in (".parquet", ".json") and "site" not in path.parts:
            out.update(_floats(path))
    return out


def compare(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> pd.DataFrame:
    """Per column: values, values that differ, max absolute and relative noise, and for each
    rule the flips and the expected flips."""
    from analysis.outputs import round_sig, rounding_step

    rows = []
    for key in sorted(a):
        x, y = a[key], b[key]
        if x.shape != y.shape:
            rows.append({"column": key, "n": len(x), "shape_differs": True})
            continue
        ok = np.isfinite(x) & np.isfinite(y)
        x, y = x[ok], y[ok]
        d = np.abs(x - y)
        rel = d / np.maximum(np.abs(x), 1e-300)
        row = {"column": key, "n": len(x), "n_diff": int((d > 0).sum()),
               "max_abs": float(d.max(initial=0.0)),
               "max_rel": float(rel[d > 0].max(initial=0.0))}
        for digits in RULES:
            rx, ry = round_sig(x, digits), round_sig(y, digits)
            q = rounding_step(x, digits)  # 10**(exponent - digits + 1), at least the floor
            row[f"flips_{digits}"] = int((rx != ry).sum())
            row[f"expected_{digits}"] = float(np.minimum(d / q, 1.0).sum())
        rows.append(row)
    return pd.DataFrame(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index-only", action="store_true",
                        help="demo region without its students table (default: as params.yaml)")
    parser.add_argument("--keep", type=Path, help="keep the runs in this folder")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="float-noise-"))
    base = work / "region"
    base.mkdir(parents=True, exist_ok=True)
    text = (ROOT / "params.yaml").read_text(encoding="utf-8")
    if args.index_only:
        text = text.replace("write_students: true", "write_students: false")
    (base / "params.yaml").write_text(text, encoding="utf-8")
    synth = [sys.executable, "-m", "analysis.demo.synth", "--params", "params.yaml",
             "--out", "data/raw", "--truth", "data/demo_truth"]
    subprocess.run(synth, cwd=base, env=env(), check=True, stdout=subprocess.DEVNULL)
    found: dict[str, dict[str, np.ndarray]] = {}
    for name, extra in ENVS.items():
        root = work / name
        shutil.rmtree(root, ignore_errors=True)
        shutil.copytree(base, root)
        subprocess.run([sys.executable, "-c", RUN, str(root)], cwd=root, env=env(extra),
                       check=True, stdout=subprocess.DEVNULL)
        found[name] = collect(root)
    pd.set_option("display.width", 200)
    for name in list(ENVS)[1:]:
        table = compare(found["default"], found[name])
        noisy = table.loc[table["n_diff"] > 0]
        print(f"\n== default vs {name}: {int(table['n'].sum())} floats in "
              f"{len(table)} columns, {int(table['n_diff'].sum())} differ")
        print(noisy[["column", "n", "n_diff", "max_abs", "max_rel"]].to_string(index=False))
        print("rule (significant digits, floor 1e-10): flips observed / expected")
        for digits in RULES:
            print(f"  {digits:2d} digits: {int(table[f'flips_{digits}'].sum()):5d} / "
                  f"{table[f'expected_{digits}'].sum():.3g}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
