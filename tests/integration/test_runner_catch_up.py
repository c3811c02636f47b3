"""A store-backed runner's next write takes what arrived while the last one was written."""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING

import pytest
from _registration import register_shipped_schemas
from aiokafka.structs import TopicPartition
from conftest import create_topic

from agentflux.consumers import GroupRunner, SqliteStore
from agentflux.producers import AgentProcessingStartedEvent, EventPublisher

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from conftest import Cluster

    from agentflux.consumers import Position, Transaction
    from agentflux.schemas import BaseEvent


class _HeldView:
    """Records each batch's sessions; the first batch's write waits until released."""

    name = "held"
    ddl: Sequence[str] = ()

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.writing = asyncio.Event()
        self.release = asyncio.Event()

    async def apply(self, tx: Transaction, event: BaseEvent, position: Position) -> None:
        """Never called: the runner applies batches to a view that has ``apply_batch``."""
        raise AssertionError((tx, event, position))

    async def apply_batch(
        self, tx: Transaction, events: Sequence[tuple[BaseEvent, Position]]
    ) -> None:
        """Note the batch; hold the first one until the test releases it."""
        del tx  # nothing is written: the batches themselves are what the test looks at
        self.batches.append([event.session_id for event, _ in events])
        self.writing.set()
        await self.release.wait()


@pytest.mark.broker
async def test_records_fetched_during_a_write_join_the_next_write(
    cluster: Cluster, tmp_path: Path
) -> None:
    """The fetch decoded ahead and what aiokafka fetched meanwhile go in one write, not two."""
    settings = cluster.settings.model_copy(update={"topic_prefix": f"t{uuid.uuid4().hex[:8]}."})
    topic = await create_topic(settings, settings.topic_prefix + "agent.events", partitions=1)
    await register_shipped_schemas(settings)
    tp = TopicPartition(topic, 0)
    view = _HeldView()
    store = SqliteStore(tmp_path / "held.db")
    runner = GroupRunner(
        f"catch-up-{uuid.uuid4().hex[:6]}", [topic], settings=settings, views=[view], store=store
    )

    async def sent(publisher: EventPublisher, session: str) -> None:
        await publisher.send(AgentProcessingStartedEvent(session_id=session, agent="a"))
        await publisher.flush()

    async with store, runner, EventPublisher(settings) as publisher:
        async with asyncio.timeout(60):
            await runner.ready.wait()
            await sent(publisher, "first")
            await view.writing.wait()  # the first write holds; the runner fetches on
            await sent(publisher, "second")
            while await runner._consumer.position(tp) < 2:  # the runner's own consumer: where it is
                await asyncio.sleep(0.05)  # polled, not timed: the runner took "second"
            await sent(publisher, "third")
            while runner._consumer.highwater(tp) != 3:  # aiokafka fetched "third"
                await asyncio.sleep(0.05)
            view.release.set()
            await runner.wait_handled(3)
    assert view.batches == [["first"], ["second", "third"]]
