"""`make report DATA=<folder> YEAR=<year>`: the study on an analyst's folder, outside DVC."""

from __future__ import annotations

import hashlib
import json

import pytest
import yaml

from analysis.config import merge
from analysis.errors import InputError
from analysis.pipeline import run
from helpers.exports import RU_RESULTS, RU_SCHOOLS, export, mapping_yaml
from helpers.project import make_project


def test_merge_merges_sections_and_replaces_values_whole():
    base = {"year": 2025, "clusters": {"k": 5, "seed": 1},
            "index": {"indicators": {"a": 1, "b": -1}}}
    merged = merge(base, {"clusters": {"k": 3}, "year": 2024,
                                     "index": {"indicators": {"a": 1}}})
    assert merged == {"year": 2024, "clusters": {"k": 3, "seed": 1},
                      "index": {"indicators": {"a": 1}}}
    assert base["clusters"]["k"] == 5  # not mutated


def test_unknown_override_is_a_clear_error(tmp_path):
    root = make_project(tmp_path / "proj", None)
    data = tmp_path / "data"
    data.mkdir()
    (data / "params.yaml").write_text("clusters:\n  kk: 3\n", encoding="utf-8")
    with pytest.raises(InputError, match="column 'clusters.kk'; expected parameters that exist"):
        run.study_params(root, data, 2025)
    assert run.main(["--data", str(tmp_path / "nowhere"), "--root", str(root)]) == 2


def snapshot(root):
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in root.rglob("*") if p.is_file()}


@pytest.mark.pipeline
def test_study_runs_on_a_folder_of_exports_and_edits_no_project_file(tmp_path, tiny_region):
    root = make_project(tmp_path / "proj", None)
    data = tmp_path / "Экспорт РСОКО"
    data.mkdir()
    for df, names, stem in ((tiny_region.schools, RU_SCHOOLS, "schools"),
                            (tiny_region.results, RU_RESULTS, "results")):
        export(df, names).to_csv(data / f"{stem}.csv", sep=";", decimal=",", index=False,
                                 encoding="cp1251")
    (data / "mapping.yaml").write_text(mapping_yaml(), encoding="utf-8")
    (data / "params.yaml").write_text(yaml.safe_dump({"clusters": {"k": 3}}), encoding="utf-8")
    before = snapshot(root)
    assert run.main(["--data", str(data), "--year", "2024", "--root", str(root)]) == 0
    after = snapshot(root)
    changed = {p for p in after if before.get(p) != after[p]}
    # its own folders, never the DVC pipeline's reports/2024/
    assert changed and all(p.startswith(("reports/Экспорт РСОКО-2024/", ".runs/"))
                           for p in changed), changed
    page = (root / "reports/Экспорт РСОКО-2024/report.html").read_text(encoding="utf-8")
    assert '<html lang="ru">' in page and "2024" in page
    metrics = json.loads((root / "reports/Экспорт РСОКО-2024/metrics.json").read_text(
        encoding="utf-8"))
    assert metrics["year"] == 2024 and metrics["clusters"]["k"] == 3
    assert (root / ".runs" / "Экспорт РСОКО-2024" / "data/processed/schools.parquet").exists()


@pytest.mark.pipeline
def test_real_public_dataset_end_to_end(tmp_path):
    """MASS nlschools as an analyst's export (own headers, percent shares, mapping, overrides)
    through `make report DATA=…`'s runner: all five notebooks and the HTML report."""
    from analysis.demo.datasets import nlschools_export

    root = make_project(tmp_path / "proj", None)
    data = nlschools_export(tmp_path / "nlschools")
    assert run.main(["--data", str(data), "--root", str(root)]) == 0
    page = (root / "reports/nlschools-2025/report.html").read_text(encoding="utf-8")
    assert '<html lang="en">' in page and "Resilient schools" in page
    metrics = json.loads((root / "reports/nlschools-2025/metrics.json").read_text(
        encoding="utf-8"))
    assert metrics["counts"]["analysed"] == 131  # 133 classes, 2 with fewer than min_n=5
    assert metrics["ses"]["gradient"]["slope"] > 0 and metrics["accounting_balanced"]


def test_check_only_validates_and_reports_repairs(tmp_path, capsys):
    from pathlib import Path

    root = make_project(tmp_path / "proj", None)
    case = Path(__file__).resolve().parents[1] / "data" / "bad" / "23_russian_categories"
    assert run.main(["--check", "--data", str(case), "--year", "2025", "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "repair: " in out and "'Город' -> 'city'" in out
    assert "The input passes the checks (2 files)." in out
    # the check writes only its own validation page, never beside a published report
    assert sorted(p.relative_to(root / "reports").as_posix()
                  for p in (root / "reports").rglob("*") if p.is_file()) == [
        ".gitkeep", "checks/23_russian_categories-2025/validation.html"]
