"""A model's JSON written in C is pydantic's ``model_dump_json()``, byte for byte, or pydantic's own."""

from __future__ import annotations

import math
import os
import uuid
from datetime import UTC, datetime, timedelta, timezone
from enum import Enum, StrEnum
from typing import Annotated, Any

import pytest
from _samples import sample_events
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, computed_field, field_serializer

from agentflux.schemas import (
    EVENT_MODELS,
    MetricsPerformanceMeasuredEvent,
    SessionUpdatedEvent,
    _json,
)
from agentflux.schemas._json import model_json

# Skipped only where the C extension may be missing: where it is required (CI), it must be built.
native = pytest.mark.skipif(
    _json._native is None and os.environ.get("AGENTFLUX_REQUIRE_NATIVE") != "1",
    reason="C extension not built (AGENTFLUX_REQUIRE_NATIVE=1 makes this a failure)",
)


class _Colour(StrEnum):
    RED = "red"


class _Level(Enum):
    LOW = 1


class _Anything(BaseModel):
    """A plain model with every kind of value the C writer writes, and some it leaves."""

    model_config = ConfigDict(frozen=True)

    text: str = ""
    number: int = 0
    ratio: float = 0.0
    flag: bool = False
    nothing: None = None
    when: datetime = datetime(2026, 1, 1, tzinfo=UTC)
    ident: uuid.UUID = uuid.UUID(int=7)
    colour: _Colour = _Colour.RED
    level: _Level = _Level.LOW
    tags: dict[str, str] = Field(default_factory=dict)
    free: Any = None


def _written_by_c(instance: BaseModel) -> str | None:
    """The C writer's text for ``instance`` (None: left to pydantic)."""
    plan = _json._plan(type(instance))
    assert plan is not None
    assert _json._native is not None
    return _json._native.model_json(instance.__dict__, *plan)


@native
def test_every_shipped_event_is_written_as_pydantic_writes_it() -> None:
    """Each event type's samples get pydantic's exact text, and the C writer wrote them."""
    events = sample_events()
    assert {type(event) for event in events} == set(EVENT_MODELS.values())
    for event in events:
        assert model_json(event) == event.model_dump_json()
        assert _written_by_c(event) == event.model_dump_json()


@native
@settings(max_examples=300, deadline=None)
@given(
    text=st.text(),
    number=st.integers(-(2**70), 2**70),
    ratio=st.floats(),
    when=st.datetimes(timezones=st.none() | st.just(UTC) | st.timezones()),
    tags=st.dictionaries(st.text(max_size=10), st.text(max_size=10), max_size=4),
    free=st.none() | st.booleans() | st.floats() | st.lists(st.integers(), max_size=3),
)
def test_any_values_are_written_as_pydantic_writes_them(  # noqa: PLR0913, PLR0917  # hypothesis passes one per kind of value
    text: str, number: int, ratio: float, when: datetime, tags: dict[str, str], free: Any
) -> None:
    """Any string, int, float, time, dict and value: the C text is pydantic's, or it is left."""
    instance = _Anything(text=text, number=number, ratio=ratio, when=when, tags=tags, free=free)
    written = _written_by_c(instance)
    assert written is None or written == instance.model_dump_json()
    if math.isfinite(ratio) and abs(number) < 2**63 and when.tzinfo is UTC and free is None:
        assert written is not None  # a value the C writer writes is never left to pydantic
    assert model_json(instance) == instance.model_dump_json()


@native
@given(value=st.floats(allow_nan=False, allow_infinity=False))
def test_floats_take_pydantic_layout(value: float) -> None:
    """Positional from 1e-5, exponents without leading zeros: pydantic's layout, not repr's."""
    event = MetricsPerformanceMeasuredEvent(session_id="s", operation="op", duration_ms=abs(value))
    assert _written_by_c(event) == event.model_dump_json()


@native
def test_strings_are_escaped_as_pydantic_escapes_them() -> None:
    """Quotes, backslashes and control characters escaped; other characters as they are."""
    text = 'a"\\\x00\x01\x08\t\n\x0b\x0c\r\x1f\x7f\u2028é😀/'
    event = SessionUpdatedEvent(session_id="s", changes={text: text})
    assert _written_by_c(event) == event.model_dump_json()
    assert "\\u0000\\u0001\\b\\t\\n\\u000b\\f\\r\\u001f\x7f\u2028é😀/" in model_json(event)


@native
def test_values_pydantic_writes_otherwise_are_left_to_it() -> None:
    """A time not in UTC, a float not finite, an int past 64 bits: pydantic's text, unchanged."""
    east = timezone(timedelta(hours=2))
    for instance in (
        _Anything(when=datetime(2026, 1, 1, tzinfo=east)),
        _Anything(ratio=math.inf),
        _Anything(number=2**64),
        _Anything(free=b"bytes"),
    ):
        assert _written_by_c(instance) is None
        assert model_json(instance) == instance.model_dump_json()


class _Renamed(BaseModel):
    """A model whose JSON is not its fields as they are: a serializer and an alias."""

    value: int = Field(default=1, serialization_alias="v")
    when: datetime = datetime(2026, 1, 1, tzinfo=UTC)

    @field_serializer("when")
    def _as_date(self, when: datetime) -> str:
        return when.date().isoformat()


class _NestedSerializer(BaseModel):
    """A serializer on a type inside a field's type: its text is pydantic's to write."""

    counts: dict[str, Annotated[int, PlainSerializer(str)]] = Field(default_factory=dict)


class _Excluded(BaseModel):
    """A field left out of the text."""

    secret: str = Field(default="x", exclude=True)


class _Computed(BaseModel):
    """A computed field, written beside the fields."""

    value: int = 1

    @computed_field
    @property
    def double(self) -> int:
        return self.value * 2


def test_a_model_with_its_own_serialization_is_left_to_pydantic() -> None:
    """Serializers (nested ones too), aliases, exclusions and computed fields: no C plan."""
    for model in (_Renamed, _NestedSerializer, _Excluded, _Computed):
        assert _json._plan(model) is None, model
        instance = model()
        assert model_json(instance) == instance.model_dump_json()
    assert model_json(_NestedSerializer(counts={"a": 1})) == '{"counts":{"a":"1"}}'


def test_the_shipped_models_are_plain() -> None:
    """Every shipped event model gets a plan: its JSON is written in C."""
    assert all(_json._plan(model) is not None for model in EVENT_MODELS.values())


@native
def test_a_model_whose_c_text_differs_keeps_to_pydantic(monkeypatch: pytest.MonkeyPatch) -> None:
    """The first event of a model is written both ways; a difference leaves the model to pydantic."""

    class _Differs:
        calls = 0

        def model_json(self, *_args: object) -> str:
            self.calls += 1
            return "{}"

    differs = _Differs()
    monkeypatch.setattr(_json, "_native", differs)
    monkeypatch.setattr(_json, "_plans", {})

    class _Fresh(BaseModel):
        value: int = 1

    first, second = _Fresh(), _Fresh(value=2)
    assert _json._native_json(first) == first.model_dump_json()
    assert _json._native_json(second) == second.model_dump_json()
    assert differs.calls == 1
    assert _json._plans[_Fresh] is None
