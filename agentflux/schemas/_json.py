"""A model's JSON text, ``model_dump_json()``'s, written in C for plain models.

The audit view keeps every event's JSON as the record its hash covers; pydantic's serializer was
the largest single cost of chaining an event. For a model whose JSON is plain (no serializer,
alias, exclusion or computed field of its own) the C codec writes the same text from the field
dict: strings, ints, floats, booleans, None, UUIDs, UTC datetimes, enum members and dicts of
them. Any other value (and any other model) takes ``model_dump_json()``. A model's first event
is written both ways too: if the texts differ, that model keeps to pydantic from then on. Checked
instead: orjson and msgspec write their own layouts (floats, times), not pydantic's, and the
text must be pydantic's, byte for byte, for the hashes of a chain to stay the same across
versions and across processes with and without the C extension.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import structlog
from pydantic import BaseModel

from agentflux.schemas._conversions import _native

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["model_json"]

_log = structlog.get_logger("agentflux.schemas")

# A model's names and key texts for the C writer; None: pydantic's serializer for that model.
_Plan = tuple[tuple[str, ...], tuple[bytes, ...]] | None
_plans: dict[type[BaseModel], _Plan] = {}
_UNKNOWN: Final[Any] = object()  # not looked at yet, or not checked yet against pydantic


def _plain(model: type[BaseModel]) -> bool:
    """Whether ``model``'s JSON is its fields in order, each by its value's type alone.

    Read off pydantic-core's schema, where every way of changing the text is a key: a custom
    serializer anywhere (on the model, a field, or a type nested in a field's type), an alias
    or an exclusion for serialization, a computed field; extra fields are written too.
    """
    return (
        model.model_dump_json is BaseModel.model_dump_json
        and model.model_config.get("extra") != "allow"
        and not _serializes_its_own_way(model.__pydantic_core_schema__)
    )


def _serializes_its_own_way(node: object) -> bool:
    if isinstance(node, dict):
        return any(
            key == "serialization"
            or key.startswith("serialization_")
            or (key == "computed_fields" and bool(value))
            or _serializes_its_own_way(value)
            for key, value in node.items()
        )
    if isinstance(node, list | tuple):
        return any(_serializes_its_own_way(value) for value in node)
    return False


def _plan(model: type[BaseModel]) -> _Plan:
    if not _plain(model):
        return None
    names = tuple(model.model_fields)
    keys = tuple(f'{"{" if i == 0 else ","}"{name}":'.encode() for i, name in enumerate(names))
    return names, keys


def _python_json(instance: BaseModel) -> str:
    return instance.model_dump_json()


def _native_json(instance: BaseModel) -> str:
    model = type(instance)
    plan = _plans.get(model, _UNKNOWN)
    if plan is None:
        return instance.model_dump_json()
    if plan is _UNKNOWN:
        return _first_json(instance)
    text: str | None = _native.model_json(instance.__dict__, *plan)  # type: ignore[union-attr]  # set when chosen
    return instance.model_dump_json() if text is None else text


def _first_json(instance: BaseModel) -> str:
    """A model's first text: written both ways, and the C writer kept only if they agree."""
    model, expected = type(instance), instance.model_dump_json()
    plan = _plan(model)
    if plan is None:
        _plans[model] = None
        return expected
    text = _native.model_json(instance.__dict__, *plan)  # type: ignore[union-attr]  # set when chosen
    if text is None:
        return expected  # a value pydantic writes: the next event is checked instead
    if text != expected:
        _log.warning("model JSON left to pydantic: the C text differs", model=model.__name__)
        plan = None
    _plans[model] = plan
    return expected


model_json: Callable[[BaseModel], str] = _python_json if _native is None else _native_json
"""``instance.model_dump_json()``, in C where the model is plain (see the module)."""
