"""The event contract of agentflux: event types, Avro schemas, models, codec and registry.

This package depends on nothing else in the project; ``producers`` and ``consumers`` build on it.
"""

from agentflux.schemas import _events
from agentflux.schemas._codec import (
    ENCODING_ERRORS,
    AvroCodec,
    UnknownEvent,
    load_schema,
    released_schema,
    subject_name,
)
from agentflux.schemas._errors import (
    CodecError,
    CorruptPayloadError,
    IncompatibleSchemaError,
    RegistryError,
    RegistryUnavailableError,
    SchemaNotFoundError,
    SchemaResolutionError,
    UnknownSchemaIdError,
)
from agentflux.schemas._events import *  # noqa: F403  # the generated models, listed in _events.__all__
from agentflux.schemas._headers import (
    CONTENT_TYPE,
    HEADER_DOCS,
    HEADER_NAMES,
    current_traceparent,
    event_header_values,
    event_headers,
    header_map,
    header_pairs,
    header_values_for,
    new_traceparent,
)
from agentflux.schemas._models import BaseEvent
from agentflux.schemas._registry import COMPATIBILITY_LEVELS, RegistryClient, canonical
from agentflux.schemas._rows import EventRows, RowSpec
from agentflux.schemas._teams import TeamSpec
from agentflux.schemas._topics import (
    DeadLetterSpec,
    TopicsDeclaration,
    TopicSpec,
    dead_letter_topic,
    load_topics,
)
from agentflux.schemas._types import EventCategory, EventType

__all__ = [
    "COMPATIBILITY_LEVELS",
    "CONTENT_TYPE",
    "ENCODING_ERRORS",
    "HEADER_DOCS",
    "HEADER_NAMES",
    "AvroCodec",
    "BaseEvent",
    "CodecError",
    "CorruptPayloadError",
    "DeadLetterSpec",
    "EventCategory",
    "EventRows",
    "EventType",
    "IncompatibleSchemaError",
    "RegistryClient",
    "RegistryError",
    "RegistryUnavailableError",
    "RowSpec",
    "SchemaNotFoundError",
    "SchemaResolutionError",
    "TeamSpec",
    "TopicSpec",
    "TopicsDeclaration",
    "UnknownEvent",
    "UnknownSchemaIdError",
    "canonical",
    "current_traceparent",
    "dead_letter_topic",
    "event_header_values",
    "event_headers",
    "header_map",
    "header_pairs",
    "header_values_for",
    "load_schema",
    "load_topics",
    "new_traceparent",
    "released_schema",
    "subject_name",
]
__all__ += _events.__all__
