"""Parameters: one source of truth shared by params.yaml, dvc.yaml and the notebooks."""

import ast
import json
from pathlib import Path

import pytest

from analysis.config import flatten, load_yaml, stage_param_keys, stage_parameters

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


def _parameters_cell(stage: str) -> dict:
    nb = json.loads((ROOT / "notebooks" / f"{stage}.ipynb").read_text(encoding="utf-8"))
    cells = [c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", [])]
    assert len(cells) == 1, f"{stage}: exactly one cell tagged 'parameters'"
    values = {}
    for node in ast.parse("".join(cells[0]["source"])).body:
        assert isinstance(node, ast.Assign), f"{stage}: parameters cell holds only assignments"
        values[node.targets[0].id] = ast.literal_eval(node.value)
    return values


@pytest.mark.parametrize("stage", STAGES)
def test_parameters_cell_matches_params_yaml(stage):
    """Same names and default values as the params.yaml sections dvc.yaml gives the stage."""
    assert _parameters_cell(stage) == stage_parameters(stage, ROOT)


@pytest.mark.parametrize("stage", STAGES)
def test_notebook_uses_every_parameter_and_has_no_outputs(stage):
    nb = json.loads((ROOT / "notebooks" / f"{stage}.ipynb").read_text(encoding="utf-8"))
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"
                     and "parameters" not in c["metadata"].get("tags", []))
    # the report takes all its parameters at once (for the methods section)
    if f'stage_parameters("{stage}")' in code:
        code += " ".join(stage_parameters(stage, ROOT))
    unused = [name for name in stage_parameters(stage, ROOT) if name not in code]
    assert not unused, f"{stage} declares parameters it never uses: {unused}"
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
