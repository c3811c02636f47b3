"""``agentflux lag`` and ``agentflux replay``: where groups are, and moving them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from agentflux._cli_errors import InputError, NotFoundError
from agentflux._group_lookup import declared_or_raw, load_app
from agentflux._offsets import (
    ReplayTargetError,
    execute_replay,
    group_lag,
    list_groups,
    parse_replay_target,
    plan_replay,
)
from agentflux.kafka import AgentfluxSettings, run_event_loop

if TYPE_CHECKING:
    from agentflux.consumers import GroupSpec

__all__ = ["register"]

_console = Console(soft_wrap=True)


def lag(
    group: Annotated[
        list[str] | None,
        typer.Option(
            "--group",
            "-g",
            help="Group to show, by name (shipped or installed) or group id (repeatable); "
            "all groups by default.",
        ),
    ] = None,
    app: Annotated[
        list[str] | None,
        typer.Option("--app", help="A team's group declaration as module:attribute (repeatable)."),
    ] = None,
) -> None:
    """Show per-partition committed offset, end offset and lag for each consumer group."""
    settings = AgentfluxSettings()
    wanted = [declared_or_raw(name)[0] for name in group or ()]
    wanted += [load_app(reference).group_id for reference in app or ()]
    group = wanted or None

    async def _run() -> None:
        known = [g for g in await list_groups(settings) if not g.startswith("apicurio-")]
        unknown = [g for g in group or () if g not in known]
        if unknown:
            raise NotFoundError(
                f"no consumer group {', '.join(map(repr, unknown))} at "
                f"{settings.bootstrap_servers}",
                f"groups there: {', '.join(known)}" if known else "there is none yet",
            )
        if not known:
            _console.print(f"no consumer group at {settings.bootstrap_servers} yet")
            return
        rows = await group_lag(settings, group or known)
        table = Table("group", "topic", "partition", "committed", "end", "lag")
        for row in rows:
            table.add_row(
                row.group,
                row.topic,
                str(row.partition),
                "-" if row.committed is None else str(row.committed),
                str(row.end_offset),
                str(row.lag),
            )
        _console.print(table)
        _console.print(f"total lag: {sum(r.lag for r in rows)}")

    run_event_loop(_run())


def replay(
    to: Annotated[
        str,
        typer.Option(
            "--to",
            help="earliest | latest | ISO datetime (UTC if no zone) | a duration back (7d, "
            "12h) | topic:partition:offset",
        ),
    ],
    group: Annotated[
        str | None,
        typer.Option(
            "--group",
            "-g",
            help="The group to move: by name (shipped or installed) or group id.",
        ),
    ] = None,
    app: Annotated[
        str | None,
        typer.Option("--app", help="A team's group declaration as module:attribute."),
    ] = None,
    topic: Annotated[
        list[str] | None,
        typer.Option("--topic", "-t", help="Only these topics (default: all the group's)."),
    ] = None,
    execute: Annotated[
        bool,
        typer.Option("--execute", help="Apply the plan; without it only the plan is shown."),
    ] = False,
) -> None:
    """Move a group's committed offsets so it re-reads retained events (shows the plan first)."""
    settings = AgentfluxSettings()
    spec: GroupSpec | None
    if app is not None:
        spec = load_app(app)
        group_id = spec.group_id
    elif group is not None:
        group_id, spec = declared_or_raw(group)
    else:
        raise InputError("name the group: --group NAME (or group id), or --app module:attribute")
    # A declared group's topics are known even before it ever committed.
    topic = topic or (spec.topics(settings) if spec is not None else None)
    try:
        target = parse_replay_target(to)
    except ReplayTargetError as exc:
        raise typer.BadParameter(str(exc), param_hint="--to") from exc

    async def _run() -> None:
        plan = await plan_replay(settings, group_id, target, topic)
        table = Table("topic", "partition", "committed now", "new offset")
        for tp, (old, new) in plan.moves.items():
            table.add_row(tp.topic, str(tp.partition), "-" if old is None else str(old), str(new))
        _console.print(f"replay plan for group [bold]{group_id}[/bold] to {to}:")
        _console.print(table)
        if not execute:
            _console.print("nothing changed; run again with --execute to apply")
            return
        await execute_replay(settings, plan)
        _console.print(f"moved {len(plan.changes)} partition(s); restart the group to reprocess")

    run_event_loop(_run())


def register(app: typer.Typer) -> None:
    """Add the offset commands to the root command line."""
    app.command()(lag)
    app.command()(replay)
