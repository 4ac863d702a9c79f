"""Quality groups (группы качества) of the schools of a year, on their quality index.

Quality groups 1..7 (higher = better) place the schools of a year by quantiles of the
quality index or by fixed cut-offs; each group is described by its mean level and its
distribution of students over marks, as the regional documents do.  The quality index
itself is computed in stage 01 (:mod:`analysis.ingest.quality`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis.ingest.quality import POOLED_MARKS

GROUP_METHODS = ("quantiles", "cutoffs")


def quality_groups(quality: pd.DataFrame, *, min_n: int, method: str = "quantiles",
                   n_groups: int = 7, cutoffs: Sequence[float] = ()) -> pd.Series:
    """Quality group 1..n (higher = better) of each school-year.

    Parameters
    ----------
    quality : DataFrame, one row per school (of one year)
        ``quality_index`` (0..1, may be NaN) and ``n_students``.
    min_n : int
        Schools with fewer students get no group: a group with fixed edges, or a top group
        of a quantile split, would reveal a small school's result.
    method : {"quantiles", "cutoffs"}
        ``quantiles`` -- ``n_groups`` groups of (nearly) equal size among the schools with
        a group, equal values in the same group; ``cutoffs`` -- fixed edges on 0..1
        (``len(cutoffs) + 1`` groups), a value on an edge goes to the upper group.

    Returns
    -------
    Series (Int64) aligned with ``quality``; NA where the school has no group.
    """
    if method not in GROUP_METHODS:
        raise ValueError(f"quality_groups.method must be one of {GROUP_METHODS}, got "
                         f"'{method}'")
    q = quality["quality_index"].astype("float64")
    ok = q.notna() & (quality["n_students"] >= min_n)
    if method == "quantiles":
        if n_groups < 1:
            raise ValueError(f"quality_groups.n_groups must be at least 1, got {n_groups}")
        edges = (np.quantile(q[ok].to_numpy(), np.arange(1, n_groups) / n_groups)
                 if ok.any() else np.array([]))
    else:
        edges = np.asarray(cutoffs, dtype="float64")
        if edges.size == 0 or np.any(np.diff(edges) <= 0):
            raise ValueError("quality_groups.cutoffs must be increasing numbers on 0..1, got "
                             f"{list(cutoffs)}")
    group = 1 + np.searchsorted(edges, q.to_numpy(), side="right")
    return pd.Series(pd.array(np.where(ok, group, 0), "Int64"), index=quality.index,
                     name="quality_group").mask(~ok)


def describe_groups(quality: pd.DataFrame, groups: pd.Series, *, min_n: int) -> pd.DataFrame:
    """Each quality group's mean level and distribution of students over marks.

    Parameters
    ----------
    quality : DataFrame
        ``quality_index``, ``n_tests`` and the pooled ``n_mark2`` .. ``n_mark5``.
    groups : Series (Int64) aligned with ``quality``

    Returns
    -------
    DataFrame indexed by group (1..n, only groups with schools)
        ``n_schools``, ``n_tests``, ``mean_quality`` (participant-weighted), ``min_quality``,
        ``max_quality`` and ``share_mark2`` .. ``share_mark5`` (shares of the pooled marks; NA
        where fewer than ``min_n`` marks are pooled).
    """
    df = quality.assign(quality_group=groups).dropna(subset=["quality_group"])
    marks = df[list(POOLED_MARKS)].astype("float64").fillna(0.0)
    df = df.assign(n_good=df["quality_index"] * df["n_tests"], **{c: marks[c] for c in marks})
    g = df.groupby("quality_group", sort=True)
    out = g.agg(n_schools=("quality_index", "size"), n_tests=("n_tests", "sum"),
                n_good=("n_good", "sum"), min_quality=("quality_index", "min"),
                max_quality=("quality_index", "max"),
                **{c: (c, "sum") for c in POOLED_MARKS})
    out["mean_quality"] = out["n_good"] / out["n_tests"]
    total = out[list(POOLED_MARKS)].sum(axis=1)
    for c in POOLED_MARKS:
        out[c.replace("n_mark", "share_mark")] = (out[c] / total).where(total >= max(min_n, 1))
    out.index = out.index.astype("int64")
    return out[["n_schools", "n_tests", "mean_quality", "min_quality", "max_quality",
                *(c.replace("n_mark", "share_mark") for c in POOLED_MARKS)]]
