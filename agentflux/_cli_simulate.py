"""``agentflux simulate``: publish realistic agent-runtime traffic."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.console import Console

from agentflux.kafka import run_event_loop
from agentflux.producers import EventPublisher, Simulator

__all__ = ["register"]

_console = Console(soft_wrap=True)


def simulate(
    sessions: Annotated[
        int, typer.Option("--sessions", "-n", min=1, help="Concurrent sessions.")
    ] = 100,
    rate: Annotated[
        float | None,
        typer.Option("--rate", "-r", help="Events per second (default: as fast as possible)."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same traffic.")] = 42,
    connect_timeout: Annotated[
        float,
        typer.Option("--connect-timeout", min=0.1, help="Seconds to keep trying to reach Kafka."),
    ] = 10.0,
) -> None:
    """Publish the traffic of N concurrent agent sessions to the cluster."""

    async def _run() -> int:
        async with EventPublisher(connect_timeout_s=connect_timeout) as publisher:
            await publisher.prepare()  # as a runtime starts: no event waits for the registry
            count = 0
            async for event in Simulator(sessions=sessions, seed=seed).stream(rate=rate):
                await publisher.send(event)
                count += 1
            await publisher.flush()
            return count

    started = time.perf_counter()
    count = run_event_loop(_run())
    elapsed = time.perf_counter() - started
    _console.print(
        f"published {count} events, {sessions} sessions, {elapsed:.1f} s, {count / elapsed:.0f}/s"
    )


def register(app: typer.Typer) -> None:
    """Add ``simulate`` to the root command line."""
    app.command()(simulate)
