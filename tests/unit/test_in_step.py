"""InStep: which carried records a runner reading in step by record time writes, and when."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiokafka.structs import ConsumerRecord, TopicPartition

from agentflux.consumers._in_step import InStep
from agentflux.consumers._records import Position

if TYPE_CHECKING:
    from collections.abc import Iterable

    from agentflux.consumers._in_step import Ready

_A = TopicPartition("agent.events", 0)
_B = TopicPartition("tool.events", 0)

Records = list[ConsumerRecord[bytes, bytes]]
Decoded = list[tuple[object, Position]]


def _records(tp: TopicPartition, times: dict[int, int]) -> Records:
    """Records of ``tp`` at each offset of ``times``, stamped with its record time."""
    return [
        ConsumerRecord(
            topic=tp.topic,
            partition=tp.partition,
            offset=offset,
            timestamp=timestamp,
            timestamp_type=0,
            key=None,
            value=b"",
            checksum=None,
            serialized_key_size=-1,
            serialized_value_size=0,
            headers=[],
        )
        for offset, timestamp in times.items()
    ]


def _decoded(records: Records, *, skip: Iterable[int] = ()) -> Decoded:
    """Each record's event and position, but those at ``skip`` (events no view wants)."""
    left_out = set(skip)
    return [
        (f"event {r.offset}", Position(r.topic, r.partition, r.offset, r.timestamp))
        for r in records
        if r.offset not in left_out
    ]


def _fetched(tp: TopicPartition, times: dict[int, int]) -> tuple[Records, Decoded]:
    records = _records(tp, times)
    return records, _decoded(records)


def _every(step: int, offsets: range, *, start: int = 0) -> dict[int, int]:
    """Offsets stamped ``start``, ``start + step``, ... in offset order."""
    return {offset: start + step * index for index, offset in enumerate(offsets)}


def _carrying(a_times: dict[int, int], b_times: dict[int, int], behind: int = 10) -> InStep:
    """An InStep that carries one decoded fetch of A and one of B."""
    in_step = InStep(behind=behind)
    a, a_events = _fetched(_A, a_times)
    b, b_events = _fetched(_B, b_times)
    in_step.add({_A: a, _B: b}, {_A: a_events, _B: b_events})
    return in_step


def _paced_once() -> InStep:
    """A at 0..90 and B at 5..45 carried, both behind, and taken once: A's 50..90 stay carried."""
    in_step = _carrying(_every(10, range(10)), _every(10, range(5), start=5))
    in_step.take({_A: 100, _B: 100}, {_A: 10, _B: 5})
    return in_step


def _offsets(ready: Ready, tp: TopicPartition) -> tuple[list[int], list[int]]:
    """The offsets of ``tp``'s records and of its decoded events in ``ready``."""
    return (
        [r.offset for r in ready.batches.get(tp, [])],
        [position.offset for _, position in ready.decoded.get(tp, [])],
    )


def test_not_behind_everything_carried_is_taken() -> None:
    """With no more than ``behind`` records left in all, every carried record goes, none wanted."""
    in_step = _carrying(_every(10, range(6)), _every(10, range(3), start=5))
    # A ends at 10 (4 left), B at 9 (6 left): 10 in all, not more than behind.
    ready = in_step.take({_A: 10, _B: 9}, {_A: 6, _B: 3})
    assert _offsets(ready, _A) == (list(range(6)), list(range(6)))
    assert _offsets(ready, _B) == ([0, 1, 2], [0, 1, 2])
    assert in_step.wanted == ()
    assert not in_step.carrying


def test_behind_only_records_up_to_the_pace_are_taken() -> None:
    """Behind: each partition's records up to the slowest lagging partition's last record time."""
    in_step = InStep(behind=10)
    a = _records(_A, _every(10, range(10)))  # at 0, 10, ..., 90
    b, b_events = _fetched(_B, _every(10, range(5), start=5))  # at 5, 15, ..., 45
    # A's events at offsets 2 and 5 are ones no view wants: the decoded list is split by
    # offset, not by the records' index, and where A is cut there is a gap.
    in_step.add({_A: a, _B: b}, {_A: _decoded(a, skip=[2, 5]), _B: b_events})
    ready = in_step.take({_A: 100, _B: 100}, {_A: 10, _B: 5})
    # The pace is B's last record time, 45: A's records at 0..40, all of B's.
    assert _offsets(ready, _A) == ([0, 1, 2, 3, 4], [0, 1, 3, 4])
    assert _offsets(ready, _B) == ([0, 1, 2, 3, 4], [0, 1, 2, 3, 4])
    # B carries nothing past the pace: fetched next; A does (50..90): not.
    assert in_step.wanted == (_B,)
    assert in_step.carries(_A)
    assert not in_step.carries(_B)
    rest = in_step.take_all()
    assert _offsets(rest, _A) == ([5, 6, 7, 8, 9], [6, 7, 8, 9])


def test_the_pace_moves_with_the_slowest_partition() -> None:
    """Once the slow partition's next fetch arrives, the records it paces are taken."""
    in_step = _paced_once()
    more_b, more_b_events = _fetched(_B, _every(10, range(5, 10), start=55))  # at 55..95
    in_step.add({_B: more_b}, {_B: more_b_events})
    # The pace is now A's last record time, 90: A's 50..90 and B's 55..85.
    ready = in_step.take({_A: 100, _B: 100}, {_A: 10, _B: 10})
    assert _offsets(ready, _A) == ([5, 6, 7, 8, 9], [5, 6, 7, 8, 9])
    assert _offsets(ready, _B) == ([5, 6, 7, 8], [5, 6, 7, 8])
    assert in_step.wanted == (_A,)


def test_a_lagging_partition_that_delivered_nothing_holds_everything() -> None:
    """A partition behind with no record fetched yet sets no pace: nothing is taken; it is wanted."""
    in_step = InStep(behind=10)
    a, a_events = _fetched(_A, _every(10, range(20)))
    in_step.add({_A: a}, {_A: a_events})
    ready = in_step.take({_A: 100, _B: 100}, {_A: 20, _B: 0})
    assert ready.batches == {}
    assert ready.decoded == {}
    assert in_step.wanted == (_B,)
    assert in_step.carries(_A)


def test_a_partition_whose_end_is_not_known_yet_holds_everything_while_behind() -> None:
    """Behind, a partition with no end known yet (no fetch answered) is waited for, and wanted."""
    in_step = InStep(behind=10)
    a, a_events = _fetched(_A, _every(10, range(20)))
    in_step.add({_A: a}, {_A: a_events})
    ready = in_step.take({_A: 100, _B: None}, {_A: 20, _B: None})
    assert ready.batches == {}
    assert in_step.wanted == (_B,)
    # Not behind: the same unknown partition holds nothing back.
    ready = in_step.take({_A: 20, _B: None}, {_A: 20, _B: None})
    assert _offsets(ready, _A)[0] == list(range(20))
    assert not in_step.wanted


def test_a_few_records_in_step_wait_for_more() -> None:
    """Fewer than behind // 2 takeable records stay carried, and go with the next ones."""
    # Record times: A at 0..290, B at 5..195.
    in_step = _carrying(_every(10, range(30)), _every(10, range(20), start=5), behind=100)
    ends, positions = {_A: 1000, _B: 1000}, {_A: 30, _B: 20}
    # Pace 195: A's 20 and B's 20 records, 40 in all, fewer than 50.
    ready = in_step.take(ends, positions)
    assert ready.batches == {}
    assert in_step.carries(_A)
    assert in_step.carries(_B)
    assert in_step.wanted == (_B,)
    more_b, more_b_events = _fetched(_B, _every(10, range(20, 40), start=205))  # at 205..395
    in_step.add({_B: more_b}, {_B: more_b_events})
    # Pace 290 (A's last): all 30 of A, B's 29 up to 285: 59, enough.
    ready = in_step.take(ends, {_A: 30, _B: 40})
    assert _offsets(ready, _A) == (list(range(30)), list(range(30)))
    assert _offsets(ready, _B) == (list(range(29)), list(range(29)))


def test_a_partition_that_would_not_decode_goes_whole() -> None:
    """A partition with no decoded events is never split at the pace: all of it is taken."""
    in_step = InStep(behind=10)
    a = _records(_A, _every(10, range(10)))  # at 0..90, past the pace of 45 from 50 on
    b, b_events = _fetched(_B, _every(10, range(5), start=5))
    in_step.add({_A: a, _B: b}, {_B: b_events})  # A's fetch did not decode
    ready = in_step.take({_A: 100, _B: 100}, {_A: 10, _B: 5})
    assert _offsets(ready, _A) == (list(range(10)), [])
    assert _A not in ready.decoded  # record by record, as the runner's failed decodes go
    assert not in_step.carries(_A)


def test_a_partition_that_would_not_decode_stays_whole_after_more_decodes() -> None:
    """Records added to a partition carried undecoded keep it whole: no decoded list to split."""
    in_step = InStep(behind=10)
    first = _records(_A, _every(10, range(5)))
    later, later_events = _fetched(_A, _every(10, range(5, 10), start=50))
    b, b_events = _fetched(_B, _every(10, range(3), start=5))
    in_step.add({_A: first, _B: b}, {_B: b_events})
    in_step.add({_A: later}, {_A: later_events})
    ready = in_step.take({_A: 100, _B: 100}, {_A: 10, _B: 3})
    assert _offsets(ready, _A) == (list(range(10)), [])


def test_a_re_read_partition_keeps_each_offset_once() -> None:
    """Records fetched again (a partition given back and re-read) are carried once each."""
    in_step = InStep(behind=10)
    first, first_events = _fetched(_A, _every(10, range(5)))
    in_step.add({_A: first}, {_A: first_events})
    again, again_events = _fetched(_A, _every(10, range(2, 8), start=20))
    in_step.add({_A: again}, {_A: again_events})
    inside, inside_events = _fetched(_A, _every(10, range(3, 6), start=30))  # all carried already
    in_step.add({_A: inside}, {_A: inside_events})
    ready = in_step.take_all()
    assert _offsets(ready, _A) == (list(range(8)), list(range(8)))


def test_take_forgets_partitions_no_longer_assigned() -> None:
    """A partition missing from ``ends`` (revoked) is dropped, not taken: its new owner reads it."""
    in_step = _carrying(_every(10, range(5)), _every(10, range(5), start=5))
    ready = in_step.take({_B: 5}, {_B: 5})
    assert _A not in ready.batches
    assert _offsets(ready, _B) == (list(range(5)), list(range(5)))
    assert not in_step.carrying


def test_drop_forgets_what_a_partition_carries() -> None:
    """Dropped partitions are neither carried nor taken later."""
    in_step = _carrying(_every(10, range(5)), _every(10, range(5), start=5))
    in_step.drop([_A])
    assert not in_step.carries(_A)
    assert in_step.carries(_B)
    assert list(in_step.take_all().batches) == [_B]


def test_a_dropped_partition_sets_no_pace_from_its_old_records() -> None:
    """After a drop, a partition read again from its commit holds everything until it delivers."""
    # Record times: A at 0..90, B at 500..590.
    in_step = _carrying(_every(10, range(10)), _every(10, range(10), start=500))
    in_step.take_all()
    in_step.drop([_B])  # revoked and given back: read again from offset 0
    more_a, more_a_events = _fetched(_A, _every(10, range(10, 20), start=100))
    in_step.add({_A: more_a}, {_A: more_a_events})
    # B's old records (up to 590) would pace A's 100..190 out; B has delivered nothing since.
    ready = in_step.take({_A: 100, _B: 100}, {_A: 20, _B: 0})
    assert ready.batches == {}
    assert in_step.wanted == (_B,)


def test_take_all_returns_everything_carried() -> None:
    """take_all gives every carried record and decoded event, wants nothing, carries nothing."""
    in_step = _paced_once()
    more_a = _records(_A, _every(10, range(10, 12), start=100))
    in_step.add({_A: more_a}, {_A: _decoded(more_a)})
    assert in_step.wanted == (_B,)
    ready = in_step.take_all()
    assert _offsets(ready, _A) == (list(range(5, 12)), list(range(5, 12)))
    assert _B not in ready.batches  # all of B was taken already
    assert not in_step.wanted
    assert not in_step.carrying
