"""End-to-end latency, platform and raw side by side: paced publishing, warm-ups, the figures.

The consuming side of each run is a process of its own (:mod:`bench._latency`).
"""

from __future__ import annotations

import math
import statistics
import time
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from agentflux.producers import EventPublisher, RateLimiter
from agentflux.schemas import EventCategory
from bench._broker import BrokerWatch, PauseOverlap
from bench._cluster import make_topics
from bench._events import RawRecord, encoded_records, generated_events
from bench._latency import ConsumerProcess
from bench._measure import percentile, settle_heap
from bench._raw import raw_producer

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from agentflux.kafka import AgentfluxSettings
    from agentflux.schemas import BaseEvent

__all__ = ["bench_latency"]

_WARMUP_S = 5.0
# Before the measured latency runs, one raw and one platform run of this long each, all
# unmeasured: the broker's JIT compiles its per-request paths at low rates only after thousands
# of requests. `jstat -compiler` on the broker after the throughput parts: 1369 methods and 21 s
# of compiler time during the first 25 s run at 1k/s, 416 and 7 s in the next; that first run's
# p50 was 2-3 times the next one's, on either side. Each side needs its own: after 40 s of raw
# traffic, the broker's C2 thread still took up to 66 % of a core for ~10 s of the first platform
# run (the runner's incremental fetch sessions and commits take other broker paths; per-thread
# `/proc`), against 0-40 % in the platform run after it.
_JIT_WARMUP_S = 20.0

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
        records = await encoded_records(encoder, events)
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
    records: list[RawRecord],
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

            async def send(record: RawRecord, measured: bool) -> None:  # noqa: FBT001  # _paced's callback
                topic, key, value, headers = record
                if measured:
                    sent[dict(headers)["event_id"].decode()] = time.perf_counter()
                await producer.send(prefix + topic, value, key=key, headers=headers)

            reading = _broker_reading(broker)
            paced = await _paced(rate, records, warmup, send)
        finally:
            await producer.stop()
        return _LatencyRun.of(sent, paced, await consumer.received(), reading)
