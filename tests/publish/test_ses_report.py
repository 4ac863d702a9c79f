"""The report's section "family social status and results" (analysis.publish.ses_report,
ses_estimates, ses_figures)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import LineCollection, PathCollection, PolyCollection
from matplotlib.figure import Figure

from analysis.i18n import LANGS, catalogue
from analysis.publish import ses_estimates as se
from analysis.publish import ses_figures as sf
from analysis.publish import ses_report as sr

YEAR = 2024
COLUMNS = ["model", "outcome", "year", "subset", "level", "term", "estimate", "std_error",
           "ci_low", "ci_high", "n", "reason"]
DTYPES = {"model": "str", "outcome": "str", "subset": "str", "level": "str", "term": "str",
          "reason": "str", "estimate": "Float64", "std_error": "Float64", "ci_low": "Float64",
          "ci_high": "Float64", "year": "Int64", "n": "Int64"}


def row(model: str, term: str, estimate: float | None = None, se: float | None = None, *,
        outcome: str = "quality_index", year: int | None = YEAR, subset: str = "all",
        level: str = "school", n: int | None = None, reason: str = "",
        ci: bool = True) -> dict[str, Any]:
    lo = hi = None
    if ci and estimate is not None and se is not None:
        lo, hi = estimate - 1.96 * se, estimate + 1.96 * se
    return {"model": model, "outcome": outcome, "year": year, "subset": subset,
            "level": level, "term": term, "estimate": estimate, "std_error": se,
            "ci_low": lo, "ci_high": hi, "n": n, "reason": reason}


def table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=COLUMNS)
    out = pd.DataFrame(index=df.index)
    for col in COLUMNS:
        values = [None if v is None or (isinstance(v, float) and math.isnan(v)) else v
                  for v in df[col]]
        out[col] = pd.array(values, dtype=DTYPES[col])
    return out


MUNICIPALITIES = ["<script>alert(1)</script>", "Северный", "Южный", "Западный", "$x$ район"]


def multilevel_rows(boundary: bool = False) -> list[dict[str, Any]]:
    why = "boundary" if boundary else "no_standard_error"
    rows = [
        row("multilevel_empty", "coef:Intercept", 0.55, 0.02, n=120),
        row("multilevel_empty", "var:municipality", 0.0 if boundary else 0.004, None,
            level="municipality", n=5, reason=why),
        row("multilevel_empty", "var:residual", 0.016, None, n=120,
            reason="no_standard_error"),
        row("multilevel_empty", "icc", 0.0 if boundary else 0.2, None, level="municipality",
            n=5, reason=why),
        row("multilevel", "coef:Intercept", 0.56, 0.015, n=120),
        row("multilevel", "coef:social_index", 0.045, 0.008, n=120),
        row("multilevel", "coef:settlement_type[village]", -0.031, 0.012, n=120),
        row("multilevel", "var:municipality", 0.0 if boundary else 0.002, None,
            level="municipality", n=5, reason=why),
        row("multilevel", "var:residual", 0.012, None, n=120, reason="no_standard_error"),
        row("multilevel", "icc", 0.0 if boundary else 0.142857, None, level="municipality",
            n=5, reason=why),
    ]
    effects = [0.061, -0.004, -0.052, 0.01, -0.015]
    for name, eff in zip(MUNICIPALITIES, effects, strict=True):
        rows.append(row("multilevel", name, 0.0 if boundary else eff, 0.02,
                        level="municipality", n=24, reason="boundary" if boundary else ""))
    return rows


def base_rows() -> list[dict[str, Any]]:
    g = "gradient"
    rows = [
        row("expected", "coef:const", 0.5, 0.01, n=120),
        row("expected", "slope_at:0", 0.0512, 0.0061, n=120),
        row("expected", "r2", 0.31, None, n=120, reason="no_standard_error"),
        row("expected", "support_low", -1.87, None, n=120, reason="no_standard_error"),
        row("expected", "support_high", 1.93, None, n=120, reason="no_standard_error"),
        row(g, "intercept", 0.52, 0.01, n=120),
        row(g, "slope", 0.0478, 0.0055, n=120),
        row(g, "r2", 0.287, None, n=120, reason="no_standard_error"),
        row(g, "curvature", -0.0000001, 0.003, n=120),
        row(g, "gap_top_bottom_quarter", 0.1234, 0.02, n=120),
        row(g, "slope", 0.0601, 0.012, subset="settlement_type=city", n=40),
        row(g, "r2", 0.2, None, subset="settlement_type=city", n=40,
            reason="no_standard_error"),
        row(g, "slope", None, None, subset="settlement_type=town", n=4,
            reason="too_few_schools"),
        row(g, "slope", 0.033, 0.01, subset="settlement_type=village", n=60),
        row(g, "slope", 0.02, 0.03, subset="school_type=lyceum", n=12),
        row(g, "slope", 0.041, 0.006, year=2022, n=118),
        row(g, "slope", 0.044, 0.0058, year=2023, n=119),
        row(g, "intercept", 0.6, 0.02, outcome="VPR/math/5", n=100),
        row(g, "slope", 0.071, 0.01, outcome="VPR/math/5", n=100),
        row(g, "intercept", 0.5, 0.02, outcome="OGE/rus/9", n=90),
        row(g, "slope", -0.0004, 0.01, outcome="OGE/rus/9", n=90),
        row(g, "slope", None, None, outcome="EGE/math_profile/11", n=3,
            reason="too_few_schools"),
        row("binomial", "coef:const", -2.0, 0.1, outcome="share_fail", n=120),
        row("binomial", "odds_ratio_per_sd", 0.72, 0.05, outcome="share_fail", n=120),
        row("binomial", "ame_per_sd", -0.0213, 0.004, outcome="share_fail", n=120),
        row("binomial", "dispersion", 2.41, None, outcome="share_fail", n=120,
            reason="no_standard_error"),
    ]
    return rows + multilevel_rows()


def student_rows() -> list[dict[str, Any]]:
    s = "student"
    return [
        row("student_empty", "var:school", 0.30, None, level="school", n=120),
        row("student_empty", "var:residual", 0.70, None, level="student", n=3000),
        row(s, "within_slope", 0.12, 0.02, level="student", n=3000),
        row(s, "between_slope", 0.35, 0.05, level="student", n=3000),
        row(s, "contextual_effect", 0.23, 0.054, level="student", n=3000),
        row(s, "var:school", 0.12, None, level="school", n=120),
        row(s, "var:school:ses_within", 0.0, None, level="school", n=120, reason="boundary"),
        row(s, "var:residual", 0.65, None, level="student", n=3000),
        row(s, "r2_level1", 0.0714, None, level="student", n=3000),
        row(s, "r2_level2", 0.6, None, level="student", n=3000),
    ]


@pytest.fixture(autouse=True, scope="module")
def _agg():
    """Draw without a display (the Agg backend)."""
    plt.switch_backend("Agg")


@pytest.fixture()
def estimates() -> pd.DataFrame:
    return table(base_rows())


@pytest.fixture()
def points() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    x = rng.normal(size=40)
    return pd.DataFrame({"school_id": [f"S{i:03d}" for i in range(40)],
                         "municipality": rng.choice(MUNICIPALITIES, 40),
                         "social_index": x,
                         "quality_index": 0.5 + 0.05 * x + rng.normal(0, 0.05, 40),
                         "n_students": rng.integers(10, 200, 40),
                         "fitted": 0.5 + 0.05 * x, "residual": rng.normal(0, 0.05, 40)})


@pytest.fixture()
def curve() -> pd.DataFrame:
    x = np.linspace(-2.5, 2.5, 51)
    fit = 0.5 + 0.05 * x - 0.004 * x**2
    return pd.DataFrame({"x": x, "fit": fit, "ci_low": fit - 0.02, "ci_high": fit + 0.02})


@pytest.fixture()
def component_points() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    frames = []
    for outcome in ("OGE/rus/9", "VPR/math/5", "EGE/math_profile/11"):
        x = rng.normal(size=15)
        frames.append(pd.DataFrame({"school_id": [f"S{i:03d}" for i in range(15)],
                                    "outcome": outcome, "social_index": x,
                                    "value": 0.5 + 0.05 * x + rng.normal(0, 0.1, 15),
                                    "n": rng.integers(10, 100, 15)}))
    return pd.concat(frames, ignore_index=True)


def clean(text: str) -> None:
    """No NaN, no negative zero, no unescaped markup from the data."""
    assert "nan" not in text.lower().replace("nanc", "")  # no "nan" token (e.g. "financ")
    assert not re.search(r"-0[.,]0*(?![0-9]*[1-9])", text), text
    assert "<script>" not in text


def all_html(est: pd.DataFrame, points: pd.DataFrame, lang: str) -> str:
    return "\n".join([
        sr.section_gradient(est, points, lang, year=YEAR, min_n=10,
                            spec_text="индекс (сплайн, 3 df) + <b>тип</b> поселения"),
        sr.gradient_by_table(est, lang), sr.section_binomial(est, lang),
        sr.section_multilevel(est, lang), sr.section_students(est, lang),
    ])


# --- HTML sections -----------------------------------------------------------------------------

def test_section_gradient_states_the_model_and_key_numbers(estimates, points):
    out = sr.section_gradient(estimates, points, "ru", year=YEAR, min_n=10,
                              spec_text="индекс (сплайн) + <тип школы>")
    assert out.startswith('<h2 id="title">Социальный статус семей и результаты</h2>')
    assert "&lt;тип школы&gt;" in out  # the caller's text is escaped
    assert "+0.051" in out and "0.006" in out  # slope at 0, its SE
    assert "0.039…0.063" in out  # its 95% CI
    assert "+0.048" in out  # PISA slope
    assert "28.7%" in out and "31.0%" in out  # R² of the gradient and of the expected model
    assert "+0.123" in out  # gap top - bottom quarter
    assert "0.000" in out  # curvature -1e-7 -> "0.000", never "-0.000"
    assert "точке индекса 0" in out and "средней по региону школы" in out
    assert "-1.87" in out and "+1.93" in out  # support bounds in words
    assert "40 школ" in out and "не менее 10 участников" in out
    clean(out)


def test_section_gradient_marks_missing_values_with_reasons(points):
    est = table([row("gradient", "slope", None, None, n=5, reason="too_few_schools"),
                 row("gradient", "r2", None, None, n=5, reason="too_few_schools")])
    out = sr.section_gradient(est, points, "ru", year=YEAR, min_n=10, spec_text="индекс")
    assert "н/д (мало школ)" in out
    assert "н/д (не рассчитано)" in out  # rows absent from the table altogether
    clean(out)
    en = sr.section_gradient(est, points, "en", year=YEAR, min_n=10, spec_text="index")
    assert "n/a (too few schools)" in en
    clean(en)


def test_gradient_by_table_groups_years_and_trend(estimates):
    out = sr.gradient_by_table(estimates, "ru")
    assert "Местность: город" in out and "Вид ОО: лицей" in out
    assert "н/д (мало школ)" in out  # the town subset
    assert "+0.060" in out  # city slope
    for y in ("2022", "2023", "2024"):
        assert f"<td>{y}</td>" in out
    assert "Изменение наклона за год (тренд)" in out
    assert "регрессия годовых наклонов" in out  # computed here: the note says how
    clean(out)
    # the trend row of the table is used when present (and no note)
    given = table([*base_rows(), row("gradient", "slope_trend_per_year", 0.0031, 0.0011,
                                     year=None, n=3)])
    out = sr.gradient_by_table(given, "en")
    assert "+0.003" in out and "Change of the slope per year" in out
    assert "regression of the yearly slopes" not in out
    clean(out)


def test_trend_with_one_year_is_na():
    est = table([row("gradient", "slope", 0.05, 0.01, n=50)])
    out = sr.gradient_by_table(est, "ru")
    assert "н/д (меньше двух лет с оценкой наклона)" in out


def test_trend_matches_inverse_variance_regression(estimates):
    slopes = [(2022, 0.041, 0.006), (2023, 0.044, 0.0058), (2024, 0.0478, 0.0055)]
    x = np.array([s[0] for s in slopes], float)
    y = np.array([s[1] for s in slopes])
    w = 1 / np.array([s[2] for s in slopes]) ** 2
    X = np.column_stack([np.ones(3), x])
    cov = np.linalg.inv(X.T @ (w[:, None] * X))
    beta = cov @ X.T @ (w * y)
    m = sr.ses_metrics(estimates)
    assert m["gradient"]["slope_trend"] == pytest.approx(beta[1], rel=1e-5)


def test_section_binomial_reports_or_ame_and_dispersion(estimates):
    out = sr.section_binomial(estimates, "ru")
    assert "0.72" in out and "-2.1" in out  # OR, AME in percentage points
    assert "2.41" in out and "сверхдисперсия" in out and "√φ = 1.55" in out
    clean(out)
    en = sr.section_binomial(estimates, "en")
    assert "overdispersion" in en
    assert sr.section_binomial(table([]), "ru") == ""


def test_section_multilevel_components_icc_explained_and_escaping(estimates):
    out = sr.section_multilevel(estimates, "ru")
    assert "0.004" in out and "0.016" in out and "0.012" in out  # variance components
    assert "20.0%" in out and "14.3%" in out  # ICC empty / conditional
    assert "50%" in out and "25%" in out  # explained: 1 - .002/.004, 1 - .012/.016
    assert "Местность: село" in out and "-0.031" in out  # fixed effect, labelled
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in out  # municipality escaped
    assert "+0.061" in out and "Южный" in out  # significant municipalities listed
    assert "Северный" not in out  # interval includes zero
    assert "Школ: 120; муниципальных образований: 5." in out
    clean(out)


def test_boundary_variance_is_said_in_words_not_numbers():
    est = table(multilevel_rows(boundary=True))
    for lang in LANGS:
        out = sr.section_multilevel(est, lang)
        clean(out)
        assert ("оценка на границе" in out) if lang == "ru" else ("at the boundary" in out)
        assert "0.0%" not in out and "100%" not in out  # no ICC, no explained share from it
        assert "<td>0</td>" not in out
    fig = sf.fig_caterpillar(est, "ru")
    assert "границе" in fig.axes[0].get_title()
    plt.close(fig)


def test_section_students(estimates):
    assert sr.section_students(estimates, "ru") == ""
    est = table([*base_rows(), *student_rows()])
    out = sr.section_students(est, "ru")
    assert "Внутришкольный эффект статуса" in out
    assert "+0.120" in out and "+0.350" in out and "+0.230" in out and "0.054" in out
    assert "7%" in out and "60%" in out  # explained variance by level
    assert "на границе" in out  # random slope at zero: words
    clean(out)
    assert "Contextual effect" in sr.section_students(est, "en")


@pytest.mark.parametrize("lang", LANGS)
def test_every_section_renders_in_both_languages(estimates, points, lang):
    est = table([*base_rows(), *student_rows()])
    out = all_html(est, points, lang)
    clean(out)
    assert "&lt;b&gt;тип&lt;/b&gt;" in out


def test_na_rows_everywhere_never_print_nan(points):
    terms = ["slope_at:0", "r2", "support_low", "support_high"]
    rows = [row("expected", term, None, None, reason="not_finite") for term in terms]
    rows += [row("gradient", term, None, None, reason="no_variation")
             for term in ("slope", "r2", "curvature", "gap_top_bottom_quarter", "intercept")]
    rows += [row("binomial", term, None, None, outcome="share_fail", reason="not_finite")
             for term in ("odds_ratio_per_sd", "ame_per_sd", "dispersion")]
    rows += [row(m, term, None, None, reason="not_converged")
             for m in ("multilevel_empty", "multilevel")
             for term in ("var:municipality", "var:residual", "icc")]
    est = table(rows)
    for lang in LANGS:
        out = all_html(est, points, lang)
        clean(out)
    ru = all_html(est, points, "ru")
    assert "н/д (показатель одинаков во всех школах)" in ru
    assert "н/д (модель не сошлась)" in ru
    assert "н/д (расчёт не дал конечного числа)" in ru


def test_unknown_reason_code_is_shown_as_given():
    assert se.na_text("ru", "weird_code") == "н/д (weird_code)"
    assert se.fmt(float("nan"), ".2f", "en", "too_few_schools") == "n/a (too few schools)"
    assert se.fmt(-0.0001, "+.2f") == "0.00"


def test_labels_of_outcomes_and_subsets():
    assert se.outcome_label("VPR/math/5", "ru") == "ВПР · математика · 5 класс"
    assert se.outcome_label("OGE/rus/9", "en") == "OGE · Russian · grade 9"
    assert se.outcome_label("LANG/xx/7", "en") == "LANG · xx · grade 7"
    assert se.subset_label("school_type=lyceum", "ru") == "Вид ОО: лицей"
    assert se.subset_label("cluster=3", "en") == "Cluster: 3"
    assert se.subset_label("district=north", "en") == "district: north"
    assert se.subset_label("settlement_type=city;school_type=lyceum", "en") == (
        "Settlement: city, Type: lyceum")
    assert sr._coef_label("coef:C(settlement_type)[T.village]", "ru") == "Местность: село"
    assert sr._coef_label("coef:Intercept", "en") == "Intercept"


def test_small_variances_are_not_in_scientific_notation():
    rows = [row(m, term, v, None, n=50, reason="no_standard_error")
            for m, term, v in (("multilevel_empty", "var:municipality", 4.27e-05),
                               ("multilevel_empty", "var:residual", 0.00511),
                               ("multilevel", "var:municipality", 4.92e-05),
                               ("multilevel", "var:residual", 0.00264))]
    out = sr.section_multilevel(table(rows), "en")
    assert "0.0000427" in out and "0.00511" in out and "e-0" not in out
    assert "-15%" in out and "48%" in out  # explained: negative shares are shown as they are


# --- metrics -----------------------------------------------------------------------------------

def test_ses_metrics_are_plain_rounded_and_stable(estimates):
    m = sr.ses_metrics(estimates)
    assert m["year"] == YEAR
    assert m["gradient"]["slope"] == 0.0478 and m["gradient"]["n_schools"] == 120
    assert m["expected"]["slope_at_0"] == 0.0512
    assert m["binomial"]["dispersion"] == 2.41
    assert m["multilevel"]["explained_municipality"] == pytest.approx(0.5)
    assert m["multilevel"]["n_municipalities_differ"] == 2
    assert m["students"]["within_slope"] is None
    json.dumps(m, allow_nan=False)

    def leaves(d: Any) -> list[Any]:
        return [x for v in d.values() for x in leaves(v)] if isinstance(d, dict) else [d]

    for v in leaves(m):
        assert v is None or type(v) in (int, float)
        if isinstance(v, float):
            assert v == float(f"{v:.6g}")
    assert m.keys() == sr.ses_metrics(table([])).keys()
    boundary = sr.ses_metrics(table(multilevel_rows(boundary=True)))
    assert boundary["multilevel"]["icc"] is None


# --- figures -----------------------------------------------------------------------------------

def save(fig: Figure, tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.png"
    fig.savefig(path, dpi=60)
    assert path.stat().st_size > 1000
    plt.close(fig)


def test_fig_gradient(points, curve, tmp_path):
    for lang in LANGS:
        fig = sf.fig_gradient(points, curve, (-1.87, 1.93), [-0.6, 0.0, 0.7], lang)
        assert len(fig.axes) == 1
        ax = fig.axes[0]
        assert sum(isinstance(c, PathCollection) for c in ax.collections) == 1  # schools
        assert sum(isinstance(c, PolyCollection) for c in ax.collections) >= 1  # the band
        dashed = [ln for ln in ax.lines if ln.get_linestyle() == "--"]
        assert len(dashed) == 2
        assert [x.get_text() for x in ax.texts] == ["Q1", "Q2", "Q3", "Q4"]
        assert ax.get_xlabel() and ax.get_ylabel()
        labels = ax.get_legend_handles_labels()[1]
        assert ("fit linear beyond" in labels) if lang == "en" else len(labels) == 4
        save(fig, tmp_path, f"gradient_{lang}")
    fig = sf.fig_gradient(points, None, (None, float("nan")), None, "ru")
    save(fig, tmp_path, "gradient_bare")


def test_fig_variance(estimates, tmp_path):
    fig = sf.fig_variance(estimates, "ru")
    assert len(fig.axes) == 1
    assert len(fig.axes[0].patches) == 4  # 2 models x 2 components
    assert any("ICC = 20.0%" in x.get_text() for x in fig.axes[0].texts)
    save(fig, tmp_path, "variance")
    fig = sf.fig_variance(table([*base_rows(), *student_rows()]), "en")
    assert len(fig.axes) == 2
    save(fig, tmp_path, "variance_students")
    save(sf.fig_variance(table([]), "ru"), tmp_path, "variance_empty")


def test_fig_caterpillar_small_and_large(estimates, tmp_path):
    fig = sf.fig_caterpillar(estimates, "ru")
    ax = fig.axes[0]
    assert len(ax.get_yticklabels()) == 5
    assert r"\$x\$ район" in [x.get_text() for x in ax.get_yticklabels()]
    segments = [c for c in ax.collections if isinstance(c, LineCollection)]
    assert len(segments[0].get_segments()) == 5
    save(fig, tmp_path, "caterpillar")
    # hundreds of municipalities: no labels, still a plot
    rng = np.random.default_rng(1)
    rows = [row("multilevel", f"МО {i}", float(rng.normal(0, 0.05)), 0.02,
                level="municipality", n=5) for i in range(400)]
    fig = sf.fig_caterpillar(table(rows), "en")
    assert fig.axes[0].get_yticklabels() == [] or not any(
        x.get_text() for x in fig.axes[0].get_yticklabels())
    save(fig, tmp_path, "caterpillar_400")
    fig = sf.fig_caterpillar(table(rows), "ru", top=30)
    assert len(fig.axes[0].get_yticklabels()) == 30
    save(fig, tmp_path, "caterpillar_top")
    save(sf.fig_caterpillar(table([]), "ru"), tmp_path, "caterpillar_empty")


def test_fig_small_multiples(component_points, estimates, tmp_path):
    for lang in LANGS:
        fig = sf.fig_small_multiples(component_points, estimates, lang)
        assert len(fig.axes) == 3  # one panel per outcome, the unused cells removed
        titles = [ax.get_title() for ax in fig.axes]
        assert titles[0].startswith("ВПР · математика · 5 класс" if lang == "ru" else
                                    "VPR · mathematics · grade 5")
        assert "+0.071" in titles[0]
        assert "0.000" in titles[1] and "-0.000" not in titles[1]
        assert ("н/д (мало школ)" if lang == "ru" else "n/a (too few schools)") in titles[2]
        assert [len(ax.lines) for ax in fig.axes] == [1, 1, 0]
        save(fig, tmp_path, f"small_{lang}")
    save(sf.fig_small_multiples(component_points.iloc[:0], estimates, "ru"), tmp_path,
         "small_empty")


def test_catalogue_block_is_complete():
    keys = [k for k in catalogue() if k.startswith("ses.")]
    assert len(keys) > 50
    for key in keys:
        assert set(catalogue()[key]) == set(LANGS), key
    for lang in LANGS:  # column headings of one table must differ
        heads = [catalogue()[k][lang] for k in keys if k.startswith("ses.col.")]
        assert len(heads) == len(set(heads))


def test_the_expected_models_index_terms_read_as_words():
    from analysis.publish.ses_report import _coef_label

    assert _coef_label("coef:x", "ru") == "Индекс благополучия (линейная часть)"
    assert _coef_label("coef:ns2", "en") == "Well-being index: spline term 2"
    assert _coef_label("coef:x2", "en").startswith("Well-being index squared")
