"""The envelope every event shares, and the constraints the generated models use.

The event models themselves are generated from the ``.avsc`` files into ``_events.py``
(``agentflux schemas generate``); a field's ``agentflux.constraint`` attribute picks one of the
aliases below. Limits, enforced at construction (a violation raises ``pydantic.ValidationError``):

* ``id`` (session, call, approval, message, task, correlation ids): 1-128 characters;
* ``name`` (agents, tools, models, services, metrics): 1-256 characters;
* ``text`` (reasons, comments, summaries, error messages): at most 8,192 characters;
* ``content`` (message content and tool arguments): at most 65,536 characters;
* ``non_negative`` (a ``long``, ``int`` or ``double``): never below zero;
* timestamps must carry a time zone; they are kept to the millisecond, as Avro stores them.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from functools import cache
from typing import Annotated, Any, ClassVar

from annotated_types import Ge
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, field_validator

from agentflux.schemas._catalogue import EventType

__all__ = [
    "BaseEvent",
    "Content",
    "Id",
    "Name",
    "NonNegativeFloat",
    "NonNegativeInt",
    "Tags",
    "Text",
]

MAX_ID = 128
MAX_NAME = 256
MAX_TEXT = 8_192
MAX_CONTENT = 65_536

Id = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=MAX_NAME)]
Text = Annotated[str, StringConstraints(max_length=MAX_TEXT)]
Content = Annotated[str, StringConstraints(max_length=MAX_CONTENT)]
NonNegativeInt = Annotated[int, Ge(0)]
NonNegativeFloat = Annotated[float, Ge(0)]
Tags = dict[str, str]


def _to_millis(value: datetime) -> datetime:
    # Avro's timestamp-millis keeps milliseconds; truncate now so a round trip is exact.
    if value.tzinfo is UTC and not value.microsecond % 1000:
        return value  # already normalized: every decoded timestamp, checked cheaply
    return value.astimezone(UTC).replace(microsecond=value.microsecond // 1000 * 1000)


def _now() -> datetime:
    return _to_millis(datetime.now(UTC))


class BaseEvent(BaseModel):
    """The envelope every event shares: identity, time, session, causality, origin, version."""

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")

    EVENT_TYPE: ClassVar[EventType]
    RECORD_NAME: ClassVar[str]
    TOPIC: ClassVar[str]

    event_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    event_type: EventType
    occurred_at: AwareDatetime = Field(default_factory=_now)
    session_id: Id
    correlation_id: Id | None = None
    causation_id: Id | None = None
    source: Name = "agent-runtime"
    schema_version: int = Field(default=2, ge=1)
    producer_id: Id | None = None
    sequence: NonNegativeInt | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Derive the class constants from the subclass's fixed ``event_type`` default."""
        super().__init_subclass__(**kwargs)
        event_type = vars(cls).get("event_type")
        if not isinstance(event_type, EventType):
            return  # an abstract intermediate class without its own event type
        cls.EVENT_TYPE = event_type
        cls.TOPIC = event_type.category.topic
        words = cls.__name__.removesuffix("Event")
        cls.RECORD_NAME = f"agentflux.events.{event_type.category.value}.{words}"

    @field_validator("occurred_at")
    @classmethod
    def _occurred_at_in_millis(cls, value: datetime) -> datetime:
        return _to_millis(value)

    @property
    def topic(self) -> str:
        """The category topic this event is published to."""
        return self.TOPIC

    @property
    def category(self) -> str:
        """The event's category, as the old bus named it."""
        return self.EVENT_TYPE.category.value

    @property
    def data(self) -> dict[str, Any]:
        """The event's own fields (the envelope's left out), as the old bus's ``event.data``."""
        return {name: getattr(self, name) for name in _payload_fields(type(self))}


@cache
def _payload_fields(model: type[BaseEvent]) -> tuple[str, ...]:
    return tuple(name for name in model.model_fields if name not in BaseEvent.model_fields)
