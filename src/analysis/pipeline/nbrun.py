"""Run a pipeline stage's notebook with papermill, deterministically; publish the report.

Usage (from the project root; this is what ``dvc.yaml`` calls)::

    python -m analysis.pipeline.nbrun 02_context_clusters --report-dir reports/2025
    python -m analysis.pipeline.nbrun 05_report --report-dir reports/2025 --publish \\
        --metrics reports/metrics.json

The stage name picks ``notebooks/<stage>.ipynb``.  It receives one variable, ``params``: the
``params.yaml`` keys that ``dvc.yaml`` declares for the stage, in params.yaml's shape
(:func:`analysis.config.stage_parameters`), so a notebook sees exactly the parameters DVC
tracks for it.  The executed copy goes to
``data/processed/notebooks/<stage>.ipynb``, scrubbed of timestamps so that identical
inputs give identical bytes.  The kernel is the project's own environment (the
``school-context`` kernel spec, pointing at this Python; installed on first use), with
BLAS/OpenMP thread counts fixed (:func:`fix_threads`).  It talks to this process over unix
sockets in a private temporary folder made for the run and removed after it, and opens no TCP
port (:mod:`analysis.pipeline.kernel`).  The kernel's own log goes to a file there (attached
to the error when the run fails), so a stage prints one line, its name and time
(``01_prepare: 4.2 s``), and nothing from the kernel.

The last stage (``--publish``) assembles the report folder -- HTML, executed notebooks,
validation page, metrics -- and replaces ``--report-dir`` whole (:mod:`analysis.publish.folders`).
A failing stage leaves the report folder untouched, writes its note to
``reports/failed/<name>/`` and exits with a short message, no traceback (``--traceback``
shows it): code 2 when the data cannot be used or cannot support an estimate
(:class:`analysis.errors.InputError`), 75 when another run holds the report folder, 1
otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

# nbformat validates with jsonschema, which imports ``rfc3987_syntax`` when it is installed
# (jupyter-events asks for it) and compiles a Lark grammar for the "iri" formats: about 1 s
# in every process, more than nbformat and papermill together.  No notebook field has an IRI
# format, so the pipeline's processes go without it (jsonschema skips that check when the
# import fails).  docs/benchmarks.md has the measurement.
sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]

import nbformat  # noqa: E402 -- after the line above

from analysis.config import PROCESSED, load_yaml, merge, stage_parameters  # noqa: E402
from analysis.i18n import t  # noqa: E402
from analysis.outputs import OutputError, copy_file, round_text, write_text  # noqa: E402
from analysis.publish import folders  # noqa: E402

KERNEL_NAME = "school-context"
#: Run in a stage's kernel when it starts: pandas shows floats rounded like written ones
#: (:func:`analysis.outputs.use_rounded_display`), so a table's text does not depend on the
#: last bits of its numbers.
KERNEL_SETUP = ["from analysis.outputs import use_rounded_display as _rounded",
                "_rounded()", "del _rounded"]
TEMPLATES = Path(__file__).resolve().parents[1] / "publish" / "templates"
#: Per-cell and per-notebook metadata that records when, not what; removed for determinism.
VOLATILE = ("start_time", "end_time", "duration")
#: Thread-count variables of BLAS and OpenMP builds, fixed for same bytes on any machine.
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
               "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


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


#: Output types whose text is shown as it was printed (numbers rounded by :func:`scrub`).
TEXT_OUTPUTS = ("text/plain", "text/html", "text/markdown", "text/latex")


def scrub(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Drop timing metadata and random ids (papermill, nbclient), and round the numbers the
    cells printed (:func:`analysis.outputs.round_text`): re-runs are byte-identical, on this
    machine and on any other."""
    pm = nb.metadata.get("papermill", {})
    for key in (*VOLATILE, "environment_variables", "input_path", "output_path"):
        pm.pop(key, None)
    for cell in nb.cells:
        if "injected-parameters" in cell.metadata.get("tags", []):
            cell["id"] = "injected-parameters"  # papermill gives it a random id
        cell.metadata.pop("execution", None)
        for out in cell.get("outputs", []):
            if "text" in out:
                out["text"] = _round_lines(out["text"])
            for mime in TEXT_OUTPUTS:
                if mime in out.get("data", {}):
                    out["data"][mime] = _round_lines(out["data"][mime])
        for key in VOLATILE:
            cell.metadata.get("papermill", {}).pop(key, None)
    return nb


def _round_lines(text: str | list[str]) -> str | list[str]:
    return [round_text(t) for t in text] if isinstance(text, list) else round_text(text)


def executed_path(stage: str, root: str | Path = ".") -> Path:
    """Where a stage keeps its executed notebook: ``data/processed/notebooks/<stage>.ipynb``.

    The published copies are assembled from these by :func:`publish_report`.
    """
    return Path(root) / PROCESSED / "notebooks" / f"{stage}.ipynb"


def running_path(output: Path) -> Path:
    """Temporary name of a notebook while papermill executes it (beside ``output``)."""
    return output.with_name(f".{output.stem}.running-{os.getpid()}{output.suffix}")


def fix_threads(n: int = 1) -> None:
    """BLAS/OpenMP thread counts of this process and of the kernels it starts: ``n`` unless
    the environment sets a count.

    One thread is fastest for the regional matrices and keeps the work on the machine's
    other core for the next stage; a count the user set is respected.  Outputs do not
    depend on it: every float is rounded far above the noise a different order of
    additions makes (:mod:`analysis.outputs`; ``.ci/reproducible`` runs with 4 threads).
    Set before a kernel starts (kernels inherit the environment).
    """
    for var in THREAD_VARS:
        os.environ.setdefault(var, str(n))


def run_notebook(stage: str, *, root: str | Path = ".", output: str | Path | None = None,
                 parameters: dict[str, Any] | None = None,
                 cwd: str | Path | None = None) -> Path:
    """Execute ``notebooks/<stage>.ipynb`` with its stage parameters; return the output path.

    The notebook receives one variable, ``params``: the params.yaml keys dvc.yaml declares
    for the stage, in params.yaml's shape.  ``parameters`` (the same shape) overrides them,
    section by section (:func:`analysis.config.merge`; tests and :mod:`analysis.pipeline.run`
    use it); ``cwd`` is the folder the notebook runs in, where it reads and writes
    ``data/processed`` (default: ``root``).  The executed copy (default
    :func:`executed_path` under ``cwd``) is written only when the notebook ran to the end;
    while it runs it lives at :func:`running_path`, where a failed run leaves it.
    """
    import papermill as pm

    from analysis.pipeline import kernel

    root = Path(root).resolve()
    cwd = Path(cwd).resolve() if cwd else root
    params = merge(stage_parameters(stage, root), parameters or {})
    out = Path(output) if output else executed_path(stage, cwd)
    running = running_path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError("create the folder", out.parent, exc) from exc
    fix_threads()
    with kernel.private_folder() as folder:
        log = folder / "kernel.log"
        try:
            pm.execute_notebook(
                str(root / "notebooks" / f"{stage}.ipynb"), str(running),
                parameters={"params": params},
                kernel_name=ensure_kernel(), cwd=str(cwd), progress_bar=False,
                log_output=False, request_save_on_cell_execute=False,
                # over unix sockets in `folder`, no TCP port (analysis.pipeline.kernel)
                kernel_manager_class=kernel.PipelineKernelManager, config=kernel.config(folder),
                # a pipeline kernel keeps no command history (no writes to ~/.ipython) and
                # logs to a file, not to the analyst's terminal
                extra_arguments=["--HistoryManager.enabled=False",
                                 f"--SchoolContextKernelApp.log_file={log}",
                                 f"--IPKernelApp.exec_lines={KERNEL_SETUP!r}"],
            )
        except Exception as exc:  # the kernel's log goes with it (shown by --traceback)
            text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
            if text.strip():
                exc.add_note(f"The kernel's log:\n{text.rstrip()}")
            raise
    nb = scrub(nbformat.read(running, as_version=4))
    write_text(out, nbformat.writes(nb) + "\n")
    running.unlink(missing_ok=True)
    return out


def export_html(notebook: str | Path, html: str | Path, *, lang: str = "ru") -> Path:
    """Render an executed notebook to one self-contained HTML page, without code.

    nbconvert's ``report`` template (``templates/report``) keeps only the HTML the cells
    display (cells tagged ``remove`` are dropped); :func:`analysis.publish.page.document`
    wraps it into the page: the project's lean stylesheet, the metadata header the first
    cell displays, a table of contents, numbered figures and tables, and numbers by the
    conventions of ``lang``. Nothing external is loaded, so the page opens offline.
    """
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor

    from analysis.publish.page import document

    nb = nbformat.read(notebook, as_version=4)
    exporter = HTMLExporter(
        template_name="report", extra_template_basedirs=[str(TEMPLATES)],
        exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True,
    )
    exporter.register_preprocessor(
        TagRemovePreprocessor(remove_cell_tags={"remove", "parameters", "injected-parameters"}),
        enabled=True,
    )
    body, _ = exporter.from_notebook_node(nb)
    return write_text(html, document(body, title=t("report.title", lang), lang=lang))


def publish_report(dest: str | Path, *, root: str | Path = ".", cwd: str | Path | None = None,
                   lang: str = "ru", metrics_out: str | Path | None = None) -> Path:
    """Assemble the report folder from the stages' outputs and publish it whole.

    In a staging folder beside ``dest`` (:class:`analysis.publish.folders.Staging`): ``report.html``
    rendered from the last stage's executed notebook, what the last stage wrote to
    ``data/processed/site/`` (``index.html``, the municipal reports ``mun/``, ``tables.xlsx``
    and ``data/``), ``validation.html`` and ``metrics.json``; then the folder replaces
    ``dest`` in one step. The executed notebooks stay in ``data/processed/notebooks/`` (the
    audit trail): they are not published. ``metrics_out`` (the DVC pipeline's
    ``reports/metrics.json``) is written after it. A stale ``reports/failed/<name>/`` is
    removed.

    Returns the path of the published ``report.html``.
    """
    root = Path(root).resolve()
    cwd = Path(cwd).resolve() if cwd else root
    dest = root / dest  # an absolute dest stays as it is
    stages = list(load_yaml(root / "dvc.yaml")["stages"])
    processed = cwd / PROCESSED
    staging = folders.Staging(dest)
    try:
        with staging as st:
            folder = st.path
            export_html(executed_path(stages[-1], cwd), folder / "report.html", lang=lang)
            site = processed / "site"  # downloads, municipal reports, index (the last stage's)
            for src in sorted(site.rglob("*")) if site.is_dir() else []:
                if src.is_file():
                    copy_file(src, folder / src.relative_to(site))
            write_text(folder / "validation.html", validation_page(processed, lang))
            copy_file(processed / "metrics.json", folder / "metrics.json")
            st.commit()
    except OutputError as exc:  # name the file as it would be published, not the staging copy
        where = Path(exc.path)
        if where.is_relative_to(staging.path):
            where = dest / where.relative_to(staging.path)
        raise OutputError(f"publish {shown(dest)}/ ({exc.operation} {shown(where)})", "",
                          exc.reason) from exc
    if metrics_out:
        copy_file(processed / "metrics.json", root / metrics_out)
    shutil.rmtree(folders.failed_dir(dest), ignore_errors=True)
    return dest / "report.html"


def validation_page(processed: Path, lang: str) -> str:
    """The validation page of a run, from its ``validation.json``."""
    from analysis.ingest.validate import to_html

    return to_html(json.loads((processed / "validation.json").read_text(encoding="utf-8")),
                   lang)


def shown(path: Path) -> str:
    """``path`` relative to the current folder when it is inside it (shorter messages)."""
    try:
        return Path(path).resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(path)


class StageError(Exception):
    """A stage failed; carries the cause, the report folder left untouched and where the
    failed run's note is."""

    def __init__(self, stage: str, cause: BaseException, dest: Path, note: Path | None):
        self.stage, self.cause, self.dest, self.note = stage, cause, dest, note
        super().__init__(describe_failure(stage, cause))

    @property
    def exit_code(self) -> int:
        return 2 if is_input_error(self.cause) else 1

    def message(self) -> str:
        kept = (f"{shown(self.dest)}/ was not changed: it still holds the last complete run."
                if self.dest.exists() else f"Nothing was published to {shown(self.dest)}/.")
        where = (f"This run's validation page and failure note: {shown(self.note)}/"
                 if self.note else "The failure note could not be written either.")
        return f"{self}\n{kept}\n{where}"


def is_input_error(exc: BaseException) -> bool:
    """Whether ``exc`` means the data cannot be used (exit 2), also from inside a notebook."""
    from papermill.exceptions import PapermillExecutionError

    from analysis.errors import InputError, ModelError

    return isinstance(exc, InputError | ModelError) or (
        isinstance(exc, PapermillExecutionError) and exc.ename in ("InputError", "ModelError"))


def describe_failure(stage: str, exc: BaseException) -> str:
    """One human line (or block) for a failure of ``stage``: no traceback."""
    from papermill.exceptions import PapermillExecutionError

    if isinstance(exc, PapermillExecutionError):
        if exc.ename in ("InputError", "ModelError"):
            return exc.evalue
        return (f"Stage {stage} failed in cell {exc.exec_count}: {exc.ename}: {exc.evalue}\n"
                "The stage's notebook in the failure folder shows where; re-run with "
                "--traceback for details.")
    if is_input_error(exc):
        return str(exc)
    if isinstance(exc, OutputError):
        return f"Stage {stage} failed: {exc}"
    return (f"Stage {stage} failed: {type(exc).__name__}: {exc}\n"
            "Re-run with --traceback for details.")


def write_failure(dest: Path, stage: str, exc: BaseException, *, cwd: Path,
                  lang: str = "ru") -> Path | None:
    """Write ``reports/failed/<name>/`` for a failed run; return it (``None`` if that fails).

    It holds ``failure.txt`` (which stage, why, and that ``dest`` is unchanged),
    ``validation.html`` when the run got as far as reading the data, and the executed
    notebook of the failing stage up to the error.
    """
    target = folders.failed_dir(dest)
    running = running_path(executed_path(stage, cwd))
    try:
        with folders.staged(target) as folder:
            write_text(folder / "failure.txt", t("failure.note", lang, stage=stage,
                                                 dest=dest.name, reason=str(
                                                     describe_failure(stage, exc))) + "\n")
            if (cwd / PROCESSED / "validation.json").exists():
                write_text(folder / "validation.html", validation_page(cwd / PROCESSED, lang))
            if running.exists():
                copy_file(running, folder / "notebooks" / f"{stage}.ipynb")
        return target
    except OSError:
        return None
    finally:
        running.unlink(missing_ok=True)


def run_stage(stage: str, *, report_dir: str | Path, root: str | Path = ".",
              cwd: str | Path | None = None, parameters: dict[str, Any] | None = None,
              publish_to: bool = False, lang: str = "ru",
              metrics_out: str | Path | None = None, execute: bool = True) -> Path:
    """Run one stage for the report folder ``report_dir``, holding its lock.

    The stage's notebook runs (:func:`run_notebook`); with ``publish_to`` the report folder
    is then assembled and published (:func:`publish_report`).  On any failure the report
    folder is left as it was, the failed run's note is written (:func:`write_failure`) and
    :class:`StageError` is raised.  Returns the executed notebook (or the published report).
    ``execute=False`` skips the notebook: only publish again from the stage's last outputs
    (after fixing what stopped a publication, e.g. a full disk).
    """
    root = Path(root).resolve()
    cwd = Path(cwd).resolve() if cwd else root
    dest = root / report_dir  # an absolute report_dir stays as it is
    lock = folders.RunLock(dest)
    try:
        lock.acquire()
    except OutputError as exc:  # e.g. a read-only reports/: said at once, before any work
        raise StageError(stage, exc, dest, None) from exc
    try:
        out = (run_notebook(stage, root=root, cwd=cwd, parameters=parameters) if execute
               else executed_path(stage, cwd))
        if publish_to:
            out = publish_report(dest, root=root, cwd=cwd, lang=lang, metrics_out=metrics_out)
    except Exception as exc:  # noqa: BLE001 -- every failure leaves a note, then re-raised
        note = write_failure(dest, stage, exc, cwd=cwd, lang=lang)
        raise StageError(stage, exc, dest, note) from exc
    finally:
        lock.release()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.pipeline.nbrun", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stage", help="stage name, e.g. 02_context_clusters")
    parser.add_argument("--report-dir",
                        help="the report folder this run builds (default: reports/<year>)")
    parser.add_argument("--publish", action="store_true",
                        help="after the notebook, assemble and publish the report folder")
    parser.add_argument("--metrics", help="also copy metrics.json here (with --publish)")
    parser.add_argument("--root", default=".", help="project root (default: current folder)")
    parser.add_argument("--traceback", action="store_true",
                        help="show the Python traceback of a failure")
    args = parser.parse_args(argv)
    os.environ.setdefault("JUPYTER_PLATFORM_DIRS", "1")
    params = load_yaml(Path(args.root) / "params.yaml")
    lang = params.get("lang", "ru")
    report_dir = args.report_dir or f"reports/{params.get('year')}"
    start = time.perf_counter()
    try:
        run_stage(args.stage, report_dir=report_dir, root=args.root,
                  publish_to=args.publish, lang=lang, metrics_out=args.metrics)
    except Exception as exc:  # noqa: BLE001 -- turned into a human message below
        if args.traceback:
            raise
        return report_failure(exc)
    print(f"{args.stage}: {time.perf_counter() - start:.1f} s", flush=True)
    return 0


def report_failure(exc: BaseException) -> int:
    """Print a short, human message for a failed run; return the exit code.

    0 never; 2 = the data cannot be used (or cannot support an estimate); 75 = another run
    holds the report folder; 1 = anything else (the message names the file or cell).
    """
    if isinstance(exc, StageError):
        print(exc.message(), file=sys.stderr)
        return exc.exit_code
    if isinstance(exc, folders.RunBusy):
        print(str(exc), file=sys.stderr)
        return folders.EXIT_BUSY
    if is_input_error(exc):
        print(str(exc), file=sys.stderr)
        return 2
    if isinstance(exc, OutputError):
        print(str(exc), file=sys.stderr)
        return 1
    print(f"The run failed: {type(exc).__name__}: {exc}\nRe-run with --traceback for details.",
          file=sys.stderr)
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
