"""Benchmark: linear mixed models at national scale, ours (analysis.models.mixed) vs lme4.

Run on demand (not part of the tests)::

    .venv/bin/python benchmarks/mixed_scale.py            # 40,000 schools x 3 years
    .venv/bin/python benchmarks/mixed_scale.py --quick    # 4,000 schools, 230 municipalities

A synthetic national data set is generated with numpy from a seed: schools in municipalities
of uneven (lognormal) sizes, 3 years, a school-level quality-like outcome on a 0..1 scale with
a social index ``x``, settlement type (3 levels), school type (5 levels), a municipality random
intercept and random slope of ``x``, and the number of students as prior weights (residual
variance sigma^2 / n_students).  Two models, both REML with weights::

    ri: y ~ x + C(settlement) + C(school_type) + C(year) + (1 | municipality)
    rs: y ~ x + C(settlement) + C(school_type) + C(year) + (1 + x | municipality)

Times are medians of ``--repeats`` in-process runs (time.perf_counter, one BLAS thread) of
:func:`analysis.models.mixed.fit_formula` from the DataFrame (design matrices included) with
``check=False``; the statsmodels cross-check (``check=True`` minus ``check=False``) is timed
separately.  lme4 runs in the same invocation through ``benchmarks/lme4_fit.R`` (only
``lmer()`` is timed there, by ``system.time``, median of the same number of repeats, CSV
reading excluded), with lme4's default optimiser settings (the timed comparison) and with
tight tolerances (``control=tight`` of lme4_fit.R: the reference for the estimates, since
lme4's default BOBYQA stops at nloptr's ``xtol_rel = 1e-4``).  The table shows the ratio
ours / lme4 and the largest relative difference of the fixed effects, their standard errors
and the variance components (residual variance and random-effect covariance; relative to the
largest element of each covariance).  Targets: ri ratio <= 0.5 and rel. diff <= 1e-6;
rs ratio <= 1.0 and rel. diff <= 1e-4.  Without Rscript or lme4 the comparison is skipped
and only ours is timed.  Exit status 0.
"""

from __future__ import annotations

import argparse
import importlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from analysis.models.mixed import fit_formula

ROOT = Path(__file__).resolve().parents[1]
#: One BLAS/OpenMP thread, as the pipeline's kernels run (analysis.pipeline.nbrun.fix_threads);
#: also set in the environment that Rscript inherits.
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


def lme4_ref():
    """tests/helpers/lme4_ref.py (runs benchmarks/lme4_fit.R through Rscript)."""
    if str(ROOT / "tests") not in sys.path:
        sys.path.insert(0, str(ROOT / "tests"))
    return importlib.import_module("helpers.lme4_ref")


SETTLEMENTS = ("city", "town", "village")
SCHOOL_TYPES = ("gymnasium", "lyceum", "primary", "secondary", "special")
YEARS = (2023, 2024, 2025)
FIXED = "y ~ x + C(settlement) + C(school_type) + C(year)"
R_FIXED = "y ~ x + settlement + school_type + factor(year)"
MODELS = (("ri", "1", "(1 | municipality)", 0.5, 1e-6),
          ("rs", "1 + x", "(1 + x | municipality)", 1.0, 1e-4))


def make_data(n_schools: int = 40_000, n_municipalities: int = 2_300,
              seed: int = 20240601) -> pd.DataFrame:
    """Synthetic school-year table (one row per school and year).

    Parameters
    ----------
    n_schools, n_municipalities : int
    seed : int

    Returns
    -------
    DataFrame, shape (n_schools * 3, 8)
        ``school``, ``municipality`` (label ``M0001``...), ``year``, ``settlement``,
        ``school_type``, ``x`` (social index, SD units), ``n_students`` (weights, 5..600),
        ``y`` (quality share, 0..1).
    """
    rng = np.random.default_rng(seed)
    size = rng.lognormal(0.0, 1.0, n_municipalities)
    share = size / size.sum()
    counts = 1 + rng.multinomial(n_schools - n_municipalities, share)
    muni = np.repeat(np.arange(n_municipalities), counts)
    muni_x = rng.normal(0.0, 0.6, n_municipalities)
    p_city = 1 / (1 + np.exp(-(muni_x * 2 - 0.5)))
    u = rng.random(n_schools)
    pc = p_city[muni]
    settlement = np.where(u < pc, 0, np.where(u < pc + (1 - pc) * 0.4, 1, 2))
    school_type = rng.choice(5, n_schools, p=[0.08, 0.07, 0.05, 0.75, 0.05])
    x_school = muni_x[muni] + rng.normal(0.0, 0.8, n_schools) - 0.3 * settlement
    n_stud = np.clip(np.round(rng.lognormal(np.log(60) - 0.4 * settlement, 0.7)), 5, 600)
    b0 = rng.normal(0.0, 0.05, n_municipalities)          # municipality intercepts
    b1 = rng.normal(0.0, 0.015, n_municipalities)         # and slopes of x
    set_eff = np.array([0.0, -0.02, -0.05])
    type_eff = np.array([0.08, 0.06, 0.01, 0.0, -0.10])
    year_eff = np.array([0.0, 0.01, -0.005])
    rows = []
    for k in range(len(YEARS)):
        x = x_school + rng.normal(0.0, 0.1, n_schools)
        n = np.clip(np.round(n_stud * rng.uniform(0.85, 1.15, n_schools)), 5, 600)
        mu = (0.6 + 0.06 * x + set_eff[settlement] + type_eff[school_type] + year_eff[k]
              + b0[muni] + b1[muni] * x)
        y = np.clip(mu + rng.normal(0.0, 1.0, n_schools) * 0.9 / np.sqrt(n), 0.0, 1.0)
        rows.append(pd.DataFrame({
            "school": np.arange(n_schools), "municipality": [f"M{m:04d}" for m in muni],
            "year": YEARS[k], "settlement": np.array(SETTLEMENTS)[settlement],
            "school_type": np.array(SCHOOL_TYPES)[school_type], "x": x, "n_students": n,
            "y": y}))
    return pd.concat(rows, ignore_index=True)


def time_ours(data: pd.DataFrame, random: str, repeats: int, check: bool) -> tuple[float, object]:
    """Median seconds of ``repeats`` fits (and the last fit)."""
    times = []
    fit = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        fit = fit_formula(data, FIXED, "municipality", random, weights="n_students",
                          check=check)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), fit


def _norm(name: str) -> str:
    """Common name of a fixed effect in patsy and R (treatment contrasts, same levels)."""
    name = name.replace("(Intercept)", "Intercept")
    for var, r in (("settlement", "settlement"), ("school_type", "school_type"),
                   ("year", "factor(year)")):
        name = name.replace(f"C({var})[T.", r)
    return ":".join(sorted(name.rstrip("]").split(":")))


def rel_diff(ours, r: dict) -> dict[str, float]:
    """Largest relative differences from an lme4 fit.

    ``fixed``: fixed effects; ``se``: their standard errors; ``var``: the residual variance
    and the variances of the random effects (relative), their covariances relative to
    ``sqrt(var_i var_j)`` (a correlation scale); ``crit``: criterion ours - lme4.
    """
    fx = r["fixef"].rename(index=_norm)
    se = r["se"].rename(index=_norm)
    mine = ours.fixed.rename(index=_norm)
    mine_se = ours.fixed_se.rename(index=_norm)
    fx, se = fx[mine.index], se[mine.index]
    cov_mine, cov_r = ours.cov_re.to_numpy(), r["cov_re"].to_numpy()
    scale = np.sqrt(np.outer(np.diag(cov_r), np.diag(cov_r)))
    return {
        "fixed": float(np.max(np.abs(mine.to_numpy() - fx.to_numpy()) / np.abs(fx.to_numpy()))),
        "se": float(np.max(np.abs(mine_se.to_numpy() / se.to_numpy() - 1))),
        "var": float(max(abs(ours.sigma2 / r["sigma2"] - 1),
                         np.max(np.abs(cov_mine - cov_r) / scale))),
        "crit": float(ours.criterion - r["criterion"]),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="4,000 schools in 230 municipalities instead of 40,000 in 2,300")
    ap.add_argument("--repeats", type=int, default=5, help="timed runs per model (>= 5)")
    ap.add_argument("--seed", type=int, default=20240601)
    args = ap.parse_args(argv)
    for var in THREAD_VARS:
        os.environ[var] = "1"
    with threadpool_limits(limits=1):
        return run(args)


def run(args: argparse.Namespace) -> int:
    repeats = max(args.repeats, 5)
    n_schools, n_muni = (4_000, 230) if args.quick else (40_000, 2_300)
    data = make_data(n_schools, n_muni, args.seed)
    sizes = data.groupby("municipality").school.nunique()
    print(f"data: {n_schools:,} schools x {len(YEARS)} years = {len(data):,} rows, "
          f"{n_muni:,} municipalities ({sizes.min()} to {sizes.max()} schools, median "
          f"{sizes.median():g}); median of {repeats} runs each")

    fit_formula(data.head(2000), FIXED, "municipality", "1", weights="n_students")  # warm-up
    ours: dict[str, tuple[float, float, object]] = {}
    for name, random, _, _, _ in MODELS:
        t, fit = time_ours(data, random, repeats, check=False)
        tc, fit_c = time_ours(data, random, repeats, check=True)
        ours[name] = (t, tc - t, fit)
        print(f"ours {name}: {t:.3f} s (check=False); statsmodels cross-check adds "
              f"{tc - t:.3f} s (|dloglike| = {fit_c.statsmodels_check:.2e}); "
              f"{fit.message}; {fit.evaluations} criterion evaluations")

    ref = lme4_ref()
    why = ref.unavailable()
    lme4: dict[str, dict] = {}
    if why is None:
        specs = []
        for name, _, rterm, _, _ in MODELS:
            f = f"{R_FIXED} + {rterm}"
            specs.append(ref.spec(name, f, weights="n_students", repeats=repeats))
            specs.append(ref.spec(name + "_tight", f, weights="n_students", repeats=repeats,
                                  tight=True))
        with tempfile.TemporaryDirectory() as d:
            csv = Path(d) / "national.csv"
            data.to_csv(csv, index=False, float_format="%.17g")
            for r in ref.run_csv(csv, specs):
                lme4[r["name"]] = r
    else:
        print(f"lme4 comparison skipped: {why}")

    print()
    head = (f"{'model':<6} {'lme4 optimiser':<15} {'ours (s)':>9} {'lme4 (s)':>9} "
            f"{'ours/lme4':>9} {'fixed':>8} {'se':>8} {'var':>8} {'crit ours-lme4':>15} "
            f"{'target (ratio, rel diff)':>25}")
    print(head)
    print("-" * len(head))
    for name, _, _, ratio_target, diff_target in MODELS:
        t, _, fit = ours[name]
        target = f"<= {ratio_target:g}, <= {diff_target:g}"
        if name not in lme4:
            print(f"{name:<6} {'-':<15} {t:>9.3f} {'-':>9} {'-':>9} {'-':>8} {'-':>8} "
                  f"{'-':>8} {'-':>15} {target:>25}")
            continue
        for label, key in (("default", name), ("tight", name + "_tight")):
            r = lme4[key]
            d = rel_diff(fit, r)
            tl = r["time_median"]
            print(f"{name:<6} {label:<15} {t:>9.3f} {tl:>9.3f} {t / tl:>9.3f} "
                  f"{d['fixed']:>8.1e} {d['se']:>8.1e} {d['var']:>8.1e} {d['crit']:>+15.2e} "
                  f"{target if label == 'default' else '':>25}")
    print()
    print("ours: fit_formula(..., check=False), design matrices included; the statsmodels "
          "cross-check (check=True) adds: "
          + ", ".join(f"{name} {ours[name][1]:.3f} s" for name, *_ in MODELS))
    print("rel diff: largest relative difference of the fixed effects, their SEs, and the "
          "variance components (covariances on the correlation scale); a negative criterion "
          "difference means our optimum is better than lme4's.")
    for name, *_ in MODELS:
        for key in (name, name + "_tight"):
            if key in lme4 and lme4[key]["warnings"]:
                print(f"lme4 warnings ({key}): "
                      + "; ".join(w.replace("\n", " ") for w in lme4[key]["warnings"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
