"""dvc.yaml's deps follow the stages' imports (analysis.pipeline.deps), and DVC acts on them:
a change of a library file re-runs exactly the stages that can import it."""

from __future__ import annotations

import ast
import copy
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from analysis.config import load_yaml
from analysis.pipeline import deps
from helpers.project import BIN, ENV, ROOT, make_project

STAGES = ("01_prepare", "02_context_clusters", "03_ses_link", "04_flags", "05_report")
SRC = ROOT / "src"
#: Each stage's module, and the ``run_*`` its notebook calls.
STAGE_MODULES = {"01_prepare": "analysis.ingest.stage", "02_context_clusters":
                 "analysis.context.stage", "03_ses_link": "analysis.models.stage",
                 "04_flags": "analysis.flags.stage", "05_report": "analysis.publish.stage"}


def sources(stage: str) -> list[str]:
    dvc = load_yaml(ROOT / "dvc.yaml")
    return deps.stage_sources(stage, dvc["stages"][stage]["cmd"], ROOT)


def test_dvc_yaml_deps_follow_the_imports():
    """If this fails: `make deps`, then commit dvc.yaml."""
    stale = deps.check(ROOT)
    assert not stale, "\n".join(s.message() for s in stale)


def test_a_removed_or_added_dep_is_detected():
    dvc = load_yaml(ROOT / "dvc.yaml")
    broken = copy.deepcopy(dvc)
    entries = broken["stages"]["02_context_clusters"]["deps"]
    entries.remove("src/analysis/ingest/schema.py")
    broken["stages"]["04_flags"]["deps"].append("src/analysis/demo/synth.py")
    stale = {s.stage: s for s in deps.check(ROOT, broken)}
    assert set(stale) == {"02_context_clusters", "04_flags"}
    assert stale["02_context_clusters"].missing == ["src/analysis/ingest/schema.py"]
    assert stale["02_context_clusters"].extra == []
    assert stale["04_flags"].extra == ["src/analysis/demo/synth.py"]
    # the whole-folder deps of the report are checked too
    broken = copy.deepcopy(dvc)
    broken["stages"]["05_report"]["deps"].remove("src/analysis")
    assert [s.missing for s in deps.check(ROOT, broken)] == [["src/analysis"]]


def test_check_names_the_stale_stage_and_write_fixes_it_keeping_the_rest(tmp_path, capsys):
    root = make_project(tmp_path / "proj")
    text = (root / "dvc.yaml").read_text(encoding="utf-8")
    stale = text.replace("      - src/analysis/context/index.py\n", "", 1)  # stage 02's
    stale = stale.replace("      - src/analysis\n", "      - src/analysis/config.py\n", 1)  # 05's
    assert stale.count("\n") == text.count("\n") - 1
    (root / "dvc.yaml").write_text(stale, encoding="utf-8")
    assert deps.main(["--check", "--root", str(root)]) == 1
    err = capsys.readouterr().err
    assert "stage 02_context_clusters" in err and "missing: src/analysis/context/index.py" in err
    assert "stage 05_report" in err and "extra:   src/analysis/config.py" in err
    assert "make deps" in err
    assert deps.main(["--write", "--root", str(root)]) == 0
    # byte for byte what it was: comments (the report's, above src/analysis), order, the
    # folded command and every other key kept
    assert (root / "dvc.yaml").read_text(encoding="utf-8") == text
    assert deps.main(["--check", "--root", str(root)]) == 0


def test_known_edges_of_the_import_graph():
    index = deps.closure(["analysis.context.index"], SRC)
    assert {"analysis.errors", "analysis.ingest.schema", "analysis.ingest",
            "analysis"} <= set(index)
    for stage in STAGES[:-1]:
        files = sources(stage)
        assert "src/analysis/config.py" in files, stage
        assert "src/analysis/__init__.py" in files, stage
        assert "src/analysis/pipeline/nbrun.py" in files, stage
        assert "src/analysis/labels.yaml" in files, stage  # nbrun -> i18n reads it
        module = STAGE_MODULES[stage].replace(".", "/")
        assert f"src/{module}.py" in files, stage
    assert "src/analysis/ingest/schema.py" in sources("02_context_clusters")
    assert "src/analysis/numeric.py" in sources("03_ses_link")  # models/sample.py
    assert "src/analysis/ingest/schema.py" in sources("04_flags")  # through flags/shnor.py
    # the flags receive the expected model's spec: they do not run stage 03's module
    assert "src/analysis/models/expected.py" in sources("04_flags")
    assert "src/analysis/models/link.py" not in sources("04_flags")
    # no stage runs the other stages' modules, the demo generator or the pipeline's drivers
    for stage in STAGES[:-1]:
        own = f"src/{STAGE_MODULES[stage].replace('.', '/')}.py"
        files = sources(stage)
        assert [f for f in files if f.endswith("/stage.py") and f != own] == [], stage
        assert not [f for f in files if f.startswith("src/analysis/demo/")], stage
        for driver in ("flow", "run", "deps", "preflight"):
            assert f"src/analysis/pipeline/{driver}.py" not in files, stage
    report = load_yaml(ROOT / "dvc.yaml")["stages"]["05_report"]["deps"]
    assert "src/analysis" in report and "notebooks" in report


def test_imports_anywhere_relative_and_submodules_by_name():
    code = textwrap.dedent("""
        import os
        from analysis import files
        from analysis.models import sample as sample_mod, students

        def f():
            import analysis.publish.report as rp
            from . import sibling
            from ..context.index import SET_IN
            from .. import ledger

        if TYPE_CHECKING:
            from analysis.flags.stage import FlagsResult
    """)
    names = deps.imported_names(ast.parse(code), "analysis.models.stage")
    assert {"analysis", "analysis.files", "analysis.models", "analysis.models.sample",
            "analysis.models.students", "analysis.publish.report", "analysis.models.sibling",
            "analysis.context.index", "analysis.context.index.SET_IN", "analysis.ledger",
            "analysis.flags.stage"} <= names
    assert "os" not in names
    # in a package's __init__, "." is the package itself
    assert deps.imported_names(ast.parse("from . import stage"), "analysis.flags",
                               is_package=True) == {"analysis.flags", "analysis.flags.stage"}
    # names that are not modules are dropped; packages above a module are kept
    found = deps.closure(["analysis.context.index.SET_IN"], SRC)
    assert "analysis.context.index.SET_IN" not in found
    assert found["analysis.context"] == SRC / "analysis" / "context" / "__init__.py"


def test_every_file_the_library_reads_is_declared_once():
    declared = [f for files in deps.DATA_FILES.values() for f in files]
    assert len(declared) == len(set(declared))
    on_disk = sorted(p.relative_to(ROOT).as_posix() for p in (SRC / "analysis").rglob("*")
                     if p.is_file() and p.suffix not in (".py", ".pyc")
                     and "__pycache__" not in p.parts)
    assert sorted(declared) == on_disk
    for module in deps.DATA_FILES:
        assert deps.module_file(module, SRC) is not None, module


def test_each_stage_module_has_run_and_imports_no_other_stage():
    import importlib

    for name in STAGE_MODULES.values():
        module = importlib.import_module(name)
        assert callable(module.run), name
        reached = deps.closure([name], SRC)
        others = {m for m in reached if m.endswith(".stage") and m != name}
        assert not others, f"{name} imports {others}"
        assert not any(m.startswith("analysis.pipeline") for m in reached), name
    assert not [m for m in deps.closure(["analysis.files"], SRC) if m.endswith(".stage")]


def test_stage_01_imports_no_heavy_library():
    """Stage 01's kernel pays for neither scikit-learn, statsmodels nor matplotlib: every
    module its notebook can import (function-local imports included) is imported here."""
    modules = sorted(deps.closure(deps.notebook_imports(ROOT / "notebooks/01_prepare.ipynb"),
                                  SRC))
    code = ("import importlib, sys\n"
            f"for m in {modules!r}: importlib.import_module(m)\n"
            "print([m for m in ('sklearn', 'statsmodels', 'matplotlib') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=300).stdout
    assert "analysis.ingest.stage" in modules and "analysis.ingest.validate" in modules
    assert out.strip() == "[]"


def changed_code_deps(root: Path) -> set[str]:
    """Stages whose code deps DVC finds modified (data deps and outs of a fresh clone are
    missing: ignored)."""
    proc = subprocess.run([str(BIN / "dvc"), "status", "--json"], cwd=root, env=ENV,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    status = json.loads(proc.stdout or "{}")
    out = set()
    for stage, entries in status.items():
        for entry in entries:
            changed = entry.get("changed deps", {}) if isinstance(entry, dict) else {}
            if any(path.startswith(("src/", "notebooks")) and state == "modified"
                   for path, state in changed.items()):
                out.add(stage)
    return out


@pytest.mark.pipeline
def test_dvc_reruns_exactly_the_stages_that_import_a_changed_file(tmp_path):
    """On a fresh clone of the committed HEAD (dvc.lock must match the committed sources:
    after a source change, `make report` and commit dvc.lock)."""
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, env=ENV, capture_output=True,
                          text=True, check=True).stdout.strip()
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--no-checkout", str(ROOT), str(clone)], env=ENV,
                   check=True, timeout=300)
    subprocess.run(["git", "checkout", "-q", head], cwd=clone, env=ENV, check=True)
    assert changed_code_deps(clone) == set(), "dvc.lock does not match the committed code"

    config = clone / "src/analysis/config.py"
    original = config.read_bytes()
    config.write_bytes(original + b"# an edit\n")
    assert changed_code_deps(clone) == set(STAGES)
    config.write_bytes(original)

    flags = clone / "src/analysis/flags/stage.py"
    flags.write_bytes(flags.read_bytes() + b"# an edit\n")
    assert changed_code_deps(clone) == {"04_flags", "05_report"}
