"""Members offering two assignors join with one request naming both, and the group settles."""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING, Any

import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener
from aiokafka.client import AIOKafkaClient
from aiokafka.protocol.group import JoinGroupRequest
from conftest import create_topic

from agentflux.kafka import connection_kwargs, stop_consumer
from agentflux.kafka._gate._group_join import assignors

if TYPE_CHECKING:
    from collections.abc import Iterable

    from aiokafka.structs import TopicPartition
    from conftest import Cluster

pytestmark = pytest.mark.broker


class _Assigned(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka is untyped here
    """Keeps the member's latest assignment."""

    def __init__(self) -> None:
        self.partitions: set[TopicPartition] = set()

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:  # noqa: ARG002  # all of them go
        self.partitions = set()

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        self.partitions = set(assigned)


async def test_two_members_join_with_one_request_naming_both_protocols(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every JoinGroup names range and round robin; the members split six partitions by range."""
    topic = await create_topic(cluster.settings, f"join-{uuid.uuid4().hex[:8]}", partitions=6)
    protocols: list[list[str]] = []
    send = AIOKafkaClient.send

    async def recording(client: AIOKafkaClient, node_id: int, request: Any, **kwargs: Any) -> Any:
        if isinstance(request, JoinGroupRequest):
            protocols.append([name for name, _ in request._group_protocols])
        return await send(client, node_id, request, **kwargs)

    monkeypatch.setattr(AIOKafkaClient, "send", recording)
    group = f"join-{uuid.uuid4().hex[:8]}"
    members = [
        AIOKafkaConsumer(
            **connection_kwargs(cluster.settings),
            group_id=group,
            enable_auto_commit=False,
            partition_assignment_strategy=assignors(),
        )
        for _ in range(2)
    ]
    listeners = [_Assigned() for _ in members]
    try:
        for member, listener in zip(members, listeners, strict=True):
            member.subscribe([topic], listener=listener)
            await member.start()
        async with asyncio.timeout(60):
            while sorted(len(listener.partitions) for listener in listeners) != [3, 3]:
                await asyncio.gather(*(m.getmany(timeout_ms=100) for m in members))
    finally:
        for member in members:
            await stop_consumer(member)
    assert protocols  # the recording saw the joins
    assert {tuple(names) for names in protocols} == {("range", "roundrobin")}
    first, second = ({tp.partition for tp in listener.partitions} for listener in listeners)
    assert sorted([sorted(first), sorted(second)]) == [[0, 1, 2], [3, 4, 5]]  # range's split
