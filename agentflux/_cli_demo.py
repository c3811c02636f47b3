"""``agentflux demo``: the platform end to end on the embedded default."""

from __future__ import annotations

from pathlib import Path  # noqa: TC003  # typer reads the annotation at run time
from typing import Annotated

import typer
from rich.console import Console

from agentflux._cli_errors import RefusedError
from agentflux._demo import run_demo
from agentflux.kafka import AgentfluxSettings, run_event_loop

__all__ = ["register"]


def demo(
    sessions: Annotated[
        int, typer.Option("--sessions", "-n", min=1, help="Simulated sessions.")
    ] = 300,
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same traffic.")] = 42,
    state_dir: Annotated[
        Path | None, typer.Option("--state-dir", help="Default: <state dir>/demo.")
    ] = None,
) -> None:
    """Start a local cluster, run the three groups on simulated traffic, summarise, stop."""
    directory = state_dir or AgentfluxSettings().state_dir / "demo"
    # Long lines wrap at the terminal's width: what fits a screen is counted as it shows.
    if not run_event_loop(run_demo(directory, sessions=sessions, seed=seed, console=Console())):
        raise RefusedError("the demo's checks did not pass (see above)")


def register(app: typer.Typer) -> None:
    """Add ``demo`` to the root command line."""
    app.command()(demo)
