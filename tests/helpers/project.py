"""A throw-away copy of the project with a synthetic region: what pipeline tests run in."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from analysis.demo.synth import RegionSpec, write_region

ROOT = Path(__file__).resolve().parents[2]
#: The environment of a command run as the analyst runs it: this venv first on PATH, a git
#: identity, no telemetry, a fixed hash seed.
BIN = Path(sys.executable).parent
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "GIT_CONFIG_NOSYSTEM": "1"}
ENV = {**os.environ, **GIT_ENV, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
       "DVC_NO_ANALYTICS": "1", "JUPYTER_PLATFORM_DIRS": "1", "PYTHONHASHSEED": "0"}

TINY = RegionSpec(n_municipalities=4, n_schools=80, seed=7)
#: What a project copy needs to run the pipeline (no data, no outputs, no .venv).
PROJECT_FILES = ("dvc.yaml", "params.yaml", "notebooks", "src", ".dvc/config", ".dvcignore",
                 ".gitignore", "pyproject.toml", "data/raw/.gitkeep", "data/processed/.gitkeep",
                 "reports/.gitkeep")
#: Parameters for the tiny region (fewer clusters, cheaper k-means).
TINY_PARAMS = {"clusters": {"k": 3, "n_init": 5}}


def make_project(dest: Path, region=None, params: dict | None = None, git: bool = False) -> Path:
    """Copy the project's pipeline files to ``dest`` with ``region`` written to data/raw."""
    for name in PROJECT_FILES:
        src, dst = ROOT / name, dest / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(src, dst)
    if region is not None:
        write_region(region, dest / "data" / "raw", dest / "data" / "demo_truth")
    p = yaml.safe_load((dest / "params.yaml").read_text(encoding="utf-8"))
    for section, values in (params or {}).items():
        if isinstance(values, dict):
            p[section].update(values)
        else:
            p[section] = values
    (dest / "params.yaml").write_text(yaml.safe_dump(p, allow_unicode=True, sort_keys=False),
                                      encoding="utf-8")
    if git:
        for cmd in (["git", "init", "-q", "-b", "main"],
                    ["git", "-c", "user.name=t", "-c", "user.email=t@t", "add", "-A"],
                    ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init"]):
            subprocess.run(cmd, cwd=dest, check=True)
    return dest
