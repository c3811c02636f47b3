"""The publisher on the real cluster: order and keys per session, headers, refusals, outages."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict
from typing import TYPE_CHECKING, Any

import pytest
import structlog.testing
from _registration import register_shipped_schemas
from _samples import sample_events
from _traffic import prefixed_topics
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.structs import TopicPartition
from conftest import create_topic, read_to_end

from agentflux.kafka import AgentfluxSettings, connection_kwargs
from agentflux.producers import (
    AgentSwitchedEvent,
    BaseEvent,
    BrokerUnavailableError,
    EventBus,
    EventPublisher,
    EventType,
    InvalidEventError,
    PublishResult,
    Simulator,
    ToolExecutionCompletedEvent,
    UnacknowledgedRecordsError,
)
from agentflux.schemas import (
    EVENT_MODELS,
    HEADER_NAMES,
    AvroCodec,
    EventCategory,
    RegistryClient,
    event_headers,
    header_map,
)

if TYPE_CHECKING:
    from aiokafka.structs import ConsumerRecord
    from conftest import Cluster


async def _prefixed(cluster: Cluster, replication: int = 1, min_isr: int = 1) -> AgentfluxSettings:
    """Settings whose category topics (6 partitions) exist under a prefix no other test uses."""
    return await prefixed_topics(cluster, partitions=6, replication=replication, min_isr=min_isr)


async def _read_all(
    settings: AgentfluxSettings, expected: int
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of the six category topics up to their end offsets (at least ``expected``)."""
    records = await read_to_end(settings, [settings.topic_prefix + c.topic for c in EventCategory])
    assert len(records) >= expected
    return records


async def _refusing_topic(cluster: Cluster) -> tuple[AgentfluxSettings, AgentSwitchedEvent]:
    """Settings with a fresh prefix whose agent topic takes no record as big as an event.

    The broker refuses every batch for it (``max.message.bytes`` 64), a real refusal.
    """
    settings = cluster.settings.model_copy(update={"topic_prefix": f"t{uuid.uuid4().hex[:8]}."})
    event = AgentSwitchedEvent(session_id="s", from_agent="a", to_agent="b")
    await create_topic(
        settings, settings.topic_prefix + event.topic, configs={"max.message.bytes": "64"}
    )
    await register_shipped_schemas(settings)
    return settings, event


def _published_order(
    settings: AgentfluxSettings, events: list[BaseEvent]
) -> dict[tuple[str, str], list[str]]:
    """Event ids by (topic, session), in publish order."""
    published: dict[tuple[str, str], list[str]] = defaultdict(list)
    for event in events:
        published[settings.topic_prefix + event.topic, event.session_id].append(str(event.event_id))
    return published


def _stored_order(records: list[ConsumerRecord[bytes, bytes]]) -> dict[tuple[str, str], list[str]]:
    """Event ids by (topic, session key), in offset order."""
    stored: dict[tuple[str, str], list[str]] = defaultdict(list)
    for record in sorted(records, key=lambda r: (r.topic, r.partition, r.offset)):
        assert record.key is not None
        stored[record.topic, record.key.decode()].append(header_map(record.headers)["event_id"])
    return stored


async def _end_offsets(settings: AgentfluxSettings, topic: str) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(**connection_kwargs(settings))
    await consumer.start()
    try:
        ids = await consumer._client.fetch_all_metadata()
        partitions = [TopicPartition(topic, p) for p in ids.partitions_for_topic(topic) or ()]
        return dict(await consumer.end_offsets(partitions))
    finally:
        await consumer.stop()


@pytest.mark.broker
@pytest.mark.slow
async def test_200_sessions_keep_order_keys_and_headers(cluster: Cluster) -> None:
    """200 concurrent sessions: per topic, a session is on one partition, in publish order."""
    settings = await _prefixed(cluster)
    events = list(Simulator(sessions=200, seed=11).events())
    async with EventPublisher(settings) as publisher:
        futures = [await publisher.send(event) for event in events]
        results: list[PublishResult] = list(await asyncio.gather(*futures))
    assert len(results) == len(events)
    records = await _read_all(settings, len(events))
    assert len(records) == len(events)

    published = _published_order(settings, events)
    partitions: dict[tuple[str, str], set[int]] = defaultdict(set)
    for record in records:
        headers = header_map(record.headers)
        assert record.key is not None
        session = record.key.decode()
        assert headers["ce_subject"] == session
        assert headers["ce_specversion"] == "1.0"
        assert headers["ce_id"] == headers["event_id"]
        assert headers["ce_type"] == f"dev.agentflux.{headers['event_type']}"
        assert headers["content-type"] == "application/avro"
        assert len(headers["traceparent"].split("-")) == 4
        partitions[record.topic, session].add(record.partition)
    assert _stored_order(records) == published  # same events, same order, per topic and session
    assert all(len(p) == 1 for p in partitions.values())
    assert len({s for _, s in published}) == 201  # 200 stories and the runtime's system session

    async with RegistryClient(cluster.registry_url) as registry:
        codec = AvroCodec(registry)
        decoded = [await codec.decode(r.value) for r in records[:50] if r.value is not None]
    assert all(isinstance(e, BaseEvent) for e in decoded)


async def test_send_waits_while_max_in_flight_records_are_unacknowledged(cluster: Cluster) -> None:
    """Backpressure: with the limit reached, send() waits until acknowledgements make room."""
    settings = await _prefixed(cluster)
    events = [AgentSwitchedEvent(session_id="s", from_agent="a", to_agent=str(i)) for i in range(4)]
    # A long linger keeps the first three records unsent (unacknowledged) until flush().
    async with EventPublisher(settings, max_in_flight=3, linger_ms=60_000) as publisher:
        acked = [await publisher.send(event) for event in events[:3]]
        fourth = asyncio.ensure_future(publisher.send(events[3]))
        for _ in range(20):
            await asyncio.sleep(0)  # let the fourth send run as far as it can
        assert not fourth.done()
        assert not any(future.done() for future in acked)
        await publisher.flush()
        await (await fourth)
    records = await _read_all(settings, 4)
    assert [header_map(r.headers)["event_id"] for r in records] == [str(e.event_id) for e in events]


@pytest.mark.broker
async def test_enqueued_events_arrive_once_in_session_order(cluster: Cluster) -> None:
    """enqueue() (no future per event): after flush every event is stored once, in order."""
    settings = await _prefixed(cluster)
    events = list(Simulator(sessions=20, seed=5).events())
    async with EventPublisher(settings) as publisher:
        for event in events:
            await publisher.enqueue(event)
        await publisher.flush()
    records = await _read_all(settings, len(events))
    assert len(records) == len(events)
    assert _stored_order(records) == _published_order(settings, events)


@pytest.mark.broker
async def test_enqueued_records_the_broker_refuses_fail_the_flush(cluster: Cluster) -> None:
    """Records without futures that the broker refuses are logged and raised by flush()."""
    settings, event = await _refusing_topic(cluster)
    publisher = EventPublisher(settings)
    await publisher.start()
    with structlog.testing.capture_logs() as logs:
        for _ in range(3):
            await publisher.enqueue(event)
        with pytest.raises(
            UnacknowledgedRecordsError, match="3 records queued with enqueue"
        ) as info:
            await publisher.flush()
        await publisher.close()  # raised once: nothing left to report
    failed = [log for log in logs if log["event"] == "queued records not acknowledged"]
    assert sum(log["records"] for log in failed) == 3
    assert info.value.count == 3
    ((topic, _partition),) = info.value.failures  # one session key: one partition
    assert topic == settings.topic_prefix + event.topic
    assert isinstance(info.value.failures[topic, _partition][1], KafkaError)
    assert isinstance(info.value, BrokerUnavailableError)  # what callers caught before


@pytest.mark.broker
async def test_bus_enqueue_stores_every_event_and_runs_subscribers(cluster: Cluster) -> None:
    """EventBus.enqueue() then flush(): every event stored once in session order, each dispatched."""
    settings = await _prefixed(cluster)
    events = list(Simulator(sessions=10, seed=9).events())
    bus = EventBus(settings, mode="both")
    seen: list[BaseEvent] = []
    bus.subscribe_handler(seen.append)
    for event in events:
        await bus.enqueue(event)
    await bus.flush()
    records = await _read_all(settings, len(events))
    await bus.close()
    assert len(records) == len(events)
    assert _stored_order(records) == _published_order(settings, events)
    assert seen == events
    assert bus.get_stats()["total_published"] == len(events)


@pytest.mark.broker
async def test_bus_flush_raises_what_the_broker_refused(cluster: Cluster) -> None:
    """Events the broker refuses after EventBus.enqueue() fail its flush(), counted as failures."""
    settings, event = await _refusing_topic(cluster)
    bus = EventBus(settings, mode="kafka")
    for _ in range(2):
        await bus.enqueue(event)
    with pytest.raises(UnacknowledgedRecordsError, match="2 records queued with enqueue"):
        await bus.flush()
    await bus.close()
    assert bus.get_stats()["publish_failures"] == 1


@pytest.mark.broker
async def test_added_partitions_are_used_after_a_metadata_refresh(cluster: Cluster) -> None:
    """A topic grown from 2 to 6 partitions gets keys by murmur2 over all 6, without a restart."""
    settings = cluster.settings.model_copy(update={"topic_prefix": f"t{uuid.uuid4().hex[:8]}."})
    topic = await create_topic(settings, settings.topic_prefix + "agent.events", partitions=2)
    await register_shipped_schemas(settings)
    sessions = [f"session-{n}" for n in range(40)]

    def one_each() -> list[AgentSwitchedEvent]:
        return [AgentSwitchedEvent(session_id=s, from_agent="a", to_agent="b") for s in sessions]

    # A short metadata age: aiokafka (like Java's producer) sees new partitions on its refresh.
    async with EventPublisher(settings, metadata_max_age_ms=300) as publisher:
        before = await publisher.publish_many(one_each())
        assert {result.partition for result in before} == {0, 1}
        admin = AIOKafkaAdminClient(**connection_kwargs(settings))
        await admin.start()
        try:
            await admin.create_partitions({topic: NewPartitions(total_count=6)})
        finally:
            await admin.close()
        with structlog.testing.capture_logs() as logs:
            deadline = asyncio.get_running_loop().time() + 30
            while max(result.partition for result in await publisher.publish_many(one_each())) < 2:
                assert asyncio.get_running_loop().time() < deadline, "new partitions never used"
                await asyncio.sleep(0.1)  # aiokafka's metadata refresh runs on its own schedule
        after = await publisher.publish_many(one_each())
    java = DefaultPartitioner()
    expected = [java(s.encode(), list(range(6)), list(range(6))) for s in sessions]
    assert [result.partition for result in after] == expected
    grown = [log for log in logs if "partitions_after" in log]
    assert [(log["partitions_before"], log["partitions_after"]) for log in grown] == [(2, 6)]


@pytest.mark.broker
@pytest.mark.parametrize("compression", [None, "gzip", "snappy", "lz4", "zstd"])
async def test_the_broker_takes_the_publishers_batches_in_every_codec(
    cluster: Cluster, compression: str | None
) -> None:
    """The publisher's own batches, each codec: the broker stores every record as written."""
    settings = await _prefixed(cluster)
    events = list(Simulator(sessions=20, seed=3).events())
    before = int(time.time() * 1000)
    async with EventPublisher(settings, compression_type=compression) as publisher:
        results = await publisher.publish_many(events)
    after = int(time.time() * 1000)
    by_place = {(r.topic, r.partition, r.offset): e for r, e in zip(results, events, strict=True)}
    records = await _read_all(settings, len(events))
    assert len(records) == len(events)
    for record in records:
        event = by_place[record.topic, record.partition, record.offset]
        assert record.key == event.session_id.encode()
        assert before <= record.timestamp <= after
        stored = dict(record.headers)
        traceparent = stored["traceparent"].decode()
        assert list(stored) == list(HEADER_NAMES)
        assert record.headers == tuple(event_headers(event, traceparent))


@pytest.mark.broker
async def test_invalid_event_leaves_topic_untouched(cluster: Cluster) -> None:
    """Events that fail validation or the schema raise InvalidEventError, first or later, and write nothing."""
    settings = await _prefixed(cluster)
    topic = settings.topic_prefix + "tool.events"
    before = await _end_offsets(settings, topic)
    unchecked = AgentSwitchedEvent.model_construct(session_id="", from_agent="a", to_agent="b")
    misfit = ToolExecutionCompletedEvent.model_construct(
        session_id="s", call_id="c", tool_name="t", duration_ms="slow", result_summary=""
    )
    async with EventPublisher(settings, revalidate=True) as strict:
        with pytest.raises(InvalidEventError, match="session_id"):
            await strict.publish(unchecked)
    fitting = ToolExecutionCompletedEvent(
        session_id="s", call_id="c", tool_name="t", duration_ms=5, result_summary=""
    )
    async with EventPublisher(settings) as publisher:
        with pytest.raises(InvalidEventError):
            await publisher.publish(misfit)  # caught by the Avro encoder, before any send
        await publisher.publish(fitting)  # its type prepared: the steady-state path from now on
        for queue in (publisher.publish, publisher.send, publisher.enqueue):
            with pytest.raises(InvalidEventError, match="does not fit"):
                await queue(misfit)
        await publisher.flush()
    after = await _end_offsets(settings, topic)
    assert sum(after.values()) == sum(before.values()) + 1  # the fitting event alone


class _CountingRegistry(RegistryClient):
    """The real registry client, counting the requests it sends over the wire."""

    requests = 0

    async def _request(self, method: str, path: str, body: Any = None) -> Any:
        self.requests += 1
        return await super()._request(method, path, body)


@pytest.mark.broker
async def test_prepared_types_publish_without_asking_the_registry(cluster: Cluster) -> None:
    """After prepare(), the first event of every type is published with no registry request."""
    settings = await _prefixed(cluster)
    registry = _CountingRegistry.from_settings(settings)
    events = sample_events()
    async with EventPublisher(settings, codec=AvroCodec(registry)) as publisher:
        assert await publisher.prepare() == len(EVENT_MODELS)
        prepared_with = registry.requests
        assert prepared_with == len(EVENT_MODELS)  # one lookup per type, nothing more
        results = await publisher.publish_many(events)
        assert registry.requests == prepared_with
        assert await publisher.prepare([type(events[0])]) == 1  # known: asks nothing again
        assert registry.requests == prepared_with
    await registry.aclose()
    stored = {header_map(r.headers)["event_id"] for r in await _read_all(settings, len(events))}
    assert stored == {str(e.event_id) for e in events}
    assert [r.topic for r in results] == [settings.topic_prefix + e.topic for e in events]


@pytest.mark.broker
async def test_unreachable_cluster_is_a_typed_error() -> None:
    """With no broker at the address, start fails after its deadline with BrokerUnavailableError."""
    settings = AgentfluxSettings(bootstrap_servers="127.0.0.1:9", registry_url="http://127.0.0.1:9")
    publisher = EventPublisher(settings, connect_timeout_s=2)
    with pytest.raises(BrokerUnavailableError, match=r"127\.0\.0\.1:9"):
        await publisher.start()
    await publisher.close()


@pytest.mark.cluster3
@pytest.mark.slow
async def test_outage_fails_typed_and_loses_nothing_acknowledged(cluster3: Cluster) -> None:
    """When acks=all cannot be met (min ISR 3, a node killed), publish fails typed; nothing acked is lost."""
    # min.insync.replicas=3 makes one dead node a write outage while the KRaft quorum (2 of 3) lives.
    settings = await _prefixed(cluster3, replication=3, min_isr=3)
    acknowledged: list[AgentSwitchedEvent] = []
    async with EventPublisher(settings, publish_timeout_s=8, request_timeout_ms=4000) as publisher:
        for i in range(50):
            event = AgentSwitchedEvent(session_id=f"s{i % 5}", from_agent="a", to_agent="b")
            await publisher.publish(event)
            acknowledged.append(event)
        cluster3.kill_node(2)
        try:
            with pytest.raises(BrokerUnavailableError):
                await publisher.publish(
                    AgentSwitchedEvent(session_id="s0", from_agent="a", to_agent="b")
                )
        finally:
            cluster3.start_node(2)
    records = await _read_all(settings, len(acknowledged))
    stored = {header_map(r.headers)["event_id"] for r in records}
    assert {str(e.event_id) for e in acknowledged} <= stored


@pytest.mark.broker
async def test_old_bus_code_runs_unchanged_on_kafka(cluster: Cluster) -> None:
    """Code written for the old bus publishes to Kafka and still reaches its local subscriber."""
    settings = await _prefixed(cluster)
    event_bus = EventBus(
        settings
    )  # what `from agentflux.producers import event_bus` gives, configured
    received: list[Any] = []

    @event_bus.subscribe(event_type=EventType.AGENT_SWITCHED, priority=10)
    async def my_handler(event: BaseEvent) -> None:
        received.append(event)

    correlation_id = "corr-42"
    await event_bus.publish(
        AgentSwitchedEvent(
            session_id="session-123",
            from_agent="orchestrator",
            to_agent="coder",
            reason="Code modification required",
            correlation_id=correlation_id,
        )
    )
    await event_bus.close()
    assert len(received) == 1
    assert event_bus.get_stats()["events_by_type"] == {"agent_switched": 1}
    records = await _read_all(settings, 1)
    assert header_map(records[0].headers)["correlation_id"] == correlation_id
    assert records[0].key == b"session-123"
