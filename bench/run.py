"""agentflux against raw aiokafka, side by side on the same broker: ``python -m bench.run [--quick]``.

Writes ``bench/results/latest.json`` and ``bench/results/latest.md`` (figures and ratios);
``--quick`` writes ``quick.json`` and ``quick.md`` beside them instead.
Uses the cluster named by ``AGENTFLUX_BOOTSTRAP_SERVERS``/``AGENTFLUX_REGISTRY_URL`` or starts a
local one for the run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import os
import platform
import shutil
import statistics
import tempfile
import time
import timeit
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from agentflux._local import LocalCluster
from agentflux.consumers import ContextView, GroupRunner, SqliteStore
from agentflux.kafka import AgentfluxSettings, connection_kwargs, run_event_loop
from agentflux.producers import EventPublisher, RateLimiter, Simulator
from agentflux.schemas import EVENT_MODELS, BaseEvent, EventCategory, event_headers, new_traceparent
from bench._broker import BrokerWatch, PauseOverlap
from bench._latency import ConsumerProcess
from bench._measure import Measurement, percentile, settle_heap, side_by_side
from bench._raw import raw_consume, raw_producer, raw_publish, raw_publish_batched

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator, Sequence

__all__ = [
    "EVENTS_SEED",
    "bench_latency",
    "generated_events",
    "local_or_given_cluster",
    "machine_lines",
    "machine_report",
    "main",
    "make_topics",
    "noop_runner",
    "write_report",
]

_RESULTS = Path(__file__).parent / "results"
EVENTS_SEED = 1  # the simulator's seed for the throughput runs: the same events every time
_WARMUP_S = 5.0
_QUICK_WARMUP_S = 2.0
# Before the measured latency runs, one raw and one platform run of this long each, all
# unmeasured: the broker's JIT compiles its per-request paths at low rates only after thousands
# of requests. `jstat -compiler` on the broker after the throughput parts: 1369 methods and 21 s
# of compiler time during the first 25 s run at 1k/s, 416 and 7 s in the next; that first run's
# p50 was 2-3 times the next one's, on either side. Each side needs its own: after 40 s of raw
# traffic, the broker's C2 thread still took up to 66 % of a core for ~10 s of the first platform
# run (the runner's incremental fetch sessions and commits take other broker paths; per-thread
# `/proc`), against 0-40 % in the platform run after it.
_JIT_WARMUP_S = 20.0
_PUBLISH_WARMUP_SHARE = 5  # a fifth of the publish events, each side, before the timed rounds
# Events built at a time and then published at once in the fresh-events part (~1 MB of
# objects: they stay in the CPU's caches, as an event the runtime has just built).
_FRESH_CHUNK = 500


_RawRecord = tuple[str, bytes, bytes, list[tuple[str, bytes]]]  # topic, key, value, headers
T = TypeVar("T")


async def _paced(
    rate: float,
    items: Sequence[T],
    warmup: int,
    send: Callable[[T, bool], Awaitable[None]],
) -> tuple[float, float]:
    """Send ``items`` at ``rate``/s (the first ``warmup`` unmeasured).

    Returns the rate achieved after the warm-up and this process's CPU seconds over all items.
    5 ms worth of events may catch up after a late wake-up of the event loop: strict pacing
    (burst 1) lost every oversleep and ran at ~45 % of the nominal rate.
    """
    pacer = RateLimiter(rate, burst=max(2, int(rate * 0.005)))
    cpu = time.process_time()
    measured_from = time.perf_counter()
    for index, item in enumerate(items):
        await pacer.acquire()
        if index == warmup:
            measured_from = time.perf_counter()
        await send(item, index >= warmup)
    achieved = (len(items) - warmup) / (time.perf_counter() - measured_from)
    return achieved, time.process_time() - cpu


@contextlib.contextmanager
def local_or_given_cluster() -> Iterator[tuple[AgentfluxSettings, BrokerWatch | None]]:
    """The cluster the environment names, or a local 1-node one for the duration.

    With a local one, also a watch on its broker (CPU, GC pauses); None for a given cluster.
    """
    if os.environ.get("AGENTFLUX_BOOTSTRAP_SERVERS") and os.environ.get("AGENTFLUX_REGISTRY_URL"):
        yield AgentfluxSettings(), None
        return
    state_dir = Path(tempfile.mkdtemp(prefix="agentflux-bench-"))
    local = LocalCluster(state_dir)
    try:
        state = local.up(1)
        (node,) = state.nodes
        yield (
            AgentfluxSettings(
                bootstrap_servers=state.bootstrap_servers, registry_url=state.registry_url
            ),
            None if node.pid is None else BrokerWatch(node.pid, local.gc_log(node.node_id)),
        )
    finally:
        local.down()
        shutil.rmtree(state_dir, ignore_errors=True)


async def make_topics(settings: AgentfluxSettings, prefix: str, extra: list[str]) -> None:
    """The six category topics under ``prefix`` (6 partitions each), plus ``extra`` ones."""
    admin = AIOKafkaAdminClient(**connection_kwargs(settings))
    await admin.start()
    try:
        names = [prefix + c.topic for c in EventCategory] + extra
        await admin.create_topics([NewTopic(name, 6, 1) for name in names])
    finally:
        await admin.close()


def generated_events(count: int, seed: int) -> list[BaseEvent]:
    """``count`` events of simulated sessions (about 27 events each), the same for a seed."""
    events: list[BaseEvent] = []
    sessions = max(10, count // 27)
    while len(events) < count:
        events.extend(Simulator(sessions=sessions, seed=seed + len(events)).events())
    return events[:count]


async def bench_publish(
    settings: AgentfluxSettings, events: list[BaseEvent], rounds: int
) -> dict[str, Any]:
    """Platform send() or enqueue(), then flush, vs raw aiokafka send() one by one of the same bytes.

    Also the transport's floor: the same pre-encoded records appended straight to aiokafka's
    batch builders (no encoding, no headers built), the least CPU any publisher on aiokafka needs.

    Rounds alternate platform and raw, so a machine that speeds up or slows down during the run
    affects both sides alike; the report gives the medians. Both sides first publish a fifth of
    the events unmeasured: the broker's produce path is compiled by its JIT in the first seconds
    of a fresh cluster, which had fallen on the platform's first round alone (0.93 and 0.99
    times raw in two runs whose other rounds were 1.5 to 2.2).
    """
    raw_topic = f"{settings.topic_prefix}raw-publish"
    pairs: list[tuple[Measurement, Measurement]] = []
    enqueued: list[tuple[Measurement, Measurement]] = []  # enqueue() rounds, the same raw rounds
    floors: list[Measurement] = []
    async with EventPublisher(settings) as publisher:
        first_of_each = {type(event): event for event in reversed(events)}
        for event in first_of_each.values():  # schemas registered before timing, as in steady state
            await publisher.send(event)
        await publisher.flush()
        records = [record[1:] for record in await _encoded(publisher, events)]  # one raw topic
        warmup = len(events) // _PUBLISH_WARMUP_SHARE
        await _timed_publish(publisher, publisher.send, events[:warmup])
        await raw_publish(settings, raw_topic, records[:warmup])
        for _ in range(rounds):
            settle_heap()
            platform_m = await _timed_publish(publisher, publisher.send, events)
            settle_heap()
            raw_m = await raw_publish(settings, raw_topic, records)
            pairs.append((platform_m, raw_m))
            settle_heap()
            enqueued.append((await _timed_publish(publisher, publisher.enqueue, events), raw_m))
            settle_heap()
            floors.append(await raw_publish_batched(settings, raw_topic, records))
    return {
        "events": len(events),
        "records_written": len(events) * rounds * 2 + warmup + len(first_of_each),
        **side_by_side(pairs),
        "enqueue": side_by_side(enqueued),
        "floor_events_per_s": round(statistics.median(m.rate for m in floors)),
        "floor_cpu_us_per_event": round(statistics.median(m.cpu_us_per_event for m in floors), 1),
    }


async def _timed_publish(
    publisher: EventPublisher,
    queue: Callable[[BaseEvent], Awaitable[object]],
    events: list[BaseEvent],
) -> Measurement:
    """``events`` through one of the publisher's queueing methods, then flush: one round."""
    started, cpu = time.perf_counter(), time.process_time()
    for event in events:
        await queue(event)
    await publisher.flush()
    return Measurement.since(started, cpu, len(events))


async def _publish_fresh(
    chunks: Iterator[list[T]],
    queue: Callable[[T], Awaitable[object]],
    flush: Callable[[], Awaitable[object]],
) -> float:
    """CPU seconds of publishing each chunk right after it was built, then of the final flush.

    Building is not counted (it runs while the event loop waits: no publishing work then).
    """
    cpu = 0.0
    for chunk in chunks:
        started = time.process_time()
        for item in chunk:
            await queue(item)
        cpu += time.process_time() - started
    started = time.process_time()
    await flush()
    return cpu + time.process_time() - started


async def bench_publish_fresh(
    settings: AgentfluxSettings, count: int, rounds: int
) -> dict[str, Any]:
    """CPU per event of events published right after they are built, as the runtime does.

    The throughput rounds publish events built long before (100k of them, cold in the CPU's
    caches and frozen out of Python's collector). Here each chunk of ``_FRESH_CHUNK`` events is
    built by the simulator (fresh objects) and published at once: platform ``send()`` and
    ``enqueue()`` on topics of their own, raw ``send()`` of the same chunk's pre-encoded
    records (encoded while building, not counted). Warm in the caches, but young: collections
    during publishing walk them. Rounds alternate the three; medians.
    """
    prefix = f"{settings.topic_prefix}fresh."
    await make_topics(settings, prefix, [])
    scoped = settings.model_copy(update={"topic_prefix": prefix})
    raw_topic = f"{settings.topic_prefix}raw-publish"
    cpu: dict[str, list[float]] = {"send": [], "enqueue": [], "raw": []}
    seeds = itertools.count(EVENTS_SEED + 1_000_000, _FRESH_CHUNK)  # new events every chunk
    chunk_count = count // _FRESH_CHUNK
    published = chunk_count * _FRESH_CHUNK

    def chunks() -> Iterator[list[BaseEvent]]:
        for _ in range(chunk_count):
            yield generated_events(_FRESH_CHUNK, seed=next(seeds))

    async with EventPublisher(scoped) as publisher:
        for event in {type(event): event for event in generated_events(2000, seed=0)}.values():
            await publisher.send(event)  # schemas registered and topics known before timing
        await publisher.flush()
        producer = raw_producer(settings)
        await producer.start()
        try:

            async def raw_send(record: _RawRecord) -> object:
                _, key, value, headers = record
                return await producer.send(raw_topic, value, key=key, headers=headers)

            for _ in range(rounds):
                for name, queue in (("send", publisher.send), ("enqueue", publisher.enqueue)):
                    settle_heap()
                    spent = await _publish_fresh(chunks(), queue, publisher.flush)
                    cpu[name].append(spent / published)
                settle_heap()
                records = (_known_records(publisher, chunk) for chunk in chunks())
                cpu["raw"].append(
                    await _publish_fresh(records, raw_send, producer.flush) / published
                )
        finally:
            await producer.stop()
    medians = {name: round(statistics.median(spent) * 1e6, 1) for name, spent in cpu.items()}
    return {
        "events": published,
        "chunk": _FRESH_CHUNK,
        "platform_send_cpu_us_per_event": medians["send"],
        "platform_enqueue_cpu_us_per_event": medians["enqueue"],
        "raw_cpu_us_per_event": medians["raw"],
    }


def noop_runner(settings: AgentfluxSettings, name: str) -> GroupRunner:
    """A fresh group over the six category topics whose handlers do nothing: pure consuming."""

    async def noop(_: BaseEvent) -> None:
        return

    return GroupRunner(
        f"{name}-{uuid.uuid4().hex[:6]}",
        [settings.topic_prefix + category.topic for category in EventCategory],
        settings=settings,
        handlers=dict.fromkeys(EVENT_MODELS.values(), noop),
        max_poll_records=2000,
    )


async def bench_consume(settings: AgentfluxSettings, count: int, rounds: int) -> dict[str, Any]:
    """Platform runner (decode + dispatch + commit) vs a raw getmany loop with commits.

    Each round a fresh group of each side reads ``count`` records from the earliest offsets,
    timed from the moment its consumer has its partitions; rounds alternate the two sides.
    """
    topics = [settings.topic_prefix + c.topic for c in EventCategory]
    pairs: list[tuple[Measurement, Measurement]] = []
    for _ in range(rounds):
        runner = noop_runner(settings, "bench")
        settle_heap()
        async with runner:
            # Timed from the assignment on, as the raw loop is: joining is not throughput.
            await asyncio.wait_for(runner.ready.wait(), 60)
            started, cpu = time.perf_counter(), time.process_time()
            await runner.wait_handled(count)
            platform_m = Measurement.since(started, cpu, runner.handled)
        settle_heap()
        raw_m = await raw_consume(settings, topics, count, f"bench-raw-{uuid.uuid4().hex[:6]}")
        pairs.append((platform_m, raw_m))
    return {"events": count, **side_by_side(pairs)}


async def bench_latency(  # noqa: PLR0913  # rate, size, three warm-up knobs, the broker watch
    settings: AgentfluxSettings,
    rate: float,
    count: int,
    warmup_s: float = _WARMUP_S,
    *,
    pairs: int = 2,
    jit_warmup_s: float = _JIT_WARMUP_S,
    broker: BrokerWatch | None = None,
) -> dict[str, Any]:
    """Publish at a fixed rate; measure publish call -> handler, platform and raw, in ms.

    The consumer runs in its own process on each side (:mod:`bench._latency`), as a group's
    service does in production. Both sides use the six category topics (36 partitions), linger 0
    and lz4, and commit after handling (the raw loop after each batch, the runner in the
    background every 100 ms); the raw side sends the platform's pre-encoded bytes and headers
    with ``send()`` and reads with a getmany loop. Each run first sends ``warmup_s`` seconds of
    traffic at the same rate, not measured: a fresh partition's first seconds on the broker
    (leader election, metadata) are not steady state. Before the pairs, ``jit_warmup_s`` of raw
    traffic and as much of platform traffic, on topics of their own, not measured either, let
    the broker's JIT compile each side's low-rate paths (see ``_JIT_WARMUP_S``). Each side runs ``pairs`` times on fresh
    topics, in the order platform, raw, raw, platform, ...: one run each in a fixed order had
    measured the order and the machine's moment as much as the code. Percentiles are over all
    of a side's measured events; CPU figures are the runs' mean. With a ``broker`` watch (a
    cluster the bench started), each run also records the broker's CPU and which events a
    broker GC pause fell into: all of them, and the run's slowest 1 %.
    """
    events = generated_events(int(rate * warmup_s) + count, seed=int(rate))
    async with EventPublisher(settings) as encoder:  # only its codec
        records = await _encoded(encoder, events)
    warmup = int(rate * warmup_s)
    jit_events = events[: int(rate * jit_warmup_s)]
    if jit_events:
        jit = len(jit_events)  # all of them unmeasured
        await _raw_latency(settings, rate, records[:jit], jit, "jit", broker=None)
        await _platform_latency(settings, rate, jit_events, jit, "jit", broker=None)
    platform: list[_LatencyRun] = []
    raw: list[_LatencyRun] = []
    for pair in range(pairs):
        for side in ("raw", "platform") if pair % 2 else ("platform", "raw"):
            if side == "platform":
                platform.append(
                    await _platform_latency(
                        settings, rate, events, warmup, str(pair), broker=broker
                    )
                )
            else:
                raw.append(
                    await _raw_latency(settings, rate, records, warmup, str(pair), broker=broker)
                )
    return {
        "rate": rate,
        "events": count,
        "warmup_events": warmup,
        "runs_per_side": pairs,
        **_latency_figures("platform", platform),
        **_latency_figures("raw", raw),
    }


# A broker watch and its CPU reading when a run's publishing began.
_BrokerReading = tuple[BrokerWatch, float]


def _broker_reading(broker: BrokerWatch | None) -> _BrokerReading | None:
    return None if broker is None else (broker, broker.cpu_seconds())


class _LatencyRun(NamedTuple):
    latencies_ms: list[float]
    achieved_rate: float
    publisher_cpu_us: float  # per event sent, warm-up included
    consumer_cpu_us: float
    broker_cpu_us: float  # NaN without a broker watch
    broker_pauses: PauseOverlap | None

    @classmethod
    def of(
        cls,
        sent: dict[str, float],
        paced: tuple[float, float],
        received: tuple[dict[str, float], float],
        broker: _BrokerReading | None,
    ) -> _LatencyRun:
        """One run's figures from what its parts returned.

        Send times, ``_paced``'s result, the consumer's receive times and CPU, and the broker
        reading taken before publishing.
        """
        achieved, publisher_cpu_s = paced
        received_at, consumer_cpu_s = received
        missing = sent.keys() - received_at.keys()
        if missing:
            raise RuntimeError(f"{len(missing)} measured events never reached the consumer")
        per_event = 1e6 / len(received_at)
        latencies = {
            event_id: (received_at[event_id] - started) * 1000 for event_id, started in sent.items()
        }
        broker_cpu_us, pauses = math.nan, None
        if broker is not None:
            watch, cpu_before = broker
            broker_cpu_us = (watch.cpu_seconds() - cpu_before) * per_event
            cutoff = percentile(list(latencies.values()), 0.99)
            slowest = {event_id for event_id, ms in latencies.items() if ms >= cutoff}
            pauses = watch.overlap(sent, received_at, slowest)
        return cls(
            list(latencies.values()),
            achieved,
            publisher_cpu_s * per_event,
            consumer_cpu_s * per_event,
            broker_cpu_us,
            pauses,
        )


def _latency_figures(side: str, runs: list[_LatencyRun]) -> dict[str, Any]:
    pooled = [ms for run in runs for ms in run.latencies_ms]
    return {
        f"{side}_achieved_rate": round(statistics.mean(run.achieved_rate for run in runs)),
        f"{side}_p50_ms": round(percentile(pooled, 0.5), 2),
        f"{side}_p99_ms": round(percentile(pooled, 0.99), 2),
        f"{side}_p999_ms": round(percentile(pooled, 0.999), 2),
        f"{side}_p99_ms_by_run": [round(percentile(run.latencies_ms, 0.99), 2) for run in runs],
        f"{side}_publisher_cpu_us": round(statistics.mean(r.publisher_cpu_us for r in runs), 1),
        f"{side}_consumer_cpu_us": round(statistics.mean(r.consumer_cpu_us for r in runs), 1),
        **_broker_figures(side, runs),
    }


def _broker_figures(side: str, runs: list[_LatencyRun]) -> dict[str, Any]:
    """The broker's CPU and GC pauses over a side's runs (nothing without a broker watch)."""
    overlaps = [run.broker_pauses for run in runs if run.broker_pauses is not None]
    if not overlaps:
        return {}
    return {
        f"{side}_broker_cpu_us": round(statistics.mean(r.broker_cpu_us for r in runs), 1),
        f"{side}_broker_gc": {
            "pauses": sum(o.pauses for o in overlaps),
            "pause_ms": round(sum(o.pause_ms for o in overlaps), 1),
            "max_pause_ms": round(max(o.max_pause_ms for o in overlaps), 1),
            "events_in_pause_pct": round(
                100 * sum(o.events_in_pause for o in overlaps) / sum(o.events for o in overlaps), 2
            ),
            "slowest_1pct_in_pause_pct": round(
                100 * sum(o.slowest_in_pause for o in overlaps) / sum(o.slowest for o in overlaps),
                1,
            ),
        },
    }


async def _latency_topics(settings: AgentfluxSettings, rate: float, name: str) -> str:
    """A fresh set of the six category topics for one run; their prefix."""
    prefix = f"{settings.topic_prefix}lat{int(rate)}.{name}."
    await make_topics(settings, prefix, [])
    return prefix


async def _encoded(publisher: EventPublisher, events: list[BaseEvent]) -> list[_RawRecord]:
    """The bytes and headers ``publisher`` sends for ``events``, by category topic (no prefix)."""
    for event in {type(event): event for event in events}.values():
        await publisher.codec.encode(event, publisher.topic_for(event))  # schemas known
    return _known_records(publisher, events)


def _known_records(publisher: EventPublisher, events: list[BaseEvent]) -> list[_RawRecord]:
    """:func:`_encoded` for events whose schemas ``publisher`` has registered: no awaiting."""
    return [
        (
            event.topic,
            event.session_id.encode(),
            publisher.codec.encode_known(event, publisher.topic_for(event)),
            event_headers(event, new_traceparent()),
        )
        for event in events
    ]


async def _platform_latency(  # noqa: PLR0913  # _raw_latency's, for the platform
    settings: AgentfluxSettings,
    rate: float,
    events: list[BaseEvent],
    warmup: int,
    run: str,
    *,
    broker: BrokerWatch | None,
) -> _LatencyRun:
    prefix = await _latency_topics(settings, rate, f"platform{run}")
    scoped = settings.model_copy(update={"topic_prefix": prefix})
    sent: dict[str, float] = {}
    topics = [prefix + c.topic for c in EventCategory]
    async with EventPublisher(scoped, linger_ms=0) as publisher:
        # As a runtime starts up: every schema registered and every topic's partitions known
        # before the consumer starts (so its prefetch finds the ids) and before the first event.
        # Registering on first use instead kept the registry busy (~1 CPU second) through the
        # run's first seconds, on the platform side alone: the raw side sends pre-encoded bytes.
        await publisher.prepare()
        settle_heap()
        async with ConsumerProcess("platform", scoped, topics, len(events)) as consumer:

            async def send(event: BaseEvent, measured: bool) -> None:  # noqa: FBT001  # _paced's callback
                if measured:
                    sent[str(event.event_id)] = time.perf_counter()
                await publisher.send(event)

            reading = _broker_reading(broker)
            paced = await _paced(rate, events, warmup, send)
            return _LatencyRun.of(sent, paced, await consumer.received(), reading)


async def _raw_latency(  # noqa: PLR0913  # the run's rate, records, warm-up, name and watch
    settings: AgentfluxSettings,
    rate: float,
    records: list[_RawRecord],
    warmup: int,
    run: str,
    *,
    broker: BrokerWatch | None,
) -> _LatencyRun:
    """The platform's pre-encoded records sent with ``send()``, read by a raw getmany loop.

    ``run`` names the run's fresh topics; ``warmup`` records go first, unmeasured.
    """
    prefix = await _latency_topics(settings, rate, f"raw{run}")
    producer = raw_producer(settings, linger_ms=0)
    sent: dict[str, float] = {}
    settle_heap()
    topics = [prefix + c.topic for c in EventCategory]
    async with ConsumerProcess("raw", settings, topics, len(records)) as consumer:
        await producer.start()
        try:

            async def send(record: _RawRecord, measured: bool) -> None:  # noqa: FBT001  # _paced's callback
                topic, key, value, headers = record
                if measured:
                    sent[dict(headers)["event_id"].decode()] = time.perf_counter()
                await producer.send(prefix + topic, value, key=key, headers=headers)

            reading = _broker_reading(broker)
            paced = await _paced(rate, records, warmup, send)
        finally:
            await producer.stop()
        return _LatencyRun.of(sent, paced, await consumer.received(), reading)


async def bench_rebuild(
    settings: AgentfluxSettings, expected: int, directory: Path
) -> dict[str, Any]:
    """Rebuild the context view from retained events into a fresh SQLite store."""
    topics = [
        settings.topic_prefix + c.topic
        for c in (
            EventCategory.AGENT,
            EventCategory.SESSION,
            EventCategory.TOOL,
            EventCategory.HITL,
        )
    ]
    count = await _count(settings, topics)
    async with SqliteStore(directory / "rebuild.db") as store:
        runner = GroupRunner(
            f"rebuild-{uuid.uuid4().hex[:6]}",
            topics,
            settings=settings,
            views=[ContextView()],
            store=store,
            max_poll_records=2000,
        )
        settle_heap()
        started, cpu = time.perf_counter(), time.process_time()
        async with runner:
            await runner.wait_handled(count)
        measured = Measurement.since(started, cpu, runner.handled)
    return {
        "events": count,
        "of_published": expected,
        "events_per_s": round(measured.rate),
        "cpu_us_per_event": round(measured.cpu_us_per_event, 1),
    }


async def _count(settings: AgentfluxSettings, topics: list[str]) -> int:
    consumer = AIOKafkaConsumer(**connection_kwargs(settings))
    await consumer.start()
    try:
        from aiokafka.structs import TopicPartition  # noqa: PLC0415  # local to the counting helper

        partitions = [TopicPartition(t, p) for t in topics for p in range(6)]
        return sum((await consumer.end_offsets(partitions)).values())
    finally:
        await consumer.stop()


def _yardstick_us() -> float:
    """Microseconds for ``sum(range(1000))``, best of 5: how fast this machine runs Python.

    Virtual machines of one kind differ by 2x and more; this puts figures from two of them side
    by side.
    """
    timer = timeit.Timer("sum(range(1000))")
    return round(min(timer.repeat(repeat=5, number=2000)) / 2000 * 1e6, 2)


async def _wakeups(sleep_s: float, times: int) -> tuple[float, list[float]]:
    """CPU microseconds per ``asyncio.sleep(sleep_s)`` wake-up, and how late each came (ms).

    With ``sleep_s`` 0 the loop never idles; with 0.001 it idles between wake-ups, as each
    process of a pipeline at 1k events/s does between events. Returning from idle costs much
    more on some virtual machines than on others (a second yardstick, for the latency rows), and
    on an idle machine its lateness is the floor that any one wake-up on an event's path adds:
    at 1k/s an event passes several (publisher, the broker's threads, consumer).
    """
    late_ms: list[float] = []
    cpu = time.process_time()
    for _ in range(times):
        asked = time.perf_counter()
        await asyncio.sleep(sleep_s)  # the measured wake-up itself, not a readiness wait
        late_ms.append((time.perf_counter() - asked - sleep_s) * 1e3)
    return round((time.process_time() - cpu) / times * 1e6, 1), late_ms


async def machine_report() -> dict[str, Any]:
    """The machine: CPUs, Python, OS, its yardsticks (Python's speed, a wake-up's CPU and delay)."""
    busy_cpu_us, _ = await _wakeups(0, 5000)
    idle_cpu_us, late_ms = await _wakeups(0.001, 2000)
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "sum_range_1000_us": _yardstick_us(),
        "wakeup_cpu_us": {"busy_loop": busy_cpu_us, "after_1ms_idle": idle_cpu_us},
        "wakeup_late_ms": {
            "p50": round(percentile(late_ms, 0.5), 3),
            "p99": round(percentile(late_ms, 0.99), 3),
            "max": round(max(late_ms), 3),
        },
        "event_loop": type(asyncio.get_running_loop()).__module__.split(".")[0],
    }


def machine_lines(machine: dict[str, Any]) -> list[str]:
    """:func:`machine_report`'s figures as the first lines of a markdown report."""
    after = machine.get("sum_range_1000_us_after")
    wakeup = machine["wakeup_cpu_us"]
    return [
        (
            f"Machine: {machine['cpus']} CPUs, Python {machine['python']}, {machine['platform']}"
            f" (event loop: {machine.get('event_loop', 'asyncio')});"
        ),
        f"`sum(range(1000))` in {machine['sum_range_1000_us']} µs (a yardstick of the machine's "
        "speed)" + (";" if after else "."),
        *(
            [
                "after publish / consume / latency: "
                + " / ".join(f"{us}" for us in after.values())
                + " µs."
            ]
            if after
            else []
        ),
        (
            f"An event-loop wake-up (`asyncio.sleep`) costs {wakeup['busy_loop']} µs of CPU in a loop "
            f"that never idles, {wakeup['after_1ms_idle']} µs after a 1 ms idle (what each process "
            "pays per event at low rates)."
        ),
        *(
            [
                (
                    f"A 1 ms sleep before the runs (the cluster idle) wakes {late['p50']} / "
                    f"{late['p99']} / {late['max']} ms late (p50 / p99 / max): the floor each "
                    "wake-up on an event's path adds to the latency rows."
                )
            ]
            if (late := machine.get("wakeup_late_ms"))
            else []
        ),
    ]


async def main(quick: bool) -> dict[str, Any]:  # noqa: FBT001  # the CLI flag, passed straight through
    """Run every benchmark and return the report."""
    count = 10_000 if quick else 100_000
    rounds = 1 if quick else 3
    with local_or_given_cluster() as (base, broker):
        settings = base.model_copy(update={"topic_prefix": f"bench{uuid.uuid4().hex[:6]}."})
        await make_topics(settings, settings.topic_prefix, [f"{settings.topic_prefix}raw-publish"])
        events = generated_events(count, seed=EVENTS_SEED)
        report: dict[str, Any] = {
            "machine": await machine_report(),
            "mode": "quick" if quick else "full",
            "rounds": rounds,
            "publish": await bench_publish(settings, events, rounds),
            "publish_fresh": await bench_publish_fresh(settings, count // 2, rounds),
        }
        # The machine's speed drifts within a run on a shared VM: taken after each part too.
        yardsticks = report["machine"]["sum_range_1000_us_after"] = {"publish": _yardstick_us()}
        report["consume"] = await bench_consume(settings, count, rounds)
        yardsticks["consume"] = _yardstick_us()
        report["latency"] = [
            await bench_latency(
                settings, 1000, 2000, _QUICK_WARMUP_S, pairs=1, jit_warmup_s=0, broker=broker
            )
            if quick
            else await bench_latency(settings, 1000, 20_000, broker=broker)
        ]
        if not quick:
            report["latency"].append(await bench_latency(settings, 10_000, 50_000, broker=broker))
        yardsticks["latency"] = _yardstick_us()
        with tempfile.TemporaryDirectory() as directory:
            report["rebuild"] = await bench_rebuild(settings, count, Path(directory))
    return report


def _markdown(report: dict[str, Any]) -> str:
    pub, con, reb = report["publish"], report["consume"], report["rebuild"]
    fresh = report["publish_fresh"]
    lines = [
        f"# agentflux benchmarks ({report['mode']})",
        "",
        *machine_lines(report["machine"]),
        "Command: `make bench` (or `make bench-quick`). Same broker, same run, platform vs raw aiokafka;",
        "throughput figures: one round of each side."
        if report["rounds"] == 1
        else f"throughput figures: medians of {report['rounds']} rounds alternating the two sides.",
        "",
        "| figure | agentflux | raw aiokafka | ratio |",
        "|---|---|---|---|",
        f"| publish, events/s ({pub['events']} events) | {pub['platform_events_per_s']} | {pub['raw_events_per_s']} | {pub['ratio']} |",
        f"| publish CPU, µs/event | {pub['platform_cpu_us_per_event']} | {pub['raw_cpu_us_per_event']} | |",
        f"| publish with `enqueue()` (no future per event), events/s | {pub['enqueue']['platform_events_per_s']} | {pub['enqueue']['raw_events_per_s']} | {pub['enqueue']['ratio']} |",
        f"| publish with `enqueue()`, CPU µs/event | {pub['enqueue']['platform_cpu_us_per_event']} | {pub['enqueue']['raw_cpu_us_per_event']} | |",
        f"| publish floor: the same records into aiokafka's batch builder, events/s / CPU µs/event | | {pub['floor_events_per_s']} / {pub['floor_cpu_us_per_event']} | |",
        f"| publish CPU of events just built (published {fresh['chunk']} at a time as built, {fresh['events']} events), `send()` / `enqueue()` µs/event | {fresh['platform_send_cpu_us_per_event']} / {fresh['platform_enqueue_cpu_us_per_event']} | {fresh['raw_cpu_us_per_event']} | |",
        f"| consume, events/s ({con['events']} events) | {con['platform_events_per_s']} | {con['raw_events_per_s']} | {con['ratio']} |",
        f"| consume CPU, µs/event | {con['platform_cpu_us_per_event']} | {con['raw_cpu_us_per_event']} | |",
    ]
    lines.extend(
        f"| end-to-end latency at {int(lat['rate'])}/s, p50 / p99 / p99.9 ms | {lat['platform_p50_ms']} / {lat['platform_p99_ms']} / "
        f"{lat['platform_p999_ms']} | {lat['raw_p50_ms']} / {lat['raw_p99_ms']} / {lat['raw_p999_ms']} | |\n"
        f"| rate achieved (mean of {lat['runs_per_side']} runs each, percentiles over all), events/s | {lat['platform_achieved_rate']} | {lat['raw_achieved_rate']} | |\n"
        f"| CPU per event at that rate, publisher / consumer µs | {lat['platform_publisher_cpu_us']} / {lat['platform_consumer_cpu_us']} | "
        f"{lat['raw_publisher_cpu_us']} / {lat['raw_consumer_cpu_us']} | |" + _broker_rows(lat)
        for lat in report["latency"]
    )
    lines.append(
        f"| rebuild of the context view into SQLite, events/s ({reb['events']} events) | {reb['events_per_s']} | | |"
    )
    return "\n".join(lines) + "\n"


def _broker_rows(lat: dict[str, Any]) -> str:
    """The latency runs' broker rows: CPU, GC pauses, events they fell into (if watched)."""
    if "platform_broker_gc" not in lat:
        return ""
    gc = {side: lat[f"{side}_broker_gc"] for side in ("platform", "raw")}
    return (
        f"\n| broker CPU per event at that rate, µs | {lat['platform_broker_cpu_us']} | "
        f"{lat['raw_broker_cpu_us']} | |\n"
        "| broker GC pauses during the runs: count / total ms / longest ms | "
        + " | ".join(
            f"{gc[side]['pauses']} / {gc[side]['pause_ms']} / {gc[side]['max_pause_ms']}"
            for side in ("platform", "raw")
        )
        + " | |\n| events a broker GC pause fell into: all / the slowest 1 %, % | "
        + " | ".join(
            f"{gc[side]['events_in_pause_pct']} / {gc[side]['slowest_1pct_in_pause_pct']}"
            for side in ("platform", "raw")
        )
        + " | |"
    )


def cli() -> None:
    """Parse arguments, run, write the report files, print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="one round of smaller runs: under a minute, a local cluster's start included",
    )
    args = parser.parse_args()
    report = run_event_loop(main(args.quick))
    # A quick run never replaces the full figures.
    write_report("quick" if args.quick else "latest", report, _markdown(report))


def write_report(name: str, report: dict[str, Any], table: str) -> None:
    """Write ``bench/results/<name>.json`` and ``<name>.md``; print the table."""
    _RESULTS.mkdir(exist_ok=True)
    (_RESULTS / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
    (_RESULTS / f"{name}.md").write_text(table)
    print(table)


if __name__ == "__main__":
    cli()
