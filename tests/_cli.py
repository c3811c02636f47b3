"""Run the ``agentflux`` command line in a child process against a test's cluster settings."""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
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
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from agentflux.cli import main; main()",
        *args,
        env=cli_env(settings),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(180):
        out, err = await process.communicate()
    assert process.returncode is not None
    return CliResult(process.returncode, out.decode(), err.decode())
