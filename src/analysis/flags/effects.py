"""School effects: how far a school's results stand from what its context predicts.

For every outcome (a procedure of the quality index: ВПР, ОГЭ, ...) and year, the expected
model of stage 03 (:mod:`analysis.models.expected`: the social index, settlement type and
school type, optionally the context cluster) is fitted to the schools with at least
``min_n`` participants, weighted by participants.  A school's residual in year ``t``,

    r_t = u + v_t + e_t,

mixes its persistent effect ``u`` (variance ``tau2_u``), the year's departure ``v_t``
(variance ``tau2_v``, the year-to-year variation) and sampling noise ``e_t`` (variance
``s2_t = f (1 - f) / n_t``, ``f`` the expected value clipped to :data:`P_CLIP`; for a 0..1
outcome this bounds the variance of a student's value from above).

``tau2_u`` and ``tau2_v`` are estimated from the data by moments (:func:`variance_components`):
``tau2_u`` is the mean product of a school's residuals in two different years (the years'
``v`` and ``e`` are independent, so only ``u`` is shared), and ``tau2_u + tau2_v`` the mean of
``r_t^2 - s2_t``.

The **persistent effect** is shrunk empirical-Bayes (the DfE CVA / lme4 conditional mode):

- one year: ``u_hat = lambda r``, ``lambda = tau2_u / (tau2_u + tau2_v + s2)`` (the school's
  reliability), conditional SD ``sqrt(tau2_u (1 - lambda))``;
- several years: the posterior of ``u`` given every year (``weights="precision"``), or the
  3:2:1 weighted mean of the years shrunk by its own reliability (``weights="321"``, as FFT).

The year-to-year variation is noise around ``u``, so a school that was lucky once is not
called above expected.  Across outcomes the effect is combined precision-weighted; its SD
assumes the outcomes' effects are perfectly correlated (never over-confident).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import ndtr

from analysis.ingest import quality
from analysis.models import expected, mixed

#: Expected values are clipped to this range in the sampling variance f (1 - f) / n.
P_CLIP = (0.02, 0.98)
#: Smallest variance component used (quality-index points squared): keeps shrinkage defined.
TAU2_FLOOR = 1e-6
WEIGHTS = ("precision", "321")
#: Year weights of the FFT 3:2:1 scheme, the latest year first.
FFT_WEIGHTS = (3.0, 2.0, 1.0)
#: School columns carried into the panel.
CONTEXT = ("municipality", "settlement_type", "school_type")


@dataclass(frozen=True)
class EffectSpec:
    """How school effects are estimated (one robustness specification).

    Attributes
    ----------
    model : ExpectedSpec
        The expected-result model (``ses_link``).
    multilevel : bool
        Also a random intercept per municipality: schools are compared with the expectation
        in their own municipality.
    weights : {"precision", "321"}
        How years combine.
    n_years : int
        Years used, the latest ones up to the reporting year.
    z : float
        Normal quantile of the intervals (1.96 for 95%).
    """

    model: expected.ExpectedSpec = field(default_factory=expected.ExpectedSpec)
    multilevel: bool = False
    weights: str = "precision"
    n_years: int = 3
    z: float = 1.96

    def __post_init__(self) -> None:
        if self.weights not in WEIGHTS:
            raise ValueError(f"flags.year_weights must be one of {WEIGHTS}, got "
                             f"'{self.weights}'")


CONTEXT_SOURCES = ("auto", "students", "index")


def context_measure(index: pd.DataFrame, students: pd.DataFrame | None, *,
                    how: str = "auto") -> pd.DataFrame:
    """The measure of a school's social context the flags compare schools on.

    - ``index``: the social well-being index of stage 02 (from the social passport);
    - ``students``: the school mean of its students' socio-economic status (the students
      table's ``ses``), standardised within the year over the schools that have it; a school
      without students' status keeps its index;
    - ``auto``: ``students`` when the students table carries any ``ses``, else ``index``.

    The index measures a school's status with error (its indicators are noisy shares), and
    that error passes into every residual: on the synthetic region the index correlates
    0.89 with the true status, the students' mean 0.99.

    Returns
    -------
    DataFrame ``year, school_id, social_index`` (the measure), ``context_source``
    ("students" or "index"), ``context_n`` (students behind the mean; <NA> for the index).
    """
    if how not in CONTEXT_SOURCES:
        raise ValueError(f"flags.context must be one of {CONTEXT_SOURCES}, got '{how}'")
    out = index[["year", "school_id", "social_index"]].assign(
        context_source="index", context_n=pd.array([pd.NA] * len(index), dtype="Int64"))
    has = (students is not None and "ses" in students.columns
           and students["ses"].notna().any())
    if how == "index" or not has:
        return out
    st = students.loc[students["ses"].notna(), ["year", "school_id", "procedure", "subject",
                                                "grade", "ses"]]
    m = st.groupby(["year", "school_id"], sort=True)["ses"].mean().rename("m").reset_index()
    g = m.groupby("year")["m"]
    m["m"] = (m["m"] - g.transform("mean")) / g.transform("std").replace(0.0, np.nan)
    # students behind the mean: per grade the largest sitting of one procedure x subject
    sits = st.groupby(["year", "school_id", "grade", "procedure", "subject"], sort=True).size()
    n = sits.groupby(level=["year", "school_id", "grade"]).max().groupby(
        level=["year", "school_id"]).sum().rename("context_n").reset_index()
    out = out.drop(columns="context_n").merge(m, on=["year", "school_id"], how="outer").merge(
        n, on=["year", "school_id"], how="left")
    use = out["m"].notna()
    out["social_index"] = out["m"].where(use, out["social_index"])
    out["context_source"] = np.where(use, "students", "index")
    out["context_n"] = out["context_n"].where(use).astype("Int64")
    return out.drop(columns="m").sort_values(["year", "school_id"], kind="stable",
                                             ignore_index=True)


def outcome_panel(results: pd.DataFrame, schools: pd.DataFrame, index: pd.DataFrame, *,
                  years: Sequence[int], procedures: Sequence[str], subjects: Sequence[str],
                  grades: Sequence[int], formula: str,
                  clusters: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per school x year x outcome: the outcome's value and its participants.

    An outcome is one procedure of the quality index, its value the formula's share pooled
    over the procedure's subjects and grades (participant-weighted), as the quality index.

    Returns
    -------
    DataFrame
        ``year, school_id, outcome, value (0..1), n (participants), social_index`` (NaN
        where the school has no index) and :data:`CONTEXT` (and ``cluster``).
    """
    comp = quality.components(results, procedures, subjects, grades, formula)
    comp = comp.loc[comp["year"].isin(list(years))]
    comp = comp.assign(w=comp["value"] * comp["participants"])
    g = (comp.groupby(["year", "school_id", "procedure"], sort=True, observed=True)
         .agg(w=("w", "sum"), n=("participants", "sum")).reset_index())
    g = g.rename(columns={"procedure": "outcome"})
    g["value"] = g["w"] / g["n"]
    g["outcome"] = g["outcome"].astype(str)
    ctx = schools[["year", "school_id", *CONTEXT]].merge(
        index[["year", "school_id", "social_index"]], on=["year", "school_id"], how="left")
    if clusters is not None:
        ctx = ctx.merge(clusters[["school_id", "cluster"]], on="school_id", how="left")
        ctx["cluster"] = ctx["cluster"].astype("string")
    out = g.drop(columns="w").merge(ctx, on=["year", "school_id"], how="inner")
    out["n"] = out["n"].astype("int64")
    return out.sort_values(["outcome", "year", "school_id"], kind="stable",
                           ignore_index=True)


def _lmm_fitted(sub: pd.DataFrame, fit: expected.ExpectedFit) -> np.ndarray:
    """Fixed part plus the municipality's conditional mode (random intercept, REML)."""
    X = expected.design(sub, fit.spec, fit.basis, x=fit.x, levels=fit.levels)
    X = X[[c for c in fit.columns if c in X.columns]]
    X.insert(0, "Intercept", 1.0)
    w = sub["n"].to_numpy(dtype="float64")
    groups = sub["municipality"].astype(str).to_numpy()
    lmm = mixed.fit_lmm(sub["value"].to_numpy(dtype="float64"), X, groups,
                        weights=w / w.mean(), check=False)
    b = lmm.ranef["Intercept"].reindex(groups).to_numpy()
    return X.to_numpy() @ lmm.fixed.reindex(X.columns).to_numpy() + b


def fit_residuals(panel: pd.DataFrame, spec: EffectSpec, *,
                  min_n: int) -> tuple[pd.DataFrame, dict[tuple[str, int], Any]]:
    """Expected value, residual and sampling variance of every usable school x year x outcome.

    Usable: a social index, at least ``min_n`` participants and, when ``cluster`` is a model
    term, a context cluster (schools without a social index in the reporting year are not
    clustered).  The expected model is fitted per outcome and year (the region's expectation
    moves with the year's tests).

    Returns
    -------
    residuals : DataFrame
        The usable rows of ``panel`` with ``fitted``, ``residual``, ``s2`` and ``municipal``
        (the municipality level's part of ``fitted``; 0 in a single-level model).
    fits : dict
        (outcome, year) -> the :class:`~analysis.models.expected.ExpectedFit`.
    """
    model = dataclasses.replace(spec.model, cov_type="HC0")  # point estimates only
    usable = panel["social_index"].notna() & (panel["n"] >= min_n)
    if "cluster" in model.terms and "cluster" in panel:
        usable &= panel["cluster"].notna()
    use = panel.loc[usable]
    parts, fits = [], {}
    for (outcome, year), sub in use.groupby(["outcome", "year"], sort=True):
        if len(sub) < 10 or sub["value"].nunique() < 2:
            continue
        fit = expected.fit_expected(sub, model, y="value", weight="n")
        single = fit.fitted["fitted"].to_numpy()
        multi = spec.multilevel and sub["municipality"].nunique() >= 5
        fitted = _lmm_fitted(sub, fit) if multi else single
        f = np.clip(fitted, *P_CLIP)
        # ``municipal``: what the municipality level adds to the single-level expectation
        # (exactly 0 without it, not a difference that is 0 only up to rounding)
        parts.append(sub.assign(fitted=fitted, residual=sub["value"].to_numpy() - fitted,
                                s2=f * (1.0 - f) / sub["n"].to_numpy(dtype="float64"),
                                municipal=fitted - single if multi else 0.0))
        fits[(str(outcome), int(year))] = fit
    if not parts:
        cols = list(panel.columns) + ["fitted", "residual", "s2", "municipal"]
        return pd.DataFrame(columns=cols), fits
    return pd.concat(parts, ignore_index=True), fits


def variance_components(res: pd.DataFrame) -> pd.DataFrame:
    """Between-school (``tau2_u``) and year-to-year (``tau2_v``) variance per outcome.

    Parameters
    ----------
    res : DataFrame
        ``outcome, school_id, year, residual, s2`` (one row per school x year x outcome).

    Returns
    -------
    DataFrame, one row per outcome
        ``outcome, tau2_u, tau2_v, n_schools, n_multi`` (schools with two or more years);
        ``tau2_v`` is 0 and ``identified`` False when no school has two years (the
        year-to-year variation cannot be told from the persistent effect).
    """
    r = res["residual"].to_numpy(dtype="float64")
    key = [res["outcome"], res["school_id"]]
    g = pd.DataFrame({"r": r, "r2": r * r, "one": 1.0, "excess": r * r - res["s2"]}).groupby(
        key, sort=True).sum()
    g["pairs"] = g["one"] * (g["one"] - 1.0)
    g["cross"] = g["r"] ** 2 - g["r2"]  # sum over ordered pairs of different years r_t r_s
    o = g.groupby(level=0, sort=True).agg(
        cross=("cross", "sum"), pairs=("pairs", "sum"), excess=("excess", "sum"),
        n_obs=("one", "sum"), n_schools=("one", "size"),
        n_multi=("one", lambda s: int((s >= 2).sum())))
    total = np.maximum(o["excess"] / o["n_obs"], TAU2_FLOOR)
    identified = o["pairs"] > 0
    tau_u = np.where(identified, np.maximum(o["cross"] / o["pairs"].where(identified, 1.0),
                                            TAU2_FLOOR), total)
    tau_u = np.minimum(tau_u, total)
    return pd.DataFrame({
        "outcome": o.index.astype(str), "tau2_u": tau_u,
        "tau2_v": np.where(identified, np.maximum(total - tau_u, 0.0), 0.0),
        "n_schools": o["n_schools"].astype("int64").to_numpy(),
        "n_multi": o["n_multi"].astype("int64").to_numpy(),
        "identified": identified.to_numpy()}).reset_index(drop=True)


def shrink(r: np.ndarray, s2: np.ndarray, tau2_u: np.ndarray,
           tau2_v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One year's EB estimate of the persistent effect.

    Returns
    -------
    (estimate, conditional SD, reliability lambda), arrays like ``r``
        ``lambda = tau2_u / (tau2_u + tau2_v + s2)``, ``estimate = lambda r``,
        ``sd = sqrt(tau2_u (1 - lambda))``.
    """
    lam = tau2_u / (tau2_u + tau2_v + s2)
    return lam * r, np.sqrt(tau2_u * (1.0 - lam)), lam


def _year_weights(years: pd.Series, latest: int, scheme: str) -> np.ndarray:
    if scheme == "precision":
        return np.ones(len(years))
    lag = (latest - years.to_numpy()).astype(int)
    w = np.zeros(len(years))
    ok = (lag >= 0) & (lag < len(FFT_WEIGHTS))
    w[ok] = np.asarray(FFT_WEIGHTS)[lag[ok]]
    return w


def school_effects(res: pd.DataFrame, comps: pd.DataFrame, *, year: int,
                   spec: EffectSpec) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Persistent effect per school x outcome over the years, and per school x outcome x year.

    Parameters
    ----------
    res : DataFrame
        :func:`fit_residuals` output.
    comps : DataFrame
        :func:`variance_components` output.
    year : int
        The reporting year; the ``spec.n_years`` years up to it are used.

    Returns
    -------
    pooled : DataFrame, one row per school x outcome
        ``school_id, outcome, estimate, sd, raw (mean residual), n_years, n`` (participants
        over the years), ``reliability`` (1 - sd^2 / tau2_u).
    yearly : DataFrame, one row per school x outcome x year
        ``school_id, outcome, year, estimate, sd, reliability, residual, fitted, value, n``.
    """
    first = year - spec.n_years + 1
    d = res.loc[res["year"].between(first, year)].merge(comps, on="outcome", how="inner")
    r, s2 = d["residual"].to_numpy(float), d["s2"].to_numpy(float)
    tu, tv = d["tau2_u"].to_numpy(float), d["tau2_v"].to_numpy(float)
    est, sd, lam = shrink(r, s2, tu, tv)
    yearly = d[["school_id", "outcome", "year", "residual", "fitted", "value", "n"]].assign(
        estimate=est, sd=sd, reliability=lam)
    w = _year_weights(d["year"], year, spec.weights)
    noise = tv + s2
    key = [d["school_id"], d["outcome"]]
    if spec.weights == "precision":
        agg = pd.DataFrame({"a": r / noise, "b": 1.0 / noise, "r": r, "one": 1.0,
                            "n": d["n"].to_numpy(float)}).groupby(key, sort=True).sum()
        tau = d.groupby(key, sort=True)["tau2_u"].first()
        prec = 1.0 / tau + agg["b"]
        est_p, var_p = agg["a"] / prec, 1.0 / prec
    else:
        agg = pd.DataFrame({"wr": w * r, "w": w, "w2v": w * w * noise, "r": r, "one": 1.0,
                            "n": d["n"].to_numpy(float)}).groupby(key, sort=True).sum()
        tau = d.groupby(key, sort=True)["tau2_u"].first()
        ok = agg["w"] > 0
        mean = agg["wr"] / agg["w"].where(ok)
        var_mean = agg["w2v"] / (agg["w"].where(ok) ** 2)
        lam_p = tau / (tau + var_mean)
        est_p = (lam_p * mean).fillna(0.0)
        var_p = (tau * (1.0 - lam_p)).fillna(tau)
    pooled = pd.DataFrame({
        "estimate": est_p, "sd": np.sqrt(var_p), "raw": agg["r"] / agg["one"],
        "n_years": agg["one"].astype("int64"), "n": agg["n"].astype("int64"),
        "reliability": 1.0 - var_p / tau}).reset_index()
    return pooled, yearly.reset_index(drop=True)


def combine_outcomes(effects: pd.DataFrame, by: Sequence[str] = ("school_id",)) -> pd.DataFrame:
    """Precision-weighted combination of a school's outcome effects.

    The SD is the weighted mean of the outcomes' SDs: exact when the outcomes' effects are
    perfectly correlated, conservative otherwise.

    Returns
    -------
    DataFrame, one row per ``by`` group: ``estimate, sd, n_outcomes``.
    """
    w = 1.0 / effects["sd"].to_numpy(float) ** 2
    g = pd.DataFrame({"w": w, "we": w * effects["estimate"].to_numpy(float),
                      "ws": w * effects["sd"].to_numpy(float), "one": 1}).groupby(
        [effects[c] for c in by], sort=True).sum()
    return pd.DataFrame({"estimate": g["we"] / g["w"], "sd": g["ws"] / g["w"],
                         "n_outcomes": g["one"].astype("int64")}).reset_index()


def intervals(est: pd.DataFrame, z: float) -> pd.DataFrame:
    """``est`` (``estimate, sd``) with ``low, high``, ``p_above`` = P(effect > 0) and
    ``direction``: above (interval above 0), below, expected."""
    e, s = est["estimate"].to_numpy(float), est["sd"].to_numpy(float)
    low, high = e - z * s, e + z * s
    return est.assign(low=low, high=high, p_above=ndtr(e / s),
                      direction=np.select([low > 0, high < 0], ["above", "below"],
                                          default="expected"))


def contributions(fit: expected.ExpectedFit, data: pd.DataFrame,
                  reference: pd.DataFrame) -> pd.DataFrame:
    """The expected value split by factor, for the "why this school" card.

    ``region`` is the participant-weighted mean expected value of the ``reference`` schools
    (those the model was fitted on); each factor adds ``sum_c (X_c - mean X_c) beta_c`` over
    its design columns, so the parts add up to the school's expected value.

    Returns
    -------
    DataFrame, index of ``data``: ``region``, ``social_index``, then one column per term.
    """
    cols = [c for c in fit.columns if c != "const"]
    beta = pd.Series(np.asarray(fit.result.params, float), index=list(fit.columns))
    X = expected.design(data, fit.spec, fit.basis, x=fit.x, levels=fit.levels)[cols]
    Xr = expected.design(reference, fit.spec, fit.basis, x=fit.x, levels=fit.levels)[cols]
    w = reference[fit.weight].to_numpy(dtype="float64")
    centre = (Xr.to_numpy() * w[:, None]).sum(axis=0) / w.sum()
    part = (X.to_numpy() - centre) * beta[cols].to_numpy()
    out = pd.DataFrame(index=data.index)
    out["region"] = float(beta["const"] + centre @ beta[cols].to_numpy())
    term_of = np.array([next((t for t in fit.spec.terms if c.startswith(f"{t}[")),
                             "social_index") for c in cols])
    for term in ["social_index", *fit.spec.terms]:
        out[term] = part[:, term_of == term].sum(axis=1)
    return out


def estimate_effects(panel: pd.DataFrame, spec: EffectSpec, *, year: int,
                     min_n: int) -> dict[str, Any]:
    """Everything :mod:`analysis.flags` needs from one specification.

    Returns
    -------
    dict with ``residuals``, ``components``, ``pooled`` (per school x outcome), ``yearly``,
    ``school`` (per school, combined over outcomes, with intervals), ``school_yearly`` (per
    school x year, combined), ``fits``.
    """
    res, fits = fit_residuals(panel.loc[panel["year"] <= year], spec, min_n=min_n)
    comps = variance_components(res.loc[res["year"].between(year - spec.n_years + 1, year)])
    pooled, yearly = school_effects(res, comps, year=year, spec=spec)
    school = intervals(combine_outcomes(pooled), spec.z)
    n_years = pooled.groupby("school_id", sort=True)["n_years"].max()
    school["n_years"] = school["school_id"].map(n_years).astype("int64")
    school_yearly = intervals(combine_outcomes(yearly, ("school_id", "year")), spec.z)
    return {"residuals": res, "components": comps, "pooled": intervals(pooled, spec.z),
            "yearly": intervals(yearly, spec.z), "school": school,
            "school_yearly": school_yearly, "fits": fits}


def spec_from_params(model: expected.ExpectedSpec, flags: Mapping[str, Any]) -> EffectSpec:
    """The default specification: the expected-result model of stage 03 (``model``, from
    ``params.yaml`` ``ses_link``) and ``params.yaml`` ``flags``."""
    return EffectSpec(model=model, multilevel=bool(flags.get("multilevel", False)),
                      weights=str(flags.get("year_weights", "precision")),
                      n_years=int(flags.get("n_years", 3)), z=float(flags["z"]))
