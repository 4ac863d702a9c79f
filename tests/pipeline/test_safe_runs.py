"""Safe runs (#6): a report folder is one complete run or untouched; failures are kept apart,
named and never mixed; one run at a time; the same bytes whatever the last bits.

Findings of the issue reproduced here (each failed before the change):
1. a failed run left the previous report beside its own validation page and notebooks;
2. a full disk truncated report.html, and the message named no file;
3. two runs at once corrupted each other's work and report folders;
4. a DATA run overwrote the DVC pipeline's reports/<year>/; a check wrote beside a report;
6. last-bit differences changed the bytes of processed tables;
8. the report published the analyst's absolute data path.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from analysis import outputs
from analysis.config import load_yaml
from analysis.demo.synth import write_region
from analysis.ingest import schema
from analysis.outputs import OutputError
from analysis.pipeline import flow, nbrun, run
from analysis.publish import folders
from helpers.project import TINY_PARAMS, make_project


def snapshot(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def runner(root: Path, data: Path, *extra: str, **popen) -> list[str]:
    return [sys.executable, "-m", "analysis.pipeline.run", "--data", str(data), "--year", "2025",
            "--root", str(root), *extra]


# --- files: atomic, rounded, strict -------------------------------------------------------

def test_round_sig_keeps_seven_significant_digits_and_absorbs_last_bit_noise():
    x = np.array([0.1234, 123456.789012345678, -2.5e-7, 0.0, -0.0, np.nan, np.inf, 1e-320])
    r = outputs.round_sig(x)
    assert r[0] == 0.1234 and r[1] == 123456.8 and r[2] == -2.5e-7
    assert r[3] == 0.0 and not np.signbit(r[4]) and np.isnan(r[5]) and r[6] == np.inf
    assert r[7] == 0.0  # below the 1e-10 floor
    rng = np.random.default_rng(0)
    v = rng.normal(size=10_000) * 10.0 ** rng.integers(-6, 6, 10_000)
    assert np.allclose(outputs.round_sig(v), v, rtol=5e-7, atol=1e-10)
    # values on the grid come back unchanged after ±1 ulp
    grid = outputs.round_sig(v)
    assert np.array_equal(outputs.round_sig(np.nextafter(grid, np.inf)), grid)
    assert np.array_equal(outputs.round_sig(np.nextafter(grid, -np.inf)), grid)


def test_round_sig_writes_zero_for_noise_around_zero_and_keeps_counts():
    """A sum that is 0 in exact arithmetic is -1.8e-17 on one CPU and 3.2e-17 on another:
    significant digits alone keep that noise (#20); the 1e-10 floor writes 0 for both.
    Whole numbers (counts, sums of counts) are exact and kept, however many digits."""
    noise = np.array([-1.788879e-17, 3.21351e-17, 3.3e-16, -4e-11])
    r = outputs.round_sig(noise)
    assert np.array_equal(r, np.zeros(4)) and not np.signbit(r).any()
    counts = np.array([123456789.0, 2.0**52, -98765432.0])
    assert np.array_equal(outputs.round_sig(counts), counts)
    assert outputs.round_sig(123456789.5) == 123456800.0


def test_round_text_rounds_printed_numbers_and_nothing_else():
    text = ("mean -1.788879e-17 sd 1.000504 share 0.7226666666666667 v0.1.0 2025-12-04 "
            "tree 4e0912ab3c15 1.5 x1.23456789123 <td>0.248239073</td> 3,14159265")
    assert outputs.round_text(text) == (
        "mean 0.0 sd 1.000504 share 0.7226667 v0.1.0 2025-12-04 tree 4e0912ab3c15 1.5 "
        "x1.23456789123 <td>0.2482391</td> 3,14159265")


def test_executed_notebooks_show_rounded_numbers():
    """Notebook 02 displayed ``describe()`` of the index: means of -1.8e-17 / 3.2e-17 that
    change with the CPU (#20).  The runner rounds what cells printed."""
    import nbformat

    from analysis.pipeline import nbrun

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("x")
    cell.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="gap 3.0411229090532288e-12\n"),
        nbformat.v4.new_output("execute_result", execution_count=1, data={
            "text/plain": "mean  -1.788879e-17", "text/html": "<td>-1.788879e-17</td>",
            "image/png": "iVBORw0KGgo1.2345678901"})]
    nb.cells.append(cell)
    out = nbrun.scrub(nb).cells[0].outputs
    assert out[0]["text"] == "gap 0.0\n"
    assert out[1]["data"]["text/plain"] == "mean  0.0"
    assert out[1]["data"]["text/html"] == "<td>0.0</td>"
    assert out[1]["data"]["image/png"] == "iVBORw0KGgo1.2345678901"


def test_json_is_strict_null_for_nan_and_infinity(tmp_path):
    path = outputs.write_json(tmp_path / "m.json", {"a": float("nan"), "b": [np.inf, 1.5],
                                                    "c": np.float64(-0.0)})

    def refuse(constant):
        raise ValueError(constant)

    assert json.loads(path.read_text(), parse_constant=refuse) == {"a": None, "b": [None, 1.5],
                                                                   "c": 0.0}


def test_a_failed_write_leaves_the_previous_file_and_names_it(tmp_path):
    target = outputs.write_text(tmp_path / "report.html", "old, complete")

    def disk_full(tmp):
        tmp.write_bytes(b"<html>half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(OutputError, match=r"could not write .*report\.html: No space left"):
        outputs.atomic_write(target, disk_full)
    assert target.read_text() == "old, complete"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]  # no temporary left


# --- one folder, whole or untouched --------------------------------------------------------

def test_staging_replaces_the_folder_whole_or_not_at_all(tmp_path):
    dest = tmp_path / "reports" / "2025"
    dest.mkdir(parents=True)
    (dest / "report.html").write_text("run A")
    with pytest.raises(RuntimeError):
        with folders.staged(dest) as folder:
            (folder / "report.html").write_text("run B, half")
            raise RuntimeError("stage failed")
    assert snapshot(dest) == {"report.html": hashlib.sha256(b"run A").hexdigest()}
    assert sorted(p.name for p in dest.parent.iterdir()) == ["2025"]
    with folders.staged(dest) as folder:
        (folder / "report.html").write_text("run B")
    assert (dest / "report.html").read_text() == "run B"
    assert sorted(p.name for p in dest.parent.iterdir()) == ["2025"]


def test_a_run_killed_between_the_two_renames_is_recovered(tmp_path):
    dest = tmp_path / "2025"
    old = tmp_path / ".2025.old-999999"
    old.mkdir()
    (old / "report.html").write_text("run A")
    (tmp_path / ".2025.partial-999999").mkdir()
    folders.recover(dest)
    assert (dest / "report.html").read_text() == "run A"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2025"]


def test_a_read_only_reports_folder_is_named_at_publishing(tmp_path, monkeypatch):
    dest = tmp_path / "reports" / "x-2025"
    dest.mkdir(parents=True)
    (dest / "report.html").write_text("run A")
    real = os.rename

    def read_only(src, dst):  # the published folder cannot be moved
        if dest in (Path(src), Path(dst)):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(dst))
        return real(src, dst)

    monkeypatch.setattr(folders.os, "rename", read_only)
    with pytest.raises(OutputError, match=r"could not replace the report folder .*x-2025: "
                                          r"Read-only file system"):
        with folders.staged(dest) as folder:
            (folder / "report.html").write_text("run B")
    assert (dest / "report.html").read_text() == "run A"


def test_a_read_only_reports_folder_stops_the_stage_at_once_naming_the_file(tmp_path,
                                                                            monkeypatch):
    root = make_project(tmp_path / "proj", None)
    real = os.open

    def read_only(path, *args, **kwargs):
        if str(path).endswith(".lock"):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(folders.os, "open", read_only)
    with pytest.raises(nbrun.StageError) as err:
        nbrun.run_stage("01_prepare", report_dir="reports/2025", root=root)
    assert err.value.exit_code == 1
    assert re.search(r"Stage 01_prepare failed: could not create the lock file "
                     r".*reports/\.2025\.lock: Read-only file system", err.value.message())
    assert not (root / "data" / "processed" / "schools.parquet").exists()  # no work was done


# --- one run at a time ---------------------------------------------------------------------

def test_lock_is_reentrant_in_a_process_and_refuses_a_live_holder(tmp_path):
    dest = tmp_path / "reports" / "2025"
    with folders.RunLock(dest) as lock:
        with folders.RunLock(dest):
            assert lock.path.exists()
        assert lock.path.exists()  # still held by the outer block
    assert not lock.path.exists()
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock.path.write_text(f"{holder.pid}\n{os.uname().nodename}\nmake report\n")
        with pytest.raises(folders.RunBusy, match=rf"Another run is writing .*2025 \(PID "
                                                  rf"{holder.pid}.*make report"):
            folders.RunLock(dest).acquire()
    finally:
        holder.kill()
        holder.wait()
    # the holder is gone: its lock is stale and taken over
    with folders.RunLock(dest):
        assert lock.path.read_text().split("\n")[0] == str(os.getpid())


def test_a_killed_holder_not_yet_reaped_leaves_a_stale_lock(tmp_path):
    """Found when stage startup got faster: a run killed with its parent holds its lock as
    a zombie until the system reaps it, and the next run was refused (exit 75).  A zombie
    holds nothing: its lock is taken over."""
    dest = tmp_path / "reports" / "2025"
    holder = subprocess.Popen([sys.executable, "-c", "pass"])  # ends; not reaped until wait()
    try:
        stat = Path(f"/proc/{holder.pid}/stat")
        deadline = time.monotonic() + 30
        while stat.read_text().rpartition(")")[2].split()[0] != "Z":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert not folders._pid_alive(holder.pid)
        path = folders.RunLock(dest).path
        path.parent.mkdir(parents=True)
        path.write_text(f"{holder.pid}\n{os.uname().nodename}\nrun\n")
        with folders.RunLock(dest) as lock:
            assert lock.path.read_text().split("\n")[0] == str(os.getpid())
    finally:
        holder.wait()


def test_a_run_refused_by_the_lock_exits_75_and_names_the_holder(tmp_path, capsys):
    root = make_project(tmp_path / "proj", None)
    data = tmp_path / "region"
    data.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock = root / "reports" / ".region-2025.lock"
        lock.write_text(f"{holder.pid}\n{os.uname().nodename}\nanother\n")
        assert run.main(["--data", str(data), "--year", "2025", "--root", str(root)]) == 75
    finally:
        holder.kill()
        holder.wait()
    err = capsys.readouterr().err
    assert f"PID {holder.pid}" in err and "Traceback" not in err


def test_each_data_folder_and_year_has_its_own_folders(tmp_path):
    root = tmp_path / "proj"
    assert run.report_dir(root, tmp_path / "Регион А", 2025) == root / "reports/Регион А-2025"
    assert run.report_dir(root, tmp_path / "b", 2025) != root / "reports" / "2025"
    assert folders.failed_dir(root / "reports/2025") == root / "reports/failed/2025"


# --- determinism ---------------------------------------------------------------------------

def test_last_bit_perturbations_give_the_same_bytes(tmp_path, tiny_region):
    """Shares perturbed by 1e-13 (relative, as a different CPU or BLAS would): every
    processed file is byte-identical (validation.json records the input files' hashes, which
    differ, and is left out)."""
    digests = []
    for tag, eps in (("a", 0.0), ("b", 1e-13), ("c", -1e-13)):
        root = make_project(tmp_path / tag, tiny_region, TINY_PARAMS)
        raw = root / "data" / "raw" / "schools.csv"
        s = pd.read_csv(raw, dtype={"school_id": str})
        sign = np.random.default_rng(1).choice([-1.0, 1.0], size=len(s))
        for col in schema.SHARE_COLUMNS:
            if col in s:
                s[col] = s[col] * (1.0 + eps * sign)
        s.to_csv(raw, index=False, float_format="%.17g")
        flow.run_all(root, load_yaml(root / "params.yaml"))
        digests.append({k: v for k, v in snapshot(root / "data" / "processed").items()
                        if k != "validation.json"})
    assert len(digests[0]) >= 15
    assert digests[0] == digests[1] == digests[2]


def test_thread_counts_default_to_one_and_a_users_count_is_kept(monkeypatch):
    for var in nbrun.THREAD_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "8")
    nbrun.fix_threads()
    assert os.environ["OMP_NUM_THREADS"] == "8"
    assert all(os.environ[v] == "1" for v in nbrun.THREAD_VARS if v != "OMP_NUM_THREADS")


# --- end to end: a DATA run, then runs that fail or collide --------------------------------

@pytest.fixture(scope="module")
def published(tmp_path_factory, tiny_region):
    """One DATA run of the tiny region, started twice at once: the second is refused."""
    tmp = tmp_path_factory.mktemp("safe")
    root = make_project(tmp / "proj", None)
    data = tmp / "Экспорт А"
    write_region(tiny_region, data, tmp / "truth")
    (data / "params.yaml").write_text(yaml.safe_dump(TINY_PARAMS), encoding="utf-8")
    lock = root / "reports" / ".Экспорт А-2025.lock"
    first = subprocess.Popen(runner(root, data), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    deadline = time.monotonic() + 60
    while not lock.exists() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    second = subprocess.run(runner(root, data), capture_output=True, text=True, timeout=120)
    out, err = first.communicate(timeout=600)
    return root, data, first.returncode, err, second


@pytest.mark.pipeline
def test_a_second_run_on_the_same_folder_is_refused_and_the_first_completes(published):
    root, _, code, err, second = published
    assert code == 0, err
    assert second.returncode == 75, second.stderr
    assert "Another run is writing" in second.stderr and "Traceback" not in second.stderr
    folder = root / "reports" / "Экспорт А-2025"
    files = sorted(snapshot(folder))
    assert {"metrics.json", "report.html", "validation.html", "index.html", "tables.xlsx",
            "data/schools.csv", "data/schools.parquet"} <= set(files)
    assert any(f.startswith("mun/") for f in files)
    assert not any(f.startswith("notebooks/") for f in files)  # the audit trail stays in .runs
    assert not (root / "reports" / "2025").exists()  # the DVC pipeline's folder: untouched
    assert sorted(p.name for p in (root / "reports").iterdir()) == [".gitkeep", "Экспорт А-2025"]


@pytest.mark.pipeline
def test_no_absolute_path_nan_or_infinity_is_published(published):
    root, data, *_ = published
    folder = root / "reports" / "Экспорт А-2025"
    import zipfile

    for path in folder.rglob("*"):
        if path.is_file():
            if path.suffix == ".xlsx":  # a zip of XML parts
                with zipfile.ZipFile(path) as z:
                    text = "".join(z.read(n).decode("utf-8") for n in z.namelist())
            elif path.suffix == ".parquet":
                text = pd.read_parquet(path).to_csv()
            else:
                text = path.read_text(encoding="utf-8")
            assert str(data) not in text and str(data.parent) not in text, path
            assert str(root) not in text, path
    m = folder / "metrics.json"

    def refuse(constant):
        raise ValueError(f"{m} holds {constant}")

    json.loads(m.read_text(encoding="utf-8"), parse_constant=refuse)
    page = (folder / "report.html").read_text(encoding="utf-8")
    visible = re.sub(r"data:image/[a-z]+;base64,[A-Za-z0-9+/=]+", "", page)
    visible = re.sub(r"(?s)<style.*?</style>|<[^>]+>", " ", visible)
    assert not re.search(r"\b(nan|NaN|inf|Infinity)\b", visible)


@pytest.mark.pipeline
def test_methods_appendix_names_the_files_their_hashes_and_the_code_version(published):
    root, data, *_ = published
    page = (root / "reports" / "Экспорт А-2025" / "report.html").read_text(encoding="utf-8")
    for name in ("schools.csv", "results.csv"):
        assert hashlib.sha256((data / name).read_bytes()).hexdigest() in page, name
    assert "school-context 0.1.0" in page
    assert "незафиксированных изменений" in page or "незафиксированные изменения" in page
    assert "<td>data/raw</td>" in page  # the data folder, relative: never its absolute path


@pytest.mark.pipeline
def test_a_failed_run_leaves_the_published_report_and_writes_its_note_apart(published):
    root, data, *_ = published
    folder = root / "reports" / "Экспорт А-2025"
    before = snapshot(folder)
    (data / "params.yaml").write_text(yaml.safe_dump({"clusters": {"k": 500}}), encoding="utf-8")
    try:
        proc = subprocess.run(runner(root, data), capture_output=True, text=True, timeout=600)
    finally:
        (data / "params.yaml").write_text(yaml.safe_dump(TINY_PARAMS), encoding="utf-8")
    assert proc.returncode in (1, 2), proc.stderr
    assert "02_context_clusters" in proc.stderr or "clusters.k" in proc.stderr
    assert "reports/Экспорт А-2025/ was not changed" in proc.stderr.replace(str(root) + "/", "")
    assert snapshot(folder) == before
    failed = root / "reports" / "failed" / "Экспорт А-2025"
    assert f"{failed}" in proc.stderr or "reports/failed/Экспорт А-2025" in proc.stderr
    assert sorted(snapshot(failed)) == ["failure.txt", "notebooks/02_context_clusters.ipynb",
                                        "validation.html"]
    note = (failed / "failure.txt").read_text(encoding="utf-8")
    assert "02_context_clusters" in note and "не изменён" in note
    assert "пройдена" in (failed / "validation.html").read_text(encoding="utf-8")
    leftovers = [p.name for p in (root / "reports").iterdir() if p.name.startswith(".")]
    assert leftovers == [".gitkeep"]


@pytest.mark.pipeline
def test_a_full_disk_leaves_the_published_report_and_names_the_file(published):
    """A real write error from the OS: the file size limit (RLIMIT_FSIZE) makes writing
    report.html fail with EFBIG while publishing (every file published before and after it
    is smaller), as a full disk fails with ENOSPC. The last stage publishes again from its
    outputs (``execute=False``), so the limit hits the publication, not the notebook."""
    root, data, *_ = published
    folder = root / "reports" / "Экспорт А-2025"
    # a complete run first: earlier tests of this module leave failed runs' work folders
    assert subprocess.run(runner(root, data), capture_output=True, timeout=600).returncode == 0
    before = snapshot(folder)
    report_size = (folder / "report.html").stat().st_size
    others = [p.stat().st_size for p in folder.rglob("*") if p.is_file() and p.name !=
              "report.html"]
    assert max(others) < report_size
    limit = (max(others) + report_size) // 2
    work = next(p for p in (root / ".runs").iterdir() if p.is_dir())

    def small_disk():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    code = ("import sys\nfrom analysis.pipeline.nbrun import run_stage, report_failure\n"
            "try:\n    run_stage('05_report', report_dir=sys.argv[1], root=sys.argv[2], "
            "cwd=sys.argv[3], publish_to=True, execute=False)\n"
            "except Exception as exc:\n    sys.exit(report_failure(exc))\n")
    proc = subprocess.run([sys.executable, "-c", code, str(folder), str(root), str(work)],
                          capture_output=True, text=True, timeout=600, preexec_fn=small_disk,
                          cwd=root)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert re.search(r"Stage 05_report failed: could not publish .*Экспорт А-2025/ \(write "
                     r".*Экспорт А-2025/report\.html\): File too large", proc.stderr), proc.stderr
    assert snapshot(folder) == before
    leftovers = [p.name for p in (root / "reports").iterdir() if p.name.startswith(".")]
    assert leftovers == [".gitkeep"]
    # the next run that succeeds replaces the report and removes the failure note
    assert subprocess.run(runner(root, data), capture_output=True, timeout=600).returncode == 0
    assert not (root / "reports" / "failed" / "Экспорт А-2025").exists()
