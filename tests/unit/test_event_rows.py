"""Events read as rows: made in C from the bytes or in Python from an instance, the same tuples."""

from __future__ import annotations

import json
import os
import struct
from typing import Any

import httpx
import pytest
from _samples import sample_events

from agentflux.consumers import ContextView
from agentflux.schemas import (
    EVENT_MODELS,
    AgentSwitchedEvent,
    AvroCodec,
    BaseEvent,
    EventRows,
    RegistryClient,
    UnknownEvent,
)
from agentflux.schemas._codec import load_schema
from agentflux.schemas._compiled import (
    compile_decoder,
    compile_encoder,
    decode_framed,
    native_decoder_behind,
)
from agentflux.schemas._conversions import _native

_needs_native = pytest.mark.skipif(
    os.environ.get("AGENTFLUX_REQUIRE_NATIVE") != "1" and _native is None,
    reason="C extension not built (AGENTFLUX_REQUIRE_NATIVE=1 makes this a failure)",
)

# Every field of every model, the model first: a row then says all an instance does.
_EVERY_FIELD = EventRows(
    {model: (model, tuple(model.model_fields)) for model in EVENT_MODELS.values()},
    default=(None, ()),
)


def _frame(schema_id: int, event: BaseEvent) -> bytes:
    encode = compile_encoder(load_schema(type(event)))
    assert encode is not None
    return encode(struct.pack(">bI", 0, schema_id), vars(event))


def _decoders(events: list[BaseEvent]) -> dict[int, Any]:
    return {
        index: native_decoder_behind(compile_decoder(load_schema(type(e)), type(e)))  # type: ignore[arg-type]
        for index, e in enumerate(events)
    }


@_needs_native
@pytest.mark.parametrize("rows", [_EVERY_FIELD, ContextView().rows], ids=["every", "context"])
def test_rows_made_in_c_equal_the_rows_of_the_decoded_instances(rows: EventRows) -> None:
    """Every shipped type's row decoded in C equals EventRows.row of the same event's instance."""
    events = sample_events()
    projections = {index: rows.indexes(type(event)) for index, event in enumerate(events)}
    values = [_frame(index, event) for index, event in enumerate(events)]
    found, misses = decode_framed(_decoders(events), values, projections)
    assert misses == 0
    assert found == [rows.row(event) for event in events]
    instances, _ = decode_framed(_decoders(events), values)
    assert instances == events  # without rows: the instances, as before


@_needs_native
def test_an_id_without_a_projection_is_a_miss_and_a_bad_projection_is_refused() -> None:
    """With rows, an id missing from them is left to the slow path; a malformed one raises."""
    event = AgentSwitchedEvent(session_id="s", from_agent="a", to_agent="b")
    decoders, values = _decoders([event]), [_frame(0, event)]
    assert decode_framed(decoders, values, {1: ("x", 0)}) == ([None], 1)
    with pytest.raises(ValueError, match="out of range"):
        decode_framed(decoders, values, {0: ("x", len(AgentSwitchedEvent.model_fields))})
    with pytest.raises(ValueError, match="out of range"):
        decode_framed(decoders, values, {0: ("x", -1)})
    with pytest.raises(TypeError, match="tuple"):
        decode_framed(decoders, values, {0: ()})
    with pytest.raises(TypeError, match="tuple"):
        decode_framed(decoders, values, {0: ["x", 0]})  # type: ignore[dict-item]  # the refused type


def test_a_row_names_the_first_item_then_the_fields_in_the_order_given() -> None:
    """EventRows.row: the spec's first item, then each named field; other types take the default."""
    rows = EventRows({AgentSwitchedEvent: ("switch", ("to_agent", "session_id"))}, ("other", ()))
    switched = AgentSwitchedEvent(session_id="s", from_agent="a", to_agent="b")
    assert rows.row(switched) == ("switch", "b", "s")
    other = next(e for e in sample_events() if not isinstance(e, AgentSwitchedEvent))
    assert rows.row(other) == ("other",)
    names = list(AgentSwitchedEvent.model_fields)
    assert rows.indexes(AgentSwitchedEvent) == (
        "switch",
        names.index("to_agent"),
        names.index("session_id"),
    )


async def test_the_codec_reads_rows_of_known_ids_in_c_and_of_any_other_record_in_python() -> None:
    """decode_many_rows_cached: each known record's row; unknown ids None; foreign types as is."""
    events = sample_events()
    ids = {type(event): 100 + index for index, event in enumerate(events)}
    foreign = {"type": "record", "name": "other.Thing", "fields": [{"name": "n", "type": "long"}]}

    def registry(request: httpx.Request) -> httpx.Response:
        schema_id = int(request.url.path.rsplit("/", 1)[1])
        model = next((m for m, i in ids.items() if i == schema_id), None)
        schema = foreign if model is None else load_schema(model)
        return httpx.Response(200, json={"schema": json.dumps(schema)})

    async with RegistryClient("http://registry", transport=httpx.MockTransport(registry)) as client:
        codec = AvroCodec(client)
        values = [_frame(ids[type(event)], event) for event in events]
        assert codec.decode_many_rows_cached(values, _EVERY_FIELD) == [None] * len(values)
        for value in values:
            await codec.decode(value)  # the writer schemas fetched, as a runner waits for them
        assert codec.decode_many_rows_cached(values, _EVERY_FIELD) == [
            _EVERY_FIELD.row(event) for event in events
        ]
        thing = struct.pack(">bI", 0, 7) + b"\x04"  # a type this reader has no model for
        await codec.decode(thing)
        (unknown,) = codec.decode_many_rows_cached([thing], _EVERY_FIELD)
        assert isinstance(unknown, UnknownEvent)
        assert unknown.data == {"n": 2}
