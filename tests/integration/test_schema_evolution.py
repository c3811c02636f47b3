"""Schema evolution through the real registry: refused when breaking, readable both ways when not."""

from __future__ import annotations

import io
import json
from typing import TYPE_CHECKING, Any

import fastavro
import pytest
from _evolution import CASES, Case, base

from agentflux.schemas import IncompatibleSchemaError, RegistryClient

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from conftest import Cluster

pytestmark = pytest.mark.broker

_V1_DATUM = {"call_id": "c-1", "attempts": 2, "status": "OK", "note": None}


@pytest.fixture
async def registry(cluster: Cluster) -> AsyncIterator[RegistryClient]:
    """A registry client on the test cluster's registry."""
    async with RegistryClient.from_settings(cluster.settings) as client:
        yield client


def _write(schema: dict[str, Any], datum: dict[str, Any]) -> bytes:
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(schema), datum)
    return body.getvalue()


async def _read(
    registry: RegistryClient, writer_id: int, reader: dict[str, Any], data: bytes
) -> Any:
    # The writer's schema comes from the registry by id, as a consumer would fetch it.
    writer = fastavro.parse_schema(json.loads(await registry.get_schema(writer_id)))
    return fastavro.schemaless_reader(io.BytesIO(data), writer, fastavro.parse_schema(reader))


def _datum_for(schema: dict[str, Any]) -> dict[str, Any]:
    values = {
        "call_id": "c-2",
        "tool_call_id": "c-2",
        "attempts": 3,
        "status": "FAILED",
        "note": "n",
        "agent": "coder",
    }
    return {f["name"]: values[f["name"]] for f in schema["fields"]}


@pytest.mark.parametrize("level", ["BACKWARD", "FORWARD"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
async def test_registry_agrees_with_the_offline_gate(
    registry: RegistryClient, topic_name: str, case: Case, level: str
) -> None:
    """The registry accepts v2 exactly when the offline checker does, at BACKWARD and FORWARD."""
    subject = f"{topic_name}-{level.lower()}-agentflux.test.ToolCall"
    await registry.register(subject, base())
    await registry.set_compatibility(subject, level)
    allowed = case.backward if level == "BACKWARD" else case.forward
    problems = await registry.check_compatibility(subject, case.new)
    assert (problems == []) is allowed, problems
    if allowed:
        await registry.register(subject, case.new)
        assert len(await registry.get_versions(subject)) == 2
    else:
        with pytest.raises(IncompatibleSchemaError):
            await registry.register(subject, case.new)
        assert len(await registry.get_versions(subject)) == 1  # nothing was registered


@pytest.mark.parametrize("case", [c for c in CASES if c.backward], ids=lambda c: c.name)
async def test_new_reader_reads_old_data(
    registry: RegistryClient, topic_name: str, case: Case
) -> None:
    """Under BACKWARD, data written with v1 reads with v2 (defaults filled, aliases followed)."""
    subject = f"{topic_name}-agentflux.test.ToolCall"
    await registry.set_compatibility(subject, "BACKWARD")
    old_id = await registry.register(subject, base())
    await registry.register(subject, case.new)
    read = await _read(registry, old_id, case.new, _write(base(), _V1_DATUM))
    for field in case.new["fields"]:
        source = next(
            (n for n in [field["name"], *field.get("aliases", [])] if n in _V1_DATUM), None
        )
        expected = _V1_DATUM[source] if source else field["default"]
        assert read[field["name"]] == expected


@pytest.mark.parametrize("case", [c for c in CASES if c.forward], ids=lambda c: c.name)
async def test_old_reader_reads_new_data(
    registry: RegistryClient, topic_name: str, case: Case
) -> None:
    """Under FORWARD, data written with v2 reads with v1 (unknown fields skipped)."""
    subject = f"{topic_name}-agentflux.test.ToolCall"
    await registry.set_compatibility(subject, "FORWARD")
    await registry.register(subject, base())
    new_id = await registry.register(subject, case.new)
    datum = _datum_for(case.new)
    read = await _read(registry, new_id, base(), _write(case.new, datum))
    for field in base()["fields"]:
        assert read[field["name"]] == datum.get(field["name"], field.get("default"))
