"""Students within schools (#8): the optional students table through stages 01-03.

A small synthetic region with its students table (``ses = s_iy + N(0, 0.8)``; the latent
result has ``b_ses = 0.3`` on the student's own ses and ``b_comp = 0.3`` on the school's
status).  With group-mean centring the within-school slope estimates ``b_ses`` and the
compositional effect ``b_comp`` (each on the standardised score's scale), so their ratio is
planted at 1.  The same model is fitted by lme4 on the same rows where R is installed.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from analysis import files
from analysis.config import load_yaml
from analysis.demo.synth import RegionSpec, generate_region
from analysis.i18n import label, t
from analysis.models import students
from analysis.pipeline.flow import run_all
from analysis.publish import report, ses_report
from helpers import lme4_ref
from helpers.project import make_project

pytestmark = pytest.mark.pipeline

SPEC = RegionSpec(n_municipalities=8, n_schools=160, seed=31, write_students=True)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    region = generate_region(SPEC)
    root = make_project(tmp_path_factory.mktemp("st") / "p", region)
    p = load_yaml(root / "params.yaml")
    return region, root, p, run_all(root, p)


def rows(d):
    e = d.estimates.query("model == 'student'").set_index("term")
    return e


def test_within_between_and_compositional_effects_recover_the_planted_ratio(run):
    _, _, _, d = run
    e = rows(d)
    for term in ("within_slope", "between_slope", "contextual_effect"):
        assert e.loc[term, "ci_low"] > 0, term
    # between = within + compositional; planted compositional / within = 1
    assert e.loc["between_slope", "estimate"] == pytest.approx(
        e.loc["within_slope", "estimate"] + e.loc["contextual_effect", "estimate"], abs=1e-9)
    ratio = e.loc["contextual_effect", "estimate"] / e.loc["within_slope", "estimate"]
    assert 0.6 < ratio < 1.6, ratio
    assert 0 < e.loc["r2_level1", "estimate"] < 0.5 and 0 < e.loc["r2_level2", "estimate"] < 1


def test_every_student_row_of_the_components_is_used_or_booked(run):
    region, root, p, d = run
    acc = d.accounting.query("analysis == 'student_model'")
    st = region.students
    scope = st.loc[(st["year"] == p["year"]) & st["procedure"].isin(
        p["prepare"]["quality_procedures"]) & st["subject"].isin(
        p["prepare"]["quality_subjects"]) & st["grade"].isin(p["prepare"]["quality_grades"])]
    assert int(acc["in_scope"].sum()) == len(scope)
    assert (acc["in_scope"] == acc["used"] + acc["excluded"]).all()
    n = int(d.estimates.query("model == 'student' and term == 'within_slope'")["n"].iloc[0])
    assert n == int(acc["used"].sum())


@pytest.mark.parametrize("lang", ["ru", "en"])
def test_the_report_renders_the_student_sections_and_their_exclusions(run, lang):
    _, _, p, d = run
    text = (ses_report.section_students(d.estimates, lang, year=p["year"])
            + report.section_exclusions(d, lang, 5))
    assert not re.search(r"\bnan\b", text, re.I) and "-0.00" not in text
    assert label("analysis", "student_model", lang) in text
    assert t("ses.contextual_effect", lang) in text


def test_student_model_equals_lme4(run, tmp_path):
    lme4_ref.require()
    _, root, p, d = run
    sample = files.read(root, "ses_sample")
    data, _ = students.student_frame(
        files.read(root, "students"), sample, year=p["year"],
        procedures=p["prepare"]["quality_procedures"],
        subjects=p["prepare"]["quality_subjects"], grades=p["prepare"]["quality_grades"])
    ref = lme4_ref.fit(data[["school_id", "score_z", "ses_within", "ses_school"]],
                       "score_z ~ ses_within + ses_school + (1 + ses_within | school_id)",
                       tmp_dir=tmp_path)
    e = rows(d)
    for name in ("(Intercept)", "ses_within", "ses_school"):
        ours = "coef:Intercept" if name == "(Intercept)" else f"coef:{name}"
        assert e.loc[ours, "estimate"] == pytest.approx(ref["fixef"][name], rel=1e-4)
        assert e.loc[ours, "std_error"] == pytest.approx(ref["se"][name], rel=1e-3)
    assert e.loc["var:residual", "estimate"] == pytest.approx(ref["sigma2"], rel=1e-4)
    assert np.isclose(e.loc["var:school", "estimate"], ref["cov_re"].iloc[0, 0], rtol=1e-4)
