"""environment.yml (conda users) lists the same dependencies as pyproject.toml, and the
README's conda route works."""

import os
import re
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"pyyaml": "pyyaml"}  # pip name -> conda-forge name where they differ


def _norm(req: str) -> tuple[str, str]:
    m = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", req)
    name, spec = m.group(1).lower().replace("_", "-"), m.group(2).replace(" ", "")
    return CONDA_NAMES.get(name, name), spec


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    dev = project["optional-dependencies"]["dev"]
    wanted = dict(_norm(r) for r in project["dependencies"] + dev)
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
    dev = project["optional-dependencies"]["dev"]
    direct = {_norm(r)[0] for r in project["dependencies"] + dev}
    assert direct <= lock, f"not pinned in requirements.lock: {sorted(direct - lock)}"


# --- the conda route of the README, in a fresh clone -------------------------------------------

def readme_conda_commands() -> list[str]:
    """The README's conda block: the commands after ``conda env create`` / ``conda activate``."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    block = next(b for b in blocks if "conda env create -f environment.yml" in b)
    lines = [line.split("#")[0].strip() for line in block.splitlines()]
    assert lines[0] == "conda env create -f environment.yml"
    assert lines[1] == "conda activate school-context"
    return [line for line in lines[2:] if line]


def conda_like_prefix(prefix: Path, project: Path) -> Path:
    """A stand-in for an activated ``conda env create -f environment.yml`` (conda cannot be
    reached here): a prefix whose ``bin/python`` sees this test's packages and the project at
    ``project`` (environment.yml's ``pip install -e .``, here as the path file that
    setuptools' editable install writes, without a build), the packages' data files, and a
    ``dvc`` command, as conda-forge's dvc installs one."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(prefix)], check=True)
    site = prefix / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"
    # a path line adds the folder only, not the path files in it: this test's own editable
    # install of the project is not seen, the clone's is
    (site / "_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    (site / "_school_context.pth").write_text(str(project / "src") + "\n")
    # the data files the packages install into the environment (nbconvert's templates); not
    # the kernel specs: the pipeline installs its own into the environment on first use
    for data in (Path(sys.prefix) / "share" / "jupyter").iterdir():
        if data.name != "kernels":
            (prefix / "share" / "jupyter").mkdir(parents=True, exist_ok=True)
            (prefix / "share" / "jupyter" / data.name).symlink_to(data)
    python = prefix / "bin" / "python"
    dvc = prefix / "bin" / "dvc"
    dvc.write_text(f"#!{python}\nimport sys\nfrom dvc.cli import main\nsys.exit(main())\n")
    dvc.chmod(0o755)
    where = subprocess.run([str(python), "-c", "import analysis; print(analysis.__file__)"],
                           capture_output=True, text=True, check=True).stdout
    assert Path(where.strip()).is_relative_to(project / "src")
    return prefix


@pytest.mark.pipeline
def test_the_readme_conda_route_works_in_a_fresh_clone(tmp_path):
    """README: conda env create, conda activate, then its commands (make data, dvc repro) in
    a fresh clone of the committed project: the demo region is made, the pipeline runs in the
    conda environment, and no .venv is created; `make report` uses that environment too."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    prefix = conda_like_prefix(tmp_path / "envs" / "school-context", clone)
    here = str(Path(sys.executable).parent)  # this test's environment: off PATH
    path = [str(prefix / "bin")] + [p for p in os.environ["PATH"].split(os.pathsep)
                                    if p != here]
    env = {k: v for k, v in os.environ.items()
           if k not in ("VIRTUAL_ENV", "PYTHONPATH", "MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    env.update(PATH=os.pathsep.join(path), CONDA_PREFIX=str(prefix),
               CONDA_DEFAULT_ENV="school-context", CONDA_SHLVL="1",
               GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t",
               GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@t")
    commands = readme_conda_commands()
    assert commands[0].startswith("make data") and "dvc repro" in commands
    for command in commands + ["make report"]:
        proc = subprocess.run(["bash", "-c", command], cwd=clone, env=env,
                              capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, f"{command}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        assert not (clone / ".venv").exists(), f"{command} created .venv"
        if command.startswith("make data"):
            assert list((clone / "data" / "raw").glob("schools.*"))
        if command == "dvc repro":
            assert "01_prepare: " in proc.stdout and "05_report: " in proc.stdout
    assert (clone / "reports" / "2025" / "report.html").exists()
    # the stages' kernel spec was installed into the conda environment, not elsewhere
    assert (prefix / "share" / "jupyter" / "kernels" / "school-context").is_dir()
