"""The planted truth: the tables ``truth``, ``truth_years``, ``truth_procedures`` and the
parameters of ``truth.json``.

One row per school (:data:`TRUTH_COLUMNS`), per school-year (:data:`TRUTH_YEARS_COLUMNS`)
and per result row (:data:`TRUTH_PROCEDURES_COLUMNS`: the true expected shares, computed
analytically from the generating model), and everything ``truth.json`` records.  The truth
draws no random numbers.
"""

from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np
import pandas as pd
from scipy.special import ndtr

from analysis.demo.synth.params import (
    _GRADE,
    _MARKED,
    _PROCEDURE,
    _SUBJECT,
    _VPR,
    ASSESSMENTS,
    PARAMS,
    SPECIAL_NAME,
)
from analysis.demo.synth.rules import _score_scales
from analysis.demo.synth.scores import _Planted
from analysis.demo.synth.spec import RegionSpec
from analysis.demo.synth.tables import _result_keys
from analysis.ingest import schema

TRUTH_COLUMNS = (
    "school_id", "municipality", "school_type", "settlement_type", "context_group", "latent_ses",
    "school_effect", "planted_resilient", "planted_low", "planted_inflated_vpr", "opened_year",
    "closed_year", "meets_shnor",
)
TRUTH_YEARS_COLUMNS = (
    "school_id", "year", "latent_ses_year", "year_effect", "effect", "participants",
)
TRUTH_PROCEDURES_COLUMNS = (
    "school_id", "year", "procedure", "subject", "grade", "participants", "expected_share_low",
    "expected_share_good",
)


def _truth(schools: pd.DataFrame, planted: _Planted, meets_shnor: np.ndarray,
           regional: bool = False) -> pd.DataFrame:
    """Truth per school (:data:`TRUTH_COLUMNS`; ``region`` before ``municipality`` if
    ``regional``)."""
    out = pd.DataFrame({
        "school_id": pd.array(schools["school_id"], dtype="string"),
        "region": pd.array(schools["region"], dtype="string"),
        "municipality": pd.array(schools["municipality"], dtype="string"),
        "school_type": pd.array(schools["school_type"], dtype="string"),
        "settlement_type": pd.array(schools["settlement_type"], dtype="string"),
        "context_group": pd.array(np.where(schools["urban"], "urban", "rural")
                                  + "/" + schools["settlement_type"].to_numpy(dtype=str),
                                  dtype="string"),
        "latent_ses": np.round(schools["s"].to_numpy(), 4) + 0.0,
        "school_effect": np.round(schools["u"].to_numpy(), 4) + 0.0,
        "planted_resilient": planted.resilient,
        "planted_low": planted.low,
        "planted_inflated_vpr": planted.inflated,
        "opened_year": pd.array(schools["opened_year"], dtype="Int64"),
        "closed_year": pd.array(schools["closed_year"], dtype="Int64"),
        "meets_shnor": meets_shnor,
    })
    columns = list(TRUTH_COLUMNS)
    if regional:
        columns.insert(columns.index("municipality"), "region")
    return out[columns]


def _round4(x: np.ndarray) -> np.ndarray:
    """Round to 4 decimals as the CSV files do (``+ 0.0`` turns ``-0.0`` into ``0.0``)."""
    return np.round(np.asarray(x, dtype=float), 4) + 0.0


def _truth_years(counts: np.ndarray, panel: pd.DataFrame, schools: pd.DataFrame
                 ) -> pd.DataFrame:
    """Truth per school-year: s_iy, v_iy, u_i + v_iy and the ВПР+ОГЭ sittings (panel order)."""
    sidx = panel["sidx"].to_numpy()
    v = panel["v"].to_numpy()
    out = pd.DataFrame({
        "school_id": pd.array(schools["school_id"].to_numpy()[sidx], dtype="string"),
        "year": panel["year"].to_numpy(dtype="int64"),
        "latent_ses_year": _round4(panel["s_y"].to_numpy()),
        "year_effect": _round4(v),
        "effect": _round4(schools["u"].to_numpy()[sidx] + v),
        "participants": counts[:, _MARKED].sum(axis=1).astype("int64"),
    })
    return out[list(TRUTH_YEARS_COLUMNS)]


def _p_score_below(k: np.ndarray, scale: dict[str, np.ndarray], a: np.ndarray,
                   mu: np.ndarray, sd: float) -> np.ndarray:
    """P(clip(round(c0 + c1 y), lo, hi) < k) for y ~ N(mu, sd), per row (assessment ``a``).

    For ``lo < k <= hi`` the score is below ``k`` exactly when ``c0 + c1 y < k - 0.5`` (the
    clipping cannot move a score across ``k``; ties have probability 0).
    """
    c0, c1, lo, hi = (scale[name][a] for name in ("c0", "c1", "lo", "hi"))
    p = ndtr(((k - 0.5 - c0) / c1 - mu) / sd)
    return np.where(k <= lo, 0.0, np.where(k > hi, 1.0, p))


def _truth_procedures(counts: np.ndarray, panel: pd.DataFrame, schools: pd.DataFrame,
                      planted: _Planted, cuts: dict) -> pd.DataFrame:
    """True expected shares of «2» (below the minimum) and of «4»/«5» per result row.

    Keys and order are those of :func:`.tables._results`.  A student's latent score
    given the school-year is ``y ~ N(mu, sd)`` (see :mod:`analysis.demo.synth`).
    """
    p = PARAMS["student_model"]
    _, row, a, n = _result_keys(counts)
    sidx = panel["sidx"].to_numpy()[row]
    type_effect = schools["school_type"].map(p["type_effect"]).to_numpy(dtype=float)
    d = np.array([p["d_assessment"]["/".join(map(str, x))] for x in ASSESSMENTS])
    shift = np.where(_VPR[a] & planted.inflated[sidx],
                     PARAMS["planted"]["inflated_vpr"]["vpr_shift"], 0.0)
    mu = ((p["b_ses"] + p["b_comp"]) * panel["s_y"].to_numpy()[row] + type_effect[sidx]
          + schools["u"].to_numpy()[sidx] + panel["v"].to_numpy()[row] + d[a] + shift)
    sd = float(np.hypot(p["b_ses"] * p["sd_student_ses"], p["sd_student"]))
    scale = _score_scales(cuts)
    good = scale["good"][a]
    p_low = _p_score_below(scale["low"][a], scale, a, mu, sd)
    p_good = np.where(np.isnan(good), np.nan,
                      1.0 - _p_score_below(np.nan_to_num(good), scale, a, mu, sd))
    out = pd.DataFrame({
        "school_id": pd.array(schools["school_id"].to_numpy()[sidx], dtype="string"),
        "year": panel["year"].to_numpy(dtype="int64")[row],
        "procedure": pd.array(_PROCEDURE[a], dtype="string"),
        "subject": pd.array(_SUBJECT[a], dtype="string"),
        "grade": _GRADE[a],
        "participants": n,
        "expected_share_low": _round4(p_low),
        "expected_share_good": _round4(p_good),
    })
    return out[list(TRUTH_PROCEDURES_COLUMNS)]


def _truth_params(spec: RegionSpec, munis: pd.DataFrame, schools: pd.DataFrame,
                  planted: _Planted, cuts: dict, schools_table: pd.DataFrame,
                  results: pd.DataFrame, truth: pd.DataFrame) -> dict:
    """Everything ``truth.json`` records (the spec, the model, the counts, planted schools).

    With one region (the default) neither the spec nor the counts mention regions, so the
    single-region file is unchanged; with several, ``counts`` has ``regions`` and the file
    lists each region's code, name and number of municipalities under ``regions``.
    """
    social = list(schema.SOCIAL_INDICATORS)
    indicators = schools_table[list(schema.SCHOOLS_OPTIONAL)]

    def ids(mask: np.ndarray | pd.Series) -> list[str]:
        return [str(x) for x in truth.loc[np.asarray(mask, dtype=bool), "school_id"]]

    counts = {
        "municipalities": len(munis),
        "municipalities_urban": int(munis["urban"].sum()),
        "schools": len(schools),
        "school_years": len(schools_table),
        "schools_by_year": {str(y): int(n) for y, n in
                            schools_table.groupby("year").size().items()},
        "schools_with_results": int(results["school_id"].nunique()),
        "result_rows": len(results),
        "result_rows_under_10_participants": int((results["participants"] < 10).sum()),
        "planted_resilient": int(planted.resilient.sum()),
        "planted_low": int(planted.low.sum()),
        "planted_inflated_vpr": int(planted.inflated.sum()),
        "meets_shnor": int(truth["meets_shnor"].sum()),
        "school_years_all_social_missing": int(indicators[social].isna().all(axis=1).sum()),
        "indicator_cells_missing_share": round(float(indicators.isna().to_numpy().mean()), 6),
    }
    spec_values = {**asdict(spec), "years": list(spec.years)}
    out = {
        "spec": spec_values,
        "model": json.loads(json.dumps(PARAMS)),
        "cut_points": cuts,
        "counts": counts,
        "closed_schools": ids(truth["closed_year"].notna()),
        "opened_schools": ids(truth["opened_year"].notna()),
        "planted_schools": {"resilient": ids(planted.resilient), "low": ids(planted.low),
                            "inflated_vpr": ids(planted.inflated)},
        "special_name": SPECIAL_NAME,
    }
    if spec.n_regions == 1:
        del spec_values["n_regions"]
    else:
        counts["regions"] = spec.n_regions
        sizes = munis.groupby("region", sort=True)["region_name"].agg(["first", "size"])
        out["regions"] = [{"code": f"{r + 1:02d}", "name": str(name),
                           "municipalities": int(size)}
                          for r, (name, size) in zip(sizes.index, sizes.to_numpy(),
                                                     strict=True)]
    return out
