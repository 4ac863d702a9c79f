"""The one way the project asks git: for the code version of a report and pre-run checks."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


def git(root: str | Path, *args: str) -> subprocess.CompletedProcess[str] | None:
    """Run ``git <args>`` in ``root``; ``None`` when git is not installed or cannot start.

    The caller reads ``returncode`` and ``stdout`` (text, UTF-8, undecodable bytes
    replaced); a command that runs longer than 60 s counts as not started.
    """
    exe = shutil.which("git")
    if exe is None:
        return None
    try:
        return subprocess.run([exe, *args], cwd=root, capture_output=True, text=True,
                              encoding="utf-8", errors="replace", timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
