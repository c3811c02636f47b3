"""Consumer-group declarations: the shipped groups, and the type a team declares its own with.

Three views ship (context, metrics, audit) and one job: HITL timeouts, which publishes instead
of keeping a view in a store. A team's group is a :class:`GroupSpec` too, found by
``agentflux consume --app module:attribute`` or through the ``agentflux.groups`` entry points.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from agentflux.consumers._audit import AuditView
from agentflux.consumers._audit_runner import AuditRunner
from agentflux.consumers._context import ContextView
from agentflux.consumers._metrics import MetricsView
from agentflux.consumers._runner import GroupRunner
from agentflux.consumers._start import StartPoint
from agentflux.consumers._timeouts import HitlTimeoutJob
from agentflux.kafka import AgentfluxSettings
from agentflux.schemas import EventCategory

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping

    from agentflux.consumers._ports import Store, View
    from agentflux.schemas import BaseEvent

__all__ = ["SHIPPED_GROUPS", "VIEW_GROUPS", "GroupSpec", "shipped_runner", "shipped_service"]

_MAX_POLL_RECORDS = 2000


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupSpec:
    """A consumer group's declaration: the shipped ones and any team's, run the same way.

    ``categories``: the topics it reads. ``make_view``: the view it keeps in a store (None: it
    keeps none). ``handlers``: a coroutine per event type, run after the view (in its
    transaction when there is a store). ``start``: where it begins if it has never committed,
    ``earliest``, ``latest`` (the default: a new team's group does not read a year of retained
    events), an ISO 8601 time or a duration back (``7d``); see :class:`StartPoint`.
    ``make_job``: a group that runs its own loop instead of a runner (the HITL timeouts).
    ``description``: one line for ``agentflux groups list`` and the AsyncAPI document.
    ``max_attempts``: tries of a failing record before it goes to the dead-letter topic.
    ``runner_type``: the runner class (the audit's also sweeps for gaps when idle).
    """

    name: str
    group_id: str
    categories: tuple[EventCategory, ...]
    make_view: Callable[[], View] | None = None
    handlers: Mapping[type[BaseEvent], Callable[[BaseEvent], Awaitable[None]]] = field(
        default_factory=dict
    )
    description: str = ""
    start: str = "latest"
    make_job: Callable[[AgentfluxSettings, str, str | None], HitlTimeoutJob] | None = None
    max_attempts: int = 4
    runner_type: type[GroupRunner] = GroupRunner

    def __post_init__(self) -> None:
        """Refuse a declaration that could not run: its start point, its categories."""
        self.start_point  # noqa: B018  # parsed now: a bad start fails at import, not at deploy
        if not self.categories:
            raise ValueError(f"group {self.name} reads no category")
        if self.make_view is None and not self.handlers and self.make_job is None:
            raise ValueError(f"group {self.name} has neither a view, handlers nor a job")

    @property
    def start_point(self) -> StartPoint:
        """``start``, parsed."""
        return StartPoint.parse(self.start)

    @property
    def is_view(self) -> bool:
        """Whether it maintains a view in a store (rebuilt, queried, re-driven)."""
        return self.make_view is not None

    @property
    def is_job(self) -> bool:
        """Whether it runs its own loop (no runner, no dead letters to re-drive)."""
        return self.make_job is not None

    def view(self) -> View:
        """A fresh instance of its view; ValueError for a group that keeps none."""
        if self.make_view is None:
            raise ValueError(f"{self.name} keeps no view")
        return self.make_view()

    def topics(self, settings: AgentfluxSettings) -> list[str]:
        """The topics it reads, behind the configured prefix."""
        return [settings.topic_prefix + c.topic for c in self.categories]

    def runner(
        self,
        store: Store | None,
        settings: AgentfluxSettings | None = None,
        *,
        group_id: str | None = None,
        group_instance_id: str | None = None,
        view_only: bool = False,
    ) -> GroupRunner:
        """A runner of the group, applying its view (if any) to ``store``.

        ``view_only``: without the handlers, for a rebuild, which must not repeat their effects
        outside the store (a message sent, a call made).
        """
        if self.is_view and store is None:
            raise ValueError(f"the {self.name} group keeps its view in a store")
        settings = settings or AgentfluxSettings()
        return self.runner_type(
            group_id or self.group_id,
            self.topics(settings),
            settings=settings,
            views=[self.view()] if self.is_view else [],
            handlers={} if view_only else self.handlers,
            store=store,
            group_instance_id=group_instance_id,
            max_attempts=self.max_attempts,
            # Up to 2000 records a fetch when behind (a rebuild, a catch-up): each store
            # transaction costs a commit and a dozen statements whatever its size.
            max_poll_records=_MAX_POLL_RECORDS,
        )

    def service(
        self,
        store: Store | None,
        settings: AgentfluxSettings | None = None,
        *,
        group_id: str | None = None,
        group_instance_id: str | None = None,
    ) -> GroupRunner | HitlTimeoutJob:
        """The group as a service: its job, or a runner over ``store``."""
        settings = settings or AgentfluxSettings()
        if self.make_job is not None:
            return self.make_job(settings, group_id or self.group_id, group_instance_id)
        return self.runner(store, settings, group_id=group_id, group_instance_id=group_instance_id)


def _timeout_job(
    settings: AgentfluxSettings, group_id: str, group_instance_id: str | None
) -> HitlTimeoutJob:
    return HitlTimeoutJob.for_settings(settings, group_id, group_instance_id)


# The shipped views must see every retained event: they start at the earliest, said here.
SHIPPED_GROUPS: dict[str, GroupSpec] = {
    "context": GroupSpec(
        name="context",
        group_id="agentflux.context",
        categories=(
            EventCategory.AGENT,
            EventCategory.SESSION,
            EventCategory.TOOL,
            EventCategory.HITL,
        ),
        make_view=ContextView,
        description="Per-session context: current agent, hand-overs, messages, tools in flight, "
        "approvals.",
        start="earliest",
    ),
    "metrics": GroupSpec(
        name="metrics",
        group_id="agentflux.metrics",
        categories=tuple(EventCategory),
        make_view=MetricsView,
        description="The metrics collector: durations, success and approval rates, errors, "
        "events per type.",
        start="earliest",
    ),
    "audit": GroupSpec(
        name="audit",
        group_id="agentflux.audit",
        categories=tuple(EventCategory),
        make_view=AuditView,
        description="Append-only, hash-chained audit trail of every event.",
        start="earliest",
        runner_type=AuditRunner,  # it also sweeps for gaps when idle
    ),
    "hitl-timeouts": GroupSpec(
        name="hitl-timeouts",
        group_id="agentflux.hitl-timeouts",
        categories=(EventCategory.HITL,),
        make_job=_timeout_job,
        description="Publishes hitl_timeout_occurred once for every approval whose timeout_s "
        "passed undecided (transactional, with its offsets).",
        start="earliest",
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
    return SHIPPED_GROUPS[name].runner(
        store, settings, group_id=group_id, group_instance_id=group_instance_id
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
    return SHIPPED_GROUPS[name].service(
        store, settings, group_id=group_id, group_instance_id=group_instance_id
    )
