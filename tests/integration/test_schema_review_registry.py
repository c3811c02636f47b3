"""`agentflux schemas diff --against registry`: the review against what the real registry holds."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import TYPE_CHECKING, Any

import pytest
from typer.testing import CliRunner

from agentflux._cli_errors import ExitCode
from agentflux._schemas import default_root
from agentflux.cli import app
from agentflux.schemas import RegistryClient

if TYPE_CHECKING:
    from pathlib import Path

    from conftest import Cluster

pytestmark = pytest.mark.broker


def _only_switched(tmp_path: Path) -> tuple[Path, dict[str, Any], str]:
    """A tree holding one schema, AgentSwitched in a namespace of its own: a subject no one else uses."""
    tree = tmp_path / "avro"
    (tree / "agent").mkdir(parents=True)
    schema = json.loads((default_root() / "agent" / "AgentSwitched.avsc").read_text())
    schema["namespace"] = f"agentflux.test.review{uuid.uuid4().hex[:12]}"
    (tree / "agent" / "AgentSwitched.avsc").write_text(json.dumps(schema))
    return tree, schema, f"agent.events-{schema['namespace']}.AgentSwitched"


def test_diff_against_the_registry_reads_the_registered_versions(
    cluster: Cluster, tmp_path: Path
) -> None:
    """Unreleased against the registered v1 (exit 5), clean once v2 is registered, refused on a break."""
    tree, schema, subject = _only_switched(tmp_path)
    env = {"AGENTFLUX_REGISTRY_URL": cluster.registry_url}

    async def register(version: dict[str, Any]) -> None:
        async with RegistryClient(cluster.registry_url) as registry:
            await registry.register(subject, version)

    def diff() -> Any:
        args = ["schemas", "diff", "--against", "registry", "--root", str(tree)]
        return CliRunner().invoke(app, args, env=env)

    asyncio.run(register(schema))
    evolved = {
        **schema,
        "fields": [*schema["fields"], {"name": "priority", "type": "int", "default": 0}],
    }
    (tree / "agent" / "AgentSwitched.avsc").write_text(json.dumps(evolved))
    try:
        result = diff()
        assert result.exit_code == ExitCode.UNRELEASED, result.output
        assert result.stdout.splitlines()[:3] == [
            f"{subject}: v1 -> v2",
            "  + priority: added: int, default 0",
            "  levels that hold: BACKWARD, BACKWARD_TRANSITIVE, FORWARD, FORWARD_TRANSITIVE, FULL, FULL_TRANSITIVE",
        ]
        assert "1 changed, 0 unchanged (against the registry)" in result.stdout
        assert "agentflux schemas register" in result.stderr
        # The same tree against the history files: the schema was never released there.
        history = CliRunner().invoke(app, ["schemas", "diff", "--root", str(tree)], env=env)
        assert f"{subject}: new (no released version; it will be v1)" in history.stdout

        asyncio.run(register(evolved))
        registered = diff()
        assert registered.exit_code == ExitCode.OK, registered.output
        assert (
            "no unreleased change: 1 schema(s), all as released (the registry)" in registered.stdout
        )

        # A field without a default breaks FULL_TRANSITIVE against both registered versions.
        broken = {**evolved, "fields": [*evolved["fields"], {"name": "level", "type": "int"}]}
        (tree / "agent" / "AgentSwitched.avsc").write_text(json.dumps(broken))
        refused = diff()
        assert refused.exit_code == ExitCode.FAILED, refused.output
        assert f"{subject}: v2 -> v3" in refused.stdout
        assert f"{subject}: breaks FULL_TRANSITIVE against v1" in refused.stdout
        assert f"{subject}: breaks FULL_TRANSITIVE against v2" in refused.stdout
    finally:
        asyncio.run(_forget(cluster.registry_url, subject))


async def _forget(registry_url: str, subject: str) -> None:
    async with RegistryClient(registry_url) as registry:
        await registry.delete_subject(subject, permanent=True)
