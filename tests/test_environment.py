"""environment.yml (conda users) lists the same dependencies as pyproject.toml."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"pyyaml": "pyyaml"}  # pip name -> conda-forge name where they differ


def _norm(req: str) -> tuple[str, str]:
    m = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", req)
    name, spec = m.group(1).lower().replace("_", "-"), m.group(2).replace(" ", "")
    return CONDA_NAMES.get(name, name), spec


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = dict(_norm(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = dict(_norm(d) for d in env["dependencies"] if isinstance(d, str))
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    python_spec = conda.pop("python")
    conda.pop("pip")
    conda.update(_norm(d.split("#")[0]) for d in pip if d != "-e .")  # not on conda-forge
    assert conda == wanted
    assert "-e ." in pip
    assert python_spec.startswith("=3.11")


def test_lock_pins_every_direct_dependency():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lock = {line.split("==")[0].lower().replace("_", "-")
            for line in (ROOT / "requirements.lock").read_text().splitlines() if "==" in line}
    direct = {_norm(r)[0] for r in project["dependencies"] + project["optional-dependencies"]["dev"]}
    assert direct <= lock, f"not pinned in requirements.lock: {sorted(direct - lock)}"
