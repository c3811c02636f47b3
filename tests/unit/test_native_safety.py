"""The C extensions hold references across calls into Python, refuse overflows, gate layouts.

Every reach into a CPython or pydantic layout sits behind a check with a public fallback.
"""

from __future__ import annotations

import gc
import os
import sys
import tracemalloc
import uuid
from datetime import datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any

import pytest
from pydantic import BaseModel, ConfigDict, field_validator

from agentflux.consumers import _batches
from agentflux.producers import _records
from agentflux.schemas import (
    EVENT_MODELS,
    AgentSwitchedEvent,
    _compiled,
    _conversions,
    _model_rules,
)
from agentflux.schemas._codec import load_schema
from agentflux.schemas._compiled import (
    compile_decoder,
    compile_encoder,
    compile_reader,
    decode_framed,
    native_decoder_behind,
)
from agentflux.schemas._conversions import _native

if TYPE_CHECKING:
    from collections.abc import Callable

# Skipped only on an install that may lack them: where they are required (CI), a missing one fails.
pytestmark = pytest.mark.skipif(
    os.environ.get("AGENTFLUX_REQUIRE_NATIVE") != "1"
    and (_native is None or _batches is None or _records is None),
    reason="C extensions not built (AGENTFLUX_REQUIRE_NATIVE=1 makes this a failure)",
)

_FRAME = b"\x00\x00\x00\x00\x07"


def _switched() -> AgentSwitchedEvent:
    return AgentSwitchedEvent(session_id="s", from_agent="a", to_agent="b")


def _encoded(event: BaseModel) -> bytes:
    encode = compile_encoder(load_schema(type(event)))
    assert encode is not None
    return encode(_FRAME, vars(event))


# -- the layout gates ------------------------------------------------------------------------------


def test_the_layout_gates_are_open_on_the_tested_versions() -> None:
    """On the pydantic and Pythons tested here, the fast paths are the ones in use."""
    assert _model_rules.PYDANTIC_LAYOUT_KNOWN
    assert _conversions.UUID_LAYOUT_KNOWN


def test_an_unknown_pydantic_layout_decodes_through_model_validate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With pydantic's layout unknown, nothing is assembled by hand; reading then validating still decodes."""
    monkeypatch.setattr(_model_rules, "PYDANTIC_LAYOUT_KNOWN", False)
    event = _switched()
    schema = load_schema(AgentSwitchedEvent)
    assert compile_decoder(schema, AgentSwitchedEvent) is None
    assert _compiled.compile_builder(AgentSwitchedEvent) is None
    read = compile_reader(schema)
    assert read is not None
    record, _ = read(_encoded(event), len(_FRAME))
    assert AgentSwitchedEvent.model_validate(record) == event


def test_an_unknown_uuid_layout_decodes_in_python_with_uuid_uuid(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With uuid.UUID's layout unknown, the C decoder is not used and UUIDs come from uuid.UUID."""
    monkeypatch.setattr(_compiled, "UUID_LAYOUT_KNOWN", False)
    schema = load_schema(AgentSwitchedEvent)
    assert _compiled._native_decoder(schema, AgentSwitchedEvent) is None
    assert native_decoder_behind(compile_decoder(schema, AgentSwitchedEvent)) is None  # type: ignore[arg-type]
    assert _conversions.uuid_parser(layout_known=False) is uuid.UUID
    direct = _conversions.uuid_parser(layout_known=True)
    value = uuid.uuid4()
    for text in (str(value), value.hex, str(value).upper()):
        assert direct(text) == value
        assert hash(direct(text)) == hash(value)


# -- references held across calls into Python -------------------------------------------------------


def _meddling_decoder(meddle: Callable[[], None]) -> Any:
    """The C decoder of a one-string record whose validator runs ``meddle``, then collects."""

    class Meddling(BaseModel):
        model_config = ConfigDict(strict=True, frozen=True, extra="forbid")
        name: str

        @field_validator("name")
        @classmethod
        def _meddle(cls, value: str) -> str:
            meddle()
            gc.collect()
            return value

    schema = {"type": "record", "name": "M", "fields": [{"name": "name", "type": "string"}]}
    decoder = native_decoder_behind(compile_decoder(schema, Meddling))  # type: ignore[arg-type]
    assert decoder is not None
    return decoder


def test_a_validator_dropping_its_decoder_and_the_batch_mid_decode_is_harmless() -> None:
    """decode_framed holds its decoder and values while a validator empties both."""
    decoders: dict[int, Any] = {}
    values: list[bytes] = []

    def meddle() -> None:
        decoders.clear()
        values.clear()

    decoders[7] = _meddling_decoder(meddle)
    values.extend([_FRAME + b"\x02a", _FRAME + b"\x02b"])
    events, misses = decode_framed(decoders, values)
    assert [event.name for event in events] == ["a", "b"]
    assert misses == 0


def test_a_validator_dropping_the_row_projections_mid_decode_is_harmless() -> None:
    """decode_framed holds the id's projection while a validator empties the rows it came from."""
    rows: dict[int, tuple[Any, ...]] = {7: (object(), 0)}  # its first item held by rows alone
    values = [_FRAME + b"\x02a", _FRAME + b"\x02b"]
    found, misses = decode_framed({7: _meddling_decoder(rows.clear)}, values, rows)
    assert [row[1] for row in found] == ["a", "b"]
    assert found[0][0] is found[1][0]
    assert misses == 0


class _MeddlingUtc(tzinfo):
    """UTC whose utcoffset() empties the event's field dict (as any Python code could)."""

    def __init__(self, fields: dict[str, Any]) -> None:
        self.fields = fields

    def utcoffset(self, dt: datetime | None) -> timedelta:  # noqa: ARG002  # tzinfo's signature
        self.fields.clear()
        gc.collect()
        return timedelta(0)

    def dst(self, dt: datetime | None) -> timedelta:  # noqa: ARG002  # tzinfo's signature
        return timedelta(0)


def test_header_values_hold_the_fields_across_a_tzinfo_call() -> None:
    """event_header_values keeps every field it read while utcoffset() runs Python code."""
    assert _native is not None
    event = _switched()
    fields = dict(vars(event))
    fields["occurred_at"] = datetime(2026, 1, 2, 3, 4, 5, tzinfo=_MeddlingUtc(fields))
    fields["session_id"] = "session-" + str(uuid.uuid4())  # only the dict holds it
    values = _native.event_header_values((b"t", b"ce", b"1.0", b"avro"), fields, "tp")
    assert values is not None
    assert values[8] == b"2026-01-02T03:04:05Z"
    assert values[9].startswith("session-")
    assert values[1] == str(event.event_id).encode()


def test_the_native_encoder_refuses_a_map_that_is_not_a_dict() -> None:
    """A map field must be a dict: any other mapping is a TypeError, not a walk of its items()."""
    assert _native is not None
    encoder = _native.Encoder((("map", ("string",)),), ("labels",), _conversions.uuid_bytes)

    class Odd(dict[str, str]):
        def items(self) -> Any:  # type: ignore[override]
            return [1, 2, 3]

    with pytest.raises(TypeError, match="must be a dict"):
        encoder.write(bytearray(), {"labels": {"a": "b"}.keys()})
    out = bytearray()
    encoder.write(out, {"labels": Odd(a="b")})  # a dict subclass: its real items are written
    assert bytes(out) == b"\x02\x02a\x02b\x00"


def test_an_array_shrunk_while_it_is_written_is_refused() -> None:
    """An item's __bool__ that empties its list stops the write with an error, not a stray read."""
    assert _native is not None
    encoder = _native.Encoder((("array", ("boolean",)),), ("flags",), _conversions.uuid_bytes)
    items: list[Any] = []

    class Emptying:
        def __bool__(self) -> bool:
            items.clear()
            return True

    items.extend([Emptying(), Emptying(), Emptying()])
    with pytest.raises(RuntimeError, match="changed size"):
        encoder.write(bytearray(), {"flags": items})


# -- no signed overflow on deltas ---------------------------------------------------------------


def _records_section(second_timestamp: int) -> bytes:
    """Two records, offset deltas 0 and 1, timestamp deltas 0 and ``second_timestamp``."""
    writer = _records.RecordWriter(("h",), 1 << 20)
    assert writer.append(b"k", b"v", (b"x",), 0) == 0
    assert writer.append(b"k", b"v", (None,), second_timestamp) == 1
    return writer.records()


def _read(section: bytes, base: int, first: int, log_append_time: int = 0) -> list[Any]:
    return _batches.read_records(
        section, 0, len(section), 2, base, first, log_append_time, first, "t", 0, -(2**63)
    )


def test_offset_and_timestamp_deltas_past_64_bits_are_corrupt() -> None:
    """A base offset or first timestamp that a delta pushes out of 64 bits is a ValueError."""
    ahead, behind = _records_section(1), _records_section(-1)
    with pytest.raises(ValueError, match="offset delta"):
        _read(ahead, 2**63 - 1, 0)
    with pytest.raises(ValueError, match="timestamp delta"):
        _read(ahead, 0, 2**63 - 1)
    with pytest.raises(ValueError, match="timestamp delta"):
        _read(behind, 0, -(2**63))
    assert [r.timestamp for r in _read(behind, 0, -(2**63) + 1)] == [-(2**63) + 1, -(2**63)]
    # With the log-append time the deltas are not used: nothing to overflow.
    assert [r.timestamp for r in _read(ahead, 0, 2**63 - 1, 1)] == [2**63 - 1, 2**63 - 1]


def test_a_timestamp_too_far_from_the_first_is_refused_by_the_writer() -> None:
    """A record timestamp whose delta from the batch's first overflows is an OverflowError."""
    writer = _records.RecordWriter(("h",), 1 << 20)
    assert writer.append(b"k", b"v", (b"x",), -(2**63)) == 0
    with pytest.raises(OverflowError):
        writer.append(b"k", b"v", (b"x",), 2**63 - 1)
    assert writer.count == 1


# -- no reference leaks ----------------------------------------------------------------------------


def _grown_bytes(run: Any, rounds: int) -> int:
    """Bytes still allocated after ``rounds`` calls of ``run``, beyond a warmed-up baseline."""
    for _ in range(1000):
        run()
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        total = getattr(sys, "gettotalrefcount", None)
        refs = total() if total else 0
        for _ in range(rounds):
            run()
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
        assert not total or total() - refs < 100  # debug builds: the reference count too
        return after - before
    finally:
        tracemalloc.stop()


@pytest.mark.slow
def test_100k_decodes_and_encodes_leak_nothing() -> None:
    """Decoding, encoding and header values of 100k events leave memory where it was."""
    assert _native is not None
    event = _switched()
    body = _encoded(event)
    decode = compile_decoder(load_schema(AgentSwitchedEvent), AgentSwitchedEvent)
    assert decode is not None
    encode = compile_encoder(load_schema(AgentSwitchedEvent))
    assert encode is not None
    decoders = {7: native_decoder_behind(decode)}
    fields = vars(event)
    constants = (b"t", b"ce", b"1.0", b"avro")

    def one_round() -> None:
        decode(body, len(_FRAME))
        encode(_FRAME, fields)
        _native.event_header_values(constants, fields, "tp")

    assert _grown_bytes(one_round, 100_000) < 64 * 1024
    assert _grown_bytes(lambda: decode_framed(decoders, [body] * 10), 10_000) < 64 * 1024


@pytest.mark.slow
def test_100k_records_written_and_read_leak_nothing() -> None:
    """Writing and reading (headers included) 100k Kafka records leaves memory where it was."""
    names = tuple(f"h{index}" for index in range(11))
    values = tuple(b"value" for _ in names)

    def one_batch() -> None:
        writer = _records.RecordWriter(names, 1 << 20)
        for _ in range(10):
            writer.append(b"key", b"value", values, 1)
        section = writer.records()
        for record in _batches.read_records(section, 0, len(section), 10, 0, 1, 0, 1, "t", 0, 0):
            assert len(record.headers) == 11

    assert _grown_bytes(one_batch, 10_000) < 64 * 1024


def test_every_shipped_model_has_a_native_decoder_and_encoder() -> None:
    """The C codec covers every event (a build without it would hide behind the Python one)."""
    for model in EVENT_MODELS.values():
        schema = load_schema(model)
        assert native_decoder_behind(compile_decoder(schema, model)) is not None  # type: ignore[arg-type]
        assert _compiled._native_encoder(schema) is not None
