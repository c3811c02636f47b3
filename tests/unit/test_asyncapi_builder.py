"""The AsyncAPI builder produces documents the official AsyncAPI 3.0 JSON Schema accepts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from agentflux._asyncapi import (
    ChannelSource,
    ConsumerGroupSource,
    MessageSource,
    build_asyncapi,
)

_SCHEMA = Path(__file__).parent.parent / "data" / "asyncapi-3.0.0.schema.json"


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    """The official AsyncAPI 3.0.0 schema (vendored from the @asyncapi/specs package)."""
    return jsonschema.Draft7Validator(json.loads(_SCHEMA.read_text()))


def _document() -> dict[str, Any]:
    message = MessageSource(
        name="AgentSwitched",
        event_type="agent_switched",
        record_name="agentflux.events.agent.AgentSwitched",
        avro_schema={"type": "record", "name": "AgentSwitched", "fields": []},
        summary="An agent handed the session over to another.",
    )
    channel = ChannelSource(
        topic="agent.events",
        description="Agent events.",
        owner="runtime",
        partitions=6,
        replication_factor=3,
        configs={"cleanup.policy": "delete", "retention.ms": "604800000"},
        messages=[message],
    )
    group = ConsumerGroupSource("agentflux.context", "Session context.", ["agent.events"])
    return build_asyncapi(
        version="1.0.0",
        bootstrap_servers="127.0.0.1:9092",
        registry_url="http://127.0.0.1:8081/apis/ccompat/v7",
        channels=[channel],
        groups=[group],
        headers={"ce_id": "The event id.", "ce_type": "The event type."},
    )


def test_document_is_valid_asyncapi(validator: jsonschema.Draft7Validator) -> None:
    """A document with a channel, a message and a group has no schema errors."""
    assert list(validator.iter_errors(_document())) == []


def test_schema_catches_a_broken_binding(validator: jsonschema.Draft7Validator) -> None:
    """The validation is real: a non-integer partition count is reported."""
    document = _document()
    document["channels"]["agent_events"]["bindings"]["kafka"]["partitions"] = "six"
    assert list(validator.iter_errors(document))


def test_groups_become_receive_operations() -> None:
    """Each group reading a topic is a receive operation bound to its group id."""
    operation = _document()["operations"]["agentflux_context_consumes_agent_events"]
    assert operation["action"] == "receive"
    assert operation["bindings"]["kafka"]["groupId"]["enum"] == ["agentflux.context"]


def test_messages_declare_key_headers_and_framing() -> None:
    """Messages carry the Avro schema, the session-id key, the headers and Confluent framing."""
    message = _document()["components"]["messages"]["AgentSwitched"]
    assert message["payload"]["schema"]["name"] == "AgentSwitched"
    assert message["bindings"]["kafka"]["schemaIdPayloadEncoding"] == "confluent"
    assert message["headers"]["required"] == ["ce_id", "ce_type"]


def test_platform_document_is_valid_and_complete(validator: jsonschema.Draft7Validator) -> None:
    """`agentflux docs asyncapi` describes all 6 topics, 22 messages and 4 groups, validly."""
    from typer.testing import CliRunner  # noqa: PLC0415  # only this test drives the CLI

    from agentflux.cli import app  # noqa: PLC0415

    result = CliRunner().invoke(app, ["docs", "asyncapi"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert list(validator.iter_errors(document)) == []
    assert len(document["channels"]) == 6
    assert len(document["components"]["messages"]) == 22
    receivers = [op for op in document["operations"].values() if op["action"] == "receive"]
    assert {op["bindings"]["kafka"]["groupId"]["enum"][0] for op in receivers} == {
        "agentflux.context",
        "agentflux.metrics",
        "agentflux.audit",
        "agentflux.hitl-timeouts",
    }
    switched = document["components"]["messages"]["AgentSwitched"]
    assert "ce_id" in switched["headers"]["properties"]
    assert switched["payload"]["schema"]["name"] == "AgentSwitched"
