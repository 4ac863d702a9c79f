"""The validation log is written whether the input passes or fails, and names every problem."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from analysis.errors import InputError
from analysis.ingest import validate
from analysis.ingest.stage import run_prepare

BAD = Path(__file__).resolve().parents[1] / "data" / "bad"
ARGS = dict(year=2025, mapping=None, sheet=None, header_row=None,
            quality_procedures=["VPR", "OGE"], quality_subjects=["rus", "math"],
            quality_grades=[5, 6, 9])


def run(tmp_path, case):
    raw = tmp_path / "raw" / case
    shutil.copytree(BAD / case, raw)
    return run_prepare(tmp_path, raw_dir=str(raw), **ARGS)


def log(tmp_path):
    doc = json.loads((tmp_path / "data/processed/validation.json").read_text(encoding="utf-8"))
    page = validate.to_html(doc)  # the page published with the run
    return doc, page


def test_failed_validation_is_logged_with_every_error(tmp_path):
    with pytest.raises(InputError):
        run(tmp_path, "08_share_140")
    doc, page = log(tmp_path)
    assert doc["status"] == "failed"
    assert [(e["file"], e["rows"], e["column"], e["value"]) for e in doc["errors"]] == [
        ("schools.csv", [2], "share_low_income", "140")]
    assert {f["file"] for f in doc["files"]} == {"schools.csv", "results.csv"}
    assert "share_low_income" in page and "140" in page
    assert '<meta charset="utf-8">' in page and "Проверка входных данных: не пройдена" in page
    assert "src=" not in page and "href=" not in page  # self-contained, opens offline
    assert not (tmp_path / "data/processed/schools.parquet").exists()


def test_passing_validation_logs_repairs_and_keeps_names_as_data(tmp_path):
    run(tmp_path, "23_russian_categories")
    doc, _ = log(tmp_path)
    assert doc["status"] == "ok" and doc["errors"] == []
    assert any("'Город' -> 'city'" in r for r in doc["repairs"])
    run(tmp_path, "18_html_in_name")
    _, page = log(tmp_path)
    assert "<script>" not in page


@pytest.mark.parametrize("case", ["12_leading_zeros_lost", "16_trailing_spaces",
                                  "18_html_in_name", "22_pct_shares_only",
                                  "23_russian_categories"])
def test_accounting_adds_up_on_the_passing_corpus(tmp_path, case):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = run(tmp_path, case)
    acc = out.accounting
    assert (acc["in_scope"] == acc["used"] + acc["excluded"]).all()
    assert acc["in_scope"].sum() == len(out.results) and len(out.ledger) == acc["excluded"].sum()
