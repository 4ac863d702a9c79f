"""Flags against the synthetic region's planted truth: pure scoring functions.

Used by ``benchmarks/flags_truth.py`` (``make bench``) and ``tests/flags/test_flags_truth.py``;
never by the pipeline, which does not see the truth.  Each function takes stage 04's tables
and the truth of :mod:`analysis.demo.synth` (``truth.csv``, ``truth_procedures.csv``) and
returns a dict of numbers (NaN where a needed column is missing):

- resilient: precision, recall and F1 against ``planted_resilient``; the share of flagged
  schools with a positive true school effect u and a latent status in the bottom 40%;
- type fairness: among low-context schools with u <= 0, the rate flagged per school type
  and the largest ratio of a type's rate to the rate of ``secondary`` (СОШ);
- opposite sign: among schools published above/below expected, the share whose true u has
  the opposite sign;
- ШНОР: precision of the «надёжно» label against the true expected share of «2»;
- objectivity: precision and recall against ``planted_inflated_vpr``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

#: Resilient-set methods: name -> column of the flags table.
METHODS: dict[str, str] = {"default": "resilient", "quadrant": "quadrant"}
SCHOOL_TYPES = ("basic", "secondary", "advanced", "gymnasium", "lyceum", "adapted", "other")
REFERENCE_TYPE = "secondary"
#: Fewest schools of a type (in the type-fairness pool) for its rate to enter the max ratio.
MIN_TYPE_N = 5
#: Bottom share of latent social status counted as "truly low status".
LOW_SES_SHARE = 0.40
NAN = float("nan")


# --- pure evaluation: DataFrames in, dict out --------------------------------------------------


def reporting_truth(truth: pd.DataFrame, truth_procedures: pd.DataFrame, year: int
                    ) -> pd.DataFrame:
    """Truth of the schools with results in ``year``, indexed by school_id.

    Adds ``low_ses``: latent status in the bottom :data:`LOW_SES_SHARE` of these schools.
    """
    ids = truth_procedures.loc[truth_procedures["year"] == year, "school_id"].astype(str)
    t = truth.assign(school_id=truth["school_id"].astype(str)).set_index("school_id")
    t = t.loc[t.index.isin(ids)].copy()
    t["low_ses"] = t["latent_ses"] <= t["latent_ses"].quantile(LOW_SES_SHARE)
    return t


def _has(df: pd.DataFrame | None, *columns: str) -> bool:
    return df is not None and all(c in df.columns for c in columns)


def _flag(df: pd.DataFrame, column: str, index: pd.Index) -> pd.Series:
    """Boolean ``column`` of ``df`` (by school_id) on ``index``; False where absent or NA."""
    values = df[column].astype("boolean").fillna(False).astype(bool).to_numpy()
    s = pd.Series(values, index=df["school_id"].astype(str).to_numpy())
    return s.reindex(index, fill_value=False).astype(bool)


def _ratio(num: float, den: float) -> float:
    return num / den if den else NAN


def resilient_metrics(flags: pd.DataFrame, t: pd.DataFrame, column: str) -> dict[str, float]:
    """Precision, recall, F1 of ``flags[column]`` against ``planted_resilient``; n flagged.

    ``t`` is :func:`reporting_truth`.  All NaN when the column is missing.
    """
    if not _has(flags, "school_id", column):
        return {"precision": NAN, "recall": NAN, "f1": NAN, "n_flagged": NAN}
    flagged = _flag(flags, column, t.index)
    planted = t["planted_resilient"].astype(bool)
    hits = float((flagged & planted).sum())
    precision = _ratio(hits, float(flagged.sum()))
    recall = _ratio(hits, float(planted.sum()))
    if math.isnan(precision) or math.isnan(recall):
        f1 = NAN
    else:
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1,
            "n_flagged": float(flagged.sum())}


def resilient_truth(flags: pd.DataFrame, t: pd.DataFrame, column: str) -> dict[str, float]:
    """Share of the flagged schools with u > 0 and a latent status in the bottom 40%."""
    if not _has(flags, "school_id", column):
        return {"true_share": NAN}
    flagged = _flag(flags, column, t.index)
    good = (t["school_effect"] > 0) & t["low_ses"]
    return {"true_share": _ratio(float((flagged & good).sum()), float(flagged.sum()))}


def village_recall(flags: pd.DataFrame, t: pd.DataFrame, column: str) -> dict[str, float]:
    """Recall of the planted resilient schools in villages; their number."""
    village = t["planted_resilient"].astype(bool) & (t["settlement_type"] == "village")
    if not _has(flags, "school_id", column):
        return {"village_recall": NAN, "n_village": float(village.sum())}
    flagged = _flag(flags, column, t.index)
    return {"village_recall": _ratio(float((flagged & village).sum()), float(village.sum())),
            "n_village": float(village.sum())}


def inflated_flagged(flags: pd.DataFrame, t: pd.DataFrame, column: str) -> dict[str, float]:
    """Number of planted inflated-ВПР schools flagged by ``column`` (should be 0)."""
    if not _has(flags, "school_id", column):
        return {"inflated": NAN}
    flagged = _flag(flags, column, t.index)
    return {"inflated": float((flagged & t["planted_inflated_vpr"].astype(bool)).sum())}


def type_fairness(flags: pd.DataFrame, t: pd.DataFrame, column: str,
                  reference: str = REFERENCE_TYPE, min_n: int = MIN_TYPE_N) -> dict[str, Any]:
    """Rate flagged per school type among low-context schools with a true u <= 0.

    Types with fewer than ``min_n`` such schools are reported but left out of the ratio.

    Returns
    -------
    dict
        ``rate_<type>`` and ``n_<type>`` for every type (rate NaN when n is 0; both NaN when
        a needed column is missing); ``max_ratio``: the largest rate of another type over
        the reference type's rate (``inf`` when the reference rate is 0 and another is not;
        NaN when every rate is 0 or there is no reference school); ``max_type``: the type
        attaining it.
    """
    available = _has(flags, "school_id", column, "low_context")
    out: dict[str, Any] = {}
    for kind in SCHOOL_TYPES:
        out[f"rate_{kind}"], out[f"n_{kind}"] = NAN, 0.0 if available else NAN
    out.update(max_ratio=NAN, max_type="")
    if not available:
        return out
    low = _flag(flags, "low_context", t.index)
    pool = low & (t["school_effect"] <= 0)
    g = pd.DataFrame({"type": t["school_type"].astype(str), "flag": _flag(flags, column, t.index)}
                     ).loc[pool].groupby("type")["flag"].agg(["mean", "size"])
    for kind, row in g.iterrows():
        out[f"rate_{kind}"], out[f"n_{kind}"] = float(row["mean"]), float(row["size"])
    if reference not in g.index:
        return out
    others = g.drop(index=reference).loc[lambda x: x["size"] >= min_n, "mean"]
    ref = float(g.loc[reference, "mean"])
    if others.empty or (ref == 0 and (others == 0).all()):
        return out
    ratios = others / ref if ref else others.where(others == 0, np.inf)
    out["max_ratio"], out["max_type"] = float(ratios.max()), str(ratios.idxmax())
    return out


def opposite_sign(flags: pd.DataFrame, t: pd.DataFrame) -> dict[str, float]:
    """Among schools published above or below expectation, the share whose true u has the
    opposite sign (u < 0 for above, u > 0 for below); the number published."""
    if not _has(flags, "school_id", "direction"):
        return {"opposite_sign": NAN, "n_published": NAN}
    d = flags.assign(school_id=flags["school_id"].astype(str)).set_index("school_id")[
        "direction"].astype(str).reindex(t.index)
    u = t["school_effect"]
    published = d.isin(["above", "below"])
    wrong = ((d == "above") & (u < 0)) | ((d == "below") & (u > 0))
    return {"opposite_sign": _ratio(float(wrong.sum()), float(published.sum())),
            "n_published": float(published.sum())}


def effect_correlation(flags: pd.DataFrame, t: pd.DataFrame) -> dict[str, float]:
    """Pearson correlation of the estimated persistent effect with the true u."""
    if not _has(flags, "school_id", "effect"):
        return {"effect_corr": NAN}
    e = pd.to_numeric(flags.set_index(flags["school_id"].astype(str))["effect"],
                      errors="coerce").astype("float64").reindex(t.index)
    ok = e.notna()
    if ok.sum() < 3:
        return {"effect_corr": NAN}
    return {"effect_corr": float(np.corrcoef(e[ok], t.loc[ok, "school_effect"])[0, 1])}


def shnor_metrics(shnor: pd.DataFrame, t: pd.DataFrame, truth_procedures: pd.DataFrame,
                  year: int, threshold: float = 0.30,
                  procedures: Sequence[str] | None = None) -> dict[str, float]:
    """ШНОР list against the truth.

    ``reliable_precision``: among schools labelled ``reliable``, the share with a result row
    of ``year`` or ``year - 1`` (in ``procedures``; all when None) whose true
    ``expected_share_low`` is at least ``threshold``.  ``recall``: share of the schools
    meeting the rule in the truth (``meets_shnor``) that are on the list.  Counts per label.
    """
    out = {"reliable_precision": NAN, "n_reliable": NAN, "n_borderline": NAN,
           "n_few_participants": NAN, "recall": NAN, "n_shnor": NAN}
    if _has(shnor, "school_id", "shnor"):
        listed = _flag(shnor, "shnor", t.index)
        meets = t["meets_shnor"].astype(bool)
        out["recall"] = _ratio(float((listed & meets).sum()), float(meets.sum()))
        out["n_shnor"] = float(listed.sum())
    if _has(shnor, "school_id", "label"):
        label = shnor["label"].astype("string").fillna("")
        for name in ("reliable", "borderline", "few_participants"):
            out[f"n_{name}"] = float((label == name).sum())
        tp = truth_procedures.loc[truth_procedures["year"].isin([year - 1, year])]
        if procedures is not None:
            tp = tp.loc[tp["procedure"].isin(list(procedures))]
        truly_low = set(tp.loc[tp["expected_share_low"] >= threshold, "school_id"].astype(str))
        reliable = shnor.loc[(label == "reliable").to_numpy(), "school_id"].astype(str)
        out["reliable_precision"] = _ratio(float(reliable.isin(truly_low).sum()),
                                           float(len(reliable)))
    return out


def objectivity_metrics(objectivity: pd.DataFrame, t: pd.DataFrame) -> dict[str, float]:
    """Precision and recall of ``objectivity_flag`` against ``planted_inflated_vpr``."""
    if not _has(objectivity, "school_id", "objectivity_flag"):
        return {"precision": NAN, "recall": NAN, "n_flagged": NAN}
    flagged = _flag(objectivity, "objectivity_flag", t.index)
    planted = t["planted_inflated_vpr"].astype(bool)
    hits = float((flagged & planted).sum())
    return {"precision": _ratio(hits, float(flagged.sum())),
            "recall": _ratio(hits, float(planted.sum())), "n_flagged": float(flagged.sum())}


def evaluate(flags: pd.DataFrame, shnor: pd.DataFrame, objectivity: pd.DataFrame,
             truth: pd.DataFrame, truth_procedures: pd.DataFrame, *, year: int,
             threshold: float = 0.30, procedures: Sequence[str] | None = None
             ) -> dict[str, Any]:
    """Every metric of one run, flat: ``<method>.<metric>`` for the resilient-set metrics of
    each of :data:`METHODS`, ``shnor.*``, ``objectivity.*``, ``opposite_sign``,
    ``n_published``, ``effect_corr``.  NaN where a needed column is missing."""
    t = reporting_truth(truth, truth_procedures, year)
    out: dict[str, Any] = {}
    for method, column in METHODS.items():
        parts = (resilient_metrics(flags, t, column), resilient_truth(flags, t, column),
                 village_recall(flags, t, column), inflated_flagged(flags, t, column),
                 type_fairness(flags, t, column))
        for part in parts:
            out.update({f"{method}.{k}": v for k, v in part.items()})
    out.update(opposite_sign(flags, t))
    out.update(effect_correlation(flags, t))
    out.update({f"shnor.{k}": v for k, v in shnor_metrics(
        shnor, t, truth_procedures, year, threshold, procedures).items()})
    out.update({f"objectivity.{k}": v for k, v in objectivity_metrics(objectivity, t).items()})
    return out


# --- running the pipeline ----------------------------------------------------------------------


