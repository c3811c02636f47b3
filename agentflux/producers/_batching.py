"""Record batches built by the publisher itself, one open batch per topic-partition.

aiokafka's ``send()`` costs several times more CPU per record than appending to a batch
builder (futures, metadata checks and the accumulator for every record). The publisher appends
to aiokafka's own ``BatchBuilder`` instead and hands lingered (or full) batches to
``send_batch``: same wire format, same idempotent producer, and a partition's batches are
submitted in the order they were started.

A handed-over batch stays open: until the producer's sender takes it (when the previous
request to its broker is answered), new records keep joining it, as they would join the
accumulator's batch with ``send()``. Closing it at hand-over sent those records one request
later, a higher acknowledgement latency. The moment the sender
takes the batch is its "drained" signal in aiokafka's accumulator, which also fixes the batch's
sequence number for the idempotent producer; not one record is appended after it.
``tests/unit/test_batching.py`` runs the batcher over aiokafka's real accumulator, so a change
in the internals read here shows as a failing test.

Lingering is per broker, as in Java's producer: when one partition's batch has lingered long
enough, every batch for the same leader is handed over with it, so they travel in one produce
request instead of one wake-up of the producer's sender per partition's timer: less CPU per
event for the publisher and the broker alike.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, overload

import structlog
from aiokafka.errors import KafkaError
from aiokafka.partitioner import murmur2 as _python_murmur2
from aiokafka.structs import TopicPartition as KafkaTopicPartition

from agentflux._builds import load_extension
from agentflux.kafka._gate import _event_batch
from agentflux.kafka._gate._accumulator import taken_and_delivered
from agentflux.producers._errors import BrokerUnavailableError
from agentflux.producers._protocols import PublishResult
from agentflux.schemas import header_pairs

if TYPE_CHECKING:
    from aiokafka import AIOKafkaProducer

__all__ = [
    "RECORD_WRITER_INTERFACE",
    "AppendRecord",
    "Batcher",
    "HeaderValue",
    "batch_factory",
    "key_partition",
    "record_writer_unavailable",
]

_log = structlog.get_logger("agentflux.publisher")

TopicPartition = tuple[str, int]
_KEY_CACHE_SIZE = 100_000

# Kafka's default partitioner hashes keys with murmur2; the C one is far cheaper than aiokafka's
# pure-Python one (memoized here: sessions repeat).
_memoized_murmur2 = functools.lru_cache(maxsize=_KEY_CACHE_SIZE)(_python_murmur2)


def _python_key_partition(key: bytes, partitions: list[int]) -> int:
    """``key_partition`` without the C extension."""
    hashed: int = _memoized_murmur2(key)
    return partitions[(hashed & 0x7FFFFFFF) % len(partitions)]


# The calls this code makes into _records.c; the C side states the interface it was built for.
RECORD_WRITER_INTERFACE = 1

# Not built (no C compiler) or built from an older source: aiokafka's own builder, murmur2 here.
_records, _unused_because = load_extension("agentflux.producers._records", RECORD_WRITER_INTERFACE)

key_partition: Callable[[bytes, list[int]], int] = (
    _python_key_partition if _records is None else _records.key_partition
)
"""The partition Kafka's default partitioner gives ``key`` among a topic's sorted partitions.

murmur2 of the key, its 31 low bits, modulo the partition count, as Java clients and aiokafka's.
"""


HeaderValue = bytes | str | None
# append_record(key, value, header_values, timestamp=None): the record's offset in its batch, or
# None when the batch is full or closed; timestamp in ms since the epoch, default now.
AppendRecord = Callable[..., int | None]


def record_writer_unavailable() -> str | None:
    """Why the publisher's batches are not written in C (build, gate), or None when they are."""
    if _records is None:
        return _unused_because
    return _event_batch.unavailable()


def batch_factory(
    producer: AIOKafkaProducer,
    header_names: tuple[str, ...],
    batch_size: int,
    compression_type: str | None,
) -> Callable[[], tuple[Any, AppendRecord]]:
    """Makes an empty batch for ``send_batch`` and its ``append_record``.

    Written in C when the writer is built and the gate open; otherwise aiokafka's own builder
    from ``create_batch()`` (the producer's batch size and compression), filled through its
    public ``append``.
    """
    if _records is not None and _event_batch.unavailable() is None:
        writer = _records.RecordWriter

        def new_event_batch() -> tuple[Any, AppendRecord]:
            batch = _event_batch.EventBatch(writer, header_names, batch_size, compression_type)
            return batch, batch.append_record

        return new_event_batch

    def new_aiokafka_batch() -> tuple[Any, AppendRecord]:
        builder = producer.create_batch()

        def append_record(
            key: bytes | None,
            value: bytes | None,
            header_values: tuple[HeaderValue, ...],
            timestamp: int | None = None,
        ) -> int | None:
            headers = header_pairs(header_names, header_values)
            appended = builder.append(timestamp=timestamp, key=key, value=value, headers=headers)
            return None if appended is None else int(appended.offset)

        return builder, append_record

    return new_aiokafka_batch


@dataclass(slots=True)
class _OpenBatch:
    builder: Any  # what send_batch takes: an EventBatch, or aiokafka's own BatchBuilder
    append_record: AppendRecord
    # One per record, in record order: a record's offset in its batch is its index here. None:
    # a record queued without a result of its own (EventPublisher.enqueue).
    entries: list[asyncio.Future[PublishResult] | None] = field(default_factory=list)
    timer: asyncio.TimerHandle | None = None
    due: bool = False  # lingered long enough, or someone waits for it
    claimed: bool = False  # the drain task hands it over (or did)
    taken: asyncio.Future[None] | None = None  # done once the producer's sender took it
    sealed: bool = False  # no more records, whatever the producer does


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark a future's outcome as seen (its twin is the one handled)."""
    if not future.cancelled():
        future.exception()


class Batcher:
    """Appends records to per-partition batches and submits them to the producer in order.

    One drain task per partition hands its batches over one after the other. While the producer
    still holds the partition's previous batch, records keep joining the open one, so batches
    grow with the load the way aiokafka's own accumulator lets them.
    """

    def __init__(  # noqa: PLR0913  # each is an independent, documented setting
        self,
        producer: AIOKafkaProducer,
        *,
        header_names: tuple[str, ...],
        batch_size: int,
        compression_type: str | None,
        linger_s: float,
        on_settled: Callable[[list[asyncio.Future[PublishResult] | None]], None],
        on_unreported_failure: Callable[[TopicPartition, int, BaseException], None],
    ) -> None:
        """Batch for ``producer``; ``on_settled`` gets each batch's records once, acked or failed.

        ``on_unreported_failure`` hears of records without a result of their own that failed
        (topic-partition, how many, why): no future carries their error.

        Every record carries ``header_names`` (its values given to ``append``); batches
        hold up to ``batch_size`` bytes before ``compression_type`` (the producer's settings).
        """
        self._producer = producer
        self._new_batch = batch_factory(producer, header_names, batch_size, compression_type)
        self._linger_s = linger_s
        self._on_settled = on_settled
        self._on_unreported_failure = on_unreported_failure
        self._partitions: dict[str, list[int]] = {}
        self._open: dict[TopicPartition, _OpenBatch] = {}
        self._full: dict[TopicPartition, list[_OpenBatch]] = {}
        self._draining: dict[TopicPartition, asyncio.Task[None]] = {}
        self._leaders: dict[TopicPartition, object] = {}  # see _leader
        # aiokafka refreshes cluster metadata every metadata_max_age_ms (and on errors); a topic
        # that gained partitions is then partitioned over all of them, as Java producers do.
        producer.client.cluster.add_listener(self._metadata_updated)

    def known_partition(self, topic: str, key: bytes) -> int | None:
        """The partition of ``key`` (``key_partition``) in a known topic; None: a new one."""
        partitions = self._partitions.get(topic)
        if partitions is None:
            return None
        return key_partition(key, partitions)

    def known_partitions(self, topic: str) -> list[int] | None:
        """The topic's sorted partitions, as this batcher knows them; None: a new topic.

        The same list for the batcher's life: when the topic gains partitions, the list is
        updated in place, so holders of it partition as the batcher does.
        """
        return self._partitions.get(topic)

    async def partition_for(self, topic: str, key: bytes) -> int:
        """The partition of ``key``, looking the topic's partitions up the first time."""
        while (partition := self.known_partition(topic, key)) is None:
            try:
                found = await self._producer.partitions_for(topic)
            except KafkaError as exc:
                raise BrokerUnavailableError(f"no metadata for topic {topic}: {exc}") from exc
            if not found:
                raise BrokerUnavailableError(f"no partitions known for topic {topic}")
            self._partitions[topic] = sorted(found)
        return partition

    def _metadata_updated(self, cluster: Any) -> None:
        self._leaders.clear()  # leaders move with metadata
        for topic, known in self._partitions.items():
            current = cluster.partitions_for_topic(topic)
            if current and len(current) > (before := len(known)):
                known[:] = sorted(current)  # in place: see known_partitions
                # Kafka keeps no key order across a partition change: say so where it happens.
                _log.warning(
                    "topic gained partitions: sessions may move to the new ones",
                    topic=topic,
                    partitions_before=before,
                    partitions_after=len(current),
                )

    @overload
    def append(
        self,
        tp: TopicPartition,
        key: bytes,
        value: bytes,
        header_values: tuple[HeaderValue, ...],
        *,
        result: Literal[True] = True,
    ) -> asyncio.Future[PublishResult]: ...

    @overload
    def append(
        self,
        tp: TopicPartition,
        key: bytes,
        value: bytes,
        header_values: tuple[HeaderValue, ...],
        *,
        result: Literal[False],
    ) -> None: ...

    def append(
        self,
        tp: TopicPartition,
        key: bytes,
        value: bytes,
        header_values: tuple[HeaderValue, ...],
        *,
        result: bool = True,
    ) -> asyncio.Future[PublishResult] | None:
        """Add a record to its partition's open batch; the future resolves when it is acked.

        ``result=False``: no future (None), the cheapest record; a failure goes to
        ``on_unreported_failure``.
        """
        batch = self._open.get(tp)
        if (  # a record joins a batch neither sealed nor taken by the sender (no method: a call)
            batch is None
            or batch.sealed
            or (batch.taken is not None and batch.taken.done())
            or batch.append_record(key, value, header_values) is None
        ):  # no batch, or full, or taken by the sender: a new batch takes the record
            if batch is not None:
                self._leave(tp, batch)
            batch = self._start(tp)
            # A new batch always takes its first record, whatever its size (as aiokafka's).
            batch.append_record(key, value, header_values)
        if not result:
            batch.entries.append(None)
            return None
        # The future type itself: loop.create_future() is one more Python call per record.
        future: asyncio.Future[PublishResult] = asyncio.Future(loop=asyncio.get_running_loop())
        batch.entries.append(future)
        return future

    def submit(self, tp: TopicPartition) -> None:
        """Hand the partition's open batch over now (no more linger); it still takes records."""
        batch = self._open.get(tp)
        if batch is not None and not batch.claimed:
            batch.due = True
            self._drain_soon(tp)

    async def flush(self) -> None:
        """Hand every batch over and wait until the producer has them all."""
        while self._draining or any(not batch.claimed for batch in self._open.values()):
            for tp in list(self._open):
                self.submit(tp)
            await asyncio.gather(*list(self._draining.values()))

    def _start(self, tp: TopicPartition) -> _OpenBatch:
        batch = _OpenBatch(*self._new_batch())
        self._open[tp] = batch
        if self._linger_s > 0:
            batch.timer = asyncio.get_running_loop().call_later(
                self._linger_s, self._linger_over, tp, batch
            )
        else:
            # No linger: due at once. The drain task starts on the next loop iteration, so the
            # records appended until then still join this batch; a timer would add a hop.
            self._linger_over(tp, batch)
        return batch

    def _leave(self, tp: TopicPartition, batch: _OpenBatch) -> None:
        """Stop appending to ``batch``; one not claimed yet queues for the drain task."""
        if self._open.get(tp) is batch:
            del self._open[tp]
        if batch.timer is not None:
            batch.timer.cancel()
            batch.timer = None
        batch.sealed = True
        batch.builder.close()  # a closed builder is sent at once, whatever the producer lingers
        if not batch.claimed:
            self._full.setdefault(tp, []).append(batch)
            self._drain_soon(tp)

    def _linger_over(self, tp: TopicPartition, batch: _OpenBatch) -> None:
        # A timer that ran keeps its arguments, this batch among them: batch -> timer -> batch
        # would be a reference cycle, and the batch's records (futures, results) would wait for
        # a full garbage collection to be freed (they made most of its work, and its pauses).
        batch.timer = None
        batch.due = True
        self._drain_soon(tp)
        # As Java's producer drains a broker: once one of its batches is due, every batch for
        # the same broker goes too, in the same produce request (a timer per partition woke the
        # producer's sender once per partition: events spread over 36 partitions at 1k/s).
        if self._linger_s <= 0:
            return  # nothing lingers: no batch has a timer to cut short
        leader = self._leader(tp)
        for other_tp, other in self._open.items():
            if other.timer is not None and self._leader(other_tp) == leader:
                other.timer.cancel()
                other.timer = None
                other.due = True
                self._drain_soon(other_tp)

    def _leader(self, tp: TopicPartition) -> object:
        """The broker leading ``tp`` as the producer's metadata says (None: unknown).

        Remembered until the next metadata update: a due batch asks for every open batch's.
        """
        if tp not in self._leaders:
            self._leaders[tp] = self._producer.client.cluster.leader_for_partition(
                KafkaTopicPartition(*tp)
            )
        return self._leaders[tp]

    def _drain_soon(self, tp: TopicPartition) -> None:
        if tp not in self._draining:
            self._draining[tp] = asyncio.get_running_loop().create_task(self._drain(tp))

    def _next_to_hand_over(self, tp: TopicPartition) -> _OpenBatch | None:
        full = self._full.get(tp)
        if full:
            return full.pop(0)  # started before the open one
        batch = self._open.get(tp)
        if batch is None or not batch.due or batch.claimed:
            return None
        return batch

    async def _drain(self, tp: TopicPartition) -> None:
        topic, partition = tp
        try:
            while (batch := self._next_to_hand_over(tp)) is not None:
                batch.claimed = True
                try:
                    # Waits while the producer still holds this partition's previous batch.
                    delivery = await self._producer.send_batch(
                        batch.builder, topic, partition=partition
                    )
                except KafkaError as exc:
                    self._leave(tp, batch)
                    self._settle(batch, tp, None, exc)
                    continue
                found = taken_and_delivered(self._producer, tp, batch.builder)
                if found is None:
                    self._leave(tp, batch)
                else:
                    batch.taken = found[0]
                    delivery.add_done_callback(_retrieve)
                    delivery = found[1]
                delivery.add_done_callback(lambda done, sent=batch: self._delivered(sent, tp, done))
        finally:
            del self._draining[tp]

    def _delivered(self, batch: _OpenBatch, tp: TopicPartition, done: asyncio.Future[Any]) -> None:
        if self._open.get(tp) is batch:
            del self._open[tp]  # delivered, so long taken: the next record starts a new batch
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
        unreported = 0
        for relative, result in enumerate(batch.entries):
            if result is None:
                unreported += 1
            elif not result.done():
                if base is None:
                    failure = BrokerUnavailableError(
                        f"record to {topic}[{partition}] not acknowledged: {error!r}"
                    )
                    failure.__cause__ = error  # what the broker said, for typed errors above
                    result.set_exception(failure)
                else:
                    result.set_result(PublishResult(topic, partition, base + relative))
        if base is None and unreported:
            self._on_unreported_failure(tp, unreported, error or asyncio.CancelledError())
        self._on_settled(batch.entries)
