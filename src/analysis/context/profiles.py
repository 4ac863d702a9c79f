"""What the schools of each context cluster are like, and a readable name for each cluster.

- :func:`cluster_profile`: per cluster, its number of schools, the means of the numeric
  features, the median enrollment and the share of each level of the categorical ones.
- :func:`cluster_names`: a unique Russian or English name per cluster from its profile
  (settlement, size, school type, well-being), by the rules below.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.context.features import _levels
from analysis.i18n import t
from analysis.ingest import schema

#: Known levels of the categorical variables (profiles show each of them, even at 0%).
KNOWN_LEVELS: dict[str, tuple[str, ...]] = {
    "settlement_type": schema.SETTLEMENT_TYPES, "school_type": schema.SCHOOL_TYPES,
}

# --- naming rules (cluster_names) -----------------------------------------------------------
#: A settlement type that holds at least this share of a cluster names it.
SETTLEMENT_DOMINANT = 0.6
#: A group of school types that holds at least this share of a cluster names it.
TYPE_DOMINANT = 0.5
#: Groups of school types that can name a cluster (in order of precedence on a tie).
TYPE_GROUPS: dict[str, tuple[str, ...]] = {
    "elite": ("gymnasium", "lyceum", "advanced"),
    "adapted": ("adapted",),
    "basic": ("basic",),
}
#: Median enrollment (students) below which a cluster is «малокомплектные», and from which
#: it is «крупные» (in between: «среднего размера»).  Russian rural schools without
#: parallel classes have well under 150 students; a typical urban school 500-1,000+.
SMALL_ENROLLMENT = 150
LARGE_ENROLLMENT = 800
#: Mean social index (z units, region mean 0, SD 1) below which well-being is «низкое» and
#: above which «высокое» (in between: «среднее»).
LOW_WELLBEING = -0.5
HIGH_WELLBEING = 0.5


def cluster_profile(X: pd.DataFrame, labels: np.ndarray, k: int) -> pd.DataFrame:
    """What the schools of each cluster are like.

    Parameters
    ----------
    X : DataFrame, shape (n_schools, n_columns)
        Feature frame (:func:`~analysis.context.features.context_features`): numeric
        and categorical (string) columns.
    labels : ndarray of int, shape (n_schools,)
        Clusters 1..k.
    k : int

    Returns
    -------
    DataFrame, index 1..k (``cluster``)
        ``n_schools``; the mean of each numeric column (original units: ``social_index`` in
        index SDs, ``log_enrollment`` in log(students + 1), shares on 0..1);
        ``median_enrollment`` (students; the median of ``exp(log_enrollment) - 1``) when
        ``log_enrollment`` is a column; for each categorical column and each of its levels
        (the known ones of :data:`KNOWN_LEVELS`, then any other seen) the share of the
        cluster's schools, ``"<column>=<level>"`` (0..1).  Statistics of an empty cluster are
        NaN.
    """
    idx = pd.RangeIndex(1, k + 1, name="cluster")
    groups = pd.Series(labels, index=X.index)
    out = pd.DataFrame({"n_schools": groups.value_counts().reindex(idx, fill_value=0)},
                       index=idx).astype("int64")
    numeric = [c for c in X.columns if pd.api.types.is_numeric_dtype(X[c])]
    if numeric:
        means = X[numeric].astype("float64").groupby(labels).mean().reindex(idx)
        out = out.join(means)
    if "log_enrollment" in X.columns:
        students = np.expm1(X["log_enrollment"].astype("float64"))
        out["median_enrollment"] = students.groupby(labels).median().reindex(idx)
    for col in (c for c in X.columns if c not in numeric):
        values = pd.Series(_levels(X[col]), index=X.index)
        seen = sorted(set(values))
        known = KNOWN_LEVELS.get(col, ())
        levels = [*known, *(lev for lev in seen if lev not in known)]
        shares = pd.crosstab(labels, values, normalize="index").reindex(
            index=idx, columns=levels).fillna(0.0)
        shares.loc[out["n_schools"] == 0] = np.nan
        shares.columns = [f"{col}={lev}" for lev in levels]
        out = out.join(shares)
    return out


def cluster_names(profile: pd.DataFrame, lang: str = "ru") -> pd.Series:
    """Readable, unique names of clusters from their profile (:func:`cluster_profile`).

    A name joins (labels ``cluster_name.*`` of ``labels.yaml``, via :func:`analysis.i18n.t`):

    - the **settlement**: the settlement type holding at least :data:`SETTLEMENT_DOMINANT`
      (60%) of the schools («городские», «поселковые», «сельские»), else «смешанная
      местность»;
    - the **size**, from the median enrollment: below :data:`SMALL_ENROLLMENT` (150)
      «малокомплектные», from :data:`LARGE_ENROLLMENT` (800) «крупные», else «среднего
      размера»;
    - the **type**, if a group of :data:`TYPE_GROUPS` holds at least :data:`TYPE_DOMINANT`
      (50%): gymnasium + lyceum + advanced «гимназии, лицеи, УИОП», adapted «АООП», basic
      «ООШ» (in brackets after the size);
    - the **well-being**, from the mean social index: below :data:`LOW_WELLBEING` (-0.5)
      «низкое», above :data:`HIGH_WELLBEING` (+0.5) «высокое», else «среднее благополучие».

    e.g. «сельские малокомплектные (ООШ), низкое благополучие».  A part whose columns are not
    in the profile is left out (a cluster with nothing to say is «кластер k»).  Names that
    come out equal get the cluster's mean social index added («... (индекс -0.31)»), and if
    still equal a number «(1)», «(2)» in cluster order.

    Parameters
    ----------
    profile : DataFrame, index = clusters
    lang : {"ru", "en"}

    Returns
    -------
    Series of str, index like ``profile``, name ``"name"``
    """
    names = [_name(row, int(c), lang) for c, row in profile.iterrows()]
    names = _distinct(names, profile, lang)
    return pd.Series(names, index=profile.index, name="name")


def _name(row: pd.Series, cluster: int, lang: str) -> str:
    place, size, kind, wellbeing = _place(row), _size(row), _kind(row), _wellbeing(row)
    label = {key: t(f"cluster_name.{key}.{value}", lang) if value else ""
             for key, value in (("place", place if place != "mixed" else None),
                                ("size", size), ("kind", kind), ("wellbeing", wellbeing))}
    head = " ".join(t("cluster_name.head", lang, place=label["place"],
                      size=label["size"]).split())
    if label["kind"]:
        head = (t("cluster_name.with_kind", lang, head=head, kind=label["kind"]) if head
                else label["kind"])
    parts = [head, t("cluster_name.place.mixed", lang) if place == "mixed" else "",
             label["wellbeing"]]
    name = ", ".join(p for p in parts if p)
    return name or t("cluster_name.fallback", lang, k=cluster)


def _shares(row: pd.Series, column: str) -> dict[str, float]:
    prefix = f"{column}="
    return {c[len(prefix):]: float(row[c]) for c in row.index
            if c.startswith(prefix) and pd.notna(row[c])}


def _place(row: pd.Series) -> str | None:
    shares = _shares(row, "settlement_type")
    if not shares:
        return None
    known = {lev: shares.get(lev, 0.0) for lev in schema.SETTLEMENT_TYPES}
    best = max(known, key=lambda lev: known[lev])  # first of SETTLEMENT_TYPES on a tie
    return best if known[best] >= SETTLEMENT_DOMINANT else "mixed"


def _size(row: pd.Series) -> str | None:
    value = row.get("median_enrollment", np.nan)
    if pd.isna(value):
        return None
    if value < SMALL_ENROLLMENT:
        return "small"
    return "large" if value >= LARGE_ENROLLMENT else "medium"


def _kind(row: pd.Series) -> str | None:
    shares = _shares(row, "school_type")
    if not shares:
        return None
    groups = {g: sum(shares.get(t_, 0.0) for t_ in types) for g, types in TYPE_GROUPS.items()}
    best = max(groups, key=lambda g: groups[g])
    return best if groups[best] >= TYPE_DOMINANT else None


def _wellbeing(row: pd.Series) -> str | None:
    value = row.get("social_index", np.nan)
    if pd.isna(value):
        return None
    if value < LOW_WELLBEING:
        return "low"
    return "high" if value > HIGH_WELLBEING else "medium"


def _distinct(names: list[str], profile: pd.DataFrame, lang: str) -> list[str]:
    """Make equal names distinct: add the mean social index, then a number in order."""
    out = list(names)
    if "social_index" in profile.columns:
        counts = pd.Series(out).value_counts()
        for i, (name, value) in enumerate(zip(out, profile["social_index"], strict=True)):
            if counts[name] > 1 and pd.notna(value):
                out[i] = t("cluster_name.distinct", lang, name=name, value=float(value))
    counts = pd.Series(out).value_counts()
    seen: dict[str, int] = {}
    for i, name in enumerate(out):
        if counts[name] > 1:
            seen[name] = seen.get(name, 0) + 1
            out[i] = t("cluster_name.numbered", lang, name=name, i=seen[name])
    return out
