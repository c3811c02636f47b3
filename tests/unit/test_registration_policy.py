"""Publishers only look schemas up unless told to; a missing schema says what to run."""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentflux.kafka import AgentfluxSettings
from agentflux.producers import SchemaNotRegisteredError, SchemaRegistrationError

if TYPE_CHECKING:
    import pytest

_MISSING = "tool.events-agentflux.events.tool.ToolExecutionRequested"
_CHANGED = "agent.events-agentflux.events.agent.AgentSwitched"


def test_auto_registration_is_off_unless_the_environment_opts_in(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """AGENTFLUX_AUTO_REGISTER_SCHEMAS is false by default and read from the environment."""
    monkeypatch.delenv("AGENTFLUX_AUTO_REGISTER_SCHEMAS", raising=False)
    assert AgentfluxSettings().auto_register_schemas is False
    monkeypatch.setenv("AGENTFLUX_AUTO_REGISTER_SCHEMAS", "true")
    assert AgentfluxSettings().auto_register_schemas is True


def test_a_missing_and_a_changed_schema_are_each_explained() -> None:
    """One error names every subject, which has none and which has only other versions."""
    error = SchemaNotRegisteredError({_CHANGED: [1, 2], _MISSING: []})
    message = str(error)
    assert error.subjects == (_CHANGED, _MISSING)
    assert error.versions == {_CHANGED: (1, 2), _MISSING: ()}
    assert f"no schema is registered under {_MISSING}" in message
    assert f"{_CHANGED} has other versions (v1, v2) but not this process's schema" in message
    assert "`agentflux schemas check`" in message
    assert "`agentflux schemas register`" in message
    assert "AGENTFLUX_AUTO_REGISTER_SCHEMAS=true" in message
    assert message.endswith("Nothing was sent")
    assert isinstance(error, SchemaRegistrationError)
