"""The groups that ship with the platform: three views (context, metrics, audit) and one job.

The job, HITL timeouts, publishes instead of keeping a view in a store.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from agentflux.consumers._audit import AuditView
from agentflux.consumers._audit_runner import AuditRunner
from agentflux.consumers._context import ContextView
from agentflux.consumers._metrics import MetricsView
from agentflux.consumers._runner import GroupRunner
from agentflux.consumers._timeouts import HitlTimeoutJob
from agentflux.kafka import AgentfluxSettings
from agentflux.schemas import EventCategory

if TYPE_CHECKING:
    from collections.abc import Callable

    from agentflux.consumers._ports import Store, View

__all__ = ["SHIPPED_GROUPS", "VIEW_GROUPS", "GroupSpec", "shipped_runner", "shipped_service"]

_MAX_POLL_RECORDS = 2000


@dataclass(frozen=True, slots=True)
class GroupSpec:
    """A shipped group: its id, the categories it reads, the view it maintains (None: a job)."""

    name: str
    group_id: str
    categories: tuple[EventCategory, ...]
    make_view: Callable[[], View] | None
    description: str
    runner: type[GroupRunner] = GroupRunner  # the audit's also sweeps for gaps when idle

    @property
    def is_view(self) -> bool:
        """Whether it maintains a view in a store (rebuilt, queried, re-driven) or is a job."""
        return self.make_view is not None

    def view(self) -> View:
        """A fresh instance of its view; ValueError for a job, which keeps none."""
        if self.make_view is None:
            raise ValueError(f"{self.name} is a job and keeps no view")
        return self.make_view()

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
        AuditRunner,
    ),
    "hitl-timeouts": GroupSpec(
        "hitl-timeouts",
        "agentflux.hitl-timeouts",
        (EventCategory.HITL,),
        None,
        "Publishes hitl_timeout_occurred once for every approval whose timeout_s passed "
        "undecided (transactional, with its offsets).",
    ),
}

# The groups that keep a view (rebuilt, compared, re-driven from their DLQ); the rest are jobs.
VIEW_GROUPS = tuple(name for name, spec in SHIPPED_GROUPS.items() if spec.is_view)


def shipped_runner(
    name: str,
    store: Store,
    settings: AgentfluxSettings | None = None,
    *,
    group_id: str | None = None,
    group_instance_id: str | None = None,
) -> GroupRunner:
    """A runner for one shipped view group, applying its view to ``store``."""
    spec = SHIPPED_GROUPS[name]
    settings = settings or AgentfluxSettings()
    return spec.runner(
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


def shipped_service(
    name: str,
    store: Store | None,
    settings: AgentfluxSettings | None = None,
    *,
    group_id: str | None = None,
    group_instance_id: str | None = None,
) -> GroupRunner | HitlTimeoutJob:
    """A shipped group as a service: a view's runner over ``store``, or a job (no store)."""
    spec = SHIPPED_GROUPS[name]
    settings = settings or AgentfluxSettings()
    if spec.is_view:
        if store is None:
            raise ValueError(f"the {name} group keeps its view in a store")
        return shipped_runner(
            name, store, settings, group_id=group_id, group_instance_id=group_instance_id
        )
    return HitlTimeoutJob.for_settings(settings, group_id or spec.group_id, group_instance_id)
