"""A group's dead-letter topic: created as declared, and fed records with their failure."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from agentflux.kafka import connection_kwargs
from agentflux.schemas import load_topics

if TYPE_CHECKING:
    from aiokafka.structs import ConsumerRecord

    from agentflux.kafka import AgentfluxSettings

__all__ = ["DeadLetters", "ensure_dead_letter_topic"]

_MESSAGE_LIMIT = 2000  # characters of the error message kept in a header


async def ensure_dead_letter_topic(settings: AgentfluxSettings, group_id: str, topic: str) -> None:
    """Create ``group_id``'s dead-letter ``topic`` as declared, if it does not exist yet."""
    admin = AIOKafkaAdminClient(**connection_kwargs(settings))
    await admin.start()
    try:
        if topic in await admin.list_topics():
            return
        brokers = len((await admin.describe_cluster())["brokers"])
        declaration = load_topics()
        spec = declaration.dead_letter_spec(group_id, declaration.topics[0])
        replication = min(spec.replication_factor, brokers)
        configs = spec.configs() | {
            "min.insync.replicas": str(min(spec.min_insync_replicas, max(1, replication - 1)))
        }
        with contextlib.suppress(TopicAlreadyExistsError):  # another member created it first
            await admin.create_topics(
                [NewTopic(topic, spec.partitions, replication, topic_configs=configs)]
            )
    finally:
        await admin.close()


class DeadLetters:
    """Sends a group's failed records to its dead-letter topic, acks=all and idempotent."""

    def __init__(self, settings: AgentfluxSettings, group_id: str, topic: str) -> None:
        """Nothing connects until ``start``."""
        self.group_id = group_id
        self.topic = topic
        self._producer = AIOKafkaProducer(
            **connection_kwargs(settings), acks="all", enable_idempotence=True
        )

    async def start(self) -> None:
        """Connect the producer."""
        await self._producer.start()

    async def stop(self) -> None:
        """Flush and close the producer."""
        await self._producer.stop()

    async def send(
        self, record: ConsumerRecord[bytes, bytes], error: BaseException, *, attempts: int
    ) -> None:
        """Dead-letter ``record`` with its own headers and the failure's, once the broker has it."""
        failure = [
            ("x-error-type", type(error).__name__.encode()),
            ("x-error-message", str(error)[:_MESSAGE_LIMIT].encode()),
            ("x-attempts", str(attempts).encode()),
            ("x-original-topic", record.topic.encode()),
            ("x-original-partition", str(record.partition).encode()),
            ("x-original-offset", str(record.offset).encode()),
            ("x-group", self.group_id.encode()),
            ("x-failed-at", datetime.now(UTC).isoformat().encode()),
        ]
        await self._producer.send_and_wait(
            self.topic, record.value, key=record.key, headers=[*list(record.headers), *failure]
        )
