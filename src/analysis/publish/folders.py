"""Publishing a run: one complete report folder or none, one run at a time, failures apart.

A report folder (``reports/<year>/`` for the DVC pipeline, ``reports/<data>-<year>/`` for
``make report DATA=…``) is only ever replaced whole:

1. the run builds the new folder in a *staging* folder beside it
   (``reports/.<name>.partial-<pid>/``, same filesystem);
2. only when every file is written does :meth:`Staging.commit` swap it in with two
   renames (the old folder is moved aside, the new one moved in, the old one deleted);
3. if anything fails before that, the staging folder is deleted and the published folder
   is untouched.

A failed run writes what it has -- its failure note, its validation page and the
executed notebook of the failing stage -- to ``reports/failed/<name>/``, also atomically,
and says so in its message.  A later complete run removes that folder.

:class:`RunLock` lets one run at a time write a report folder (and its work folder): a
lock file ``reports/.<name>.lock`` holds the owner's PID and command; a second run stops
with :data:`EXIT_BUSY` and a message naming them.  A lock left by a run that was killed
(its PID is gone) is taken over, with a note.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from analysis.outputs import OutputError

#: Exit code of a run that found another run writing the same report folder
#: (``EX_TEMPFAIL`` of sysexits.h: try again later).
EXIT_BUSY = 75

_HELD: dict[Path, int] = {}  # lock files this process holds -> depth (re-entrant)


class RunBusy(Exception):
    """Another run holds the lock of the report folder."""


def failed_dir(dest: str | Path) -> Path:
    """Where a failed run of report folder ``dest`` leaves its note: ``<parent>/failed/<name>``."""
    dest = Path(dest)
    return dest.parent / "failed" / dest.name


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` still runs.  A zombie (ended, not yet reaped: a run killed
    with its parent, before the system reaps it) holds nothing, so its lock is stale."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # Linux: the state letter follows the command name in parentheses
        state = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return True
    return state.rpartition(")")[2].split()[:1] != ["Z"]


class RunLock:
    """Exclusive, re-entrant (within a process) lock on a report folder.

    Parameters
    ----------
    dest : path
        The report folder; the lock file is ``<parent>/.<name>.lock``.

    Raises
    ------
    RunBusy
        When a live process (or one on another host) holds the lock.
    """

    def __init__(self, dest: str | Path):
        dest = Path(dest).resolve()
        self.dest = dest
        self.path = dest.parent / f".{dest.name}.lock"

    def _holder(self) -> tuple[int, str, str]:
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
            return int(lines[0]), lines[1], lines[2] if len(lines) > 2 else ""
        except (OSError, ValueError, IndexError):
            return -1, "", ""

    def acquire(self) -> RunLock:
        if self.path in _HELD:
            _HELD[self.path] += 1
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        me = f"{os.getpid()}\n{socket.gethostname()}\n{' '.join(sys.argv)}\n"
        for attempt in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                pid, host, cmd = self._holder()
                stale = host == socket.gethostname() and pid > 0 and not _pid_alive(pid)
                if stale and attempt == 0:
                    print(f"note: removing the lock of a run that no longer exists (PID {pid}): "
                          f"{self.path}", file=sys.stderr)
                    self.path.unlink(missing_ok=True)
                    continue
                who = f"PID {pid}" + (f" on {host}" if host else "") + (
                    f", started as: {cmd}" if cmd else "")
                raise RunBusy(
                    f"Another run is writing {self.dest} ({who}).\n"
                    f"Wait for it to finish and run again. If no such run exists, delete "
                    f"{self.path}.") from None
            except OSError as exc:
                raise OutputError("create the lock file", self.path, exc) from exc
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(me)
            break
        _HELD[self.path] = 1
        return self

    def release(self) -> None:
        depth = _HELD.get(self.path, 0)
        if depth > 1:
            _HELD[self.path] = depth - 1
            return
        _HELD.pop(self.path, None)
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def recover(dest: str | Path) -> None:
    """Clean what a killed run left beside ``dest`` (call with the lock held).

    A run killed between the two renames of :func:`replace_dir` leaves ``dest`` absent and
    the previous folder at ``.<name>.old-<pid>``: it is put back.  Staging folders and
    temporary files of dead runs are deleted.
    """
    dest = Path(dest)
    parent = dest.parent
    if not parent.is_dir():
        return
    for old in sorted(parent.glob(f".{dest.name}.old-*")):
        if not dest.exists():
            os.rename(old, dest)
        else:
            shutil.rmtree(old, ignore_errors=True)
    for partial in parent.glob(f".{dest.name}.partial-*"):
        shutil.rmtree(partial, ignore_errors=True)


def replace_dir(new: Path, dest: Path) -> None:
    """Move folder ``new`` to ``dest``, replacing any folder there, by two renames.

    Both folders are on one filesystem (``new`` is built beside ``dest``), so each rename
    is atomic; if the second fails, the old folder is put back.
    """
    old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
    try:
        if dest.exists():
            os.rename(dest, old)
        try:
            os.rename(new, dest)
        except OSError:
            if old.exists() and not dest.exists():
                os.rename(old, dest)
            raise
    except OSError as exc:
        raise OutputError("replace the report folder", dest, exc) from exc
    shutil.rmtree(old, ignore_errors=True)


class Staging:
    """A folder built beside ``dest`` and swapped in whole by :meth:`commit`.

    Use as a context manager: leaving the block without :meth:`commit` (for example on an
    error) deletes the staging folder and leaves ``dest`` as it was.
    """

    def __init__(self, dest: str | Path):
        self.dest = Path(dest)
        self.path = self.dest.with_name(f".{self.dest.name}.partial-{os.getpid()}")
        self.committed = False

    def __enter__(self) -> Staging:
        recover(self.dest)
        try:
            shutil.rmtree(self.path, ignore_errors=True)
            self.path.mkdir(parents=True)
        except OSError as exc:
            raise OutputError("create the staging folder", self.path, exc) from exc
        return self

    def commit(self) -> Path:
        replace_dir(self.path, self.dest)
        self.committed = True
        return self.dest

    def __exit__(self, *exc: object) -> None:
        if not self.committed:
            shutil.rmtree(self.path, ignore_errors=True)


@contextmanager
def staged(dest: str | Path) -> Iterator[Path]:
    """``with staged(dest) as folder:`` build ``folder``; it replaces ``dest`` on success."""
    with Staging(dest) as st:
        yield st.path
        st.commit()
