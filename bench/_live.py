"""The live groups on PostgreSQL: their lag under 10,000 events/s, and publish -> visible.

Each shipped view group runs as its own service process (``agentflux consume GROUP --store
postgresql://...``), as in production, each into a database of its own on a private PostgreSQL
server at default durability (:func:`bench._stores.postgres_server`). A publisher process of its
own (as the runtime is) sends simulator traffic paced at a fixed rate, so the rate is not held
back by this process's event loop; this process samples each group's lag once a second: the
sum, over the partitions the group reads, of the end offset minus the group's committed offset.
Each process's CPU (``/proc``: the publisher, each service, each service's PostgreSQL backends,
the broker when the bench started it) is reported per event it handled.

Publish -> visible: the context group alone, at 1,000 events/s; one event in five is a probe,
a ``session_message_added`` of one of a few probe sessions. A trigger on ``ctx_sessions``
sends a PostgreSQL notification (``pg_notify``, delivered when the transaction commits) with
the probe session's message count; the latency of a probe is from just before its ``send()``
call in the publisher process to the notification of its count reaching this process (both
``time.perf_counter()``: CLOCK_MONOTONIC, one clock for every process on the machine).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import os
import statistics
import sys
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import asyncpg

from agentflux._offsets import admin_client, partitions_of, probe_consumer
from agentflux.consumers import ContextView, PostgresStore
from agentflux.consumers._groups import SHIPPED_GROUPS
from agentflux.kafka import AgentfluxSettings, run_event_loop
from agentflux.producers import EventPublisher, RateLimiter, Simulator
from agentflux.schemas import MessageRole, SessionMessageAddedEvent
from bench._broker import process_cpu_seconds
from bench._cluster import make_topics
from bench._latency import READY, ChildProcess
from bench._measure import percentile
from bench._stores import _new_database as new_database
from bench._stores import _server_facts as server_facts
from bench._stores import _spaced as spaced
from bench._stores import postgres_server

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from multiprocessing.connection import Connection
    from pathlib import Path

    from aiokafka.structs import TopicPartition

    from agentflux.schemas import BaseEvent
    from bench._broker import BrokerWatch

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
_START_TIMEOUT_S = 120.0

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


def _pacer(rate: float) -> RateLimiter:
    """``rate`` events/s; 5 ms worth may catch up after a late wake-up (as ``bench._end_to_end``)."""
    return RateLimiter(rate, burst=max(2, int(rate * 0.005)))


def _probe(number: int) -> SessionMessageAddedEvent:
    return SessionMessageAddedEvent(
        session_id=f"probe-{number % _PROBE_SESSIONS}",
        message_id=f"m-{number}",
        role=MessageRole.USER,
        content="probe",
    )


@dataclass(frozen=True, slots=True)
class _Plan:
    """What the publisher process sends: ``rate`` events/s, ``warmup_s`` unmeasured first.

    ``probe_every``: every n-th event a probe, sent with ``send()`` and timed (0: none, every
    event with ``enqueue()``, the cheapest way to publish many).
    """

    prefix: str
    rate: int
    seconds: float
    warmup_s: float = 0.0
    probe_every: int = 0


async def _publish(settings: AgentfluxSettings, plan: _Plan, conn: Connection) -> dict[str, Any]:
    """The publisher process's work: ready, then on the word, the plan; what it did."""
    traffic = _traffic(plan.prefix)
    sent_at: dict[str, list[float]] = {}  # each probe session's probes' send times, in order
    warmup: dict[str, int] = {}  # each probe session's probes sent before the measured part
    # Probes: linger 0, as the latency runs of bench._end_to_end; else the default batching.
    overrides: dict[str, Any] = {"linger_ms": 0} if plan.probe_every else {}
    async with EventPublisher(settings, **overrides) as publisher:
        await publisher.prepare()  # schema ids and partitions known before the first event
        conn.send(READY)
        await asyncio.to_thread(conn.recv)
        pacer = _pacer(plan.rate)
        cpu, started = time.process_time(), time.perf_counter()
        measured_from, sent, sent_before = started + plan.warmup_s, 0, None
        end = measured_from + plan.seconds
        while (now := time.perf_counter()) < end:
            if sent_before is None and now >= measured_from:
                sent_before, measured_from = sent, now
                warmup = {session: len(times) for session, times in sent_at.items()}
            await pacer.acquire()
            sent += 1
            if not plan.probe_every:
                await publisher.enqueue(next(traffic))
            elif sent % plan.probe_every:
                await publisher.send(next(traffic))
            else:
                probe = _probe(sent // plan.probe_every)
                sent_at.setdefault(probe.session_id, []).append(time.perf_counter())
                await publisher.send(probe)
        achieved = (sent - (sent_before or 0)) / (time.perf_counter() - measured_from)
        await publisher.flush()
    return {
        "sent": sent,
        "achieved_rate": achieved,
        "cpu_us_per_event": (time.process_time() - cpu) / max(sent, 1) * 1e6,
        "probes_sent_at": sent_at,
        "probes_warmup": warmup,
    }


def _publisher_main(settings: dict[str, Any], plan: _Plan, conn: Connection) -> None:
    parsed = AgentfluxSettings(**settings)
    conn.send(run_event_loop(_publish(parsed, plan, conn), parsed))


class _PublisherProcess(ChildProcess):
    """The bench's publisher in a process of its own; entering returns once it is ready."""

    def __init__(self, settings: AgentfluxSettings, plan: _Plan) -> None:
        """Prepare the child; nothing runs before entering."""
        super().__init__("publisher", _publisher_main, settings.model_dump(), plan)

    async def run(self, seconds: float) -> dict[str, Any]:
        """Publish now; what the child reports once it has sent and flushed everything."""
        self._conn.send("go")
        result: dict[str, Any] = await self._receive(seconds + _START_TIMEOUT_S)
        return result


@dataclass(frozen=True, slots=True)
class _Service:
    """A group's service process: its group id, its pid, the database it writes."""

    group_id: str
    pid: int
    store_url: str


@contextlib.asynccontextmanager
async def _service(
    settings: AgentfluxSettings, group: str, store_url: str, log: Path
) -> AsyncIterator[_Service]:
    """``agentflux consume GROUP`` in a process of its own."""
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
        yield _Service(group_id, process.pid, store_url)
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 30)
            except TimeoutError:
                process.kill()
                await process.wait()


class _Cpu:
    """CPU seconds of each group's service and of its PostgreSQL backends, from ``/proc``."""

    def __init__(self, server_url: str, services: dict[str, _Service]) -> None:
        self.server_url = server_url
        self.services = services

    async def read(self) -> dict[str, dict[int, float]]:
        """By view: CPU seconds so far of each pid (the service's, then its backends')."""
        admin = await asyncpg.connect(self.server_url)
        try:
            readings = {}
            for view, service in self.services.items():
                database = service.store_url.rsplit("/", 1)[1]
                rows = await admin.fetch(
                    "SELECT pid FROM pg_stat_activity WHERE datname = $1", database
                )
                pids = [service.pid, *(int(row["pid"]) for row in rows)]
                readings[view] = {pid: process_cpu_seconds(pid) for pid in pids}
        finally:
            await admin.close()
        return readings

    def per_event(
        self,
        before: dict[str, dict[int, float]],
        after: dict[str, dict[int, float]],
        events: dict[str, int],
    ) -> dict[str, dict[str, float | None]]:
        """µs of CPU per event each view's service and backends spent between two readings.

        A backend that started in between counts from 0; one that ended in between is missed.
        """
        figures = {}
        for view, service in self.services.items():
            spent = {pid: after[view][pid] - before[view].get(pid, 0.0) for pid in after[view]}
            backends = sum(cpu for pid, cpu in spent.items() if pid != service.pid)
            count = max(events[view], 1)
            figures[view] = {
                "service_cpu_us_per_event": _us(spent[service.pid], count),
                "postgres_cpu_us_per_event": _us(backends, count),
            }
        return figures


def _us(seconds: float, events: int) -> float | None:
    return None if math.isnan(seconds) else round(seconds / events * 1e6, 1)


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

    async def ends(self, probe: Any) -> dict[str, int]:
        """By view: the sum of the end offsets of the partitions it reads."""
        every = sorted({tp for tps in self.partitions.values() for tp in tps})
        found = await probe.end_offsets(every)
        return {view: sum(found[tp] for tp in tps) for view, tps in self.partitions.items()}

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


def _broker_cpu(broker: BrokerWatch | None) -> float:
    return math.nan if broker is None else broker.cpu_seconds()


async def _keep_up(
    settings: AgentfluxSettings, server_url: str, directory: Path, broker: BrokerWatch | None
) -> dict[str, Any]:
    """The three view groups live on PostgreSQL under ``_KEEP_UP_RATE`` events/s."""
    plan = _Plan("live", _KEEP_UP_RATE, _KEEP_UP_S)
    async with contextlib.AsyncExitStack() as services:
        running: dict[str, _Service] = {}
        for view in LIVE_GROUPS:
            url = await new_database(server_url)
            log = directory / f"live-{view}.log"
            running[view] = await services.enter_async_context(_service(settings, view, url, log))
        lag = _Lag(settings, {view: service.group_id for view, service in running.items()})
        cpu = _Cpu(server_url, running)
        async with (
            admin_client(settings) as admin,
            probe_consumer(settings) as probe,
            _PublisherProcess(settings, plan) as publisher,
        ):
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

            ends_before, cpu_before, broker_before = (
                await lag.ends(probe),
                await cpu.read(),
                _broker_cpu(broker),
            )
            sampler = asyncio.create_task(sampled())
            try:
                published = await publisher.run(_KEEP_UP_S)
            finally:
                sampler.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sampler
            drained = await _drained(lag, admin, probe)
            ends_after, cpu_after = await lag.ends(probe), await cpu.read()
            broker_spent = _broker_cpu(broker) - broker_before
    events = {view: ends_after[view] - ends_before[view] for view in LIVE_GROUPS}
    per_event = cpu.per_event(cpu_before, cpu_after, events)
    return {
        "rate": _KEEP_UP_RATE,
        "seconds": _KEEP_UP_S,
        "events_sent": published["sent"],
        "achieved_rate": round(published["achieved_rate"]),
        "publisher_cpu_us_per_event": round(published["cpu_us_per_event"], 1),
        "broker_cpu_us_per_event": _us(broker_spent, published["sent"]),
        "groups": {
            view: {
                "max_lag": max((s[view] for s in samples), default=0),
                "final_lag": samples[-1][view] if samples else None,
                "lag_each_second": [s[view] for s in samples],
                "drained_after_s": drained.get(view),
                "events": events[view],
                **per_event[view],
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


class _Notifications:
    """Each probe session's counts as the context store made them visible, and when."""

    def __init__(self) -> None:
        self.seen: dict[str, list[tuple[int, float]]] = {}
        self._wanted: dict[str, int] | None = None
        self.done = asyncio.Event()

    def notified(self, _connection: Any, _pid: int, _channel: str, payload: object) -> None:
        now = time.perf_counter()  # first, before any other work of this callback
        session, count = str(payload).rsplit(" ", 1)
        self.seen.setdefault(session, []).append((int(count), now))
        self._check()

    def wait_for(self, counts: dict[str, int]) -> None:
        """Set ``done`` once each session's count reached ``counts``."""
        self._wanted = counts
        self._check()

    def _check(self) -> None:
        wanted = self._wanted
        if wanted is not None and all(
            max((count for count, _ in self.seen.get(session, [])), default=0) >= total
            for session, total in wanted.items()
        ):
            self.done.set()

    def latencies_ms(self, sent_at: dict[str, list[float]], warmup: dict[str, int]) -> list[float]:
        """Each measured probe's latency: from its send to the first count that includes it."""
        latencies = []
        for session, times in sent_at.items():
            notes = iter(self.seen.get(session, []))
            count, at = 0.0, math.inf  # inf: no such count (never, once every probe is seen)
            for index, sent in enumerate(times):
                while count <= index:  # the probe is the session's (index + 1)-th message
                    count, at = next(notes, (math.inf, math.inf))
                if index >= warmup.get(session, 0):
                    latencies.append((at - sent) * 1000)
        return sorted(latencies)


async def _visible(
    settings: AgentfluxSettings, server_url: str, directory: Path, broker: BrokerWatch | None
) -> dict[str, Any]:
    """Publish -> visible in the context store at ``_VISIBLE_RATE`` events/s, p50/p99."""
    url = await new_database(server_url)
    async with PostgresStore(url) as store:
        await store.migrate(ContextView().ddl)
        async with store.transaction() as tx:
            for statement in _NOTIFY_DDL:
                await tx.execute(statement)
    notifications = _Notifications()
    plan = _Plan("visible", _VISIBLE_RATE, _VISIBLE_S, _VISIBLE_WARMUP_S, _PROBE_EVERY)
    listener = await asyncpg.connect(url)
    try:
        await listener.add_listener("bench_visible", notifications.notified)
        log = directory / "live-visible.log"
        async with (
            _service(settings, "context", url, log) as service,
            admin_client(settings) as admin,
            probe_consumer(settings) as probe,
            _PublisherProcess(settings, plan) as publisher,
        ):
            lag = _Lag(settings, {"context": service.group_id})
            topics = SHIPPED_GROUPS["context"].topics(settings)
            lag.partitions["context"] = await partitions_of(settings, probe, topics)
            await lag.joined(admin)
            cpu = _Cpu(server_url, {"context": service})
            ends_before, cpu_before = await lag.ends(probe), await cpu.read()
            broker_before = _broker_cpu(broker)
            published = await publisher.run(_VISIBLE_WARMUP_S + _VISIBLE_S)
            sent_at = published["probes_sent_at"]
            notifications.wait_for({session: len(times) for session, times in sent_at.items()})
            await asyncio.wait_for(notifications.done.wait(), _DRAIN_TIMEOUT_S)
            ends_after, cpu_after = await lag.ends(probe), await cpu.read()
            broker_spent = _broker_cpu(broker) - broker_before
    finally:
        await listener.close()
    latencies = notifications.latencies_ms(sent_at, published["probes_warmup"])
    events = {"context": ends_after["context"] - ends_before["context"]}
    context = cpu.per_event(cpu_before, cpu_after, events)["context"]
    return {
        "rate": _VISIBLE_RATE,
        "seconds": _VISIBLE_S,
        "achieved_rate": round(published["achieved_rate"]),
        "probes": len(latencies),
        "p50_ms": round(percentile(latencies, 0.5), 1),
        "p99_ms": round(percentile(latencies, 0.99), 1),
        "max_ms": round(latencies[-1], 1),
        "mean_ms": round(statistics.mean(latencies), 1),
        "publisher_cpu_us_per_event": round(published["cpu_us_per_event"], 1),
        "broker_cpu_us_per_event": _us(broker_spent, published["sent"]),
        **context,
    }


async def bench_live(
    settings: AgentfluxSettings, directory: Path, broker: BrokerWatch | None = None
) -> dict[str, Any]:
    """The live figures: the groups' lag at 10k events/s, publish -> visible at 1k events/s."""
    report: dict[str, Any] = {}
    with postgres_server() as server_url:
        report["postgres"] = await server_facts(server_url)
        for part, measure in (("keep_up", _keep_up), ("visible", _visible)):
            scoped = settings.model_copy(update={"topic_prefix": f"live{uuid.uuid4().hex[:6]}."})
            await make_topics(scoped, scoped.topic_prefix, [])
            report[part] = await measure(scoped, server_url, directory, broker)
    return report


def _cpu_cell(value: float | None) -> str:
    return "?" if value is None else f"{value:g}"


def live_markdown(live: dict[str, Any]) -> list[str]:
    """The live figures as markdown lines."""
    keep, seen, pg = live["keep_up"], live["visible"], live["postgres"]
    lines = [
        (
            f"Live groups on PostgreSQL {pg['server_version']} (fsync {pg['fsync']}, "
            f"synchronous_commit {pg['synchronous_commit']}), each a service process: "
            f"{spaced(keep['events_sent'])} simulator events over {keep['seconds']} s "
            f"({spaced(keep['achieved_rate'])} events/s achieved of {spaced(keep['rate'])}, "
            "by a publisher process of its own: "
            f"{_cpu_cell(keep['publisher_cpu_us_per_event'])} µs of CPU per event; the broker "
            f"{_cpu_cell(keep['broker_cpu_us_per_event'])} µs); "
            "lag sampled each second (events behind, all partitions the group reads)."
        ),
        "",
        (
            "| group | max lag | lag at the end | drained after publishing stopped "
            "| CPU µs per event read: service / its PostgreSQL backends |"
        ),
        "|---|---|---|---|---|",
    ]
    for view, figures in keep["groups"].items():
        drained = figures["drained_after_s"]
        lines.append(
            f"| {view} | {spaced(figures['max_lag'])} | {spaced(figures['final_lag'] or 0)} | "
            f"{'not within 120 s' if drained is None else f'{drained} s'} | "
            f"{_cpu_cell(figures['service_cpu_us_per_event'])} / "
            f"{_cpu_cell(figures['postgres_cpu_us_per_event'])} |"
        )
    lines.extend(
        [
            "",
            (
                f"Publish -> visible in the context store (PostgreSQL) at "
                f"{spaced(seen['rate'])} events/s ({spaced(seen['achieved_rate'])} achieved), "
                f"{spaced(seen['probes'])} probes over {seen['seconds']} s: p50 {seen['p50_ms']} ms, "
                f"p99 {seen['p99_ms']} ms, max {seen['max_ms']} ms. CPU µs per event: the context "
                f"service {_cpu_cell(seen['service_cpu_us_per_event'])}, its PostgreSQL backends "
                f"{_cpu_cell(seen['postgres_cpu_us_per_event'])}, the publisher "
                f"{_cpu_cell(seen['publisher_cpu_us_per_event'])}, the broker "
                f"{_cpu_cell(seen['broker_cpu_us_per_event'])}."
            ),
        ]
    )
    return lines
