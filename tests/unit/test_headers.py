"""Record headers: CloudEvents time and fresh W3C trace context, built on the publish hot path."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, timedelta, timezone

from opentelemetry import trace
from opentelemetry.trace import INVALID_SPAN_CONTEXT, NonRecordingSpan, SpanContext, TraceFlags

from agentflux.producers import Simulator
from agentflux.schemas import (
    HEADER_DOCS,
    HEADER_NAMES,
    AgentSwitchedEvent,
    _headers,
    current_traceparent,
    event_header_values,
    event_headers,
    header_map,
    header_values_for,
    new_traceparent,
)

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
    """Thousands of fresh traceparents are valid, their trace and parent ids unique and not zero."""
    made = [new_traceparent() for _ in range(5000)]
    assert all(_TRACEPARENT.match(value) for value in made)
    assert len({value[3:35] for value in made}) == len(made)  # trace ids
    assert len({value[36:52] for value in made}) == len(made)  # parent ids
    assert len({value[3:19] for value in made}) == len(made)  # even each half of a trace id
    assert not any(value[3:35] == "0" * 32 or value[36:52] == "0" * 16 for value in made)


def test_event_id_headers_match_each_event_when_ids_alternate() -> None:
    """The remembered UUID text never leaks into another event's event_id and ce_id headers."""
    first = AgentSwitchedEvent(session_id="s", from_agent="a", to_agent="b")
    second = AgentSwitchedEvent(session_id="s", from_agent="b", to_agent="a")
    for event in [first, second, first, first, second]:
        headers = header_map(event_headers(event, new_traceparent()))
        assert headers["event_id"] == headers["ce_id"] == str(event.event_id)


def test_python_and_c_traceparents_have_the_same_form() -> None:
    """The pure-Python traceparent (no compiler) is as well formed and as fresh as the C one."""
    made = [_headers._python_traceparent() for _ in range(3000)]  # the fallback
    assert all(_TRACEPARENT.match(value) for value in made)
    assert len(set(made)) == len(made)


def test_a_forked_child_never_repeats_its_parents_traceparents() -> None:
    """After fork, parent and child draw different ids (the child seeds its generator afresh)."""
    new_traceparent()  # seeded: the child would inherit the same generator state
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover  # the child only reports and exits
        os.write(writer, new_traceparent().encode())
        os._exit(0)
    os.close(writer)
    _, status = os.waitpid(child, 0)
    from_child = os.read(reader, 100).decode()
    os.close(reader)
    assert status == 0
    assert _TRACEPARENT.match(from_child)
    assert from_child != new_traceparent()


def test_header_values_pair_with_the_header_names() -> None:
    """event_headers is HEADER_NAMES with the values the publisher writes, str as UTF-8."""
    event = AgentSwitchedEvent(
        session_id="sëssion", from_agent="a", to_agent="b", correlation_id="c-1"
    )
    traceparent = new_traceparent()
    values = event_header_values(event, traceparent)
    assert len(values) == len(HEADER_NAMES) == len(HEADER_DOCS)
    assert event_headers(event, traceparent) == [
        (name, value.encode() if isinstance(value, str) else value)
        for name, value in zip(HEADER_NAMES, values, strict=True)
    ]
    assert header_map(event_headers(event, traceparent))["ce_subject"] == "sëssion"


def test_c_header_values_equal_the_python_ones_for_simulated_events() -> None:
    """For a few thousand simulated events of every kind, C builds the tuple Python builds."""
    assert _headers._native is not None
    events = Simulator(sessions=100, seed=7).events()
    assert len({type(event) for event in events}) > 5
    for event in events:
        traceparent = new_traceparent()
        built = header_values_for(type(event))(event.__dict__, traceparent)
        assert built == _headers._python_header_values(event, traceparent), event


def test_c_header_values_leave_what_python_must_judge_to_python() -> None:
    """A missing field, a non-str correlation id or a time not in UTC: C answers None."""
    assert _headers._native is not None
    event = AgentSwitchedEvent(session_id="s", from_agent="a", to_agent="b")
    header_values = header_values_for(AgentSwitchedEvent)
    empty = event.__dict__ | {"correlation_id": ""}  # as `correlation_id or ""` writes it
    assert header_values(empty, "t")[2] == ""  # type: ignore[index]  # not None: checked here
    local = datetime(2026, 11, 25, 3, 2, 3, tzinfo=timezone(timedelta(hours=2)))
    for changed in ({"occurred_at": local}, {"correlation_id": 5}):
        fields = event.__dict__ | changed
        assert header_values(fields, "t") is None
    unvalidated = AgentSwitchedEvent.model_construct(**(event.__dict__ | {"occurred_at": local}))
    assert event_header_values(unvalidated, "t") == _headers._python_header_values(unvalidated, "t")
    without_source = {key: value for key, value in event.__dict__.items() if key != "source"}
    assert header_values(without_source, "t") is None


def test_current_traceparent_names_the_active_span_and_is_fresh_outside_one() -> None:
    """Inside a valid span: its ids and flags; outside, or in an invalid span: fresh ids."""
    span_context = SpanContext(
        trace_id=0x4BF92F3577B34DA6A3CE929D0E0E4736,
        span_id=0x00F067AA0BA902B7,
        is_remote=True,
        trace_flags=TraceFlags(0),
    )
    with trace.use_span(NonRecordingSpan(span_context)):
        assert current_traceparent() == "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"
    with trace.use_span(NonRecordingSpan(INVALID_SPAN_CONTEXT)):
        inside_invalid = current_traceparent()
    outside = current_traceparent()
    for fresh in (inside_invalid, outside):
        assert _TRACEPARENT.match(fresh)
    assert inside_invalid != outside
