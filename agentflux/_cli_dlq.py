"""``agentflux dlq list|show|redrive``: a group's dead letters, inspected and re-driven."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from agentflux._cli_errors import NotFoundError, RefusedError
from agentflux._cli_stores import view_store
from agentflux._group_lookup import find_group
from agentflux.consumers._redrive import DeadLetter, read_dead_letters, redrive
from agentflux.kafka import AgentfluxSettings, run_event_loop
from agentflux.schemas import dead_letter_topic

if TYPE_CHECKING:
    from agentflux.consumers import GroupSpec, Store
    from agentflux.consumers._redrive import RedriveReport

__all__ = ["register"]

_console = Console(soft_wrap=True)
_err = Console(stderr=True, soft_wrap=True)

dlq_app = typer.Typer(
    help="Dead-letter topics: list, show, re-drive (or discard) a group's failed records."
)

GroupName = Annotated[
    str | None,
    typer.Option(
        "--group",
        "-g",
        help="The group: shipped (context | metrics | audit), installed (`agentflux groups`), "
        "or its group id.",
    ),
]
AppOption = Annotated[
    str | None,
    typer.Option("--app", help="A team's group declaration as module:attribute (not installed)."),
]
GroupIdOverride = Annotated[
    str | None, typer.Option("--group-id", help="Its group id, if not the default one.")
]


def _group(group: str | None, app: str | None, group_id: str | None) -> tuple[GroupSpec, str]:
    """The group's declaration and the group id its dead letters are kept under."""
    spec = find_group(group, app=app)
    return spec, group_id or spec.group_id


def _letters(group_id: str, *, include_redriven: bool) -> list[DeadLetter]:
    settings = AgentfluxSettings()
    return run_event_loop(
        read_dead_letters(
            settings, dead_letter_topic(group_id), group_id, include_redriven=include_redriven
        )
    )


@dlq_app.command("list")
def list_letters(
    group: GroupName = None,
    app: AppOption = None,
    group_id: GroupIdOverride = None,
    show_all: Annotated[
        bool, typer.Option("--all", help="Also the records already re-driven.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines.")] = False,
) -> None:
    """List the group's pending dead letters (all of them with --all)."""
    _spec, gid = _group(group, app, group_id)
    letters = _letters(gid, include_redriven=show_all)
    if as_json:
        for letter in letters:
            print(json.dumps(letter.summary()))
        return
    table = Table("partition", "offset", "status", "event type", "session", "error", "from")
    for letter in letters:
        row = letter.summary()
        table.add_row(
            str(row["partition"]),
            str(row["offset"]),
            str(row["status"]),
            str(row["event_type"]),
            str(row["session_id"]),
            str(row["error"])[:80],
            str(row["original"]),
        )
    _console.print(f"dead-letter topic {dead_letter_topic(gid)} of group {gid}:")
    _console.print(table)
    _console.print(f"{sum(1 for letter in letters if letter.pending)} pending")


@dlq_app.command("show")
def show(
    offset: Annotated[int, typer.Option("--offset", help="The record's offset in the DLQ.")],
    group: GroupName = None,
    app: AppOption = None,
    partition: Annotated[int, typer.Option("--partition", help="Its DLQ partition.")] = 0,
    group_id: GroupIdOverride = None,
) -> None:
    """Show one dead letter: its failure, all headers, and the event decoded if it can be."""
    _spec, gid = _group(group, app, group_id)
    letter = next(
        (
            candidate
            for candidate in _letters(gid, include_redriven=True)
            if (candidate.partition, candidate.offset) == (partition, offset)
        ),
        None,
    )
    if letter is None:
        raise NotFoundError(
            f"no record at partition {partition} offset {offset} of {dead_letter_topic(gid)}",
            f"`agentflux dlq list --group {gid} --all` lists them",
        )
    decoded = run_event_loop(_decode(letter))
    print(json.dumps(letter.summary() | {"headers": letter.headers, "event": decoded}, indent=2))


async def _decode(letter: DeadLetter) -> object:
    from agentflux.schemas import AvroCodec, BaseEvent, CodecError, RegistryClient  # noqa: PLC0415  # only show needs a codec

    async with RegistryClient.from_settings(AgentfluxSettings()) as registry:
        try:
            event = await AvroCodec(registry).decode(letter.value or b"")
        except CodecError as exc:
            return {"undecodable": str(exc), "bytes": (letter.value or b"")[:64].hex()}
    return event.model_dump(mode="json") if isinstance(event, BaseEvent) else repr(event)


@dlq_app.command("redrive")
def redrive_letters(  # noqa: PLR0913, PLR0917  # one typer option per choice
    group: GroupName = None,
    app: AppOption = None,
    offset: Annotated[
        list[str] | None,
        typer.Option(
            "--offset", help="Only these records, as OFFSET or PARTITION:OFFSET (repeatable)."
        ),
    ] = None,
    discard: Annotated[
        list[str] | None,
        typer.Option(
            "--discard",
            help="Mark these records done without applying them, as OFFSET or PARTITION:OFFSET "
            "(repeatable): for records that can never succeed, e.g. undecodable bytes.",
        ),
    ] = None,
    group_id: GroupIdOverride = None,
    store: Annotated[
        str | None,
        typer.Option("--store", help="The group's store URL (default: AGENTFLUX_STORE_URL)."),
    ] = None,
) -> None:
    """Send pending dead letters back through the group's view or handlers, once each."""
    spec, gid = _group(group, app, group_id)
    if spec.is_job:
        raise RefusedError(
            f"{spec.name} is a job: its dead letters are inspected, never re-driven",
            f"`agentflux dlq list --group {gid}` shows them",
        )
    chosen = None if offset is None else {_parse_choice(choice) for choice in offset}
    dropped = {_parse_choice(choice) for choice in discard or []}

    async def _redrive(opened: Store | None) -> RedriveReport:
        runner = spec.runner(opened, group_id=gid)
        if opened is not None:
            await opened.migrate([s for view in runner.views for s in view.ddl])
        try:
            return await redrive(runner, offsets=chosen, discard=dropped)
        finally:
            await runner.close_codec()

    async def _run() -> int:
        if spec.is_view:
            async with view_store(store, spec.name, read_only=False) as opened:
                report = await _redrive(opened)
        else:  # handlers alone: they must be idempotent themselves (no store remembers)
            report = await _redrive(None)
        for outcome in ("redriven", "already redriven", "skipped", "discarded", "not selected"):
            _console.print(f"{outcome}: {report.count(outcome)}")
        for letter, error in report.failed:
            _err.print(f"[red]still failing[/red] {letter.partition}:{letter.offset}: {error}")
        return len(report.failed)

    if failing := run_event_loop(_run()):
        raise RefusedError(
            f"{failing} dead letter(s) still failing; they stay pending",
            "fix the cause, then re-drive them again (or --discard those that never can)",
        )


def _parse_choice(choice: str) -> tuple[int, int]:
    partition, _, offset = choice.rpartition(":")
    try:
        return int(partition or 0), int(offset)
    except ValueError as exc:
        raise typer.BadParameter(f"{choice!r} is not OFFSET or PARTITION:OFFSET") from exc


def register(app: typer.Typer) -> None:
    """Add the dlq commands to the root command line."""
    app.add_typer(dlq_app, name="dlq")
