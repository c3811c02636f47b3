"""The offline compatibility gate follows the Avro resolution rules and the registry's levels."""

from __future__ import annotations

from typing import Any

import pytest
from _evolution import CASES, Case, base

from agentflux.schemas import TopicSpec, load_topics
from agentflux.schemas._compat import (
    can_read,
    check_levels,
    describe,
    enum_symbols_without_default,
)


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


def _decision(*symbols: str, default: str | None = None) -> dict[str, Any]:
    enum: dict[str, Any] = {"type": "enum", "name": "Decision", "symbols": list(symbols)}
    if default is not None:
        enum["default"] = default
    return {
        "type": "record",
        "name": "Made",
        "namespace": "agentflux.test",
        "fields": [{"name": "decision", "type": enum}],
    }


def test_a_symbol_added_without_default_names_the_enum_at_full() -> None:
    """Under FULL an added symbol is refused by naming the enum and asking for a default."""
    problems = check_levels(_decision("A", "B", "C"), [_decision("A", "B")], "FULL_TRANSITIVE")
    assert [p.rule for _, _, p in problems] == ["MISSING_ENUM_SYMBOLS"]
    assert "enum agentflux.test.Decision" in problems[0][2].detail
    assert "add a default to the enum" in problems[0][2].detail


@pytest.mark.parametrize("level", ["BACKWARD", "BACKWARD_TRANSITIVE"])
def test_the_enum_policy_holds_at_backward_levels(level: str) -> None:
    """BACKWARD alone lets a symbol through; the enum policy refuses it, naming the enum."""
    new, old = _decision("A", "B", "C"), _decision("A", "B")
    assert check_levels(new, [old], level) == []
    problems = enum_symbols_without_default(new, [old], level)
    assert [(n, p.path, p.rule) for n, _, p in problems] == [
        (1, "agentflux.test.Decision", "ENUM_SYMBOL_WITHOUT_DEFAULT")
    ]
    assert "add a default to the enum" in problems[0][2].detail


def test_a_symbol_may_be_added_once_a_default_is_released() -> None:
    """The default released first (v2) lets v3 add a symbol at every level; at once is refused."""
    v1, v2 = _decision("A", "B"), _decision("A", "B", default="A")
    v3 = _decision("A", "B", "C", default="A")
    assert check_levels(v2, [v1], "FULL_TRANSITIVE") == []
    assert check_levels(v3, [v2], "FULL_TRANSITIVE") == []
    assert enum_symbols_without_default(v3, [v2], "BACKWARD") == []
    assert check_levels(v3, [v1, v2], "FULL_TRANSITIVE") != []  # v1's readers have no default
    assert check_levels(v3, [v1], "FULL") != []
    assert enum_symbols_without_default(v3, [v1, v2], "BACKWARD_TRANSITIVE") != []
    assert enum_symbols_without_default(v3, [v1], "NONE") == []


def test_record_aliases_count_only_as_full_names() -> None:
    """A rename reads old data through a full-name alias; a short one is refused with a hint."""
    old = {"type": "record", "name": "Old", "namespace": "n", "fields": []}
    renamed = {**old, "name": "New", "aliases": ["n.Old"]}
    assert can_read(renamed, old) == []
    renamed["aliases"] = ["Old"]
    (problem,) = can_read(renamed, old)
    assert problem.rule == "NAME_MISMATCH"
    assert "full name 'n.Old'" in problem.detail


def test_shipped_topics_default_to_full_transitive() -> None:
    """Every declared topic, and a topic that names no level, is at FULL_TRANSITIVE."""
    declaration = load_topics()
    assert {t.compatibility for t in declaration.topics} == {"FULL_TRANSITIVE"}
    spec = declaration.topics[0].model_dump(exclude={"compatibility"})
    assert TopicSpec(**spec).compatibility == "FULL_TRANSITIVE"
    assert TopicSpec(**spec, compatibility="BACKWARD").compatibility == "BACKWARD"
