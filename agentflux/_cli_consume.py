"""``agentflux consume`` (any group as a service), ``agentflux groups``, the views' queries."""

from __future__ import annotations

import json
from datetime import datetime  # noqa: TC003  # typer reads the annotation at run time
from typing import TYPE_CHECKING, Annotated, Any

import structlog
import typer
from rich import box
from rich.console import Console
from rich.table import Table

from agentflux._accelerations import accelerations_line
from agentflux._cli_errors import InputError, NotFoundError, RefusedError
from agentflux._cli_stores import shown_url, view_store
from agentflux._group_lookup import find_group, known_groups
from agentflux._health_http import DEFAULT_HEALTH_HOST, health_routes, serve_http
from agentflux._rebuild import audit_against_topics
from agentflux.consumers import (
    ChainReport,
    audit_report,
    get_audit_log,
    get_context,
    get_metrics,
    render_prometheus,
)
from agentflux.consumers._start import place_new_group
from agentflux.kafka import AgentfluxSettings, run_event_loop
from agentflux.schemas import EventType

if TYPE_CHECKING:
    from agentflux.consumers import Store

__all__ = ["register"]

_log = structlog.get_logger("agentflux.service")
_console = Console(soft_wrap=True)
_err = Console(stderr=True, soft_wrap=True)
_EVENT_TYPES = tuple(t.value for t in EventType)

StoreUrl = Annotated[
    str | None,
    typer.Option(
        "--store", help="sqlite:///path.db or postgresql://... (default: AGENTFLUX_STORE_URL)."
    ),
]


AppOption = Annotated[
    str | None,
    typer.Option(
        "--app",
        help="A team's group declaration as module:attribute (an agentflux.consumers.GroupSpec).",
    ),
]


def consume(  # noqa: PLR0913, PLR0917  # one typer option per setting
    group: Annotated[
        str | None,
        typer.Argument(
            help="A shipped group (context | metrics | audit | hitl-timeouts) or an installed "
            "one (`agentflux groups`); or give --app."
        ),
    ] = None,
    app: AppOption = None,
    store: StoreUrl = None,
    port: Annotated[
        int,
        typer.Option("--port", help="Port of /livez, /readyz, /health and /metrics (0: none)."),
    ] = 0,
    host: Annotated[
        str,
        typer.Option(
            "--host",
            envvar="AGENTFLUX_HEALTH_HOST",
            help="Address the --port listens on (0.0.0.0: every interface, as in a container).",
        ),
    ] = DEFAULT_HEALTH_HOST,
    instance_id: Annotated[
        str | None, typer.Option("--instance-id", help="Static membership id.")
    ] = None,
    group_id: Annotated[
        str | None, typer.Option("--group-id", help="Override the group id.")
    ] = None,
) -> None:
    """Run a consumer group, shipped or a team's, as a long-lived service until SIGTERM/SIGINT."""
    spec = find_group(group, app=app)
    settings = AgentfluxSettings()
    gid = group_id or spec.group_id

    # The same line at every service's start: which accelerations run, and why any is off.
    _log.info(accelerations_line(), group=spec.name)

    async def _serve(opened: Store | None) -> None:
        placed = await place_new_group(settings, gid, spec.topics(settings), spec.start_point)
        if placed:
            _log.info("new group placed", group=gid, start=spec.start, partitions=len(placed))
        runner = spec.service(opened, settings, group_id=gid, group_instance_id=instance_id)
        routes = health_routes(spec, runner, opened)
        server = await serve_http(port, routes, host) if port else None
        try:
            await runner.run(install_signal_handlers=True)
        finally:
            if server is not None:
                server.close()
                await server.wait_closed()

    async def _run() -> None:
        if not spec.is_view:
            await _serve(None)  # a job or handlers alone keep no store
            return
        async with view_store(store, spec.name, read_only=False) as opened:
            await _serve(opened)

    run_event_loop(_run())


groups_app = typer.Typer(help="The consumer groups: shipped and installed.")


@groups_app.command("list")
def list_groups(
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines.")] = False,
) -> None:
    """List the shipped groups and those installed packages declare (agentflux.groups)."""
    settings = AgentfluxSettings()
    table = Table("name", "group id", "reads", "keeps", "starts at", "from")
    for found in known_groups():
        spec = found.spec
        keeps = "a view" if spec.is_view else "a job" if spec.is_job else "handlers"
        row = {
            "name": found.name,
            "group_id": spec.group_id,
            "topics": spec.topics(settings),
            "keeps": keeps,
            "start": spec.start,
            "origin": found.origin,
        }
        if as_json:
            print(json.dumps(row))
            continue
        table.add_row(
            found.name, spec.group_id, ", ".join(row["topics"]), keeps, spec.start, found.origin
        )
    if not as_json:
        _console.print(table)


def context(session_id: str, store: StoreUrl = None) -> None:
    """Show one session's context as JSON."""

    async def _run() -> dict[str, Any] | None:
        async with view_store(store, "context", read_only=True) as opened:
            return await get_context(opened, session_id)

    found = run_event_loop(_run())
    if found is None:
        raise NotFoundError(
            f"no session {session_id!r} in the context view at "
            f"{shown_url(store or AgentfluxSettings().store_url)}",
            "check the id (`agentflux audit --limit 5` shows some), "
            "or whether the context group has caught up (`agentflux lag`)",
        )
    print(json.dumps(found, indent=2))


def metrics(
    store: StoreUrl = None,
    prometheus: Annotated[
        bool, typer.Option("--prometheus", help="Prometheus text format.")
    ] = False,
) -> None:
    """Show the metrics view: agents, tools, approvals, errors, events per type."""

    async def _run() -> tuple[dict[str, Any], bytes]:
        async with view_store(store, "metrics", read_only=True) as opened:
            return await get_metrics(opened), await render_prometheus(opened)

    figures, text = run_event_loop(_run())
    if prometheus:
        print(text.decode())
        return
    print_metrics(figures)


def print_metrics(figures: dict[str, Any], console: Console = _console) -> None:
    """The metrics as readable tables (agents and tools side by side where they fit)."""
    console.print(f"events: {figures['total_events']}")
    compact: dict[str, Any] = {"box": box.SIMPLE_HEAD, "show_edge": False}  # fewer, shorter lines
    agents = Table("agent", "calls", "avg ms", "tokens", title="agents", **compact)
    for agent, row in figures["agents"].items():
        agents.add_row(
            agent, str(row["calls"]), f"{row['avg_duration_ms']:.0f}", str(row["tokens"])
        )
    tools = Table("tool", "done", "failed", "success", title="tools", **compact)
    for tool, row in figures["tools"].items():
        rate = "-" if row["success_rate"] is None else f"{row['success_rate']:.1%}"
        tools.add_row(tool, str(row["completed"]), str(row["failed"]), rate)
    side_by_side = Table.grid(padding=(0, 1))
    side_by_side.add_row(agents, tools)
    console.print(side_by_side)
    approvals = figures["approvals"]
    rate = "-" if approvals["approval_rate"] is None else f"{approvals['approval_rate']:.1%}"
    latency = (
        "-" if approvals["avg_latency_ms"] is None else f"{approvals['avg_latency_ms']:.0f} ms"
    )
    console.print(
        f"approvals: {approvals['approved']} approved, {approvals['rejected']} rejected, "
        f"{approvals['timed_out']} timed out ({approvals['late']} decided late); "
        f"rate {rate}; latency {latency}",
        highlight=False,
    )
    errors = " ".join(f"{kind}={count}" for kind, count in figures["errors_by_type"].items())
    console.print(f"errors: {errors or 'none'}", highlight=False)


audit_app = typer.Typer(help="Query and verify the audit trail.", invoke_without_command=True)


@audit_app.callback()
def audit(  # noqa: PLR0913, PLR0917  # one option per filter, as typer declares them
    ctx: typer.Context,
    session: Annotated[str | None, typer.Option("--session", "-s")] = None,
    event_type: Annotated[str | None, typer.Option("--type", "-t")] = None,
    since: Annotated[datetime | None, typer.Option("--since")] = None,
    until: Annotated[datetime | None, typer.Option("--until")] = None,
    limit: Annotated[int, typer.Option("--limit")] = 100,
    store: StoreUrl = None,
) -> None:
    """List audit records (filters combine); `agentflux audit verify` checks the hash chains."""
    if ctx.invoked_subcommand is not None:
        return
    if event_type is not None and event_type not in _EVENT_TYPES:
        raise InputError(
            f"unknown event type {event_type!r}", f"choose one of {', '.join(_EVENT_TYPES)}"
        )

    async def _run() -> list[dict[str, Any]]:
        async with view_store(store, "audit", read_only=True) as opened:
            return await get_audit_log(
                opened,
                session_id=session,
                event_type=event_type,
                since=since,
                until=until,
                limit=limit,
            )

    rows = run_event_loop(_run())
    if not rows and session is not None:
        raise NotFoundError(
            f"no audit record of session {session!r}"
            + (f" of type {event_type}" if event_type else "")
            + (" in that time range" if since or until else ""),
            "check the id, or whether the audit group has caught up (`agentflux lag`)",
        )
    for row in rows:
        print(
            json.dumps(
                {k: v for k, v in row.items() if k != "payload"} | {"payload": row["payload"]}
            )
        )


@audit_app.command("verify")
def audit_verify(
    store: StoreUrl = None,
    against_topics: Annotated[
        bool,
        typer.Option(
            "--against-topics",
            help="Also derive the chains again from the retained events and compare, hash by hash.",
        ),
    ] = False,
) -> None:
    """Check every session's audit chains: intact, gaps, late, tampered; exit 1 unless intact."""

    async def _run() -> tuple[dict[str, ChainReport], dict[str, list[str]]]:
        async with view_store(store, "audit", read_only=True) as opened:
            reports = await audit_report(opened)
            differences = (
                await audit_against_topics(opened, AgentfluxSettings()) if against_topics else {}
            )
            return reports, differences

    reports, differences = run_event_loop(_run())
    for session_id in sorted(reports.keys() | differences.keys()):
        report = reports.get(session_id) or ChainReport(session_id)
        status = report.status
        if differences.get(session_id) and not report.late:  # late events reorder a re-derivation
            status = "tampered"
        _console.print(
            f"{session_id}: {status} ({report.records} records, {report.gaps} gap(s), "
            f"{report.late} late, {report.pending} pending)",
            highlight=False,
        )
        for problem in [*(report.tampered or []), *differences.get(session_id, [])]:
            _err.print(f"  [red]{problem}[/red]", highlight=False)
    broken = [s for s, r in reports.items() if r.status in {"tampered", "gaps", "late"}]
    broken += [s for s in differences if s not in broken]  # differing from the topics
    if broken:
        raise RefusedError(
            f"{len(broken)} of {len(reports)} session(s) not intact",
            "gaps: events that never arrived; late: arrived after their gap was recorded; "
            "tampered: records edited or removed after they were recorded",
        )
    _console.print(f"audit chains intact: {len(reports)} session(s)")


def register(app: typer.Typer) -> None:
    """Add the read-side commands to the root command line."""
    for command in (consume, context, metrics):
        app.command()(command)
    app.add_typer(groups_app, name="groups")
    app.add_typer(audit_app, name="audit")
