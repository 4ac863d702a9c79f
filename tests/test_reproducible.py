"""Same bytes on any CPU (#20): computations whose result must not depend on the path.

Another BLAS kernel or NumPy's vector paths change the order of additions, which moves a
result in its last bits.  The writers round every float to 7 significant digits
(:mod:`analysis.outputs`); that absorbs the noise only when the noise is far below the
rounding step.  Each test here pins one computation that used to amplify it:

- a slope from sums of ``w * 2025**2`` (cancels 7 of 16 digits);
- ``1 - P(0) - P(1)`` for a probability of 1e-9 (an absolute 1e-16, relative 1e-7);
- optimisers stopped by a tolerance (the stopping point moves with the path);
- a remainder that is 0 in exact arithmetic (±1e-16: noise with no digits to round).

Re-ordering the rows stands in for another CPU: it changes every sum's order, as a
different kernel does.  The end-to-end check is ``.ci/reproducible`` and the pipeline test
at the bottom (two environments, identical processed files).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from fractions import Fraction
from itertools import product
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.flags import rules
from analysis.flags import shnor as S
from analysis.models import mixed

ROOT = Path(__file__).resolve().parents[1]


def _rel(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(a), 1e-300)))


def test_decline_trend_does_not_depend_on_the_origin_of_years():
    """``flags.trend`` differed by 4e-10 between CPUs: the slope came from sums of
    ``w t^2`` with ``t = 2023..2025``.  Years from the reporting year give the same slope."""
    rng = np.random.default_rng(3)
    ids = [f"{i:04d}" for i in range(300)]
    rows = [{"school_id": s, "outcome": o, "year": y, "residual": rng.normal(0, 0.1),
             "s2": rng.uniform(0.001, 0.01)}
            for s, o, y in product(ids, ("VPR", "OGE"), (2023, 2024, 2025))]
    res = pd.DataFrame(rows)
    comps = pd.DataFrame({"outcome": ["VPR", "OGE"], "tau2_v": [0.004, 0.006]})
    a = rules.decline(res, comps, year=2025)
    shifted = res.assign(year=res["year"] - 2000)
    b = rules.decline(shifted, comps, year=25)
    assert _rel(a["trend"], b["trend"]) < 1e-13
    c = rules.decline(res.sample(frac=1.0, random_state=1), comps, year=2025)
    assert _rel(a["trend"], c["trend"].reindex(a.index)) < 1e-13


def _exact_rule(py: list[float], pp: list[float]) -> Fraction:
    def dist(ps):
        out = [Fraction(1)]
        for p in map(Fraction, ps):
            out = [a * (1 - p) + (out[i - 1] * p if i else 0)
                   for i, a in enumerate(out + [Fraction(0)])]
        return out
    y, prev = dist(py), dist(pp)
    ge2 = sum(y[2:], Fraction(0))
    one = y[1] if len(y) > 1 else Fraction(0)
    return ge2 + one * (1 - prev[0])


def test_rule_probability_keeps_the_relative_precision_of_small_probabilities():
    """``p_rule`` of 3e-9 moved by 1e-16 between CPUs (relative 3e-8): it was
    ``1 - P(0) - P(1)``.  Compared with exact rational arithmetic."""
    cases = {"tiny": ([1e-5, 2e-5, 3e-6], [1e-4]), "mixed": ([0.3, 1e-7, 2e-6], [1e-6, 0.5]),
             "one": ([2e-5], [3e-5, 1e-6]), "big": ([0.9, 0.8, 0.7], [0.2])}
    rows = [{"school_id": s, "year": y, "p_low": p}
            for s, (py, pp) in cases.items() for y, ps in ((2025, py), (2024, pp)) for p in ps]
    got = S.rule_probability(pd.DataFrame(rows), 2025)
    for s, (py, pp) in cases.items():
        want = float(_exact_rule(py, pp))
        assert got[s] == pytest.approx(want, rel=1e-13, abs=0), s


def test_beta_binomial_prior_does_not_depend_on_the_row_order():
    """``prior_mean`` and ``p_low`` moved by 1e-11: L-BFGS-B stopped at its tolerance, at a
    point that depends on the path.  Newton steps take it to the optimum itself."""
    rng = np.random.default_rng(7)
    m = 3000
    x = rng.normal(size=m)
    n = rng.integers(5, 120, m)
    mu = 1 / (1 + np.exp(-(-2.2 + 0.6 * x)))
    p = rng.beta(mu * 20, (1 - mu) * 20)
    k = rng.binomial(n, p)
    X = pd.DataFrame({"const": 1.0, "x": x})
    a = S.fit_beta_binomial(k, n, X)
    order = rng.permutation(m)
    b = S.fit_beta_binomial(k[order], n[order], X.iloc[order].reset_index(drop=True))
    assert _rel(a.coef, b.coef) < 1e-12 and _rel(a.rho, b.rho) < 1e-12


def test_mixed_model_with_a_random_slope_does_not_depend_on_the_row_order():
    """Stage 03's student model (random intercept and slope): its covariance moved by 1e-12
    between CPUs, because the Newton polish stopped one step short of the optimum (on this
    draw the re-ordered fit moved by 5e-10 before #20)."""
    rng = np.random.default_rng(3)
    g = np.repeat(np.arange(80), rng.integers(5, 40, 80))
    x = rng.normal(size=g.size)
    y = (0.5 + rng.normal(0, 0.4, 80)[g] + (0.3 + rng.normal(0, 0.15, 80)[g]) * x
         + rng.normal(size=g.size))
    d = pd.DataFrame({"y": y, "x": x, "g": [f"S{i:03d}" for i in g]})
    a = mixed.fit_formula(d, "y ~ x", "g", "1 + x")
    e = d.sample(frac=1.0, random_state=2).reset_index(drop=True)
    b = mixed.fit_formula(e, "y ~ x", "g", "1 + x")
    assert _rel(a.theta, b.theta) < 1e-12
    assert _rel(a.fixed, b.fixed) < 1e-12
    assert _rel(a.cov_re.to_numpy(), b.cov_re.to_numpy()) < 1e-12


def test_statsmodels_check_is_published_as_a_verdict_not_as_noise():
    """``ses_link.json`` held the raw gap to statsmodels (3e-12 here, 2e-12 there): noise by
    nature.  It is published as pass/fail with its bound."""
    d = pd.DataFrame({"y": np.r_[np.arange(30.0), np.arange(30.0) * 0.5],
                      "g": np.repeat(list("abcdef"), 10)})
    fit = mixed.fit_formula(d, "y ~ 1", "g")
    assert mixed.cross_check_verdict(fit) == "agrees (gap < 1e-06 relative)"
    unchecked = mixed.fit_formula(d, "y ~ 1", "g", check=False)
    assert mixed.cross_check_verdict(unchecked) == "not run"


def test_card_municipality_part_is_exactly_zero_in_a_single_level_model():
    """The card's municipality part was ``fitted - sum(parts)``: ±1e-16 without a
    municipality level, a different ±1e-16 on every CPU."""
    from analysis.flags import effects

    rng = np.random.default_rng(1)
    n = 200
    panel = pd.DataFrame({
        "school_id": [f"{i:04d}" for i in range(n)], "year": 2025, "outcome": "VPR",
        "value": rng.uniform(0.2, 0.8, n), "n": rng.integers(10, 90, n),
        "social_index": rng.normal(size=n),
        "municipality": rng.choice(list("ABCDEFG"), n),
        "settlement_type": rng.choice(["city", "town", "village"], n),
        "school_type": rng.choice(["secondary", "gymnasium"], n)})
    spec = effects.EffectSpec(multilevel=False)
    res, _ = effects.fit_residuals(panel, spec, min_n=5)
    assert (res["municipal"] == 0.0).all()
    multi = effects.fit_residuals(panel, effects.EffectSpec(multilevel=True), min_n=5)[0]
    assert np.allclose(multi["fitted"] - multi["municipal"], res["fitted"], atol=1e-12)


def test_a_table_in_a_notebook_has_the_same_text_whatever_its_last_bits():
    """Notebook 02 showed ``describe()`` of the standardised index: a mean of -1.8e-17 in one
    run and exactly 0 in the next (NumPy's sums depend on memory alignment), so pandas wrote
    the column in scientific notation, or not, with other widths.  Stage kernels show floats
    rounded like written ones."""
    import pandas as pd

    from analysis.outputs import display_float, round_text

    a = pd.DataFrame({"mean": [-1.788879e-17, 3.21351e-17, 0.0], "sd": [1.0005041, 1.0, 0.5]})
    b = pd.DataFrame({"mean": [0.0, 0.0, 0.0], "sd": [1.0005041, 1.0, 0.5]})
    with pd.option_context("display.float_format", display_float):
        assert a.to_string() == b.to_string() and a.to_html() == b.to_html()
    assert round_text("0.000000e+00 -0.0 0.0") == "0.0 0.0 0.0"


# --- end to end: two environments, one set of bytes -----------------------------------------

OTHER_CPU = {"OPENBLAS_CORETYPE": "SandyBridge", "OPENBLAS_NUM_THREADS": "4",
             "OMP_NUM_THREADS": "4",
             "NPY_DISABLE_CPU_FEATURES": "X86_V3 X86_V4 AVX512_ICL AVX512_SPR"}


def _digest(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.pipeline
def test_another_blas_kernel_and_no_vector_paths_give_the_same_files(tmp_path):
    """The library's stages 01-04 and the report's data on the demo region, once as the
    machine is and once with another BLAS kernel, NumPy's vector paths off and 4 threads:
    every processed file has the same bytes (11 of them differed before #20)."""
    base = tmp_path / "base"
    base.mkdir()
    shutil.copy(ROOT / "params.yaml", base / "params.yaml")
    subprocess.run([sys.executable, "-m", "analysis.demo.synth", "--params", "params.yaml",
                    "--out", "data/raw", "--truth", "data/demo_truth"], cwd=base, check=True,
                   stdout=subprocess.DEVNULL)
    code = ("import sys; from pathlib import Path; from analysis.config import load_yaml; "
            "from analysis.pipeline.flow import run_all; r = Path(sys.argv[1]); "
            "run_all(r, load_yaml(r / 'params.yaml'))")
    digests = []
    for name, extra in (("a", {}), ("b", OTHER_CPU)):
        root = tmp_path / name
        shutil.copytree(base, root)
        # a: this machine as it is; b: OTHER_CPU in place of its BLAS/NumPy settings
        env = {k: v for k, v in os.environ.items()
               if not (extra and k.startswith(("OPENBLAS_", "OMP_", "NPY_")))}
        env.update({"PYTHONHASHSEED": "0", "MPLBACKEND": "agg", **extra})
        subprocess.run([sys.executable, "-c", code, str(root)], cwd=root, env=env, check=True,
                       stdout=subprocess.DEVNULL)
        digests.append(_digest(root / "data" / "processed"))
    differ = sorted(k for k in digests[0] if digests[0][k] != digests[1].get(k))
    assert digests[0].keys() == digests[1].keys()
    assert differ == []
