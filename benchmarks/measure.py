"""Shared by the benchmarks: time a command as a whole process tree, with its peak memory.

``run(cmd)`` starts ``cmd``, samples the resident memory of the process and of all its
descendants (papermill's kernels, DVC's stage commands) every 20 ms with psutil, and
returns the wall time and the peak of the *sum* over the tree -- what the machine must hold
at once.  ``getrusage`` would give only the largest single process.  Sampling can miss a
peak shorter than 20 ms; the figures are medians over repeated runs (``median``), and
comparisons are ratios of medians measured side by side, interleaved, in one run.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]
GB = 1024**3


@dataclass(frozen=True)
class Sample:
    """One run of a command: wall seconds, peak resident bytes of its process tree, and
    what it printed (standard output)."""

    seconds: float
    peak_bytes: int
    output: str = ""


def env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The pipeline's environment: this venv first on PATH, no telemetry, fixed hash seed."""
    out = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
           "DVC_NO_ANALYTICS": "1", "JUPYTER_PLATFORM_DIRS": "1", "PYTHONHASHSEED": "0",
           "MPLBACKEND": "agg"}
    out.update(extra or {})
    return out


def _tree_rss(proc: psutil.Process) -> int:
    total = 0
    try:
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def run(cmd: Sequence[str], *, cwd: str | Path = ROOT, extra_env: Mapping[str, str] | None = None,
        check: bool = True, interval: float = 0.02) -> Sample:
    """Run ``cmd`` to the end; its wall time and the peak RSS of its process tree."""
    start = time.perf_counter()
    child = subprocess.Popen(list(map(str, cmd)), cwd=cwd, env=env(extra_env),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak = 0
    done = threading.Event()
    proc = psutil.Process(child.pid)

    def watch() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_rss(proc))
            time.sleep(interval)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    out, err = child.communicate()
    seconds = time.perf_counter() - start
    done.set()
    watcher.join()
    if check and child.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({child.returncode}):\n"
                           f"{err.decode(errors='replace')[-3000:]}")
    return Sample(seconds, peak, out.decode(errors="replace"))


@dataclass(frozen=True)
class Child:
    """One process run to its end: wall seconds, its own peak RSS (bytes), exit code and
    what it printed."""

    seconds: float
    maxrss: int
    code: int
    stdout: str
    stderr: str


def child(cmd: Sequence[str], *, cwd: str | Path = ROOT, environ: Mapping[str, str] | None = None,
          preexec_fn=None) -> Child:
    """Run ``cmd`` in a fresh process and read *its own* peak RSS (``ru_maxrss`` from
    ``os.wait4``; ``getrusage(RUSAGE_CHILDREN)`` would keep the highest of all earlier
    children).  Output goes through temporary files, so a large one cannot block it."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(list(map(str, cmd)), cwd=cwd, env=dict(environ or env()),
                                stdout=out, stderr=err, preexec_fn=preexec_fn)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        text, errors = (f.read().decode(errors="replace") for f in (out, err))
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return Child(seconds, usage.ru_maxrss * scale, os.waitstatus_to_exitcode(status), text,
                 errors)


def median(samples: Sequence[Sample]) -> Sample:
    """Median wall time and median peak memory of repeated runs."""
    return Sample(statistics.median(s.seconds for s in samples),
                  int(statistics.median(s.peak_bytes for s in samples)))


def fmt_s(samples: Sequence[Sample]) -> str:
    """Every run's seconds, for the spread beside the median."""
    return ", ".join(f"{s.seconds:.2f}" for s in samples)


def gb(n: float) -> str:
    return f"{n / GB:.2f} GB"
