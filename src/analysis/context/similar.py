"""Similar schools (похожие школы): each school's K nearest context twins, and its rank.

Follows the California API "Similar Schools Rank" and the DfE "similar schools" idea: a
school is compared not with the whole region but with the ``k`` schools whose context is
closest to its own (Euclidean distance on context features the caller has already encoded
and standardised), within the same level of schooling (:data:`LEVELS`: an ООШ is compared
with ООШ, a СОШ/гимназия/лицей with other schools teaching up to grade 11).

Only schools with a quality index computed from at least ``min_n`` students (the *ranked
pool*) are ranked and serve as twins; every school, ranked or not, gets its twins listed, so
a small school can still see whom it resembles, but its twins' results are not shown next to
it (the gap would reveal its own result).

Twins are found with a K-d tree (a ball tree for more than 15 features) fitted per level on
the distinct feature vectors of the ranked pool, never a full distance matrix, so 40,000
schools run in a few seconds.  Ties in distance (to 1e-9) are broken by ``school_id``, and
identical feature vectors are merged before the tree is built, so the output does not depend
on the order of the input rows: re-runs are byte-identical.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.neighbors import NearestNeighbors

from analysis.context.index import SET_IN
from analysis.errors import InputError, Problem
from analysis.ingest import schema

#: Level of schooling of each school type (schema.SCHOOL_TYPES); schools are compared only
#: within one level.  ООШ teach grades 1-9, СОШ (also with advanced study), гимназии and
#: лицеи grades 1-11.
LEVELS: dict[str, str] = {
    "basic": "basic",
    "secondary": "secondary",
    "advanced": "secondary",
    "gymnasium": "secondary",
    "lyceum": "secondary",
    "adapted": "adapted",
    "other": "other",
}

#: Reasons a school has no rank (``ranks.reason``; missing for a ranked school).
NO_QUALITY, BELOW_MIN_N, TOO_FEW_PEERS = "no_quality", "below_min_n", "too_few_peers"
#: Least number of twins a rank is computed from.
MIN_PEERS = 2
#: Distances and quality indices are compared after rounding to this many decimals, so that
#: values equal up to floating-point noise tie (distance ties are broken by school_id).
DECIMALS = 9
#: More features than this: ball tree instead of K-d tree (both exact).
_KD_TREE_MAX_FEATURES = 15
#: Target size (elements) of the candidate block built per batch of queried schools.
_BATCH_ELEMENTS = 500_000

RANKS_COLUMNS = ("school_id", "level", "n_peers", "rank", "n_group", "percentile", "n_better",
                 "best_gap", "reason")
PEERS_COLUMNS = ("school_id", "order", "peer_id", "distance", "peer_quality", "gap")


@dataclass(frozen=True)
class SimilarResult:
    """Twins and ranks among them (see :func:`similar_schools`).

    Attributes
    ----------
    ranks : DataFrame, shape (n_schools, 9)
        One row per school, sorted by ``school_id``: ``school_id`` (string), ``level``
        (string), ``n_peers`` (int64), ``rank``, ``n_group``, ``n_better`` (Int64),
        ``percentile``, ``best_gap`` (Float64), ``reason`` (string; NA for a ranked school).
    peers : DataFrame, shape (sum of n_peers, 6)
        One row per school x twin, sorted by ``school_id`` then ``order``: ``school_id``,
        ``peer_id`` (string), ``order`` (int64, 1 = nearest), ``distance`` (float64,
        Euclidean on the features, rounded to ``DECIMALS``; equal ones ordered by peer_id),
        ``peer_quality``, ``gap`` (Float64; NA when the school itself is not in the pool).
    k : int
        Twins requested per school (a level with fewer ranked schools gets fewer).
    min_n : int
        Least number of students behind a quality index for a school to be ranked.
    """

    ranks: pd.DataFrame
    peers: pd.DataFrame
    k: int
    min_n: int


def school_levels(school_type: pd.Series) -> pd.Series:
    """Level of schooling (:data:`LEVELS`) of each school type code; unknown codes -> NA."""
    return school_type.map(LEVELS).astype("string").rename("level")


def _check_params(k: int, min_n: int) -> None:
    for name, value, least in (("k", k, 1), ("min_n", min_n, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
            raise ValueError(f"similar.{name} must be an integer >= {least}, got {value!r} "
                             f"(set similar.{name} in {SET_IN})")


def _ids(values: pd.Index | pd.Series) -> str:
    shown = sorted(str(v) for v in values)
    more = f" (and {len(shown) - 10} more)" if len(shown) > 10 else ""
    return ", ".join(shown[:10]) + more


def _check_inputs(features: pd.DataFrame, level: pd.Series, quality: pd.DataFrame) -> None:
    problems = []
    if features.index.has_duplicates:
        dup = features.index[features.index.duplicated()].unique()
        problems.append(Problem(file="similar-schools features", column="school_id",
                                value=_ids(dup), expected="one row per school"))
    if features.shape[1] == 0:
        problems.append(Problem(file="similar-schools features", column="",
                                expected="at least one context feature"))
    values = features.to_numpy(dtype="float64", na_value=np.nan)
    for j, col in enumerate(features.columns):
        bad = ~np.isfinite(values[:, j])
        if bad.any():
            problems.append(Problem(
                file="similar-schools features", column=str(col),
                value=f"missing or infinite for schools {_ids(features.index[bad])}",
                expected="a number for every school (impute or drop the feature first)"))
    lev = level.reindex(features.index)
    if lev.isna().any():
        problems.append(Problem(
            file="similar-schools levels", column="level",
            value=f"no level for schools {_ids(features.index[lev.isna().to_numpy()])}",
            expected=f"a level of schooling for every school (school_type one of "
                     f"{', '.join(schema.SCHOOL_TYPES)})"))
    missing = {"school_id", "quality_index", "n_students"} - set(quality.columns)
    if missing:
        problems.append(Problem(file="similar-schools quality", column=", ".join(sorted(missing)),
                                expected="columns school_id, quality_index, n_students"))
    elif quality["school_id"].duplicated().any():
        dup = quality.loc[quality["school_id"].duplicated(), "school_id"].unique()
        problems.append(Problem(file="similar-schools quality", column="school_id",
                                value=_ids(dup), expected="one row per school"))
    if problems:
        raise InputError(problems)


def _twins(pool_x: np.ndarray, query_x: np.ndarray, query_self: np.ndarray, k: int
           ) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest pool members of each query point, ties broken by pool position.

    Parameters
    ----------
    pool_x : ndarray, shape (n_pool, n_features)
        Features of the pool, rows sorted by school_id (so position order = id order).
    query_x : ndarray, shape (n_query, n_features)
    query_self : ndarray of int, shape (n_query,)
        Position of each query point in the pool (excluded from its twins), -1 if none.
    k : int
        Twins per query point, ``1 <= k <= n_pool - 1`` (or ``n_pool`` if no query is in it).

    Returns
    -------
    twins : ndarray of int, shape (n_query, k)
        Pool positions, in order of (distance rounded to DECIMALS, position).
    distance : ndarray of float, shape (n_query, k)
        Euclidean distances rounded to DECIMALS (feature units).
    """
    # Merge identical vectors: the tree then depends only on the set of vectors (np.unique
    # sorts them), and a block of identical schools costs one neighbour, not one per school.
    uniq, inverse = np.unique(pool_x, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    n_uniq = len(uniq)
    by_vector = np.argsort(inverse, kind="stable")  # members of each vector, in id order
    counts = np.bincount(inverse, minlength=n_uniq)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    width = int(min(counts.max(), k + 1))  # k + 1 lowest ids suffice, even with self among them
    slot = np.arange(len(inverse)) - np.repeat(starts, counts)
    members = np.full((n_uniq, width), -1, dtype=np.int64)
    keep = slot < width
    members[inverse[by_vector][keep], slot[keep]] = by_vector[keep]

    algorithm = "kd_tree" if uniq.shape[1] <= _KD_TREE_MAX_FEATURES else "ball_tree"
    tree = NearestNeighbors(algorithm=algorithm).fit(uniq)
    n_query = len(query_x)
    twins = np.empty((n_query, k), dtype=np.int64)
    dist = np.empty((n_query, k), dtype=np.float64)
    todo = np.arange(n_query)
    m = min(n_uniq, k + 2)  # vectors retrieved: self's vector, k others, one to see past k
    while todo.size:
        batch = max(1, _BATCH_ELEMENTS // (m * width))
        unresolved = []
        for lo in range(0, todo.size, batch):
            rows = todo[lo:lo + batch]
            d, v = tree.kneighbors(query_x[rows], n_neighbors=m)
            d = np.round(d, DECIMALS)
            cand = members[v].reshape(len(rows), m * width)
            cd = np.repeat(d, width, axis=1)
            valid = (cand >= 0) & (cand != query_self[rows, None])
            cd = np.where(valid, cd, np.inf)
            cand_key = np.where(valid, cand, np.iinfo(np.int64).max)
            order = np.lexsort((cand_key, cd), axis=-1)[:, :k]
            t = np.take_along_axis(cand, order, axis=1)
            td = np.take_along_axis(cd, order, axis=1)
            # Complete when every vector not retrieved is farther (rounded) than the k-th twin.
            done = np.full(len(rows), m == n_uniq) | (td[:, -1] < d[:, -1])
            twins[rows[done]], dist[rows[done]] = t[done], td[done]
            unresolved.append(rows[~done])
        todo = np.concatenate(unresolved)
        m = min(n_uniq, 2 * m)
    return twins, dist


def _rank_rows(own: np.ndarray, peer_q: np.ndarray) -> dict[str, np.ndarray]:
    """Rank of each school among its twins, shapes (n,) and (n, k): quality on 0..1."""
    o = np.round(own, DECIMALS)[:, None]
    p = np.round(peer_q, DECIMALS)
    better, lower = p > o, p < o
    tied = p.shape[1] - better.sum(axis=1) - lower.sum(axis=1)
    n_better = better.sum(axis=1)
    gaps = np.where(better, peer_q - own[:, None], 0.0)
    return {"rank": 1 + n_better, "n_better": n_better,
            "percentile": 100.0 * (lower.sum(axis=1) + 0.5 * tied) / p.shape[1],
            "best_gap": gaps.max(axis=1)}


def similar_schools(features: pd.DataFrame, level: pd.Series, quality: pd.DataFrame, *,
                    k: int, min_n: int) -> SimilarResult:
    """Each school's ``k`` nearest context twins within its level, and its rank among them.

    The *ranked pool* of a level is its schools with a quality index from at least ``min_n``
    students.  Every school of ``features`` is given the ``k`` pool schools of its level
    nearest to it in Euclidean distance on ``features`` (itself excluded); equal distances
    (to 1e-9) are ordered by ``school_id``.  A level with fewer than ``k + 1`` pool schools
    gives each school ``n_pool - 1`` twins; a school with fewer than 2 twins is not ranked
    (``too_few_peers``).

    A ranked school's position among its twins (quality indices compared to 1e-9):

    - ``rank`` = 1 + number of twins with a higher quality index (1 = best of the group of
      ``n_group = n_peers + 1`` schools; tied schools share a rank);
    - ``percentile`` = 100 * (twins lower + 0.5 * twins tied) / ``n_peers``, 0..100, higher
      = ahead of more of its twins (50 = in the middle);
    - ``n_better`` = twins with a higher quality index, ``best_gap`` = largest lead of such a
      twin over the school (quality-index points, 0..1; 0.0 if none).

    Parameters
    ----------
    features : DataFrame, shape (n_schools, n_features)
        Index ``school_id`` (unique); numeric context features, already encoded and
        standardised (every feature counts in the distance in its own units), no missing
        values.
    level : Series, indexed by school_id
        Level of schooling of every school of ``features`` (e.g. :func:`school_levels`).
    quality : DataFrame
        ``school_id``, ``quality_index`` (0..1, NaN = none) and ``n_students`` (number of
        students behind the index; missing = not known, treated as below ``min_n``).  A
        school of ``features`` absent here is ``no_quality``; extra schools are ignored.
    k : int
        Twins per school (>= 1; California uses 100).
    min_n : int
        Least number of students for a school to be ranked and to serve as a twin.

    Returns
    -------
    SimilarResult
        ``ranks`` (one row per school) and ``peers`` (one row per school x twin).  A school
        without a rank has ``reason`` ``no_quality``, ``below_min_n`` or ``too_few_peers`` and
        NA in ``rank``, ``n_group``, ``percentile``, ``n_better``, ``best_gap``; a school
        outside the pool has NA ``peer_quality`` and ``gap`` for its twins.

    Raises
    ------
    ValueError
        ``k`` < 1 or ``min_n`` < 0 (named ``similar.k``, ``similar.min_n``).
    InputError
        Duplicate schools, missing or infinite features, schools without a level, or a
        quality table without its columns.
    """
    _check_params(k, min_n)
    _check_inputs(features, level, quality)
    ids = features.index.astype("string")
    order = np.argsort(ids.to_numpy(dtype=object), kind="stable")
    ids = ids[order].to_numpy(dtype=object)
    x = features.to_numpy(dtype="float64")[order]
    lev = level.reindex(features.index).astype("string").to_numpy(dtype=object)[order]

    q = quality.assign(school_id=quality["school_id"].astype("string")).set_index("school_id")
    q = q.reindex(pd.Index(ids, dtype="string"))
    qi = pd.to_numeric(q["quality_index"]).astype("float64").to_numpy(na_value=np.nan)
    ns = pd.to_numeric(q["n_students"]).astype("float64").to_numpy(na_value=np.nan)
    has_q = np.isfinite(qi)
    eligible = has_q & (ns >= min_n)
    reason = np.where(~has_q, NO_QUALITY, np.where(~eligible, BELOW_MIN_N, "")).astype(object)

    n = len(ids)
    n_peers = np.zeros(n, dtype=np.int64)
    ranked = np.zeros(n, dtype=bool)
    stats = {c: np.full(n, np.nan) for c in ("rank", "n_better", "percentile", "best_gap")}
    peer_frames = []
    for lvl in sorted(set(lev)):
        rows = np.flatnonzero(lev == lvl)
        pool = rows[eligible[rows]]
        k_eff = min(k, len(pool) - 1)
        if k_eff < MIN_PEERS:
            reason[pool] = TOO_FEW_PEERS
        if k_eff < 1:
            continue
        position = np.full(n, -1, dtype=np.int64)
        position[pool] = np.arange(len(pool))
        twins, dist = _twins(x[pool], x[rows], position[rows], k_eff)
        twin_rows = pool[twins]  # shape (n_rows, k_eff), rows of the sorted table
        n_peers[rows] = k_eff
        peer_q = qi[twin_rows]
        own = qi[rows]
        shown = eligible[rows]
        peer_frames.append(pd.DataFrame({
            "row": np.repeat(rows, k_eff),
            "order": np.tile(np.arange(1, k_eff + 1), len(rows)),
            "peer_row": twin_rows.ravel(),
            "distance": dist.ravel(),
            "peer_quality": np.where(shown[:, None], peer_q, np.nan).ravel(),
            "gap": np.where(shown[:, None], peer_q - own[:, None], np.nan).ravel(),
        }))
        if k_eff >= MIN_PEERS:
            ranked[pool] = True
            at = eligible[rows]
            for c, v in _rank_rows(own[at], peer_q[at]).items():
                stats[c][rows[at]] = v

    ranks = pd.DataFrame({
        "school_id": pd.array(ids, dtype="string"),
        "level": pd.array(lev, dtype="string"),
        "n_peers": n_peers,
        "rank": pd.array(stats["rank"], dtype="Float64").astype("Int64"),
        "n_group": pd.array(np.where(ranked, n_peers + 1, np.nan), dtype="Float64"
                            ).astype("Int64"),
        "percentile": pd.array(stats["percentile"], dtype="Float64"),
        "n_better": pd.array(stats["n_better"], dtype="Float64").astype("Int64"),
        "best_gap": pd.array(stats["best_gap"], dtype="Float64"),
        "reason": pd.array(np.where(reason == "", None, reason), dtype="string"),
    })
    long = (pd.concat(peer_frames, ignore_index=True) if peer_frames else pd.DataFrame(
        {"row": [], "order": [], "peer_row": [], "distance": [], "peer_quality": [], "gap": []},
    ).astype({"row": "int64", "order": "int64", "peer_row": "int64", "distance": "float64",
              "peer_quality": "float64", "gap": "float64"}))
    long = long.sort_values(["row", "order"], kind="stable")
    peers = pd.DataFrame({
        "school_id": pd.array(ids[long["row"].to_numpy()], dtype="string"),
        "order": long["order"].to_numpy(dtype=np.int64),
        "peer_id": pd.array(ids[long["peer_row"].to_numpy()], dtype="string"),
        "distance": long["distance"].to_numpy(dtype=np.float64),
        "peer_quality": pd.array(long["peer_quality"].to_numpy(), dtype="Float64"),
        "gap": pd.array(long["gap"].to_numpy(), dtype="Float64"),
    })
    return SimilarResult(ranks=ranks, peers=peers, k=int(k), min_n=int(min_n))


def summary(result: SimilarResult) -> dict:
    """Counts for the report, in plain JSON types.

    Returns
    -------
    dict
        ``n_schools``, ``n_ranked``, ``k``, ``min_n`` and ``by_level`` (level -> number of
        ranked schools, every level present, in alphabetical order).
    """
    r = result.ranks
    is_ranked = r["rank"].notna()
    by_level = is_ranked.groupby(r["level"].astype(object), sort=True).sum()
    return {"n_schools": len(r), "n_ranked": int(is_ranked.sum()), "k": int(result.k),
            "min_n": int(result.min_n),
            "by_level": {str(lvl): int(v) for lvl, v in by_level.items()}}
