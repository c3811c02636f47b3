"""The publish benchmarks: platform ``send()`` and ``enqueue()`` against raw aiokafka ``send()``."""

from __future__ import annotations

import itertools
import statistics
import time
from typing import TYPE_CHECKING, Any, TypeVar

from agentflux.producers import EventPublisher
from bench._cluster import make_topics
from bench._events import EVENTS_SEED, RawRecord, encoded_records, generated_events, known_records
from bench._measure import Measurement, settle_heap, side_by_side
from bench._raw import raw_producer, raw_publish, raw_publish_batched

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator

    from agentflux.kafka import AgentfluxSettings
    from agentflux.schemas import BaseEvent

__all__ = ["bench_publish", "bench_publish_fresh"]

_PUBLISH_WARMUP_SHARE = 5  # a fifth of the publish events, each side, before the timed rounds
# Events built at a time and then published at once in the fresh-events part (~1 MB of
# objects: they stay in the CPU's caches, as an event the runtime has just built).
_FRESH_CHUNK = 500

T = TypeVar("T")


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
        records = [
            record[1:] for record in await encoded_records(publisher, events)
        ]  # one raw topic
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

            async def raw_send(record: RawRecord) -> object:
                _, key, value, headers = record
                return await producer.send(raw_topic, value, key=key, headers=headers)

            for _ in range(rounds):
                for name, queue in (("send", publisher.send), ("enqueue", publisher.enqueue)):
                    settle_heap()
                    spent = await _publish_fresh(chunks(), queue, publisher.flush)
                    cpu[name].append(spent / published)
                settle_heap()
                records = (known_records(publisher, chunk) for chunk in chunks())
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
