"""The whole DVC pipeline on a tiny region: report, metrics, no-op re-run, granular re-runs."""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from analysis.i18n import t
from helpers.project import TINY_PARAMS, make_project

pytestmark = pytest.mark.pipeline

BIN = Path(sys.executable).parent
EVIL = '<b>Школа</b><script>alert("x")</script> & «Ко»'
SECTIONS = ["report.summary", "report.distributions", "report.clusters", "ses.title",
            "ses.by_group", "ses.binomial", "ses.multilevel",
            "report.list_resilient", "report.list_shnor", "report.list_shnsu", "report.typology",
            "report.methods", "report.params_table", "report.exclusions"]


def dvc(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
           "DVC_NO_ANALYTICS": "1", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    proc = subprocess.run([str(BIN / "dvc"), *args], cwd=root, env=env, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0 or not check, proc.stdout + proc.stderr
    return proc


def ran(proc: subprocess.CompletedProcess) -> list[str]:
    return re.findall(r"Running stage '([^']+)'", proc.stdout + proc.stderr)


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, tiny_region):
    root = make_project(tmp_path_factory.mktemp("pipe"), tiny_region, TINY_PARAMS)
    truth = tiny_region.truth
    target = sorted(truth.loc[truth["meets_shnor"].astype(bool), "school_id"])[0]
    schools = pd.read_csv(root / "data/raw/schools.csv", dtype=str, keep_default_na=False)
    schools.loc[schools["school_id"] == target, "school_name"] = EVIL
    schools.to_csv(root / "data/raw/schools.csv", index=False)
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=root, check=True)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"],
                   cwd=root, check=True)
    first = dvc(root, "repro")
    return root, first


def test_first_run_executes_every_stage(pipeline):
    _, first = pipeline
    assert ran(first) == ["01_prepare", "02_context_clusters", "03_ses_link", "04_flags",
                          "05_report"]


def test_report_has_every_section_and_opens_offline(pipeline):
    root, _ = pipeline
    page = (root / "reports" / "2025" / "report.html").read_text(encoding="utf-8")
    for key in SECTIONS:
        assert html.escape(t(key, "ru")) in page, key
    assert '<html lang="ru">' in page
    assert not re.search(r"""<script[^>]+src=""", page), "no external scripts"
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", page)
    assert not re.search(r"@import\s+url\(\s*['\"]?https?:", page)
    assert "data:image/png;base64," in page  # figures are embedded
    assert "Traceback" not in page and "import analysis" not in page  # no code cells


def test_school_names_are_escaped(pipeline):
    root, _ = pipeline
    page = (root / "reports" / "2025" / "report.html").read_text(encoding="utf-8")
    assert '<script>alert("x")</script>' not in page and "<b>Школа</b>" not in page
    # the name is shown, as text (quotes need no escaping in text nodes)
    assert html.escape(EVIL) in page or html.escape(EVIL, quote=False) in page


def test_metrics_and_executed_notebooks(pipeline):
    root, _ = pipeline
    m = json.loads((root / "reports" / "metrics.json").read_text(encoding="utf-8"))
    assert m["year"] == 2025 and m["clusters"]["k"] == 3 and m["accounting_balanced"] is True
    assert m["counts"]["schools"] > 50
    for stage in ("01_prepare", "02_context_clusters", "03_ses_link", "04_flags", "05_report"):
        text = (root / "data" / "processed" / "notebooks" / f"{stage}.ipynb").read_text()
        assert '"output_type": "error"' not in text
    # the executed notebooks are the audit trail, not published
    assert not (root / "reports" / "2025" / "notebooks").exists()
    published = sorted(p.relative_to(root / "reports" / "2025").as_posix()
                       for p in (root / "reports" / "2025").rglob("*") if p.is_file())
    assert {"report.html", "index.html", "tables.xlsx", "metrics.json", "validation.html",
            "data/schools.csv", "data/schools.parquet"} <= set(published)
    assert sum(p.startswith("mun/") for p in published) == m["counts"]["municipalities"]


def test_second_repro_runs_nothing(pipeline):
    root, _ = pipeline
    again = dvc(root, "repro")
    assert ran(again) == []
    assert "up to date" in dvc(root, "status").stdout


def test_clustering_experiment_reruns_only_what_depends_on_it(pipeline):
    root, _ = pipeline
    exp = dvc(root, "exp", "run", "-S", "clusters.k=2")
    # 03 and 04 read only cluster_terms.parquet (empty without the models' cluster term):
    # its bytes do not change with k, so DVC skips them
    assert ran(exp) == ["02_context_clusters", "05_report"]
    m = json.loads((root / "reports" / "metrics.json").read_text(encoding="utf-8"))
    assert m["clusters"]["k"] == 2
    shown = json.loads(dvc(root, "exp", "show", "--json").stdout)
    records = list(_records(shown))
    params = [r["params"]["params.yaml"].get("data", {}) for r in records if r.get("params")]
    runs = [(r["params"]["params.yaml"].get("data", {}),
             r["metrics"]["reports/metrics.json"].get("data", {}))
            for r in records if r.get("params") and r.get("metrics")]
    assert any(p["clusters"]["k"] == 2 and m.get("clusters", {}).get("k") == 2
               for p, m in runs), runs  # the experiment, with its metrics
    assert any(p["clusters"]["k"] == 3 for p in params)  # the baseline it is compared with


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_failed_stage_leaves_the_published_report_untouched(pipeline):
    """#6 finding 1 under DVC: stage 02 fails; reports/2025/ keeps the last complete run,
    the failed run's note goes to reports/failed/2025/."""
    import yaml

    root, _ = pipeline
    folder = root / "reports" / "2025"
    before = snapshot(folder)
    text = (root / "params.yaml").read_text(encoding="utf-8")
    p = yaml.safe_load(text)
    p["clusters"]["k"] = 500
    (root / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False), encoding="utf-8")
    try:
        failed_run = dvc(root, "repro", check=False)
    finally:
        (root / "params.yaml").write_text(text, encoding="utf-8")
    assert failed_run.returncode != 0
    assert ran(failed_run) == ["02_context_clusters"]
    assert "reports/2025/ was not changed" in failed_run.stderr
    assert snapshot(folder) == before
    note = root / "reports" / "failed" / "2025"
    assert sorted(snapshot(note)) == ["failure.txt", "notebooks/02_context_clusters.ipynb",
                                      "validation.html"]
    dvc(root, "repro")  # DVC restores stage 02 from its run cache; the report is as it was
    assert snapshot(folder) == before


def _records(node):
    """Every dict in `dvc exp show --json` output that carries params or metrics."""
    if isinstance(node, dict):
        if "params" in node or "metrics" in node:
            yield node
        for value in node.values():
            yield from _records(value)
    elif isinstance(node, list):
        for value in node:
            yield from _records(value)


