"""Event models: they agree with the .avsc files and refuse invalid values clearly."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import fastavro
import pytest
from _avro_mapping import avro_schema_of
from _samples import sample_events
from pydantic import ValidationError

from agentflux.schemas import (
    EVENT_MODELS,
    AgentSwitchedEvent,
    BaseEvent,
    EventCategory,
    EventType,
    HitlDecisionMadeEvent,
    SessionMessageAddedEvent,
    event_model,
    load_schema,
)

_AVRO = Path(__file__).parents[2] / "schemas" / "avro"


def test_every_event_type_has_a_model() -> None:
    """All 22 event types of the old bus, in 6 categories, have a model."""
    assert set(EVENT_MODELS) == set(EventType)
    assert len(EVENT_MODELS) == 22
    assert {t.category for t in EventType} == set(EventCategory)


@pytest.mark.parametrize("model", EVENT_MODELS.values(), ids=lambda m: m.__name__)
def test_model_and_avsc_agree(model: type[BaseEvent]) -> None:
    """A model's fields, types, nullability and defaults are exactly those of its .avsc file."""
    assert load_schema(model) == avro_schema_of(model)


@pytest.mark.parametrize("model", EVENT_MODELS.values(), ids=lambda m: m.__name__)
def test_every_event_starts_with_the_shared_envelope(model: type[BaseEvent]) -> None:
    """Each schema's first fields are the envelope's, in order, as declared in envelope.avsc."""
    envelope = json.loads((_AVRO / "envelope.avsc").read_text())["fields"]
    fields = load_schema(model)["fields"][: len(envelope)]
    event_type = fields[1]
    assert event_type.pop("default") == model.EVENT_TYPE.value  # each event fixes its own type
    assert [{k: v for k, v in f.items() if k != "doc"} for f in fields] == [
        {k: v for k, v in f.items() if k != "doc"} for f in envelope
    ]


def test_schema_files_parse_and_match_the_models() -> None:
    """Every .avsc under schemas/avro/<category>/ parses and belongs to a model."""
    files = sorted(p for p in _AVRO.glob("*/*.avsc") if p.parent.name != "history")
    assert len(files) == 22
    names = {f"{json.loads(p.read_text())['namespace']}.{p.stem}" for p in files}
    assert names == {m.RECORD_NAME for m in EVENT_MODELS.values()}
    for path in files:
        fastavro.parse_schema(json.loads(path.read_text()))


def test_old_bus_constructor_still_works() -> None:
    """The old bus's keyword constructor builds the event with envelope defaults filled in."""
    event = AgentSwitchedEvent(
        session_id="session-123",
        from_agent="orchestrator",
        to_agent="coder",
        reason="Code modification required",
        correlation_id="corr-1",
    )
    assert event.event_type == EventType.AGENT_SWITCHED
    assert event.topic == "agent.events"
    assert event.occurred_at.tzinfo is not None
    assert event.occurred_at.microsecond % 1000 == 0
    assert event_model("agent_switched") is AgentSwitchedEvent


def test_missing_session_id_is_refused() -> None:
    """An event without a session id raises a validation error naming the field."""
    with pytest.raises(ValidationError, match="session_id"):
        AgentSwitchedEvent(from_agent="a", to_agent="b")  # type: ignore[call-arg]


def test_empty_session_id_is_refused() -> None:
    """An empty session id is as invalid as a missing one."""
    with pytest.raises(ValidationError, match="session_id"):
        AgentSwitchedEvent(session_id="", from_agent="a", to_agent="b")


def test_wrong_types_are_refused() -> None:
    """Strings are not coerced into numbers and numbers not into strings."""
    with pytest.raises(ValidationError, match="duration_ms"):
        event_model(EventType.TOOL_EXECUTION_COMPLETED)(
            session_id="s", call_id="c", tool_name="t", duration_ms="12"
        )
    with pytest.raises(ValidationError, match="from_agent"):
        AgentSwitchedEvent(session_id="s", from_agent=1, to_agent="b")  # type: ignore[arg-type]


def test_naive_datetime_is_refused() -> None:
    """A timestamp without a time zone is refused."""
    with pytest.raises(ValidationError, match="occurred_at"):
        AgentSwitchedEvent(
            session_id="s",
            from_agent="a",
            to_agent="b",
            occurred_at=datetime(2026, 1, 1, 12, 0),  # noqa: DTZ001  # the point of the test
        )


def test_oversized_strings_are_refused() -> None:
    """Identifiers stop at 128 characters, message content at 65,536."""
    with pytest.raises(ValidationError, match="at most 128"):
        AgentSwitchedEvent(session_id="s" * 129, from_agent="a", to_agent="b")
    with pytest.raises(ValidationError, match="at most 65536"):
        SessionMessageAddedEvent(session_id="s", message_id="m", role="USER", content="x" * 65_537)


def test_unknown_fields_and_wrong_event_type_are_refused() -> None:
    """Extra fields and an event_type of another class raise."""
    with pytest.raises(ValidationError, match="extra"):
        AgentSwitchedEvent(session_id="s", from_agent="a", to_agent="b", colour="red")  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="event_type"):
        AgentSwitchedEvent(
            session_id="s", from_agent="a", to_agent="b", event_type="session_created"
        )  # type: ignore[arg-type]


def test_enum_values_are_checked() -> None:
    """A decision outside APPROVED/REJECTED is refused."""
    with pytest.raises(ValidationError, match="decision"):
        HitlDecisionMadeEvent(session_id="s", approval_id="a", approver="x", decision="MAYBE")  # type: ignore[arg-type]


def test_events_are_immutable() -> None:
    """A published event cannot be changed afterwards."""
    event = sample_events()[0]
    with pytest.raises(ValidationError, match="frozen"):
        event.session_id = "other"  # type: ignore[misc]
