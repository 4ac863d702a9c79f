"""The school-level rules of stage 04 on school effects: resilience, the PISA quadrant, the
typology, unfavourable social conditions (ШНСУ) and the risk zone.

All functions take one row per school (or school x year) and return the same rows with the
rule's columns; none loops over schools.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.special import ndtri

from analysis.context.index import SocialIndex

#: Typology labels (labels.yaml ``typology``), in the order of the report's matrix.
TYPOLOGY = ("resilient", "needs_review", "above_unconfirmed", "favourable", "expected",
            "unfavourable", "unrealised", "na")
#: The performance axis of the typology.
AXES = ("effect", "quality_group")
CONTEXT_METHODS = ("absolute", "quantile")


def direction(low: pd.Series, high: pd.Series, min_effect: float) -> np.ndarray:
    """above: the interval lies above ``+min_effect``; below: under ``-min_effect``;
    expected otherwise (the effect is not told apart from what the context predicts, or is
    too small to matter); na where there is no estimate."""
    lo = pd.to_numeric(low, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    hi = pd.to_numeric(high, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    return np.select([np.isnan(lo), lo > min_effect, hi < -min_effect],
                     ["na", "above", "below"], default="expected")


def low_context(index: pd.Series, *, method: str, threshold: float,
                quantile: float) -> tuple[pd.Series, float]:
    """Schools in a low social context: the index at or below ``threshold`` (absolute, in SD
    of the year's index) or in the bottom ``quantile`` of all schools with an index.

    Returns
    -------
    (bool Series like ``index``, False where the index is missing; the cut used)
    """
    if method not in CONTEXT_METHODS:
        raise ValueError(f"flags.low_context must be one of {CONTEXT_METHODS}, got '{method}'")
    x = pd.to_numeric(index, errors="coerce").astype("float64")
    cut = float(threshold) if method == "absolute" else float(x.quantile(quantile))
    return (x <= cut).fillna(False).astype(bool), cut


def years_held(yearly: pd.DataFrame, *, year: int, n_years: int,
               min_effect: float) -> pd.DataFrame:
    """How many of the last ``n_years`` years a school's effect was above (below) expected.

    Parameters
    ----------
    yearly : DataFrame
        ``school_id, year, low, high`` (one year's effect per school, combined).

    Returns
    -------
    DataFrame indexed by school_id: ``years_assessed, years_above, years_below,
    years_above_list`` (e.g. "2024, 2025").
    """
    y = yearly.loc[yearly["year"].between(year - n_years + 1, year)]
    d = direction(y["low"], y["high"], min_effect)
    g = pd.DataFrame({"school_id": y["school_id"].to_numpy(), "one": 1,
                      "above": d == "above", "below": d == "below"})
    out = g.groupby("school_id", sort=True)[["one", "above", "below"]].sum()
    up = y.loc[d == "above"].sort_values("year", kind="stable")
    listed = (up["year"].astype("int64").astype(str).groupby(up["school_id"], sort=True)
              .agg(", ".join).astype(object))
    return pd.DataFrame({"years_assessed": out["one"].astype("int64"),
                         "years_above": out["above"].astype("int64"),
                         "years_below": out["below"].astype("int64"),
                         "years_above_list": listed.reindex(out.index).fillna("")})


def resilient(low_ctx: pd.Series, dir_: pd.Series, held: pd.Series, *, min_years: int,
              p_above: pd.Series | None = None, p_threshold: float | None = None) -> pd.Series:
    """Low context, an effect above expected (or P(effect > 0) >= ``p_threshold``), held in
    at least ``min_years`` of the last years."""
    above = dir_.eq("above")
    if p_threshold is not None and p_above is not None:
        above = above | (p_above.fillna(0.0) >= p_threshold)
    return (low_ctx & above & (held >= min_years)).astype(bool)


def quadrant(index: pd.Series, quality: pd.Series, *, q_context: float = 0.25,
             q_quality: float = 0.75) -> pd.Series:
    """The PISA academic-resilience quadrant: bottom quarter of the index among the schools
    with both values and top quarter of the raw (one-year) quality index."""
    ok = index.notna() & quality.notna()
    lo = index.loc[ok].quantile(q_context)
    hi = quality.loc[ok].quantile(q_quality)
    return (ok & (index <= lo) & (quality >= hi)).astype(bool)


def typology(low_ctx: pd.Series, perf: pd.Series, resilient_: pd.Series,
             review: pd.Series) -> np.ndarray:
    """Context (low / favourable) x performance (above / expected / below / na).

    - резильентная: low context, above expected, held over the years, no objectivity signal;
    - требует проверки: the same with an objectivity signal, or any school above expected
      with one (``perf`` "review");
    - выше ожидаемого, не подтверждено: low context and above, not held over the years;
    - условно благополучная: favourable context, above expected;
    - в пределах ожидаемого: the effect is not told apart from zero (either context);
    - неблагополучная: low context, below expected (the risk group);
    - с нереализованным потенциалом: favourable context, below expected;
    - н/д: no estimate.
    """
    return np.select(
        [perf.eq("na"), resilient_, review | perf.eq("review"), low_ctx & perf.eq("above"),
         perf.eq("above"),
         low_ctx & perf.eq("below"), perf.eq("below")],
        ["na", "resilient", "needs_review", "above_unconfirmed", "favourable",
         "unfavourable", "unrealised"], default="expected")


def performance_axis(effect_direction: pd.Series, quality_group: pd.Series, *, axis: str,
                     high_group: int, low_group: int) -> pd.Series:
    """The typology's performance axis: the school effect's direction (default) or the
    absolute quality group (>= ``high_group`` above, <= ``low_group`` below)."""
    if axis not in AXES:
        raise ValueError(f"flags.typology_axis must be one of {AXES}, got '{axis}'")
    if axis == "effect":
        return effect_direction
    g = pd.to_numeric(quality_group, errors="coerce")
    return pd.Series(np.select([g.isna(), g >= high_group, g <= low_group],
                               ["na", "above", "below"], default="expected"),
                     index=quality_group.index)


def anchored_index(schools: pd.DataFrame, indicators: Mapping[str, int], *, method: str,
                   min_indicators: int, weights: Mapping[str, float] | None, impute: bool,
                   reference_year: int) -> pd.DataFrame:
    """The social index of every year on the scale of ``reference_year``.

    The index of stage 02 is standardised within each year, so a fixed threshold on it
    still takes about the same share of schools each year.  Here the index (same
    indicators, method and weights) is fitted on the reference year's schools and applied
    to every year, so a threshold in its units is absolute: the number of schools below it
    can change as the social passports change.

    Returns
    -------
    DataFrame ``year, school_id, anchored_index`` (NaN where too few indicators).
    """
    ref = schools.loc[schools["year"] == reference_year]
    est = SocialIndex(indicators, method, min_indicators, weights=weights,
                      impute=impute).fit(ref)
    return pd.DataFrame({"year": schools["year"].to_numpy(),
                         "school_id": schools["school_id"].to_numpy(),
                         "anchored_index": est.transform(schools).to_numpy()})


def shnsu(index: pd.Series, *, method: str, threshold: float,
          quantile: float) -> tuple[pd.Series, float]:
    """Unfavourable social conditions (ШНСУ) over all schools with an index, with or
    without results: the anchored index at or below ``threshold`` (absolute) or the bottom
    ``quantile`` (relative)."""
    return low_context(index, method=method, threshold=threshold, quantile=quantile)


def decline(res: pd.DataFrame, comps: pd.DataFrame, *, year: int, n_years: int = 3,
            z: float = 1.96, min_drop: float = 0.05) -> pd.DataFrame:
    """Risk of declining results: the trend of a school's residuals over the last
    ``n_years`` years, weighted by 1 / (year-to-year + sampling variance), combined over
    outcomes.  A decline is larger than noise when the whole trend over the years is below
    ``-min_drop`` and its upper ``z`` bound below 0.

    Returns
    -------
    DataFrame indexed by school_id: ``trend`` (residual points per year), ``trend_se``,
    ``declining`` (bool); only schools with all ``n_years`` years.
    """
    first = year - n_years + 1
    d = res.loc[res["year"].between(first, year)].merge(comps, on="outcome", how="inner")
    w = 1.0 / (d["tau2_v"].to_numpy(float) + d["s2"].to_numpy(float))
    # years from the reporting year (-2, -1, 0): the slope is the same, but sums of
    # w * 2025**2 would cancel 7 of 16 digits in ``sxx`` and move the trend with the CPU
    t = d["year"].to_numpy(float) - year
    key = [d["school_id"], d["outcome"]]
    g = pd.DataFrame({"w": w, "wt": w * t, "wr": w * d["residual"].to_numpy(float),
                      "wtt": w * t * t, "wtr": w * t * d["residual"].to_numpy(float),
                      "one": 1}).groupby(key, sort=True).sum()
    g = g.loc[g["one"] >= n_years]
    sxx = g["wtt"] - g["wt"] ** 2 / g["w"]
    b = (g["wtr"] - g["wt"] * g["wr"] / g["w"]) / sxx
    vb = 1.0 / sxx
    s = pd.DataFrame({"wb": b / vb, "w": 1.0 / vb}).groupby(level=0, sort=True).sum()
    trend = s["wb"] / s["w"]
    se = np.sqrt(1.0 / s["w"])
    span = n_years - 1
    return pd.DataFrame({"trend": trend, "trend_se": se,
                         "declining": (trend * span < -min_drop) & (trend + z * se < 0)})


def p_to_z(level: float) -> float:
    """Two-sided normal quantile of a confidence level (0.95 -> 1.96)."""
    return float(ndtri(0.5 + level / 2.0))


def changes(now: pd.DataFrame, before: pd.DataFrame, lists: Sequence[str],
            criteria: Mapping[str, Sequence[str]]) -> pd.DataFrame:
    """Which schools entered or left each list since last year, and which criteria changed.

    Parameters
    ----------
    now, before : DataFrame
        One row per school (``school_id`` + the list columns and their criteria columns),
        this year and last year.
    lists : the list columns (bool).
    criteria : list -> the columns whose change explains it.

    Returns
    -------
    DataFrame ``school_id, list, change ("entered" / "left"), changed`` (criteria columns
    whose value differs, comma-separated; "new_school" / "not_in_year" when the school is
    absent in one of the years).
    """
    m = now.merge(before, on="school_id", how="outer", suffixes=("", "_prev"),
                  indicator=True)
    rows = []
    for name in lists:
        a = m[name].astype("boolean").fillna(False).astype(bool)
        b = m[f"{name}_prev"].astype("boolean").fillna(False).astype(bool)
        moved = a != b
        if not moved.any():
            continue
        sub = m.loc[moved]
        parts = []
        for c in criteria.get(name, ()):
            x, y = sub[c].astype("string"), sub[f"{c}_prev"].astype("string")
            parts.append(np.where((x != y).fillna(True).to_numpy(), c, ""))
        changed = ([", ".join(p for p in ps if p) for ps in zip(*parts)] if parts
                   else [""] * len(sub))
        changed = np.where(sub["_merge"].eq("left_only"), "new_school",
                           np.where(sub["_merge"].eq("right_only"), "not_in_year", changed))
        rows.append(pd.DataFrame({"school_id": sub["school_id"].to_numpy(), "list": name,
                                  "change": np.where(a[moved], "entered", "left"),
                                  "changed": changed}))
    if not rows:
        return pd.DataFrame({"school_id": pd.Series(dtype="string"), "list": pd.Series(
            dtype="string"), "change": pd.Series(dtype="string"),
            "changed": pd.Series(dtype="string")})
    return pd.concat(rows, ignore_index=True).sort_values(["list", "change", "school_id"],
                                                        kind="stable", ignore_index=True)
