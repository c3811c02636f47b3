"""The live groups on PostgreSQL: their lag under 10,000 events/s, and publish -> visible.

Each shipped view group runs as its own service process (``agentflux consume GROUP --store
postgresql://...``), as in production, each into a database of its own on a private PostgreSQL
server at default durability (:func:`bench._stores.postgres_server`). This process publishes
simulator traffic paced at a fixed rate and samples each group's lag once a second: the sum,
over the partitions the group reads, of the end offset minus the group's committed offset.

Publish -> visible: the context group alone, at 1,000 events/s; one event in five is a probe,
a ``session_message_added`` of one of a few probe sessions. A trigger on ``ctx_sessions``
sends a PostgreSQL notification (``pg_notify``, delivered when the transaction commits) with
the probe session's message count; the latency of a probe is from just before its
``send()`` call to the notification of its count reaching this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import statistics
import sys
import time
import uuid
from typing import TYPE_CHECKING, Any

import asyncpg

from agentflux._offsets import admin_client, partitions_of, probe_consumer
from agentflux.consumers import ContextView, PostgresStore
from agentflux.consumers._groups import SHIPPED_GROUPS
from agentflux.producers import EventPublisher, RateLimiter, Simulator
from agentflux.schemas import MessageRole, SessionMessageAddedEvent
from bench._cluster import make_topics
from bench._measure import percentile
from bench._stores import _new_database as new_database
from bench._stores import _server_facts as server_facts
from bench._stores import _spaced as spaced
from bench._stores import postgres_server

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from pathlib import Path

    from aiokafka.structs import TopicPartition

    from agentflux.kafka import AgentfluxSettings
    from agentflux.schemas import BaseEvent

__all__ = ["bench_live", "live_markdown"]

LIVE_GROUPS = ("context", "metrics", "audit")
_KEEP_UP_RATE = 10_000
_KEEP_UP_S = 60
_VISIBLE_RATE = 1_000
_VISIBLE_S = 30
_VISIBLE_WARMUP_S = 5
_PROBE_EVERY = 5  # one event in five is a probe
_PROBE_SESSIONS = 20
_POOL_SESSIONS = 2_000  # about 54,000 events
_JOIN_TIMEOUT_S = 60.0
_DRAIN_TIMEOUT_S = 120.0

_NOTIFY_DDL = (
    (
        "CREATE OR REPLACE FUNCTION bench_visible() RETURNS trigger AS $$ BEGIN "
        "IF NEW.session_id LIKE 'probe-%' THEN "
        "PERFORM pg_notify('bench_visible', NEW.session_id || ' ' || NEW.message_count); END IF; "
        "RETURN NEW; END $$ LANGUAGE plpgsql"
    ),
    (
        "CREATE TRIGGER bench_visible AFTER INSERT OR UPDATE ON ctx_sessions "
        "FOR EACH ROW EXECUTE FUNCTION bench_visible()"
    ),
)


def _traffic(prefix: str) -> Iterator[BaseEvent]:
    """Simulator sessions without end: one pool made first, then sent again as new sessions.

    The simulator takes ~50 µs an event: made as they were sent, they held the publisher to
    ~2,000 events/s on the 2-vCPU machine. A minute at 10k/s is 600k events, too many to make
    in advance; a copy with a new id and session (no validation) costs a few µs.
    """
    pool = list(Simulator(sessions=_POOL_SESSIONS, seed=1, session_prefix=prefix).events())
    yield from pool
    for round_number in itertools.count(1):
        for event in pool:
            update = {"event_id": uuid.uuid4(), "session_id": f"{event.session_id}.{round_number}"}
            yield event.model_copy(update=update)


@contextlib.asynccontextmanager
async def _service(
    settings: AgentfluxSettings, group: str, store_url: str, log: Path
) -> AsyncIterator[str]:
    """``agentflux consume GROUP`` in a process of its own; yields its group id."""
    group_id = f"bench-live-{group}-{uuid.uuid4().hex[:6]}"
    env = {
        **os.environ,
        "AGENTFLUX_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "AGENTFLUX_REGISTRY_URL": settings.registry_url,
        "AGENTFLUX_TOPIC_PREFIX": settings.topic_prefix,
    }
    command = ["-m", "agentflux", "consume", group, "--store", store_url, "--group-id", group_id]
    with log.open("wb") as output:
        process = await asyncio.create_subprocess_exec(
            sys.executable, *command, env=env, stdout=output, stderr=output
        )
    try:
        yield group_id
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 30)
            except TimeoutError:
                process.kill()
                await process.wait()


class _Lag:
    """Each group's lag over the partitions it reads, from Kafka's committed offsets."""

    def __init__(self, settings: AgentfluxSettings, groups: dict[str, str]) -> None:
        self.settings = settings
        self.groups = groups  # view name -> group id
        self.partitions: dict[str, list[TopicPartition]] = {}

    async def sample(self, admin: Any, probe: Any) -> dict[str, int]:
        every = sorted({tp for tps in self.partitions.values() for tp in tps})
        ends = await probe.end_offsets(every)
        lags: dict[str, int] = {}
        for view, group_id in self.groups.items():
            committed = await admin.list_consumer_group_offsets(group_id)
            lags[view] = sum(
                ends[tp] - max(committed[tp].offset if tp in committed else 0, 0)
                for tp in self.partitions[view]
            )
        return lags

    async def joined(self, admin: Any) -> None:
        """Wait until every group has a member (its first commit may come much later)."""
        async with asyncio.timeout(_JOIN_TIMEOUT_S):
            for group_id in self.groups.values():
                while True:
                    (described,) = await admin.describe_consumer_groups([group_id])
                    group = described.to_object()["groups"][0]
                    if group["state"] == "Stable" and group["members"]:
                        break
                    await asyncio.sleep(0.2)  # joining takes a few seconds: polled, not timed


def _pacer(rate: float) -> RateLimiter:
    """``rate`` events/s; 5 ms worth may catch up after a late wake-up (as ``bench._end_to_end``)."""
    return RateLimiter(rate, burst=max(2, int(rate * 0.005)))


async def _publish_paced(
    publisher: EventPublisher, events: Iterator[BaseEvent], rate: float, seconds: float
) -> tuple[int, float]:
    """Send ``rate`` events/s for ``seconds``; (events sent, the rate achieved)."""
    pacer = _pacer(rate)
    started = time.perf_counter()
    sent = 0
    while time.perf_counter() - started < seconds:
        await pacer.acquire()
        await publisher.enqueue(next(events))
        sent += 1
    await publisher.flush()
    return sent, sent / (time.perf_counter() - started)


async def _keep_up(settings: AgentfluxSettings, server_url: str, directory: Path) -> dict[str, Any]:
    """The three view groups live on PostgreSQL under ``_KEEP_UP_RATE`` events/s."""
    async with contextlib.AsyncExitStack() as services:
        groups = {}
        for view in LIVE_GROUPS:
            url = await new_database(server_url)
            log = directory / f"live-{view}.log"
            groups[view] = await services.enter_async_context(_service(settings, view, url, log))
        lag = _Lag(settings, groups)
        async with admin_client(settings) as admin, probe_consumer(settings) as probe:
            for view in LIVE_GROUPS:
                lag.partitions[view] = await partitions_of(
                    settings, probe, SHIPPED_GROUPS[view].topics(settings)
                )
            await lag.joined(admin)
            samples: list[dict[str, int]] = []

            async def sampled() -> None:
                while True:
                    await asyncio.sleep(1.0)
                    samples.append(await lag.sample(admin, probe))

            sampler = asyncio.create_task(sampled())
            try:
                async with EventPublisher(settings) as publisher:
                    sent, achieved = await _publish_paced(
                        publisher, _traffic("live"), _KEEP_UP_RATE, _KEEP_UP_S
                    )
            finally:
                sampler.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sampler
            drained = await _drained(lag, admin, probe)
    return {
        "rate": _KEEP_UP_RATE,
        "seconds": _KEEP_UP_S,
        "events_sent": sent,
        "achieved_rate": round(achieved),
        "groups": {
            view: {
                "max_lag": max((s[view] for s in samples), default=0),
                "final_lag": samples[-1][view] if samples else None,
                "lag_each_second": [s[view] for s in samples],
                "drained_after_s": drained.get(view),
            }
            for view in LIVE_GROUPS
        },
    }


async def _drained(lag: _Lag, admin: Any, probe: Any) -> dict[str, float | None]:
    """Seconds after publishing stopped until each group's lag was 0 (None: not in time)."""
    started = time.perf_counter()
    drained: dict[str, float | None] = dict.fromkeys(lag.groups)
    while time.perf_counter() - started < _DRAIN_TIMEOUT_S:
        lags = await lag.sample(admin, probe)
        for view, behind in lags.items():
            if behind == 0 and drained[view] is None:
                drained[view] = round(time.perf_counter() - started, 1)
        if all(value is not None for value in drained.values()):
            break
        await asyncio.sleep(0.5)  # the groups commit in the background: sampled, not timed
    return drained


class _Probes:
    """Probe events' send times, and their latencies as their counts become visible."""

    def __init__(self) -> None:
        self.sent: dict[str, list[float]] = {}
        self.seen: dict[str, int] = {}
        self.warmup: dict[str, int] = {}  # each session's first measured probe
        self.latencies_ms: list[float] = []
        self.expected = sys.maxsize
        self.done = asyncio.Event()

    def probe(self, number: int) -> SessionMessageAddedEvent:
        session = f"probe-{number % _PROBE_SESSIONS}"
        return SessionMessageAddedEvent(
            session_id=session, message_id=f"m-{number}", role=MessageRole.USER, content="probe"
        )

    def sending(self, event: BaseEvent) -> None:
        self.sent.setdefault(event.session_id, []).append(time.perf_counter())

    def expect(self, count: int) -> None:
        """Set ``done`` once ``count`` probes are measured."""
        self.expected = count
        if len(self.latencies_ms) >= count:
            self.done.set()

    def notified(self, _connection: Any, _pid: int, _channel: str, payload: object) -> None:
        now = time.perf_counter()
        session, count_text = str(payload).rsplit(" ", 1)
        count, seen = int(count_text), self.seen.get(session, 0)
        warm = self.warmup.get(session, 0)
        sent = self.sent.get(session, [])
        self.latencies_ms.extend((now - sent[i]) * 1000 for i in range(max(seen, warm), count))
        self.seen[session] = max(seen, count)
        if len(self.latencies_ms) >= self.expected:
            self.done.set()


async def _visible(settings: AgentfluxSettings, server_url: str, directory: Path) -> dict[str, Any]:
    """Publish -> visible in the context store at ``_VISIBLE_RATE`` events/s, p50/p99."""
    url = await new_database(server_url)
    async with PostgresStore(url) as store:
        await store.migrate(ContextView().ddl)
        async with store.transaction() as tx:
            for statement in _NOTIFY_DDL:
                await tx.execute(statement)
    probes = _Probes()
    listener = await asyncpg.connect(url)
    try:
        await listener.add_listener("bench_visible", probes.notified)
        log = directory / "live-visible.log"
        async with (
            _service(settings, "context", url, log) as group_id,
            admin_client(settings) as admin,
        ):
            await _Lag(settings, {"context": group_id}).joined(admin)
            traffic = _traffic("visible")
            pacer = _pacer(_VISIBLE_RATE)
            async with EventPublisher(settings, linger_ms=0) as publisher:
                total = _VISIBLE_RATE * (_VISIBLE_WARMUP_S + _VISIBLE_S)
                measured_from = time.perf_counter()
                for number in range(total):
                    if number == _VISIBLE_RATE * _VISIBLE_WARMUP_S:
                        probes.warmup = {s: len(t) for s, t in probes.sent.items()}
                        measured_from = time.perf_counter()
                    await pacer.acquire()
                    if number % _PROBE_EVERY:
                        await publisher.send(next(traffic))
                        continue
                    event = probes.probe(number // _PROBE_EVERY)
                    probes.sending(event)
                    await publisher.send(event)
                await publisher.flush()
                achieved = _VISIBLE_RATE * _VISIBLE_S / (time.perf_counter() - measured_from)
            expected = sum(len(t) - probes.warmup.get(s, 0) for s, t in probes.sent.items())
            probes.expect(expected)
            await asyncio.wait_for(probes.done.wait(), _DRAIN_TIMEOUT_S)
    finally:
        await listener.close()
    latencies = sorted(probes.latencies_ms)
    return {
        "rate": _VISIBLE_RATE,
        "seconds": _VISIBLE_S,
        "achieved_rate": round(achieved),
        "probes": len(latencies),
        "p50_ms": round(percentile(latencies, 0.5), 1),
        "p99_ms": round(percentile(latencies, 0.99), 1),
        "max_ms": round(latencies[-1], 1),
        "mean_ms": round(statistics.mean(latencies), 1),
    }


async def bench_live(settings: AgentfluxSettings, directory: Path) -> dict[str, Any]:
    """The live figures: the groups' lag at 10k events/s, publish -> visible at 1k events/s."""
    report: dict[str, Any] = {}
    with postgres_server() as server_url:
        report["postgres"] = await server_facts(server_url)
        for part, measure in (("keep_up", _keep_up), ("visible", _visible)):
            scoped = settings.model_copy(update={"topic_prefix": f"live{uuid.uuid4().hex[:6]}."})
            await make_topics(scoped, scoped.topic_prefix, [])
            report[part] = await measure(scoped, server_url, directory)
    return report


def live_markdown(live: dict[str, Any]) -> list[str]:
    """The live figures as markdown lines."""
    keep, seen, pg = live["keep_up"], live["visible"], live["postgres"]
    lines = [
        (
            f"Live groups on PostgreSQL {pg['server_version']} (fsync {pg['fsync']}, "
            f"synchronous_commit {pg['synchronous_commit']}), each a service process: "
            f"{spaced(keep['events_sent'])} simulator events over {keep['seconds']} s "
            f"({spaced(keep['achieved_rate'])} events/s achieved of {spaced(keep['rate'])}); "
            "lag sampled each second (events behind, all partitions the group reads)."
        ),
        "",
        "| group | max lag | lag at the end | drained after publishing stopped |",
        "|---|---|---|---|",
    ]
    for view, figures in keep["groups"].items():
        drained = figures["drained_after_s"]
        lines.append(
            f"| {view} | {spaced(figures['max_lag'])} | {spaced(figures['final_lag'] or 0)} | "
            f"{'not within 120 s' if drained is None else f'{drained} s'} |"
        )
    lines.extend(
        [
            "",
            (
                f"Publish -> visible in the context store (PostgreSQL) at "
                f"{spaced(seen['rate'])} events/s ({spaced(seen['achieved_rate'])} achieved), "
                f"{spaced(seen['probes'])} probes over {seen['seconds']} s: p50 {seen['p50_ms']} ms, p99 {seen['p99_ms']} ms, "
                f"max {seen['max_ms']} ms."
            ),
        ]
    )
    return lines
