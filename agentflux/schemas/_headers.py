"""The Kafka headers every event record carries: platform headers, W3C trace context, CloudEvents.

CloudEvents attributes follow the Kafka protocol binding in binary content mode (``ce_`` prefix,
the Avro body as the record value, ``content-type`` for the data content type).
"""

from __future__ import annotations

import functools
import os
from functools import cache
from typing import TYPE_CHECKING, Any, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import trace

from agentflux._accelerate import accelerations_wanted
from agentflux.schemas._conversions import _native, utc_text, uuid_bytes

if TYPE_CHECKING:
    from collections.abc import Callable

    from agentflux.schemas._models import BaseEvent

__all__ = [
    "CONTENT_TYPE",
    "HEADER_DOCS",
    "HEADER_NAMES",
    "current_traceparent",
    "event_header_values",
    "event_headers",
    "header_map",
    "header_pairs",
    "header_values_for",
    "new_traceparent",
]

CONTENT_TYPE = "application/avro"

HEADER_DOCS: dict[str, str] = {
    "event_type": "The event type, e.g. agent_switched.",
    "event_id": "The event's UUID, the same as in the body.",
    "correlation_id": "The correlation id (empty when the event has none).",
    "traceparent": "W3C trace context of the publishing span (a fresh trace when none is active).",
    "ce_specversion": "CloudEvents spec version: 1.0.",
    "ce_id": "CloudEvents id: the event id.",
    "ce_source": "CloudEvents source: the publishing service.",
    "ce_type": "CloudEvents type: dev.agentflux.<event_type>.",
    "ce_time": "CloudEvents time: occurred-at, RFC 3339.",
    "ce_subject": "CloudEvents subject: the session id.",
    "content-type": f"Data content type of the value: {CONTENT_TYPE} (Confluent-framed Avro).",
}


_TRACEPARENT_BATCH = 1024
_fresh_traceparents: list[str] = []
# A forked child must not hand out the parent's remaining ids.
os.register_at_fork(after_in_child=_fresh_traceparents.clear)


def _python_traceparent() -> str:
    """A fresh W3C traceparent (version 00, sampled): the path without the C extension."""
    if not _fresh_traceparents:
        # One getrandom() call per 1024 ids: per-event syscalls showed up in publish profiles.
        random = os.urandom(24 * _TRACEPARENT_BATCH).hex()
        _fresh_traceparents.extend(
            f"00-{random[at : at + 32]}-{random[at + 32 : at + 48]}-01"
            for at in range(0, len(random), 48)
        )
    return _fresh_traceparents.pop()


new_traceparent: Callable[[], str]
"""A fresh W3C traceparent (version 00, sampled) for an event published outside any span.

In C when the extension is built (several times cheaper): ids from a xoshiro256**
generator seeded from ``os.urandom`` (random and unique, as W3C asks; not secret), seeded again
in a forked child. Without it, from ``os.urandom`` bytes fetched 1024 ids at a time.
"""
if _native is None:
    new_traceparent = _python_traceparent
else:
    new_traceparent = _native.new_traceparent
    os.register_at_fork(after_in_child=_native.forget_traceparents)


# The current OpenTelemetry context, read straight from its context variable when the runtime
# context is the default (contextvars) one: otel_context.get_current() is two Python calls per
# published event around that one read. Another runtime context: the public function.
# AGENTFLUX_ACCELERATE=0: the public function only.
_current_otel_context: Callable[[], object] = (
    getattr(
        getattr(otel_context._RUNTIME_CONTEXT, "_current_context", None),  # noqa: SLF001
        "get",
        otel_context.get_current,
    )
    if accelerations_wanted()
    else otel_context.get_current
)


def current_traceparent() -> str:
    """The traceparent of the current OpenTelemetry span, or a fresh one outside any span.

    Checked directly: the propagator API costs more than the rest of the headers together. An
    empty context (the common case outside instrumented code) holds no span: one read.
    """
    if not _current_otel_context():
        return new_traceparent()
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return new_traceparent()
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"


_SPEC_VERSION = b"1.0"
_CONTENT_TYPE = CONTENT_TYPE.encode()


@cache
def _header_constants(model: type[BaseEvent]) -> tuple[bytes, bytes, bytes, bytes]:
    """The header values that depend only on the event type, encoded once per model.

    Event type, CloudEvents type, CloudEvents spec version, content type.
    """
    event_type = model.EVENT_TYPE.value
    return event_type.encode(), f"dev.agentflux.{event_type}".encode(), _SPEC_VERSION, _CONTENT_TYPE


_Null = TypeVar("_Null", bound=None)  # None where the values may hold it (a null header)

# The header names, in the order every event record carries them (HEADER_DOCS explains each).
HEADER_NAMES: tuple[str, ...] = tuple(HEADER_DOCS)


def _python_header_values(event: BaseEvent, traceparent: str) -> tuple[bytes | str, ...]:
    """``event_header_values`` in Python: without the C extension, or what it leaves."""
    event_id = uuid_bytes(event.event_id)  # formatted once per event: the body had it first
    event_type, ce_type, spec_version, content_type = _header_constants(type(event))
    return (
        event_type,
        event_id,
        event.correlation_id or "",
        traceparent,
        spec_version,
        event_id,
        event.source,
        ce_type,
        utc_text(event.occurred_at),
        event.session_id,
        content_type,
    )


def event_header_values(event: BaseEvent, traceparent: str) -> tuple[bytes | str, ...]:
    """The values of ``HEADER_NAMES`` for one event: bytes, or str to be written as UTF-8.

    The publisher's record writer takes them as they are (built on every publish: kept lean,
    in C when the extension is built); ``event_headers`` pairs them with their names.
    """
    if _native is not None:
        values: tuple[bytes | str, ...] | None = _native.event_header_values(
            _header_constants(type(event)), event.__dict__, traceparent
        )
        if values is not None:
            return values
    return _python_header_values(event, traceparent)


def _undecided(_fields: dict[str, Any], _traceparent: str) -> None:
    """Without the C extension every event's header values take ``event_header_values``."""


def header_values_for(
    model: type[BaseEvent],
) -> Callable[[dict[str, Any], str], tuple[bytes | str, ...] | None]:
    """The C function that builds ``model``'s header values from an event's field dict.

    ``(fields, traceparent) -> values``, or None for what only ``event_header_values``
    decides (and always None without the C extension): the publisher's steady path, which
    holds it per event type, calls C directly instead of two Python functions per event.
    """
    if _native is None:
        return _undecided
    return functools.partial(_native.event_header_values, _header_constants(model))


def header_pairs(
    names: tuple[str, ...], values: tuple[bytes | str | _Null, ...]
) -> list[tuple[str, bytes | _Null]]:
    """(name, value) pairs as Kafka clients take headers: str values encoded as UTF-8."""
    return [
        (name, value.encode() if isinstance(value, str) else value)
        for name, value in zip(names, values, strict=True)
    ]


def event_headers(event: BaseEvent, traceparent: str) -> list[tuple[str, bytes]]:
    """The headers of one event record as (name, bytes) pairs, in ``HEADER_NAMES`` order."""
    return header_pairs(HEADER_NAMES, event_header_values(event, traceparent))


def header_map(headers: list[tuple[str, bytes]] | tuple[tuple[str, bytes], ...]) -> dict[str, str]:
    """Headers as a dict of text values (the last one wins when a name repeats)."""
    return {name: value.decode(errors="replace") for name, value in headers}
