"""The pipeline's kernels: over unix sockets in a private folder, no TCP port, quiet.

By default jupyter_client starts every kernel on five TCP ports of 127.0.0.1, and ipykernel
warns on the terminal that they are unencrypted: on a shared server, an open local port per
stage.  :func:`analysis.pipeline.nbrun.run_notebook` starts its kernels instead

- over unix sockets (jupyter_client's ``ipc`` transport, :func:`config`), whose files and the
  connection file are in a folder of their own (:func:`private_folder`: mode 0700, short
  enough for socket paths, in the temporary folder, removed after the run);
- with this module as the kernel (:class:`PipelineKernelManager`:
  ``python -m analysis.pipeline.kernel -f <connection file>``), which is ipykernel's kernel
  with two differences.  Besides the five channels, ipykernel binds one more socket: the pipe
  through which forked subprocesses send their output to the notebook, always on
  ``tcp://127.0.0.1`` and a random port, whatever the transport; over ipc this kernel puts it on
  a unix socket beside the others (``<ip>-pipe``), so it listens on no TCP port at all.  And
  ``--SchoolContextKernelApp.log_file=<path>`` writes the kernel's own log to a file instead of
  the terminal: jupyter_client interrupts every kernel before shutting it down, and a kernel
  still finishing a request then logs ``KeyboardInterrupt caught in kernel``.

The ``school-context`` kernel spec (a notebook opened in JupyterLab) is left as ipykernel
installs it; run there over TCP, this module would behave as ``ipykernel_launcher``.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from jupyter_client import AsyncKernelManager

#: The kernel's module (``python -m``).
MODULE = "analysis.pipeline.kernel"
#: Longest path of the private folder: a socket's path (the folder, ``/kernel-ipc-`` and a
#: number, or ``-pipe``) must fit in ``sun_path``: 108 bytes on Linux, 104 on macOS and BSD.
FOLDER_MAX = 80
#: Suffix of the subprocess-output pipe's socket, after the kernel's ``ip`` (a path prefix).
PIPE_SUFFIX = "-pipe"


@contextmanager
def private_folder() -> Iterator[Path]:
    """A folder for one kernel's connection file, sockets and log; removed afterwards.

    Made by :func:`tempfile.mkdtemp` (mode 0700: no other user can connect to the kernel) in
    the system's temporary folder -- in ``/tmp`` when that path is too long for socket names
    (:data:`FOLDER_MAX`) -- and never in the project folder.
    """
    base = tempfile.gettempdir()
    if len(base) > FOLDER_MAX - len("/sc-kernel-XXXXXXXX") and os.path.isdir("/tmp"):
        base = "/tmp"
    folder = Path(tempfile.mkdtemp(prefix="sc-kernel-", dir=base))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def config(folder: Path) -> Any:
    """traitlets configuration of a kernel manager with the kernel's sockets in ``folder``.

    The manager writes the connection file there, and the kernel binds its sockets
    (``kernel-ipc-1`` ... ``-5``) by absolute path: the kernel runs in another folder.
    """
    from traitlets.config import Config

    return Config({"KernelManager": {
        "transport": "ipc",
        "connection_file": str(folder / "kernel.json"),
        "ip": str(folder / "kernel-ipc"),
    }})


class PipelineKernelManager(AsyncKernelManager):
    """jupyter_client's kernel manager, starting this module's kernel in this Python.

    The kernel spec still names the kernel (recorded in the executed notebooks); only its
    command is replaced.  ``-Xfrozen_modules=off`` as in ipykernel's own spec (debugpy).
    """

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        return [sys.executable, "-Xfrozen_modules=off", "-m", MODULE,
                "-f", os.path.realpath(self.connection_file), *(extra_arguments or [])]


# --- the kernel process ------------------------------------------------------------------------

def _pipe_path() -> str | None:
    """Where the subprocess-output pipe goes: ``<ip>-pipe`` over ipc, ``None`` over tcp."""
    from ipykernel.kernelapp import IPKernelApp

    if not IPKernelApp.initialized():
        return None
    app = IPKernelApp.instance()
    return f"{app.ip}{PIPE_SUFFIX}" if app.transport == "ipc" else None


def _iopub_thread_class() -> type:
    """ipykernel's IOPub thread with its subprocess pipe on a unix socket over ipc."""
    import zmq
    from ipykernel.iostream import IOPubThread
    from zmq.eventloop.zmqstream import ZMQStream

    class UnixPipeIOPubThread(IOPubThread):
        """:class:`ipykernel.iostream.IOPubThread` whose pipe from forked subprocesses
        listens on a unix socket when the kernel runs over ipc (TCP otherwise, as upstream)."""

        def _setup_pipe_in(self) -> None:
            self._unix_pipe = _pipe_path()
            if not self._unix_pipe:
                super()._setup_pipe_in()
                return
            self._pipe_uuid = os.urandom(16)  # authenticates pipe messages, as upstream
            pipe_in = self.socket.context.socket(zmq.PULL)
            pipe_in.linger = 0
            pipe_in.bind(f"ipc://{self._unix_pipe}")
            self._pipe_in = ZMQStream(pipe_in, self.io_loop)
            self._pipe_in.on_recv(self._handle_pipe_msg)

        def _setup_pipe_out(self) -> tuple[zmq.Context, zmq.Socket]:
            if not getattr(self, "_unix_pipe", None):
                return super()._setup_pipe_out()
            ctx = zmq.Context()  # a new context after the fork
            pipe_out = ctx.socket(zmq.PUSH)
            pipe_out.linger = 3000
            pipe_out.connect(f"ipc://{self._unix_pipe}")
            return ctx, pipe_out

    return UnixPipeIOPubThread


def _app_class() -> type:
    """ipykernel's application with a ``log_file`` option."""
    import logging

    from ipykernel.kernelapp import IPKernelApp
    from traitlets import Unicode, observe

    class SchoolContextKernelApp(IPKernelApp):
        """:class:`ipykernel.kernelapp.IPKernelApp` that can log to a file."""

        log_file = Unicode("", config=True,
                           help="Write the kernel's log to this file instead of stderr.")

        @observe("log_file")
        def _log_to_file(self, change: dict) -> None:
            if change["new"]:  # traitlets' own mechanism: the console handler is left unused
                self.logging_config = {
                    "handlers": {"file": {
                        "class": "logging.FileHandler", "filename": change["new"],
                        "encoding": "utf-8", "formatter": "console",
                        "level": logging.getLevelName(self.log_level)}},
                    "loggers": {type(self).__name__: {"handlers": ["file"]}},
                }

    return SchoolContextKernelApp


def main() -> None:
    """Start the kernel (what ``ipykernel_launcher`` does, with the two changes above)."""
    # as ipykernel_launcher: the working folder off sys.path while the kernel loads (the
    # shell puts it back), so a file there cannot shadow a module the kernel imports
    if sys.path and (sys.path[0] == "" or Path(sys.path[0]) == Path.cwd()):
        del sys.path[0]
    from ipykernel import kernelapp

    kernelapp.IOPubThread = _iopub_thread_class()  # type: ignore[misc]
    _app_class().launch_instance()


if __name__ == "__main__":
    main()
