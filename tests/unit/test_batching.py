"""The publisher's batcher over aiokafka's real accumulator: joining, order, offsets."""

from __future__ import annotations

import asyncio
import gc
import weakref
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError
from aiokafka.partitioner import DefaultPartitioner, murmur2
from aiokafka.producer.message_accumulator import MessageAccumulator
from aiokafka.structs import TopicPartition
from hypothesis import given, settings
from hypothesis import strategies as st

from agentflux.producers import BrokerUnavailableError, _records
from agentflux.producers._batching import Batcher, _python_key_partition, key_partition
from agentflux.producers._protocols import PublishResult

_TP = ("events", 0)


class _Cluster:
    """One broker (node 0) leads every partition."""

    def add_listener(self, listener: object) -> None:
        """Metadata updates are not part of these tests."""

    def leader_for_partition(self, tp: TopicPartition) -> int:  # noqa: ARG002  # one leader
        """Node 0, always."""
        return 0

    @classmethod
    def producer(cls) -> SimpleNamespace:
        """A producer with this cluster and nothing else: enough to partition keys."""
        return SimpleNamespace(client=SimpleNamespace(cluster=cls()))


class _Producer:
    """The part of AIOKafkaProducer the batcher uses, over aiokafka's own accumulator.

    ``take`` does what the producer's sender does when its broker is free: drain the ready
    batches (fixing their sequence numbers); ``ack`` answers a taken batch.
    """

    def __init__(self) -> None:
        self.client = SimpleNamespace(cluster=_Cluster())
        self._message_accumulator = MessageAccumulator(self.client.cluster, 16_384, 0, 30)

    async def send_batch(self, builder: Any, topic: str, *, partition: int) -> Any:
        tp = TopicPartition(topic, partition)
        return await self._message_accumulator.add_batch(builder, tp, 30)

    def take(self) -> Any:
        drained, _ = self._message_accumulator.drain_by_nodes(ignore_nodes=set())
        return drained[0][TopicPartition(*_TP)] if drained else None


async def _settle_loop() -> None:
    for _ in range(10):
        await asyncio.sleep(0)  # let the batcher's drain task run its steps


def _batcher(
    producer: _Producer,
    *,
    linger_s: float = 0,
    batch_size: int = 16_384,
    unreported: list[tuple[Any, int, BaseException]] | None = None,
) -> Batcher:
    failures = [] if unreported is None else unreported
    return Batcher(
        producer,  # type: ignore[arg-type]
        header_names=(),
        batch_size=batch_size,
        compression_type=None,
        linger_s=linger_s,
        on_settled=lambda _: None,
        on_unreported_failure=lambda tp, count, error: failures.append((tp, count, error)),
    )


async def test_records_join_a_handed_over_batch_until_the_sender_takes_it() -> None:
    """Appended after hand-over but before the sender takes it: same batch, consecutive offsets."""
    producer = _Producer()
    batcher = _batcher(producer)
    first = batcher.append(_TP, b"k", b"1", ())
    await _settle_loop()  # handed over, the broker still busy: not taken yet
    second = batcher.append(_TP, b"k", b"2", ())
    taken = producer.take()
    third = batcher.append(_TP, b"k", b"3", ())  # after the take: must not join
    assert taken.record_count == 2
    taken.get_data_buffer()
    taken.done(base_offset=100)
    await _settle_loop()
    assert await first == PublishResult("events", 0, 100)
    assert await second == PublishResult("events", 0, 101)
    assert not third.done()
    await _settle_loop()
    later = producer.take()
    assert later.record_count == 1
    later.done(base_offset=102)
    assert await third == PublishResult("events", 0, 102)


async def test_full_batches_go_in_the_order_they_were_started() -> None:
    """Batches that fill up while the producer holds one are handed over oldest first."""
    producer = _Producer()
    batcher = _batcher(producer, batch_size=256)
    results = [batcher.append(_TP, b"k", bytes([n]) * 60, ()) for n in range(12)]
    await _settle_loop()
    offset = 0
    while (taken := producer.take()) is not None:
        taken.get_data_buffer()
        taken.done(base_offset=offset)
        offset += taken.record_count
        await _settle_loop()
    assert offset == len(results)
    assert [(await result).offset for result in results] == list(range(len(results)))


class _TwoBrokers(_Cluster):
    """Node 0 leads the even partitions, node 1 the odd ones."""

    def leader_for_partition(self, tp: TopicPartition) -> int:
        """The partition's parity."""
        return tp.partition % 2


async def test_a_due_batch_takes_the_lingering_batches_of_its_broker_along() -> None:
    """One partition's linger over: its broker's other batches go too, the other broker's wait."""
    producer = _Producer()
    producer.client.cluster = _TwoBrokers()
    batcher = _batcher(producer, linger_s=60)
    tps = [("events", partition) for partition in range(4)]
    for tp in tps:
        batcher.append(tp, b"k", b"v", ())
    first = batcher._open[tps[0]]
    assert first.timer is not None
    first.timer.cancel()
    batcher._linger_over(tps[0], first)  # as its timer does when the linger is over
    await _settle_loop()
    assert [batcher._open[tp].claimed for tp in tps] == [True, False, True, False]
    assert [batcher._open[tp].timer is None for tp in tps] == [True, False, True, False]
    await asyncio.wait_for(batcher.flush(), 5)  # the rest, so nothing is left lingering


async def test_a_partitions_broker_is_asked_again_after_a_metadata_update() -> None:
    """Leaders move: the broker remembered for a partition is dropped at the next update."""
    producer = _Producer()
    producer.client.cluster = _TwoBrokers()
    batcher = _batcher(producer, linger_s=60)
    tps = [("events", 0), ("events", 1)]
    assert [batcher._leader(tp) for tp in tps] == [0, 1]
    producer.client.cluster = _Cluster()  # node 0 now leads both
    batcher._metadata_updated(SimpleNamespace(partitions_for_topic=lambda _: None))
    for tp in tps:
        batcher.append(tp, b"k", b"v", ())
    first = batcher._open[tps[0]]
    assert first.timer is not None
    first.timer.cancel()
    batcher._linger_over(tps[0], first)
    await _settle_loop()
    assert batcher._open[tps[1]].claimed  # the same broker now: it went along
    await asyncio.wait_for(batcher.flush(), 5)


async def test_flush_hands_over_a_lingering_batch() -> None:
    """flush() submits batches still lingering, so the producer holds every record."""
    producer = _Producer()
    batcher = _batcher(producer, linger_s=60)
    pending = batcher.append(_TP, b"k", b"v", ())
    await asyncio.wait_for(batcher.flush(), 5)
    taken = producer.take()
    assert taken.record_count == 1
    taken.done(base_offset=7)
    assert (await pending).offset == 7


async def test_a_delivered_batch_is_freed_without_the_garbage_collector() -> None:
    """No reference cycle holds a settled batch: its records' futures go when no one holds them."""
    producer = _Producer()
    batcher = _batcher(producer, linger_s=0.001)  # a linger timer that fires
    gc.disable()  # only reference counting may free the future now
    try:
        pending = batcher.append(_TP, b"k", b"v", ())
        watched = weakref.ref(pending)
        while (taken := producer.take()) is None:
            await asyncio.sleep(0.001)  # the linger timer runs, the batch is handed over
        taken.get_data_buffer()
        taken.done(base_offset=5)
        assert (await pending).offset == 5
        await _settle_loop()
        del pending, taken
        assert watched() is None
    finally:
        gc.enable()


async def test_records_without_a_result_keep_their_place_in_the_batch() -> None:
    """A record appended without a future still takes its offset; the others' offsets follow."""
    producer = _Producer()
    unreported: list[tuple[Any, int, BaseException]] = []
    batcher = _batcher(producer, unreported=unreported)
    first = batcher.append(_TP, b"k", b"1", ())
    assert batcher.append(_TP, b"k", b"2", (), result=False) is None
    third = batcher.append(_TP, b"k", b"3", ())
    await _settle_loop()
    taken = producer.take()
    assert taken.record_count == 3
    taken.get_data_buffer()
    taken.done(base_offset=10)
    assert [(await first).offset, (await third).offset] == [10, 12]
    assert unreported == []


async def test_failed_records_without_a_result_are_reported_with_their_count() -> None:
    """A failed batch fails its futures and reports how many records had none, and why."""
    producer = _Producer()
    unreported: list[tuple[Any, int, BaseException]] = []
    batcher = _batcher(producer, unreported=unreported)
    batcher.append(_TP, b"k", b"1", (), result=False)
    with_result = batcher.append(_TP, b"k", b"2", ())
    batcher.append(_TP, b"k", b"3", (), result=False)
    await _settle_loop()
    producer.take().failure(KafkaConnectionError("broker gone"))
    with pytest.raises(BrokerUnavailableError, match="broker gone"):
        await with_result
    assert [(tp, count, type(error)) for tp, count, error in unreported] == [
        (_TP, 2, KafkaConnectionError)
    ]


@settings(max_examples=300, deadline=None)
@given(key=st.binary(max_size=64), partitions=st.integers(min_value=1, max_value=64))
def test_keys_go_where_kafkas_default_partitioner_sends_them(key: bytes, partitions: int) -> None:
    """Any key, any partition count: the partition aiokafka's (and Java's) partitioner picks."""
    batcher = _batcher(_Cluster.producer())  # type: ignore[arg-type]  # partitioning only
    batcher._partitions["events"] = list(range(partitions))  # as partition_for stores them
    expected = DefaultPartitioner()(key, list(range(partitions)), list(range(partitions)))
    assert batcher.known_partition("events", key) == expected
    assert _python_key_partition(key, list(range(partitions))) == expected  # no compiler


def test_keys_of_an_unknown_topic_have_no_partition_yet() -> None:
    """A topic whose partitions were never looked up has no known partition."""
    batcher = _batcher(_Cluster.producer())  # type: ignore[arg-type]  # partitioning only
    assert batcher.known_partition("new-topic", b"s-1") is None


def test_a_topics_partition_list_grows_in_place() -> None:
    """A topic that gains partitions grows the list known_partitions gave: holders see it."""
    batcher = _batcher(_Cluster.producer())  # type: ignore[arg-type]  # partitioning only
    batcher._partitions["events"] = [0, 1]  # as partition_for stores them
    held = batcher.known_partitions("events")
    grown = SimpleNamespace(partitions_for_topic=lambda topic: {0, 1, 2, 3} if topic else None)
    batcher._metadata_updated(grown)
    assert held is batcher.known_partitions("events")
    assert held == [0, 1, 2, 3]
    assert key_partition(b"s-1", held) == batcher.known_partition("events", b"s-1")


@given(data=st.binary(max_size=200))
def test_c_murmur2_is_kafkas(data: bytes) -> None:
    """The C murmur2 equals aiokafka's port of Kafka's (every length's tail included)."""
    assert _records.murmur2(data) == murmur2(data)
