"""How a pydantic event model is spelled in Avro: the rule the drift test holds the files to."""

from __future__ import annotations

import json
import types
import typing
import uuid
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import AwareDatetime
from pydantic_core import PydanticUndefined

from agentflux.schemas import _models
from agentflux.schemas._modelgen import CONSTRAINTS
from agentflux.schemas._types import EventType

if typing.TYPE_CHECKING:
    from agentflux.schemas._models import BaseEvent

_INT_AS_INT = {"schema_version"}  # everything else integral is a long (durations, counts)
_ENUM_FALLBACK = " A reader meeting a symbol it does not know reads "  # the docstring's 2nd part
_ENVELOPE = json.loads((Path(__file__).parents[1] / "schemas/avro/envelope.avsc").read_text())
_ENVELOPE_DOCS = {f["name"]: f["doc"] for f in _ENVELOPE["fields"] if "doc" in f}


def _avro_type(name: str, annotation: Any) -> Any:  # noqa: PLR0911  # one return per Avro type
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _avro_type(name, typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        return ["null", _avro_type(name, members[0])]
    if origin is typing.Literal or annotation is EventType:
        return "string"
    if origin is dict:
        return {"type": "map", "values": "string"}
    if isinstance(annotation, type) and issubclass(annotation, StrEnum):
        flat = " ".join((annotation.__doc__ or "").split())
        doc, _, fallback = flat.partition(_ENUM_FALLBACK)
        spelled: dict[str, Any] = {"type": "enum", "name": annotation.__name__}
        if doc and not doc.startswith("The symbols of"):
            spelled["doc"] = doc
        spelled["symbols"] = [m.value for m in annotation]
        if fallback:
            spelled["default"] = fallback.split("``")[1]
        return spelled
    simple = {
        str: "string",
        bool: "boolean",
        float: "double",
        uuid.UUID: {"type": "string", "logicalType": "uuid"},
        datetime: {"type": "long", "logicalType": "timestamp-millis"},
        AwareDatetime: {"type": "long", "logicalType": "timestamp-millis"},
    }
    if annotation is int:
        return "int" if name in _INT_AS_INT else "long"
    return simple[annotation]


def _constraint(annotation: Any) -> str | None:
    """The ``agentflux.constraint`` an annotation spells (one of the aliases of ``_models``)."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
    for constraint, by_type in CONSTRAINTS.items():
        if any(annotation == getattr(_models, alias) for alias in by_type.values()):
            return constraint
    return None


def _default(field: Any) -> Any:
    if field.default_factory is dict:
        return {}
    if field.default is PydanticUndefined or field.default_factory is not None:
        return PydanticUndefined
    value = field.default
    return value.value if isinstance(value, StrEnum) else value


def avro_schema_of(model: type[BaseEvent]) -> dict[str, Any]:
    """The Avro record a model corresponds to (event_id and occurred_at have no Avro default)."""
    namespace, _, name = model.RECORD_NAME.rpartition(".")
    fields = []
    hints = typing.get_type_hints(model, include_extras=True)
    for field_name, field in model.model_fields.items():
        entry: dict[str, Any] = {
            "name": field_name,
            "type": _avro_type(field_name, hints[field_name]),
        }
        doc = field.description or _ENVELOPE_DOCS.get(field_name)
        if doc:
            entry["doc"] = doc
        constraint = _constraint(hints[field_name])
        if constraint:
            entry["agentflux.constraint"] = constraint
        default = _default(field)
        if field_name == "event_type":
            entry["default"] = model.EVENT_TYPE.value
        elif default is not PydanticUndefined:
            entry["default"] = default
        fields.append(entry)
    return {
        "type": "record",
        "name": name,
        "namespace": namespace,
        "doc": (model.__doc__ or "").strip(),
        "fields": fields,
    }
