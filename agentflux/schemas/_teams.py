"""The teams of ``topics.yaml``: who reads which topics, under which group ids, and who writes."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["TeamSpec"]


class TeamSpec(BaseModel):
    """One team: its Kafka principal and what that principal may do.

    - ``reads``: the declared topics its groups consume.
    - ``group_prefix``: every consumer group id it uses starts with it (``billing.`` for
      ``billing.usage``); its groups' dead-letter topics are the dead-letter pattern with this
      prefix as the group (``agentflux.dlq.billing.``), which it may create, write and read.
    - ``writes``: ``true`` if it publishes to every category topic (only the agent runtime
      does), or the declared topics it publishes to (the HITL timeout job: ``hitl.events``).
    - ``transactional``: it publishes in transactions whose ids start with its group prefix
      (the HITL timeout job's ``<group>.<topic>.<partition>``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    principal: str = Field(pattern=r"^User:[A-Za-z0-9._@=-]+$")
    description: str = ""
    reads: tuple[str, ...] = ()
    group_prefix: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._-]+$")
    writes: bool | tuple[str, ...] = False
    transactional: bool = False
