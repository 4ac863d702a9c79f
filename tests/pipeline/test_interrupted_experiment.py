"""A killed `dvc exp run -S ...` leaves params.yaml changed: the warning and the recovery.

GitHub issue finding 7: after `dvc exp run -S clusters.k=4` is killed, params.yaml holds
k=4 (staged in git, HEAD detached), and the next `dvc repro` silently builds k=4.
`python -m analysis.pipeline.preflight` (run by `make report` before `dvc repro`) warns;
docs/guide.md section "If an experiment was interrupted" gives the recovery tested here.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from analysis.pipeline.preflight import STAGED, experiment_state, main, params_drift, warning_text
from helpers.project import BIN, ENV, TINY_PARAMS, make_project

PARAMS = {"year": 2025,
          "prepare": {"raw_dir": "data/raw", "mapping": None, "quality_grades": [5, 6, 9]},
          "index": {"indicators": {"share_low_income": -1, "share_parents_higher_ed": 1}},
          "clusters": {"k": 5, "seed": 2025}}


def git(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=root, env=ENV, capture_output=True, text=True,
                          check=check, timeout=120)


def write(root: Path, params: dict) -> None:
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")


@pytest.fixture
def repo(tmp_path):
    """A git repository whose committed params.yaml is PARAMS."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    write(root, PARAMS)
    git(root, "add", "params.yaml")
    git(root, "commit", "-qm", "params")
    return root


def changed(**sections) -> dict:
    p = yaml.safe_load(yaml.safe_dump(PARAMS))
    for section, values in sections.items():
        if isinstance(values, dict):
            p[section].update(values)
        else:
            p[section] = values
    return p


# --- params_drift --------------------------------------------------------------------------

def test_no_drift_when_params_are_the_committed_ones(repo):
    assert params_drift(repo) == []


def test_changed_key(repo):
    write(repo, changed(clusters={"k": 2}))
    assert params_drift(repo) == ["clusters.k: 5 → 2"]


def test_top_level_and_list_values(repo):
    write(repo, changed(year=2024, prepare={"quality_grades": [9]}))
    assert params_drift(repo) == ["year: 2025 → 2024",
                                  "prepare.quality_grades: [5, 6, 9] → [9]"]


def test_nested_key_is_dotted(repo):
    write(repo, changed(index={"indicators": {"share_low_income": 1,
                                              "share_parents_higher_ed": 1}}))
    assert params_drift(repo) == ["index.indicators.share_low_income: -1 → 1"]


def test_added_and_removed_keys(repo):
    p = changed(clusters={"n_init": 5})
    del p["clusters"]["seed"]
    p["report"] = {"top_n": 10}
    write(repo, p)
    assert params_drift(repo) == ["clusters.seed: 2025 → (absent)",
                                  "clusters.n_init: (absent) → 5",
                                  "report.top_n: (absent) → 10"]


def test_formatting_and_comments_are_not_drift(repo):
    # DVC rewrites `null` as an empty value when it sets a parameter; same meaning.
    text = (repo / "params.yaml").read_text(encoding="utf-8")
    (repo / "params.yaml").write_text("# a comment\n" + text.replace("null", ""), encoding="utf-8")
    assert params_drift(repo) == []


def test_type_change_is_drift(repo):
    write(repo, changed(clusters={"k": 5.0}))
    assert params_drift(repo) == ["clusters.k: 5 → 5.0"]


def test_staged_change_is_flagged(repo):
    write(repo, changed(clusters={"k": 2}))
    git(repo, "add", "params.yaml")
    assert params_drift(repo) == ["clusters.k: 5 → 2", STAGED]


def test_staged_reformatting_alone_is_flagged(repo):
    text = (repo / "params.yaml").read_text(encoding="utf-8")
    (repo / "params.yaml").write_text(text.replace("null", ""), encoding="utf-8")
    git(repo, "add", "params.yaml")
    assert params_drift(repo) == [STAGED]


def test_committed_change_is_no_drift(repo):
    write(repo, changed(clusters={"k": 2}))
    git(repo, "commit", "-qam", "k=2")
    assert params_drift(repo) == []


def test_missing_and_broken_working_file(repo):
    (repo / "params.yaml").write_text("clusters: [k: 2\n", encoding="utf-8")
    (line,) = params_drift(repo)
    assert line.startswith("params.yaml: cannot be read as YAML")
    (repo / "params.yaml").unlink()
    assert params_drift(repo) == [
        "params.yaml: the committed file is missing from the working folder"]


def test_not_a_repository_gives_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    write(tmp_path, PARAMS)
    assert params_drift(tmp_path) == []


def test_uncommitted_params_give_nothing(tmp_path):
    git(tmp_path, "init", "-q", "-b", "main")
    write(tmp_path, PARAMS)
    assert params_drift(tmp_path) == []                  # no commit at all
    git(tmp_path, "add", "params.yaml")
    assert params_drift(tmp_path) == []                  # staged, never committed
    git(tmp_path, "rm", "-q", "--cached", "params.yaml")
    (tmp_path / "other").write_text("x", encoding="utf-8")
    git(tmp_path, "add", "other")
    git(tmp_path, "commit", "-qm", "other")
    assert params_drift(tmp_path) == []                  # committed tree has no params.yaml


def test_no_git_gives_nothing(repo, monkeypatch):
    write(repo, changed(clusters={"k": 2}))
    monkeypatch.setattr("analysis.vcs.shutil.which", lambda name: None)
    assert params_drift(repo) == []
    assert experiment_state(repo)["exec_refs"] == []


# --- the warning -----------------------------------------------------------------------------

def test_main_is_quiet_without_drift(repo, capsys, monkeypatch):
    monkeypatch.chdir(repo)
    assert main([]) == 0
    assert capsys.readouterr().err == ""


def test_main_warns_and_exits_0(repo, capsys):
    write(repo, changed(clusters={"k": 2}))
    assert main(["--root", str(repo)]) == 0
    err = capsys.readouterr().err
    assert "clusters.k: 5 → 2" in err and "git restore --staged --worktree params.yaml" in err
    assert "git switch" not in err


def test_main_names_the_killed_experiment_and_the_branch(repo, capsys):
    """The state a SIGKILLed `dvc exp run` leaves (see the end-to-end test), made by hand."""
    head = git(repo, "rev-parse", "HEAD").stdout.strip()
    write(repo, changed(clusters={"k": 2}))
    git(repo, "add", "params.yaml")
    for ref in ("EXEC_BASELINE", "EXEC_HEAD", "EXEC_MERGE"):
        git(repo, "update-ref", f"refs/exps/exec/{ref}", head)
    git(repo, "checkout", "-q", "--detach", head)
    state = experiment_state(repo)
    assert state["detached"] == head[:len(state["detached"])] and state["branch"] == "main"
    assert main(["--root", str(repo)]) == 0
    err = capsys.readouterr().err
    assert "killed `dvc exp run`" in err
    assert ("  git restore --staged --worktree params.yaml\n  git switch main\n  dvc repro\n"
            in err)


def test_running_experiment_is_named_not_recovered(repo, capsys):
    proc = repo / ".dvc/tmp/exps/run/workspace/workspace.json"
    proc.parent.mkdir(parents=True)
    sleep = [sys.executable, "-c", "import time; time.sleep(60)", "dvc", "exp", "run"]
    with subprocess.Popen(sleep) as sleeper:
        try:
            proc.write_text(json.dumps({"pid": sleeper.pid}), encoding="utf-8")
            write(repo, changed(clusters={"k": 2}))
            assert main(["--root", str(repo)]) == 0
            err = capsys.readouterr().err
            assert f"process {sleeper.pid}) is running" in err and "git restore" not in err
        finally:
            sleeper.kill()
    assert experiment_state(repo)["running_pid"] is None   # a dead pid is no experiment
    proc.write_text(json.dumps({"pid": os.getppid()}), encoding="utf-8")
    assert experiment_state(repo)["running_pid"] is None   # nor a live pid reused by non-dvc


def test_main_never_fails(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("analysis.pipeline.preflight.params_drift", lambda root: 1 / 0)
    assert main(["--root", str(tmp_path)]) == 0
    assert "could not compare" in capsys.readouterr().err


def test_warning_text_for_a_detached_head_alone():
    text = warning_text([], {"exec_refs": ["refs/exps/exec/EXEC_HEAD"], "detached": "abc1234",
                             "branch": None})
    assert "HEAD is detached at abc1234" in text and "git switch <your-branch>" in text


# --- end to end: kill a real `dvc exp run` ------------------------------------------------

def _kill_tree(proc: subprocess.Popen, children: set[int]) -> None:
    """SIGKILL the process group of ``proc`` and any descendant seen (Jupyter kernels run in
    their own session, outside the group)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    for pid in children:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    proc.wait(timeout=30)


def _descendants(pid: int) -> set[int]:
    try:
        import psutil

        return {c.pid for c in psutil.Process(pid).children(recursive=True)}
    except Exception:
        return set()


def _dvc(root: Path, *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(BIN / "dvc"), *args], cwd=root, env=ENV, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def _metrics_k(root: Path) -> int:
    return json.loads((root / "reports/metrics.json").read_text(encoding="utf-8"))["clusters"]["k"]


@pytest.mark.pipeline
@pytest.mark.skipif(os.name != "posix", reason="process groups and SIGKILL")
def test_killed_experiment_warning_and_recovery(tmp_path, tiny_region):
    root = make_project(tmp_path / "proj", tiny_region, TINY_PARAMS, git=True)
    k = TINY_PARAMS["clusters"]["k"]
    _dvc(root, "repro", "01_prepare")       # a committed baseline; stage 01 only, for time
    git(root, "add", "-A")
    git(root, "commit", "-qm", f"baseline k={k}")

    # start an experiment and kill it (the whole process group) while stage 02 runs
    log = root.parent / "exp.log"
    sign = "Running stage '02_context_clusters'"
    children: set[int] = set()
    with open(log, "w", encoding="utf-8") as out:
        exp = subprocess.Popen([str(BIN / "dvc"), "exp", "run", "-S", "clusters.k=2"], cwd=root,
                               env=ENV, stdout=out, stderr=subprocess.STDOUT,
                               start_new_session=True)
        try:
            deadline = time.monotonic() + 120
            while sign not in log.read_text(encoding="utf-8"):
                assert exp.poll() is None, f"dvc exp run ended first:\n{log.read_text()}"
                assert time.monotonic() < deadline, f"no {sign!r} in 120 s:\n{log.read_text()}"
                time.sleep(0.1)
            time.sleep(1.0)                   # into the stage's command
            children = _descendants(exp.pid)
        finally:
            _kill_tree(exp, children | _descendants(exp.pid))
    assert exp.returncode == -signal.SIGKILL

    # what it leaves: params.yaml with k=2, staged; HEAD detached; the exec refs
    assert yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8"))["clusters"]["k"] == 2
    assert git(root, "status", "--porcelain", "--", "params.yaml").stdout.startswith("M  ")
    assert git(root, "diff", "--quiet", "--", "params.yaml", check=False).returncode == 0
    assert git(root, "symbolic-ref", "-q", "HEAD", check=False).returncode == 1
    refs = git(root, "for-each-ref", "--format=%(refname)", "refs/exps/").stdout.split()
    assert {"refs/exps/exec/EXEC_BASELINE", "refs/exps/exec/EXEC_MERGE"} <= set(refs)

    # the preflight warns, naming the key, the cause and the recovery; exit code 0
    assert params_drift(root) == [f"clusters.k: {k} → 2", STAGED]
    pre = subprocess.run([sys.executable, "-m", "analysis.pipeline.preflight"], cwd=root, env=ENV,
                         capture_output=True, text=True, timeout=60)
    assert pre.returncode == 0
    assert f"clusters.k: {k} → 2" in pre.stderr and "killed `dvc exp run`" in pre.stderr
    assert "git restore --staged --worktree params.yaml\n  git switch main\n" in pre.stderr

    # the recovery (docs/guide.md "If an experiment was interrupted"), then the committed k again
    git(root, "restore", "--staged", "--worktree", "params.yaml")
    git(root, "switch", "main")
    rerun = _dvc(root, "repro")
    assert "Running stage '02_context_clusters'" in rerun.stdout
    assert _metrics_k(root) == k
    assert git(root, "status", "--porcelain", "--", "params.yaml").stdout == ""
    assert git(root, "symbolic-ref", "HEAD").stdout.strip() == "refs/heads/main"
    assert params_drift(root) == []
    quiet = subprocess.run([sys.executable, "-m", "analysis.pipeline.preflight"], cwd=root, env=ENV,
                           capture_output=True, text=True, timeout=60)
    assert quiet.returncode == 0 and quiet.stderr == ""
