"""Fetch sessions against the real broker: fetches shrink to what moved, and nothing is lost."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.protocol.fetch import FetchRequest
from conftest import create_topic

from agentflux.consumers._reader import install_record_reader
from agentflux.kafka import connection_kwargs
from agentflux.kafka._gate._fetch_sessions import (
    FetchSession,
    SessionFetchRequest,
    install_fetch_sessions,
)
from agentflux.kafka._gate._lazy_headers import lazy_headers

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from conftest import Cluster

_PARTITIONS = 12
_INVALID_FETCH_SESSION_EPOCH = 71
_FETCH_SESSION_ID_NOT_FOUND = 70


@pytest.fixture
async def sessions_topic(cluster: Cluster, topic_name: str) -> str:
    """A fresh topic of twelve partitions."""
    return await create_topic(cluster.settings, topic_name, partitions=_PARTITIONS)


@pytest.fixture
async def producer(cluster: Cluster) -> AsyncIterator[AIOKafkaProducer]:
    """A started producer that sends each record at once."""
    producer = AIOKafkaProducer(**connection_kwargs(cluster.settings), linger_ms=0)
    await producer.start()
    yield producer
    await producer.stop()


async def _consumer(cluster: Cluster, topic: str, **options: Any) -> AIOKafkaConsumer:
    consumer = AIOKafkaConsumer(
        topic,
        **connection_kwargs(cluster.settings),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_wait_ms=200,
        **options,
    )
    await consumer.start()
    return consumer


async def _round_trips(
    producer: AIOKafkaProducer, consumer: AIOKafkaConsumer, topic: str, first: int, count: int
) -> list[tuple[int, bytes | None]]:
    """Send one record at a time, each to the next partition, and receive it before the next."""
    received: list[tuple[int, bytes | None]] = []
    for n in range(first, first + count):
        await producer.send_and_wait(topic, b"v%d" % n, partition=n % _PARTITIONS)
        record = await asyncio.wait_for(consumer.getone(), 30)
        received.append((record.partition, record.value))
    return received


def _expected(first: int, count: int) -> list[tuple[int, bytes]]:
    return [(n % _PARTITIONS, b"v%d" % n) for n in range(first, first + count)]


def _session_of(consumer: AIOKafkaConsumer) -> FetchSession:
    sessions: dict[int, FetchSession] = (
        consumer._fetcher._sessions
    )  # the fetcher's state is the test's subject
    assert len(sessions) == 1  # one broker
    return next(iter(sessions.values()))


@pytest.mark.broker
async def test_fetches_after_the_first_name_only_what_moved(
    cluster: Cluster,
    sessions_topic: str,
    producer: AIOKafkaProducer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The broker opens a session; later fetches name one or two of twelve partitions."""
    sent: list[tuple[int, int]] = []  # (epoch, partitions named) of each fetch, as built
    build = SessionFetchRequest.build

    def recording(self: SessionFetchRequest, struct_class: type[Any]) -> Any:
        struct = build(self, struct_class)
        sent.append((struct.session_epoch, sum(len(p) for _, p in struct.topics)))
        return struct

    monkeypatch.setattr(SessionFetchRequest, "build", recording)
    assert install_record_reader()
    assert install_fetch_sessions()
    marked = await _consumer(cluster, sessions_topic, key_deserializer=lazy_headers)
    plain = await _consumer(cluster, sessions_topic)
    try:
        assert await _round_trips(producer, marked, sessions_topic, 0, 40) == _expected(0, 40)
        session_id = _session_of(marked).id
        assert plain._fetcher._sessions is None  # unmarked: aiokafka's fetches
    finally:
        await marked.stop()
        await plain.stop()
    assert session_id != 0
    assert sent[0] == (0, _PARTITIONS)  # the full fetch that opened the session
    incremental = [named for epoch, named in sent if epoch > 0]
    assert len(incremental) >= 39  # one per record at least, bar one the opening fetch brought
    assert max(incremental) <= 2  # the partition whose offset moved (and one given back)


@pytest.mark.broker
async def test_a_session_the_broker_refuses_is_opened_again(
    cluster: Cluster,
    sessions_topic: str,
    producer: AIOKafkaProducer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A wrong epoch is refused by the broker; the consumer opens a new session, loses nothing."""
    errors: list[int] = []
    answered = FetchSession.answered

    def recording(self: FetchSession, wanted: Any, error_code: int, session_id: int) -> None:
        errors.append(error_code)
        answered(self, wanted, error_code, session_id)

    monkeypatch.setattr(FetchSession, "answered", recording)
    assert install_record_reader()
    assert install_fetch_sessions()
    consumer = await _consumer(cluster, sessions_topic, key_deserializer=lazy_headers)
    try:
        assert await _round_trips(producer, consumer, sessions_topic, 0, 10) == _expected(0, 10)
        first = _session_of(consumer)
        first_id = first.id
        first.epoch += 1000  # as if answers had been lost: the broker holds another epoch
        assert await _round_trips(producer, consumer, sessions_topic, 10, 20) == _expected(10, 20)
        second_id, second_epoch = first.id, first.epoch
    finally:
        await consumer.stop()
    assert _INVALID_FETCH_SESSION_EPOCH in errors
    assert second_id not in {0, first_id}  # a new session replaced the refused one
    assert second_epoch > 1


@pytest.mark.broker
async def test_stopping_ends_the_session_on_the_broker(
    cluster: Cluster, sessions_topic: str, producer: AIOKafkaProducer
) -> None:
    """After stop the broker no longer knows the session: its slot is free at once."""
    assert install_record_reader()
    assert install_fetch_sessions()
    consumer = await _consumer(cluster, sessions_topic, key_deserializer=lazy_headers)
    try:
        await _round_trips(producer, consumer, sessions_topic, 0, 3)
        ((node_id, session),) = consumer._fetcher._sessions.items()
        session_id = session.id
        listeners = consumer._client.cluster._listeners  # how departed brokers are noticed
        assert consumer._fetcher._metadata_updated in listeners
    finally:
        await consumer.stop()
    assert consumer._fetcher._metadata_updated not in listeners  # the fetcher is not kept alive
    assert session_id != 0
    probe = FetchSession()
    probe.id, probe.epoch = session_id, 1000  # an open session would answer "wrong epoch" (71)
    other = await _consumer(cluster, sessions_topic)  # for its client only
    try:
        request = SessionFetchRequest(FetchRequest(0, 0, 1024, 0, []), probe)
        response = await other._client.send(node_id, request)
    finally:
        await other.stop()
    assert response.error_code == _FETCH_SESSION_ID_NOT_FOUND
