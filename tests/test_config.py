"""Parameters: one source of truth shared by params.yaml, dvc.yaml and the notebooks."""

import ast
import json
from pathlib import Path

import pytest

from analysis.config import flatten, load_yaml, merge, select, stage_param_keys, stage_parameters

ROOT = Path(__file__).resolve().parents[1]
STAGES = list(load_yaml(ROOT / "dvc.yaml")["stages"])


def test_flatten_names_section_keys_and_keeps_top_level():
    params = {"year": 2025, "clusters": {"k": 5, "seed": 1}, "demo": {"n": 3}}
    assert flatten(params, ["year", "clusters"]) == {"clusters_k": 5, "clusters_seed": 1,
                                                      "year": 2025}
    assert flatten(params, ["clusters.k"]) == {"clusters_k": 5}
    with pytest.raises(KeyError, match="nope"):
        flatten(params, ["nope"])


def test_stages_are_the_five_of_the_design():
    assert STAGES == ["01_prepare", "02_context_clusters", "03_ses_link", "04_flags", "05_report"]


def _notebook(stage: str) -> dict:
    return json.loads((ROOT / "notebooks" / f"{stage}.ipynb").read_text(encoding="utf-8"))


@pytest.mark.parametrize("stage", STAGES)
def test_parameters_cell_reads_the_stages_params_from_params_yaml(stage):
    """One variable, ``params``: what the runner injects, and what the cell itself reads
    from params.yaml when the notebook is run by hand (same keys, same shape)."""
    cells = [c for c in _notebook(stage)["cells"]
             if "parameters" in c["metadata"].get("tags", [])]
    assert len(cells) == 1, f"{stage}: exactly one cell tagged 'parameters'"
    body = ast.parse("".join(cells[0]["source"])).body
    assigned = [n for n in body if isinstance(n, ast.Assign)]
    assert [ast.unparse(n) for n in assigned] == [f"params = stage_parameters('{stage}')"]
    assert all(isinstance(n, ast.Assign | ast.ImportFrom) for n in body)


def test_stage_parameters_select_the_declared_keys_in_params_yaml_shape():
    params = load_yaml(ROOT / "params.yaml")
    got = stage_parameters("02_context_clusters", ROOT)
    assert set(got) == {"year", "min_n", "index", "quality_groups", "clusters", "similar",
                        "ses_link"}
    assert got["ses_link"] == {"terms": params["ses_link"]["terms"]}  # one key of a section
    assert got["clusters"] == params["clusters"]
    got["clusters"]["k"] = 99
    assert load_yaml(ROOT / "params.yaml")["clusters"] == params["clusters"]
    assert select({"a": {"b": 1, "c": 2}}, ["a.c"]) == {"a": {"c": 2}}
    with pytest.raises(KeyError, match="a.d"):
        select({"a": {"b": 1}}, ["a.d"])
    assert merge({"a": {"b": 1, "c": 2}, "y": 1}, {"a": {"c": 3}, "y": 2}) == {
        "a": {"b": 1, "c": 3}, "y": 2}


#: Where each stage reads its params (the stage module's ``run``).
STAGE_SOURCES = {"01_prepare": "ingest/stage.py", "02_context_clusters": "context/stage.py",
                 "03_ses_link": "models/stage.py", "04_flags": "flags/stage.py",
                 "05_report": "publish/stage.py"}


@pytest.mark.parametrize("stage", STAGES)
def test_every_declared_key_is_read_and_the_notebook_has_no_outputs(stage):
    """dvc.yaml declares no key the stage never reads (DVC would re-run it for nothing)."""
    source = (ROOT / "src" / "analysis" / STAGE_SOURCES[stage]).read_text(encoding="utf-8")
    unread = [key for key in stage_param_keys(load_yaml(ROOT / "dvc.yaml"), stage)
              if not all(f'"{part}"' in source for part in key.split("."))]
    assert not unread, f"{stage}: dvc.yaml declares keys its stage never reads: {unread}"
    nb = _notebook(stage)
    dirty = [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"
             and (c.get("outputs") or c.get("execution_count") is not None)]
    assert not dirty, (f"notebooks/{stage}.ipynb: cells {dirty} carry outputs or execution "
                       "counts; the .ipynb is the source: run `make notebooks-clean` (or "
                       "JupyterLab: Edit > Clear Outputs of All Cells) and save")
    assert nb["metadata"]["kernelspec"]["name"] == "school-context"


def test_every_params_section_is_read_by_some_stage():
    params = load_yaml(ROOT / "params.yaml")
    dvc = load_yaml(ROOT / "dvc.yaml")
    used = {key.split(".")[0] for s in STAGES for key in stage_param_keys(dvc, s)}
    assert set(params) - used == {"demo"}  # demo feeds `make data`, not a stage
