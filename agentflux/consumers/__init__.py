"""The read side of agentflux: the consumer-group runner, stores, and the shipped groups.

A team's own group, declared once and run as a service by ``agentflux consume --app``::

    group = GroupSpec(
        name="billing",
        group_id="billing.tokens",
        categories=(EventCategory.TOOL,),
        handlers={ToolExecutionCompletedEvent: on_done},
    )
"""

from agentflux.consumers._audit import (
    AuditView,
    ChainReport,
    audit_report,
    get_audit_log,
    verify_audit,
)
from agentflux.consumers._context import ContextView, get_context
from agentflux.consumers._groups import GroupSpec
from agentflux.consumers._metrics import (
    MetricsView,
    get_agent_avg_duration,
    get_metrics,
    get_tool_success_rate,
    render_prometheus,
)
from agentflux.consumers._ports import BatchView, InStepView, RowView, Store, Transaction, View
from agentflux.consumers._records import Position
from agentflux.consumers._runner import GroupRunner
from agentflux.consumers._runner_metrics import RunnerMetrics
from agentflux.consumers._start import StartPoint, StartPointError, place_new_group
from agentflux.consumers._stores import PostgresStore, SqliteStore, open_store

__all__ = [
    "AuditView",
    "BatchView",
    "ChainReport",
    "ContextView",
    "GroupRunner",
    "GroupSpec",
    "InStepView",
    "MetricsView",
    "Position",
    "PostgresStore",
    "RowView",
    "RunnerMetrics",
    "SqliteStore",
    "StartPoint",
    "StartPointError",
    "Store",
    "Transaction",
    "View",
    "audit_report",
    "get_agent_avg_duration",
    "get_audit_log",
    "get_context",
    "get_metrics",
    "get_tool_success_rate",
    "open_store",
    "place_new_group",
    "render_prometheus",
    "verify_audit",
]
