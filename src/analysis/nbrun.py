"""Run one pipeline notebook with papermill, deterministically, and optionally export HTML.

Usage (from the project root; this is what ``dvc.yaml`` calls)::

    python -m analysis.nbrun 02_context_clusters
    python -m analysis.nbrun 05_report --html reports/2025/report.html

The stage name picks ``notebooks/<stage>.ipynb``.  Its parameters are the ``params.yaml``
sections that ``dvc.yaml`` declares for the stage (:func:`analysis.config.stage_parameters`),
so a notebook sees exactly the parameters DVC tracks for it.  The executed copy goes to
``reports/<year>/notebooks/<stage>.ipynb``, scrubbed of timestamps so that identical
inputs give identical bytes.  The kernel is the project's own environment (the
``school-context`` kernel spec, pointing at this Python; installed on first use).

An :class:`analysis.errors.InputError` raised in a notebook ends the run with its message
and exit code 2, without a traceback (``--traceback`` shows it).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import nbformat

from .config import load_yaml, stage_parameters
from .i18n import t

KERNEL_NAME = "school-context"
TEMPLATES = Path(__file__).parent / "templates"
#: Per-cell and per-notebook metadata that records when, not what; removed for determinism.
VOLATILE = ("start_time", "end_time", "duration")


def ensure_kernel(name: str = KERNEL_NAME) -> str:
    """Make sure kernel spec ``name`` runs this interpreter; install it into sys.prefix if not."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec(name)
        if os.path.abspath(spec.argv[0]) == os.path.abspath(sys.executable):
            return name
    except NoSuchKernel:
        pass
    from ipykernel.kernelspec import install

    install(kernel_name=name, display_name=f"Python ({name})", prefix=sys.prefix)
    spec = KernelSpecManager().get_kernel_spec(name)
    if os.path.abspath(spec.argv[0]) != os.path.abspath(sys.executable):
        raise RuntimeError(
            f"kernel spec '{name}' at {spec.resource_dir} runs {spec.argv[0]}, not this "
            f"environment's {sys.executable}; remove it (jupyter kernelspec remove {name})"
        )
    return name


def scrub(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Drop timing metadata and random ids (papermill, nbclient): re-runs are byte-identical."""
    pm = nb.metadata.get("papermill", {})
    for key in (*VOLATILE, "environment_variables", "input_path", "output_path"):
        pm.pop(key, None)
    for cell in nb.cells:
        if "injected-parameters" in cell.metadata.get("tags", []):
            cell["id"] = "injected-parameters"  # papermill gives it a random id
        cell.metadata.pop("execution", None)
        for key in VOLATILE:
            cell.metadata.get("papermill", {}).pop(key, None)
    return nb


def executed_path(stage: str, year: Any, root: Path) -> Path:
    return root / "reports" / str(year) / "notebooks" / f"{stage}.ipynb"


def run_notebook(stage: str, *, root: str | Path = ".", output: str | Path | None = None,
                 parameters: dict[str, Any] | None = None,
                 cwd: str | Path | None = None) -> Path:
    """Execute ``notebooks/<stage>.ipynb`` with its stage parameters; return the output path.

    ``parameters`` overrides the values from params.yaml (tests and
    :mod:`analysis.run` use it); ``cwd`` is the folder the notebook runs in, where it reads
    and writes ``data/processed`` (default: ``root``).
    """
    import papermill as pm

    root = Path(root).resolve()
    params = stage_parameters(stage, root)
    params.update(parameters or {})
    year = params.get("year", load_yaml(root / "params.yaml").get("year"))
    out = Path(output) if output else executed_path(stage, year, root)
    out.parent.mkdir(parents=True, exist_ok=True)
    pm.execute_notebook(
        str(root / "notebooks" / f"{stage}.ipynb"), str(out), parameters=params,
        kernel_name=ensure_kernel(), cwd=str(cwd or root), progress_bar=False,
        log_output=False, request_save_on_cell_execute=False,
    )
    nb = scrub(nbformat.read(out, as_version=4))
    nbformat.write(nb, out)
    return out


def export_html(notebook: str | Path, html: str | Path, *, lang: str = "ru") -> Path:
    """Render an executed notebook to one self-contained HTML file, without code.

    Uses the ``report`` template (``templates/report``): JupyterLab's look, with every
    external script (MathJax, require.js, mermaid, widgets) removed, so the page opens
    offline.  Cells tagged ``remove`` are dropped.
    """
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor

    nb = nbformat.read(notebook, as_version=4)
    nb.metadata["title"] = t("report.title", lang)
    exporter = HTMLExporter(
        template_name="report", extra_template_basedirs=[str(TEMPLATES)],
        exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True,
        embed_images=True, language_code=lang,
    )
    exporter.register_preprocessor(
        TagRemovePreprocessor(remove_cell_tags={"remove", "parameters", "injected-parameters"}),
        enabled=True,
    )
    body, _ = exporter.from_notebook_node(nb)
    html = Path(html)
    html.parent.mkdir(parents=True, exist_ok=True)
    html.write_text(body, encoding="utf-8")
    return html


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.nbrun", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stage", help="stage name, e.g. 02_context_clusters")
    parser.add_argument("--html", help="also render the executed notebook to this HTML file")
    parser.add_argument("--root", default=".", help="project root (default: current folder)")
    parser.add_argument("--traceback", action="store_true",
                        help="show the Python traceback of a failure")
    args = parser.parse_args(argv)
    os.environ.setdefault("JUPYTER_PLATFORM_DIRS", "1")
    try:
        out = run_notebook(args.stage, root=args.root)
        if args.html:
            lang = stage_parameters(args.stage, args.root).get("lang", "ru")
            export_html(out, args.html, lang=lang)
    except Exception as exc:  # noqa: BLE001 -- turned into a human message below
        if args.traceback:
            raise
        return report_failure(args.stage, exc)
    return 0


def report_failure(stage: str, exc: Exception) -> int:
    """Print a short, human message for a failed stage; return the exit code (2 = bad input)."""
    from papermill.exceptions import PapermillExecutionError

    from .errors import InputError

    if isinstance(exc, PapermillExecutionError):
        if exc.ename == "InputError":
            print(exc.evalue, file=sys.stderr)
            return 2
        print(f"Stage {stage} failed in cell {exc.exec_count}: {exc.ename}: {exc.evalue}\n"
              f"The executed notebook shows where; re-run with --traceback for details.",
              file=sys.stderr)
        return 1
    if isinstance(exc, InputError):
        print(str(exc), file=sys.stderr)
        return 2
    print(f"Stage {stage} failed: {type(exc).__name__}: {exc}\n"
          "Re-run with --traceback for details.", file=sys.stderr)
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
