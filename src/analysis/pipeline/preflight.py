"""Before ``dvc repro``: warn when ``params.yaml`` is not the committed one.

``dvc repro`` builds whatever ``params.yaml`` holds in the working folder.  That is
often not what the analyst believes is there:

- ``dvc exp run -S clusters.k=4`` writes ``k: 4`` into ``params.yaml`` and leaves it
  there, whether the experiment finished (the results are "applied to your workspace")
  or was stopped with Ctrl-C;
- an experiment that was *killed* (SIGKILL, SIGTERM, a closed terminal or SSH session,
  a CI timeout) also leaves the change **staged** in git (so ``git diff`` shows nothing),
  HEAD **detached** at the commit the experiment started from, and the refs
  ``refs/exps/exec/EXEC_BASELINE`` and ``EXEC_MERGE`` behind.

Either way the next ``dvc repro`` silently builds the experiment's parameters.  This
module compares the working ``params.yaml`` with ``git show HEAD:params.yaml`` (parsed,
so DVC's reformatting such as ``null`` written as an empty value is not a difference) and
``python -m analysis.pipeline.preflight`` prints a warning with the recovery commands; ``make
report`` calls it before ``dvc repro``.  It never stops the run: the exit code is 0.

Recovery after an interrupted ``dvc exp run`` (checked with DVC 3.67)::

    git restore --staged --worktree params.yaml   # the committed parameters again
    git switch main                               # re-attach HEAD (your branch's name)
    dvc repro                                     # rebuilds what the experiment touched

DVC needs nothing more: the stale entries in ``.dvc/tmp/rwlock`` are removed by the next
``dvc`` command (with a warning naming the killed process), and the next ``dvc exp run``
replaces the ``refs/exps/exec/*`` refs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from analysis.vcs import git

PARAMS = "params.yaml"
#: Refs a workspace ``dvc exp run`` sets while it runs and removes when it ends normally
#: (``EXEC_HEAD`` stays after a normal run, so it is no sign of an interruption).
EXEC_REFS = ("refs/exps/exec/EXEC_BASELINE", "refs/exps/exec/EXEC_MERGE")
#: Where DVC records the process of the experiment running in the workspace.
WORKSPACE_PROC = Path(".dvc/tmp/exps/run/workspace/workspace.json")
#: The line ``params_drift`` adds when the index holds an uncommitted params.yaml.
STAGED = f"{PARAMS}: changed and staged (git add) but not committed"
_ABSENT = object()


def _leaves(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested mappings as ``{"section.key": value}``; lists and scalars are leaves."""
    if isinstance(value, Mapping) and (value or not prefix):
        out: dict[str, Any] = {}
        for key, sub in value.items():
            out.update(_leaves(sub, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def _same(a: Any, b: Any) -> bool:
    """Equal values of the same kind (``1`` is not ``true``, ``2`` is not ``2.0``)."""
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def _show(value: Any) -> str:
    if value is _ABSENT:
        return "(absent)"
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return repr(value)


def params_drift(root: str | Path = ".") -> list[str]:
    """How the working ``params.yaml`` in ``root`` differs from the committed one.

    Returns one line per changed parameter, ``"section.key: committed → current"`` (nested
    keys dotted, top-level keys bare, values as JSON, ``(absent)`` for an added or removed
    key), in the committed file's key order with added keys last; plus the line
    ``"params.yaml: changed and staged (git add) but not committed"`` when the index holds
    a version of ``params.yaml`` other than HEAD's (what a killed ``dvc exp run`` leaves).
    Values are compared after parsing, so formatting and comments do not count.

    Returns ``[]`` when the files agree, and also, silently, when git is not installed,
    ``root`` is not in a git work tree, or ``params.yaml`` is not committed there.
    """
    root = Path(root)
    committed_text = git(root, "show", f"HEAD:./{PARAMS}")
    if committed_text is None or committed_text.returncode != 0:
        return []
    try:
        committed = yaml.safe_load(committed_text.stdout)
    except yaml.YAMLError:
        return []
    path = root / PARAMS
    lines: list[str] = []
    if not path.is_file():
        lines.append(f"{PARAMS}: the committed file is missing from the working folder")
    else:
        try:
            current = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
            lines.append(f"{PARAMS}: cannot be read as YAML ({type(err).__name__})")
        else:
            before, after = _leaves(committed or {}), _leaves(current or {})
            for key in [*before, *(k for k in after if k not in before)]:
                old, new = before.get(key, _ABSENT), after.get(key, _ABSENT)
                if old is _ABSENT or new is _ABSENT or not _same(old, new):
                    lines.append(f"{key}: {_show(old)} → {_show(new)}")
    staged = git(root, "diff", "--cached", "--quiet", "HEAD", "--", PARAMS)
    if staged is not None and staged.returncode == 1:
        lines.append(STAGED)
    return lines


def _is_dvc_process(pid: int) -> bool:
    """Whether ``pid`` is a live ``dvc`` process (a pid DVC recorded may since have been
    reused by an unrelated process)."""
    try:
        import psutil  # a dependency of DVC

        return any(Path(part).name in ("dvc", "dvc.exe") for part in psutil.Process(pid).cmdline())
    except ImportError:
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True
    except Exception:  # NoSuchProcess, AccessDenied, ZombieProcess
        return False


def experiment_state(root: str | Path = ".") -> dict[str, Any]:
    """Signs in ``root`` of a ``dvc exp run`` that is running or was interrupted.

    Keys: ``running_pid`` (the live dvc process of a workspace experiment, or None),
    ``exec_refs`` (the ``refs/exps/exec/*`` refs present; ``EXEC_BASELINE`` or
    ``EXEC_MERGE`` among them means an experiment did not end normally), ``detached``
    (the commit HEAD is detached at, or None) and ``branch`` (the branch HEAD was last
    switched away from, per the reflog, or None).  Empty values when git is unavailable.
    """
    root = Path(root)
    state: dict[str, Any] = {"running_pid": None, "exec_refs": [], "detached": None,
                             "branch": None}
    proc_file = root / WORKSPACE_PROC
    if proc_file.is_file():
        try:
            pid = int(json.loads(proc_file.read_text(encoding="utf-8"))["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            pid = 0
        if pid > 0 and pid != os.getpid() and _is_dvc_process(pid):
            state["running_pid"] = pid
    refs = git(root, "for-each-ref", "--format=%(refname)", "refs/exps/exec/")
    if refs is None or refs.returncode != 0:
        return state
    state["exec_refs"] = refs.stdout.split()
    symbolic = git(root, "symbolic-ref", "-q", "HEAD")
    if symbolic is not None and symbolic.returncode == 1:
        head = git(root, "rev-parse", "--short", "HEAD")
        state["detached"] = head.stdout.strip() if head and head.returncode == 0 else "?"
        log = git(root, "reflog", "-n", "50", "--format=%gs", "HEAD")
        for line in (log.stdout.splitlines() if log and log.returncode == 0 else []):
            m = re.match(r"checkout: moving from (\S+) to ", line)
            if m and not re.fullmatch(r"[0-9a-f]{7,64}", m.group(1)):
                state["branch"] = m.group(1)
                break
    return state


def warning_text(drift: Sequence[str], state: Mapping[str, Any]) -> str:
    """The warning ``main`` prints for ``params_drift`` lines and ``experiment_state``."""
    if state.get("running_pid"):
        return (f"WARNING: an experiment (`dvc exp run`, process {state['running_pid']}) is "
                f"running in this folder; wait for it to finish before `dvc repro`.\n")
    refs = state.get("exec_refs") or []
    detached = state.get("detached") if refs else None
    if not drift and not detached:
        return ""
    out = []
    if drift:
        out.append("WARNING: params.yaml differs from the committed one (git HEAD); "
                   "`dvc repro` will build with these values:")
        out += [f"  {line}" for line in drift]
    else:
        out.append("WARNING: git HEAD is detached (not on a branch).")
    if any(r in EXEC_REFS for r in refs) or STAGED in drift:
        out.append("This looks like what a killed `dvc exp run` leaves behind"
                   + (f" (HEAD detached at {detached})." if detached else ".")
                   + " To go back to the committed state:")
    elif detached:
        out.append(f"HEAD is detached at {detached}, as a killed `dvc exp run` leaves it. "
                   "To go back:")
    else:
        out.append("If you did not mean them (`dvc exp run -S ...` leaves its values in "
                   "params.yaml when it finishes or is stopped with Ctrl-C), go back to the "
                   "committed ones:")
    if drift:
        out.append("  git restore --staged --worktree params.yaml")
    switch = f"git switch {state.get('branch') or '<your-branch>'}"
    if detached:
        out.append(f"  {switch}")
    if drift:
        out.append("  dvc repro")
        out.append("If you meant them, commit params.yaml"
                   + (f" (after `{switch}`)." if detached else "."))
    out.append("(A warning only: the run continues.)")
    return "\n".join(out) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m analysis.pipeline.preflight [--root DIR]``: print the warning, if any; exit 0."""
    parser = argparse.ArgumentParser(prog="python -m analysis.pipeline.preflight",
                                     description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--root", default=".", help="project folder (default: .)")
    args = parser.parse_args(argv)
    try:
        text = warning_text(params_drift(args.root), experiment_state(args.root))
    except Exception as err:  # a warning tool must never stop the run
        text = f"analysis.pipeline.preflight: could not compare params.yaml with git ({err})\n"
    sys.stderr.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
