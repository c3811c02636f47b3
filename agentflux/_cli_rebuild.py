"""``agentflux rebuild``: any group's view rebuilt from retained events, compared, swapped in."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from agentflux._cli_errors import InputError
from agentflux._cli_stores import shown_url, view_store
from agentflux._group_lookup import find_group, known_groups
from agentflux._rebuild import compare_views, rebuild_view, swap_into_live
from agentflux.kafka import AgentfluxSettings, run_event_loop

if TYPE_CHECKING:
    from agentflux.consumers import GroupSpec

__all__ = ["register"]

_console = Console(soft_wrap=True)
_err = Console(stderr=True, soft_wrap=True)


def rebuild(  # noqa: PLR0913, PLR0917  # one typer option per knob
    into: Annotated[
        str, typer.Option("--into", help="A new, empty store: sqlite:///path.db or postgresql://…")
    ],
    view: Annotated[
        str | None,
        typer.Argument(
            help="The group whose view to rebuild: context | metrics | audit, or an installed "
            "group (`agentflux groups`); or give --app."
        ),
    ] = None,
    app: Annotated[
        str | None,
        typer.Option("--app", help="A team's group declaration as module:attribute."),
    ] = None,
    live: Annotated[
        str | None,
        typer.Option("--live", help="The live view's store (default: AGENTFLUX_STORE_URL)."),
    ] = None,
    group_id: Annotated[
        str | None, typer.Option("--group-id", help="The live group's id, if not the default.")
    ] = None,
    compare: Annotated[
        bool, typer.Option("--compare/--no-compare", help="Compare with the live view.")
    ] = True,
    swap: Annotated[
        bool,
        typer.Option(
            "--swap",
            help="Make the rebuilt store the live one (SQLite file or PostgreSQL database "
            "renamed; the live service stopped).",
        ),
    ] = False,
) -> None:
    """Rebuild a view from the earliest retained events into a fresh store; compare; swap."""
    spec = find_group(view, app=app)
    if not spec.is_view:
        raise InputError(
            f"the {spec.name} group keeps no view: there is nothing to rebuild",
            "groups with a view: "
            + ", ".join(found.name for found in known_groups() if found.spec.is_view),
        )
    settings = AgentfluxSettings()
    live_url = live or settings.store_url

    code = run_event_loop(
        _rebuild_and_report(
            spec,
            into,
            live_url,
            settings,
            compare=compare,
            swap_group=(group_id or spec.group_id) if swap else None,
        )
    )
    if code:
        raise typer.Exit(code=code)


async def _rebuild_and_report(  # noqa: PLR0913  # the command's options, passed on
    spec: GroupSpec,
    into: str,
    live_url: str,
    settings: AgentfluxSettings,
    *,
    compare: bool,
    swap_group: str | None,
) -> int:
    """Rebuild, print the comparison, swap if asked; 1 when the views differ (and no swap)."""
    columns = (
        TextColumn("rebuilding {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("events"),
        TextColumn("{task.fields[rate]:>8.0f} ev/s"),
        TimeElapsedColumn(),
        TextColumn("left"),
        TimeRemainingColumn(),
    )
    view = spec.name
    async with view_store(into, view, read_only=False) as rebuilt:
        # Transient: the result line below stays; no bar at all where nobody watches it.
        with Progress(*columns, console=_err, transient=True, disable=not _err.is_terminal) as bar:
            task = bar.add_task(view, total=None, rate=0.0)

            def progress(done: int, total: int) -> None:
                elapsed = bar.tasks[0].elapsed or 0.0
                bar.update(task, completed=done, total=total, rate=done / max(elapsed, 1e-3))

            result = await rebuild_view(spec, rebuilt, settings, progress=progress)
        _console.print(
            f"rebuilt {view} from {result.events} events in {result.seconds:.1f} s "
            f"({result.events / max(result.seconds, 1e-3):.0f} events/s) into {shown_url(into)}"
        )
        if result.dead_letters:
            _err.print(
                f"[yellow]{result.dead_letters} record(s) could not be applied[/yellow]; they are "
                f"in {result.dead_letter_topic} (the rebuilt view lacks them)"
            )
        if not compare and swap_group is None:
            return 0  # the live store is not even opened
        async with view_store(live_url, view, read_only=False) as live_store:
            differences: list[str] = []
            if compare:
                spec_view = spec.view()
                await live_store.migrate(spec_view.ddl)  # an empty live store compares as empty
                differences = await compare_views(spec_view, live_store, rebuilt)
                for line in differences:
                    _console.print(line)
                verdict = "DIFFERENT" if differences else "identical"
                _console.print(
                    f"{verdict}: live view {shown_url(live_url)} vs rebuilt {shown_url(into)}"
                )
            if swap_group is None:
                return 1 if differences else 0
            replaced = await swap_into_live(settings, result, rebuilt, live_store, swap_group)
    _console.print(
        f"swapped: {shown_url(live_url)} is now the rebuilt view; the old one is kept as "
        f"{shown_url(replaced)}; restart the {view} service"
    )
    return 0


def register(app: typer.Typer) -> None:
    """Add the rebuild command to the root command line."""
    app.command()(rebuild)
