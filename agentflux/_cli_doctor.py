"""``agentflux doctor``: what this installation runs with, and what it would talk to."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from agentflux._doctor import report

if TYPE_CHECKING:
    import typer

__all__ = ["register"]


def doctor() -> None:
    """Print versions, the cluster and registry in the settings, and every acceleration.

    An acceleration that is off says why (not built, turned off, an untested aiokafka); the
    platform is correct either way, only slower.
    """
    found = asyncio.run(report())
    width = max(len(label) for label, _ in found.rows)
    for label, value in found.rows:
        print(f"{label:<{width}}  {value}")
    print("accelerations:")
    for acceleration in found.accelerations:
        state = "on " if acceleration.active else "off"
        why = acceleration.does if acceleration.active else acceleration.reason
        print(f"  {state} {acceleration.name:<15} {why}")


def register(app: typer.Typer) -> None:
    """Add ``doctor`` to the command line."""
    app.command()(doctor)
