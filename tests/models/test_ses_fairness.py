"""Flags against planted truth: a school's type is context, not a school effect (#8).

The synthetic region gives gymnasiums and lyceums a selection premium (``type_effect`` of the
student model) that is *not* part of their true school effect ``u`` (truth.csv
``school_effect``).  An expected-result model on the social index alone reads that premium as
"above expectation".  Measured on 5 seeds (non-planted schools with |u| <= 0.1), with the
one-year residuals of #8: 53% of gymnasiums and lyceums above expectation, against 18% of
the other schools of the same size; with settlement type and school type in the
expected-result model (the default): 22% against 20%.  With stage 04's effects shrunk over
three years and the 0.05 minimum (#9), the index alone still gives 30% against 6%.

Each seed is a fresh region of the default size, run through stages 01-02 once for the
module and stage 04 for each expected-result model, in-process.
"""

from __future__ import annotations

import pandas as pd
import pytest

from analysis.config import load_yaml
from analysis.demo.synth import RegionSpec, generate_region
from analysis.pipeline.flow import run_slice
from helpers.project import make_project

pytestmark = pytest.mark.pipeline

SEEDS = (101, 202, 303, 404, 505)
ELITE = ("gymnasium", "lyceum")
#: True school effects this close to zero count as "no school effect".
NEAR_ZERO = 0.1


@pytest.fixture(scope="module")
def seeds(tmp_path_factory) -> list[tuple[int, object, object]]:
    """Each seed's region and project, through stages 01-02 once for the module (stage 04
    reads nothing of stage 03, and the model terms do not change stage 02 here)."""
    out = []
    for seed in SEEDS:
        region = generate_region(RegionSpec(seed=seed))
        root = make_project(tmp_path_factory.mktemp(f"s{seed}"), region)
        run_slice(root, load_yaml(root / "params.yaml"), stop="02_context_clusters")
        out.append((seed, region, root))
    return out


def flagged(seeds, terms: list[str] | None = None) -> pd.DataFrame:
    """Stage 04's flags of every seed's non-planted schools, with the true school effect."""
    frames = []
    for seed, region, root in seeds:
        p = load_yaml(root / "params.yaml")
        if terms is not None:
            p["ses_link"]["terms"] = terms
        f = run_slice(root, p, start="04_flags", stop="04_flags").flags.merge(
            region.truth[["school_id", "school_effect", "planted_resilient", "planted_low",
                          "planted_inflated_vpr"]], on="school_id")
        f["above"] = f["direction"].eq("above")
        clean = ~(f["planted_resilient"] | f["planted_low"] | f["planted_inflated_vpr"])
        frames.append(f.loc[clean].assign(seed=seed, elite=f["school_type"].isin(ELITE)))
    return pd.concat(frames, ignore_index=True)


def above_rates(f: pd.DataFrame) -> pd.Series:
    """Share above expectation among schools with a true effect near zero: gymnasiums and
    lyceums (True), and the other schools *of the same size* (False).

    Gymnasiums and lyceums are larger than most schools, and a larger school's interval is
    narrower, so it is flagged more often either way (above or below).  The other schools'
    rate is therefore taken in each fifth of school size and averaged with the gymnasiums'
    and lyceums' size distribution, so only the type can make the two rates differ.
    """
    near = f.loc[f["school_effect"].abs() <= NEAR_ZERO].copy()
    near["size"] = pd.qcut(near["n_students"], 5, labels=False)
    rate = near.groupby(["size", "elite"])["above"].mean().unstack()
    elite = near.loc[near["elite"], "size"].value_counts()
    matched = float((elite * rate[False].reindex(elite.index)).sum() / elite.sum())
    return pd.Series({True: float(near.loc[near["elite"], "above"].mean()), False: matched})


#: Over 5 seeds about 175 gymnasiums and lyceums have |u| <= 0.1: their rate's standard error
#: is about 0.035, and 0.1 is about 3 of them.  The context-only model misses by about 0.4.
TOLERANCE = 0.1


def test_gymnasiums_are_not_above_expectation_for_their_type(seeds):
    rates = above_rates(flagged(seeds))
    # default model: index (spline) + settlement type + school type
    assert rates[True] <= rates[False] + TOLERANCE, rates.to_dict()


def test_the_context_only_model_shows_the_bias_the_issue_measured(seeds):
    rates = above_rates(flagged(seeds, terms=[]))
    # with stage 04's multi-year shrunk effects (#9): 30% against 6%
    assert rates[True] > rates[False] + 2 * TOLERANCE, rates.to_dict()
