"""No background commit goes out while the member's generation changes (aiokafka would forget it)."""

from __future__ import annotations

import asyncio

from aiokafka.errors import CommitFailedError, KafkaError
from aiokafka.structs import OffsetAndMetadata, TopicPartition

from agentflux.consumers import GroupRunner
from agentflux.consumers._commits import BackgroundCommits
from agentflux.consumers._rebalance import Rebalances

_TP = TopicPartition("agent.events", 0)
_SETTLE_S = 0.05  # many backoffs of the commits below: long enough for a commit to go out


class _Consumer:
    """Holds ``_TP``; records each commit, refusing the first ``refusals`` with ``error``."""

    def __init__(self, refusals: int = 0, error: KafkaError | None = None) -> None:
        self.tried: list[dict[TopicPartition, OffsetAndMetadata]] = []
        self.refusals = refusals
        self.error = error or CommitFailedError()

    def assignment(self) -> set[TopicPartition]:
        return {_TP}

    async def commit(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        self.tried.append(offsets)
        if len(self.tried) <= self.refusals:
            raise self.error


def _commits(consumer: _Consumer) -> BackgroundCommits:
    commits = BackgroundCommits("g", interval_s=0.0, backoff=lambda _: 0.001)
    commits.consumer = consumer  # type: ignore[assignment]  # the part of a consumer commits use
    return commits


async def _held_with_handled(consumer: _Consumer, offset: int) -> BackgroundCommits:
    """Commits held (a rebalance under way) with ``offset`` handled and a commit asked for."""
    commits = _commits(consumer)
    commits.hold()
    commits.handled(_TP, offset)
    commits.soon()
    await asyncio.sleep(_SETTLE_S)
    return commits


async def test_nothing_is_committed_between_a_revocation_and_the_next_assignment() -> None:
    """Handled during a rebalance: committed only once the member is assigned again."""
    consumer = _Consumer()
    commits = await _held_with_handled(consumer, 42)
    assert consumer.tried == []
    commits.release()
    await commits.now()
    assert consumer.tried == [{_TP: OffsetAndMetadata(42, "")}]


async def test_a_commit_in_flight_at_a_revocation_ends_before_the_hold() -> None:
    """The revocation's commit waits for the background one: none is in flight through the join."""
    consumer = _Consumer()
    answer = asyncio.Event()
    commit = consumer.commit

    async def slow(offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        await answer.wait()
        await commit(offsets)

    consumer.commit = slow  # type: ignore[method-assign]  # the broker answers when the test says
    runner = GroupRunner("g", [_TP.topic], handlers={})
    runner._commits.consumer = consumer  # type: ignore[assignment]  # what commits use
    runner._commits.handled(_TP, 11)
    runner._commits.soon()
    await asyncio.sleep(_SETTLE_S)  # the background commit is waiting for its answer
    revoking = asyncio.ensure_future(Rebalances(runner).on_partitions_revoked([_TP]))
    await asyncio.sleep(_SETTLE_S)
    assert not revoking.done()
    answer.set()
    await revoking
    assert consumer.tried == [{_TP: OffsetAndMetadata(11, "")}]


async def test_a_refused_commit_is_still_retried_in_the_background() -> None:
    """Out of a rebalance, a failed commit is retried with backoff until it goes through."""
    consumer = _Consumer(refusals=2, error=KafkaError())
    commits = _commits(consumer)
    commits.handled(_TP, 9)
    commits.soon()
    await asyncio.sleep(_SETTLE_S)
    assert consumer.tried == [{_TP: OffsetAndMetadata(9, "")}] * 3


async def test_a_stop_while_held_commits_and_does_not_hang() -> None:
    """now() during a rebalance wakes the waiting background task and commits itself."""
    consumer = _Consumer()
    commits = await _held_with_handled(consumer, 5)
    await asyncio.wait_for(commits.now(), 5)
    assert consumer.tried == [{_TP: OffsetAndMetadata(5, "")}]


async def test_the_runner_holds_at_revocation_and_releases_at_assignment() -> None:
    """A revocation holds the member's background commits; the next assignment releases them."""
    consumer = _Consumer()
    runner = GroupRunner("g", [_TP.topic], handlers={})
    runner._commits.consumer = consumer  # type: ignore[assignment]  # what commits use
    listener = Rebalances(runner)
    await listener.on_partitions_revoked([_TP])
    runner._commits.handled(_TP, 3)
    runner._commits.soon()
    await asyncio.sleep(_SETTLE_S)
    assert consumer.tried == []
    await listener.on_partitions_assigned([_TP])
    await runner.commit_now()
    assert consumer.tried == [{_TP: OffsetAndMetadata(3, "")}]
