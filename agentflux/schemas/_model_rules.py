"""What a pydantic model demands of decoded values beyond their Avro types, read once per model.

A decoded record already has the types Avro guarantees, so only the model's constraints
(lengths, bounds, the fixed event type, enum members, ``after`` field validators) are left to
check before an instance is assembled; a model with anything else is not compiled (pydantic's
``model_validate`` then). The generated Python builder and the C decoder apply the same rules.

Assembling an instance without pydantic's validator, as ``model_construct`` does, and reading a
model's validators rely on pydantic 2's layout; :data:`PYDANTIC_LAYOUT_KNOWN` checks that layout
once, and without it no model is compiled: decoding is slower, never wrong.
"""

from __future__ import annotations

import types
import typing
import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any, Literal

import annotated_types
import pydantic
from pydantic import AwareDatetime, BaseModel, Strict, StringConstraints

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from pydantic.fields import FieldInfo

__all__ = ["PYDANTIC_LAYOUT_KNOWN", "FieldRules", "UnsupportedError", "buildable", "field_rules"]


class UnsupportedError(Exception):
    """The schema or model uses something the compiled codec does not compile."""


# The attributes an instance is made of, which the builders set as model_construct does.
_INSTANCE_SLOTS = (
    "__dict__",
    "__pydantic_fields_set__",
    "__pydantic_extra__",
    "__pydantic_private__",
)


def _pydantic_layout_known() -> bool:
    """Whether this pydantic keeps instances and validators as the builders expect (2.x)."""
    decorators = getattr(BaseModel, "__pydantic_decorators__", None)
    return (
        pydantic.VERSION.startswith("2.")
        and getattr(BaseModel, "__slots__", None) == _INSTANCE_SLOTS
        and all(
            hasattr(decorators, name)
            for name in ("field_validators", "model_validators", "root_validators", "validators")
        )
    )


PYDANTIC_LAYOUT_KNOWN = _pydantic_layout_known()


@dataclass(frozen=True, slots=True)
class FieldRules:
    """What a model demands of one decoded value beyond its Avro type, as pydantic checks it."""

    optional: bool = False  # None passes every rule but the validators
    literal: Any = None  # the only value allowed (the member to store), or None
    members: Mapping[Any, Enum] | None = None  # decoded value -> enum member to store
    min_length: int | None = None
    max_length: int | None = None
    ge: Any = None  # inclusive lower bound
    validators: tuple[Callable[[Any], Any], ...] = ()  # "after" field validators, in order


def _length_and_bound(name: str, metadata: list[Any]) -> dict[str, Any]:
    """The length bounds and lower bound a field's annotations carry (one of each at most)."""
    found: dict[str, Any] = {}
    for item in metadata:
        if isinstance(item, StringConstraints):
            unused = {k for k, v in vars(item).items() if v is not None} - {
                "min_length",
                "max_length",
            }
            if unused or "min_length" in found:
                raise UnsupportedError(f"{name}: string constraints {item!r}")
            found |= {"min_length": item.min_length or 0, "max_length": item.max_length}
        elif isinstance(item, annotated_types.Ge):
            if "ge" in found:
                raise UnsupportedError(f"{name}: a second lower bound")
            found["ge"] = item.ge
        elif not (isinstance(item, Strict) and item.strict is False):
            raise UnsupportedError(f"{name}: constraint {item!r}")
    return found


_PLAIN_ANNOTATIONS = frozenset(
    {
        str,
        int,
        float,
        bool,
        bytes,
        uuid.UUID,
        AwareDatetime,
        datetime,
        dict[str, str],
        list[int],
        list[str],
    }
)


def _unwrapped(name: str, field: FieldInfo) -> tuple[bool, Any, list[Any]]:
    """(optional, the bare annotation, every metadata item) of a field."""
    annotation, metadata = field.annotation, list(field.metadata)
    optional = False
    if typing.get_origin(annotation) in {typing.Union, types.UnionType}:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) != 1 or len(typing.get_args(annotation)) != 2:  # noqa: PLR2004  # X | None
            raise UnsupportedError(f"{name}: {annotation}")
        optional, annotation = True, args[0]
    if typing.get_origin(annotation) is typing.Annotated:
        annotation, *extra = typing.get_args(annotation)
        metadata += extra
    return optional, annotation, metadata


def field_rules(model: type[BaseModel], name: str, field: FieldInfo) -> FieldRules:
    """The rules of one field, or UnsupportedError for a shape pydantic alone checks."""
    optional, annotation, metadata = _unwrapped(name, field)
    literal, members = None, None
    if typing.get_origin(annotation) is Literal:
        (literal,) = typing.get_args(annotation)
        if literal is None:
            raise UnsupportedError(f"{name}: Literal[None]")
    elif isinstance(annotation, type) and issubclass(annotation, Enum):
        members = {member.value: member for member in annotation}
    elif annotation not in _PLAIN_ANNOTATIONS:
        raise UnsupportedError(f"{name}: {annotation}")
    validators = []
    for validator in model.__pydantic_decorators__.field_validators.values():
        if name in validator.info.fields:
            if validator.info.mode != "after":
                raise UnsupportedError(f"{name}: {validator.info.mode} validator")
            validators.append(validator.func)
    return FieldRules(
        optional=optional,
        literal=literal,
        members=members,
        validators=tuple(validators),
        **_length_and_bound(name, metadata),
    )


def buildable(model: type[BaseModel]) -> bool:
    """Whether instances of ``model`` can be assembled from rules (else: ``model_validate``)."""
    if not PYDANTIC_LAYOUT_KNOWN:
        return False
    decorators = model.__pydantic_decorators__
    if decorators.model_validators or decorators.root_validators or decorators.validators:
        return False
    return model.model_config.get("extra") == "forbid" and not model.__pydantic_root_model__
