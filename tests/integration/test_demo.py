"""The demo, end to end: what `make demo` runs, on a small traffic, with its own cluster."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from agentflux._demo import run_demo


@pytest.mark.broker
@pytest.mark.slow
async def test_demo_runs_end_to_end_and_stops_everything(tmp_path: Path) -> None:
    """The demo starts a cluster, reaches lag 0, verifies the audit chains, fits a screen, and leaves no process."""
    console = Console(record=True, width=80)  # the narrowest usual terminal: lines wrap as shown
    state_dir = tmp_path / "demo"
    assert await run_demo(state_dir, sessions=300, seed=42, console=console)  # as `make demo`
    output = console.export_text()
    assert "caught up" in output
    assert "audit chains verified: intact" in output
    assert "unanswered approvals timed out (timeout job), none pending" in output
    assert "committed lag" in output
    assert "events: " in output  # the metrics tables
    assert "status " in output  # the session's context
    lines = output.splitlines()
    assert len(lines) <= 80, output
    assert "next: `agentflux context " in output
    assert "`agentflux tail`" in output
    marker = str(state_dir.resolve())
    assert _processes_naming(marker) == []


def _processes_naming(marker: str) -> list[str]:
    return [p.name for p in Path("/proc").iterdir() if p.name.isdigit() and _cmdline_has(p, marker)]


def _cmdline_has(proc: Path, marker: str) -> bool:
    try:
        return marker in (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False
