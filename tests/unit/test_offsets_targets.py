"""Parsing of replay targets."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from aiokafka.structs import TopicPartition

from agentflux._offsets import PartitionLag, ReplayPlan, ReplayTargetError, parse_replay_target


@pytest.mark.parametrize("keyword", ["earliest", "latest"])
def test_keywords_are_targets(keyword: str) -> None:
    """The keywords earliest and latest parse as position targets."""
    assert parse_replay_target(keyword).kind == keyword


def test_iso_datetime_with_zone() -> None:
    """An ISO datetime with a zone is kept as that instant."""
    target = parse_replay_target("2026-11-24T10:00:00+02:00")
    assert target.kind == "time"
    assert target.when == datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


def test_naive_datetime_is_utc() -> None:
    """A datetime without a zone is read as UTC."""
    assert parse_replay_target("2026-11-24T10:00:00").when == datetime(
        2026, 11, 24, 10, 0, tzinfo=UTC
    )


def test_exact_offset() -> None:
    """topic:partition:offset names one partition and one offset."""
    target = parse_replay_target("agent.events:2:1500")
    assert target.kind == "offset"
    assert target.exact == (TopicPartition("agent.events", 2), 1500)


@pytest.mark.parametrize("text", ["yesterday", "agent.events:x:1", "", "10:00 tomorrow"])
def test_garbage_is_refused(text: str) -> None:
    """Anything else raises ReplayTargetError with the accepted forms in the message."""
    with pytest.raises(ReplayTargetError, match="expected earliest, latest"):
        parse_replay_target(text)


def test_lag_counts_everything_when_never_committed() -> None:
    """A partition the group never committed on lags by its whole end offset."""
    assert PartitionLag("g", "t", 0, None, 42).lag == 42
    assert PartitionLag("g", "t", 0, 40, 42).lag == 2


def test_plan_changes_only_lists_moves() -> None:
    """A plan's changes leave out partitions that stay where they are."""
    stay, move = TopicPartition("t", 0), TopicPartition("t", 1)
    plan = ReplayPlan(group="g", moves={stay: (5, 5), move: (9, 3)})
    assert plan.changes == {move: (9, 3)}
