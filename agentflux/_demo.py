"""``agentflux demo``: the whole platform end to end on the embedded default, then tidy up.

Starts a fresh local cluster and registry, applies the topics, registers the schemas, runs the
context, metrics and audit groups on SQLite and the HITL timeout job, publishes simulated
sessions, waits until every unanswered approval has timed out and every group has caught up
(lag 0), prints what the views say, and stops everything it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

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
from agentflux.consumers._groups import SHIPPED_GROUPS, VIEW_GROUPS, shipped_service
from agentflux.kafka import AgentfluxSettings
from agentflux.producers import EventPublisher, Simulator
from agentflux.schemas import (
    EventCategory,
    EventType,
    HitlApprovalRequestedEvent,
    HitlDecisionMadeEvent,
    RegistryClient,
    load_topics,
)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from rich.console import Console

    from agentflux.consumers._timeouts import HitlTimeoutJob
    from agentflux.schemas import BaseEvent

    Service = GroupRunner | HitlTimeoutJob

__all__ = ["run_demo"]

_AUDIT_EXCERPT = 5  # records of the chosen session's chain shown
_HANDOVERS_SHOWN = 8  # agents named in the handover chain before it is cut short
# The simulated approvals' timeout: short, so that the unanswered ones time out while the demo
# runs (the answered ones are decided within a few hundred milliseconds).
_APPROVAL_TIMEOUT_S = 3


class _Steps:
    """One line per finished step, with the time since the demo started."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.started = time.perf_counter()

    def done(self, text: str) -> None:
        elapsed = time.perf_counter() - self.started
        self.console.print(f"[green]✓[/green] {text} [dim]({elapsed:.1f} s)[/dim]", highlight=False)

    @contextlib.contextmanager
    def waiting(self, text: str) -> Iterator[None]:
        """A spinner while a step runs, on a terminal only; gone once the step is done."""
        if not self.console.is_terminal:
            yield
            return
        with self.console.status(text):
            yield

    def bars(self) -> Progress:
        """Progress bars that vanish when done (their step's line stays), on a terminal only."""
        return Progress(
            TextColumn("  {task.description:<10}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("events"),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
            disable=not self.console.is_terminal,
        )


async def _publish(settings: AgentfluxSettings, events: list[BaseEvent], steps: _Steps) -> float:
    """Publish every event, acknowledged; the seconds it took."""
    started = time.perf_counter()
    with steps.bars() as bars:
        task = bars.add_task("publishing", total=len(events))
        async with EventPublisher(settings) as publisher:
            await publisher.prepare()  # as a runtime starts: no event waits for the registry
            for count, event in enumerate(events, 1):
                await publisher.send(event)
                if count % 100 == 0:  # a redraw per event would cost more than the event
                    bars.update(task, completed=count)
            await publisher.flush()
        bars.update(task, completed=len(events))
    return time.perf_counter() - started


def _unanswered_approvals(events: list[BaseEvent]) -> int:
    """Approvals requested and never decided: each ends with a timeout from the timeout job."""
    requested = {
        (e.session_id, e.approval_id) for e in events if isinstance(e, HitlApprovalRequestedEvent)
    }
    decided = {
        (e.session_id, e.approval_id) for e in events if isinstance(e, HitlDecisionMadeEvent)
    }
    return len(requested - decided)


async def _catch_up(
    settings: AgentfluxSettings,
    runners: dict[str, Service],
    events: list[BaseEvent],
    steps: _Steps,
) -> None:
    """Wait until every group handled its events (and the job's timeouts), then committed."""
    timeouts = _unanswered_approvals(events)
    wanted = {
        name: sum(1 for e in events if e.EVENT_TYPE.category in SHIPPED_GROUPS[name].categories)
        + (timeouts if EventCategory.HITL in SHIPPED_GROUPS[name].categories else 0)
        for name in runners
    }
    with steps.bars() as bars:
        tasks = {name: bars.add_task(name, total=wanted[name]) for name in runners}
        while True:
            for name, runner in runners.items():
                if runner.finished:
                    runner.raise_failure()  # a group that stopped will never catch up
                bars.update(tasks[name], completed=min(runner.handled, wanted[name]))
            if all(runners[name].handled >= wanted[name] for name in runners):
                break
            await asyncio.sleep(0.1)  # a redraw's pace; handling goes on meanwhile
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


def _print_context(console: Console, context: dict[str, Any]) -> None:
    console.print(
        f"status [bold]{context['status']}[/bold] · agent [bold]{context['current_agent']}"
        f"[/bold] · {context['message_count']} messages · "
        f"{len(context['tools_in_flight'])} tool(s), "
        f"{len(context['pending_approvals'])} approval(s) open",
        highlight=False,
    )
    handovers = context["handovers"]
    if handovers:
        agents = [handovers[0]["from_agent"], *(h["to_agent"] for h in handovers)]
        chain = " → ".join(agents[:_HANDOVERS_SHOWN]) + (
            " → …" if len(agents) > _HANDOVERS_SHOWN else ""
        )
        console.print(f"handovers ({len(handovers)}): {chain}", highlight=False)


async def _summary(
    console: Console,
    stores: dict[str, SqliteStore],
    events: list[BaseEvent],
    settings: AgentfluxSettings,
    runners: dict[str, Service],
) -> tuple[bool, str]:
    """Print what the views say; whether the audit chains are intact, and the session shown."""
    from agentflux._cli_consume import print_metrics  # noqa: PLC0415  # the CLI's table renderer

    lags = [
        f"{runner.group_id} {sum(r.lag for r in await group_lag(settings, [runner.group_id]))}"
        for runner in runners.values()
    ]
    console.print(f"committed lag: {', '.join(lags)}", highlight=False)

    session = _pick_session(events)
    context: dict[str, Any] | None = await get_context(stores["context"], session)
    assert context is not None  # noqa: S101  # the session was just published and consumed
    console.rule(f"context of session {session}")
    _print_context(console, context)

    console.rule("metrics")
    figures = await get_metrics(stores["metrics"])
    print_metrics(figures, console=console)
    unanswered = _unanswered_approvals(events)
    statuses = {
        row["status"]: int(row["n"])
        for row in await stores["context"].rows(
            "SELECT status, COUNT(*) AS n FROM ctx_approvals GROUP BY status"
        )
    }
    timed_out = (
        figures["approvals"]["timed_out"] == statuses.get("timed_out") == unanswered
        and "pending" not in statuses
    )
    console.print(
        f"[green]✓ {unanswered} unanswered approvals timed out (timeout job), none pending[/green]"
        if timed_out
        else f"[red]✗ of {unanswered} unanswered approval(s), timed out: "
        f"{statuses.get('timed_out', 0)} in context, {figures['approvals']['timed_out']} in "
        f"metrics; {statuses.get('pending', 0)} pending[/red]"
    )

    # In chain order: the order the runtime published the session's events (one producer here).
    chain = await get_audit_log(stores["audit"], session_id=session, limit=1_000_000)
    console.rule(f"audit chain of {session}: first {_AUDIT_EXCERPT} of {len(chain)} records")
    for row in chain[:_AUDIT_EXCERPT]:
        console.print(
            f"  #{row['seq']:<3} {row['event_type']:<28} hash {row['hash'][:16]}…",
            highlight=False,
        )
    problems = await verify_audit(stores["audit"])
    console.print(
        "[green]✓ audit chains verified: intact[/green]"
        if not problems
        else f"[red]✗ {len(problems)} problem(s) in the audit chains[/red]"
    )
    return not problems and timed_out, session


def _next_steps(console: Console, state_dir: Path, session: str) -> None:
    console.print(
        f"next: `agentflux context {session} --store sqlite:///{state_dir / 'context.db'}`\n"
        "      `agentflux up`, `agentflux tail` (events live) · the docs: `make docs`",
        highlight=False,
    )


async def run_demo(state_dir: Path, *, sessions: int, seed: int, console: Console) -> bool:
    """Run the demo in ``state_dir`` (wiped first); True when every check passed."""
    steps = _Steps(console)
    console.print(
        f"[bold]agentflux demo[/bold]: Kafka, a schema registry, 3 views on SQLite, "
        f"the HITL timeout job, {sessions} sessions",
        highlight=False,
    )
    shutil.rmtree(state_dir, ignore_errors=True)
    cluster = LocalCluster(state_dir)
    try:
        with steps.waiting("starting Kafka (KRaft) and Apicurio Registry…"):
            state = await asyncio.to_thread(cluster.up, 1)
        settings = AgentfluxSettings(
            bootstrap_servers=state.bootstrap_servers,
            registry_url=state.registry_url,
            topic_prefix="",
        )
        registry_at = urlsplit(state.registry_url).netloc
        steps.done(f"Kafka at {state.bootstrap_servers}, schema registry at {registry_at}")
        with steps.waiting("applying topics and registering schemas…"):
            changes, _warnings = await apply_topics(settings, load_topics().topics)
            async with RegistryClient.from_settings(settings) as registry:
                registration = await register_schemas(registry)
        if registration.refused:
            console.print(*registration.reasons(), sep="\n")
            return False
        steps.done(
            f"{len(changes)} topic change(s) applied, {len(registration.ids)} schemas registered"
        )

        async with AsyncExitStack() as stack:
            stores = {
                name: await stack.enter_async_context(SqliteStore(state_dir / f"{name}.db"))
                for name in VIEW_GROUPS
            }
            runners: dict[str, Service] = {
                name: shipped_service(name, stores.get(name), settings) for name in SHIPPED_GROUPS
            }
            for runner in runners.values():
                await stack.enter_async_context(runner)
            steps.done(f"groups {', '.join(runners)} running, the views in SQLite")

            events = list(
                Simulator(
                    sessions=sessions, seed=seed, approval_timeout_s=_APPROVAL_TIMEOUT_S
                ).events()
            )
            seconds = await _publish(settings, events, steps)
            steps.done(f"published {len(events)} events, all acknowledged, in {seconds:.1f} s")
            async with asyncio.timeout(300):
                await _catch_up(settings, runners, events, steps)
            steps.done(
                "caught up: every unanswered approval timed out, every group committed "
                "what it handled"
            )
            ok, session = await _summary(console, stores, events, settings, runners)
    finally:
        with steps.waiting("stopping the cluster…"):
            await asyncio.to_thread(cluster.down)
    steps.done("stopped everything the demo started")
    _next_steps(console, state_dir, session)
    return ok
