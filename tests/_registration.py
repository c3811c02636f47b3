"""The shipped schemas registered as production registers them: through the gate."""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentflux._schemas import register_schemas
from agentflux.schemas import RegistryClient

if TYPE_CHECKING:
    from agentflux.kafka import AgentfluxSettings


async def register_shipped_schemas(settings: AgentfluxSettings) -> dict[str, int]:
    """Every shipped schema under ``settings``' topic prefix, as ``agentflux schemas register`` does.

    Publishers only look schemas up, so a test that publishes to fresh prefixed topics registers
    their subjects first; returns each subject's schema id.
    """
    async with RegistryClient.from_settings(settings) as registry:
        registration = await register_schemas(registry, topic_prefix=settings.topic_prefix)
    assert not registration.refused, registration.reasons()
    return registration.ids
