"""A private PostgreSQL server for the tests, started with initdb/pg_ctl, stoppable at will."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from agentflux._local._ports import free_ports

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["PostgresServer", "postgres_server"]


def _postgres_bin() -> Path:
    """The folder of initdb/pg_ctl; installs the server with apt-get when root and missing."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "postgresql"],
            check=True,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
        found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        pytest.fail(
            "no PostgreSQL server: install it (apt-get install postgresql) or set AGENTFLUX_TEST_POSTGRES_URL"
        )
    return found[-1].parent


@dataclass
class PostgresServer:
    """One server of our own: its data folder, port and how to run its tools."""

    folder: Path
    port: int
    bin_dir: Path
    as_user: list[str]  # initdb refuses to run as root: the server then runs as postgres

    @property
    def url(self) -> str:
        """Its ``postgres`` database, as the superuser (trust authentication, loopback only)."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _pg_ctl(self, *args: str, check: bool = True) -> None:
        data = str(self.folder / "db")
        command = [*self.as_user, str(self.bin_dir / "pg_ctl"), "-D", data, *args]
        subprocess.run(command, check=check, capture_output=True)

    def start(self) -> None:
        """Start it; returns once it accepts connections (pg_ctl -w asks the server)."""
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._pg_ctl("-l", str(self.folder / "server.log"), "-o", options, "-w", "start")

    def stop(self, *, check: bool = True) -> None:
        """Stop it (fast shutdown: open connections are ended); returns once it is down."""
        self._pg_ctl("-m", "fast", "-w", "stop", check=check)


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """A fresh server, running; stopped and removed afterwards."""
    bin_dir = _postgres_bin()
    folder = Path(tempfile.mkdtemp(prefix="agentflux-pg-"))
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_user:
        shutil.chown(folder, "postgres")
    server = PostgresServer(folder, free_ports(1)[0], bin_dir, as_user)
    initdb = [str(bin_dir / "initdb"), "-D", str(folder / "db"), "-U", "postgres"]
    subprocess.run(
        [*as_user, *initdb, "--auth=trust", "-E", "UTF8"], check=True, capture_output=True
    )
    server.start()
    try:
        yield server
    finally:
        server.stop(check=False)
        shutil.rmtree(folder, ignore_errors=True)
