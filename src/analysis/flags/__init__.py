"""Stage 04: flags -- resilient schools, ШНОР, ШНСУ, signs of non-objectivity, typology.

Every flag accounts for school size and says how sure it is:

- a school's residual (observed − expected quality given its context) carries a sampling
  standard error ``se = sqrt(p (1 − p) / n_students)`` with ``p`` the expected quality, and
  a ``z`` interval; only schools with at least ``min_n`` students are flagged at all;
- the ШНОР list shows, for every low procedure, the share and its participants, so a
  reader sees when a «30% of "2"» rests on a handful of students.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis.ingest import schema

TYPOLOGY = ("resilient", "favourable", "unfavourable", "unrealised")
P_CLIP = (0.02, 0.98)


def residual_intervals(fitted: pd.DataFrame, n: pd.Series, z: float = 1.96) -> pd.DataFrame:
    """Sampling SE and interval of each school's residual.

    Parameters
    ----------
    fitted : DataFrame with ``fitted`` and ``residual`` (quality-index points)
    n : Series of int
        Students behind each school's quality index.
    z : float
        Normal quantile of the interval (1.96 for 95%).

    Returns
    -------
    DataFrame with ``se``, ``ci_low``, ``ci_high`` (same index).
    """
    p = fitted["fitted"].clip(*P_CLIP)
    se = np.sqrt(p * (1.0 - p) / n.astype("float64"))
    return pd.DataFrame({"se": se, "ci_low": fitted["residual"] - z * se,
                         "ci_high": fitted["residual"] + z * se}, index=fitted.index)


def objectivity_gap(results: pd.DataFrame, year: int, subjects: Sequence[str] = ("rus", "math"),
                    z: float = 1.96, threshold: float = 0.15) -> pd.DataFrame:
    """Screen for ВПР results that ОГЭ does not support (a sign of non-objectivity).

    For each school in ``year``: the ВПР quality (share of «4»/«5», grades 5–6) and the ОГЭ
    quality (grade 9), each minus the region's; ``gap`` is the ВПР excess minus the ОГЭ
    excess, with a binomial SE.  The screen fires when ``gap − z·se > threshold``: the ВПР
    results stand above what the same school shows at ОГЭ by more than ``threshold``
    beyond sampling noise.

    Returns
    -------
    DataFrame, one row per school with both procedures
        ``school_id, vpr_quality, oge_quality, gap, gap_se, objectivity_flag``; empty (no
        school screened) when the year has no ВПР or no ОГЭ results, e.g. in a region
        with other assessments.
    """
    sel = (results["year"] == year) & results["subject"].isin(subjects) & (
        results["participants"] > 0)
    parts = {}
    for proc, grades in (("VPR", (5, 6)), ("OGE", (9,))):
        r = results.loc[sel & (results["procedure"] == proc) & results["grade"].isin(grades)]
        if r.empty:
            return pd.DataFrame({
                "school_id": pd.Series(dtype=results["school_id"].dtype),
                **{c: pd.Series(dtype="float64")
                   for c in ("vpr_quality", "oge_quality", "gap", "gap_se")},
                "objectivity_flag": pd.Series(dtype="bool")})
        g = r.assign(good=r["n_mark4"] + r["n_mark5"]).groupby("school_id", sort=True)[
            ["good", "participants"]].sum().astype("float64")
        region = g["good"].sum() / g["participants"].sum()
        q = g["good"] / g["participants"]
        parts[proc] = pd.DataFrame({"q": q, "excess": q - region, "n": g["participants"]})
    both = parts["VPR"].add_suffix("_vpr").join(parts["OGE"].add_suffix("_oge"), how="inner")
    var = (both["q_vpr"] * (1 - both["q_vpr"]) / both["n_vpr"]
           + both["q_oge"] * (1 - both["q_oge"]) / both["n_oge"])
    out = pd.DataFrame({
        "vpr_quality": both["q_vpr"], "oge_quality": both["q_oge"],
        "gap": both["excess_vpr"] - both["excess_oge"], "gap_se": np.sqrt(var),
    })
    out["objectivity_flag"] = out["gap"] - z * out["gap_se"] > threshold
    return out.reset_index()


def school_flags(sample: pd.DataFrame, fitted: pd.DataFrame, objectivity: pd.DataFrame, *,
                 low_context_quantile: float, z: float, min_effect: float) -> pd.DataFrame:
    """Resilience, ШНСУ and the typology for the schools of the gradient sample.

    - ``low_context`` (ШНСУ): social index below its ``low_context_quantile`` quantile
      among the sample's schools;
    - ``above`` / ``below``: the residual is at least ``min_effect`` above (below) zero and
      its ``z`` interval excludes zero;
    - ``resilient``: low context, above expectation, and no sign of non-objectivity
      (a «resilient» school whose ВПР results are not objective is not resilient);
    - ``typology``: resilient (низкий контекст, выше ожидаемого); unfavourable (низкий
      контекст, остальные); unrealised (благополучный контекст, ниже ожидаемого);
      favourable (благополучный контекст, остальные).

    Returns
    -------
    DataFrame, one row per school of ``sample`` (same order).
    """
    out = sample[["year", "school_id", "school_name", "municipality", "school_type",
                  "settlement_type", "social_index", "quality_index", "n_students"]].copy()
    out[["fitted", "residual"]] = fitted[["fitted", "residual"]].to_numpy()
    out = out.join(residual_intervals(out, out["n_students"], z))
    cut = float(out["social_index"].quantile(low_context_quantile))
    out["low_context"] = out["social_index"] < cut
    out["above"] = (out["residual"] >= min_effect) & (out["ci_low"] > 0)
    out["below"] = (out["residual"] <= -min_effect) & (out["ci_high"] < 0)
    obj = objectivity.set_index("school_id")["objectivity_flag"]
    out["objectivity_flag"] = out["school_id"].map(obj.astype(bool)).astype("boolean").fillna(False).astype(bool)
    out["resilient"] = out["low_context"] & out["above"] & ~out["objectivity_flag"]
    out["typology"] = np.select(
        [out["resilient"], out["low_context"], out["below"]],
        ["resilient", "unfavourable", "unrealised"], default="favourable")
    out.attrs["low_context_cut"] = cut
    return out


def low_procedures(results: pd.DataFrame, years: Sequence[int], *, threshold: float,
                   procedures: Sequence[str], min_participants: int = 0) -> pd.DataFrame:
    """Result rows that count as a «low result» for the ШНОР rule.

    A procedure (one procedure x subject x grade of a school-year) is low when the share of
    «2» (marked) or below the minimum threshold (scored) is at least ``threshold``.
    Procedures with fewer than ``min_participants`` participants (and none at all) do not
    count.
    """
    r = results.loc[results["year"].isin(years) & results["procedure"].isin(procedures)
                    & (results["participants"] > 0)
                    & (results["participants"] >= min_participants)]
    return r.loc[r["share_low"] >= threshold - 1e-12].reset_index(drop=True)


def shnor(results: pd.DataFrame, schools: pd.DataFrame, year: int, *, threshold: float,
          procedures: Sequence[str], min_participants: int = 0) -> pd.DataFrame:
    """The ШНОР rule (federal method) for the reporting ``year``.

    A school is on the list if it meets at least one of:

    1. low results in at least two assessment procedures in ``year``;
    2. low results in at least one procedure in each of ``year − 1`` and ``year``.

    Returns
    -------
    DataFrame, one row per school present in ``year``
        ``school_id, n_low_year, n_low_prev, criterion_1, criterion_2, shnor``.
    """
    low = low_procedures(results, [year - 1, year], threshold=threshold,
                         procedures=procedures, min_participants=min_participants)
    counts = low.groupby(["school_id", "year"]).size().unstack("year")
    out = schools.loc[schools["year"] == year, ["school_id"]].drop_duplicates()
    out["n_low_year"] = out["school_id"].map(counts.get(year, pd.Series(dtype=float)))
    out["n_low_prev"] = out["school_id"].map(counts.get(year - 1, pd.Series(dtype=float)))
    out[["n_low_year", "n_low_prev"]] = out[["n_low_year", "n_low_prev"]].fillna(0).astype(
        "int64")
    out["criterion_1"] = out["n_low_year"] >= 2
    out["criterion_2"] = (out["n_low_year"] >= 1) & (out["n_low_prev"] >= 1)
    out["shnor"] = out["criterion_1"] | out["criterion_2"]
    return out.sort_values("school_id", kind="stable").reset_index(drop=True)


def shnor_details(results: pd.DataFrame, shnor_table: pd.DataFrame, year: int, *,
                  threshold: float, procedures: Sequence[str],
                  min_participants: int = 0) -> pd.DataFrame:
    """The low procedures behind each ШНОР school (for the report's list)."""
    ids = shnor_table.loc[shnor_table["shnor"], "school_id"]
    low = low_procedures(results, [year - 1, year], threshold=threshold,
                         procedures=procedures, min_participants=min_participants)
    cols = list(schema.RESULT_KEY) + ["participants", "n_low", "share_low"]
    return low.loc[low["school_id"].isin(ids), cols].sort_values(
        ["school_id", "year", "procedure", "subject", "grade"], kind="stable"
    ).reset_index(drop=True)
