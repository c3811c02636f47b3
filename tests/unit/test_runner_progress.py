"""A running group's periodic progress line: events/s and lag, never once per event."""

from __future__ import annotations

import time
from typing import Any

from aiokafka.structs import ConsumerRecord, TopicPartition
from structlog.testing import capture_logs

from agentflux.consumers import GroupRunner
from agentflux.consumers._runner import _PROGRESS_EVERY_S


def _runner() -> GroupRunner:
    runner = GroupRunner("progress", ["agent.events"], handlers={})
    runner._lags = {TopicPartition("agent.events", 0): 7, TopicPartition("agent.events", 1): 3}
    return runner


def test_progress_is_logged_with_rate_and_lag_once_the_interval_passed() -> None:
    """After the interval, one line: handled so far, events/s since the last line, total lag."""
    runner = _runner()
    runner._progress_at = (time.monotonic() - 2 * _PROGRESS_EVERY_S, 0)
    runner.handled = 400
    with capture_logs() as logs:
        runner._log_progress()
    (line,) = [entry for entry in logs if entry["event"] == "progress"]
    assert line["handled"] == 400
    assert line["lag"] == 10
    assert 0 < line["events_per_s"] <= 400 / _PROGRESS_EVERY_S


def test_progress_is_not_logged_again_within_the_interval() -> None:
    """Within the interval nothing is logged, however many batches come."""
    runner = _runner()
    with capture_logs() as logs:
        for _ in range(100):
            runner._log_progress()
    assert [entry for entry in logs if entry["event"] == "progress"] == []


class _Consumer:
    """aiokafka's consumer as ``_update_lag`` uses it, down to its assertion on assignment."""

    def __init__(self, assigned: set[TopicPartition]) -> None:
        self.assigned = assigned

    def assignment(self) -> set[TopicPartition]:
        return self.assigned

    def highwater(self, tp: TopicPartition) -> int:
        assert tp in self.assigned, "Partition is not assigned"  # as aiokafka's own
        return 100


def _records(tp: TopicPartition, last_offset: int) -> list[Any]:
    return [ConsumerRecord(tp.topic, tp.partition, last_offset, 0, 0, None, b"", None, 0, 0, ())]


def test_lag_after_a_write_skips_partitions_a_rebalance_took_meanwhile() -> None:
    """A partition revoked while its batch was written gets no lag, and the runner does not fail."""
    kept, taken = TopicPartition("agent.events", 0), TopicPartition("agent.events", 1)
    runner = GroupRunner("progress", ["agent.events"], handlers={})
    runner._consumer = _Consumer({kept})  # the part of a consumer _update_lag uses
    runner._update_lag({kept: _records(kept, 89), taken: _records(taken, 9)})
    assert runner._lags == {kept: 10}
