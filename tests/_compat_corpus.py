"""A corpus of schema changes the compatibility gate is judged on, against two other opinions.

Each case is one change from ``old`` (the released version) to ``new``, with what the Avro
specification's resolution rules say of it in each direction (where the specification leaves
room, the stricter reading the gate takes: see ``DISAGREEMENTS``):

- ``backward``: ``new`` reads data written with ``old`` (BACKWARD, the consumer upgrades first);
- ``forward``: ``old`` reads data written with ``new`` (FORWARD, the producer upgrades first).

FULL is both; with a single earlier version the ``*_TRANSITIVE`` levels say the same as their
base. The offline gate (``agentflux.schemas._compat``), Apache Avro's ``avro.compatibility``
checker and the registry's compatibility endpoint are each run on every case
(``tests/unit/test_compat_corpus.py``, ``tests/integration/test_compat_corpus_registry.py``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

__all__ = ["CORPUS", "DISAGREEMENTS", "Change", "Disagreement"]

Schema = dict[str, Any]

_NS = "corpus.v1"


def _record(*fields: dict[str, Any], name: str = "Event", **extra: Any) -> Schema:
    """A top-level record with an ``id`` field first and ``fields`` after it."""
    return {
        "type": "record",
        "name": name,
        "namespace": _NS,
        **extra,
        "fields": [{"name": "id", "type": "string"}, *copy.deepcopy(list(fields))],
    }


def _field(name: str, type_: Any, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": type_, **extra}


def _one(type_: Any, **extra: Any) -> Schema:
    """A record whose ``value`` field has type ``type_``: the cases that change one type."""
    return _record(_field("value", type_, **extra))


def _enum(symbols: list[str], default: str | None = None, name: str = "Decision") -> Schema:
    enum: Schema = {"type": "enum", "name": name, "symbols": symbols}
    if default is not None:
        enum["default"] = default
    return enum


def _nested(*fields: dict[str, Any], name: str = "Detail", **extra: Any) -> Schema:
    """A record whose ``detail`` field is a nested record ``name`` with ``fields``."""
    inner = {"type": "record", "name": name, **extra, "fields": list(fields)}
    return _record(_field("detail", inner))


_X = _field("x", "int")
_Y_DEFAULT = _field("y", "string", default="")
_Y = _field("y", "string")
_NOTE = _field("note", ["null", "string"], default=None)
_MILLIS = {"type": "long", "logicalType": "timestamp-millis"}
_MICROS = {"type": "long", "logicalType": "timestamp-micros"}
_UUID = {"type": "string", "logicalType": "uuid"}
_ITEM = {"type": "record", "name": "Item", "fields": [_field("n", "int")]}
_ITEM_SKU = {"type": "record", "name": "Item", "fields": [_field("n", "int"), _Y_DEFAULT]}
_OTHER = {"type": "record", "name": "Other", "fields": [_field("m", "string")]}


@dataclass(frozen=True)
class Change:
    """One change from ``old`` to ``new`` and the verdict of the resolution rules each way."""

    name: str
    old: Schema
    new: Schema
    backward: bool
    forward: bool

    @property
    def full(self) -> bool:
        """FULL (and FULL_TRANSITIVE against one version): both directions hold."""
        return self.backward and self.forward


def _c(name: str, old: Schema, new: Schema, *, backward: bool, forward: bool) -> Change:
    return Change(name, old, new, backward=backward, forward=forward)


CORPUS: tuple[Change, ...] = (
    # -- fields added and removed -------------------------------------------------------------
    _c("field_added_with_default", _record(), _record(_Y_DEFAULT), backward=True, forward=True),
    _c("field_added_without_default", _record(), _record(_Y), backward=False, forward=True),
    _c("optional_field_added", _record(), _record(_NOTE), backward=True, forward=True),
    _c("field_removed_with_default", _record(_Y_DEFAULT), _record(), backward=True, forward=True),
    _c("field_removed_without_default", _record(_Y), _record(), backward=True, forward=False),
    _c("field_default_added", _record(_Y), _record(_Y_DEFAULT), backward=True, forward=True),
    _c(
        "field_default_changed",
        _record(_Y_DEFAULT),
        _record(_field("y", "string", default="none")),
        backward=True,
        forward=True,
    ),
    _c("fields_reordered", _record(_X, _Y), _record(_Y, _X), backward=True, forward=True),
    # -- numeric promotions and their reverse -------------------------------------------------
    _c("int_to_long", _one("int"), _one("long"), backward=True, forward=False),
    _c("int_to_float", _one("int"), _one("float"), backward=True, forward=False),
    _c("int_to_double", _one("int"), _one("double"), backward=True, forward=False),
    _c("long_to_float", _one("long"), _one("float"), backward=True, forward=False),
    _c("long_to_double", _one("long"), _one("double"), backward=True, forward=False),
    _c("float_to_double", _one("float"), _one("double"), backward=True, forward=False),
    _c("long_to_int", _one("long"), _one("int"), backward=False, forward=True),
    _c("double_to_float", _one("double"), _one("float"), backward=False, forward=True),
    _c("double_to_long", _one("double"), _one("long"), backward=False, forward=True),
    _c("int_to_boolean", _one("int"), _one("boolean"), backward=False, forward=False),
    # -- string and bytes ---------------------------------------------------------------------
    _c("string_to_bytes", _one("string"), _one("bytes"), backward=True, forward=True),
    _c("bytes_to_string", _one("bytes"), _one("string"), backward=True, forward=True),
    _c("string_to_int", _one("string"), _one("int"), backward=False, forward=False),
    # -- enums --------------------------------------------------------------------------------
    _c(
        "enum_symbol_added_no_default",
        _one(_enum(["APPROVED", "REJECTED"])),
        _one(_enum(["APPROVED", "REJECTED", "ESCALATED"])),
        backward=True,
        forward=False,
    ),
    _c(
        "enum_symbol_added_with_default",
        _one(_enum(["APPROVED", "REJECTED"], "REJECTED")),
        _one(_enum(["APPROVED", "REJECTED", "ESCALATED"], "REJECTED")),
        backward=True,
        forward=True,
    ),
    _c(
        "enum_symbol_and_default_added_at_once",
        _one(_enum(["APPROVED", "REJECTED"])),
        _one(_enum(["APPROVED", "REJECTED", "ESCALATED"], "REJECTED")),
        backward=True,
        forward=False,
    ),
    _c(
        "enum_symbol_removed_no_default",
        _one(_enum(["APPROVED", "REJECTED", "ESCALATED"])),
        _one(_enum(["APPROVED", "REJECTED"])),
        backward=False,
        forward=True,
    ),
    _c(
        "enum_symbol_removed_with_default",
        _one(_enum(["APPROVED", "REJECTED", "ESCALATED"], "REJECTED")),
        _one(_enum(["APPROVED", "REJECTED"], "REJECTED")),
        backward=True,
        forward=True,
    ),
    _c(
        "enum_default_added",
        _one(_enum(["APPROVED", "REJECTED"])),
        _one(_enum(["APPROVED", "REJECTED"], "REJECTED")),
        backward=True,
        forward=True,
    ),
    _c(
        "enum_symbols_reordered",
        _one(_enum(["APPROVED", "REJECTED"])),
        _one(_enum(["REJECTED", "APPROVED"])),
        backward=True,
        forward=True,
    ),
    _c(
        "enum_renamed_no_alias",
        _one(_enum(["APPROVED", "REJECTED"])),
        _one(_enum(["APPROVED", "REJECTED"], name="Verdict")),
        backward=False,
        forward=False,
    ),
    _c(
        "enum_to_string",
        _one(_enum(["APPROVED", "REJECTED"])),
        _one("string"),
        backward=False,
        forward=False,
    ),
    # -- unions and nullability ---------------------------------------------------------------
    _c(
        "union_widened",
        _one(["null", "string"], default=None),
        _one(["null", "string", "int"], default=None),
        backward=True,
        forward=False,
    ),
    _c(
        "union_narrowed",
        _one(["null", "string", "int"], default=None),
        _one(["null", "string"], default=None),
        backward=False,
        forward=True,
    ),
    _c(
        "union_reordered",
        _one(["null", "string", "int"], default=None),
        _one(["null", "int", "string"], default=None),
        backward=True,
        forward=True,
    ),
    _c(
        "made_nullable",
        _one("string"),
        _one(["null", "string"], default=None),
        backward=True,
        forward=False,
    ),
    _c(
        "nullable_made_required",
        _one(["null", "string"], default=None),
        _one("string"),
        backward=False,
        forward=True,
    ),
    _c("int_to_union_null_long", _one("int"), _one(["null", "long"]), backward=True, forward=False),
    _c(
        "union_branch_promoted",
        _one(["null", "int"], default=None),
        _one(["null", "long"], default=None),
        backward=True,
        forward=False,
    ),
    _c(
        "record_branch_added_to_union",
        _one(["null", _ITEM], default=None),
        _one(["null", _ITEM, _OTHER], default=None),
        backward=True,
        forward=False,
    ),
    # -- nested records -----------------------------------------------------------------------
    _c(
        "nested_field_added_with_default",
        _nested(_X),
        _nested(_X, _Y_DEFAULT),
        backward=True,
        forward=True,
    ),
    _c(
        "nested_field_added_without_default",
        _nested(_X),
        _nested(_X, _Y),
        backward=False,
        forward=True,
    ),
    _c(
        "nested_field_removed_without_default",
        _nested(_X, _Y),
        _nested(_X),
        backward=True,
        forward=False,
    ),
    _c(
        "nested_field_promoted",
        _nested(_X),
        _nested(_field("x", "long")),
        backward=True,
        forward=False,
    ),
    # -- renames, with and without aliases ----------------------------------------------------
    _c(
        "field_renamed_with_alias",
        _record(_X),
        _record(_field("count", "int", aliases=["x"])),
        backward=True,
        forward=False,
    ),
    _c(
        "field_renamed_no_alias",
        _record(_X),
        _record(_field("count", "int")),
        backward=False,
        forward=False,
    ),
    _c(
        "record_renamed_with_full_alias",
        _record(_X),
        _record(_X, name="Occurrence", aliases=[f"{_NS}.Event"]),
        backward=True,
        forward=False,
    ),
    _c(
        "record_renamed_with_short_alias",
        _record(_X),
        _record(_X, name="Occurrence", aliases=["Event"]),
        backward=False,  # the gate counts full-name aliases only (see DISAGREEMENTS)
        forward=False,
    ),
    _c(
        "record_renamed_with_alias_from_other_namespace",
        _record(_X),
        _record(_X, name="Occurrence", aliases=["elsewhere.Event"]),
        backward=False,
        forward=False,
    ),
    _c(
        "record_renamed_no_alias",
        _record(_X),
        _record(_X, name="Occurrence"),
        backward=False,
        forward=False,
    ),
    _c(
        "nested_record_renamed_with_alias",
        _nested(_X),
        _nested(_X, name="Details", aliases=[f"{_NS}.Detail"]),
        backward=True,
        forward=False,
    ),
    _c(
        "nested_record_renamed_no_alias",
        _nested(_X),
        _nested(_X, name="Details"),
        backward=False,
        forward=False,
    ),
    # -- logical types ------------------------------------------------------------------------
    _c("uuid_logical_type_added", _one("string"), _one(_UUID), backward=True, forward=True),
    _c("timestamp_millis_added", _one("long"), _one(_MILLIS), backward=True, forward=True),
    _c("timestamp_millis_to_micros", _one(_MILLIS), _one(_MICROS), backward=True, forward=True),
    _c("timestamp_millis_to_string", _one(_MILLIS), _one("string"), backward=False, forward=False),
    # -- documentation and namespaces ---------------------------------------------------------
    _c(
        "doc_only_change",
        _record(_field("x", "int", doc="how many")),
        _record(_field("x", "int", doc="how many times it ran"), doc="an event"),
        backward=True,
        forward=True,
    ),
    _c(
        "record_namespace_changed",
        _record(_X),
        {**_record(_X), "namespace": "corpus.v2"},
        backward=True,
        forward=True,
    ),
    _c(
        "nested_enum_namespace_changed",
        _one(_enum(["APPROVED", "REJECTED"])),
        _one({**_enum(["APPROVED", "REJECTED"]), "namespace": "corpus.other"}),
        backward=True,
        forward=True,
    ),
    # -- fixed --------------------------------------------------------------------------------
    _c(
        "fixed_size_changed",
        _one({"type": "fixed", "name": "Hash", "size": 16}),
        _one({"type": "fixed", "name": "Hash", "size": 32}),
        backward=False,
        forward=False,
    ),
    _c(
        "fixed_renamed_no_alias",
        _one({"type": "fixed", "name": "Hash", "size": 16}),
        _one({"type": "fixed", "name": "Digest", "size": 16}),
        backward=False,
        forward=False,
    ),
    _c(
        "bytes_to_fixed",
        _one("bytes"),
        _one({"type": "fixed", "name": "Hash", "size": 16}),
        backward=False,
        forward=False,
    ),
    # -- arrays and maps ----------------------------------------------------------------------
    _c(
        "array_items_int_to_long",
        _one({"type": "array", "items": "int"}),
        _one({"type": "array", "items": "long"}),
        backward=True,
        forward=False,
    ),
    _c(
        "array_items_long_to_int",
        _one({"type": "array", "items": "long"}),
        _one({"type": "array", "items": "int"}),
        backward=False,
        forward=True,
    ),
    _c(
        "array_item_record_field_added_with_default",
        _one({"type": "array", "items": _ITEM}),
        _one({"type": "array", "items": _ITEM_SKU}),
        backward=True,
        forward=True,
    ),
    _c(
        "map_values_int_to_double",
        _one({"type": "map", "values": "int"}),
        _one({"type": "map", "values": "double"}),
        backward=True,
        forward=False,
    ),
    _c(
        "map_values_string_to_int",
        _one({"type": "map", "values": "string"}),
        _one({"type": "map", "values": "int"}),
        backward=False,
        forward=False,
    ),
    _c(
        "array_to_map",
        _one({"type": "array", "items": "string"}),
        _one({"type": "map", "values": "string"}),
        backward=False,
        forward=False,
    ),
)


@dataclass(frozen=True)
class Disagreement:
    """A case where a second opinion departs from the corpus's verdict, and why that is fine."""

    case: str
    checker: str  # "avro" (Apache Avro's Python checker) or "registry"
    direction: str  # "backward" or "forward"
    says: bool  # what that checker says (the corpus and the offline gate say the opposite)
    reason: str


#: Every known disagreement; the tests fail on any other, and on one listed that went away.
DISAGREEMENTS: tuple[Disagreement, ...] = (
    Disagreement(
        "record_renamed_with_short_alias",
        checker="registry",
        direction="backward",
        says=True,
        reason=(
            "Avro's Java checker (the registry's) reads an alias relative to the record's "
            "namespace, as the specification allows; Apache Avro's Python checker compares aliases "
            "as written and refuses. The gate refuses too: a full-name alias works everywhere."
        ),
    ),
)
