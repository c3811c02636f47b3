"""The three groups that ship with the platform: context, metrics and audit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from agentflux.consumers._audit import AuditView
from agentflux.consumers._context import ContextView
from agentflux.consumers._metrics import MetricsView
from agentflux.consumers._runner import GroupRunner
from agentflux.kafka import AgentfluxSettings
from agentflux.schemas import EventCategory

if TYPE_CHECKING:
    from collections.abc import Callable

    from agentflux.consumers._ports import Store, View

__all__ = ["SHIPPED_GROUPS", "GroupSpec", "shipped_runner"]

_MAX_POLL_RECORDS = 2000


@dataclass(frozen=True, slots=True)
class GroupSpec:
    """A shipped group: its id, the categories it reads, the view it maintains."""

    name: str
    group_id: str
    categories: tuple[EventCategory, ...]
    view: Callable[[], View]
    description: str

    def topics(self, settings: AgentfluxSettings) -> list[str]:
        """The topics it reads, behind the configured prefix."""
        return [settings.topic_prefix + c.topic for c in self.categories]


SHIPPED_GROUPS: dict[str, GroupSpec] = {
    "context": GroupSpec(
        "context",
        "agentflux.context",
        (EventCategory.AGENT, EventCategory.SESSION, EventCategory.TOOL, EventCategory.HITL),
        ContextView,
        "Per-session context: current agent, hand-overs, messages, tools in flight, approvals.",
    ),
    "metrics": GroupSpec(
        "metrics",
        "agentflux.metrics",
        tuple(EventCategory),
        MetricsView,
        "The metrics collector: durations, success and approval rates, errors, events per type.",
    ),
    "audit": GroupSpec(
        "audit",
        "agentflux.audit",
        tuple(EventCategory),
        AuditView,
        "Append-only, hash-chained audit trail of every event.",
    ),
}


def shipped_runner(
    name: str,
    store: Store,
    settings: AgentfluxSettings | None = None,
    *,
    group_id: str | None = None,
    group_instance_id: str | None = None,
) -> GroupRunner:
    """A runner for one shipped group, applying its view to ``store``."""
    spec = SHIPPED_GROUPS[name]
    settings = settings or AgentfluxSettings()
    return GroupRunner(
        group_id or spec.group_id,
        spec.topics(settings),
        settings=settings,
        views=[spec.view()],
        store=store,
        group_instance_id=group_instance_id,
        # Up to 2000 records a fetch when behind (a rebuild, a catch-up): each store transaction
        # costs a commit and a dozen statements whatever its size. Live traffic fetches less.
        max_poll_records=_MAX_POLL_RECORDS,
    )
