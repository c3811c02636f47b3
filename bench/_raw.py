"""The baselines: raw aiokafka doing the same transport work with no platform on top."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
from aiokafka.partitioner import DefaultPartitioner

from agentflux.kafka import connection_kwargs
from agentflux.kafka._gate._lz4 import install_fast_lz4
from agentflux.producers import PUBLISHER_BATCH_SIZE
from bench._measure import Measurement

if TYPE_CHECKING:
    from collections.abc import Sequence

    from agentflux.kafka import AgentfluxSettings

__all__ = ["raw_consume", "raw_producer", "raw_publish", "raw_publish_batched"]

Record = tuple[bytes, bytes, list[tuple[str, bytes]]]


class _Assigned(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka is untyped here
    """Notes when the consumer got its partitions: the start of the timed part."""

    at = cpu_at = 0.0

    async def on_partitions_revoked(self, revoked: object) -> None:  # noqa: ARG002  # nothing to hand over
        return

    async def on_partitions_assigned(self, assigned: object) -> None:
        if assigned and not self.at:
            self.at, self.cpu_at = time.perf_counter(), time.process_time()


def raw_producer(settings: AgentfluxSettings, *, linger_ms: int = 5) -> AIOKafkaProducer:
    """A plain aiokafka producer with the platform's durability, compression and batch size."""
    install_fast_lz4()  # the same LZ4 compressor as the platform's publisher: same work to do
    return AIOKafkaProducer(
        **connection_kwargs(settings),
        acks="all",
        enable_idempotence=True,
        linger_ms=linger_ms,
        compression_type="lz4",
        max_batch_size=PUBLISHER_BATCH_SIZE,  # aiokafka's default is 16 KiB
    )


async def raw_publish(
    settings: AgentfluxSettings,
    topic: str,
    records: Sequence[Record],
) -> Measurement:
    """Send pre-encoded records one by one with ``send()``, acks=all and idempotence, then flush."""
    producer = raw_producer(settings)
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


async def raw_publish_batched(
    settings: AgentfluxSettings,
    topic: str,
    records: Sequence[Record],
) -> Measurement:
    """The transport's floor: the same records appended to aiokafka's batch builders directly.

    One open ``BatchBuilder`` per partition, full ones handed to ``send_batch`` (what the
    platform's publisher does, minus encoding and headers); partitions computed before timing.
    """
    producer = raw_producer(settings)
    await producer.start()
    try:
        partitions = sorted(await producer.partitions_for(topic))
        partitioner = DefaultPartitioner()
        keyed = [(partitioner(record[0], partitions, partitions), record) for record in records]
        started, cpu_started = time.perf_counter(), time.process_time()
        open_batches: dict[int, Any] = {}
        deliveries = []
        for partition, (key, value, headers) in keyed:
            batch = open_batches.get(partition)
            if (
                batch is None
                or batch.append(timestamp=None, key=key, value=value, headers=headers) is None
            ):
                if batch is not None:
                    batch.close()
                    deliveries.append(await producer.send_batch(batch, topic, partition=partition))
                batch = open_batches[partition] = producer.create_batch()
                batch.append(timestamp=None, key=key, value=value, headers=headers)
        for partition, batch in open_batches.items():
            batch.close()
            deliveries.append(await producer.send_batch(batch, topic, partition=partition))
        await asyncio.gather(*deliveries)
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
