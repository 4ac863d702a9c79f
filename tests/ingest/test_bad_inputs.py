"""The bad-input corpus (tests/data/bad): every defect stops the run with the expected
message and no traceback; the harmless ones pass with the expected warning or repair."""

from __future__ import annotations

import importlib.util
import logging
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from analysis.errors import InputError, InputWarning
from analysis.ingest.stage import run_prepare
from helpers.project import make_project

BAD = Path(__file__).resolve().parents[1] / "data" / "bad"
_spec = importlib.util.spec_from_file_location("make_corpus", BAD / "make_corpus.py")
corpus = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(corpus)

CASES = sorted(corpus.CASES)
FAILING = [c for c in CASES if c not in corpus.PASSING]
#: Representative cases run through the real command line (about 8 s each).
CLI_CASES = ["05_semicolon_cp1251", "06_xlsx_title_rows", "11_unknown_school"]


def expected(case: str) -> list[str]:
    return (BAD / case / "expected.txt").read_text(encoding="utf-8").splitlines()


def run(case: str, tmp_path: Path):
    return run_prepare(
        root=tmp_path, year=2025, raw_dir=str(BAD / case), mapping=None, sheet=None,
        header_row=None, quality_procedures=["VPR", "OGE"], quality_subjects=["rus", "math"],
        quality_grades=[5, 6, 9])


def test_corpus_is_large_enough_and_complete():
    assert len(CASES) >= 20
    for case in CASES:
        files = {p.name for p in (BAD / case).iterdir()}
        assert "expected.txt" in files
        assert any(f.startswith("schools.") for f in files), case
        assert any(f.startswith("results.") for f in files), case


@pytest.mark.parametrize("case", FAILING)
def test_bad_input_stops_with_the_expected_message(case, tmp_path):
    with pytest.raises(InputError) as err:
        run(case, tmp_path)
    message = str(err.value)
    assert "Traceback" not in message
    for line in expected(case):
        assert line in message, f"{case}: {line!r} not in\n{message}"


def test_leading_zeros_lost_is_a_warning_only(tmp_path):
    with pytest.warns(InputWarning) as record:
        out = run("12_leading_zeros_lost", tmp_path)
    assert [str(w.message) for w in record] == expected("12_leading_zeros_lost")
    assert sorted(out.schools["school_id"]) == ["100003", "100004", "10001", "10002"]


@pytest.mark.parametrize("case", ["16_trailing_spaces", "22_pct_shares_only",
                                  "23_russian_categories"])
def test_repairs_are_logged(case, tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="analysis.ingest.io"), warnings.catch_warnings():
        warnings.simplefilter("error", InputWarning)
        run(case, tmp_path)
    for line in expected(case):
        assert f"repaired: {line}" in caplog.messages


def test_repaired_values_are_used(tmp_path):
    out = run("16_trailing_spaces", tmp_path)
    assert "100001" in set(out.schools["school_id"])
    assert "СОШ № 1" in set(out.schools["school_name"])
    pct = run("22_pct_shares_only", tmp_path)
    row = pct.results.query("procedure == 'OGE'").iloc[0]
    assert [int(row[c]) for c in ("n_mark2", "n_mark3", "n_mark4", "n_mark5")] == [1, 7, 6, 4]
    cats = run("23_russian_categories", tmp_path).schools
    assert list(cats["settlement_type"]) == ["city", "city", "village"]
    assert list(cats["school_type"]) == ["secondary", "gymnasium", "basic"]


def test_html_in_a_school_name_is_kept_as_data(tmp_path):
    out = run("18_html_in_name", tmp_path)
    assert expected("18_html_in_name")[0] in set(out.schools["school_name"])


def test_committed_corpus_equals_a_fresh_generation(tmp_path):
    corpus.generate(tmp_path)
    for case in CASES:
        fresh = sorted(p.name for p in (tmp_path / case).iterdir())
        assert sorted(p.name for p in (BAD / case).iterdir()) == fresh, case
        for name in fresh:  # workbooks too: the generator fixes their timestamps
            assert (BAD / case / name).read_bytes() == (tmp_path / case / name).read_bytes(), (
                f"{case}/{name} differs from make_corpus.py; regenerate, do not hand-edit")


@pytest.mark.pipeline
@pytest.mark.parametrize("case", CLI_CASES)
def test_command_line_prints_the_message_and_exits_2(case, tmp_path):
    dest = make_project(tmp_path / "proj", None)
    raw = dest / "data" / "raw"
    for path in (BAD / case).iterdir():
        if path.name != "expected.txt":
            shutil.copy2(path, raw / path.name)
    proc = subprocess.run([sys.executable, "-m", "analysis.pipeline.nbrun", "01_prepare", "--root",
                           str(dest)], capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    for line in expected(case):
        assert line in proc.stderr


@pytest.mark.pipeline
@pytest.mark.parametrize("case", FAILING)
def test_every_failing_case_exits_2_through_the_check_command(case, tmp_path):
    """`make check DATA=<folder>` (python -m analysis.pipeline.run --check): the analyst's
    command."""
    root = make_project(tmp_path / "proj", None)
    proc = subprocess.run([sys.executable, "-m", "analysis.pipeline.run", "--check", "--data",
                           str(BAD / case), "--year", "2025", "--root", str(root)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    for line in expected(case):
        assert line in proc.stderr
    assert (root / "reports" / "checks" / f"{case}-2025" / "validation.html").exists()
