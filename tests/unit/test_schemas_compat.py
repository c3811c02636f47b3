"""The offline compatibility gate follows the Avro resolution rules and the registry's levels."""

from __future__ import annotations

import pytest
from _evolution import CASES, Case, base

from agentflux.schemas._compat import can_read, check_levels, describe


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_backward(case: Case) -> None:
    """BACKWARD: the new schema reads data of the old one exactly when the case says so."""
    assert (check_levels(case.new, [base()], "BACKWARD") == []) is case.backward


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_forward(case: Case) -> None:
    """FORWARD: the old schema reads data of the new one exactly when the case says so."""
    assert (check_levels(case.new, [base()], "FORWARD") == []) is case.forward


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_full_is_both(case: Case) -> None:
    """FULL passes only when BACKWARD and FORWARD both pass; NONE always passes."""
    assert (check_levels(case.new, [base()], "FULL") == []) is (case.backward and case.forward)
    assert check_levels(case.new, [base()], "NONE") == []


def test_missing_default_names_field_and_rule() -> None:
    """A field added without a default is reported by name and by the rule it breaks."""
    new = next(c for c in CASES if c.name == "add_without_default").new
    lines = describe(
        "t-agentflux.test.ToolCall", "BACKWARD", check_levels(new, [base()], "BACKWARD")
    )
    expected = (
        "t-agentflux.test.ToolCall: breaks BACKWARD against v1 (new reader, old data): "
        "agent: READER_FIELD_MISSING_DEFAULT_VALUE (field 'agent' is not in the writer's schema "
        "and has no default)"
    )
    assert lines == [expected]


def test_transitive_checks_every_earlier_version() -> None:
    """A field dropped in v2 and re-added without default in v3 passes BACKWARD, not _TRANSITIVE."""
    v1 = base()
    v1["fields"].append({"name": "agent", "type": "string", "default": "x"})
    v2 = base()
    v3 = base()
    v3["fields"].append({"name": "agent", "type": "string"})
    assert check_levels(v3, [v1, v2], "BACKWARD") != []  # v2 lacks agent and v3 has no default
    v2["fields"].append({"name": "agent", "type": "string", "default": "y"})
    assert check_levels(v3, [v1, v2], "BACKWARD") == []
    v1["fields"].pop()
    assert check_levels(v3, [v1, v2], "BACKWARD_TRANSITIVE") != []


def test_promotions_and_unions() -> None:
    """Ints read as long/double, a plain writer fits a reader union, a lost branch fails."""
    assert can_read("long", "int") == []
    assert can_read("double", "int") == []
    assert can_read(["null", "string"], "string") == []
    assert can_read("int", "long")[0].rule == "TYPE_MISMATCH"
    assert can_read("string", ["null", "string"])[0].rule == "TYPE_MISMATCH"
    assert can_read(["null", "int"], "string")[0].rule == "MISSING_UNION_BRANCH"


def test_logical_types_resolve_as_their_base() -> None:
    """timestamp-millis and uuid resolve like long and string."""
    millis = {"type": "long", "logicalType": "timestamp-millis"}
    assert can_read(millis, "long") == []
    assert can_read("long", millis) == []
    assert can_read({"type": "string", "logicalType": "uuid"}, "string") == []


def test_enum_default_allows_unknown_symbols() -> None:
    """A reader enum with a default reads symbols it does not know."""
    writer = {"type": "enum", "name": "S", "symbols": ["A", "B"]}
    reader = {"type": "enum", "name": "S", "symbols": ["A"], "default": "A"}
    assert can_read(reader, writer) == []
    reader.pop("default")
    assert can_read(reader, writer)[0].rule == "MISSING_ENUM_SYMBOLS"


def test_nested_arrays_maps_and_named_references() -> None:
    """Problems inside arrays, maps and types referenced by name are found, with their path."""
    item = {"type": "record", "name": "Item", "fields": [{"name": "n", "type": "int"}]}
    writer = {
        "type": "record",
        "name": "R",
        "fields": [
            {"name": "items", "type": {"type": "array", "items": item}},
            {"name": "other", "type": "Item"},
            {"name": "tags", "type": {"type": "map", "values": "int"}},
        ],
    }
    new_item = {"type": "record", "name": "Item", "fields": [{"name": "m", "type": "int"}]}
    reader = {
        "type": "record",
        "name": "R",
        "fields": [
            {"name": "items", "type": {"type": "array", "items": new_item}},
            {"name": "other", "type": "Item"},
            {"name": "tags", "type": {"type": "map", "values": "string"}},
        ],
    }
    paths = sorted(p.path for p in can_read(reader, writer))
    assert paths == ["items[].m", "tags{}"]
