"""Benchmark: stage 03 (the link between social status and results) at national scale, per
model family and whole, with lme4 side by side for the mixed models.

Run on demand (``make bench``); not part of the tests::

    .venv/bin/python benchmarks/ses_link_scale.py            # 40,000 schools x 3 years
    .venv/bin/python benchmarks/ses_link_scale.py --quick    # 4,000 schools, 230 municipalities

Data.  A synthetic national data set is generated with numpy from ``--seed`` (the project's
region generator stops at 99 municipalities, so it is not used): schools in ~2,300
municipalities of uneven (lognormal) sizes, 2023-2025; per school a settlement type
(city/town/village, more cities in better-off municipalities), a school type
(``schema.SCHOOL_TYPES``, more basic schools in villages), an enrolment, and a social index
(municipality effect + N(0, 1), standardised per year).  A latent logit of school quality
depends on the index, the types, a municipality intercept and index slope, a school effect
and yearly noise; each school-year's results rows (tidy, as stage 01 writes them: VPR
rus/math grades 5 and 6, OGE rus/math grade 9; ``kind`` "marked", ``n_low`` = ``n_mark2``,
``n_below_min`` NA) are multinomial draws of the marks 2..5 from an ordered logit around
it.  ``school_year`` (quality index = share of «4»+«5», ``n_students`` = per procedure and
grade the largest participants over subjects, summed) is aggregated from those rows as stage
01 does.  A child process generates the tables and writes them to parquet (the stage's
inputs are files); the timings below read them back.

What is timed (``time.perf_counter``, median of ``--repeat`` runs, one BLAS/OpenMP thread),
with the project's ``params.yaml`` (``year`` = 2025, ``min_n``, ``ses_link``,
``multilevel``, ``prepare.quality_*``) and the inputs of each family prepared as
:func:`analysis.models.link.ses_link_stage` prepares them (not timed):

- the expected-result model, :func:`analysis.models.expected.fit_expected`;
- the PISA gradient of all schools, :func:`analysis.models.gradients.gradient_stats`;
- the gradients by settlement type and by school type (``gradients_by``, both);
- the gradients by year and their trend (``gradients_by(by="year")`` + ``trend``; the
  yearly samples are built beforehand);
- the component gradients (``component_gradients``, every procedure x subject x grade x
  year);
- the binomial (quasi-binomial GLM) model of the share of «2», ``fit_binomial``;
- schools within municipalities via :func:`analysis.models.link.multilevel_models`: the empty
  and the conditional random-intercept model, and the same with the random slope of the
  index (``multilevel.random_slope: true``), each as the stage runs it (design, weights and
  the statsmodels cross-check included);
- the whole stage, :func:`analysis.models.link.ses_link_stage` without students and
  clusters (``random_slope`` as in params.yaml), each run in a fresh process that reads the
  parquet inputs, started before this process loads any data (a child inherits its parent's
  peak RSS); its peak resident memory (``resource.getrusage``, imports and input tables
  included) is reported next to the peak after reading the inputs.

lme4.  For the two mixed rows, lme4 fits the SAME school-level data and models through
``benchmarks/lme4_fit.R`` (via ``tests/helpers/lme4_ref.py`` and the comparison of
``benchmarks/mixed_scale.py``): y = quality index, fixed part = the expected model's design
(the spline columns of the index and the dummies, written to the CSV as numeric columns, so
both sides fit exactly the same X), group = municipality, weights = ``n_students`` scaled to
mean 1, REML.  lme4 times (only ``lmer()``, lme4's default optimiser, same number of
repeats) are summed over the empty and the conditional model to match
``multilevel_models``; a second line compares the conditional model alone
(``mixed.fit_lmm(..., check=False)``).  Differences are those of the conditional model
against lme4 with tight tolerances (the reference, as in mixed_scale.py): largest relative
difference of the fixed effects, their standard errors and the variance components.
Without Rscript or lme4 the comparison is skipped and only ours is timed.  Exit status 0.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from analysis.config import load_yaml
from analysis.ingest import schema
from analysis.models import binomial, expected, gradients, link, mixed
from analysis.models import sample as sample_mod
from analysis.pipeline.nbrun import THREAD_VARS

ROOT = Path(__file__).resolve().parents[1]
YEARS = (2023, 2024, 2025)
SETTLEMENTS = ("city", "town", "village")
#: School type probabilities per settlement type, in the order of schema.SCHOOL_TYPES
#: (basic, secondary, advanced, gymnasium, lyceum, adapted, other).
TYPE_P = {"city": (0.05, 0.60, 0.09, 0.12, 0.08, 0.04, 0.02),
          "town": (0.12, 0.70, 0.05, 0.05, 0.03, 0.03, 0.02),
          "village": (0.40, 0.55, 0.01, 0.01, 0.00, 0.02, 0.01)}
TYPE_EFFECT = (-0.15, 0.0, 0.25, 0.45, 0.55, -0.60, -0.10)    # logit scale
SETTLEMENT_EFFECT = (0.0, -0.10, -0.20)
ENROLMENT = (650.0, 420.0, 130.0)                             # median per settlement type
#: (procedure, subject, grade, logit offset of the component)
COMPONENTS = (("VPR", "rus", 5, 0.10), ("VPR", "math", 5, 0.20), ("VPR", "rus", 6, -0.05),
              ("VPR", "math", 6, -0.10), ("OGE", "rus", 9, 0.30), ("OGE", "math", 9, -0.20))
CUTS = (-2.2, 0.0, 2.0)           # ordered logit: P(mark >= 3), P(>= 4), P(5) at eta = 0
QUALITY = link.QUALITY


# --- data -----------------------------------------------------------------------------------

def _sigmoid(v: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-v))


def make_data(n_schools: int = 40_000, n_municipalities: int = 2_300,
              seed: int = 20250603) -> dict[str, pd.DataFrame]:
    """Synthetic stage 01/02 outputs: ``schools``, ``social_index``, ``school_year``,
    ``results`` (dtypes as the processed parquet files)."""
    rng = np.random.default_rng(seed)
    size = rng.lognormal(0.0, 1.0, n_municipalities)
    counts = 1 + rng.multinomial(n_schools - n_municipalities, size / size.sum())
    muni = np.repeat(np.arange(n_municipalities), counts)
    muni_ses = rng.normal(0.0, 0.5, n_municipalities)
    p_city = _sigmoid(1.5 * muni_ses + 0.4 * np.log(counts / np.median(counts)) - 0.8)[muni]
    u = rng.random(n_schools)
    settle = np.where(u < p_city, 0, np.where(u < p_city + (1 - p_city) * 0.35, 1, 2))
    stype = np.empty(n_schools, dtype="int64")
    for s, name in enumerate(SETTLEMENTS):
        at = settle == s
        stype[at] = rng.choice(len(schema.SCHOOL_TYPES), at.sum(), p=TYPE_P[name])
    status = muni_ses[muni] + rng.normal(0.0, 1.0, n_schools)
    enrol0 = np.clip(rng.lognormal(np.log(np.array(ENROLMENT)[settle]), 0.6), 15, 3000)
    enrol0 = np.where(stype == 5, enrol0 * 0.3, enrol0)                  # adapted: small
    mu_a = rng.normal(0.0, 0.30, n_municipalities)[muni]                 # intercepts
    mu_b = rng.normal(0.0, 0.06, n_municipalities)[muni]                 # index slopes
    school_eff = rng.normal(0.0, 0.30, n_schools)
    ids = np.array([f"{i + 1:06d}" for i in range(n_schools)], dtype=object)
    munis = np.array([f"M{m + 1:04d}" for m in range(n_municipalities)], dtype=object)[muni]

    schools, index, results = [], [], []
    for k, year in enumerate(YEARS):
        x = status + rng.normal(0.0, 0.15, n_schools)
        x = (x - x.mean()) / x.std()
        enrol = np.round(enrol0 * rng.uniform(0.93, 1.07, n_schools)).astype("int64")
        eta = (0.35 * x + mu_b * x + np.array(TYPE_EFFECT)[stype]
               + np.array(SETTLEMENT_EFFECT)[settle] + mu_a + school_eff + 0.03 * k
               + rng.normal(0.0, 0.10, n_schools))
        schools.append(pd.DataFrame({
            "source_file": "schools.csv", "source_row": np.arange(n_schools) + 2 + k * n_schools,
            "year": year, "school_id": ids, "municipality": munis,
            "settlement_type": np.array(SETTLEMENTS)[settle],
            "school_type": np.array(schema.SCHOOL_TYPES)[stype], "enrollment": enrol}))
        index.append(pd.DataFrame({"year": year, "school_id": ids, "social_index": x}))
        cohort = enrol / 11.0
        for proc, subj, grade, offset in COMPONENTS:
            n = rng.binomial(np.round(cohort * rng.uniform(0.8, 1.2, n_schools)).astype("int64"),
                             0.93)
            e = eta + offset + rng.normal(0.0, 0.15, n_schools)
            ge = _sigmoid(e[:, None] - np.array(CUTS)[None, :])          # P(>=3), P(>=4), P(5)
            p = np.column_stack([1 - ge[:, 0], ge[:, 0] - ge[:, 1], ge[:, 1] - ge[:, 2],
                                 ge[:, 2]])
            p = np.clip(p, 0.0, None)
            marks = rng.multinomial(n, p / p.sum(axis=1, keepdims=True))
            keep = n > 0
            results.append(pd.DataFrame({
                "year": year, "school_id": ids[keep], "procedure": proc, "subject": subj,
                "grade": grade, "participants": n[keep],
                **{f"n_mark{m}": marks[keep, m - 2] for m in (2, 3, 4, 5)}}))
    schools = pd.concat(schools, ignore_index=True)
    index = pd.concat(index, ignore_index=True)
    results = pd.concat(results, ignore_index=True)
    results["n_below_min"] = pd.NA
    results["kind"] = "marked"
    results["n_low"] = results["n_mark2"]
    schools = schools.astype({"year": "Int64", "school_id": "string", "municipality": "string",
                              "settlement_type": "string", "school_type": "string",
                              "source_file": "string", "enrollment": "Int64"})
    index = index.astype({"year": "Int64", "school_id": "string"})
    counts_cols = ["participants", *schema.MARK_COUNTS, "n_below_min", "n_low"]
    results = results.astype({"year": "Int64", "school_id": "string", "procedure": "string",
                              "subject": "string", "grade": "Int64",
                              **dict.fromkeys(counts_cols, "Int64")})
    return {"schools": schools, "social_index": index,
            "school_year": school_year_table(results), "results": results}


def school_year_table(results: pd.DataFrame) -> pd.DataFrame:
    """Stage 01's school_year (good_share): quality index, n_tests, n_students, marks."""
    key = list(schema.SCHOOL_KEY)
    r = results.assign(good=results["n_mark4"] + results["n_mark5"])
    agg = r.groupby(key, sort=True).agg(
        n_good=("good", "sum"), n_tests=("participants", "sum"),
        n_components=("participants", "size"),
        **{m: (m, "sum") for m in schema.MARK_COUNTS})
    students = (r.groupby(key + ["procedure", "grade"], sort=True)["participants"].max()
                .groupby(level=key).sum().rename("n_students"))
    out = agg.join(students).reset_index()
    out["quality_index"] = (out["n_good"] / out["n_tests"]).astype("float64")
    out["ege_not_failing"] = np.nan
    out["n_ege"] = pd.array([pd.NA] * len(out), dtype="Int64")
    out = out.astype({"n_tests": "int64", "n_students": "int64", "n_components": "int64",
                      **dict.fromkeys(schema.MARK_COUNTS, "Int64")})
    return out[key + ["quality_index", "n_tests", "n_students", "n_components",
                      *schema.MARK_COUNTS, "ege_not_failing", "n_ege"]]


def read_tables(folder: Path) -> dict[str, pd.DataFrame]:
    return {name: pd.read_parquet(folder / f"{name}.parquet")
            for name in ("schools", "social_index", "school_year", "results")}


# --- params and the stage -------------------------------------------------------------------

def stage_params() -> dict:
    """The stage's keyword arguments from params.yaml (year = the last synthetic year)."""
    p = load_yaml(ROOT / "params.yaml")
    prep = p["prepare"]
    return {"year": YEARS[-1], "min_n": int(p["min_n"]), "ses_link": p["ses_link"],
            "multilevel": p["multilevel"], "procedures": prep["quality_procedures"],
            "subjects": prep["quality_subjects"], "grades": prep["quality_grades"],
            "formula": prep["quality_formula"]}


def run_stage_once(folder: Path) -> dict:
    """The whole stage in this (fresh) process: wall seconds and peak RSS (MB)."""
    t = read_tables(folder)
    kw = stage_params()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    res = link.ses_link_stage(t["schools"], t["social_index"], t["school_year"], t["results"],
                              None, None, **kw)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": seconds, "peak_mb": peak, "inputs_mb": before,
            "n_schools": int(res.summary["n_schools"]), "n_rows": len(res.estimates),
            "random_slope": bool(kw["multilevel"]["random_slope"])}


# --- the families ---------------------------------------------------------------------------

def family_inputs(t: dict[str, pd.DataFrame], kw: dict) -> dict:
    """What ses_link_stage hands each family (built as the stage builds it; not timed)."""
    year, min_n = kw["year"], kw["min_n"]
    spec = expected.ExpectedSpec.from_params(kw["ses_link"])
    sample, _ = sample_mod.analysis_sample(t["schools"], t["social_index"], t["school_year"],
                                           year=year, min_n=min_n)
    fit = expected.fit_expected(sample, spec)
    full = pd.concat([sample, fit.fitted], axis=1)
    years = link.yearly_samples(t["schools"], t["social_index"], t["school_year"], min_n=min_n)
    comp, _ = link.component_points(t["results"], t["social_index"], year=year, min_n=min_n,
                                    procedures=kw["procedures"], subjects=kw["subjects"],
                                    grades=kw["grades"], formula=kw["formula"])
    counts = sample[["school_id", "social_index", "municipality", *spec.terms]].merge(
        link.fail_counts(t["results"], year=year, procedures=kw["procedures"],
                         subjects=kw["subjects"], grades=kw["grades"]),
        on="school_id", how="inner")
    common = {"min_schools": int(kw["ses_link"]["min_schools"]), "cov_type": spec.cov_type}
    return {"spec": spec, "sample": sample, "fit": fit, "full": full, "years": years,
            "comp": comp, "counts": counts, "common": common, "year": year, "min_n": min_n}


def families(d: dict, t: dict[str, pd.DataFrame]) -> list[tuple[str, str, Callable]]:
    """(key, label, callable) of every model family of stage 03."""
    year, common = d["year"], d["common"]

    def by_type():
        return [gradients.gradients_by(d["full"], y=QUALITY, by=by, outcome=QUALITY,
                                       year=year, **common) for by in link.BY]

    def by_year():
        yearly = gradients.gradients_by(d["years"], y=QUALITY, by="year", outcome=QUALITY,
                                        **common)
        return gradients.trend(yearly)

    return [
        ("expected", "expected-result model (WLS, spline + terms)",
         lambda: expected.fit_expected(d["sample"], d["spec"])),
        ("gradient", "PISA gradient, all schools",
         lambda: gradients.gradient_stats(d["full"], y=QUALITY, outcome=QUALITY, year=year,
                                          **common)),
        ("by_type", "gradients by settlement type + school type", by_type),
        ("by_year", "gradients by year + trend", by_year),
        ("components", "component gradients (proc x subj x grade x year)",
         lambda: gradients.component_gradients(d["comp"], t["social_index"], t["schools"],
                                                min_n=d["min_n"], **common)),
        ("binomial", "binomial GLM, share of «2»",
         lambda: binomial.fit_binomial(d["counts"], d["spec"])),
        ("ri", "multilevel: empty + random intercept",
         lambda: link.multilevel_models(d["full"], d["fit"], year=year, random_slope=False)),
        ("rs", "multilevel: empty + random slope",
         lambda: link.multilevel_models(d["full"], d["fit"], year=year, random_slope=True)),
    ]


def timed(fn: Callable, repeats: int) -> tuple[float, list[float], object]:
    """Median seconds of ``repeats`` calls, all times, and the last result."""
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times, out


def lmm_inputs(d: dict, random_slope: bool) -> dict:
    """y, X, groups, Z, weights of the conditional model, as link.multilevel_models builds
    them (X: the expected model's design with a constant, from public expected.design)."""
    full, fit = d["full"], d["fit"]
    X = expected.design(full, fit.spec, fit.basis, x=fit.x, levels=fit.levels)
    X = X[[c for c in fit.columns if c in X.columns]].reset_index(drop=True)
    X.insert(0, "Intercept", 1.0)
    w = full["n_students"].to_numpy(dtype="float64")
    Z = (pd.DataFrame({"Intercept": 1.0, "social_index": full["social_index"].to_numpy()})
         if random_slope else None)
    return {"y": full[QUALITY].to_numpy(dtype="float64"), "X": X,
            "groups": full["municipality"].astype(str).to_numpy(), "Z": Z,
            "weights": w / w.mean()}


# --- lme4 -----------------------------------------------------------------------------------

def mixed_scale():
    """benchmarks/mixed_scale.py (its lme4 runner and comparison)."""
    here = str(Path(__file__).resolve().parent)
    if here not in sys.path:
        sys.path.insert(0, here)
    return importlib.import_module("mixed_scale")


def run_lme4(d: dict, repeats: int) -> tuple[dict[str, dict], dict[str, str], str | None]:
    """lme4 fits of the empty, random-intercept and random-slope models on the stage's
    school-level data and design; (results by spec name, R name -> our name, why skipped)."""
    ms = mixed_scale()
    ref = ms.lme4_ref()
    why = ref.unavailable()
    if why is not None:
        return {}, {}, why
    li = lmm_inputs(d, random_slope=False)
    names = {c: "X_" + re.sub(r"\W", "_", c) for c in li["X"].columns}
    if len(set(names.values())) != len(names):
        return {}, {}, f"design column names collide in R: {list(names)}"
    data = li["X"].rename(columns=names)
    data["y"] = li["y"]
    data["municipality"] = li["groups"]
    data["w"] = li["weights"]
    rhs = "0 + " + " + ".join(names.values())
    x = names[d["fit"].basis.columns_[0]]                  # "x": the index itself
    forms = {"empty": "y ~ 1 + (1 | municipality)",
             "ri": f"y ~ {rhs} + (1 | municipality)",
             "rs": f"y ~ {rhs} + (1 + {x} | municipality)"}
    specs = []
    for name, f in forms.items():
        specs.append(ref.spec(name, f, weights="w", repeats=repeats))
        specs.append(ref.spec(name + "_tight", f, weights="w", repeats=1, tight=True))
    try:
        out = {r["name"]: r for r in ref.run(data, specs)}
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
        return {}, {}, f"lme4_fit.R failed: {str(e).splitlines()[0]}"
    back = {v: k for k, v in names.items()}
    back["(Intercept)"] = "Intercept"
    for r in out.values():
        r["fixef"] = r["fixef"].rename(index=back)
        r["se"] = r["se"].rename(index=back)
    return out, back, None


# --- main -----------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="4,000 schools in 230 municipalities instead of 40,000 in 2,300")
    ap.add_argument("--repeat", "--repeats", dest="repeat", type=int, default=5,
                    help="timed runs per family (median reported)")
    ap.add_argument("--seed", type=int, default=20250603)
    ap.add_argument("--run-stage", metavar="DATA", help=argparse.SUPPRESS)
    ap.add_argument("--make-data", nargs=4, metavar=("OUT", "SCHOOLS", "MUNICIPALITIES", "SEED"),
                    help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    # one BLAS/OpenMP thread as in the pipeline: in the environment (set before numpy loads
    # in the stage's processes and in Rscript) and, here, at run time
    for var in THREAD_VARS:
        os.environ[var] = "1"
    with threadpool_limits(limits=1):
        if args.make_data:
            out, n_schools, n_muni, seed = args.make_data
            for name, table in make_data(int(n_schools), int(n_muni), int(seed)).items():
                table.to_parquet(Path(out) / f"{name}.parquet")
            return 0
        if args.run_stage:
            print(json.dumps(run_stage_once(Path(args.run_stage))))
            return 0
        return run(args)


def run(args: argparse.Namespace) -> int:
    repeats = max(args.repeat, 1)
    n_schools, n_muni = (4_000, 230) if args.quick else (40_000, 2_300)
    kw = stage_params()
    env = {**os.environ, **dict.fromkeys(THREAD_VARS, "1")}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        # data and the whole-stage runs in child processes while this one is small: a child
        # starts with its parent's peak RSS (fork + exec keep it), which would hide its own
        t0 = time.perf_counter()
        subprocess.run([sys.executable, __file__, "--make-data", str(folder), str(n_schools),
                        str(n_muni), str(args.seed)], check=True, env=env)
        made = time.perf_counter() - t0
        stage = []
        for _ in range(repeats):
            out = subprocess.run([sys.executable, __file__, "--run-stage", str(folder)],
                                 check=True, env=env, capture_output=True, text=True).stdout
            stage.append(json.loads(out.strip().splitlines()[-1]))

        t = read_tables(folder)
        d = family_inputs(t, kw)
        sizes = t["schools"].loc[t["schools"]["year"] == kw["year"]].groupby(
            "municipality").size()
        print(f"data: {n_schools:,} schools x {len(YEARS)} years in {n_muni:,} municipalities "
              f"({sizes.min()} to {sizes.max()} schools, median {sizes.median():g}); "
              f"{len(t['results']):,} results rows; generated and written in {made:.1f} s")
        print(f"stage 03 for {kw['year']}: {len(d['sample']):,} schools in the sample "
              f"(min_n = {kw['min_n']}), {d['sample']['municipality'].nunique():,} "
              f"municipalities; expected model columns {list(d['fit'].columns)}; median of "
              f"{repeats} runs each")
        print(f"  {'whole stage (fresh process each)':<52} "
              f"{statistics.median(s['seconds'] for s in stage):8.3f} s", flush=True)

        ours: dict[str, tuple[float, object]] = {}
        labels: dict[str, str] = {}
        for key, label, fn in families(d, t):
            sec, _, out = timed(fn, repeats)
            ours[key], labels[key] = (sec, out), label
            print(f"  {label:<52} {sec:8.3f} s", flush=True)
        alone: dict[str, tuple[float, mixed.LMMFit]] = {}
        for key, slope in (("ri", False), ("rs", True)):
            li = lmm_inputs(d, slope)
            sec, _, fit = timed(lambda li=li: mixed.fit_lmm(
                li["y"], li["X"], li["groups"], li["Z"], weights=li["weights"], check=False),
                repeats)
            alone[key] = (sec, fit)
            assert list(fit.fixed.index) == list(ours[key][1][1]["conditional"].fixed.index)

        lme4, _, why = run_lme4(d, repeats)
    if why:
        print(f"lme4 comparison skipped: {why}")
    report(ours, labels, alone, stage, lme4, repeats)
    return 0


def report(ours: dict, labels: dict, alone: dict, stage: list[dict], lme4: dict,
           repeats: int) -> None:
    ms = mixed_scale() if lme4 else None
    print()
    head = (f"{'family':<52} {'ours (s)':>9} {'lme4 (s)':>9} {'ours/lme4':>9} {'fixed':>8} "
            f"{'se':>8} {'var':>8} {'crit':>10}")
    print(head)
    print("-" * len(head))
    dash = f"{'-':>9} {'-':>9} {'-':>8} {'-':>8} {'-':>8} {'-':>10}"
    for key, (sec, out) in ours.items():
        if key not in ("ri", "rs"):
            print(f"{labels[key]:<52} {sec:>9.3f} {dash}")
            continue
        cond = out[1]["conditional"]
        if key in lme4:
            tl = lme4["empty"]["time_median"] + lme4[key]["time_median"]
            dd = ms.rel_diff(cond, lme4[key + "_tight"])
            print(f"{labels[key]:<52} {sec:>9.3f} {tl:>9.3f} {sec / tl:>9.3f} "
                  f"{dd['fixed']:>8.1e} {dd['se']:>8.1e} {dd['var']:>8.1e} "
                  f"{dd['crit']:>+10.1e}")
            sa, _ = alone[key]
            ta = lme4[key]["time_median"]
            print(f"{'  conditional alone (fit_lmm, check=False)':<52} {sa:>9.3f} {ta:>9.3f} "
                  f"{sa / ta:>9.3f}")
        else:
            print(f"{labels[key]:<52} {sec:>9.3f} {dash}")
            print(f"{'  conditional alone (fit_lmm, check=False)':<52} {alone[key][0]:>9.3f}")
    total = sum(sec for key, (sec, _) in ours.items() if key != "rs")
    sec = statistics.median(s["seconds"] for s in stage)
    print(f"{'sum of the families above (without random slope)':<52} {total:>9.3f}")
    slope = "with" if stage[0]["random_slope"] else "without"
    print(f"{f'whole stage ({slope} random slope, no students)':<52} {sec:>9.3f}")
    print()
    peak = statistics.median(s["peak_mb"] for s in stage)
    inputs = statistics.median(s["inputs_mb"] for s in stage)
    each = ", ".join(f"{s['seconds']:.2f}" for s in stage)
    print(f"whole stage: {stage[0]['n_schools']:,} schools, {stage[0]['n_rows']:,} estimate rows; "
          f"times {each} s; peak RSS {peak:.0f} MB "
          f"({inputs:.0f} MB after imports and reading the inputs), medians of {repeats} "
          "fresh processes")
    if lme4:
        print("lme4: lmer() only, default optimiser, median of the same repeats; multilevel "
              "rows: lme4 empty + conditional vs ours via link.multilevel_models (design, "
              "weights and the statsmodels cross-check included, as the stage runs it).")
        print("differences: conditional model vs lme4 with tight tolerances, same data and "
              "design (the expected model's columns as numeric columns in R); largest "
              "relative difference of fixed effects, SEs, variance components; crit = REML "
              "criterion ours - lme4 (negative: our optimum is better).")
        for key in ("empty", "ri", "rs"):
            if lme4[key]["warnings"]:
                print(f"lme4 warnings ({key}): " + "; ".join(
                    w.replace("\n", " ") for w in lme4[key]["warnings"]))


if __name__ == "__main__":
    raise SystemExit(main())
