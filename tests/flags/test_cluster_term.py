"""A model term ``cluster`` with a school that has no cluster (#22).

The clusters are the reporting year's, and schools without a social index are not
clustered (stage 02), so with ``cluster`` among ``ses_link.terms`` a school can have no
value for the term: in the tiny region a school with an index in 2023 and 2024 and no row
in 2025.  The run must not stop: the school is left out of the models that use the term
and booked in the ledger with the reason ``no_cluster``.
"""

from __future__ import annotations

import pytest

from analysis import files, i18n
from analysis.config import load_yaml, merge
from analysis.pipeline.flow import run_slice

pytestmark = pytest.mark.pipeline

TERMS = ["settlement_type", "school_type", "cluster"]


def test_a_school_without_a_cluster_is_left_out_with_a_reason(tiny_project):
    params = merge(load_yaml(tiny_project / "params.yaml"), {"ses_link": {"terms": TERMS}})
    year = int(params["year"])
    res = run_slice(tiny_project, params, stop="04_flags")
    assert res.summary["spec"]["terms"] == TERMS
    terms = files.read(tiny_project, "cluster_terms")
    index = files.read(tiny_project, "social_index")
    with_index = set(index.loc[index["social_index"].notna() & (index["year"] < year),
                               "school_id"])
    missing = sorted(with_index - set(terms.loc[terms["cluster"].notna(), "school_id"]))
    assert missing, "the tiny region should have a school with an index but no cluster"
    booked, accounting = files.read_ledger(tiny_project)
    no_cluster = booked.loc[booked["reason"] == "no_cluster"]
    assert set(missing) <= set(no_cluster["school_id"])
    assert (accounting["in_scope"] == accounting["used"] + accounting["excluded"]).all()
    for lang in ("ru", "en"):
        assert i18n.label("reason", "no_cluster", lang) != "no_cluster"
        assert i18n.label("analysis", "expected_model_years", lang) != "expected_model_years"


def test_a_reporting_year_school_without_a_cluster_is_left_out_of_both_stages(tiny_project):
    params = merge(load_yaml(tiny_project / "params.yaml"), {"ses_link": {"terms": TERMS}})
    run_slice(tiny_project, params, stop="02_context_clusters")
    terms = files.read(tiny_project, "cluster_terms")
    sample = run_slice(tiny_project, params, start="03_ses_link", stop="03_ses_link").sample
    school = sample["school_id"].iloc[0]
    files.write(terms.assign(cluster=terms["cluster"].mask(terms["school_id"] == school)),
                tiny_project, "cluster_terms")
    res03 = run_slice(tiny_project, params, start="03_ses_link", stop="03_ses_link")
    assert school not in set(res03.sample["school_id"])
    assert len(res03.sample) == len(sample) - 1
    res04 = run_slice(tiny_project, params, start="04_flags", stop="04_flags")
    row = res04.flags.set_index("school_id").loc[school]
    assert row["effect_reason"] == "no_cluster"
    booked, _ = files.read_ledger(tiny_project)
    mine = booked.loc[booked["school_id"] == school]
    assert {"ses_link", "school_effect"} <= set(mine.loc[mine["reason"] == "no_cluster",
                                                          "analysis"])
