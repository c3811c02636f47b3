"""The ``agentflux`` command line.

Each area defines its commands in its own ``_cli_<area>.py`` module with a ``register(app)``
function; this file only assembles them (one import and one ``register`` line per area), sets
up logging once (:mod:`agentflux._logging`), and turns every command's failure into a message
and an exit code (:mod:`agentflux._cli_errors`, where the table of exit codes is).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from agentflux import (
    _cli_cluster,
    _cli_consume,
    _cli_contract,
    _cli_demo,
    _cli_dlq,
    _cli_docs,
    _cli_doctor,
    _cli_new,
    _cli_offsets,
    _cli_rebuild,
    _cli_security,
    _cli_simulate,
    _cli_tail,
)
from agentflux._accelerations import missing_extensions
from agentflux._cli_errors import EXIT_CODES, report
from agentflux._logging import configure_logging, json_lines

__all__ = ["app", "main"]

# Long-running services log their lifecycle at INFO; one-shot commands print their own report
# and log only what went wrong (WARNING), leaving out aiokafka's reports of failures they end
# with and report themselves; AGENTFLUX_LOG_LEVEL sets every logger's level instead.
_SERVICES = frozenset({"consume"})


class _Commands(TyperGroup):
    """The root group: any failure of a command ends as a message and an exit code, here."""

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]  # typer's Context
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise  # typer's own: usage errors, explicit exits, Ctrl-C
        except Exception as exc:  # every failure is reported in one place
            code = report(exc, debug=bool(ctx.params.get("debug")), json_lines=json_lines())
            raise typer.Exit(code) from exc


app = typer.Typer(
    name="agentflux",
    help="The event platform of an AI agent runtime, on Apache Kafka.",
    epilog="Exit codes: "
    + "; ".join(f"{int(code)} {meaning}" for code, meaning in EXIT_CODES.items())
    + ".",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    cls=_Commands,
)


@app.callback()
def _root(
    ctx: typer.Context,
    debug: Annotated[
        bool,
        typer.Option("--debug", envvar="AGENTFLUX_DEBUG", help="Show the traceback of a failure."),
    ] = False,
) -> None:
    """Run the platform, manage its contract, and inspect its topics and groups."""
    del debug  # read by _Commands.invoke, which reports the failure
    service = ctx.invoked_subcommand in _SERVICES
    configure_logging(
        default_level="INFO" if service else "WARNING",
        client_level=None if service else "CRITICAL",
    )
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
_cli_new.register(app)
_cli_offsets.register(app)
_cli_rebuild.register(app)
_cli_security.register(app)
_cli_simulate.register(app)
_cli_tail.register(app)


def main() -> None:
    """Entry point of the console script."""
    app()
