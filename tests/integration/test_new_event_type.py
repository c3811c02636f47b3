"""Adding an event type: one .avsc file, regenerate, and the codec carries it through the registry."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import Cluster

pytestmark = [pytest.mark.broker, pytest.mark.slow]

_PROJECT = Path(__file__).parents[2]

# An editable install maps agentflux.contract to the repository's schemas/ by name, ahead of the
# path: the copy must not see it.
_COPY_ONLY = """
import sys
sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in repr(f)]
"""

_GENERATE = _COPY_ONLY + "from agentflux.cli import main; main()"

_ROUND_TRIP = (
    _COPY_ONLY
    + """
import asyncio, os
import agentflux
from agentflux.kafka import AgentfluxSettings
from agentflux.schemas import EVENT_MODELS, AvroCodec, EventType, RegistryClient, event_model

import agentflux.contract
for module in (agentflux, agentflux.contract):  # the copy, not the repository
    assert module.__file__.startswith(sys.argv[1]), module.__file__
model = event_model("tool_execution_cancelled")
assert model.__name__ == "ToolExecutionCancelledEvent" and model.TOPIC == "tool.events"
assert len(EVENT_MODELS) == 23 and EventType.TOOL_EXECUTION_CANCELLED.category == "tool"

async def main():
    async with RegistryClient.from_settings(AgentfluxSettings()) as registry:
        codec = AvroCodec(registry, auto_register=True)
        event = model(session_id="s-1", call_id="c-1", tool_name="write_file", reason="user")
        data = await codec.encode(event, os.environ["TOPIC"])
        back = await codec.decode(data)
        assert back == event, (back, event)
        print("round trip:", sorted(back.data.items()))

asyncio.run(main())
"""
)


def _new_schema(root: Path) -> None:
    """ToolExecutionCancelled: the shape of ToolExecutionStarted plus a reason."""
    schema = json.loads((root / "tool" / "ToolExecutionStarted.avsc").read_text())
    schema |= {"name": "ToolExecutionCancelled", "doc": "A tool call was cancelled."}
    for field in schema["fields"]:
        if field["name"] == "event_type":
            field["default"] = "tool_execution_cancelled"
    schema["fields"].append(
        {"name": "reason", "type": "string", "agentflux.constraint": "text", "default": ""}
    )
    (root / "tool" / "ToolExecutionCancelled.avsc").write_text(json.dumps(schema, indent=2))


def test_a_new_event_type_needs_one_avsc_file_and_a_regeneration(
    tmp_path: Path, cluster: Cluster
) -> None:
    """In a copy of the project, a new .avsc plus `schemas generate` gives a working event type."""
    source = tmp_path / "src"
    shutil.copytree(
        _PROJECT / "agentflux", source / "agentflux", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copytree(_PROJECT / "schemas", source / "agentflux" / "contract")
    _new_schema(source / "agentflux" / "contract" / "avro")
    env = {
        **os.environ,
        "PYTHONPATH": str(source),
        "AGENTFLUX_REGISTRY_URL": cluster.settings.registry_url,
        "TOPIC": f"test-new-type-{uuid.uuid4().hex[:8]}.tool.events",
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        # In tmp_path, not the repository: `python -c` puts the working folder first on the path.
        return subprocess.run(
            [sys.executable, "-c", *args],
            check=False,
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
        )

    generated = run(_GENERATE, "schemas", "generate")
    assert generated.returncode == 0, generated.stderr
    written = {Path(line.removeprefix("wrote ")).name for line in generated.stdout.splitlines()}
    # The new schema's envelope copy, the catalogue and the models: nothing else changes.
    assert written == {"ToolExecutionCancelled.avsc", "_catalogue.py", "_events.py"}
    round_trip = run(_ROUND_TRIP, str(source))
    assert round_trip.returncode == 0, round_trip.stderr
    assert "('reason', 'user')" in round_trip.stdout
