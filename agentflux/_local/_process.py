"""Starting and stopping the JVMs as detached processes, recognised later by their pid files."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

__all__ = ["is_running", "spawn", "stop"]

# Handles of the processes this Python process started: keeping them lets us reap our children
# (no zombies) and stops Popen.__del__ from warning that a detached server still runs.
_children: dict[int, subprocess.Popen[bytes]] = {}


def spawn(
    command: list[str], *, log_file: Path, env: dict[str, str] | None = None, cwd: Path
) -> int:
    """Start ``command`` in its own session (it outlives the CLI), its output in ``log_file``."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        process = subprocess.Popen(  # noqa: S603  # java with arguments we built, no shell
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
    _children[process.pid] = process
    return process.pid


def _reap(pid: int) -> None:
    child = _children.get(pid)
    if child is not None and child.poll() is not None:
        del _children[pid]


def is_running(pid: int | None, marker: str) -> bool:
    """Whether ``pid`` is alive and is our process (its command line contains ``marker``).

    The marker guards against a recycled pid: a pid file may outlive its process.
    """
    if pid is None:
        return False
    _reap(pid)
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False
    state = stat.rsplit(")", 1)[1].split()[0]
    if state in {"Z", "X"}:
        return False
    if not cmdline.strip():
        # The java launcher re-executes itself; mid-exec the command line reads empty. A user
        # process (one with an executable, unlike a kernel thread) is alive, not gone.
        return pid in _children or Path(f"/proc/{pid}/exe").exists()
    return marker in cmdline


def stop(pid: int | None, marker: str, *, kill: bool = False, timeout_s: float = 30.0) -> None:
    """Stop our process: SIGTERM and wait, SIGKILL after ``timeout_s`` (or at once if ``kill``)."""
    if not is_running(pid, marker):
        return
    assert pid is not None  # noqa: S101  # is_running is False for None
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL if kill else signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while is_running(pid, marker):
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + timeout_s
        time.sleep(0.1)
