"""The metrics view: the old collector's figures, kept in the store, exported to Prometheus."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from agentflux.schemas import (
    AgentErrorOccurredEvent,
    AgentProcessingCompletedEvent,
    BaseEvent,
    HitlApprovalRequestedEvent,
    HitlDecisionMadeEvent,
    HitlTimeoutOccurredEvent,
    ToolExecutionCompletedEvent,
    ToolExecutionFailedEvent,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from agentflux.consumers._ports import Store, Transaction
    from agentflux.consumers._records import Position

__all__ = [
    "MetricsView",
    "get_agent_avg_duration",
    "get_metrics",
    "get_tool_success_rate",
    "render_prometheus",
]


def _ms(event: BaseEvent) -> int:
    return int(event.occurred_at.timestamp() * 1000)


class MetricsView:
    """Counters and sums per (metric, label) in ``m_counts``; approval timings on the side."""

    name = "metrics"
    ddl = (
        "CREATE TABLE IF NOT EXISTS m_counts (metric TEXT NOT NULL, label TEXT NOT NULL, count BIGINT NOT NULL, total DOUBLE PRECISION NOT NULL, PRIMARY KEY (metric, label))",
        "CREATE TABLE IF NOT EXISTS m_approval_times (approval_id TEXT PRIMARY KEY, requested_ms BIGINT, decided_ms BIGINT)",
        "CREATE TABLE IF NOT EXISTS m_approval_outcomes (approval_id TEXT PRIMARY KEY, event_id TEXT NOT NULL, outcome TEXT NOT NULL)",
    )

    @staticmethod
    async def _add(tx: Transaction, metric: str, label: str, total: float = 0.0) -> None:
        await tx.execute(
            "INSERT INTO m_counts (metric, label, count, total) VALUES ($1, $2, 1, $3) "
            "ON CONFLICT (metric, label) DO UPDATE SET count = m_counts.count + 1, total = m_counts.total + excluded.total",
            metric,
            label,
            float(total),
        )

    async def apply(self, tx: Transaction, event: BaseEvent, position: Position) -> None:  # noqa: ARG002  # metrics need no offsets
        """Count the event and fold its figures in."""
        await self._add(tx, "events", event.EVENT_TYPE.value)
        match event:
            case AgentProcessingCompletedEvent():
                await self._add(tx, "agent_duration_ms", event.agent, event.duration_ms)
                await self._add(tx, "tokens", event.agent, event.input_tokens + event.output_tokens)
            case ToolExecutionCompletedEvent():
                await self._add(tx, "tool_completed", event.tool_name, event.duration_ms)
            case ToolExecutionFailedEvent():
                await self._add(tx, "tool_failed", event.tool_name, event.duration_ms)
                await self._add(tx, "errors", event.error_type)
            case AgentErrorOccurredEvent():
                await self._add(tx, "errors", event.error_type)
            case HitlApprovalRequestedEvent():
                await self._approval_time(tx, event.approval_id, requested_ms=_ms(event))
            case HitlDecisionMadeEvent() | HitlTimeoutOccurredEvent():
                await self._outcome(tx, event)
            case _:
                pass

    async def _outcome(
        self, tx: Transaction, event: HitlDecisionMadeEvent | HitlTimeoutOccurredEvent
    ) -> None:
        """Count an approval's first outcome (in the hitl partition's order) only.

        A decision after the timeout counts as late (the approval stays timed out); a repeated
        decision, or a timeout after a decision, counts nothing.
        """
        outcome = (
            event.decision.value.lower()
            if isinstance(event, HitlDecisionMadeEvent)
            else "timed_out"
        )
        await tx.execute(
            "INSERT INTO m_approval_outcomes (approval_id, event_id, outcome) VALUES ($1, $2, $3) "
            "ON CONFLICT (approval_id) DO NOTHING",
            event.approval_id,
            str(event.event_id),
            outcome,
        )
        first = await tx.fetchone(
            "SELECT event_id, outcome FROM m_approval_outcomes WHERE approval_id = $1",
            event.approval_id,
        )
        if first is None or first["event_id"] == str(event.event_id):
            await self._add(tx, "approvals", outcome)
            if isinstance(event, HitlDecisionMadeEvent):
                await self._approval_time(tx, event.approval_id, decided_ms=_ms(event))
        elif first["outcome"] == "timed_out" and isinstance(event, HitlDecisionMadeEvent):
            await self._add(tx, "approvals", "late")

    async def _approval_time(
        self,
        tx: Transaction,
        approval_id: str,
        *,
        requested_ms: int | None = None,
        decided_ms: int | None = None,
    ) -> None:
        # Request and decision arrive on different topics in either order: latency is counted
        # once, by whichever of the two completes the pair.
        await tx.execute(
            "INSERT INTO m_approval_times (approval_id, requested_ms, decided_ms) VALUES ($1, $2, $3) "
            "ON CONFLICT (approval_id) DO UPDATE SET requested_ms = COALESCE(m_approval_times.requested_ms, excluded.requested_ms), "
            "decided_ms = COALESCE(m_approval_times.decided_ms, excluded.decided_ms)",
            approval_id,
            requested_ms,
            decided_ms,
        )
        row = await tx.fetchone(
            "SELECT requested_ms, decided_ms FROM m_approval_times WHERE approval_id = $1",
            approval_id,
        )
        if row and row["requested_ms"] is not None and row["decided_ms"] is not None:
            await self._add(
                tx, "approval_latency_ms", "all", int(row["decided_ms"]) - int(row["requested_ms"])
            )


async def _counts(store: Store) -> dict[str, dict[str, tuple[int, float]]]:
    found: dict[str, dict[str, tuple[int, float]]] = {}
    for row in await store.rows("SELECT metric, label, count, total FROM m_counts"):
        found.setdefault(row["metric"], {})[row["label"]] = (int(row["count"]), float(row["total"]))
    return found


def _rate(good: int, bad: int) -> float | None:
    return good / (good + bad) if good + bad else None


async def get_metrics(store: Store) -> dict[str, Any]:
    """Every figure of the view, as the old collector's ``get_metrics()`` returned them and more."""
    counts = await _counts(store)
    events = {label: c for label, (c, _) in counts.get("events", {}).items()}
    durations = counts.get("agent_duration_ms", {})
    completed, failed = counts.get("tool_completed", {}), counts.get("tool_failed", {})
    approvals = {label: c for label, (c, _) in counts.get("approvals", {}).items()}
    latency = counts.get("approval_latency_ms", {}).get("all", (0, 0.0))
    return {
        "total_events": sum(events.values()),
        "events_by_type": dict(sorted(events.items())),
        "agents": {
            agent: {
                "calls": c,
                "avg_duration_ms": total / c,
                "tokens": int(counts.get("tokens", {}).get(agent, (0, 0.0))[1]),
            }
            for agent, (c, total) in sorted(durations.items())
        },
        "tools": {
            tool: {
                "completed": completed.get(tool, (0, 0.0))[0],
                "failed": failed.get(tool, (0, 0.0))[0],
                "success_rate": _rate(
                    completed.get(tool, (0, 0.0))[0], failed.get(tool, (0, 0.0))[0]
                ),
            }
            for tool in sorted(set(completed) | set(failed))
        },
        "approvals": {
            "approved": approvals.get("approved", 0),
            "rejected": approvals.get("rejected", 0),
            "timed_out": approvals.get("timed_out", 0),
            "late": approvals.get("late", 0),  # decisions after the timeout: not an outcome
            "approval_rate": _rate(
                approvals.get("approved", 0),
                approvals.get("rejected", 0) + approvals.get("timed_out", 0),
            ),
            "avg_latency_ms": latency[1] / latency[0] if latency[0] else None,
        },
        "errors_by_type": {label: c for label, (c, _) in sorted(counts.get("errors", {}).items())},
    }


async def get_agent_avg_duration(store: Store, agent: str) -> float | None:
    """The average LLM processing time of ``agent`` in ms (None if it never completed one)."""
    figures: dict[str, Any] = (await get_metrics(store))["agents"].get(agent, {})
    average = figures.get("avg_duration_ms")
    return None if average is None else float(average)


async def get_tool_success_rate(store: Store, tool: str) -> float | None:
    """Completed / (completed + failed) for ``tool`` (None if it never finished)."""
    figures: dict[str, Any] = (await get_metrics(store))["tools"].get(tool, {})
    rate = figures.get("success_rate")
    return None if rate is None else float(rate)


class _Snapshot:
    def __init__(self, metrics: dict[str, Any]) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        m = self.metrics
        events = CounterMetricFamily(
            "agentflux_events", "Events seen, by type", labels=["event_type"]
        )
        for event_type, count in m["events_by_type"].items():
            events.add_metric([event_type], count)
        yield events
        duration = GaugeMetricFamily(
            "agentflux_agent_avg_duration_ms", "Average LLM processing time", labels=["agent"]
        )
        for agent, figures in m["agents"].items():
            duration.add_metric([agent], figures["avg_duration_ms"])
        yield duration
        tools = CounterMetricFamily(
            "agentflux_tool_results", "Finished tool calls", labels=["tool", "result"]
        )
        success = GaugeMetricFamily(
            "agentflux_tool_success_rate", "Completed / finished", labels=["tool"]
        )
        for tool, figures in m["tools"].items():
            tools.add_metric([tool, "completed"], figures["completed"])
            tools.add_metric([tool, "failed"], figures["failed"])
            if figures["success_rate"] is not None:
                success.add_metric([tool], figures["success_rate"])
        yield tools
        yield success
        approvals = CounterMetricFamily(
            "agentflux_approvals", "Approval outcomes", labels=["outcome"]
        )
        for outcome in ("approved", "rejected", "timed_out", "late"):
            approvals.add_metric([outcome], m["approvals"][outcome])
        yield approvals
        if m["approvals"]["avg_latency_ms"] is not None:
            yield GaugeMetricFamily(
                "agentflux_approval_avg_latency_ms",
                "Request to decision",
                value=m["approvals"]["avg_latency_ms"],
            )
        errors = CounterMetricFamily(
            "agentflux_errors", "Agent and tool errors", labels=["error_type"]
        )
        for error_type, count in m["errors_by_type"].items():
            errors.add_metric([error_type], count)
        yield errors


async def render_prometheus(store: Store) -> bytes:
    """The view's figures in the Prometheus text exposition format."""
    registry = CollectorRegistry()
    registry.register(_Snapshot(await get_metrics(store)))
    return generate_latest(registry)
