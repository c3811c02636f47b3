"""``agentflux tail``: decoded events as they arrive, readable or as JSON lines."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console

from agentflux._cli_errors import InputError
from agentflux._tail import tail_events
from agentflux.kafka import AgentfluxSettings, run_event_loop
from agentflux.schemas import EventCategory, EventType

__all__ = ["register"]

_err = Console(stderr=True, soft_wrap=True)
_CATEGORIES = {c.value: c for c in EventCategory}
_EVENT_TYPES = tuple(t.value for t in EventType)


def tail(  # noqa: PLR0913, PLR0917  # one typer option per filter
    topic: Annotated[
        list[str] | None,
        typer.Option(
            "--topic", "-t", help="A category (agent, session, ...) or a topic; default: all six."
        ),
    ] = None,
    session: Annotated[
        list[str] | None, typer.Option("--session", "-s", help="Only these session ids.")
    ] = None,
    event_type: Annotated[
        list[str] | None, typer.Option("--type", help="Only these event types (agent_switched …).")
    ] = None,
    start: Annotated[
        datetime | None,
        typer.Option("--from", help="Start at this time (UTC if no zone); default: from now on."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of text.")] = False,
    limit: Annotated[
        int | None, typer.Option("--limit", help="Stop after this many events.")
    ] = None,
    idle_timeout: Annotated[
        float | None,
        typer.Option("--idle-timeout", help="Stop when nothing arrives for this many seconds."),
    ] = None,
) -> None:
    """Print decoded events as they arrive (no consumer group: watching changes no offsets)."""
    unknown = [
        t for t in event_type or () if t not in _EVENT_TYPES and not t.startswith("unknown:")
    ]
    if unknown:
        raise InputError(
            f"unknown event type {', '.join(map(repr, unknown))}",
            f"choose among {', '.join(_EVENT_TYPES)} (or unknown:<record name>)",
        )
    settings = AgentfluxSettings()
    names = topic or [c.value for c in EventCategory]
    topics = [
        settings.topic_prefix + _CATEGORIES[name].topic if name in _CATEGORIES else name
        for name in names
    ]
    if start is not None and start.tzinfo is None:
        start = start.replace(tzinfo=UTC)

    async def _run() -> None:
        printed = 0
        items = tail_events(
            settings,
            topics,
            start=start,
            sessions=session or (),
            types=event_type or (),
            idle_timeout_s=idle_timeout,
        )
        async with contextlib.aclosing(items):  # stops the consumer when --limit is reached
            async for item in items:
                if item.error is not None:
                    _err.print(
                        f"[yellow]skipped undecodable record[/yellow] "
                        f"{item.topic}[{item.partition}]@{item.offset}: {item.error}"
                    )
                    continue
                print(item.as_json() if as_json else item.as_line(), flush=True)
                printed += 1
                if limit is not None and printed >= limit:
                    return

    with contextlib.suppress(KeyboardInterrupt):
        run_event_loop(_run())


def register(app: typer.Typer) -> None:
    """Add the tail command to the root command line."""
    app.command()(tail)
