"""The ``agentflux`` command line.

Each area defines its commands in its own ``_cli_<area>.py`` module with a ``register(app)``
function; this file only assembles them (one import and one ``register`` line per area).
"""

from __future__ import annotations

import typer

from agentflux import (
    _cli_cluster,
    _cli_consume,
    _cli_contract,
    _cli_demo,
    _cli_dlq,
    _cli_docs,
    _cli_doctor,
    _cli_offsets,
    _cli_rebuild,
    _cli_simulate,
    _cli_tail,
)
from agentflux._accelerations import missing_extensions

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
    if missing := missing_extensions():
        # Never a silent slow path: an install without a C compiler works, and says so.
        typer.echo(
            f"note: {', '.join(missing)} not built (no C compiler at install?): the slower "
            "pure-Python paths are in use; `agentflux doctor` tells more",
            err=True,
        )


_cli_cluster.register(app)
_cli_consume.register(app)
_cli_contract.register(app)
_cli_demo.register(app)
_cli_dlq.register(app)
_cli_docs.register(app)
_cli_doctor.register(app)
_cli_offsets.register(app)
_cli_rebuild.register(app)
_cli_simulate.register(app)
_cli_tail.register(app)


def main() -> None:
    """Entry point of the console script."""
    app()
