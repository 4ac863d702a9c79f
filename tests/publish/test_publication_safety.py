"""Safe to put online (#10): a region built to tempt every rule, run end to end, then every
published file scanned -- and the pages opened in headless Chromium with the network off.

The tempting region is the tiny synthetic one with:

- hostile names: a school ``<script>alert(1)</script>``, schools whose names start with
  ``=``, ``+``, ``-``, ``@`` (formulas in Excel), a municipality named with an ``<img
  onerror>``;
- one-pupil procedures: three schools without a low result get, in the reporting and the
  previous year, two ВПР in a made-up subject ``astro`` with 1 participant who got «2»:
  they become ШНОР only through procedures no one may name (even the region's total for
  ``astro`` is 3 pupils);
- a students table (student keys, scores, statuses) that must never reach a published file.
"""

from __future__ import annotations

import html
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from analysis.demo.synth import RegionSpec, generate_region
from analysis.publish.scan import scan
from helpers.project import TINY_PARAMS, make_project

pytestmark = pytest.mark.pipeline

SCRIPT_NAME = "<script>alert(1)</script> «Школа»"
FORMULA_NAMES = ['=HYPERLINK("http://evil.example","x")', "+7 школа", "-1 школа", "@SUM(1+1)"]
EVIL_MUN = '<img src=x onerror=alert(2)> район'
SMALL_SUBJECT = "astro"
MIN_N = 10


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """Run ``python -m analysis.pipeline.run`` (what ``make report DATA=…`` does) on the
    tempting region; return (report folder, raw data folder, students table)."""
    region = generate_region(RegionSpec(n_municipalities=4, n_schools=80, seed=7,
                                        write_students=True))
    root = make_project(tmp_path_factory.mktemp("safety"), None, TINY_PARAMS, git=True)
    data = root.parent / "tempting"
    from analysis.demo.synth import write_region

    write_region(region, data, root.parent / "truth")
    schools = pd.read_csv(data / "schools.csv", dtype=str, keep_default_na=False)
    ids = sorted(schools["school_id"].unique())
    names = dict(zip(ids[:5], [SCRIPT_NAME, *FORMULA_NAMES]))
    schools["school_name"] = schools["school_id"].map(names).fillna(schools["school_name"])
    first_mun = sorted(schools["municipality"].unique())[0]
    schools.loc[schools["municipality"] == first_mun, "municipality"] = EVIL_MUN
    schools.to_csv(data / "schools.csv", index=False)
    results = pd.read_csv(data / "results.csv", dtype=str, keep_default_na=False)
    last = max(int(y) for y in results["year"])
    # three schools with no low result in the last two years, then two one-pupil «2»s each
    # year: ШНОР through procedures no one may name (label «мало участников»)
    r = results.loc[results["year"].astype(int) >= last - 1]
    low_n = pd.to_numeric(r["n_mark2"], errors="coerce").fillna(
        pd.to_numeric(r["n_below_min"], errors="coerce")).fillna(0)
    share = low_n / pd.to_numeric(r["participants"]).clip(lower=1)
    lowish = set(r.loc[share >= 0.25, "school_id"])
    both = set(schools.loc[schools["year"] == str(last), "school_id"]) & set(
        schools.loc[schools["year"] == str(last - 1), "school_id"])
    chosen = sorted(both - lowish - set(names))[:3]
    assert len(chosen) == 3
    tiny = [{"year": str(year), "school_id": sid, "procedure": "VPR", "subject": SMALL_SUBJECT,
             "grade": grade, "participants": "1", "n_mark2": "1", "n_mark3": "0",
             "n_mark4": "0", "n_mark5": "0"}
            for year in (last - 1, last) for sid in chosen for grade in ("5", "6")]
    results = pd.concat([results, pd.DataFrame(tiny)], ignore_index=True).fillna("")
    results.to_csv(data / "results.csv", index=False)
    proc = subprocess.run([sys.executable, "-m", "analysis.pipeline.run", "--data", str(data),
                           "--year", str(last)], cwd=root, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    folder = root / "reports" / f"tempting-{last}"
    return folder, data, region.students


def _files(folder: Path, *suffixes: str) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in suffixes)


def test_scan_finds_no_violation_of_any_rule(published):
    folder, _, _ = published
    assert (folder / "report.html").exists() and (folder / "index.html").exists()
    assert len(_files(folder / "mun", ".html")) == 4
    assert (folder / "tables.xlsx").exists() and (folder / "data" / "schools.parquet").exists()
    assert scan(folder, min_n=MIN_N) == []


def test_the_scanner_itself_catches_each_violation(published, tmp_path):
    """The scan can fail: plant one violation of each rule in a copy of the folder."""
    import shutil

    folder, _, _ = published
    bad = tmp_path / "bad"
    shutil.copytree(folder, bad)
    page = bad / "report.html"
    page.write_text(page.read_text(encoding="utf-8").replace(
        "</main>", '<script>alert(1)</script><img src="https://cdn.example/x.png"></main>'),
        encoding="utf-8")
    csv = bad / "data" / "schools.csv"
    csv.write_text(csv.read_text(encoding="utf-8-sig").replace("'=HYPERLINK", "=HYPERLINK"),
                   encoding="utf-8-sig")
    dyn = bad / "data" / "dynamics.csv"
    df = pd.read_csv(dyn, sep=";", decimal=",", encoding="utf-8-sig", dtype=str)
    small = pd.to_numeric(df["participants"]) < MIN_N
    assert small.any()
    df.loc[small, "share_low"] = "1,0"
    df.to_csv(dyn, sep=";", index=False, encoding="utf-8-sig")
    found = "\n".join(scan(bad, min_n=MIN_N, max_regional=1000))
    for rule in ("not the page's own", "external reference", "Excel would run",
                 "share_low given for 3 < 10", "bytes > 1000"):
        assert rule in found, rule


def test_hostile_names_render_as_text_everywhere(published):
    folder, _, _ = published
    escaped = html.escape(SCRIPT_NAME, quote=False)
    for page in _files(folder, ".html"):
        text = page.read_text(encoding="utf-8")
        assert "alert(1)</script>" not in text and "<img src=x" not in text, page
    report = (folder / "report.html").read_text(encoding="utf-8")
    assert html.escape(EVIL_MUN, quote=False) in report
    for meta in ("Регион", "Дата выпуска", "Редакция", "Версия программы", "Содержание",
                 "Главное", "Глоссарий"):
        assert meta in report, meta
    mun = "".join(p.read_text(encoding="utf-8") for p in _files(folder / "mun", ".html"))
    assert escaped in mun.replace("\u00a0", " ")  # every school is on its municipality's page
    # the municipality's own report: a safe file name, its name escaped in the title
    assert all(re.fullmatch(r"[a-z0-9-]+\.html", p.name) for p in _files(folder / "mun", ".html"))
    index = (folder / "index.html").read_text(encoding="utf-8")
    assert html.escape(EVIL_MUN) in index


def test_formula_names_are_neutralised_in_the_downloads(published):
    folder, _, _ = published
    csv = (folder / "data" / "schools.csv").read_text(encoding="utf-8-sig")
    for name in FORMULA_NAMES:
        assert f"'{name}".replace('"', '""') in csv, name
    import openpyxl

    wb = openpyxl.load_workbook(folder / "tables.xlsx")
    cells = [c for ws in wb.worksheets for row in ws.iter_rows() for c in row
             if isinstance(c.value, str)]
    assert not [c.value for c in cells if c.value.startswith(("=", "+", "-", "@"))]
    assert {f"'{n}" for n in FORMULA_NAMES} <= {c.value for c in cells}
    # Russian headers, never a column code (the codes are in the CSV and Parquet files)
    headers = [c.value for ws in wb.worksheets for c in ws[1] if c.value]
    assert not [h for h in headers if re.fullmatch(r"[a-z]+(_[a-z0-9]+)*", str(h))]
    assert all(ws.freeze_panes == "A2" for ws in wb.worksheets)


def test_a_one_pupil_procedure_is_never_named_with_a_result(published):
    """The issue: naming a one-pupil procedure as "low" tells the reader that pupil got «2».
    «astro» (1 participant everywhere) may appear only in rows whose values are suppressed."""
    folder, _, _ = published
    for page in _files(folder, ".html"):
        text = page.read_text(encoding="utf-8")
        rows = re.findall(r"<tr[^>]*>.*?</tr>", text, flags=re.S)
        for row in (r for r in rows if SMALL_SUBJECT in r):
            assert not re.search(r"\d+(?:[.,]\d+)?\s*%", row), (page, row)
        outside = re.sub(r"<tr[^>]*>.*?</tr>", "", text, flags=re.S)
        assert SMALL_SUBJECT not in outside, page  # not in a card, a list item, a caption
    for path in _files(folder, ".csv"):
        df = pd.read_csv(path, sep=";", decimal=",", encoding="utf-8-sig", dtype=str,
                         keep_default_na=False)
        if "subject" in df:
            rows = df.loc[df["subject"] == SMALL_SUBJECT]
            shares = [c for c in df.columns if c.startswith("share_")]
            assert (rows[shares] == "").all().all(), path
    shnor = pd.read_csv(folder / "data" / "shnor_procedures.csv", sep=";",
                        encoding="utf-8-sig", dtype=str)
    assert SMALL_SUBJECT not in set(shnor["subject"])


def test_a_school_low_only_in_small_procedures_gets_its_label_and_no_values(published):
    folder, _, _ = published
    schools = pd.read_parquet(folder / "data" / "schools.parquet")
    only_small = schools.loc[schools["shnor"] & schools["shnor_label"].eq("few_participants")]
    assert len(only_small), "the tempting region must have such a school"
    report = (folder / "report.html").read_text(encoding="utf-8").replace("\u00a0", " ")
    for name in only_small["school_name"]:
        cards = re.findall(r'<details class="sc-card"><summary>' + re.escape(html.escape(name))
                           + r".*?</details>", report, flags=re.S)
        assert cards and all("мало участников" in c for c in cards), name
        assert all("(n = " not in c.split("ШНОР:")[-1] for c in cards), name


def test_no_student_key_or_student_value_is_published(published):
    folder, _, students = published
    assert students is not None and len(students)
    keys = set(students["student_key"].astype(str))
    pattern = re.compile(r"\bs\d{5,}\b")
    for path in _files(folder, ".html", ".csv", ".json"):
        found = set(pattern.findall(path.read_text(encoding="utf-8-sig"))) & keys
        assert not found, (path, sorted(found)[:3])
    for path in _files(folder, ".parquet"):
        cols = set(pd.read_parquet(path).columns)
        assert not cols & {"student_key", "score", "mark", "ses"}, path


def test_small_schools_have_no_published_result(published):
    folder, _, _ = published
    s = pd.read_parquet(folder / "data" / "schools.parquet")
    small = s["n_students"].fillna(0) < MIN_N
    assert s.loc[small, "quality_index"].isna().all()
    assert s.loc[small, "quality_group"].isna().all()


# --- the browser test: every report, desktop and phone, network off ------------------------


def test_every_report_renders_offline_at_desktop_and_phone_width(published, tmp_path):
    """Headless Chromium with the network off opens the regional report, the index and every
    municipal report at 1280 px and at a 375 px phone: no request fails or leaves the file,
    no console error, every section is there, the page is never wider than the screen
    (tables scroll inside their box). Screenshots go to the test's temporary folder (pytest
    keeps the last runs' under its basetemp, to be looked at), never under reports/, which
    an analyst publishes."""
    from helpers.browser import Browser, find_chromium

    assert find_chromium(), ("headless Chromium is not installed: `make sysdeps` installs "
                             "Debian's chromium (make test runs it)")
    folder, _, _ = published
    pages = [folder / "report.html", folder / "index.html", *_files(folder / "mun", ".html")]
    regional_sections = ["summary", "coverage", "distributions", "clusters", "title", "lists",
                         "typology", "dynamics", "list-cards", "glossary", "methods"]
    with Browser(tmp_path / "profile") as browser:
        for page in pages:
            for width, mobile in ((1280, False), (375, True)):
                name = f"{page.parent.name}-{page.stem}-{width}.png"
                check = browser.check(page, width=width, mobile=mobile,
                                      screenshot=tmp_path / "screenshots" / name)
                assert check.failed_requests == [], (page, check.failed_requests)
                assert check.console_errors == [], (page, check.console_errors)
                assert not check.horizontal_overflow, (page, width)
                assert check.screenshot and check.screenshot.stat().st_size > 10_000
                if page.name == "report.html":
                    for ident in regional_sections:
                        assert f'id="{ident}"' in check.html, (ident, width)
                    assert check.html.count("<figure") >= 6
                elif page.parent.name == "mun":
                    for ident in ("mun-summary", "mun-gradient", "mun-schools", "mun-cards",
                                  "mun-trends"):
                        assert f'id="{ident}"' in check.html, (page, ident)
        # the hostile name is shown as text; the filter's control exists (added by the script)
        texts = [browser.check(p, width=1280).text for p in _files(folder / "mun", ".html")]
        assert any("<script>alert(1)</script>" in x for x in texts)
        assert 'id="mun-filter"' in browser.check(folder / "report.html", width=1280).html


def test_no_english_key_or_notebook_leftover_in_any_page(published):
    """The issue: "social_index, log_enrollment", «mean_z», "share_parents_higher_ed (+)",
    raw column names, "No description has been provided for this image"."""
    folder, _, _ = published
    for page in _files(folder, ".html"):
        text = page.read_text(encoding="utf-8")
        text = re.sub(r"<(style|script)>.*?</\1>", "", text, flags=re.S)
        text = re.sub(r'<(td|code)[^>]*translate="no"[^>]*>[^<]*</\1>', "", text)  # codes, files
        shown = html.unescape(re.sub(r"<[^>]+>", " ", text))
        keys = re.findall(r"\b[a-z]+_[a-z0-9_]+\b", shown)
        assert not keys, (page.name, sorted(set(keys))[:10])
        assert "No description has been provided" not in text
        css = page.read_text(encoding="utf-8").split("<style>")[1].split("</style>")[0]
        assert "jp-" not in text and len(css) < 8000  # the project's lean stylesheet
        assert "nan" not in shown.split() and "NaN" not in shown and "None" not in shown.split()
        for alt in re.findall(r'<img [^>]*alt="([^"]*)"', text):
            assert len(alt) > 20, (page.name, alt)
