"""`agentflux schemas diff|release`: the review of schema changes, its exit codes, and releases."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from agentflux._cli_errors import ExitCode
from agentflux._schema_review import avsc_text, reading_groups, schema_changes
from agentflux._schemas import default_root
from agentflux.cli import app
from agentflux.schemas import EventCategory

_SWITCHED = "agentflux.events.agent.AgentSwitched"
_DECISION = "agentflux.events.hitl.HitlDecisionMade"
_ALL_LEVELS = "BACKWARD, BACKWARD_TRANSITIVE, FORWARD, FORWARD_TRANSITIVE, FULL, FULL_TRANSITIVE"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of schemas/avro as of its first release (v1 current and only), to change."""
    root = Path(shutil.copytree(default_root(), tmp_path / "avro"))
    for released in (root / "history").iterdir():
        for later in released.glob("v*.avsc"):
            if later.name != "v1.avsc":
                later.unlink()
        v1 = json.loads((released / "v1.avsc").read_text())
        category = v1["namespace"].rpartition(".")[2]
        (root / category / f"{v1['name']}.avsc").write_text((released / "v1.avsc").read_text())
    return root


def _edit(tree: Path, relative: str, change: Any) -> None:
    """Load one .avsc of the copy, let ``change`` edit it, write it back (compact, as an editor may)."""
    path = tree / relative
    schema = json.loads(path.read_text())
    change(schema)
    path.write_text(json.dumps(schema))


def _field(schema: dict[str, Any], name: str) -> dict[str, Any]:
    return next(f for f in schema["fields"] if f["name"] == name)


def _evolve_switched(schema: dict[str, Any]) -> None:
    """A compatible change: a field added with a default, one removed, a doc changed."""
    schema["fields"].append(
        {"name": "priority", "type": "int", "default": 0, "doc": "How urgent the hand-over is."}
    )
    schema["fields"].remove(_field(schema, "reason"))
    _field(schema, "to_agent")["doc"] = "The agent that takes over."


def _add_escalated(schema: dict[str, Any]) -> None:
    _field(schema, "decision")["type"]["symbols"].append("ESCALATED")


def _files(tree: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(tree)): p.read_bytes() for p in sorted((tree / "history").glob("*/*"))
    }


def _run(*args: str) -> Any:
    return CliRunner().invoke(app, ["schemas", *args])


def test_diff_on_the_project_tree_finds_nothing_unreleased() -> None:
    """The committed schemas are all released: diff exits 0 and says so."""
    result = _run("diff")
    assert result.exit_code == ExitCode.OK, result.output
    assert "no unreleased change: 22 schema(s), all as released" in result.stdout


def test_diff_text_names_fields_defaults_levels_and_readers(tree: Path) -> None:
    """Each changed field with its default and doc, the levels, the policy and the groups reading it."""
    _edit(tree, "agent/AgentSwitched.avsc", _evolve_switched)
    result = _run("diff", "--root", str(tree))
    assert result.exit_code == ExitCode.UNRELEASED, result.output
    assert result.stdout.splitlines()[:7] == [
        f"agent.events-{_SWITCHED}: v1 -> v2",
        '  ~ to_agent: doc: none -> "The agent that takes over."',
        '  + priority: added: int, default 0, doc "How urgent the hand-over is."',
        '  - reason: removed: string, default ""',
        f"  levels that hold: {_ALL_LEVELS}",
        "  policy: FULL_TRANSITIVE holds",
        "  read by: agentflux.context, agentflux.metrics, agentflux.audit",
    ]
    assert "1 changed, 21 unchanged (against the released history)" in result.stdout
    assert "1 schema(s) changed and not released" in result.stderr
    assert "agentflux schemas release" in result.stderr


def test_the_evolution_page_shows_what_diff_prints(tree: Path) -> None:
    """The example on the Schema evolution page is the output of this very change."""
    page = (Path(__file__).resolve().parents[2] / "docs" / "schema-evolution.md").read_text()
    example = page.split("```text\n$ agentflux schemas diff\n", 1)[1].split("```", 1)[0]
    _edit(tree, "agent/AgentSwitched.avsc", _evolve_switched)
    assert _run("diff", "--root", str(tree)).stdout == example


def test_diff_markdown_has_a_table_per_schema(tree: Path) -> None:
    """Markdown for a pull request: a heading and a table of field changes, levels, policy, readers."""
    _edit(tree, "agent/AgentSwitched.avsc", _evolve_switched)
    _edit(tree, "system/SystemStartup.avsc", lambda s: s["fields"].append(_nullable("region")))
    result = _run("diff", "--root", str(tree), "--format", "markdown")
    assert result.exit_code == ExitCode.UNRELEASED, result.output
    out = result.stdout
    assert out.startswith("## Schema changes against the released history\n")
    assert f"### `agent.events-{_SWITCHED}`: v1 → v2" in out
    assert "| field | change | before | after |\n|---|---|---|---|\n" in out
    assert '| `priority` | added |  | `int, default 0, doc "How urgent the hand-over is."` |' in out
    assert '| `reason` | removed | `string, default ""` |  |' in out
    assert '| `to_agent` | doc | `none` | `"The agent that takes over."` |' in out
    assert "**Levels:** ✅ BACKWARD · ✅ BACKWARD_TRANSITIVE · ✅ FORWARD" in out
    assert "**Policy:** ✅ `FULL_TRANSITIVE` holds" in out
    # The context group does not read system events: the readers follow each group's topics.
    system = out[out.index("agentflux.events.system.SystemStartup") :]
    assert "| `region` | added |  | `null \\| string, default null` |" in system
    assert "**Read by:** `agentflux.metrics`, `agentflux.audit`\n" in system
    assert (
        out.count("**Read by:** `agentflux.context`, `agentflux.metrics`, `agentflux.audit`") == 1
    )


def _nullable(name: str) -> dict[str, Any]:
    return {"name": name, "type": ["null", "string"], "default": None}


def test_diff_refuses_an_enum_symbol_without_a_default(tree: Path) -> None:
    """ESCALATED without an enum default: the symbol is shown, no level holds, exit 1 with the rule."""
    _edit(tree, "hitl/HitlDecisionMade.avsc", _add_escalated)
    result = _run("diff", "--root", str(tree))
    assert result.exit_code == ExitCode.FAILED, result.output
    assert "  ~ decision: enum symbols added: ESCALATED" in result.stdout
    assert "  levels that hold: none" in result.stdout
    assert f"  levels that break: {_ALL_LEVELS}" in result.stdout
    assert "  policy: FULL_TRANSITIVE breaks" in result.stdout
    assert f"hitl.events-{_DECISION}: breaks FULL_TRANSITIVE against v1" in result.stdout
    assert "MISSING_ENUM_SYMBOLS" in result.stdout
    assert "1 incompatible change(s)" in result.stderr


def test_diff_accepts_a_symbol_once_the_released_enum_has_a_default(tree: Path) -> None:
    """With a default in the released v1, ESCALATED added is compatible at every level."""

    def with_default(schema: dict[str, Any]) -> None:
        _field(schema, "decision")["type"]["default"] = "REJECTED"

    history = tree / "history" / _DECISION / "v1.avsc"
    released = json.loads(history.read_text())
    with_default(released)
    history.write_text(avsc_text(released))
    _edit(tree, "hitl/HitlDecisionMade.avsc", with_default)
    _edit(tree, "hitl/HitlDecisionMade.avsc", _add_escalated)
    result = _run("diff", "--root", str(tree))
    assert result.exit_code == ExitCode.UNRELEASED, result.output
    assert "  ~ decision: enum symbols added: ESCALATED" in result.stdout
    assert f"  levels that hold: {_ALL_LEVELS}" in result.stdout
    assert "enum default" not in result.stdout  # the default itself did not change


def test_diff_shows_an_enum_default_added(tree: Path) -> None:
    """Step one of adding a symbol, the enum default alone, is shown and compatible."""
    _edit(
        tree,
        "hitl/HitlDecisionMade.avsc",
        lambda s: _field(s, "decision")["type"].update(default="REJECTED"),
    )
    result = _run("diff", "--root", str(tree))
    assert result.exit_code == ExitCode.UNRELEASED, result.output
    assert '  ~ decision: enum default: none -> "REJECTED"' in result.stdout
    assert "  policy: FULL_TRANSITIVE holds" in result.stdout


def test_diff_lists_a_schema_without_history_as_new(tree: Path) -> None:
    """A schema never released is listed as new, with its readers, and counts as unreleased."""
    shutil.rmtree(tree / "history" / _SWITCHED)
    result = _run("diff", "--root", str(tree))
    assert result.exit_code == ExitCode.UNRELEASED, result.output
    assert f"agent.events-{_SWITCHED}: new (no released version; it will be v1)" in result.stdout
    assert "levels that hold" not in result.stdout


def test_release_writes_v2_of_the_changed_schema_only_and_once(tree: Path) -> None:
    """Release writes exactly v2 of the changed schema, in the released files' format; a second run writes nothing."""
    _edit(tree, "agent/AgentSwitched.avsc", _evolve_switched)
    before = _files(tree)
    result = _run("release", "--root", str(tree))
    assert result.exit_code == ExitCode.OK, result.output
    assert result.stdout == f"wrote history/{_SWITCHED}/v2.avsc\n"
    after = _files(tree)
    assert sorted(set(after) - set(before)) == [f"history/{_SWITCHED}/v2.avsc"]
    assert all(after[name] == content for name, content in before.items())
    current = json.loads((tree / "agent" / "AgentSwitched.avsc").read_text())
    written = after[f"history/{_SWITCHED}/v2.avsc"].decode()
    assert json.loads(written) == current
    # The released files' own format: two-space JSON ending in one newline, as v1 is.
    v1 = before[f"history/{_SWITCHED}/v1.avsc"].decode()
    assert v1 == avsc_text(json.loads(v1))
    assert written == avsc_text(current)
    assert written.startswith('{\n  "type": "record",\n')

    again = _run("release", "--root", str(tree))
    assert again.exit_code == ExitCode.OK, again.output
    assert "nothing to release" in again.stdout
    assert _files(tree) == after
    assert _run("diff", "--root", str(tree)).exit_code == ExitCode.OK


def test_release_gives_a_new_schema_v1(tree: Path) -> None:
    """A schema with no history is released as v1."""
    shutil.rmtree(tree / "history" / _SWITCHED)
    result = _run("release", "--root", str(tree))
    assert result.exit_code == ExitCode.OK, result.output
    assert result.stdout == f"wrote history/{_SWITCHED}/v1.avsc\n"
    assert (tree / "history" / _SWITCHED / "v1.avsc").is_file()


def test_release_dry_run_writes_nothing(tree: Path) -> None:
    """--dry-run says what it would write and writes nothing."""
    _edit(tree, "agent/AgentSwitched.avsc", _evolve_switched)
    before = _files(tree)
    result = _run("release", "--root", str(tree), "--dry-run")
    assert result.exit_code == ExitCode.OK, result.output
    assert result.stdout == f"would write history/{_SWITCHED}/v2.avsc\n"
    assert _files(tree) == before


def test_release_refuses_all_when_one_change_breaks_its_level(tree: Path) -> None:
    """One breaking change: nothing is written, not even the compatible changes."""
    _edit(tree, "agent/AgentSwitched.avsc", _evolve_switched)
    _edit(tree, "hitl/HitlDecisionMade.avsc", _add_escalated)
    before = _files(tree)
    result = _run("release", "--root", str(tree))
    assert result.exit_code == ExitCode.FAILED, result.output
    assert "MISSING_ENUM_SYMBOLS" in result.stderr
    assert "nothing was released" in result.stderr
    assert _files(tree) == before


def test_release_never_overwrites_a_released_file(tree: Path) -> None:
    """A history with a gap (v1, v3): the next file would be v3, which exists, so it is refused."""
    folder = tree / "history" / _SWITCHED
    shutil.copy(folder / "v1.avsc", folder / "v3.avsc")
    _edit(tree, "agent/AgentSwitched.avsc", _evolve_switched)
    before = _files(tree)
    result = _run("release", "--root", str(tree))
    assert result.exit_code == ExitCode.FAILED, result.output
    assert f"history/{_SWITCHED}/v3.avsc exists already" in result.stderr
    assert _files(tree) == before


@pytest.mark.parametrize("command", ["diff", "release"])
def test_a_root_that_does_not_exist_is_a_usage_error(tmp_path: Path, command: str) -> None:
    """A mistyped --root is refused (exit 2), never taken for a tree with nothing changed."""
    result = _run(command, "--root", str(tmp_path / "nowhere"))
    assert result.exit_code == ExitCode.USAGE, result.output
    # Typer draws the error in a box as wide as the terminal: a long path wraps the message.
    words = " ".join(re.sub("[│╭╮╰╯─]", " ", result.output).split())
    assert "does not exist" in words


def _record(*fields: dict[str, Any], **attributes: Any) -> dict[str, Any]:
    return {"type": "record", "name": "R", "namespace": "t", "fields": list(fields), **attributes}


def _said(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    return [(c.path, c.what, c.before, c.after) for c in schema_changes(old, new)]


def test_changes_inside_nested_records_unions_and_arrays() -> None:
    """Nested fields are named by their path; union branches and array items by their place."""
    inner = {"type": "record", "name": "Inner", "fields": [{"name": "a", "type": "int"}]}
    old = _record(
        {"name": "box", "type": ["null", inner], "default": None},
        {"name": "tags", "type": {"type": "array", "items": "int"}},
        {"name": "value", "type": ["null", "string"], "default": None},
    )
    new_inner = {
        **inner,
        "fields": [{"name": "a", "type": "long"}, {"name": "b", "type": "string"}],
    }
    new = _record(
        {"name": "box", "type": ["null", new_inner], "default": None},
        {"name": "tags", "type": {"type": "array", "items": "long"}},
        {"name": "value", "type": ["null", "string", "long"], "default": None},
    )
    assert _said(old, new) == [
        ("box.a", "type", "int", "long"),
        ("box.b", "added", "", "string, no default"),
        ("tags[]", "type", "int", "long"),
        ("value", "union branches added", "", "long"),
    ]


def test_changes_to_records_renames_order_and_logical_types() -> None:
    """A rename through an alias, a logical type, the field order and the record's doc are each said."""
    old = _record(
        {"name": "at", "type": "long"},
        {"name": "who", "type": "string"},
        doc="Old.",
    )
    new = _record(
        {"name": "user", "type": "string", "aliases": ["who"]},
        {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        doc="New.",
    )
    assert _said(old, new) == [
        ("", "record doc", '"Old."', '"New."'),
        ("user", "renamed", "who", "user"),
        ("user", "aliases", "none", '["who"]'),
        ("at", "type", "long", "long (timestamp-millis)"),
        ("", "field order", "at, who", "user, at"),
    ]


def test_the_groups_reading_a_type_follow_their_categories() -> None:
    """Context reads agent, session, tool and hitl; metrics and audit read every category."""
    assert reading_groups(EventCategory.AGENT) == (
        "agentflux.context",
        "agentflux.metrics",
        "agentflux.audit",
    )
    assert reading_groups(EventCategory.SYSTEM) == ("agentflux.metrics", "agentflux.audit")
