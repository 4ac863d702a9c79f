"""Each stage's DVC deps on the library, computed from its imports.

Usage (what ``make deps`` calls; from the project root)::

    python -m analysis.pipeline.deps --check   # exit 1 naming each stale stage and file
    python -m analysis.pipeline.deps --write   # rewrite the deps: lists of dvc.yaml

A stage runs its notebook through the module of its command (``python -m
analysis.pipeline.nbrun <stage>``).  The Python files it can execute are the transitive
closure of the ``analysis.*`` imports of (a) the code cells of ``notebooks/<stage>.ipynb``
and (b) that command's module: every ``import`` and ``from ... import`` anywhere in a
module (module-level, inside functions, under ``if TYPE_CHECKING:``: a superset of what
runs, never less), ``from analysis.x import y`` counting ``analysis.x.y`` when it is a
module, relative imports resolved, and the ``__init__.py`` of every package on the way.
To those files come the non-Python files the modules read (:data:`DATA_FILES`, the one
place they are declared).

The deps of a stage in ``dvc.yaml`` are then its notebook, its data inputs (the entries
that are not under ``notebooks`` or ``src/``, kept as written) and those source files,
sorted, each file on its own (not directories), so that DVC re-runs a stage when code it
can run changes, and not for other code: editing ``analysis/config.py`` re-runs every
stage, editing ``analysis/flags/stage.py`` only stage 04 and the report.
"""

from __future__ import annotations

import argparse
import ast
import io
import json
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from analysis.config import load_yaml
from analysis.outputs import write_text

#: The package whose modules are followed (everything else is a third-party library).
PACKAGE = "analysis"
#: Where the package lives, relative to the project root.
SRC = Path("src")
#: The non-Python files each module reads (relative to the project root): the one place
#: they are declared.  ``tests/pipeline/test_deps.py`` checks that every non-Python file of
#: ``src/analysis`` is named here.
DATA_FILES: dict[str, tuple[str, ...]] = {
    # the one Russian/English catalogue of strings (resources.files("analysis"))
    "analysis.i18n": ("src/analysis/labels.yaml",),
    # nbconvert's report template (TEMPLATES, export_html)
    "analysis.pipeline.nbrun": ("src/analysis/publish/templates/report/conf.json",
                                "src/analysis/publish/templates/report/index.html.j2"),
}
#: Stages that depend on whole folders instead of their import closure.  The report states
#: the code version it was built from -- the git trees of ``src/analysis`` and ``notebooks``
#: (:func:`analysis.publish.provenance.code_version`) -- so any change to either folder,
#: imported by the report or not, must re-run it, or the published report would name a
#: version it was not built from.  Values: (notebook entry, source entries).
WHOLE_FOLDERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "05_report": ("notebooks", ("src/analysis",)),
}
#: Where a stage's command names its module.
COMMAND_MODULE = re.compile(r"\bpython\S*\s+-m\s+([\w.]+)")


# --- the import graph -------------------------------------------------------------------------

def module_file(name: str, src: Path) -> Path | None:
    """The file of module ``name`` under ``src`` (a package's ``__init__.py``), or ``None``
    when ``name`` is not a module there (e.g. a function imported by name)."""
    base = src.joinpath(*name.split("."))
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    return None


def imported_names(tree: ast.AST, module: str = "", is_package: bool = False) -> set[str]:
    """Every dotted name an ``import`` anywhere in ``tree`` may bring in, in ``PACKAGE``.

    Parameters
    ----------
    tree : ast.AST
        A parsed module or notebook cell.
    module : str
        The dotted name of the module parsed (for relative imports); ``""`` for a notebook.
    is_package : bool
        Whether ``module`` is a package's ``__init__.py`` (relative imports start there).

    Returns
    -------
    set of str
        ``import a.b`` gives ``a.b``; ``from a.b import c, d`` gives ``a.b``, ``a.b.c`` and
        ``a.b.d`` (the last two count only if they are modules: see :func:`closure`).
    """
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = module.split(".") if is_package else module.split(".")[:-1]
                parts = package[:len(package) - (node.level - 1)]
                base = ".".join(parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
    return {n for n in names if n == PACKAGE or n.startswith(PACKAGE + ".")}


def _parents(name: str) -> list[str]:
    """``a.b.c`` -> ``[a, a.b, a.b.c]``: importing a module runs every package above it."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def closure(start: Iterable[str], src: Path) -> dict[str, Path]:
    """The modules (name -> file) that importing ``start`` can execute, transitively.

    Names that are not modules under ``src`` (functions, classes imported by name, or
    modules of other packages) are dropped.
    """
    found: dict[str, Path] = {}
    todo = [p for name in start for p in _parents(name)]
    while todo:
        name = todo.pop()
        if name in found:
            continue
        path = module_file(name, src)
        if path is None:
            continue
        found[name] = path
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for new in imported_names(tree, name, path.name == "__init__.py"):
            todo.extend(p for p in _parents(new) if p not in found)
    return found


def notebook_imports(path: Path) -> set[str]:
    """The ``analysis.*`` names the code cells of a notebook import."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        source = "".join(cell.get("source", []))
        # IPython magics and shell lines are not Python: commented out before parsing
        source = re.sub(r"(?m)^(\s*)([%!])", r"\1#\2", source)
        names |= imported_names(ast.parse(source, filename=f"{path}"))
    return names


# --- the stages -------------------------------------------------------------------------------

def load_dvc(root: Path) -> dict[str, Any]:
    """``dvc.yaml`` as plain data (the round-trip copy is only needed to write it)."""
    return load_yaml(root / "dvc.yaml")


def command_module(stage: str, cmd: str | Sequence[str]) -> str:
    """The module a stage's command runs (``python -m <module> ...``)."""
    text = cmd if isinstance(cmd, str) else " ".join(cmd)
    match = COMMAND_MODULE.search(text)
    if match is None:
        raise ValueError(f"dvc.yaml: stage '{stage}' does not run `python -m <module>`: {text}")
    return match.group(1)


def notebook(stage: str) -> str:
    """The stage's notebook (:mod:`analysis.pipeline.nbrun`'s convention)."""
    return f"notebooks/{stage}.ipynb"


def stage_sources(stage: str, cmd: str | Sequence[str], root: Path) -> list[str]:
    """The source files a stage can execute or read, sorted (paths from the project root).

    Parameters
    ----------
    stage : str
        The stage's name in ``dvc.yaml`` (its notebook is ``notebooks/<stage>.ipynb``).
    cmd : str or sequence of str
        The stage's command (its module is followed too).
    root : Path
        The project root.
    """
    start = notebook_imports(root / notebook(stage)) | {command_module(stage, cmd)}
    modules = closure(start, root / SRC)
    files = {p.relative_to(root).as_posix() for p in modules.values()}
    files.update(f for name in modules for f in DATA_FILES.get(name, ()))
    return sorted(files)


def is_code(entry: str) -> bool:
    """Whether a dep is a notebook or library source (computed here), not a data input."""
    return entry.split("/")[0] in ("notebooks", "src")


def expected_deps(stage: str, spec: Mapping[str, Any], root: Path) -> list[str]:
    """What the ``deps:`` of ``stage`` should be: its notebook, its data inputs as written,
    then its sources (:func:`stage_sources`, or the folders of :data:`WHOLE_FOLDERS`)."""
    data = [d for d in spec.get("deps", []) if not is_code(str(d))]
    if stage in WHOLE_FOLDERS:
        nb, sources = WHOLE_FOLDERS[stage][0], list(WHOLE_FOLDERS[stage][1])
    else:
        nb, sources = notebook(stage), stage_sources(stage, spec["cmd"], root)
    return [nb, *data, *sources]


@dataclass
class Stale:
    """A stage whose ``deps:`` differ from the computed ones."""

    stage: str
    missing: list[str]
    extra: list[str]
    expected: list[str]

    def message(self) -> str:
        lines = [f"dvc.yaml: the deps of stage {self.stage} do not follow its imports"]
        lines += [f"  missing: {f}" for f in self.missing]
        lines += [f"  extra:   {f}" for f in self.extra]
        if not self.missing and not self.extra:
            lines.append("  (same files in another order)")
        return "\n".join(lines)


def check(root: str | Path = ".", dvc: Mapping[str, Any] | None = None) -> list[Stale]:
    """The stages of ``dvc.yaml`` (or of ``dvc``, a parsed copy) whose deps are stale."""
    root = Path(root)
    dvc = load_dvc(root) if dvc is None else dvc
    out = []
    for stage, spec in dvc["stages"].items():
        current = [str(d) for d in spec.get("deps", [])]
        expected = expected_deps(stage, spec, root)
        if current != expected:
            out.append(Stale(stage, [f for f in expected if f not in current],
                             [f for f in current if f not in expected], expected))
    return out


def write(root: str | Path = ".") -> list[Stale]:
    """Rewrite the stale ``deps:`` lists of ``dvc.yaml`` in place; return what changed.

    ruamel.yaml's round trip keeps comments, order, quoting and the folded commands; a
    comment attached to an entry stays with that entry.
    """
    from ruamel.yaml import YAML

    root = Path(root)
    path = root / "dvc.yaml"
    stale = check(root)
    if not stale:
        return []
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096
    doc = yaml.load(path.read_text(encoding="utf-8"))
    for s in stale:
        seq = doc["stages"][s.stage]["deps"]
        old = [str(d) for d in seq]
        comments = {old[i]: c for i, c in seq.ca.items.items() if i < len(old)}
        seq.ca.items.clear()
        del seq[:]
        seq.extend(s.expected)
        for i, entry in enumerate(s.expected):
            if entry in comments:
                seq.ca.items[i] = comments.pop(entry)
        # what followed the old last entry (a blank line, a comment) follows the new one
        if old and old[-1] in comments and len(seq) - 1 not in seq.ca.items:
            seq.ca.items[len(seq) - 1] = comments.pop(old[-1])
    buf = io.StringIO()
    yaml.dump(doc, buf)
    write_text(path, buf.getvalue())
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.pipeline.deps", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true",
                      help="exit 1 naming each stage whose deps are stale")
    mode.add_argument("--write", action="store_true", help="rewrite the deps of dvc.yaml")
    parser.add_argument("--root", default=".", help="project root (default: current folder)")
    args = parser.parse_args(argv)
    if args.check:
        stale = check(args.root)
        for s in stale:
            print(s.message(), file=sys.stderr)
        if stale:
            print("Run `make deps` (python -m analysis.pipeline.deps --write).", file=sys.stderr)
            return 1
        print("dvc.yaml: every stage's deps follow its imports.")
        return 0
    changed = write(args.root)
    for s in changed:
        print(f"dvc.yaml: rewrote the deps of {s.stage} (+{len(s.missing)}, -{len(s.extra)})")
    if not changed:
        print("dvc.yaml: every stage's deps follow its imports (unchanged).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
