"""``agentflux schemas check|register``, ``agentflux topics apply|describe``, ``agentflux docs``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
import yaml
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from agentflux._cli_errors import InputError, NotFoundError, RefusedError
from agentflux._cli_schema_generate import add_generate_command
from agentflux._cli_schema_review import add_review_commands
from agentflux._schemas import Registration, check_schemas, register_schemas
from agentflux._topics import apply_topics, describe_topics
from agentflux.kafka import AgentfluxSettings, run_event_loop
from agentflux.schemas import RegistryClient, load_topics

if TYPE_CHECKING:
    from agentflux.schemas import TopicsDeclaration

__all__ = ["register"]

_console = Console(soft_wrap=True)
_err = Console(stderr=True, soft_wrap=True)

schemas_app = typer.Typer(
    help="The Avro contract: compatibility gate and registration.", no_args_is_help=True
)
add_generate_command(schemas_app)
topics_app = typer.Typer(help="Topics as code (schemas/topics.yaml).", no_args_is_help=True)

TopicsFile = Annotated[
    Path | None,
    typer.Option(
        "--file",
        "-f",
        envvar="AGENTFLUX_TOPICS_FILE",
        help="The topics declaration to use (default: the one shipped, schemas/topics.yaml).",
    ),
]

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
            _err.print(f"[red]incompatible:[/red] {problem}", highlight=False)
        raise RefusedError(
            f"{len(problems)} incompatible change(s) against the released versions",
            "add defaults (or enum defaults) so every version can read every other",
        )
    _console.print("all schemas compatible with their released versions")


@schemas_app.command("register")
def schemas_register(
    root: Root = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Check, and show what would be set and registered."),
    ] = False,
) -> None:
    """Gate every schema (released history, then the registry), set levels, register all or none."""
    if root is not None and not root.is_dir():
        raise InputError(f"no schemas folder at {root}")
    settings = AgentfluxSettings()

    async def _run() -> Registration:
        async with RegistryClient.from_settings(settings) as registry:
            return await register_schemas(
                registry, root, topic_prefix=settings.topic_prefix, dry_run=dry_run
            )

    registration = run_event_loop(_run())
    for note in registration.notes:
        _console.print(f"note: {note}")
    would = "would be " if dry_run else ""
    if registration.problems:
        for problem in registration.problems:
            _err.print(f"[red]incompatible:[/red] {problem}", highlight=False)
        raise RefusedError(
            f"{len(registration.problems)} incompatible change(s) against the released "
            f"versions; nothing {would or 'was '}registered",
            "`agentflux schemas check` shows the same; add defaults (or enum defaults)",
        )
    if registration.refusals:
        for refusal in registration.reasons():
            _err.print(f"[red]refused:[/red] {refusal}", highlight=False)
        raise RefusedError(
            f"{len(registration.refusals)} schema(s) incompatible with the registry's versions; "
            f"nothing {would or 'was '}registered and no level changed",
            "a schema the registry has versions of must be compatible with them all",
        )
    _print_registration(registration)


def _print_registration(registration: Registration) -> None:
    """Each subject's level change and version: done, or (dry run) to do."""
    for state in registration.subjects:
        subject, level = state.item.subject, state.item.level
        if not state.level_ok:
            before = state.level or "the registry's global level"
            verb = "would set" if registration.dry_run else "set"
            _console.print(f"{subject}: {verb} level {level} (was {before})", highlight=False)
        if state.schema_id is not None:
            _console.print(f"{subject}: registered already, id {state.schema_id}")
        elif registration.dry_run:
            after = f"after v{max(state.versions)}" if state.versions else "its first"
            _console.print(f"{subject}: would register a new version ({after})")
        else:
            _console.print(f"{subject}: registered a new version, id {registration.ids[subject]}")


@topics_app.command("apply")
def topics_apply(
    file: TopicsFile = None,
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
    settings = AgentfluxSettings()
    declaration = _declaration(file, settings)
    changes, warnings = run_event_loop(
        apply_topics(
            settings,
            declaration.topics,
            dry_run=dry_run,
            delete_undeclared=delete or (),
        ),
    )
    for warning in warnings:
        _err.print(f"[yellow]warning:[/yellow] {warning}")
    for change in changes:
        _console.print(("would " if dry_run else "") + str(change))
    if not changes:
        _console.print("no change: the cluster matches the declaration")


@topics_app.command("describe")
def topics_describe(
    file: TopicsFile = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
) -> None:
    """Show each declared topic as the cluster has it: partitions, replication, retention."""
    settings = AgentfluxSettings()
    declaration = _declaration(file, settings)
    states = run_event_loop(describe_topics(settings, [t.name for t in declaration.topics]))
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


def _declaration(file: Path | None, settings: AgentfluxSettings) -> TopicsDeclaration:
    """The declaration in ``file`` (default: the shipped one), or why it cannot be used.

    Its topic names are those of the cluster: behind ``settings``' topic prefix, as publishers
    and consumer groups name them.
    """
    try:
        return load_topics(file).behind_prefix(settings.topic_prefix)
    except FileNotFoundError:
        raise NotFoundError(f"no topics declaration at {file}") from None
    except yaml.YAMLError as exc:
        raise InputError(f"{file} is not valid YAML: {_one_line(exc)}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top level)"
        raise InputError(
            f"{file} is not a topics declaration: {where}: {first['msg']}"
            + (f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""),
            "compare it with the shipped schemas/topics.yaml",
        ) from None


def _one_line(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    return f"line {mark.line + 1}: {problem}" if mark is not None else problem.splitlines()[0]


def register(app: typer.Typer) -> None:
    """Add the contract commands to the root command line."""
    add_review_commands(schemas_app)
    app.add_typer(schemas_app, name="schemas")
    app.add_typer(topics_app, name="topics")
