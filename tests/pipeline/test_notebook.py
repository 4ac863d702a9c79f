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
    assert values == {"params": stage_parameters("01_prepare", tiny_project)}
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


# --- the kernel: unix sockets in a private folder, no TCP port, a quiet run -------------------

#: A notebook cell that records, from inside the kernel, how the kernel is connected.
PROBE = """\
import json, os, stat
import psutil
from ipykernel import get_connection_file
cf = get_connection_file()
info = json.load(open(cf))
folder = os.path.dirname(os.path.abspath(info["ip"]))
json.dump({"transport": info["transport"], "ip": info["ip"], "connection_file": cf,
           "mode": stat.S_IMODE(os.stat(folder).st_mode), "folder": folder,
           "inet": [str(c) for c in psutil.Process().net_connections(kind="inet")],
           "sockets": sorted(os.listdir(folder)), "n": params["tiny"]["n"],
           "cmdline": psutil.Process().cmdline(),
           "float_format": getattr(__import__("pandas").get_option("display.float_format"),
                                   "__name__", None)},
          open("probe.json", "w"))
# output of a forked subprocess reaches the notebook (ipykernel's pipe, here a unix socket)
import multiprocessing
child = multiprocessing.get_context("fork").Process(target=print, args=("from a child",))
child.start()
child.join()
"""


def probe_project(root, source: str):
    """A project of one stage, ``probe``, whose notebook runs ``source`` (after its
    parameters cell, ``params``)."""
    (root / "notebooks").mkdir(parents=True)
    (root / "params.yaml").write_text("year: 2025\nlang: en\ntiny:\n  n: 3\n", encoding="utf-8")
    (root / "dvc.yaml").write_text(
        "stages:\n  probe:\n    cmd: python -m analysis.pipeline.nbrun probe\n"
        "    params:\n      - tiny\n", encoding="utf-8")
    params = nbformat.v4.new_code_cell('params = {"tiny": {"n": 1}}')
    params.metadata["tags"] = ["parameters"]
    nb = nbformat.v4.new_notebook(cells=[params, nbformat.v4.new_code_cell(source)])
    nb.metadata["kernelspec"] = {"name": nbrun.KERNEL_NAME, "display_name": "Python",
                                 "language": "python"}
    nbformat.write(nb, root / "notebooks" / "probe.ipynb")
    return root


@pytest.fixture
def probe_root(tmp_path):
    return probe_project(tmp_path / "proj", PROBE)


def test_kernel_runs_over_unix_sockets_in_a_private_folder_opening_no_port(probe_root):
    import json
    import os

    out = nbrun.run_notebook("probe", root=probe_root)
    printed = "".join(o.get("text", "") for o in
                      nbformat.read(out, as_version=4).cells[-1].outputs)
    assert "from a child" in printed                             # through the unix-socket pipe
    probe = json.loads((probe_root / "probe.json").read_text(encoding="utf-8"))
    assert probe["n"] == 3
    cmd = probe["cmdline"]
    assert cmd[cmd.index("-m") + 1] == "analysis.pipeline.kernel"
    assert probe["transport"] == "ipc"
    assert probe["float_format"] == "display_float"              # tables shown rounded
    assert probe["inet"] == []                                   # no TCP (or UDP) socket at all
    folder = probe["folder"]
    assert os.path.isabs(probe["ip"]) and os.path.dirname(probe["connection_file"]) == folder
    assert probe["mode"] & 0o777 == 0o700                         # private to the user
    assert not folder.startswith(str(probe_root.resolve()))      # not in the project
    assert probe["sockets"] and all(len(os.path.join(folder, s)) <= 100
                                    for s in probe["sockets"])   # sun_path: ~107 bytes
    assert not os.path.exists(folder)                             # removed after the run


def test_a_stage_prints_its_time_and_nothing_from_the_kernel(probe_root):
    import re
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "analysis.pipeline.nbrun", "probe"],
                          cwd=probe_root, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "WARNING" not in proc.stdout + proc.stderr and "TCP" not in proc.stdout + proc.stderr
    assert proc.stderr == ""
    assert re.fullmatch(r"probe: \d+\.\d s\n", proc.stdout), proc.stdout


def test_the_kernels_own_log_goes_with_a_failure_not_to_the_terminal(tmp_path, capfd):
    from papermill.exceptions import PapermillExecutionError

    root = probe_project(tmp_path / "proj", (
        "from ipykernel.kernelapp import IPKernelApp\n"
        "IPKernelApp.instance().log.error('the kernel logs this')\n"
        "raise ValueError('boom')\n"))
    with pytest.raises(PapermillExecutionError) as err:
        nbrun.run_notebook("probe", root=root)
    assert "ValueError" in str(err.value)
    assert any("the kernel logs this" in note for note in err.value.__notes__)
    out, errs = capfd.readouterr()
    assert "the kernel logs this" not in out + errs
