"""Consumer spans: the record's traceparent as parent, messaging attributes, nothing when off."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from _otel import recorded_spans
from aiokafka.structs import ConsumerRecord
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from agentflux.consumers._tracing import ConsumerSpans, tracing_configured

if TYPE_CHECKING:
    from collections.abc import Iterator

    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

_TRACE = "0af7651916cd43dd8448eb211c80319c"
_PARENT = "b7ad6b7169203331"


@pytest.fixture
def exporter(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    """The SDK provider for this test."""
    yield from recorded_spans(monkeypatch)


def _record(
    offset: int = 7, traceparent: str | None = f"00-{_TRACE}-{_PARENT}-01"
) -> ConsumerRecord[bytes, bytes]:
    headers = [("event_type", b"tool_execution_completed")]
    if traceparent is not None:
        headers.append(("traceparent", traceparent.encode()))
    return ConsumerRecord(
        topic="tool.events",
        partition=2,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=b"s-1",
        value=b"",
        checksum=None,
        serialized_key_size=3,
        serialized_value_size=0,
        headers=headers,
    )


def test_without_a_tracer_provider_records_get_no_span() -> None:
    """No provider configured: tracing is off and a record's span is the shared no-op context."""
    assert not tracing_configured()
    spans = ConsumerSpans("billing")
    assert not spans.active()
    assert spans.record(_record(), traced=False) is spans.record(_record(8), traced=False)
    with spans.batch([_record()]):
        assert not trace.get_current_span().get_span_context().is_valid


def test_a_record_span_continues_its_traceparent(exporter: InMemorySpanExporter) -> None:
    """The handler's current span is a CONSUMER child of the record's traceparent, with messaging attributes."""
    spans = ConsumerSpans("billing")
    assert spans.active()
    with spans.record(_record(), traced=True):
        inside = trace.get_current_span().get_span_context()
    (span,) = exporter.get_finished_spans()
    assert span.context.span_id == inside.span_id
    assert span.kind is SpanKind.CONSUMER
    assert span.name == "process tool.events"
    assert f"{span.context.trace_id:032x}" == _TRACE
    assert span.parent is not None
    assert f"{span.parent.span_id:016x}" == _PARENT
    assert dict(span.attributes or {}) == {
        "messaging.system": "kafka",
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.destination.name": "tool.events",
        "messaging.destination.partition.id": "2",
        "messaging.kafka.offset": 7,
        "messaging.consumer.group.name": "billing",
        "messaging.kafka.message.key": "s-1",
    }


def test_a_batch_gives_each_record_its_span_and_marks_a_failure(
    exporter: InMemorySpanExporter,
) -> None:
    """A batch applied together: one span per record; a failure sets error on all; none without a traceparent parent."""
    spans = ConsumerSpans("billing")
    with pytest.raises(RuntimeError), spans.batch([_record(1), _record(2, traceparent=None)]):
        raise RuntimeError("the transaction failed")
    first, second = exporter.get_finished_spans()
    assert [s.attributes["messaging.kafka.offset"] for s in (first, second)] == [1, 2]  # type: ignore[index]
    assert first.parent is not None
    assert second.parent is None  # no traceparent: a trace of its own
    assert {s.status.status_code.name for s in (first, second)} == {"ERROR"}


def test_a_redriven_dead_letter_continues_its_original_trace(
    exporter: InMemorySpanExporter,
) -> None:
    """Re-driving a dead letter runs in a span under the traceparent the DLQ record kept; a failure marks it."""
    spans = ConsumerSpans("billing")
    traceparent = f"00-{_TRACE}-{_PARENT}-01"
    with (
        pytest.raises(ValueError, match="still broken"),
        spans.redriven(("tool.events", 2, 9), b"s-1", traceparent),
    ):
        raise ValueError("still broken")
    (span,) = exporter.get_finished_spans()
    assert span.name == "redrive tool.events"
    assert span.parent is not None
    assert f"{span.parent.span_id:016x}" == _PARENT
    assert span.attributes["messaging.operation.name"] == "redrive"  # type: ignore[index]
    assert span.attributes["messaging.kafka.offset"] == 9  # type: ignore[index]
    assert span.status.status_code.name == "ERROR"


def test_without_a_tracer_provider_a_redrive_gets_no_span() -> None:
    """No provider: the re-drive runs in no span at all."""
    with ConsumerSpans("billing").redriven(("tool.events", 2, 9), None, None):
        assert not trace.get_current_span().get_span_context().is_valid
