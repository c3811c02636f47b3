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


def _state(stat_file: Path) -> str | None:
    """The scheduler state letter in a ``/proc`` stat file, ``None`` once it is gone."""
    try:
        return stat_file.read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def is_running(pid: int | None, marker: str) -> bool:
    """Whether ``pid`` is alive and is our process (its command line contains ``marker``).

    A JVM's main thread exits before its shutdown hooks finish: the process then reads as a zombie
    while its other threads still write logs and hold the data directory's lock, so it runs until
    every thread is gone. The marker guards against a recycled pid: a pid file may outlive its
    process.
    """
    if pid is None:
        return False
    child = _children.get(pid)
    if child is None:
        return _process_running(pid, marker)
    if child.poll() is None:  # our own child: the kernel's word, and waiting reaps it
        return True
    del _children[pid]
    return False


def _process_running(pid: int, marker: str) -> bool:
    """``is_running`` for a process another Python process started (read from ``/proc``)."""
    threads = [_state(stat) for stat in Path(f"/proc/{pid}/task").glob("*/stat")]
    if not any(state not in {None, "Z", "X"} for state in threads):
        return False
    if _state(Path(f"/proc/{pid}/stat")) in {"Z", "X"}:
        return True  # the main thread is gone and so is the command line; the rest shuts down
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False
    if not cmdline.strip():
        # The java launcher re-executes itself; mid-exec the command line reads empty. A user
        # process (one with an executable, unlike a kernel thread) is alive, not gone.
        return Path(f"/proc/{pid}/exe").exists()
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
