"""The compatibility gate from the command line: offline check, and registration all-or-nothing."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from typer.testing import CliRunner

from agentflux._schemas import default_root
from agentflux.cli import app
from agentflux.schemas import RegistryClient

if TYPE_CHECKING:
    from conftest import Cluster

_RECORD = "agentflux.events.agent.AgentSwitched"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of schemas/avro that a test may break."""
    return Path(shutil.copytree(default_root(), tmp_path / "avro"))


def _add_field(tree: Path, field: dict[str, object]) -> None:
    path = tree / "agent" / "AgentSwitched.avsc"
    schema = json.loads(path.read_text())
    schema["fields"].append(field)
    path.write_text(json.dumps(schema))


def test_check_passes_on_the_project_tree() -> None:
    """The committed schemas are compatible with their released versions."""
    result = CliRunner().invoke(app, ["schemas", "check"])
    assert result.exit_code == 0, result.output
    assert "all schemas compatible" in result.output


def test_check_names_subject_field_and_rule(tree: Path) -> None:
    """A field added without default fails with the subject, the field and the rule."""
    _add_field(tree, {"name": "priority", "type": "int"})
    result = CliRunner().invoke(app, ["schemas", "check", "--root", str(tree)])
    assert result.exit_code == 1
    assert f"agent.events-{_RECORD}: breaks FULL_TRANSITIVE against v1" in result.output
    assert "priority: READER_FIELD_MISSING_DEFAULT_VALUE" in result.output


def test_check_accepts_a_compatible_change_and_asks_for_release(tree: Path) -> None:
    """A field added with a default passes, with a note to release it as the next version."""
    _add_field(tree, {"name": "priority", "type": "int", "default": 0})
    result = CliRunner().invoke(app, ["schemas", "check", "--root", str(tree)])
    assert result.exit_code == 0, result.output
    released = len(list((tree / "history" / _RECORD).glob("v*.avsc")))
    assert f"history/{_RECORD}/v{released + 1}.avsc" in result.output


def test_check_refuses_an_enum_symbol_added_without_default(tree: Path) -> None:
    """ESCALATED added to the HITL decision fails, naming the enum and asking for a default."""
    path = tree / "hitl" / "HitlDecisionMade.avsc"
    schema = json.loads(path.read_text())
    decision = next(f for f in schema["fields"] if f["name"] == "decision")
    decision["type"]["symbols"].append("ESCALATED")
    path.write_text(json.dumps(schema))
    result = CliRunner().invoke(app, ["schemas", "check", "--root", str(tree)])
    assert result.exit_code == 1
    assert "breaks FULL_TRANSITIVE against v1 (old reader, new data)" in result.output
    assert "enum agentflux.events.hitl.HitlDecision" in result.output
    assert "add a default to the enum" in result.output


@pytest.mark.broker
def test_register_all_then_refuse_a_breaking_change(cluster: Cluster, tree: Path) -> None:
    """Registration sets levels and registers all 22; a breaking tree registers nothing."""
    env = {
        "AGENTFLUX_BOOTSTRAP_SERVERS": cluster.bootstrap_servers,
        "AGENTFLUX_REGISTRY_URL": cluster.registry_url,
    }
    subject = f"agent.events-{_RECORD}"

    async def registry_view() -> tuple[str | None, list[int], list[str]]:
        async with RegistryClient(cluster.registry_url) as registry:
            return (
                await registry.get_compatibility(subject),
                await registry.get_versions(subject),
                await registry.subjects(),
            )

    result = CliRunner().invoke(app, ["schemas", "register"], env=env)
    assert result.exit_code == 0, result.output
    level, before, subjects = asyncio.run(registry_view())
    assert level == "FULL_TRANSITIVE"
    categories = ("agent.", "session.", "tool.", "hitl.", "system.", "metrics.")
    assert (
        len([s for s in subjects if s.startswith(categories) and "-agentflux.events." in s]) == 22
    )

    _add_field(tree, {"name": "priority", "type": "int"})
    refused = CliRunner().invoke(app, ["schemas", "register", "--root", str(tree)], env=env)
    assert refused.exit_code == 1
    assert "priority" in refused.output
    assert "nothing was registered" in refused.output
    assert asyncio.run(registry_view())[1] == before
