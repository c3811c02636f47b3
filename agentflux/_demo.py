"""``agentflux demo``: the whole platform end to end on the embedded default, then tidy up.

Starts a fresh local cluster and registry, applies the topics, registers the schemas, runs the
context, metrics and audit groups on SQLite, publishes simulated sessions, waits until every
group has caught up (lag 0), prints what the views say, and stops everything it started.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any

from rich.table import Table

from agentflux._local import LocalCluster
from agentflux._offsets import group_lag
from agentflux._schemas import register_schemas
from agentflux._topics import apply_topics
from agentflux.consumers import (
    GroupRunner,
    SqliteStore,
    get_audit_log,
    get_context,
    get_metrics,
    verify_audit,
)
from agentflux.consumers._groups import SHIPPED_GROUPS, shipped_runner
from agentflux.kafka import AgentfluxSettings
from agentflux.producers import EventPublisher, Simulator
from agentflux.schemas import EventType, RegistryClient, load_topics

if TYPE_CHECKING:
    from pathlib import Path

    from rich.console import Console

    from agentflux.schemas import BaseEvent

__all__ = ["run_demo"]


def _say(console: Console, step: str, started: float) -> None:
    console.print(
        f"[bold cyan]>[/bold cyan] {step} [dim]({time.perf_counter() - started:.1f} s)[/dim]"
    )


async def _catch_up(
    settings: AgentfluxSettings, runners: dict[str, GroupRunner], events: list[BaseEvent]
) -> None:
    for name, runner in runners.items():
        categories = SHIPPED_GROUPS[name].categories
        await runner.wait_handled(sum(1 for e in events if e.EVENT_TYPE.category in categories))
    # Handled is not yet committed: ask the broker until every group's committed lag is 0.
    groups = [r.group_id for r in runners.values()]
    while True:
        if sum(row.lag for row in await group_lag(settings, groups)) == 0:
            return
        await asyncio.sleep(0.2)  # poll interval between two offset queries: brokers do not notify


def _pick_session(events: list[BaseEvent]) -> str:
    switches: dict[str, int] = {}
    for event in events:
        if event.EVENT_TYPE is EventType.AGENT_SWITCHED:
            switches[event.session_id] = switches.get(event.session_id, 0) + 1
    return max(switches, key=lambda s: (switches[s], s))


async def _summary(
    console: Console,
    stores: dict[str, SqliteStore],
    events: list[BaseEvent],
    settings: AgentfluxSettings,
    runners: dict[str, GroupRunner],
) -> bool:
    from agentflux._cli_consume import print_metrics  # noqa: PLC0415  # the CLI's table renderer

    lag = Table("group", "partitions", "committed lag", title="consumer groups")
    for name, runner in runners.items():
        rows = await group_lag(settings, [runner.group_id])
        lag.add_row(SHIPPED_GROUPS[name].group_id, str(len(rows)), str(sum(r.lag for r in rows)))
    console.print(lag)

    session = _pick_session(events)
    context: dict[str, Any] | None = await get_context(stores["context"], session)
    assert context is not None  # noqa: S101  # the session was just published and consumed
    console.rule(f"context of {session}")
    console.print(
        f"status {context['status']}, current agent [bold]{context['current_agent']}[/bold], "
        f"{context['message_count']} messages, "
        f"tools in flight {[t['call_id'] for t in context['tools_in_flight']]}, "
        f"pending approvals {context['pending_approvals']}",
    )
    for handover in context["handovers"]:
        console.print(f"  {handover['from_agent']} → {handover['to_agent']}: {handover['reason']}")

    console.rule("metrics")
    print_metrics(await get_metrics(stores["metrics"]))

    console.rule(f"audit trail of {session} (first 6)")
    for row in await get_audit_log(stores["audit"], session_id=session, limit=6):
        console.print(
            f"  #{row['seq']} {row['event_type']:<28} {row['event_id']}  hash {row['hash'][:16]}…"
        )
    problems = await verify_audit(stores["audit"])
    console.print(
        "[green]audit chains verified: intact[/green]"
        if not problems
        else f"[red]{len(problems)} broken link(s)[/red]"
    )
    return not problems


async def run_demo(state_dir: Path, *, sessions: int, seed: int, console: Console) -> bool:
    """Run the demo in ``state_dir`` (wiped first); True when every check passed."""
    started = time.perf_counter()
    shutil.rmtree(state_dir, ignore_errors=True)
    cluster = LocalCluster(state_dir)
    try:
        _say(console, "starting Kafka (KRaft) and Apicurio Registry", started)
        state = await asyncio.to_thread(cluster.up, 1)
        settings = AgentfluxSettings(
            bootstrap_servers=state.bootstrap_servers,
            registry_url=state.registry_url,
            topic_prefix="",
        )
        console.print(f"  kafka {state.bootstrap_servers}, registry {state.registry_url}")
        _say(console, "applying topics (schemas/topics.yaml)", started)
        changes, _warnings = await apply_topics(settings, load_topics().topics)
        console.print(f"  {len(changes)} topic(s) created")
        _say(console, "registering the Avro schemas", started)
        async with RegistryClient.from_settings(settings) as registry:
            refusals, ids = await register_schemas(registry)
        if refusals:
            console.print(*refusals, sep="\n")
            return False
        console.print(f"  {len(ids)} subjects at BACKWARD_TRANSITIVE")

        async with AsyncExitStack() as stack:
            stores = {
                name: await stack.enter_async_context(SqliteStore(state_dir / f"{name}.db"))
                for name in SHIPPED_GROUPS
            }
            runners = {
                name: shipped_runner(name, stores[name], settings) for name in SHIPPED_GROUPS
            }
            for runner in runners.values():
                await stack.enter_async_context(runner)
            _say(console, "consumer groups context, metrics and audit running", started)

            events = list(Simulator(sessions=sessions, seed=seed).events())
            _say(
                console,
                f"publishing {len(events)} events of {sessions} simulated sessions",
                started,
            )
            published_at = time.perf_counter()
            async with EventPublisher(settings) as publisher:
                await publisher.prepare()  # as a runtime starts: no event waits for the registry
                for event in events:
                    await publisher.send(event)
            console.print(f"  acknowledged in {time.perf_counter() - published_at:.1f} s")
            _say(console, "waiting until every group has caught up (lag 0)", started)
            async with asyncio.timeout(300):
                await _catch_up(settings, runners, events)
            _say(console, "caught up", started)
            return await _summary(console, stores, events, settings, runners)
    finally:
        _say(console, "stopping everything the demo started", started)
        await asyncio.to_thread(cluster.down)
