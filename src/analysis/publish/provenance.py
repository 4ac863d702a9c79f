"""What a report was computed from: code version, package versions (for the methods appendix).

The data files and their SHA-256 come from the validation log (``validation.json``,
written by stage 01); this module adds the code and the environment.

The code version is the git *tree* of ``src/analysis`` and of ``notebooks`` -- the code
that ran -- not the commit: a commit also holds ``dvc.lock``, which records the report's own
hash, so a report naming its commit could never be reproduced by a fresh clone of that
commit.  ``git log --format='%h %s' --find-object=<tree>`` finds the commits with that code.
Changes not yet committed are stated as such.
"""

from __future__ import annotations

import platform
from importlib import metadata
from pathlib import Path
from typing import Any

from analysis.vcs import git

#: Packages whose versions can change the numbers or the report (shown in the appendix).
PACKAGES = ("numpy", "pandas", "scipy", "scikit-learn", "statsmodels", "pyarrow", "pandera",
            "matplotlib", "seaborn", "papermill", "nbconvert", "dvc")


def _git(repo: Path, *args: str) -> str | None:
    """Stripped output of a git command that succeeded, else ``None``."""
    proc = git(repo, *args)
    return proc.stdout.strip() if proc is not None and proc.returncode == 0 else None


def code_version(repo: str | Path | None = None) -> dict[str, Any]:
    """The version of the code that is running.

    Parameters
    ----------
    repo : path, optional
        The project's checkout; default: the one this package is imported from (an
        editable install from ``src/``).

    Returns
    -------
    dict
        ``package`` (school-context's version), ``src`` and ``notebooks`` (abbreviated git
        tree ids, or ``None`` outside a git checkout) and ``clean`` (``True`` when neither
        folder has uncommitted changes, ``False`` when one has, ``None`` without git).
    """
    if repo is None:
        repo = Path(__file__).resolve().parents[3]  # src/analysis/publish/provenance.py
    repo = Path(repo)
    try:
        package = metadata.version("school-context")
    except metadata.PackageNotFoundError:
        package = None
    out: dict[str, Any] = {"package": package, "src": None, "notebooks": None, "clean": None}
    if not (repo / "src" / "analysis").is_dir() or _git(repo, "rev-parse", "--git-dir") is None:
        return out
    for key, folder in (("src", "src/analysis"), ("notebooks", "notebooks")):
        tree = _git(repo, "rev-parse", f"HEAD:{folder}")
        out[key] = tree[:12] if tree else None
    status = _git(repo, "status", "--porcelain", "--", "src/analysis", "notebooks")
    out["clean"] = None if status is None else status == ""
    return out


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    """``{"python": "3.11.7", "numpy": "2.1.3", …}``: Python and the installed packages."""
    out = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "—"
    return out
