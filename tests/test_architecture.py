"""The house rules of the code (#21), read from the source with ``ast``, never by importing it.

- **Imports only point down** the layers of docs/architecture.md: shared helpers (layer 0),
  then the stages' subpackages in pipeline order, then the demo and the orchestration.
- **No cycle** between modules, function-local imports included: a local import that only
  hides a cycle still is one.
- **No room over 800 lines**: source, tests and benchmarks.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
#: The layers, bottom up (docs/architecture.md).  A module may import its own layer or a
#: lower one.  Modules directly under ``analysis`` (errors, config, outputs, ...) are layer 0.
LAYERS = ("ingest", "context", "models", "flags", "publish", "demo", "pipeline")
MAX_LINES = 800


def modules(src: Path = SRC) -> dict[str, Path]:
    """Every module of the ``analysis`` package by dotted name (packages by their name)."""
    out = {}
    for path in sorted((src / "analysis").rglob("*.py")):
        name = ".".join(path.relative_to(src).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = path
    return out


def imported(path: Path, known: dict[str, Path]) -> list[tuple[str, int]]:
    """``analysis`` modules imported anywhere in ``path`` (module level or inside a
    function), with the line: ``from analysis.x import y`` is ``analysis.x.y`` when that is
    a module, else ``analysis.x``."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names if a.name.startswith("analysis")]
        elif (isinstance(node, ast.ImportFrom) and node.level == 0 and node.module
              and node.module.split(".")[0] == "analysis"):
            for a in node.names:
                full = f"{node.module}.{a.name}"
                out.append((full if full in known else node.module, node.lineno))
    return out


def layer(module: str) -> int:
    parts = module.split(".")
    return LAYERS.index(parts[1]) + 1 if len(parts) > 1 and parts[1] in LAYERS else 0


def graph(known: dict[str, Path]) -> dict[str, set[str]]:
    return {m: {t for t, _ in imported(p, known) if t in known and t != m}
            for m, p in known.items()}


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(g[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return found


def upward(known: dict[str, Path], src: Path = SRC) -> list[str]:
    return [f"{p.relative_to(src).as_posix()}:{line} imports {t} "
            f"(layer {layer(t)} > {layer(m)})"
            for m, p in known.items() for t, line in imported(p, known) if layer(t) > layer(m)]


def test_imports_only_point_down_the_layers():
    assert upward(modules()) == []


def test_no_import_cycle_even_through_function_local_imports():
    assert cycles(graph(modules())) == []


def test_the_checks_can_fail(tmp_path):
    """A made-up package with an upward import and a cycle hidden in a function."""
    files = {"analysis/__init__.py": "", "analysis/ingest/__init__.py": "",
             "analysis/flags/__init__.py": "",
             "analysis/ingest/a.py": "from analysis.flags import b\n",
             "analysis/flags/b.py": "def f():\n    from analysis.flags import c\n",
             "analysis/flags/c.py": "from analysis.flags.b import f\n"}
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    known = modules(tmp_path)
    assert cycles(graph(known)) == [["analysis.flags.b", "analysis.flags.c"]]
    assert upward(known, tmp_path) == [
        "analysis/ingest/a.py:1 imports analysis.flags.b (layer 4 > 1)"]


@pytest.mark.parametrize("folder", ["src", "tests", "benchmarks"])
def test_no_file_over_800_lines(folder):
    long = {str(p.relative_to(ROOT)): n for p in sorted((ROOT / folder).rglob("*.py"))
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}
