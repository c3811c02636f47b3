"""The schema-evolution cases the compatibility gate is tested on (offline and in the registry)."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

_BASE: dict[str, Any] = {
    "type": "record",
    "name": "ToolCall",
    "namespace": "agentflux.test",
    "fields": [
        {"name": "call_id", "type": "string"},
        {"name": "attempts", "type": "int"},
        {"name": "status", "type": {"type": "enum", "name": "Status", "symbols": ["OK", "FAILED"]}},
        {"name": "note", "type": ["null", "string"], "default": None},
    ],
}


def base() -> dict[str, Any]:
    """Version 1 of the test record."""
    return copy.deepcopy(_BASE)


def _with(change: str) -> dict[str, Any]:
    schema = base()
    fields = schema["fields"]
    if change == "add_with_default":
        fields.append({"name": "agent", "type": "string", "default": "unknown"})
    elif change == "add_without_default":
        fields.append({"name": "agent", "type": "string"})
    elif change == "remove_optional":
        schema["fields"] = [f for f in fields if f["name"] != "note"]
    elif change == "remove_required":
        schema["fields"] = [f for f in fields if f["name"] != "call_id"]
    elif change == "rename_with_alias":
        fields[0] = {"name": "tool_call_id", "type": "string", "aliases": ["call_id"]}
    elif change == "widen_int_to_long":
        fields[1] = {"name": "attempts", "type": "long"}
    elif change == "add_enum_symbol":
        fields[2]["type"]["symbols"] = ["OK", "FAILED", "CANCELLED"]
    elif change == "narrow_long_to_int_field_type":
        fields[0] = {"name": "call_id", "type": "int"}
    return schema


@dataclass(frozen=True)
class Case:
    """One evolution from v1 to v2, with what each compatibility level must say of it."""

    name: str
    backward: bool
    forward: bool

    @property
    def new(self) -> dict[str, Any]:
        """Version 2 of the record under this change."""
        return _with(self.name)


CASES = [
    Case("add_with_default", backward=True, forward=True),
    Case("add_without_default", backward=False, forward=True),
    Case("remove_optional", backward=True, forward=True),
    Case("remove_required", backward=True, forward=False),
    Case("rename_with_alias", backward=True, forward=False),
    Case("widen_int_to_long", backward=True, forward=False),
    Case("add_enum_symbol", backward=True, forward=False),
    Case("narrow_long_to_int_field_type", backward=False, forward=False),
]
