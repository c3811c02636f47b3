"""``agentflux new group NAME``: start a team's consumer group from the scaffold."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from agentflux._cli_errors import InputError, RefusedError
from agentflux._scaffold import GroupNameError, ScaffoldExistsError, new_group

__all__ = ["register"]

_console = Console(soft_wrap=True)

new_app = typer.Typer(help="Start something new from a template.", no_args_is_help=True)


@new_app.command("group")
def group(
    name: Annotated[str, typer.Argument(help="The group's name: its package and group id.")],
    directory: Annotated[
        Path, typer.Option("--dir", help="The folder to create the project in (default: here).")
    ] = Path(),
) -> None:
    """A package with a handler, its store and tests (in-memory and real broker) that pass."""
    try:
        made = new_group(name, directory)
    except GroupNameError as exc:
        raise InputError(str(exc)) from exc
    except ScaffoldExistsError as exc:
        raise RefusedError(str(exc), "choose another --dir or name") from exc
    for path in made.files:
        _console.print(f"  {path}", highlight=False)
    _console.print(
        f"created {made.root}: `cd {made.root} && pip install -e '.[test]' && pytest`, then "
        f"`agentflux consume {name}` (or, uninstalled, --app {made.package}.group:group)",
        highlight=False,
        markup=False,  # the [test] of the install line is not rich markup
    )


def register(app: typer.Typer) -> None:
    """Add ``new`` to the root command line."""
    app.add_typer(new_app, name="new")
