"""A member's last commit at stop: a group that moved on without it is not a failure."""

from __future__ import annotations

import pytest
from aiokafka.errors import (
    IllegalGenerationError,
    KafkaConnectionError,
    KafkaError,
    UnknownMemberIdError,
)
from aiokafka.structs import OffsetAndMetadata, TopicPartition
from structlog.testing import capture_logs

from agentflux.consumers import GroupRunner

_TP = TopicPartition("agent.events", 0)


class _RefusingConsumer:
    """Holds ``_TP`` and refuses every commit with ``error``."""

    def __init__(self, error: KafkaError) -> None:
        self.error = error
        self.tried: list[dict[TopicPartition, OffsetAndMetadata]] = []

    def assignment(self) -> set[TopicPartition]:
        return {_TP}

    async def commit(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        self.tried.append(offsets)
        raise self.error


def _runner_with(consumer: _RefusingConsumer) -> GroupRunner:
    runner = GroupRunner("stopping", [_TP.topic], handlers={})
    runner._commits.consumer = consumer  # the part of a consumer commits use
    runner._commits.handled(_TP, 42)
    return runner


@pytest.mark.parametrize("error", [UnknownMemberIdError(), IllegalGenerationError()])
async def test_a_commit_refused_because_the_group_moved_on_is_logged(error: KafkaError) -> None:
    """The stop goes on with a warning naming the group; the commit was tried."""
    consumer = _RefusingConsumer(error)
    runner = _runner_with(consumer)
    with capture_logs() as logs:
        await runner._commit_at_stop()
    assert consumer.tried == [{_TP: OffsetAndMetadata(42, "")}]
    (warning,) = [e for e in logs if e["event"].startswith("offsets not committed at stop")]
    assert warning["group"] == "stopping"


async def test_any_other_commit_failure_at_stop_still_fails_the_run() -> None:
    """A broker that cannot be reached is an error the stop reports, not a warning."""
    runner = _runner_with(_RefusingConsumer(KafkaConnectionError()))
    with pytest.raises(KafkaConnectionError):
        await runner._commit_at_stop()
