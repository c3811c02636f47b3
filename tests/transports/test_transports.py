"""The publishing contract, run against the in-memory transport and the Kafka publisher."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import pytest
from _registration import register_shipped_schemas
from conftest import create_topic, read_to_end
from transport_contract import Stored, TransportContract

from agentflux.producers import EventPublisher, InMemoryTransport, QueueingTransport
from agentflux.schemas import EventCategory

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from conftest import Cluster


class TestInMemoryTransport(TransportContract):
    """The in-memory transport users test with honours the publishing contract."""

    @pytest.fixture
    async def transport(self) -> AsyncIterator[QueueingTransport]:
        """A fresh in-memory transport."""
        transport = InMemoryTransport()
        await transport.start()
        yield transport
        await transport.close()

    async def stored(self, transport: QueueingTransport) -> list[Stored]:
        """Its records, as Kafka would have stored them."""
        assert isinstance(transport, InMemoryTransport)
        return [
            Stored(r.topic, r.partition, r.offset, r.key, dict(r.headers))
            for r in transport.records
        ]


@pytest.mark.broker
class TestKafkaPublisher(TransportContract):
    """The Kafka publisher, on a real broker and registry, honours the publishing contract."""

    @pytest.fixture
    async def transport(self, cluster: Cluster) -> AsyncIterator[QueueingTransport]:
        """A publisher whose six category topics exist under a prefix no other test uses."""
        settings = cluster.settings.model_copy(update={"topic_prefix": f"c{uuid.uuid4().hex[:8]}."})
        for category in EventCategory:
            await create_topic(settings, settings.topic_prefix + category.topic, partitions=6)
        await register_shipped_schemas(settings)
        async with EventPublisher(settings) as publisher:
            yield publisher

    async def stored(self, transport: QueueingTransport) -> list[Stored]:
        """Its records, read back from the broker."""
        assert isinstance(transport, EventPublisher)
        settings = transport.settings
        records = await read_to_end(
            settings, [settings.topic_prefix + c.topic for c in EventCategory]
        )
        ordered = sorted(records, key=lambda r: (r.topic, r.partition, r.offset))
        return [
            Stored(r.topic, r.partition, r.offset, r.key or b"", dict(r.headers)) for r in ordered
        ]


def test_both_publishers_are_queueing_transports() -> None:
    """The in-memory transport and the Kafka publisher both satisfy QueueingTransport."""
    assert isinstance(InMemoryTransport(), QueueingTransport)
    assert issubclass(EventPublisher, QueueingTransport)
