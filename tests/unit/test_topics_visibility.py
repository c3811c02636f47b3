"""Applying topics waits until every broker reports them: a lagging broker is asked again."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import pytest

from agentflux._topics import TopicMetadataError, _visible_on_every_broker

if TYPE_CHECKING:
    from aiokafka.admin import AIOKafkaAdminClient


class _Answer:
    def __init__(self, topics: list[dict[str, Any]]) -> None:
        self._topics = topics

    def to_object(self) -> dict[str, Any]:
        return {"topics": self._topics}


class _Brokers:
    """Two brokers answering metadata requests; broker 2 learns the topic after ``lag`` asks."""

    def __init__(self, lag: int, partitions: int = 3) -> None:
        self.lag = lag
        self.partitions = partitions
        self.asked: list[int] = []

    async def _send_request(self, request: Any, node_id: int) -> _Answer:
        self.asked.append(node_id)
        knows = node_id == 1 or self.asked.count(2) > self.lag
        found = [{"partition": p} for p in range(self.partitions)] if knows else []
        del request  # a metadata request for topic "t", the only one these tests apply
        return _Answer([{"topic": "t", "partitions": found}])


def _admin(brokers: _Brokers) -> AIOKafkaAdminClient:
    return cast("AIOKafkaAdminClient", brokers)


async def test_a_lagging_broker_is_asked_until_it_reports_the_topic() -> None:
    """Every broker is asked; one that does not know the topic yet is asked again until it does."""
    brokers = _Brokers(lag=2)
    await _visible_on_every_broker(_admin(brokers), [1, 2], {"t": 3})
    assert brokers.asked == [1, 2, 2, 2]


async def test_fewer_partitions_than_created_count_as_not_visible() -> None:
    """A broker reporting fewer partitions than the topic now has is not done: it times out, named."""
    brokers = _Brokers(lag=0, partitions=2)
    with pytest.raises(TopicMetadataError, match=r"\['t'\] on broker 1"):
        await _visible_on_every_broker(_admin(brokers), [1, 2], {"t": 3}, timeout_s=0.3)
