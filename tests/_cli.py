"""Run the ``agentflux`` command line in a child process against a test's cluster settings."""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    from agentflux.kafka import AgentfluxSettings


@dataclass(frozen=True)
class CliResult:
    """Exit code and decoded output of one command."""

    code: int
    stdout: str
    stderr: str


def cli_env(settings: AgentfluxSettings) -> dict[str, str]:
    """The environment that points the command line at ``settings``' cluster and prefix."""
    return {
        **os.environ,
        "AGENTFLUX_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "AGENTFLUX_REGISTRY_URL": settings.registry_url,
        "AGENTFLUX_TOPIC_PREFIX": settings.topic_prefix,
        "COLUMNS": "200",  # rich tables stay on one line per row
    }


async def run_cli(settings: AgentfluxSettings, *args: str) -> CliResult:
    """``agentflux ARGS`` in a child process (the commands call ``asyncio.run`` themselves)."""
    return await run_agentflux(*args, env=cli_env(settings))


async def run_agentflux(
    *args: str, env: dict[str, str], cwd: Path | None = None, timeout_s: float = 180
) -> CliResult:
    """``agentflux ARGS`` in a child process with exactly ``env``, in ``cwd``."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from agentflux.cli import main; main()",
        *args,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(timeout_s):
        out, err = await process.communicate()
    assert process.returncode is not None
    return CliResult(process.returncode, out.decode(), err.decode())


async def rebuild_into(
    settings: AgentfluxSettings, group: str, fresh: Path, live: Path
) -> CliResult:
    """``agentflux rebuild GROUP`` into the SQLite file ``fresh``, compared with ``live``; it passed."""
    done = await run_cli(
        settings, "rebuild", group, "--into", f"sqlite:///{fresh}", "--live", f"sqlite:///{live}"
    )
    assert done.code == 0, done.stdout + done.stderr
    assert "identical" in done.stdout
    return done
