"""``agentflux consume`` (the shipped groups as services) and their queries."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime  # noqa: TC003  # typer reads the annotation at run time
from typing import TYPE_CHECKING, Annotated, Any, TypeAlias

import structlog
import typer
from prometheus_client import generate_latest
from rich.console import Console
from rich.table import Table

from agentflux._accelerations import accelerations_line
from agentflux.consumers import (
    get_audit_log,
    get_context,
    get_metrics,
    open_store,
    render_prometheus,
    verify_audit,
)
from agentflux.consumers._groups import SHIPPED_GROUPS, shipped_runner
from agentflux.kafka import AgentfluxSettings, run_event_loop

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from agentflux.consumers import GroupRunner, Store

    Route: TypeAlias = Callable[[], Awaitable[tuple[int, str, bytes]]]

__all__ = ["register", "serve_http"]

_log = structlog.get_logger("agentflux.service")
_console = Console(soft_wrap=True)
_err = Console(stderr=True, soft_wrap=True)

StoreUrl = Annotated[
    str | None,
    typer.Option(
        "--store", help="sqlite:///path.db or postgresql://... (default: AGENTFLUX_STORE_URL)."
    ),
]


async def serve_http(
    port: int, routes: dict[str, Callable[[], Awaitable[tuple[int, str, bytes]]]]
) -> asyncio.Server:
    """A minimal HTTP/1.0 responder on 127.0.0.1 for GET routes (health and metrics)."""

    async def respond(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = (await reader.readline()).decode(errors="replace").split()
            while (await reader.readline()).strip():
                pass  # skip the request headers
            path = request[1] if len(request) > 1 else "/"
            route = routes.get(path.split("?", 1)[0])
            status, content_type, body = (
                await route() if route else (404, "text/plain", b"not found\n")
            )
            writer.write(
                f"HTTP/1.0 {status} {'OK' if status == 200 else 'ERROR'}\r\n"  # noqa: PLR2004  # HTTP status
                f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                + body,
            )
            await writer.drain()
        finally:
            writer.close()

    return await asyncio.start_server(respond, "127.0.0.1", port)


def _store(url: str | None) -> Store:
    return open_store(url or AgentfluxSettings().store_url)


def consume(  # one typer option per setting
    group: Annotated[str, typer.Argument(help="context | metrics | audit")],
    store: StoreUrl = None,
    port: Annotated[
        int, typer.Option("--port", help="Health and metrics HTTP port (0: none).")
    ] = 0,
    instance_id: Annotated[
        str | None, typer.Option("--instance-id", help="Static membership id.")
    ] = None,
    group_id: Annotated[
        str | None, typer.Option("--group-id", help="Override the group id.")
    ] = None,
) -> None:
    """Run a shipped consumer group as a long-lived service until SIGTERM/SIGINT."""
    if group not in SHIPPED_GROUPS:
        raise typer.BadParameter(f"choose one of {', '.join(SHIPPED_GROUPS)}", param_hint="GROUP")

    # The same line at every service's start: which accelerations run, and why any is off.
    _log.info(accelerations_line(), group=group)

    async def _run() -> None:
        async with _store(store) as opened:
            runner = shipped_runner(group, opened, group_id=group_id, group_instance_id=instance_id)
            server = await serve_http(port, _routes(group, runner, opened)) if port else None
            try:
                await runner.run(install_signal_handlers=True)
            finally:
                if server is not None:
                    server.close()
                    await server.wait_closed()

    run_event_loop(_run())


def _routes(
    group: str, runner: GroupRunner, store: Store
) -> dict[str, Callable[[], Awaitable[tuple[int, str, bytes]]]]:
    async def health() -> tuple[int, str, bytes]:
        status = {
            "group": runner.group_id,
            "assigned": runner.ready.is_set(),
            "handled": runner.handled,
        }
        return 200, "application/json", json.dumps(status).encode()

    async def metrics() -> tuple[int, str, bytes]:
        own = generate_latest(runner.metrics.registry)
        view = await render_prometheus(store) if group == "metrics" else b""
        return 200, "text/plain; version=0.0.4", own + view

    return {"/health": health, "/metrics": metrics}


def context(session_id: str, store: StoreUrl = None) -> None:
    """Show one session's context as JSON."""

    async def _run() -> dict[str, Any] | None:
        async with _store(store) as opened:
            return await get_context(opened, session_id)

    found = run_event_loop(_run())
    if found is None:
        _err.print(f"no context for session {session_id}")
        raise typer.Exit(code=1)
    print(json.dumps(found, indent=2))


def metrics(
    store: StoreUrl = None,
    prometheus: Annotated[
        bool, typer.Option("--prometheus", help="Prometheus text format.")
    ] = False,
) -> None:
    """Show the metrics view: agents, tools, approvals, errors, events per type."""

    async def _run() -> tuple[dict[str, Any], bytes]:
        async with _store(store) as opened:
            return await get_metrics(opened), await render_prometheus(opened)

    figures, text = run_event_loop(_run())
    if prometheus:
        print(text.decode())
        return
    print_metrics(figures)


def print_metrics(figures: dict[str, Any]) -> None:
    """The metrics as readable tables."""
    _console.print(f"events: {figures['total_events']}")
    agents = Table("agent", "LLM calls", "avg duration ms", "tokens", title="agents")
    for agent, row in figures["agents"].items():
        agents.add_row(
            agent, str(row["calls"]), f"{row['avg_duration_ms']:.0f}", str(row["tokens"])
        )
    tools = Table("tool", "completed", "failed", "success rate", title="tools")
    for tool, row in figures["tools"].items():
        rate = "-" if row["success_rate"] is None else f"{row['success_rate']:.1%}"
        tools.add_row(tool, str(row["completed"]), str(row["failed"]), rate)
    _console.print(agents, tools)
    approvals = figures["approvals"]
    rate = "-" if approvals["approval_rate"] is None else f"{approvals['approval_rate']:.1%}"
    latency = (
        "-" if approvals["avg_latency_ms"] is None else f"{approvals['avg_latency_ms']:.0f} ms"
    )
    _console.print(
        f"approvals: {approvals['approved']} approved, {approvals['rejected']} rejected, "
        f"{approvals['timed_out']} timed out; approval rate {rate}; average latency {latency}",
    )
    _console.print(f"errors by type: {figures['errors_by_type']}")


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

    async def _run() -> list[dict[str, Any]]:
        async with _store(store) as opened:
            return await get_audit_log(
                opened,
                session_id=session,
                event_type=event_type,
                since=since,
                until=until,
                limit=limit,
            )

    for row in run_event_loop(_run()):
        print(
            json.dumps(
                {k: v for k, v in row.items() if k != "payload"} | {"payload": row["payload"]}
            )
        )


@audit_app.command("verify")
def audit_verify(store: StoreUrl = None) -> None:
    """Report every audit record that was changed or removed; exit 1 if any."""

    async def _run() -> list[str]:
        async with _store(store) as opened:
            return await verify_audit(opened)

    problems = run_event_loop(_run())
    for problem in problems:
        _err.print(f"[red]broken:[/red] {problem}")
    if problems:
        raise typer.Exit(code=1)
    _console.print("audit chains intact")


def register(app: typer.Typer) -> None:
    """Add the read-side commands to the root command line."""
    for command in (consume, context, metrics):
        app.command()(command)
    app.add_typer(audit_app, name="audit")
