"""Sections 5 and 6 of the report and the "why this school" cards, on a small region built
in memory: escaping, suppression of small procedures, one card per listed school, the
typology matrix, both languages, no "nan"."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pandas as pd
import pytest

from analysis.flags.rules import TYPOLOGY
from analysis.i18n import LANGS, catalogue
from analysis.publish import flag_cards as fc
from analysis.publish import flag_text as ft
from analysis.publish import flags_report as fr
from analysis.publish import report
from analysis.publish.data import ReportData
from analysis.publish.html import html_table

MIN_N = 10
YEAR = 2025
EVIL = '<script>alert("x")</script> «Школа & Ко»'
FLAGS = {"n_years": 3, "year_weights": "precision", "multilevel": False, "z": 1.96,
         "min_effect": 0.05, "method": "effect", "low_context": "absolute",
         "low_context_threshold": -0.1, "low_context_quantile": 0.25, "min_years": 2,
         "p_above": None, "typology_axis": "effect", "typology_high_group": 6,
         "typology_low_group": 2, "shnsu_method": "absolute", "shnsu_threshold": -0.67,
         "shnsu_quantile": 0.25, "shnsu_reference_year": None, "decline_min": 0.05,
         "objectivity_threshold": 0.15, "objectivity_top_threshold": 0.125,
         "objectivity_heap_threshold": 0.3, "shnor_threshold": 0.3,
         "shnor_procedures": ["VPR", "OGE", "EGE"], "shnor_min_participants": 0,
         "shnor_sure": 0.9}

#: one row per school of the year; defaults below
SCHOOLS = [
    # s1: resilient (and ШНСУ), its name is markup
    dict(school_id="s1", school_name=EVIL, municipality="Город Б", social_index=-1.2,
         effect=0.12, effect_low=0.07, effect_high=0.17, direction="above",
         years_assessed=3, years_above=2, years_above_list="2024, 2025", low_context=True,
         resilient=True, specs_held=5, specs_failed="interval_99", typology="resilient",
         anchored_index=-1.3, shnsu=True),
    # s2: would be resilient, with a sign of non-objectivity
    dict(school_id="s2", school_name="СОШ № 2", municipality="Город Б", social_index=-0.5,
         effect=0.2, effect_low=0.1, effect_high=0.3, direction="review", years_assessed=3,
         years_above=3, years_above_list="2023, 2024, 2025", low_context=True,
         objectivity_flag=True, needs_review=True, specs_held=6, specs_failed="",
         typology="needs_review"),
    # s3: ШНОР with a big low procedure and a small one
    dict(school_id="s3", school_name="СОШ № 3", municipality="Район А", shnor=True,
         n_low_year=2, n_low_prev=0, shnor_label="borderline", p_rule=0.6),
    # s4: ШНОР with small low procedures only
    dict(school_id="s4", school_name="ООШ № 4", municipality="Район А", shnor=True,
         n_low_year=1, n_low_prev=1, shnor_label="few_participants", p_rule=0.9991,
         school_type="basic", settlement_type="village", n_students=12.0),
    # s5: risk zone, declining
    dict(school_id="s5", school_name="Лицей № 5", municipality="Район А", trend=-0.04,
         declining=True, risk_zone=True, school_type="lyceum"),
    # s6: no estimate, no index
    dict(school_id="s6", school_name="СОШ № 6", municipality="Район А", social_index=None,
         effect=None, effect_low=None, effect_high=None, direction="na",
         effect_reason="no_social_index", typology="na", anchored_index=None,
         years_assessed=0),
    # s7: as expected, favourable, on no list
    dict(school_id="s7", school_name="Гимназия № 7", municipality="Город Б",
         school_type="gymnasium"),
    # s8: a sign of non-objectivity, below expected
    dict(school_id="s8", school_name="СОШ № 8", municipality="Город Б", effect=-0.1,
         effect_low=-0.15, effect_high=-0.06, direction="below", objectivity_flag=True,
         typology="unrealised"),
]
DEFAULTS = dict(year=YEAR, school_type="secondary", settlement_type="city", social_index=0.3,
                quality_index=0.5, n_students=60.0, effect=0.01, effect_sd=0.02,
                effect_low=-0.03, effect_high=0.05, effect_p_above=0.6, direction="expected",
                years_assessed=3, years_above=1, years_below=0, years_above_list="2025",
                low_context=False, objectivity_flag=False, resilient=False, needs_review=False,
                quadrant=False, specs_held=0, specs_total=6,
                specs_failed="default, index_method, multilevel, terms, context_cut, "
                             "interval_99",
                typology="expected", anchored_index=0.2, shnsu=False, trend=0.0,
                declining=False, risk_low_below=False, risk_zone=False, shnor=False,
                n_low_year=0, n_low_prev=0, shnor_label="", p_rule=0.0, effect_reason="")


def _flags() -> pd.DataFrame:
    f = pd.DataFrame([{**DEFAULTS, **row} for row in SCHOOLS])
    for c in ("social_index", "effect", "effect_low", "effect_high", "anchored_index",
              "trend", "n_students", "quality_index", "p_rule"):
        f[c] = f[c].astype("Float64")
    return f


def _details() -> pd.DataFrame:
    rows = [  # (year, school, procedure, subject, grade, participants, n_low)
        (2025, "s3", "VPR", "math", 5, 40, 14),
        (2025, "s3", "EGE", "math_profile", 11, 3, 2),   # small: never named
        (2025, "s3", "OGE", "rus", 9, 30, 3),             # counted, not low
        (2025, "s4", "OGE", "math", 9, 4, 2),             # small
        (2024, "s4", "VPR", "rus", 6, 5, 3),              # small
    ]
    d = pd.DataFrame(rows, columns=["year", "school_id", "procedure", "subject", "grade",
                                    "participants", "n_low"])
    d["share_low"] = d["n_low"] / d["participants"]
    d["low"] = d["share_low"] >= 0.3
    d["prior_mean"], d["p_low"], d["prior"] = 0.2, 0.5, "fitted"
    return d


def _cards() -> pd.DataFrame:
    rows = []
    for sid in ("s1", "s2", "s3", "s5", "s7", "s8"):
        for outcome, n in (("VPR", 40), ("OGE", 8 if sid == "s1" else 25)):
            rows.append(dict(school_id=sid, outcome=outcome, value=0.5432 if sid == "s1" else 0.4,
                             n=n, fitted=0.41, region=0.48, social_index=-0.05,
                             settlement_type=0.01, school_type=-0.03, municipality=0.0))
    c = pd.DataFrame(rows)
    c["value"] = c["value"].astype("Float64")
    return c


def _objectivity() -> tuple[pd.DataFrame, pd.DataFrame]:
    obj = pd.DataFrame({
        "school_id": ["s1", "s2", "s3", "s8"],
        "vpr_oge": pd.array([False, True, pd.NA, True], dtype="boolean"),
        "top_marks": pd.array([False, True, pd.NA, False], dtype="boolean"),
        "heaping": pd.array([pd.NA] * 4, dtype="boolean"),
        "objectivity_flag": [False, True, False, True],
        "vpr_oge_reason": ["", "", "few_participants", ""],
        "top_marks_reason": ["", "", "few_participants", ""],
        "heaping_reason": ["no_scores"] * 4,
    })
    ev = pd.DataFrame({
        "school_id": ["s2", "s2", "s8", "s8"], "screen": ["vpr_oge", "top_marks"] * 2,
        "procedure": ["VPR-OGE", "VPR"] * 2, "subject": ["all"] * 4,
        "grade": pd.array([pd.NA] * 4, dtype="Int64"),
        "value": pd.array([0.35, 0.4, 0.3, 0.1], dtype="Float64"),
        "reference": pd.array([0.0, 0.1, 0.0, 0.08], dtype="Float64"),
        "low": pd.array([0.25, 0.3, 0.2, 0.05], dtype="Float64"),
        "high": pd.array([0.45, 0.5, 0.4, 0.15], dtype="Float64"),
        "threshold": pd.array([0.15, 0.125, 0.15, 0.125], dtype="Float64"),
        "n": pd.array([120, 120, 60, 60], dtype="Int64"),
        "n_other": pd.array([50, 50, 30, 30], dtype="Int64"),
        "fired": pd.array([True, True, True, False], dtype="boolean"),
    })
    return obj, ev


def make_data(flags: pd.DataFrame | None = None, **changes) -> ReportData:
    f = _flags() if flags is None else flags
    schools = pd.concat([f[["year", "school_id", "school_name", "municipality"]],
                         pd.DataFrame([{"year": 2024, "school_id": "s9",
                                        "school_name": "ООШ № 9", "municipality": "Район А"}])],
                        ignore_index=True)
    obj, ev = _objectivity()
    empty = pd.DataFrame()
    fields = {fl.name: empty for fl in dataclasses.fields(ReportData)}
    fields.update(
        year=YEAR, schools=schools, flags=f, shnor=f[["school_id", "shnor"]],
        shnor_details=_details(), objectivity=obj, objectivity_evidence=ev, flag_cards=_cards(),
        results=pd.DataFrame({"x": [1, 2]}), ledger=pd.DataFrame({"table": ["schools"]}),
        context_summary={}, ses_link_summary={}, validation={},
        similar_peers=pd.DataFrame({"school_id": ["s1"] * 7, "order": range(1, 8),
                                    "peer_id": ["s7", "s6", "s5", "s4", "s3", "s2", "s8"]}),
        flag_changes=pd.DataFrame({"school_id": ["s1", "s9", "s5"],
                              "list": ["resilient", "shnor", "risk_zone"],
                              "change": ["entered", "left", "entered"],
                              "changed": ["direction, years_above", "not_in_year",
                                          "declining"]}),
        flags_summary={
            "components": [{"outcome": "VPR", "tau2_u": 0.019, "tau2_v": 0.0009},
                           {"outcome": "OGE", "tau2_u": 0.018, "tau2_v": 0.0007}],
            "low_context_cut": -0.1, "shnsu_cut": -0.67, "shnsu_reference_year": 2023,
            "specs": list(fr.SPECS), "spec_counts": dict.fromkeys(fr.SPECS, 2),
            "previous_counts": {"resilient": 0, "shnor": 3, "shnsu": 1, "risk_zone": 0},
            "spec": {"terms": ["settlement_type", "school_type"], "multilevel": False,
                     "weights": "precision", "n_years": 3, "z": 1.96}})
    fields.update(changes)
    return ReportData(**fields)


@pytest.fixture
def d() -> ReportData:
    return make_data()


def render(d: ReportData, lang: str) -> str:
    return "\n".join([fr.section_lists(d, lang, FLAGS, min_n=MIN_N, top_n=30),
                      fr.section_cards(d, lang, FLAGS, min_n=MIN_N),
                      fr.section_typology(d, lang, FLAGS)])


def _row(table_html: str, needle: str) -> str:
    rows = [r for r in re.findall(r"<tr[^>]*>.*?</tr>", table_html, flags=re.S) if needle in r]
    assert len(rows) == 1, needle
    return rows[0]


def _card(cards: pd.Series, sid: str) -> str:
    return cards.loc[sid]


@pytest.mark.parametrize("lang", LANGS)
def test_every_new_section_renders_in_both_languages_without_nan(d, lang):
    text = render(d, lang)
    assert not re.search(r"\bnan\b|\bNone\b|<NA>|\bNaN\b", text, flags=re.I)
    for key in ("report.list_resilient", "report.list_shnor", "report.list_shnsu",
                "report.list_risk_zone", "report.list_objectivity", "report.list_changes",
                "report.list_cards", "report.typology", "report.typology_matrix"):
        assert catalogue()[key][lang] in text, key
    if lang == "en":
        # outside data cells, card titles, municipality headings and peers: no Russian
        prose = re.sub(r"<td[^>]*>[^<]*</td>|<summary>[^<]*</summary>|<h4>[^<]*</h4>|"
                       r' data-mun="[^"]*"|<th colspan="\d+" scope="rowgroup">[^<]*</th>|'
                       r"Similar schools:[^<]*|ШНОР|ШНСУ", "", text)
        assert not re.search("[А-Яа-яЁё]{3,}", prose), re.search("[А-Яа-яЁё]{3,}.{0,40}", prose)


def test_a_school_name_with_markup_is_escaped_everywhere(d):
    text = render(d, "ru")
    assert "<script>" not in text
    card = _card(fc.school_cards(d, "ru", FLAGS, min_n=MIN_N), "s1")
    assert card.startswith('<details class="sc-card"><summary>&lt;script&gt;alert(&quot;x&quot;)'
                           "&lt;/script&gt; «Школа &amp; Ко» — резильентные, ШНСУ</summary>")
    assert card.endswith("</ul></details>")


def test_a_small_low_procedure_is_counted_never_named(d):
    """s3 has a low ВПР (40 participants) and a low ЕГЭ with 3: the ЕГЭ is only counted,
    in the table and in the card, and its share (67%) is never shown."""
    for lang, small, hidden in (("ru", "ещё процедур с числом участников меньше 10: 1", "ЕГЭ"),
                                ("en", "1 more procedure(s) with fewer than 10 participants",
                                 "EGE")):
        table = fr.shnor_table(d, lang, MIN_N).set_index("school_name")
        s3 = table.loc["СОШ № 3", "low_procedures"]
        assert s3.endswith(small) and "35%" in s3 and "(n = 40)" in s3
        assert hidden not in s3 and "67%" not in s3 and "(n = 3)" not in s3
        card = _card(fc.school_cards(d, lang, FLAGS, min_n=MIN_N), "s3")
        assert small in card and hidden not in card and "67%" not in card
        # s4: every low procedure is small -> nothing named, only their number
        s4 = table.loc["ООШ № 4", "low_procedures"]
        assert s4 == ("все с числом участников меньше 10 (их 2)" if lang == "ru"
                      else "all with fewer than 10 participants (2)")
        html_ = html_table(fr.shnor_table(d, lang, MIN_N), lang)
        assert hidden not in _row(html_, "СОШ № 3") and "50%" not in _row(html_, "ООШ № 4")


def test_every_flagged_school_has_exactly_one_card(d):
    f = d.flags
    listed = set(f.loc[f[list(fc.CARD_LISTS)].any(axis=1), "school_id"])
    assert listed == {"s1", "s2", "s3", "s4", "s5", "s8"}
    cards = fc.school_cards(d, "ru", FLAGS, min_n=MIN_N)
    assert set(cards.index) == listed
    section = fr.section_cards(d, "ru", FLAGS, min_n=MIN_N)
    assert section.count('<details class="sc-card">') == len(listed)
    # grouped by municipality: Город Б (s1, s2, s8), then Район А (s3, s4, s5)
    a, b = "<summary>Город Б: 3</summary>", "<summary>Район А: 3</summary>"
    assert section.index(a) < section.index(b)
    assert section.index("<summary>СОШ № 8") < section.index(b) < \
        section.index("<summary>Лицей № 5")
    assert '<details class="mun" data-mun="Район А">' in section  # the page's filter


def test_card_explains_the_school_and_suppresses_small_outcomes(d):
    card = _card(fc.school_cards(d, "ru", FLAGS, min_n=MIN_N), "s1")
    # the expected value factor by factor, the actual one with its n
    assert ("ВПР: ожидаемо 0.41 = 0.48 (среднее по региону) − 0.05 (социальный контекст) "
            "+ 0.01 (местность) − 0.03 (вид ОО); фактически 0.54 (n = 40).") in card
    # OGE had 8 participants: no value, no expected
    assert "ОГЭ: н/д (меньше 10 участников или нет результатов)." in card
    assert "(n = 8)" not in card
    assert "Школьный эффект: +0.12 [+0.07; +0.17] — выше ожидаемого" in card
    assert "Эффект выше нуля в годы: 2024, 2025 (лет с оценкой: 3)." in card
    assert "в 5 из 6 вариантов расчёта; не выполнены: 99% интервал вместо 95%." in card
    assert "Признаков необъективности нет" in card
    assert "ШНСУ: индекс благополучия в шкале 2023 г. -1.30 (порог -0.67)." in card
    # up to 5 similar schools, nearest first
    assert "Похожие школы: Гимназия № 7; СОШ № 6; Лицей № 5; ООШ № 4; СОШ № 3." in card
    review = _card(fc.school_cards(d, "ru", FLAGS, min_n=MIN_N), "s2")
    assert "Признаки необъективности (нужна проверка): ВПР заметно выше ОГЭ; необычно много" \
        in review and "требует проверки" in review
    risk = _card(fc.school_cards(d, "ru", FLAGS, min_n=MIN_N), "s5")
    assert "Зона риска: снижение: -0.040 в год." in risk


def test_resilient_table_columns_and_interval():
    f = _flags()
    t = fr.resilient_table(f.loc[f["resilient"]], "ru", MIN_N)
    assert t.iloc[0].tolist() == [EVIL, "Город Б", "СОШ", "-1.20", "+0.12 [+0.07; +0.17]",
                                  "2024, 2025", "5 из 6"]
    na_row = fr.resilient_table(f.loc[f["school_id"] == "s6"], "ru", MIN_N).iloc[0]
    assert na_row["effect_ci"] == "н/д (нет индекса социального благополучия)"
    assert na_row["social_index"] == "н/д"


def test_settlement_table_shows_who_can_reach_significance(d):
    t = fr.settlement_table(d.flags, "ru").set_index("settlement_type")
    assert t.loc["город", "n_schools"] == 7 and t.loc["село", "n_schools"] == 1
    assert t.loc["город", "n_estimate"] == 6
    assert t.loc["город", "above"] == "1 (16.7%)" and t.loc["город", "below"] == "1 (16.7%)"
    assert t.loc["село", "median_students"] == "12"


def test_typology_matrix_counts_add_up_to_the_schools(d):
    m = fr.typology_matrix(d.flags)
    assert int(m.to_numpy().sum()) == len(d.flags)
    assert list(m.columns) == list(fr.PERF) and list(m.index) == ["low", "favourable", "na"]
    assert m.loc["low", "above"] == 2 and m.loc["na", "na"] == 1
    assert m.loc["favourable", "below"] == 1
    # without schools lacking an index there is no «нет индекса» row
    f = d.flags.loc[d.flags["social_index"].notna()]
    assert list(fr.typology_matrix(f).index) == ["low", "favourable"]
    text = fr.section_typology(d, "ru", FLAGS)
    total = re.search(r"<tr><td>Всего</td>(.*?)</tr>", text).group(1)
    assert re.findall(r">(\d+)<", total)[-1] == str(len(d.flags))


def test_typology_labels_cover_every_group():
    for k in TYPOLOGY:
        for kind in ("typology", "typology_def"):
            assert f"{kind}.{k}" in catalogue()
    for k in fr.PERF:
        assert f"direction.{k}" in catalogue()


def test_objectivity_evidence_is_a_signal_with_both_sides(d):
    ev = fr.evidence_table(d, "ru", MIN_N)
    # s2: both screens fired; s8: only vpr_oge fired, so its top_marks row is left out
    assert ev["school_name"].tolist() == ["СОШ № 2", "СОШ № 2", "СОШ № 8"]
    first = ev.iloc[0]
    assert first["school_value"] == "+35.0 п. п." and first["ci"] == "[+25.0; +45.0] п. п."
    assert first["n_text"] == "ВПР 120, ОГЭ 50" and first["threshold"] == "> 15.0 п. п."
    assert ev.iloc[1]["school_value"] == "40.0%" and ev.iloc[1]["reference"] == "10.0%"
    # a comparison with fewer than min_n on a side is never shown
    small = d.objectivity_evidence.assign(n_other=pd.array([50, 50, 9, 9], dtype="Int64"))
    ev2 = fr.evidence_table(dataclasses.replace(d, objectivity_evidence=small), "ru", MIN_N)
    assert "СОШ № 8" not in ev2["school_name"].tolist()


def test_changes_name_the_criteria_in_words(d):
    ch = fr.changes_table(d, "ru").set_index("school_name")
    assert ch.loc[EVIL, "changed"] == "результат относительно ожидаемого, число лет выше ожидаемого"
    assert ch.loc["ООШ № 9", "change"] == "вышла из списка"
    assert ch.loc["ООШ № 9", "changed"] == "школы нет в отчётном году"
    counts = fr.changes_counts(d, "ru").set_index("list")
    assert counts.loc["ШНОР", "this_year"] == "2" and counts.loc["ШНОР", "last_year"] == "3"
    assert counts.loc["ШНОР", "left"] == 1
    no_prev = dataclasses.replace(d, flags_summary={**d.flags_summary, "previous_counts": None})
    assert "Нет данных за 2024 г." in fr.section_changes(no_prev, "ru", top_n=5)


def test_flag_metrics_and_headline_counts(d):
    m = fr.flag_metrics(d)
    assert m["lists"] == {"resilient": 1, "needs_review": 1, "shnor": 2, "shnsu": 1,
                          "risk_zone": 1, "objectivity_flag": 2}
    assert sum(m["typology"].values()) == len(d.flags) and set(m["typology"]) == set(TYPOLOGY)
    assert m["shnor_labels"] == {"reliable": 0, "borderline": 1, "few_participants": 1}
    assert m["specs_held"] == {"1": 0, "2": 0, "3": 0, "4": 0, "5": 1, "6": 1}
    assert m["components"]["VPR"] == {"tau2_u": 0.019, "tau2_v": 0.0009}
    assert m["changes"]["shnor"] == {"entered": 0, "left": 1}
    assert sum(sum(r.values()) for r in m["typology_matrix"].values()) == len(d.flags)
    counts = report.summary_counts(d)
    assert counts["analysed"] == int(d.flags["effect"].notna().sum()) == len(d.flags) - 1
    assert {"resilient", "needs_review", "shnor", "shnsu", "risk_zone", "objectivity",
            "excluded"} <= set(counts)
    for key in counts:  # every headline count has its label
        assert f"report.summary_{key}" in catalogue()


def test_formatting_never_prints_nan_or_negative_zero():
    out = ft.fmt_values(pd.Series([np.nan, -0.0001, 0.5, None], dtype="object"), "+.2f", "н/д")
    assert out.tolist() == ["н/д", "0.00", "+0.50", "н/д"]
    assert ft.fmt_values(pd.array([0.125, pd.NA], dtype="Float64"), ".1%", "").tolist() == [
        "12.5%", ""]
    assert ft.prob_text(pd.Series([0.999, 0.5, 0.001]), "ru").tolist() == ["> 99%", "50%",
                                                                           "< 1%"]
    assert fr.short(0.125) == "0.125" and fr.short_pct(0.3) == "30%"


def test_context_from_the_students_status_is_named(d):
    """Stage 04 may measure context by the students' mean status (``context_index``,
    ``context_source``): the rule says so, the lists show the measure, the card gives both."""
    f = d.flags.assign(context_index=d.flags["social_index"] - 0.1,
                       context_source=np.where(d.flags["school_id"].isin(["s1", "s2"]),
                                               "students", "index"),
                       context_n=pd.array([40] * len(d.flags), dtype="Int64"))
    f.loc[f["school_id"] == "s6", "context_index"] = pd.NA
    d2 = dataclasses.replace(d, flags=f, flags_summary={**d.flags_summary,
                                                        "context": {"index": 6, "students": 2},
                                                        "min_years": 1})
    text = fr.section_lists(d2, "ru", FLAGS, min_n=MIN_N, top_n=30)
    assert "средний социально-экономический статус учеников школы (школ: 2)" in text
    assert "не менее чем в 1 из последних 3 уч. г." in text  # the effective min_years
    table = fr.resilient_table(f.loc[f["resilient"]], "ru", MIN_N)
    assert table.iloc[0]["context_index"] == "-1.30"
    card = fc.school_cards(d2, "ru", FLAGS, min_n=MIN_N).loc["s1"]
    assert "индекс благополучия -1.20, средний статус учеников -1.30 (неблагоприятный)" in card
    assert int(fr.typology_matrix(f).to_numpy().sum()) == len(f)
    for lang in LANGS:
        assert not re.search(r"\bnan\b|<NA>|\bNone\b", render(d2, lang), flags=re.I)
    # the students' mean of fewer than min_n students is student data: not shown
    small = f.assign(context_n=pd.array([4] * len(f), dtype="Int64"))
    table = fr.resilient_table(small.loc[small["resilient"]], "ru", MIN_N)
    assert table.iloc[0]["context_index"] == "н/д (меньше 10 учеников)"
    card = fc.school_cards(dataclasses.replace(d2, flags=small), "ru", FLAGS,
                           min_n=MIN_N).loc["s1"]
    assert "учеников -1.30" not in card and "меньше 10 учеников" in card


def test_a_region_without_screens_or_previous_year_still_renders(d):
    """No objectivity table, no evidence, no cards, no peers, no previous year."""
    f = d.flags.assign(objectivity_flag=False, needs_review=False,
                       direction=d.flags["direction"].replace("review", "above"))
    bare = dataclasses.replace(
        d, flags=f, objectivity=pd.DataFrame(), objectivity_evidence=pd.DataFrame(),
        flag_cards=pd.DataFrame(), similar_peers=pd.DataFrame(),
        flag_changes=pd.DataFrame(columns=["school_id", "list", "change", "changed"]),
        flags_summary={k: v for k, v in d.flags_summary.items() if k != "previous_counts"})
    for lang in LANGS:
        text = render(bare, lang)
        assert not re.search(r"\bnan\b|<NA>|\bNone\b", text, flags=re.I)
    assert "Признаки необъективности не оценивались" in fc.school_cards(
        bare, "ru", FLAGS, min_n=MIN_N).loc["s1"]
