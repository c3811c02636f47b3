"""Record headers: CloudEvents time and fresh W3C trace context, built on the publish hot path."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

from schemas import AgentSwitchedEvent, event_headers, header_map, new_traceparent

_TRACEPARENT = re.compile(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-01$")


def test_ce_time_is_the_occurred_at_instant() -> None:
    """ce_time parses back to occurred_at, whole seconds and other time zones included."""
    moments = [
        datetime(2026, 11, 25, 1, 2, 3, 456000, tzinfo=UTC),
        datetime(2026, 11, 25, 1, 2, 3, tzinfo=UTC),
        datetime(1969, 12, 31, 23, 59, 59, 999000, tzinfo=UTC),
    ]
    for moment in moments:
        event = AgentSwitchedEvent(session_id="s", from_agent="a", to_agent="b", occurred_at=moment)
        text = header_map(event_headers(event, new_traceparent()))["ce_time"]
        assert text.endswith("Z")
        assert datetime.fromisoformat(text) == moment
    # Built without validation, so not normalized to UTC: the offset is kept, not mislabelled.
    local = datetime(2026, 11, 25, 3, 2, 3, tzinfo=timezone(timedelta(hours=2)))
    unvalidated = AgentSwitchedEvent.model_construct(
        session_id="s", from_agent="a", to_agent="b", occurred_at=local
    )
    text = header_map(event_headers(unvalidated, new_traceparent()))["ce_time"]
    assert datetime.fromisoformat(text) == local


def test_fresh_traceparents_are_well_formed_and_distinct() -> None:
    """Thousands of fresh traceparents (several refills of the id pool) are valid and unique."""
    made = [new_traceparent() for _ in range(5000)]
    assert all(_TRACEPARENT.match(value) for value in made)
    assert len(set(made)) == len(made)
    assert len({value[3:35] for value in made}) == len(made)  # trace ids alone are unique too


def test_event_id_headers_match_each_event_when_ids_alternate() -> None:
    """The remembered UUID text never leaks into another event's event_id and ce_id headers."""
    first = AgentSwitchedEvent(session_id="s", from_agent="a", to_agent="b")
    second = AgentSwitchedEvent(session_id="s", from_agent="b", to_agent="a")
    for event in [first, second, first, first, second]:
        headers = header_map(event_headers(event, new_traceparent()))
        assert headers["event_id"] == headers["ce_id"] == str(event.event_id)
