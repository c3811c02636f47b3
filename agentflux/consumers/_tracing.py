"""Traces that cross Kafka: a consumer span per handled record, continuing its ``traceparent``.

The publisher puts the W3C ``traceparent`` of the publishing span on every record; here each
record a group handles gets a span of kind CONSUMER whose parent is that traceparent, with
OpenTelemetry's messaging attributes, so one trace runs from ``publish`` to every group's
handler. Only when a tracer provider is configured (the OpenTelemetry SDK, set up by the
service): without one, nothing is built, and a fetch costs one check, not one per record.

OpenTelemetry's own Kafka instrumentation (opentelemetry-instrumentation-aiokafka) was checked:
it wraps ``getone``/``getmany`` and ends its span when the fetch returns, before any handler
runs, so it cannot parent the handler's work; the span here covers the handling itself.
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext
from importlib import metadata
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.trace import NoOpTracerProvider, ProxyTracerProvider, SpanKind, Status
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.trace.status import StatusCode

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from contextlib import AbstractContextManager

    from aiokafka.structs import ConsumerRecord
    from opentelemetry.trace import Span, Tracer

__all__ = ["ConsumerSpans", "tracing_configured"]

_PROPAGATOR = TraceContextTextMapPropagator()
_NO_SPAN: AbstractContextManager[None] = nullcontext()
_TRACEPARENT = "traceparent"


def tracing_configured() -> bool:
    """Whether a real tracer provider is set (the SDK's, say): spans would be recorded."""
    return not isinstance(trace.get_tracer_provider(), ProxyTracerProvider | NoOpTracerProvider)


class ConsumerSpans:
    """One group's consumer spans, per the messaging semantic conventions (process spans)."""

    def __init__(self, group_id: str) -> None:
        """Spans name ``group_id`` as their consumer group."""
        self.group_id = group_id
        self._tracer: Tracer | None = None
        self._provider: object = None

    @staticmethod
    def active() -> bool:
        """Whether records get spans now (checked once per fetch, never per record)."""
        return tracing_configured()

    def _current_tracer(self) -> Tracer:
        provider = trace.get_tracer_provider()
        if self._tracer is None or provider is not self._provider:
            self._provider = provider
            self._tracer = trace.get_tracer("agentflux.consumers", metadata.version("agentflux"))
        return self._tracer

    def _start(self, record: ConsumerRecord[bytes, bytes]) -> Span:
        traceparent = next((value for name, value in record.headers if name == _TRACEPARENT), None)
        return self._span(
            "process",
            (record.topic, record.partition, record.offset),
            record.key,
            None if traceparent is None else traceparent.decode(errors="replace"),
        )

    def _span(
        self,
        operation: str,
        origin: tuple[str, int, int],
        key: bytes | None,
        traceparent: str | None,
    ) -> Span:
        topic, partition, offset = origin
        parent = _PROPAGATOR.extract({_TRACEPARENT: traceparent}) if traceparent else None
        attributes: dict[str, Any] = {
            "messaging.system": "kafka",
            "messaging.operation.type": "process",
            "messaging.operation.name": operation,
            "messaging.destination.name": topic,
            "messaging.destination.partition.id": str(partition),
            "messaging.kafka.offset": offset,
            "messaging.consumer.group.name": self.group_id,
        }
        if key is not None:
            attributes["messaging.kafka.message.key"] = key.decode(errors="replace")
        return self._current_tracer().start_span(
            f"{operation} {topic}", context=parent, kind=SpanKind.CONSUMER, attributes=attributes
        )

    def redriven(
        self, origin: tuple[str, int, int], key: bytes | None, traceparent: str | None
    ) -> AbstractContextManager[Any]:
        """The span a dead letter is re-driven in: its original record's trace goes on.

        The dead-letter topic keeps the record's headers, its ``traceparent`` among them.
        """
        if not tracing_configured():
            return _NO_SPAN
        return trace.use_span(self._span("redrive", origin, key, traceparent), end_on_exit=True)

    def record(
        self, record: ConsumerRecord[bytes, bytes], *, traced: bool
    ) -> AbstractContextManager[Any]:
        """The span handling ``record`` runs in (the current span inside); nothing if not traced."""
        if not traced:
            return _NO_SPAN
        return trace.use_span(self._start(record), end_on_exit=True)

    @contextmanager
    def batch(self, records: Iterable[ConsumerRecord[bytes, bytes]]) -> Iterator[None]:
        """A span per record, open while a fetch's records are applied together.

        The records are applied in one store transaction, so no one span can be the current one:
        each covers the transaction that applied its record. A failure marks them all.
        """
        if not tracing_configured():
            yield
            return
        spans = [self._start(record) for record in records]
        try:
            yield
        except Exception as exc:
            for span in spans:
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, repr(exc)))
            raise
        finally:
            for span in spans:
                span.end()
