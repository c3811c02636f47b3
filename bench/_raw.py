"""The baselines: raw aiokafka doing the same transport work with no platform on top."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener

from bench._measure import Measurement
from schemas import connection_kwargs

if TYPE_CHECKING:
    from collections.abc import Sequence

    from schemas import AgentfluxSettings

__all__ = ["raw_consume", "raw_publish"]

Record = tuple[bytes, bytes, list[tuple[str, bytes]]]


class _Assigned(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka is untyped here
    """Notes when the consumer got its partitions: the start of the timed part."""

    at = cpu_at = 0.0

    async def on_partitions_revoked(self, revoked: object) -> None:  # noqa: ARG002  # nothing to hand over
        return

    async def on_partitions_assigned(self, assigned: object) -> None:
        if assigned and not self.at:
            self.at, self.cpu_at = time.perf_counter(), time.process_time()


async def raw_publish(
    settings: AgentfluxSettings,
    topic: str,
    records: Sequence[Record],
) -> Measurement:
    """Send pre-encoded records one by one with ``send()``, acks=all and idempotence, then flush."""
    producer = AIOKafkaProducer(
        **connection_kwargs(settings),
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        compression_type="lz4",
    )
    await producer.start()
    try:
        started, cpu_started = time.perf_counter(), time.process_time()
        futures = [
            await producer.send(topic, value, key=key, headers=headers)
            for key, value, headers in records
        ]
        await producer.flush()
        await asyncio.gather(*futures)
        return Measurement.since(started, cpu_started, len(records))
    finally:
        await producer.stop()


async def raw_consume(
    settings: AgentfluxSettings,
    topics: Sequence[str],
    expected: int,
    group: str,
) -> Measurement:
    """Read ``expected`` records with a ``getmany`` loop, committing after each batch."""
    consumer = AIOKafkaConsumer(
        **connection_kwargs(settings),
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=2000,
    )
    assigned = _Assigned()
    consumer.subscribe(list(topics), listener=assigned)
    await consumer.start()
    try:
        seen = 0
        while seen < expected:
            batches = await consumer.getmany(timeout_ms=500)
            seen += sum(len(records) for records in batches.values())
            if batches:
                await consumer.commit()
        return Measurement.since(assigned.at, assigned.cpu_at, seen)
    finally:
        await consumer.stop()
