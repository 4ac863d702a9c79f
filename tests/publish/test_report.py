"""Report helpers: escaping, suppression, the catalogue, stable metrics."""

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from analysis.i18n import LANGS, catalogue, label, t
from analysis.publish import report
from analysis.publish.html import html_table, suppress

ROOT = Path(__file__).resolve().parents[2]


def test_html_table_escapes_every_cell_and_labels_columns():
    df = pd.DataFrame({"school_name": ['<script>alert("x")</script> & «Лицей»'],
                       "n_students": [12]})
    out = html_table(df, "ru")
    assert "<script>" not in out
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; «Лицей»" in out
    assert '<th scope="col">Наименование ОО</th>' in out and '<td class="num">12</td>' in out
    assert '<th scope="col">School</th>' in html_table(df, "en")


def test_html_table_never_cuts_a_long_list_it_collapses_it():
    """The issue: lists stopped at 30 rows ("… и ещё 320"). Every row is now in the page."""
    out = html_table(pd.DataFrame({"x": range(12)}), "ru", max_rows=10)
    assert out.count("<tr>") == 13 and "и ещё" not in out
    assert out.startswith("<details><summary>Показать все строки (12)</summary>")
    assert "<details>" not in html_table(pd.DataFrame({"x": range(10)}), "ru", max_rows=10)


def test_html_table_groups_rows_by_municipality_for_the_filter():
    df = pd.DataFrame({"school_name": ["Б", "А", "В"], "municipality": ["Юг", "Север", "Юг"]})
    out = html_table(df, "ru", group="municipality")
    assert out.count("<tbody") == 2 and '<tbody data-mun="Север">' in out
    assert out.index("Север (1)") < out.index("Юг (2)") < out.index(">Б<") < out.index(">В<")
    assert "<th scope=\"col\">МО</th>" not in out  # the group header names it


def test_text_columns_left_numbers_right_aligned():
    df = pd.DataFrame({"school_name": ["Школа 1"], "effect_ci": ["+0.12 [+0.01; +0.20]"],
                       "share": ["12.5%"], "n": ["<10"]})
    out = html_table(df, "ru")
    assert '<td>Школа 1</td>' in out and '<td class="num">12.5%</td>' in out
    assert '<td class="num">&lt;10</td>' in out


def test_suppress_hides_values_from_fewer_than_min_n():
    out = suppress(pd.Series([0.5, 0.25]), pd.Series([9, 10]), 10, "ru")
    assert out.tolist() == ["н/д (n<10)", "25.0%"]


def test_catalogue_has_every_language_for_every_key():
    for key, entry in catalogue().items():
        assert set(entry) == set(LANGS), key
        assert all(entry[lang].strip() for lang in LANGS), key
    assert label("school_type", "basic") == "ООШ"
    assert t("key.gradient", "en", slope=0.1, lo=0.05, hi=0.15, r2=0.3).startswith(
        "The higher the families' social well-being")
    with pytest.raises(KeyError):
        t("report.no_such_key")


def test_every_key_used_in_code_exists():
    """t("...")/heading("...")/para("...") keys in the library and notebooks are catalogued."""
    sources = (list((ROOT / "src" / "analysis").rglob("*.py"))
               + list((ROOT / "notebooks").glob("*.ipynb")))
    pattern = re.compile(r"""(?:\bt|heading|para)\(\s*\\?["']([a-z_]+\.[a-z_0-9.]+)\\?["']""")
    keys = {k for p in sources for k in pattern.findall(p.read_text(encoding="utf-8"))}
    assert len(keys) > 30
    missing = sorted(k for k in keys if k not in catalogue())
    assert not missing


def test_every_category_of_the_contract_has_labels():
    from analysis.ingest import schema

    for kind, values in (("school_type", schema.SCHOOL_TYPES),
                         ("settlement_type", schema.SETTLEMENT_TYPES),
                         ("procedure", schema.PROCEDURES), ("subject", schema.SUBJECTS)):
        for v in values:
            for lang in LANGS:
                assert label(kind, v, lang)


def test_metrics_are_written_with_stable_bytes(tmp_path):
    import numpy as np

    m = {"b": np.float64(0.123456789123), "a": {"z": np.int64(3), "y": [np.bool_(True)]}}
    p1 = report.write_metrics(tmp_path / "m1.json", m)
    p2 = report.write_metrics(tmp_path / "m2.json", dict(reversed(list(m.items()))))
    assert p1.read_bytes() == p2.read_bytes()
    # 7 significant digits (analysis.outputs.FLOAT_DIGITS)
    assert json.loads(p1.read_text()) == {"a": {"y": [True], "z": 3}, "b": 0.1234568}
