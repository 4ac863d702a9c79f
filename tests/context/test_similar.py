"""Similar schools: twins, ranks among them, tie-breaking, and scale (tiny hand-checked data)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from analysis.context.similar import (
    LEVELS,
    PEERS_COLUMNS,
    RANKS_COLUMNS,
    SimilarResult,
    school_levels,
    similar_schools,
    summary,
)
from analysis.errors import InputError
from analysis.ingest import schema


def make(xs: dict[str, float | tuple], quality: dict[str, float], n: dict[str, int] | None = None,
         levels: dict[str, str] | None = None):
    """Features (1 column for scalars, else one per coordinate), levels and quality tables."""
    ids = list(xs)
    coords = np.array([np.atleast_1d(xs[i]) for i in ids], dtype="float64")
    features = pd.DataFrame(coords, index=pd.Index(ids, name="school_id"),
                            columns=[f"f{j}" for j in range(coords.shape[1])])
    level = pd.Series({i: (levels or {}).get(i, "secondary") for i in ids})
    q = pd.DataFrame({"school_id": list(quality), "quality_index": list(quality.values()),
                      "n_students": [(n or {}).get(i, 20) for i in quality]})
    return features, level, q


def twins_of(res: SimilarResult, school: str) -> list[str]:
    return list(res.peers.loc[res.peers["school_id"] == school, "peer_id"])


def row(res: SimilarResult, school: str) -> dict:
    """One school's ``ranks`` row, each value as stored in its column (NA stays NA)."""
    at = res.ranks["school_id"] == school
    return {c: res.ranks.loc[at, c].iloc[0] for c in res.ranks.columns}


# a line: a=0, b=1, c=3, d=6, e=10, f=15
LINE = {"a": 0.0, "b": 1.0, "c": 3.0, "d": 6.0, "e": 10.0, "f": 15.0}
LINE_Q = {"a": 0.50, "b": 0.60, "c": 0.60, "d": 0.70, "e": 0.40, "f": 0.55}


def test_levels_cover_every_school_type():
    assert set(LEVELS) == set(schema.SCHOOL_TYPES)
    assert {t for t, lv in LEVELS.items() if lv == "secondary"} == {
        "secondary", "advanced", "gymnasium", "lyceum"}
    got = school_levels(pd.Series(["basic", "lyceum", "adapted", "other", "unknown"]))
    assert got.tolist()[:4] == ["basic", "secondary", "adapted", "other"]
    assert got.isna().tolist() == [False] * 4 + [True]


def test_twins_on_a_line_are_the_nearest_by_hand():
    res = similar_schools(*make(LINE, LINE_Q), k=2, min_n=10)
    assert twins_of(res, "a") == ["b", "c"]
    assert twins_of(res, "b") == ["a", "c"]
    assert twins_of(res, "c") == ["b", "a"]  # a and d both at 3: the lower id first
    assert twins_of(res, "d") == ["c", "e"]
    assert twins_of(res, "e") == ["d", "f"]
    assert twins_of(res, "f") == ["e", "d"]
    c = res.peers[res.peers["school_id"] == "c"]
    assert c["order"].tolist() == [1, 2]
    assert c["distance"].tolist() == [2.0, 3.0]
    assert c["peer_quality"].tolist() == pytest.approx([0.60, 0.50])
    assert c["gap"].tolist() == pytest.approx([0.0, -0.10])
    assert list(res.peers.columns) == list(PEERS_COLUMNS)
    assert res.peers["school_id"].tolist() == sorted(res.peers["school_id"])


def test_ranks_percentiles_and_ties_by_hand():
    res = similar_schools(*make(LINE, LINE_Q), k=2, min_n=10)
    expected = {  # rank, percentile, n_better, best_gap
        "a": (3, 0.0, 2, 0.10),   # twins b .60, c .60: both better
        "b": (1, 75.0, 0, 0.0),   # twins a .50 (lower), c .60 (tied)
        "c": (1, 75.0, 0, 0.0),   # twins b .60 (tied), a .50 (lower)
        "d": (1, 100.0, 0, 0.0),  # twins c .60, e .40: both lower
        "e": (3, 0.0, 2, 0.30),   # twins d .70, f .55: both better, best lead .30
        "f": (2, 50.0, 1, 0.15),  # twins e .40 (lower), d .70 (better by .15)
    }
    for school, (rank, pct, n_better, gap) in expected.items():
        r = row(res, school)
        assert (r["rank"], r["n_better"], r["n_group"], r["n_peers"]) == (rank, n_better, 3, 2)
        assert r["percentile"] == pytest.approx(pct)
        assert r["best_gap"] == pytest.approx(gap)
        assert r["reason"] is pd.NA
    assert list(res.ranks.columns) == list(RANKS_COLUMNS)
    assert res.ranks["school_id"].tolist() == sorted(LINE)


def test_output_dtypes():
    res = similar_schools(*make(LINE, LINE_Q, n={"a": 3}), k=2, min_n=10)
    assert res.ranks.dtypes.astype(str).to_dict() == {
        "school_id": "string", "level": "string", "n_peers": "int64", "rank": "Int64",
        "n_group": "Int64", "percentile": "Float64", "n_better": "Int64",
        "best_gap": "Float64", "reason": "string"}
    assert res.peers.dtypes.astype(str).to_dict() == {
        "school_id": "string", "order": "int64", "peer_id": "string", "distance": "float64",
        "peer_quality": "Float64", "gap": "Float64"}
    # missing values are NA, never NaN floats
    for col in ("percentile", "best_gap"):
        assert not np.isnan(res.ranks[col].to_numpy(dtype="float64", na_value=0.0)).any()


def test_only_schools_of_the_same_level_are_compared():
    xs = {"p1": 0.0, "s1": 0.5, "p2": 1.0, "s2": 1.5, "p3": 2.0, "s3": 2.5, "s4": 9.0}
    lv = {i: "basic" if i.startswith("p") else "secondary" for i in xs}
    res = similar_schools(*make(xs, dict.fromkeys(xs, 0.5), levels=lv), k=2, min_n=10)
    assert twins_of(res, "p1") == ["p2", "p3"]
    assert twins_of(res, "s1") == ["s2", "s3"]
    assert twins_of(res, "s4") == ["s3", "s2"]
    lev = res.ranks.set_index("school_id")["level"]
    for s, p in zip(res.peers["school_id"], res.peers["peer_id"], strict=True):
        assert lev[s] == lev[p]


def test_small_schools_get_twins_but_no_rank_and_are_nobodys_twin():
    xs = {"a": 0.0, "b": 1.0, "small": 1.1, "c": 2.0, "d": 3.0, "noq": 1.2, "absent": 2.1}
    quality = {"a": 0.5, "b": 0.6, "small": 0.9, "c": 0.4, "d": 0.7, "noq": np.nan}
    res = similar_schools(*make(xs, quality, n={"small": 9, "noq": 40}), k=2, min_n=10)
    assert twins_of(res, "small") == ["b", "c"]
    assert twins_of(res, "noq") == ["b", "c"]
    assert twins_of(res, "absent") == ["c", "d"]
    assert twins_of(res, "b") == ["a", "c"]  # not the small school at 0.1
    assert not set(res.peers["peer_id"]) & {"small", "noq", "absent"}
    for school, reason in (("small", "below_min_n"), ("noq", "no_quality"),
                           ("absent", "no_quality")):
        r = row(res, school)
        assert r["reason"] == reason
        assert r["n_peers"] == 2
        for col in ("rank", "n_group", "percentile", "n_better", "best_gap"):
            assert r[col] is pd.NA, (school, col)
        p = res.peers[res.peers["school_id"] == school]
        assert p["peer_quality"].isna().all() and p["gap"].isna().all()
        assert p["distance"].notna().all()
    assert res.ranks["rank"].notna().sum() == 4
    # min_n = 9 lets the small school in: now it is b's nearest twin and is ranked
    res9 = similar_schools(*make(xs, quality, n={"small": 9, "noq": 40}), k=2, min_n=9)
    assert twins_of(res9, "b")[0] == "small"
    assert row(res9, "small")["rank"] == 1


def test_too_few_peers():
    xs = {"b1": 0.0, "b2": 1.0, "b3": 2.0,          # 3 ranked: k_eff = 2, ranked
          "a1": 0.0, "a2": 1.0, "a_small": 0.5,     # 2 ranked: k_eff = 1, no rank
          "o1": 0.0, "o_small": 1.0}                # 1 ranked: no twins at all
    lv = {i: {"b": "basic", "a": "adapted", "o": "other"}[i[0]] for i in xs}
    q = {"b1": 0.5, "b2": 0.6, "b3": 0.7, "a1": 0.5, "a2": 0.6, "a_small": 0.7, "o1": 0.5,
         "o_small": 0.6}
    res = similar_schools(*make(xs, q, n={"a_small": 1, "o_small": 1}, levels=lv),
                          k=5, min_n=10)
    r = res.ranks.set_index("school_id")
    assert r.loc[["b1", "b2", "b3"], "n_peers"].tolist() == [2, 2, 2]
    assert r.loc[["b1", "b2", "b3"], "rank"].tolist() == [3, 2, 1]
    assert r.loc[["b1", "b2", "b3"], "n_group"].tolist() == [3, 3, 3]
    assert r.loc[["a1", "a2", "a_small", "o1", "o_small"], "reason"].tolist() == [
        "too_few_peers", "too_few_peers", "below_min_n", "too_few_peers", "below_min_n"]
    assert r.loc[["a1", "a2", "a_small", "o1", "o_small"], "rank"].isna().all()
    assert r.loc[["a1", "a2", "a_small", "o1", "o_small"], "n_peers"].tolist() == [1, 1, 1, 0, 0]
    assert twins_of(res, "a1") == ["a2"] and twins_of(res, "a_small") == ["a1"]
    assert twins_of(res, "o1") == [] and twins_of(res, "o_small") == []
    assert summary(res)["by_level"] == {"adapted": 0, "basic": 3, "other": 0}


TIES = {  # a centre, 8 points at distance 1 (4 on the axes, 4 at (±0.6, ±0.8)), duplicates
    "m": (0.0, 0.0),
    "r1": (1.0, 0.0), "r7": (-1.0, 0.0), "r3": (0.0, 1.0), "r5": (0.0, -1.0),
    "r8": (0.6, 0.8), "r2": (-0.6, 0.8), "r6": (0.6, -0.8), "r4": (-0.6, -0.8),
    **{f"z{i}": (5.0, 5.0) for i in range(6)},  # 6 identical schools
    "y": (5.0, 6.0),
}


def test_equal_distances_are_ordered_by_school_id():
    res = similar_schools(*make(TIES, dict.fromkeys(TIES, 0.5)), k=3, min_n=10)
    assert twins_of(res, "m") == ["r1", "r2", "r3"]
    assert res.peers.loc[res.peers["school_id"] == "m", "distance"].tolist() == [1.0] * 3
    assert twins_of(res, "z3") == ["z0", "z1", "z2"]
    assert twins_of(res, "z0") == ["z1", "z2", "z3"]
    assert twins_of(res, "y") == ["z0", "z1", "z2"]
    assert row(res, "m")["percentile"] == 50.0 and row(res, "m")["rank"] == 1


def _frames(res: SimilarResult) -> tuple[bytes, bytes]:
    return (res.ranks.to_csv(index=False).encode(), res.peers.to_csv(index=False).encode())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_permuting_input_rows_gives_identical_output(seed):
    rng = np.random.default_rng(seed)
    quality = {i: round(float(v), 2) for i, v in zip(TIES, rng.uniform(0.4, 0.7, len(TIES)),
                                                      strict=True)}
    features, level, q = make(TIES, quality)
    base = similar_schools(features, level, q, k=3, min_n=10)
    perm = rng.permutation(len(features))
    again = similar_schools(features.iloc[perm], level.iloc[rng.permutation(len(level))],
                            q.iloc[rng.permutation(len(q))], k=3, min_n=10)
    assert_frame_equal(base.ranks, again.ranks)
    assert_frame_equal(base.peers, again.peers)
    assert _frames(base) == _frames(again)


def test_matches_brute_force_with_many_ties():
    rng = np.random.default_rng(5)
    n, k = 300, 7
    x = rng.integers(0, 3, size=(n, 3)).astype("float64")  # 27 distinct points: heavy ties
    ids = [f"s{i:03d}" for i in rng.permutation(n)]
    features = pd.DataFrame(x, index=ids)
    level = pd.Series("secondary", index=ids)
    q = pd.DataFrame({"school_id": ids, "quality_index": rng.integers(0, 5, n) / 10,
                      "n_students": rng.integers(5, 30, n)})
    res = similar_schools(features, level, q, k=k, min_n=10)
    pool = set(q.loc[q["n_students"] >= 10, "school_id"])
    d = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(axis=2))
    for i, s in enumerate(ids):
        cand = sorted((round(d[i, j], 9), t) for j, t in enumerate(ids) if t in pool and t != s)
        assert twins_of(res, s) == [t for _, t in cand[:k]], s


def test_parameters_and_inputs_are_checked():
    features, level, q = make(LINE, LINE_Q)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match=r"similar\.k"):
            similar_schools(features, level, q, k=bad, min_n=10)
    with pytest.raises(ValueError, match=r"similar\.min_n"):
        similar_schools(features, level, q, k=2, min_n=-1)
    with pytest.raises(InputError, match="f0"):
        similar_schools(features.assign(f0=[0.0, np.nan, 1, 2, 3, 4]), level, q, k=2, min_n=1)
    with pytest.raises(InputError, match="no level"):
        similar_schools(features, level.drop("c"), q, k=2, min_n=1)
    with pytest.raises(InputError, match="one row per school"):
        similar_schools(features, level, pd.concat([q, q.head(1)]), k=2, min_n=1)


def test_no_schools_or_no_quality_at_all():
    features, level, q = make(LINE, LINE_Q)
    empty = similar_schools(features.iloc[:0], level.iloc[:0], q.iloc[:0], k=2, min_n=10)
    assert empty.ranks.empty and empty.peers.empty
    assert list(empty.peers.columns) == list(PEERS_COLUMNS)
    none = similar_schools(features, level, q.iloc[:0], k=2, min_n=10)
    assert (none.ranks["reason"] == "no_quality").all() and none.peers.empty
    assert summary(none)["n_ranked"] == 0


def test_summary_is_plain_json():
    res = similar_schools(*make(LINE, LINE_Q, n={"a": 3}), k=2, min_n=10)
    s = summary(res)
    assert s == {"n_schools": 6, "n_ranked": 5, "k": 2, "min_n": 10,
                 "by_level": {"secondary": 5}}
    assert json.loads(json.dumps(s)) == s


def context_features(n: int, rng: np.random.Generator) -> pd.DataFrame:
    """10 standardised features like a region's: 7 social shares driven by 2 latent factors,
    log enrollment, and settlement type as 2 dummies (city is both 0)."""
    latent = rng.standard_normal((n, 2))
    shares = latent @ rng.uniform(-1, 1, (2, 7)) + 0.3 * rng.standard_normal((n, 7))
    size = 0.5 * latent[:, :1] + rng.standard_normal((n, 1))
    settlement = rng.choice(3, n, p=[0.4, 0.2, 0.4])
    dummies = np.stack([settlement == 1, settlement == 2], axis=1).astype("float64")
    x = np.hstack([shares, size, dummies])
    return pd.DataFrame((x - x.mean(axis=0)) / x.std(axis=0),
                        index=[f"{i:06d}" for i in range(n)])


def test_forty_thousand_schools():
    rng = np.random.default_rng(0)
    n, k = 40_000, 10
    features = context_features(n, rng)
    ids = list(features.index)
    level = pd.Series(rng.choice(["basic", "secondary", "adapted", "other"], n,
                                 p=[0.3, 0.6, 0.05, 0.05]), index=ids)
    q = pd.DataFrame({"school_id": ids, "quality_index": rng.uniform(0, 1, n),
                      "n_students": rng.integers(0, 100, n)})
    q.loc[q.sample(frac=0.05, random_state=1).index, "quality_index"] = np.nan
    res = similar_schools(features, level, q, k=k, min_n=10)
    assert res.ranks.shape == (n, len(RANKS_COLUMNS))
    assert res.peers.shape == (n * k, len(PEERS_COLUMNS))
    assert (res.ranks["n_peers"] == k).all()
    ranked = res.ranks["rank"].notna()
    assert ranked.sum() == ((q["n_students"] >= 10) & q["quality_index"].notna()).sum()
    assert res.ranks.loc[ranked, "rank"].between(1, k + 1).all()
    assert res.ranks.loc[ranked, "percentile"].between(0, 100).all()
