"""The generated Avro readers, writers and model builders agree with fastavro and pydantic."""

from __future__ import annotations

import gc
import io
import math
import struct
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import fastavro
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator
from pydantic_core import TzInfo

from agentflux.consumers._runner_metrics import observe_many
from agentflux.schemas import (
    EVENT_MODELS,
    AgentSwitchedEvent,
    BaseEvent,
    MetricsPerformanceMeasuredEvent,
    _compiled,
)
from agentflux.schemas._codec import load_schema
from agentflux.schemas._compiled import (
    ConstraintError,
    _native,
    _native_decoder,
    compile_builder,
    compile_decoder,
    compile_encoder,
    compile_reader,
    compile_writer,
    decode_framed,
    native_decoder_behind,
    utc_text,
)

_MODELS = list(EVENT_MODELS.values())
_DECODERS = pytest.mark.parametrize("native", [True, False], ids=["native", "python"])
_READ_ERRORS = (IndexError, EOFError, ValueError, UnicodeDecodeError, struct.error)

# Lengths around the models' limits (1, 128, 256), so both sides of each bound are drawn.
_TEXT = st.one_of(
    st.text(max_size=3),
    st.text(min_size=126, max_size=130),
    st.text(min_size=254, max_size=258),
)


def _datum(schema: Any, name: str = "") -> st.SearchStrategy[Any]:  # noqa: C901, PLR0911  # one branch per Avro type
    """Any value Avro accepts for ``schema`` (model constraints deliberately ignored)."""
    if isinstance(schema, list):
        return st.one_of(*(_datum(branch, name) for branch in schema))
    kind = schema if isinstance(schema, str) else schema["type"]
    logical = schema.get("logicalType") if isinstance(schema, dict) else None
    if kind == "null":
        return st.none()
    if kind == "boolean":
        return st.booleans()
    if logical == "timestamp-millis":
        return st.datetimes(timezones=st.just(UTC))
    if kind == "int":
        return st.integers(-(2**31), 2**31 - 1)
    if kind == "long":
        return st.integers(-(2**63), 2**63 - 1)
    if kind == "double":
        return st.floats(allow_nan=False)
    if logical == "uuid":
        return st.uuids()
    if kind == "string" and name == "event_type":
        return st.sampled_from([t.value for t in EVENT_MODELS])
    if kind == "string":
        return _TEXT
    if kind == "enum":
        return st.sampled_from(schema["symbols"])
    if kind == "map":
        return st.dictionaries(st.text(max_size=4), _datum(schema["values"]), max_size=3)
    raise AssertionError(f"no strategy for {schema}")


def _record(model: type[BaseEvent]) -> st.SearchStrategy[dict[str, Any]]:
    schema = load_schema(model)
    return st.fixed_dictionaries(
        {field["name"]: _datum(field["type"], field["name"]) for field in schema["fields"]}
    )


def _fastavro_bytes(model: type[BaseEvent], record: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, fastavro.parse_schema(load_schema(model)), record)
    return buffer.getvalue()


@pytest.mark.parametrize("model", _MODELS, ids=lambda m: m.__name__)
def test_every_event_schema_and_model_compiles(model: type[BaseEvent]) -> None:
    """Each shipped event gets a generated writer, reader and builder: the fast path is used."""
    schema = load_schema(model)
    assert compile_writer(schema) is not None
    assert compile_reader(schema) is not None
    assert compile_builder(model) is not None
    assert compile_decoder(schema, model) is not None


@settings(max_examples=60, deadline=None)
@_DECODERS
@pytest.mark.parametrize("model", _MODELS, ids=lambda m: m.__name__)
@given(data=st.data())
def test_generated_code_matches_fastavro_and_pydantic(
    model: type[BaseEvent], native: bool, data: st.DataObject
) -> None:
    """Same bytes as fastavro, same records back; builder and decoder accept what pydantic does."""
    record = data.draw(_record(model))
    schema = load_schema(model)
    expected_bytes = _fastavro_bytes(model, record)
    written = bytearray()
    writer, reader = compile_writer(schema, native=native), compile_reader(schema)
    builder = compile_builder(model)
    assert writer is not None
    assert reader is not None
    assert builder is not None
    writer(written, record)
    assert bytes(written) == expected_bytes

    decoded, end = reader(expected_bytes, 0)
    assert end == len(expected_bytes)
    reference = fastavro.schemaless_reader(
        io.BytesIO(expected_bytes), fastavro.parse_schema(schema), None
    )
    assert decoded == reference

    try:
        validated: BaseModel | None = model.model_validate(reference)
    except ValidationError:
        validated = None
    try:
        built: BaseModel | None = builder(dict(decoded))
    except ConstraintError:
        built = None
    assert (built is None) == (validated is None), (built, validated)
    decoder = compile_decoder(schema, model, native=native)
    assert decoder is not None
    if validated is None:
        with pytest.raises(ConstraintError):
            decoder(expected_bytes, 0)
        return
    fused, fused_end = decoder(expected_bytes, 0)
    assert fused_end == len(expected_bytes)
    for made in (built, fused):
        assert made == validated
        assert made.model_fields_set == validated.model_fields_set
        assert [type(v) for v in vars(made).values()] == [type(v) for v in vars(validated).values()]


@settings(max_examples=30, deadline=None)
@_DECODERS
@pytest.mark.parametrize("model", _MODELS[:6], ids=lambda m: m.__name__)
@given(data=st.data())
def test_every_truncation_raises(model: type[BaseEvent], native: bool, data: st.DataObject) -> None:
    """A body cut short anywhere raises one of the read errors the codec turns into its own."""
    encoded = _fastavro_bytes(model, data.draw(_record(model)))
    schema = load_schema(model)
    reader, decoder = compile_reader(schema), compile_decoder(schema, model, native=native)
    assert reader is not None
    assert decoder is not None
    cut = data.draw(st.integers(0, len(encoded) - 1))
    with pytest.raises(_READ_ERRORS):
        reader(encoded[:cut], 0)
    with pytest.raises(_READ_ERRORS):
        decoder(encoded[:cut], 0)


def test_the_native_decoder_is_built_for_every_event() -> None:
    """The C extension is built here, and every shipped event decodes through it, not Python."""
    assert _native is not None
    for model in _MODELS:
        decoder = compile_decoder(load_schema(model), model)
        assert getattr(decoder, "__self__", None).__class__ is _native.Decoder, model


def _outcome(decoder: Any, data: bytes) -> tuple[str, Any]:
    try:
        event, end = decoder(data, 0)
    except ConstraintError:
        return "constraint", None
    except (*_READ_ERRORS, OverflowError):
        return "unreadable", None
    return "event", (event, end, event.model_fields_set, [type(v) for v in vars(event).values()])


@settings(max_examples=80, deadline=None)
@pytest.mark.parametrize("model", _MODELS, ids=lambda m: m.__name__)
@given(data=st.data())
def test_native_and_python_decoders_agree_on_any_bytes(
    model: type[BaseEvent], data: st.DataObject
) -> None:
    """On valid, mutated and random bodies the C and Python decoders give the same outcome."""
    schema = load_schema(model)
    valid = _fastavro_bytes(model, data.draw(_record(model)))
    body = data.draw(
        st.one_of(
            st.just(valid),
            st.binary(max_size=300),
            st.builds(
                lambda at, byte: valid[:at] + bytes([byte]) + valid[at + 1 :],
                st.integers(0, len(valid) - 1),
                st.integers(0, 255),
            ),
            st.builds(lambda extra: valid + extra, st.binary(min_size=1, max_size=4)),
        )
    )
    native, python = compile_decoder(schema, model), compile_decoder(schema, model, native=False)
    native_kind, native_value = _outcome(native, body)
    python_kind, python_value = _outcome(python, body)
    assert native_kind == python_kind
    assert native_value == python_value


def test_native_decoder_reads_every_value_shape() -> None:
    """Arrays, maps with multi-block counts, nullable values, floats and non-canonical UUIDs."""

    class Shapes(BaseModel):
        model_config = ConfigDict(strict=True, frozen=True, extra="forbid")
        numbers: list[int]
        labels: dict[str, str]
        ratio: float | None
        flag: bool
        raw: bytes
        ident: uuid.UUID

    schema = {
        "type": "record",
        "name": "Shapes",
        "fields": [
            {"name": "numbers", "type": {"type": "array", "items": "long"}},
            {"name": "labels", "type": {"type": "map", "values": "string"}},
            {"name": "ratio", "type": ["null", "float"]},
            {"name": "flag", "type": "boolean"},
            {"name": "raw", "type": "bytes"},
            {"name": "ident", "type": {"type": "string", "logicalType": "uuid"}},
        ],
    }
    ident = uuid.uuid4()
    record = {
        "numbers": [1, -(2**63), 2**63 - 1],
        "labels": {"a": "x", "é": "y"},
        "ratio": 0.5,
        "flag": True,
        "raw": b"\x00\xff",
        "ident": ident.hex.upper(),  # not the canonical spelling: parsed by uuid.UUID
    }
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, fastavro.parse_schema(schema), record)
    body = buffer.getvalue()
    decoder = _native_decoder(schema, Shapes)
    assert decoder is not None
    event, end = decoder(body, 0)
    assert end == len(body)
    assert vars(event) == record | {"ident": ident}
    assert event == Shapes.model_validate(record | {"ident": ident})
    # A block with a negative count (followed by its byte size), as other writers may write.
    blocked = {"type": "record", "name": "B", "fields": [schema["fields"][0]]}

    class Blocked(BaseModel):
        model_config = ConfigDict(strict=True, frozen=True, extra="forbid")
        numbers: list[int]

    blocked_decoder = _native_decoder(blocked, Blocked)
    assert blocked_decoder is not None
    assert blocked_decoder(bytes([3, 2, 4, 6, 0]), 0)[0].numbers == [2, 3]


def _framed(schema_id: int, body: bytes, magic: int = 0) -> bytes:
    return struct.pack(">bI", magic, schema_id) + body


def test_a_batch_decodes_in_one_call_and_leaves_every_other_record_to_the_slow_path() -> None:
    """decode_framed decodes records of known ids; foreign, unknown, short and bad ones are None."""
    switched = AgentSwitchedEvent(session_id="s", from_agent="a", to_agent="b")
    measured = MetricsPerformanceMeasuredEvent(session_id="s", operation="op", duration_ms=2.5)
    bodies = {}
    for event in (switched, measured):
        writer = compile_writer(load_schema(type(event)))
        assert writer is not None
        out = bytearray()
        writer(out, vars(event))
        bodies[type(event)] = bytes(out)
    decoders = {
        7: native_decoder_behind(
            compile_decoder(load_schema(AgentSwitchedEvent), AgentSwitchedEvent)
        ),
        9: native_decoder_behind(
            compile_decoder(
                load_schema(MetricsPerformanceMeasuredEvent), MetricsPerformanceMeasuredEvent
            )
        ),
    }
    values = [
        _framed(7, bodies[AgentSwitchedEvent]),
        _framed(9, bodies[MetricsPerformanceMeasuredEvent]),
        _framed(7, bodies[AgentSwitchedEvent]),
        _framed(8, bodies[AgentSwitchedEvent]),  # an id with no decoder here
        _framed(7, bodies[AgentSwitchedEvent], magic=1),  # not Confluent's frame
        _framed(7, bodies[AgentSwitchedEvent][:-3]),  # truncated
        _framed(7, bodies[AgentSwitchedEvent] + b"\x00"),  # a trailing byte
        b"\x00\x00",  # shorter than the header
        _framed(9, bodies[AgentSwitchedEvent]),  # another type's body
    ]
    events, misses = decode_framed(decoders, values)
    assert events[:3] == [switched, measured, switched]
    assert events[3:] == [None] * 6
    assert misses == 6


def test_decoded_events_stay_out_of_the_cyclic_gc_and_behave_as_models() -> None:
    """Events from C are untracked (no GC traversal) yet compare, hash, copy and dump normally."""
    event = AgentSwitchedEvent(session_id="s", from_agent="a", to_agent="b", reason="why")
    schema = load_schema(AgentSwitchedEvent)
    writer, decoder = compile_writer(schema), compile_decoder(schema, AgentSwitchedEvent)
    assert writer is not None
    assert decoder is not None
    out = bytearray()
    writer(out, vars(event))
    decoded, _ = decoder(bytes(out), 0)
    assert not gc.is_tracked(decoded)
    assert not gc.is_tracked(vars(decoded))
    assert not gc.is_tracked(decoded.event_id)
    assert decoded == event
    assert hash(decoded) == hash(event)
    assert decoded.model_dump() == event.model_dump()
    copied = decoded.model_copy(update={"reason": "other"})
    assert copied.reason == "other"
    assert decoded.reason == "why"
    assert decoded.model_fields_set == set(
        AgentSwitchedEvent.model_fields
    )  # as model_validate sets
    gc.collect()
    assert decoded == event


def test_decoded_events_have_dicts_of_their_own_in_field_order() -> None:
    """Each C-decoded event's __dict__ is its own (sharing only keys), ordered as the model's."""
    schema = load_schema(AgentSwitchedEvent)
    writer, decoder = compile_writer(schema), compile_decoder(schema, AgentSwitchedEvent)
    assert writer is not None
    assert decoder is not None
    decoded = []
    for reason in ("one", "two"):
        out = bytearray()
        event = AgentSwitchedEvent(session_id="s", from_agent="a", to_agent="b", reason=reason)
        writer(out, vars(event))
        decoded.append(decoder(bytes(out), 0)[0])
    first, second = decoded
    assert vars(first) is not vars(second)
    assert (first.reason, second.reason) == ("one", "two")
    assert list(vars(first)) == list(AgentSwitchedEvent.model_fields)
    vars(first)["reason"] = "changed"  # against the model's will: still only its own dict
    assert second.reason == "two"
    assert compile_decoder(schema, AgentSwitchedEvent) is not None  # the template is untouched
    assert decoder(bytes(out), 0)[0].reason == "two"


@pytest.mark.parametrize(
    "wrong",
    [lambda names: names[:-1], lambda names: (*names[1:], names[0]), lambda names: (*names, "x")],
    ids=["missing", "reordered", "extra"],
)
def test_the_c_decoder_refuses_a_template_unlike_the_model(
    wrong: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A template with other keys, or another order, than the model's fields is refused."""
    schema = load_schema(AgentSwitchedEvent)
    assert _native_decoder(schema, AgentSwitchedEvent) is not None
    monkeypatch.setattr(_compiled, "_key_sharing_dict", lambda names: dict.fromkeys(wrong(names)))
    assert _native_decoder(schema, AgentSwitchedEvent) is None  # refused: Python decodes


_WRITE_ERRORS = (ValueError, TypeError, KeyError, AttributeError, struct.error, OverflowError)
_EDGE_SCHEMA = {
    "type": "record",
    "name": "Edges",
    "fields": [
        {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "f", "type": "float"},
        {"name": "i", "type": "int"},
        {"name": "l", "type": "long"},
        {"name": "b", "type": "boolean"},
        {"name": "m", "type": {"type": "map", "values": "string"}},
        {"name": "a", "type": {"type": "array", "items": "long"}},
        {"name": "n", "type": ["null", "string"]},
        {"name": "e", "type": {"type": "enum", "name": "E", "symbols": ["A", "B"]}},
        {"name": "u", "type": {"type": "string", "logicalType": "uuid"}},
        {"name": "r", "type": "bytes"},
    ],
}
_EDGE_RECORD = {
    "ts": datetime(2026, 11, 29, 12, 0, 0, 123456, tzinfo=UTC),
    "f": 1.5,
    "i": -(2**31),
    "l": 2**63 - 1,
    "b": True,
    "m": {"k": "v", "é": "ü"},
    "a": [0, -1, 2**40],
    "n": None,
    "e": "B",
    "u": uuid.UUID(int=2**128 - 1),
    "r": b"\x00\x01",
}


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"ts": datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)},  # floors below the epoch
        {"ts": datetime(2026, 1, 1, 1, tzinfo=timezone(timedelta(hours=5, minutes=30)))},
        {"ts": 1_700_000_000_000},  # milliseconds given as a number
        {"ts": datetime(2026, 1, 1)},  # noqa: DTZ001  # naive: refused
        {"f": 1e300},  # too large for a float: refused
        {"f": "x"},
        {"i": 2**31},
        {"l": 2**63},
        {"l": 1.5},
        {"b": 0},
        {"m": {}},
        {"m": {1: "v"}},
        {"a": []},
        {"a": ("x",)},
        {"n": "text"},
        {"n": 3},
        {"e": "C"},
        {"u": "not-a-uuid-but-any-text"},
        {"r": bytearray(b"ab")},
        {"r": "text"},
    ],
    ids=repr,
)
def test_native_and_python_writers_agree_on_edge_values(change: dict[str, Any]) -> None:
    """The C writer writes the Python writer's bytes, or refuses what it refuses; encoders too."""
    record = _EDGE_RECORD | change
    outcomes = []
    for native in (True, False):
        writer = compile_writer(_EDGE_SCHEMA, native=native)
        encoder = compile_encoder(_EDGE_SCHEMA, native=native)
        assert writer is not None
        assert encoder is not None
        out = bytearray(b"head")
        try:
            writer(out, record)
        except _WRITE_ERRORS as exc:
            outcomes.append(("refused", type(exc) is KeyError))
        else:
            outcomes.append(("written", bytes(out)))
        try:  # the one-call encoder: the same bytes, or the same refusal
            outcomes.append(("written", encoder(b"head", record)))
        except _WRITE_ERRORS as exc:
            outcomes.append(("refused", type(exc) is KeyError))
    assert outcomes[0] == outcomes[1] == outcomes[2] == outcomes[3]
    if not change:
        buffer = io.BytesIO()
        fastavro.schemaless_writer(buffer, fastavro.parse_schema(_EDGE_SCHEMA), record)
        assert outcomes[0] == ("written", b"head" + buffer.getvalue())


@settings(max_examples=200, deadline=None)
@given(value=st.one_of(st.uuids(), st.text(max_size=40), st.integers()))
def test_uuid_text_is_str_encoded(value: object) -> None:
    """The C formatting of a UUID (and of anything else) is exactly str(value).encode()."""
    assert _native is not None
    assert _native.uuid_text(value) == str(value).encode()


def test_uuid_text_remembers_only_the_last_value() -> None:
    """The memo answers the value formatted last (the same bytes) and never another value's."""
    assert _native is not None
    first, second = uuid.uuid4(), uuid.uuid4()
    text = _native.uuid_text(first)
    assert _native.uuid_text(first) is text
    for value in (second, first, second, str(second), second):
        assert _native.uuid_text(value) == str(value).encode()


class _LaterDatetime(datetime):
    """A datetime subclass, which may format itself differently: never formatted in C."""


_ZONES = [UTC, timezone(timedelta(0)), TzInfo(0), timezone(timedelta(hours=2)), TzInfo(-3600)]


@settings(max_examples=300, deadline=None)
@given(
    value=st.datetimes(timezones=st.sampled_from(_ZONES) | st.none()),
    subclass=st.booleans(),
)
def test_utc_text_is_isoformat_with_z(value: datetime, subclass: bool) -> None:
    """Any datetime's header text is its isoformat with Z for UTC; C formats exactly UTC ones."""
    if subclass:
        value = _LaterDatetime.combine(value.date(), value.timetz())
    expected = value.isoformat().replace("+00:00", "Z").encode()
    assert utc_text(value) == expected
    assert _native is not None
    in_c = value.utcoffset() == timedelta(0) and not subclass
    assert _native.utc_text(value) == (expected if in_c else None)


class _RecordDict(dict[str, Any]):
    """A dict subclass: the C encoder looks its fields up one by one."""


@settings(max_examples=150, deadline=None)
@given(
    extra=st.dictionaries(
        st.text(max_size=3).filter(lambda key: key not in _EDGE_RECORD), st.integers(), max_size=3
    ),
    missing=st.sampled_from([None, *_EDGE_RECORD]),
    subclass=st.booleans(),
    data=st.data(),
)
def test_the_native_encoder_reads_records_in_any_key_order(
    extra: dict[str, int], missing: str | None, subclass: bool, data: st.DataObject
) -> None:
    """After learning one key order: any order, unknown keys and equal keys give fastavro's bytes."""
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, fastavro.parse_schema(_EDGE_SCHEMA), _EDGE_RECORD)
    expected = b"head" + buffer.getvalue()
    encoder = compile_encoder(_EDGE_SCHEMA, native=True)
    assert encoder is not None
    assert encoder(b"head", _EDGE_RECORD) == expected  # the order it learns
    fields = {key: value for key, value in _EDGE_RECORD.items() if key != missing}
    keys = data.draw(st.permutations([*fields, *extra]))
    # Equal keys that are other objects than the learned ones: compared by value.
    record = {"".join(list(key)): (fields | extra)[key] for key in keys}
    if subclass:
        record = _RecordDict(record)
    if missing is None:
        assert encoder(b"head", record) == expected
    else:
        with pytest.raises(KeyError, match=missing):
            encoder(b"head", record)


def test_a_missing_field_is_a_key_error_in_both_writers() -> None:
    """A record without one of the schema's fields raises KeyError, as a dict lookup does."""
    record = dict(_EDGE_RECORD)
    del record["n"]
    for native in (True, False):
        writer = compile_writer(_EDGE_SCHEMA, native=native)
        assert writer is not None
        with pytest.raises(KeyError):
            writer(bytearray(), record)


def test_nan_breaks_a_lower_bound_as_in_pydantic() -> None:
    """A NaN duration is refused by the builder, as pydantic's ge=0 refuses it."""
    builder = compile_builder(MetricsPerformanceMeasuredEvent)
    assert builder is not None
    valid = MetricsPerformanceMeasuredEvent(session_id="s", operation="op", duration_ms=1.0)
    record = dict(vars(valid)) | {"event_type": valid.event_type.value, "duration_ms": math.nan}
    with pytest.raises(ValidationError):
        MetricsPerformanceMeasuredEvent.model_validate(record)
    with pytest.raises(ConstraintError):
        builder(record)


def test_unsupported_schemas_fall_back() -> None:
    """Types the generator does not handle give None, so the codec keeps using fastavro."""
    fixed = {"type": "record", "name": "R", "fields": [{"name": "f", "type": "float"}]}
    assert compile_writer(fixed) is not None
    for field_type in (
        {"type": "fixed", "name": "F", "size": 4},
        ["null", "string", "long"],
        {"type": "record", "name": "Inner", "fields": []},
        {"type": "int", "logicalType": "date"},
    ):
        schema = {"type": "record", "name": "R", "fields": [{"name": "f", "type": field_type}]}
        assert compile_writer(schema) is None
        assert compile_reader(schema) is None
    assert compile_writer({"type": "string"}) is None


def test_models_with_other_validators_fall_back() -> None:
    """A model with a 'before' validator is built by pydantic, not by generated code."""

    class Shouting(BaseModel):
        model_config = ConfigDict(strict=True, frozen=True, extra="forbid")
        name: str

        @field_validator("name", mode="before")
        @classmethod
        def _upper(cls, value: str) -> str:
            return value.upper()

    assert compile_builder(Shouting) is None
    schema = {"type": "record", "name": "Shouting", "fields": [{"name": "name", "type": "string"}]}
    assert compile_decoder(schema, Shouting) is None


def test_observe_many_equals_single_observations() -> None:
    """Observing a value N times at once exposes the same buckets, count and sum as N calls."""
    registry = CollectorRegistry()
    batched = Histogram("batched_seconds", "h", ["g"], registry=registry).labels("x")
    single = Histogram("single_seconds", "h", ["g"], registry=registry).labels("x")
    for value, count in ((0.003, 7), (0.2, 3), (50.0, 2)):
        observe_many(batched, value, count)
        for _ in range(count):
            single.observe(value)
    samples = {
        metric.name: [(s.name.split("_")[-1], s.labels, s.value) for s in metric.samples]
        for metric in registry.collect()
    }
    batched_samples, single_samples = samples["batched_seconds"], samples["single_seconds"]
    assert [s[:2] for s in batched_samples] == [s[:2] for s in single_samples]
    assert [s[2] for s in batched_samples] == pytest.approx([s[2] for s in single_samples])
