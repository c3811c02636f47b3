"""Committing offsets on a group's behalf, without joining it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import OffsetAndMetadata

from agentflux.kafka import connection_kwargs, stop_consumer

if TYPE_CHECKING:
    from collections.abc import Mapping

    from aiokafka.structs import TopicPartition

    from agentflux.kafka import AgentfluxSettings

__all__ = ["commit_as_group"]


async def commit_as_group(
    settings: AgentfluxSettings,
    group: str,
    offsets: Mapping[TopicPartition, int],
    note: str = "",
) -> None:
    """Commit ``offsets`` for ``group``; the broker takes it only while the group has no members.

    A consumer that only assigns (never subscribes) commits as the group without joining it.
    """
    if not offsets:
        return
    committer = AIOKafkaConsumer(
        **connection_kwargs(settings), group_id=group, enable_auto_commit=False
    )
    await committer.start()
    try:
        committer.assign(list(offsets))
        await committer.commit({tp: OffsetAndMetadata(o, note) for tp, o in offsets.items()})
    finally:
        await stop_consumer(committer)
