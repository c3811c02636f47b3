"""The three C extensions survive random, mutated and truncated input.

``make fuzz`` runs this against a build with AddressSanitizer and UndefinedBehaviorSanitizer.
Each target takes ``FUZZ_CASES`` inputs (a few dozen by default, so the ordinary test run keeps
the harness working). A sanitizer report aborts the process, which fails the run; so does a crash.
"""

from __future__ import annotations

import contextlib
import math
import os
import struct
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from _samples import sample_events
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from pydantic_core import to_json

from agentflux.consumers import _batches
from agentflux.producers import _records
from agentflux.schemas import EVENT_MODELS, BaseEvent
from agentflux.schemas._codec import load_schema
from agentflux.schemas._compiled import (
    ConstraintError,
    compile_decoder,
    compile_encoder,
    decode_framed,
    native_decoder_behind,
)
from agentflux.schemas._conversions import _native

# Skipped only on an install that may lack them: where they are required (CI), a missing one fails.
pytestmark = pytest.mark.skipif(
    os.environ.get("AGENTFLUX_REQUIRE_NATIVE") != "1"
    and (_native is None or _batches is None or _records is None),
    reason="C extensions not built (AGENTFLUX_REQUIRE_NATIVE=1 makes this a failure)",
)

_CASES = int(os.environ.get("FUZZ_CASES", "30"))
_FUZZ = settings(
    max_examples=_CASES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
_FRAME = struct.pack(">bI", 0, 7)
_SAMPLES = {type(event): event for event in sample_events()}
_MODELS = sorted(_SAMPLES, key=lambda model: model.__name__)
# Every way a body may be refused: malformed (the first five) or breaking the model (the rest).
_REFUSALS = (
    IndexError,
    EOFError,
    ValueError,
    UnicodeDecodeError,
    OverflowError,
    ConstraintError,
    ValidationError,
)


def _body(event: BaseEvent) -> bytes:
    encode = compile_encoder(load_schema(type(event)))
    assert encode is not None
    return encode(b"", vars(event))


def _mutated(data: st.DataObject, valid: bytes) -> bytes:
    """``valid`` with bytes flipped, inserted, removed or cut off, or random bytes."""
    kind = data.draw(st.sampled_from(["flip", "insert", "delete", "truncate", "random"]))
    body = bytearray(valid)
    if kind == "random" or not body:
        return data.draw(st.binary(max_size=512))
    at = data.draw(st.integers(0, len(body) - 1))
    if kind == "flip":
        for _ in range(data.draw(st.integers(1, 8))):
            body[data.draw(st.integers(0, len(body) - 1))] = data.draw(st.integers(0, 255))
    elif kind == "insert":
        body[at:at] = data.draw(st.binary(min_size=1, max_size=16))
    elif kind == "delete":
        del body[at : at + data.draw(st.integers(1, 16))]
    else:
        del body[at:]
    return bytes(body)


# -- schemas/_native.c: decoding --------------------------------------------------------------


@pytest.mark.parametrize("model", _MODELS, ids=lambda model: model.__name__)
@_FUZZ
@given(data=st.data())
def test_the_decoder_survives_mutated_bodies(model: type[BaseEvent], data: st.DataObject) -> None:
    """Decoding a mutated body returns an event or raises one of the refusals, nothing else."""
    decode = compile_decoder(load_schema(model), model)
    assert native_decoder_behind(decode) is not None  # type: ignore[arg-type]
    assert decode is not None
    body = _mutated(data, _body(_SAMPLES[model]))
    start = data.draw(st.integers(0, 2)) if body else 0
    with contextlib.suppress(_REFUSALS):
        decode(body, start)


@_FUZZ
@given(data=st.data())
def test_a_batch_of_mutated_frames_decodes_or_misses(data: st.DataObject) -> None:
    """decode_framed over mutated frames gives an event (or row) or None per value; counts Nones."""
    decoders = {
        index: native_decoder_behind(compile_decoder(load_schema(model), model))  # type: ignore[arg-type]
        for index, model in enumerate(_MODELS)
    }
    values = []
    for _ in range(data.draw(st.integers(0, 8))):
        index = data.draw(st.integers(0, len(_MODELS)))  # one past the end: an unknown id
        frame = struct.pack(">bI", 0, index)
        body = _body(_SAMPLES[_MODELS[index % len(_MODELS)]])
        values.append(_mutated(data, frame + body) if data.draw(st.booleans()) else frame + body)
    # With rows, every model field's value in a drawn order (some ids left without a projection).
    rows = {
        index: ("row", *data.draw(st.permutations(range(len(model.model_fields)))))
        for index, model in enumerate(_MODELS)
        if data.draw(st.booleans())
    }
    given_rows = rows if data.draw(st.booleans()) else None
    events, misses = decode_framed(decoders, values, given_rows)
    assert len(events) == len(values)
    assert misses == sum(event is None for event in events)
    if given_rows is not None:
        assert {len(row) for row in events if row is not None} <= {len(p) for p in rows.values()}


# -- schemas/_native.c: encoding and header texts -----------------------------------------------

_ANYTHING = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.text(max_size=80)
    | st.binary(max_size=80)
    | st.uuids()
    | st.datetimes(timezones=st.none() | st.just(UTC) | st.timezones()),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)


@pytest.mark.parametrize("model", _MODELS, ids=lambda model: model.__name__)
@_FUZZ
@given(data=st.data())
def test_the_encoder_survives_any_field_values(model: type[BaseEvent], data: st.DataObject) -> None:
    """Encoding fields of any type and value writes bytes or raises a type or value error."""
    encode = compile_encoder(load_schema(model))
    assert encode is not None
    record = dict(vars(_SAMPLES[model]))
    for name in data.draw(st.lists(st.sampled_from(sorted(record)), max_size=4)):
        if data.draw(st.booleans()):
            record[name] = data.draw(_ANYTHING)
        else:
            record.pop(name, None)
    with contextlib.suppress(TypeError, ValueError, KeyError, OverflowError, AttributeError):
        encode(_FRAME, record)


@_FUZZ
@given(
    value=_ANYTHING,
    when=st.datetimes(timezones=st.none() | st.just(UTC) | st.timezones()),
    offset=st.integers(-1439, 1439),
)
def test_header_texts_survive_any_value(value: Any, when: datetime, offset: int) -> None:
    """uuid_text, utc_text and event_header_values format what they can and refuse the rest."""
    assert _native is not None
    for candidate in (value, when, when.replace(tzinfo=timezone(timedelta(minutes=offset)))):
        text = _native.utc_text(candidate)
        assert text is None or text == candidate.isoformat().replace("+00:00", "Z").encode()
        with contextlib.suppress(TypeError, ValueError, OverflowError, AttributeError):
            assert _native.uuid_text(candidate) == str(candidate).encode()
    fields = {"event_id": value, "correlation_id": value, "source": value, "occurred_at": when}
    fields["session_id"] = value
    with contextlib.suppress(TypeError, ValueError, OverflowError, AttributeError):
        _native.event_header_values((b"a", b"b", b"c", b"d"), fields, "tp")


@_FUZZ
@given(number=st.integers(-(2**130), 2**130))
def test_uuid_text_refuses_ints_outside_128_bits(number: int) -> None:
    """A UUID whose int is negative or past 128 bits is an OverflowError, never wrong text."""
    assert _native is not None
    value = uuid.UUID(int=1)
    object.__setattr__(value, "int", number)
    if 0 <= number < 2**128:
        assert _native.uuid_text(value) == str(uuid.UUID(int=number)).encode()
    else:
        with pytest.raises(OverflowError):
            _native.uuid_text(value)


@_FUZZ
@given(
    fields=st.dictionaries(st.from_regex(r"[a-z_]{1,8}", fullmatch=True), _ANYTHING, max_size=6),
    data=st.data(),
)
def test_model_json_writes_pydantic_text_or_leaves_it(fields: dict[str, Any], data: Any) -> None:
    """model_json over any values: pydantic's text for the values it writes, else None."""
    assert _native is not None
    names = tuple(data.draw(st.lists(st.sampled_from([*fields, "missing"]), unique=True)))
    keys = tuple(f'{"{" if i == 0 else ","}"{name}":'.encode() for i, name in enumerate(names))
    text = _native.model_json(fields, names, keys)
    if text is not None:
        assert "missing" not in names
        assert text == to_json({name: fields[name] for name in names}).decode()
    with pytest.raises(TypeError):
        _native.model_json(fields, names, (*(key.decode() for key in keys), "one too many"))


# -- producers/_records.c and consumers/_batches.c ------------------------------------------------

_FIELD = st.none() | st.binary(max_size=64)
_HEADER = _FIELD | st.text(max_size=32)
_TIMESTAMP = st.none() | st.integers(-(2**63), 2**63 - 1) | st.integers(0, 2**41)


@_FUZZ
@given(
    names=st.lists(st.text(max_size=12), max_size=20).map(tuple),
    limit=st.integers(-1, 4096),
    data=st.data(),
)
def test_written_records_read_back_as_written(
    names: tuple[str, ...], limit: int, data: st.DataObject
) -> None:
    """Whatever the writer takes, the batch reader reads back: keys, values, headers, timestamps."""
    writer = _records.RecordWriter(names, limit)
    written = []
    for _ in range(data.draw(st.integers(0, 12))):
        key, value = data.draw(_FIELD), data.draw(_FIELD)
        headers = tuple(data.draw(_HEADER) for _ in names)
        timestamp = data.draw(_TIMESTAMP)
        try:
            delta = writer.append(key, value, headers, timestamp)
        except OverflowError:  # a timestamp too far from the first
            continue
        if delta is None:
            break
        written.append((key, value, headers, timestamp))
    section = writer.records()
    records = _batches.read_records(
        section, 0, len(section), writer.count, 0, writer.first_timestamp, 0, 0, "t", 0, 0
    )
    assert len(records) == len(written)
    for record, (key, value, headers, timestamp) in zip(records, written, strict=True):
        assert (record.key, record.value) == (key, value)
        encoded = tuple(h.encode() if isinstance(h, str) else h for h in headers)
        assert record.headers == tuple(zip(names, encoded, strict=True))
        if timestamp is not None:
            assert record.timestamp == timestamp


@_FUZZ
@given(data=st.data())
def test_the_batch_reader_survives_mutated_records(data: st.DataObject) -> None:
    """Reading mutated records returns records or raises ValueError; headers read or refuse."""
    writer = _records.RecordWriter(("ce_id", "ce_type", "trace"), 1 << 16)
    for _ in range(data.draw(st.integers(1, 6))):
        writer.append(data.draw(_FIELD), data.draw(_FIELD), (b"id", "type", None), 1)
    section = _mutated(data, writer.records())
    count = data.draw(st.integers(0, writer.count + 2))
    start = data.draw(st.integers(0, 3))
    end = data.draw(st.integers(len(section) - 3, len(section) + 3))
    base = data.draw(st.sampled_from([0, 2**63 - 1, -(2**63), 2**62]))
    first = data.draw(st.sampled_from([0, 2**63 - 1, -(2**63), 1]))
    try:
        records = _batches.read_records(
            section, start, end, count, base, first, data.draw(st.booleans()), 0, "t", 0, -(2**63)
        )
    except ValueError:
        return
    for record in records:
        with contextlib.suppress(UnicodeDecodeError):
            assert len(record.headers) >= 0
        assert repr(record)


@_FUZZ
@given(
    key=st.binary(max_size=64), partitions=st.lists(st.integers(0, 1000), min_size=1, max_size=8)
)
def test_key_partition_picks_one_of_the_partitions(key: bytes, partitions: list[int]) -> None:
    """key_partition indexes the partitions with Kafka's murmur2, whatever the key."""
    index = (_records.murmur2(key) & 0x7FFFFFFF) % len(partitions)
    assert _records.key_partition(key, partitions) == partitions[index]
    assert not math.isnan(float(_records.murmur2(key)))


def test_every_event_type_is_fuzzed() -> None:
    """The fuzzed models are every shipped event's."""
    assert set(_MODELS) == set(EVENT_MODELS.values())
