"""One notebook through papermill (the project's kernel) on a tiny region."""

from __future__ import annotations

import ast

import nbformat
import pytest

from analysis.config import stage_parameters
from analysis.pipeline import nbrun

pytestmark = pytest.mark.pipeline


def test_prepare_notebook_runs_with_injected_parameters(tiny_project):
    out = nbrun.run_notebook("01_prepare", root=tiny_project)
    assert out == tiny_project / "data" / "processed" / "notebooks" / "01_prepare.ipynb"
    assert (tiny_project / "data" / "processed" / "school_year.parquet").exists()
    nb = nbformat.read(out, as_version=4)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1
    values = {node.targets[0].id: ast.literal_eval(node.value)
              for node in ast.parse(injected[0].source).body}
    assert values == stage_parameters("01_prepare", tiny_project)
    # scrubbed: no timestamps anywhere
    text = out.read_text(encoding="utf-8")
    assert "start_time" not in text and "iopub" not in text
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    # deterministic: a second run writes the same bytes
    first = out.read_bytes()
    assert nbrun.run_notebook("01_prepare", root=tiny_project).read_bytes() == first


def test_input_error_stops_with_a_message_and_no_traceback(tiny_project, capsys):
    (tiny_project / "data" / "raw" / "results.csv").write_text(
        "year,school_id,procedure,subject,grade,participants\n2025,x,VPR,math,five,3\n",
        encoding="utf-8")
    code = nbrun.main(["01_prepare", "--root", str(tiny_project)])
    err = capsys.readouterr().err
    assert code == 2
    assert "results.csv, row 2, column 'grade': got 'five'; expected a whole number" in err
    assert "Traceback" not in err


def test_kernel_is_this_environment():
    import os
    import sys

    from jupyter_client.kernelspec import KernelSpecManager

    spec = KernelSpecManager().get_kernel_spec(nbrun.ensure_kernel())
    assert os.path.abspath(spec.argv[0]) == os.path.abspath(sys.executable)
