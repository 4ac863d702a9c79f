"""lme4 as a reference: run benchmarks/lme4_fit.R on a DataFrame via ``Rscript``.

Used by tests/models/test_mixed.py (whose lme4 comparisons fail when R or lme4 is missing: `make
sysdeps` installs them) and by benchmarks/mixed_scale.py.
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "lme4_fit.R"


@functools.cache
def unavailable() -> str | None:
    """Why lme4 cannot be run here (None when it can)."""
    rscript = shutil.which("Rscript")
    if rscript is None:
        return "Rscript is not installed"
    try:
        probe = "quit(status = !requireNamespace('lme4', quietly = TRUE))"
        r = subprocess.run([rscript, "-e", probe], check=False, capture_output=True,
                           timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"Rscript failed to start: {e}"
    if r.returncode != 0:
        return "the R package lme4 is not installed"
    return None


def require() -> None:
    """Fail the calling test where R with lme4 is missing: the comparison with lme4 is a
    known answer, never skipped (``make test`` runs ``make sysdeps``, which installs them)."""
    import pytest

    why = unavailable()
    if why is not None:
        pytest.fail(f"the lme4 comparison needs R with lme4, but {why}: run `make sysdeps` "
                    "(apt: r-base-core r-cran-lme4)")


def spec(name: str, formula: str, *, reml: bool = True, weights: str | None = None,
         repeats: int = 1, ranef: bool = False, factors: tuple[str, ...] = (),
         tight: bool = False) -> str:
    """One model spec for lme4_fit.R (``key=value;...``).

    ``tight``: optimiser tolerances far below lme4's defaults (reference values, not timings).
    """
    parts = {"name": name, "formula": formula, "reml": int(reml), "repeats": repeats,
             "ranef": int(ranef), "control": "tight" if tight else "default"}
    if weights:
        parts["weights"] = weights
    if factors:
        parts["factors"] = ",".join(factors)
    return ";".join(f"{k}={v}" for k, v in parts.items())


def run_csv(csv: Path, specs: list[str], timeout: float = 3600) -> list[dict]:
    """Run lme4_fit.R on a CSV file; one dict of results per spec (see the R script)."""
    r = subprocess.run(["Rscript", str(SCRIPT), str(csv), *specs], check=False,
                       capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"lme4_fit.R failed ({r.returncode}):\n{r.stderr[-3000:]}")
    out = []
    for line in r.stdout.splitlines():
        if line.startswith("LME4 "):
            out.append(_tidy(json.loads(line[5:])))
    if len(out) != len(specs):
        raise RuntimeError(f"lme4_fit.R printed {len(out)} results for {len(specs)} specs:\n"
                           f"{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    return out


def run(data: pd.DataFrame, specs: list[str], tmp_dir: Path | None = None) -> list[dict]:
    """Write ``data`` to CSV (17 significant digits) in a temporary folder and run lme4."""
    with tempfile.TemporaryDirectory(dir=tmp_dir) as d:
        csv = Path(d) / "data.csv"
        data.to_csv(csv, index=False, float_format="%.17g")
        return run_csv(csv, specs)


def fit(data: pd.DataFrame, formula: str, *, reml: bool = True, weights: str | None = None,
        ranef: bool = False, factors: tuple[str, ...] = (), tight: bool = True,
        tmp_dir: Path | None = None) -> dict:
    """One lme4 fit (tight tolerances by default); see :func:`run_csv` for the keys."""
    return run(data, [spec("m", formula, reml=reml, weights=weights, ranef=ranef,
                           factors=factors, tight=tight)], tmp_dir)[0]


def _tidy(r: dict) -> dict:
    """Arrays as numpy / pandas: fixef, se (Series), cov_re (DataFrame), ranef (DataFrame)."""
    for key in ("n", "ngroups", "time_median", "criterion", "loglik", "sigma2"):
        r[key] = float(r[key][0]) if r[key][0] is not None else float("nan")
    names = r["fixef_names"]
    r["fixef"] = pd.Series(np.array(r["fixef"], dtype=float), index=names)
    r["se"] = pd.Series(np.array(r["se"], dtype=float), index=names)
    q = len(r["re_names"])
    r["cov_re"] = pd.DataFrame(np.array(r["cov_re"], dtype=float).reshape(q, q, order="F"),
                               index=r["re_names"], columns=r["re_names"])
    r["theta"] = np.array(r["theta"], dtype=float)
    if "ranef" in r:
        g = r["ranef_groups"]
        r["ranef"] = pd.DataFrame(np.array(r["ranef"], dtype=float).reshape(len(g), q),
                                  index=g, columns=r["re_names"])
        r["ranef_sd"] = pd.DataFrame(np.array(r["ranef_sd"], dtype=float).reshape(len(g), q),
                                     index=g, columns=r["re_names"])
    return r
