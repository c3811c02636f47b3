"""``agentflux schemas check|register``, ``agentflux topics apply|describe``, ``agentflux docs``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from agentflux._schemas import check_schemas, register_schemas
from agentflux._topics import PartitionDecreaseError, apply_topics, describe_topics
from agentflux.kafka import AgentfluxSettings, run_event_loop
from agentflux.schemas import RegistryClient, RegistryError, load_topics

__all__ = ["register"]

_console = Console(soft_wrap=True)
_err = Console(stderr=True, soft_wrap=True)

schemas_app = typer.Typer(
    help="The Avro contract: compatibility gate and registration.", no_args_is_help=True
)
topics_app = typer.Typer(help="Topics as code (schemas/topics.yaml).", no_args_is_help=True)

Root = Annotated[
    Path | None,
    typer.Option("--root", help="The schemas/avro folder to judge (default: the project's)."),
]


@schemas_app.command("check")
def schemas_check(root: Root = None) -> None:
    """Check every schema against its released versions under its level, offline."""
    problems, notes = check_schemas(root)
    for note in notes:
        _console.print(f"note: {note}")
    if problems:
        for problem in problems:
            _err.print(f"[red]incompatible:[/red] {problem}")
        raise typer.Exit(code=1)
    _console.print("all schemas compatible with their released versions")


@schemas_app.command("register")
def schemas_register(root: Root = None) -> None:
    """Register every schema in the registry; refuse all if the registry refuses one."""

    async def _run() -> tuple[list[str], dict[str, int]]:
        async with RegistryClient.from_settings(AgentfluxSettings()) as registry:
            return await register_schemas(registry, root)

    try:
        refusals, ids = run_event_loop(_run())
    except RegistryError as exc:
        _err.print(f"[red]registry error:[/red] {exc}")
        raise typer.Exit(code=1) from exc
    if refusals:
        for refusal in refusals:
            _err.print(f"[red]refused:[/red] {refusal}")
        _err.print("nothing was registered")
        raise typer.Exit(code=1)
    for subject, schema_id in sorted(ids.items()):
        _console.print(f"{subject}: id {schema_id}")


@topics_app.command("apply")
def topics_apply(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the changes, make none.")
    ] = False,
    delete: Annotated[
        list[str] | None,
        typer.Option(
            "--delete", help="Delete this existing topic if it is no longer declared (repeatable)."
        ),
    ] = None,
) -> None:
    """Create missing topics, align configs that differ, grow partitions; print what changed."""
    declaration = load_topics()
    try:
        changes, warnings = run_event_loop(
            apply_topics(
                AgentfluxSettings(),
                declaration.topics,
                dry_run=dry_run,
                delete_undeclared=delete or (),
            ),
        )
    except PartitionDecreaseError as exc:
        _err.print(f"[red]refused:[/red] {exc}")
        raise typer.Exit(code=1) from exc
    for warning in warnings:
        _err.print(f"[yellow]warning:[/yellow] {warning}")
    for change in changes:
        _console.print(("would " if dry_run else "") + str(change))
    if not changes:
        _console.print("no change: the cluster matches the declaration")


@topics_app.command("describe")
def topics_describe(
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
) -> None:
    """Show each declared topic as the cluster has it: partitions, replication, retention."""
    declaration = load_topics()
    states = run_event_loop(
        describe_topics(AgentfluxSettings(), [t.name for t in declaration.topics])
    )
    if as_json:
        described = {
            name: {
                "partitions": s.partitions,
                "replication_factor": s.replication_factor,
                "configs": s.configs,
            }
            for name, s in states.items()
        }
        print(json.dumps(described, indent=2))
        return
    table = Table(
        "topic",
        "partitions",
        "replication",
        "min ISR",
        "retention.ms",
        "retention.bytes",
        "cleanup",
        "owner",
    )
    for spec in declaration.topics:
        state = states.get(spec.name)
        if state is None:
            table.add_row(spec.name, "[red]missing[/red]", "", "", "", "", "", spec.owner)
            continue
        configs = state.configs
        table.add_row(
            spec.name,
            str(state.partitions),
            str(state.replication_factor),
            configs.get("min.insync.replicas", "(broker default)"),
            configs.get("retention.ms", "(broker default)"),
            configs.get("retention.bytes", "(broker default)"),
            configs.get("cleanup.policy", "(broker default)"),
            spec.owner,
        )
    _console.print(table)


def register(app: typer.Typer) -> None:
    """Add the contract commands to the root command line."""
    app.add_typer(schemas_app, name="schemas")
    app.add_typer(topics_app, name="topics")
