"""`dvc exp run -S <key>` re-runs exactly the stages that read the key (and what depends on
their changed outputs), and `dvc exp show` compares runs on the metrics the issue names."""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from helpers.project import BIN, ENV, TINY_PARAMS, make_project

STAGES = ("01_prepare", "02_context_clusters", "03_ses_link", "04_flags", "05_report")


def dvc(root, *args: str) -> str:
    proc = subprocess.run([str(BIN / "dvc"), *args], cwd=root, env=ENV, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


def ran(output: str) -> set[str]:
    """Stages DVC ran (not those it skipped or restored from its run cache)."""
    return set(re.findall(r"Running stage '([^']+)'", output))


@pytest.mark.pipeline
def test_experiments_rerun_only_the_affected_stages(tmp_path, tiny_region):
    root = make_project(tmp_path / "proj", tiny_region, TINY_PARAMS, git=True)
    assert ran(dvc(root, "repro")) == set(STAGES)
    subprocess.run(["git", "add", "dvc.lock", "reports/metrics.json"], cwd=root, env=ENV,
                   check=True)
    subprocess.run(["git", "commit", "-qm", "baseline"], cwd=root, env=ENV, check=True)
    # a clustering key: stage 02 and the report.  03 and 04 read only cluster_terms.parquet,
    # empty unless the models have the cluster term, so DVC skips them (the experiment costs
    # stage 02 and the report, not the models and flags)
    out = dvc(root, "exp", "run", "-S", "clusters.method=gmm", "-S", "clusters.k=4",
              "--name", "gmm4")
    assert ran(out) == {"02_context_clusters", "05_report"}, out
    # the expected-result model's key: stages 03, 04 and the report; never 01 or 02
    out = dvc(root, "exp", "run", "-S", "ses_link.shape=linear", "--name", "linear")
    assert ran(out) == {"03_ses_link", "04_flags", "05_report"}, out
    # a multilevel key: 03 and the report; 04 does not read it
    out = dvc(root, "exp", "run", "-S", "multilevel.random_slope=true", "--name", "slope")
    assert ran(out) == {"03_ses_link", "05_report"}, out
    # the report's own key: the report alone
    out = dvc(root, "exp", "run", "-S", "report.top_n=5", "--name", "short")
    assert ran(out) == {"05_report"}, out
    shown = json.loads(dvc(root, "exp", "show", "--json"))
    text = json.dumps(shown)
    for key in ("variance_explained", "silhouette", "stability_ari", "n_ranked", "resilient",
                "shnor"):
        assert f'"{key}"' in text, key
    assert '"gmm4"' in text and '"linear"' in text
