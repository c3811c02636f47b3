"""Registration only through the gate: publishers look schemas up, `schemas register` registers.

Each test uses a topic prefix of its own, so its subjects (``<prefix><topic>-<record>``) start
empty on the shared registry and no other test sees them.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from _registration import register_shipped_schemas
from conftest import create_topic, read_to_end
from typer.testing import CliRunner

from agentflux._cli_errors import ExitCode
from agentflux._schemas import default_root, schema_files
from agentflux.cli import app
from agentflux.producers import (
    EventPublisher,
    SchemaNotRegisteredError,
    SchemaRegistrationError,
    SessionCreatedEvent,
    ToolExecutionRequestedEvent,
)
from agentflux.schemas import (
    EVENT_MODELS,
    AgentSwitchedEvent,
    EventCategory,
    RegistryClient,
    load_schema,
)

if TYPE_CHECKING:
    from click.testing import Result
    from conftest import Cluster

    from agentflux.kafka import AgentfluxSettings

pytestmark = pytest.mark.broker

_TOOL_REQUESTED = "tool.events-agentflux.events.tool.ToolExecutionRequested"
_AGENT_SWITCHED = "agent.events-agentflux.events.agent.AgentSwitched"
_SESSION_CREATED = "session.events-agentflux.events.session.SessionCreated"
_COMMAND = "`agentflux schemas register`"


@pytest.fixture
async def fresh(cluster: Cluster) -> AgentfluxSettings:
    """Settings under a new prefix: its six category topics exist, no subject of it does."""
    settings = cluster.settings.model_copy(update={"topic_prefix": f"g{uuid.uuid4().hex[:8]}."})
    for category in EventCategory:
        await create_topic(settings, settings.topic_prefix + category.topic, partitions=1)
    return settings


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of schemas/avro that a test may change."""
    return Path(shutil.copytree(default_root(), tmp_path / "avro"))


def _with_field(source: Path, target: Path, field: dict[str, object]) -> Path:
    """``target``, a copy of the tree ``source`` with ``field`` added to AgentSwitched."""
    if target != source:
        shutil.copytree(source, target)
    path = target / "agent" / "AgentSwitched.avsc"
    schema = json.loads(path.read_text())
    schema["fields"].append(field)
    path.write_text(json.dumps(schema))
    return target


async def _register(settings: AgentfluxSettings, *args: str) -> Result:
    """``agentflux schemas register ARGS`` in-process, pointed at ``settings``' registry and prefix.

    In a thread: the command runs its own event loop, as from a shell.
    """
    env = {
        "AGENTFLUX_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "AGENTFLUX_REGISTRY_URL": settings.registry_url,
        "AGENTFLUX_TOPIC_PREFIX": settings.topic_prefix,
    }
    return await asyncio.to_thread(CliRunner().invoke, app, ["schemas", "register", *args], env=env)


async def _registry_view(settings: AgentfluxSettings) -> dict[str, tuple[str | None, list[int]]]:
    """Each subject of the prefix: its own level and its versions."""
    async with RegistryClient.from_settings(settings) as registry:
        subjects = [s for s in await registry.subjects() if s.startswith(settings.topic_prefix)]
        return {
            subject: (
                await registry.get_compatibility(subject),
                await registry.get_versions(subject),
            )
            for subject in subjects
        }


async def _topics_empty(settings: AgentfluxSettings) -> bool:
    topics = [settings.topic_prefix + category.topic for category in EventCategory]
    return await read_to_end(settings, topics) == []


async def test_unregistered_type_fails_at_prepare_then_works_after_schemas_register(
    fresh: AgentfluxSettings,
) -> None:
    """Unregistered: prepare() and publishes name subject and command; registered: it publishes."""
    subject = fresh.topic_prefix + _TOOL_REQUESTED
    event = ToolExecutionRequestedEvent(
        session_id="s-1", call_id="c-1", tool_name="grep", agent="coder", arguments="{}"
    )
    async with EventPublisher(fresh) as publisher:
        with pytest.raises(SchemaNotRegisteredError) as one:
            await publisher.prepare([ToolExecutionRequestedEvent])
        assert one.value.subjects == (subject,)
        assert f"no schema is registered under {subject}" in str(one.value)
        assert _COMMAND in str(one.value)
        assert isinstance(one.value, SchemaRegistrationError)  # what callers caught before
        with pytest.raises(SchemaNotRegisteredError) as every:
            await publisher.prepare()
        assert len(every.value.subjects) == len(EVENT_MODELS)
        assert all(s.startswith(fresh.topic_prefix) for s in every.value.subjects)
        for attempt in (publisher.publish, publisher.send, publisher.enqueue):
            with pytest.raises(SchemaNotRegisteredError, match=subject):
                await attempt(event)
        await publisher.flush()
        assert await _topics_empty(fresh)
        assert await _registry_view(fresh) == {}  # the publisher registered nothing

        registered = await _register(fresh)
        assert registered.exit_code == 0, registered.output
        assert f"{subject}: set level FULL_TRANSITIVE" in registered.output

        assert await publisher.prepare() == len(EVENT_MODELS)
        stored = await publisher.publish(event)
    assert stored.topic == fresh.topic_prefix + "tool.events"
    levels = {item.subject: item.level for item in schema_files(topic_prefix=fresh.topic_prefix)}
    view = await _registry_view(fresh)
    assert {subject: level for subject, (level, _) in view.items()} == levels
    assert set(levels.values()) == {"FULL_TRANSITIVE"}  # the shipped policy
    assert all(versions == [1] for _, versions in view.values())


async def test_a_schema_other_than_the_registered_ones_is_refused_naming_the_subject(
    fresh: AgentfluxSettings,
) -> None:
    """The registry holds another version of the subject: prepare() says so, and sends nothing."""
    subject = fresh.topic_prefix + _AGENT_SWITCHED
    changed = load_schema(AgentSwitchedEvent)
    changed["fields"].append({"name": "priority", "type": "int", "default": 0})
    async with RegistryClient.from_settings(fresh) as registry:
        await registry.register(subject, changed)  # a release this process does not ship
    event = AgentSwitchedEvent(session_id="s-1", from_agent="a", to_agent="b")
    async with EventPublisher(fresh) as publisher:
        with pytest.raises(SchemaNotRegisteredError) as refused:
            await publisher.prepare([AgentSwitchedEvent])
        with pytest.raises(SchemaNotRegisteredError, match="other versions"):
            await publisher.publish(event)
    message = str(refused.value)
    assert f"{subject} has other versions (v1) but not this process's schema" in message
    assert "`agentflux schemas check`" in message
    assert _COMMAND in message
    assert refused.value.versions == {subject: (1,)}
    assert await _topics_empty(fresh)


async def test_auto_register_is_an_explicit_opt_in(fresh: AgentfluxSettings) -> None:
    """AGENTFLUX_AUTO_REGISTER_SCHEMAS=true lets a development publisher register its schemas."""
    settings = fresh.model_copy(update={"auto_register_schemas": True})
    async with EventPublisher(settings) as publisher:
        assert await publisher.prepare([AgentSwitchedEvent]) == 1
        await publisher.publish(AgentSwitchedEvent(session_id="s-1", from_agent="a", to_agent="b"))
    assert list(await _registry_view(fresh)) == [fresh.topic_prefix + _AGENT_SWITCHED]


async def test_register_refuses_a_change_the_gate_refuses_and_touches_nothing(
    fresh: AgentfluxSettings, tree: Path
) -> None:
    """A field added without a default: refused offline, no subject registered or configured."""
    _with_field(tree, tree, {"name": "priority", "type": "int"})
    refused = await _register(fresh, "--root", str(tree))
    assert refused.exit_code == 1
    assert f"{fresh.topic_prefix}{_AGENT_SWITCHED}: breaks FULL_TRANSITIVE" in refused.output
    assert "priority: READER_FIELD_MISSING_DEFAULT_VALUE" in refused.output
    assert "nothing was registered" in refused.output
    assert await _registry_view(fresh) == {}


async def test_register_refuses_what_the_registry_refuses_and_changes_nothing(
    fresh: AgentfluxSettings, tree: Path, tmp_path: Path
) -> None:
    """A change the registry's versions refuse: field named, nothing registered, levels kept."""
    released = _with_field(
        tree, tmp_path / "released", {"name": "priority", "type": "int", "default": 0}
    )
    assert (await _register(fresh, "--root", str(released))).exit_code == 0
    session_subject = fresh.topic_prefix + _SESSION_CREATED
    async with RegistryClient.from_settings(fresh) as registry:
        await registry.set_compatibility(session_subject, "BACKWARD")  # to be put back after
    before = await _registry_view(fresh)
    clashing = _with_field(
        tree, tmp_path / "clashing", {"name": "priority", "type": "string", "default": ""}
    )

    dry = await _register(fresh, "--root", str(clashing), "--dry-run")
    refused = await _register(fresh, "--root", str(clashing))

    for result in (dry, refused):
        assert result.exit_code == 1
        assert f"by the registry: {fresh.topic_prefix}{_AGENT_SWITCHED}: breaks" in result.output
        assert "priority: TYPE_MISMATCH" in result.output
    assert "nothing would be registered" in dry.output
    assert "nothing was registered and no level changed" in refused.output
    assert await _registry_view(fresh) == before
    assert before[session_subject][0] == "BACKWARD"


async def test_dry_run_says_what_it_would_do_and_does_nothing(fresh: AgentfluxSettings) -> None:
    """--dry-run on an empty prefix: every subject would get its level and a first version."""
    dry = await _register(fresh, "--dry-run")
    assert dry.exit_code == 0, dry.output
    subject = fresh.topic_prefix + _TOOL_REQUESTED
    assert f"{subject}: would set level FULL_TRANSITIVE" in dry.output
    assert f"{subject}: would register a new version (its first)" in dry.output
    assert await _registry_view(fresh) == {}
    await register_shipped_schemas(fresh)
    again = await _register(fresh, "--dry-run")
    assert again.exit_code == 0, again.output
    assert f"{subject}: registered already, id" in again.output
    assert "would" not in again.output


async def test_registering_again_changes_nothing(fresh: AgentfluxSettings) -> None:
    """`schemas register` twice: the same ids, one version per subject, as a CI rerun needs."""
    first = await register_shipped_schemas(fresh)
    before = await _registry_view(fresh)
    again = await _register(fresh)
    assert again.exit_code == 0, again.output
    assert await _registry_view(fresh) == before
    for subject, schema_id in first.items():
        assert f"{subject}: registered already, id {schema_id}" in again.output
    async with EventPublisher(fresh) as publisher:
        stored = await publisher.publish(SessionCreatedEvent(session_id="s-1", initial_agent="a"))
    assert stored.topic == fresh.topic_prefix + "session.events"


async def test_simulate_without_registered_schemas_is_a_missing_schema(
    fresh: AgentfluxSettings,
) -> None:
    """`agentflux simulate` before `schemas register`: exit 4, naming the subjects and command."""
    env = {
        "AGENTFLUX_BOOTSTRAP_SERVERS": fresh.bootstrap_servers,
        "AGENTFLUX_REGISTRY_URL": fresh.registry_url,
        "AGENTFLUX_TOPIC_PREFIX": fresh.topic_prefix,
    }
    result = await asyncio.to_thread(
        CliRunner().invoke, app, ["simulate", "--sessions", "1"], env=env
    )
    assert result.exit_code == ExitCode.NOT_FOUND, result.output
    assert fresh.topic_prefix + _TOOL_REQUESTED in result.output
    assert _COMMAND in result.output
    assert await _topics_empty(fresh)
