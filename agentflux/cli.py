"""The ``agentflux`` command line.

Each area registers its commands from its own module; this file only assembles them.
"""

from __future__ import annotations

import typer

__all__ = ["app", "main"]

app = typer.Typer(
    name="agentflux",
    help="The event platform of an AI agent runtime, on Apache Kafka.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Run the platform, manage its contract, and inspect its topics and groups."""


def main() -> None:
    """Entry point of the console script."""
    app()
