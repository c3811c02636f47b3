"""Record batches built by the publisher itself, one open batch per topic-partition.

aiokafka's ``send()`` costs several times more CPU per record than appending to a batch
builder (futures, metadata checks and the accumulator for every record). The publisher appends
to aiokafka's own :class:`BatchBuilder` instead and hands full (or lingered) batches to
``send_batch``: same wire format, same idempotent producer (sequence numbers are assigned when
the sender drains a batch), and a partition's batches are submitted in the order they closed.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner

from producers._errors import BrokerUnavailableError
from producers._protocols import PublishResult

if TYPE_CHECKING:
    from collections.abc import Callable

    from aiokafka import AIOKafkaProducer

__all__ = ["Batcher"]

_log = structlog.get_logger("agentflux.publisher")

TopicPartition = tuple[str, int]
_KEY_CACHE_SIZE = 100_000


@dataclass(slots=True)
class _OpenBatch:
    builder: Any  # aiokafka.producer.message_accumulator.BatchBuilder (untyped)
    entries: list[tuple[asyncio.Future[PublishResult], int]] = field(default_factory=list)
    timer: asyncio.TimerHandle | None = None
    due: bool = False  # lingered long enough, or someone waits for it


class Batcher:
    """Appends records to per-partition batches and submits them to the producer in order.

    One drain task per partition hands its batches over one after the other. While the producer
    still holds the partition's previous batch, records keep joining the open one, so batches
    grow with the load the way aiokafka's own accumulator lets them.
    """

    def __init__(
        self,
        producer: AIOKafkaProducer,
        *,
        linger_s: float,
        on_settled: Callable[[asyncio.Future[PublishResult]], None],
    ) -> None:
        """Batch for ``producer``; ``on_settled`` runs once per record, acked or failed."""
        self._producer = producer
        self._linger_s = linger_s
        self._on_settled = on_settled
        self._partitioner = DefaultPartitioner()
        self._partitions: dict[str, list[int]] = {}
        self._by_key: dict[tuple[str, bytes], int] = {}  # murmur2 is pure Python in aiokafka
        self._open: dict[TopicPartition, _OpenBatch] = {}
        self._full: dict[TopicPartition, list[_OpenBatch]] = {}
        self._draining: dict[TopicPartition, asyncio.Task[None]] = {}
        # aiokafka refreshes cluster metadata every metadata_max_age_ms (and on errors); a topic
        # that gained partitions is then partitioned over all of them, as Java producers do.
        producer.client.cluster.add_listener(self._metadata_updated)

    def known_partition(self, topic: str, key: bytes) -> int | None:
        """The partition of a key seen before, without awaiting anything (the hot path)."""
        return self._by_key.get((topic, key))

    async def partition_for(self, topic: str, key: bytes) -> int:
        """The partition of ``key`` by Kafka's default partitioner (murmur2), as Java clients do."""
        known = self.known_partition(topic, key)
        if known is not None:
            return known
        partitions = self._partitions.get(topic)
        if partitions is None:
            try:
                found = await self._producer.partitions_for(topic)
            except KafkaError as exc:
                raise BrokerUnavailableError(f"no metadata for topic {topic}: {exc}") from exc
            partitions = self._partitions[topic] = sorted(found)
        if len(self._by_key) >= _KEY_CACHE_SIZE:
            self._by_key.clear()  # sessions come and go; start over rather than grow unbounded
        partition = self._by_key[topic, key] = int(self._partitioner(key, partitions, partitions))
        return partition

    def _metadata_updated(self, cluster: Any) -> None:
        grown: dict[str, tuple[int, int]] = {}
        for topic, known in self._partitions.items():
            current = cluster.partitions_for_topic(topic)
            if current and len(current) > len(known):
                self._partitions[topic] = sorted(current)
                grown[topic] = (len(known), len(current))
        if grown:
            self._by_key = {tk: p for tk, p in self._by_key.items() if tk[0] not in grown}
            for topic, (before, after) in grown.items():
                # Kafka keeps no key order across a partition change: say so where it happens.
                _log.warning(
                    "topic gained partitions: sessions may move to the new ones",
                    topic=topic,
                    partitions_before=before,
                    partitions_after=after,
                )

    def append(
        self,
        tp: TopicPartition,
        key: bytes,
        value: bytes,
        headers: list[tuple[str, bytes]],
    ) -> asyncio.Future[PublishResult]:
        """Add a record to its partition's open batch; the future resolves when it is acked."""
        batch = self._open.get(tp) or self._start(tp)
        appended = batch.builder.append(timestamp=None, key=key, value=value, headers=headers)
        if appended is None:  # full: queue it for the producer and start the next one
            self._close(tp, batch)
            self._full.setdefault(tp, []).append(batch)
            self._drain_soon(tp)
            batch = self._start(tp)
            appended = batch.builder.append(timestamp=None, key=key, value=value, headers=headers)
        result: asyncio.Future[PublishResult] = asyncio.get_running_loop().create_future()
        batch.entries.append((result, appended.offset))
        return result

    def submit(self, tp: TopicPartition) -> None:
        """Send the partition's open batch as soon as the producer takes it (no more linger)."""
        batch = self._open.get(tp)
        if batch is not None:
            batch.due = True
            self._drain_soon(tp)

    async def flush(self) -> None:
        """Submit every open batch and wait until the producer has them all."""
        while self._open or self._draining:
            for tp in list(self._open):
                self.submit(tp)
            await asyncio.gather(*list(self._draining.values()))

    def _start(self, tp: TopicPartition) -> _OpenBatch:
        batch = _OpenBatch(self._producer.create_batch())
        batch.timer = asyncio.get_running_loop().call_later(
            self._linger_s, self._linger_over, tp, batch
        )
        self._open[tp] = batch
        return batch

    def _close(self, tp: TopicPartition, batch: _OpenBatch) -> None:
        if self._open.get(tp) is batch:
            del self._open[tp]
        if batch.timer is not None:
            batch.timer.cancel()
        batch.builder.close()  # a closed builder is drained at once, with no second linger

    def _linger_over(self, tp: TopicPartition, batch: _OpenBatch) -> None:
        batch.due = True
        self._drain_soon(tp)

    def _drain_soon(self, tp: TopicPartition) -> None:
        if tp not in self._draining:
            self._draining[tp] = asyncio.get_running_loop().create_task(self._drain(tp))

    async def _drain(self, tp: TopicPartition) -> None:
        topic, partition = tp
        try:
            while True:
                full = self._full.get(tp)
                if full:
                    batch = full.pop(0)
                else:
                    lingering = self._open.get(tp)
                    if lingering is None or not lingering.due:
                        return
                    batch = lingering
                    self._close(tp, batch)
                try:
                    # Waits while the producer still holds this partition's previous batch.
                    delivery = await self._producer.send_batch(
                        batch.builder, topic, partition=partition
                    )
                except KafkaError as exc:
                    self._settle(batch, tp, None, exc)
                    continue
                delivery.add_done_callback(lambda done, sent=batch: self._delivered(sent, tp, done))
        finally:
            del self._draining[tp]

    def _delivered(self, batch: _OpenBatch, tp: TopicPartition, done: asyncio.Future[Any]) -> None:
        if done.cancelled():
            self._settle(batch, tp, None, asyncio.CancelledError())
        elif (error := done.exception()) is not None:
            self._settle(batch, tp, None, error)
        else:
            self._settle(batch, tp, int(done.result().offset), None)

    def _settle(
        self, batch: _OpenBatch, tp: TopicPartition, base: int | None, error: BaseException | None
    ) -> None:
        topic, partition = tp
        for result, relative in batch.entries:
            if not result.done():
                if base is None:
                    result.set_exception(
                        BrokerUnavailableError(
                            f"record to {topic}[{partition}] not acknowledged: {error!r}"
                        )
                    )
                else:
                    result.set_result(PublishResult(topic, partition, base + relative))
            self._on_settled(result)
