"""The published page (#10): Russian number conventions, the lean shell with contents and
numbered figures and tables, figures as captioned PNGs, parameters by name, dynamics."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import pytest
import yaml

from analysis.i18n import catalogue, t
from analysis.publish import report
from analysis.publish.figures import figure_html, png_bytes, use_style
from analysis.publish.html import heading, html_table
from analysis.publish.page import document
from analysis.publish.typeset import MINUS, NBSP, NNBSP, number, typeset_html, typeset_text

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("value,spec,lang,expected", [
    (-0.125, ".3f", "ru", f"{MINUS}0,125"),
    (0.125, "+.2f", "ru", "+0,12"),
    (21639, "d", "ru", f"21{NNBSP}639"),
    (21639, "d", "en", "21,639"),
    (2025, "d", "ru", "2025"),               # four digits: a year stays whole
    (1234567.5, ",.1f", "ru", f"1{NNBSP}234{NNBSP}567,5"),
    (0.275, ".1%", "ru", "27,5%"),
    (-0.0001, ".2f", "ru", "0,00"),          # never a negative zero
    (-1.5, ".1f", "en", f"{MINUS}1.5"),
])
def test_numbers_follow_the_readers_conventions(value, spec, lang, expected):
    assert number(value, spec, lang) == expected


@pytest.mark.parametrize("text,expected", [
    ("p = 0.05, n = 21639", f"p = 0,05, n = 21{NNBSP}639"),
    ("МБОУ СОШ № 5 и СОШ №12", f"МБОУ СОШ №{NBSP}5 и СОШ №{NBSP}12"),
    ("версия 3.1.5, коды 0101001, 2024/25, k 2..10, 14:30", None),  # tokens stay whole
    ("от -0.12 до +0.30", f"от {MINUS}0,12 до +0,30"),
])
def test_text_is_typeset_without_touching_codes_versions_or_dates(text, expected):
    assert typeset_text(text, "ru") == (expected or text)


def test_html_is_typeset_outside_markup_codes_and_scripts():
    page = ('<p title="0.5">Доля 0.5</p><td translate="no">1234567</td><code>3.14</code>'
            '<script>var x = 0.5;</script><img alt="-1.5"><p>-1.5 и 12345</p>')
    out = typeset_html(page, "ru")
    assert '<p title="0.5">Доля 0,5</p>' in out and '<td translate="no">1234567</td>' in out
    assert "<code>3.14</code>" in out and "var x = 0.5;" in out and 'alt="-1.5"' in out
    assert f"<p>{MINUS}1,5 и 12{NNBSP}345</p>" in out
    assert typeset_html(out, "ru") == out  # idempotent


def _fig():
    use_style()
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([-1, 0, 1], [0.1, 0.25, 0.4])
    ax.set_title("x = -0.5")
    return fig


def test_figures_are_numbered_captioned_with_alt_text_and_stable_bytes():
    a, b = png_bytes(_fig()), png_bytes(_fig())
    assert a == b and a.startswith(b"\x89PNG") and b"Software" not in a and b"matplotlib" not in a
    out = figure_html(_fig(), caption='Рисунок <b>"x"</b>', alt="Линия: <рост>", lang="ru")
    assert 'alt="Линия: &lt;рост&gt;"' in out and "&lt;b&gt;" in out
    assert '<span class="fig-no"></span>' in out and "data:image/png;base64," in out
    plt.close("all")


def test_document_has_contents_numbered_sections_figures_and_tables():
    body = "\n".join([
        heading("report.summary", "ru"),
        html_table(pd.DataFrame({"x": [1.5]}), "ru"),
        heading("report.coverage", "ru"),
        heading("report.validation_summary", "ru", 3),
        figure_html(_fig(), caption="Первый", alt="первый рисунок", lang="ru"),
        html_table(pd.DataFrame({"x": [2]}), "ru", caption="Подписанная"),
        figure_html(_fig(), caption="Второй", alt="второй рисунок", lang="ru"),
    ])
    page = document(body, title="Отчёт <тест>", lang="ru")
    assert page.startswith("<!DOCTYPE html>") and '<html lang="ru">' in page
    assert "<title>Отчёт &lt;тест&gt;</title>" in page and "<h1>Отчёт &lt;тест&gt;</h1>" in page
    toc = page[page.index('<nav class="toc"'):page.index("</nav>")]
    assert '<a href="#summary">' in toc and '<a href="#validation-summary">' in toc
    assert re.search(r'id="coverage"><span class="sec-no" translate="no">2\.</span>', page)
    assert re.search(r'id="validation-summary"><span class="sec-no" translate="no">2\.1\.</span>',
                     page)
    assert [m for m in re.findall(r"(Рисунок|Таблица) (\d)\.", page)] == [
        ("Таблица", "1"), ("Рисунок", "1"), ("Таблица", "2"), ("Рисунок", "2")]
    assert "Таблица 1.</span> Сводка</caption>" in page  # captioned by its section
    assert "1,5" in page and "lab" not in page.lower().split("<style>")[1][:200]
    assert "http" not in page and "<link" not in page
    assert document(body, title="Отчёт <тест>", lang="ru") == page  # same bytes


def test_every_parameter_has_a_russian_and_english_name():
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    missing = []
    for section, value in params.items():
        if section == "demo":
            continue
        if isinstance(value, dict):
            missing += [f"{section}.{k}" for k in value
                        if f"param.{section}.{k}" not in catalogue()]
        elif f"param.{section}" not in catalogue():
            missing.append(section)
    assert not missing


def test_parameters_table_names_values_in_words():
    p = {"index_method": "mean_z", "index_impute": True, "prepare_mapping": None,
         "index_indicators": {"share_low_income": -1}, "clusters_k": "auto",
         "prepare_quality_procedures": ["VPR", "OGE"]}
    table = report.params_table(p, "ru").set_index("code")
    assert table.loc["index.method", "parameter"] == t("param.index.method", "ru")
    assert table.loc["index.method", "value"] == t("param_enum.index.method.mean_z", "ru")
    assert table.loc["index.impute", "value"] == "да"
    assert "mean_z" not in " ".join(table["value"]) and "null" not in " ".join(table["value"])
    assert "share_low_income" not in table.loc["index.indicators", "value"]


def test_catalogue_has_no_duplicate_key():
    """YAML keeps the last of two equal keys silently; a duplicate hides a string."""
    class Strict(yaml.SafeLoader):
        pass

    dups = []

    def mapping(loader, node, deep=False):
        keys = [loader.construct_object(k) for k, _ in node.value]
        dups.extend(k for i, k in enumerate(keys) if k in keys[:i])
        return yaml.SafeLoader.construct_mapping(loader, node, deep)

    Strict.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    yaml.load((ROOT / "src/analysis/labels.yaml").read_text(encoding="utf-8"), Loader=Strict)
    assert not dups


def _results(rows):
    cols = ["year", "school_id", "procedure", "subject", "grade", "participants", "n_mark2",
            "n_mark3", "n_mark4", "n_mark5"]
    df = pd.DataFrame(rows, columns=cols)
    return df.assign(kind="marked", n_low=df["n_mark2"])


def test_dynamics_suppress_small_cells_and_find_the_grade_4_to_5_drop():
    r = _results([
        (2024, "a", "VPR", "math", 4, 40, 0, 10, 20, 10),   # 75% «4»/«5»
        (2025, "a", "VPR", "math", 5, 40, 5, 15, 15, 5),    # 50% a year later, grade 5
        (2025, "b", "EGE", "rus", 11, 8, 1, 0, 0, 0),       # 8 participants: suppressed
    ])
    dyn = report.dynamics(r, min_n=10)
    ege = dyn.loc[dyn["procedure"] == "EGE"].iloc[0]
    assert pd.isna(ege["share_low"]) and pd.isna(ege["share_quality"])
    drop = report.cohort_drop(dyn)
    assert len(drop) == 1 and drop.iloc[0]["change"] == pytest.approx(-0.25)
    assert report.cohort_drop(dyn.loc[dyn["grade"] != 4]).empty


def test_gradient_canvas_adds_and_takes_away_one_municipality_at_a_time():
    """The municipal reports' figure is drawn once; each municipality is added, saved and
    taken away, so the next one does not inherit it."""
    from analysis.publish.ses_figures import GradientCanvas

    pts = pd.DataFrame({"school_id": list("abcd"), "social_index": [-1.0, 0.0, 1.0, 2.0],
                        "quality_index": [0.2, 0.3, 0.5, 0.6], "n_students": [20, 30, 40, 50]})
    curve = pd.DataFrame({"x": [-1.0, 2.0], "fit": [0.2, 0.6], "ci_low": [0.1, 0.5],
                          "ci_high": [0.3, 0.7]})
    canvas = GradientCanvas(pts, curve, None, None, "ru")
    n = len(canvas.ax.collections)
    with canvas.highlighted(["a", "b"], "МО 1") as fig:
        assert len(fig.axes[0].collections) == n + 1
        one = png_bytes(fig)
    with canvas.highlighted(["c"], "МО 2") as fig:
        labels = [x.get_text() for x in fig.axes[0].get_legend().get_texts()]
        assert "МО 2" in labels and "МО 1" not in labels
        two = png_bytes(fig)
    assert len(canvas.ax.collections) == n and one != two
    canvas.close()
