"""The metrics view: the old collector's figures, kept in the store, exported to Prometheus."""

from __future__ import annotations

from collections import defaultdict
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
    from collections.abc import Awaitable, Callable, Iterator, Sequence

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

    async def apply(self, tx: Transaction, event: BaseEvent, position: Position) -> None:
        """Count the event and fold its figures in."""
        await self.apply_batch(tx, [(event, position)])

    async def apply_batch(
        self,
        tx: Transaction,
        events: Sequence[tuple[BaseEvent, Position]],
    ) -> None:
        """Count a batch: the counters summed in memory, then one upsert per table."""
        counts: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0, 0.0])

        def add(metric: str, label: str, total: float = 0.0) -> None:
            figures = counts[metric, label]
            figures[0] += 1
            figures[1] += total

        # Per approval, its request and decision times in the order the events came.
        timings: dict[str, list[tuple[int | None, int | None]]] = defaultdict(list)
        outcome, store_outcomes = await self._first_outcomes(tx, events, add, timings)
        for event, _ in events:
            _fold(event, add, timings, outcome)
        await store_outcomes()
        if timings:
            for latency in await self._approval_times(tx, timings):
                add("approval_latency_ms", "all", latency)
        # In key order: concurrent members of the group lock the shared counters in one order.
        await tx.execute_rows(
            _ADD_COUNTS,
            _COUNT_COLUMNS,
            [(*key, int(c), float(t)) for key, (c, t) in sorted(counts.items())],
        )

    @staticmethod
    async def _first_outcomes(
        tx: Transaction,
        events: Sequence[tuple[BaseEvent, Position]],
        add: Callable[..., None],
        timings: dict[str, list[tuple[int | None, int | None]]],
    ) -> tuple[Callable[[_Outcome], None], Callable[[], Awaitable[None]]]:
        """(count one outcome, store the new first outcomes): an approval's first outcome only.

        A decision after the timeout counts as late (the approval stays timed out); a repeated
        decision, a timeout after a decision, or the first outcome delivered again, nothing.
        """
        ids = sorted({e.approval_id for e, _ in events if isinstance(e, _OUTCOME_TYPES)})
        first = {
            row["approval_id"]: (row["event_id"], row["outcome"])
            for row in (
                await tx.fetch_rows(_STORED_OUTCOMES, _ID_COLUMNS, [(i,) for i in ids])
                if ids
                else []
            )
        }
        new: dict[str, tuple[str, str]] = {}

        def count(event: _Outcome) -> None:
            decided = isinstance(event, HitlDecisionMadeEvent)
            outcome = (
                event.decision.value.lower()
                if isinstance(event, HitlDecisionMadeEvent)
                else "timed_out"
            )
            known = first.get(event.approval_id)
            if known is None:
                first[event.approval_id] = new[event.approval_id] = (str(event.event_id), outcome)
                add("approvals", outcome)
                if decided:
                    timings[event.approval_id].append((None, _ms(event)))
            elif known[1] == "timed_out" and decided and known[0] != str(event.event_id):
                add("approvals", "late")

        async def store() -> None:
            await tx.execute_rows(
                _INSERT_OUTCOMES,
                _OUTCOME_COLUMNS,
                [(approval_id, *new[approval_id]) for approval_id in sorted(new)],
            )

        return count, store

    @staticmethod
    async def _approval_times(
        tx: Transaction, timings: dict[str, list[tuple[int | None, int | None]]]
    ) -> list[int]:
        """Store the approvals' times; the latencies of the events that completed a pair.

        Request and decision arrive on different topics in either order: the latency is
        counted by whichever of the two completes the pair (each event that finds both).
        """
        ids = sorted(timings)
        stored = {
            row["approval_id"]: (row["requested_ms"], row["decided_ms"])
            for row in await tx.fetch_rows(_STORED_TIMES, _ID_COLUMNS, [(i,) for i in ids])
        }
        latencies: list[int] = []
        rows: list[tuple[str, int | None, int | None]] = []
        for approval_id in ids:
            requested, decided = stored.get(approval_id, (None, None))
            for asked, answered in timings[approval_id]:
                requested = requested if requested is not None else asked
                decided = decided if decided is not None else answered
                if requested is not None and decided is not None:
                    latencies.append(int(decided) - int(requested))
            rows.append((approval_id, requested, decided))
        await tx.execute_rows(_UPSERT_TIMES, _TIME_COLUMNS, rows)
        return latencies


def _fold(
    event: BaseEvent,
    add: Callable[..., None],
    timings: dict[str, list[tuple[int | None, int | None]]],
    outcome: Callable[[_Outcome], None],
) -> None:
    """One event's counts through ``add``, its approval times onto ``timings``, in order."""
    add("events", event.EVENT_TYPE.value)
    if type(event) not in _FIGURED:
        return  # counted only: no pattern matching (isinstance through pydantic's ABC metaclass)
    match event:
        case AgentProcessingCompletedEvent():
            add("agent_duration_ms", event.agent, event.duration_ms)
            add("tokens", event.agent, event.input_tokens + event.output_tokens)
        case ToolExecutionCompletedEvent():
            add("tool_completed", event.tool_name, event.duration_ms)
        case ToolExecutionFailedEvent():
            add("tool_failed", event.tool_name, event.duration_ms)
            add("errors", event.error_type)
        case AgentErrorOccurredEvent():
            add("errors", event.error_type)
        case HitlApprovalRequestedEvent():
            timings[event.approval_id].append((_ms(event), None))
        case HitlDecisionMadeEvent() | HitlTimeoutOccurredEvent():
            outcome(event)
        case _:
            pass


_Outcome = HitlDecisionMadeEvent | HitlTimeoutOccurredEvent
_OUTCOME_TYPES = (HitlDecisionMadeEvent, HitlTimeoutOccurredEvent)

_FIGURED = frozenset(
    {
        AgentProcessingCompletedEvent,
        ToolExecutionCompletedEvent,
        ToolExecutionFailedEvent,
        AgentErrorOccurredEvent,
        HitlApprovalRequestedEvent,
        HitlDecisionMadeEvent,
        HitlTimeoutOccurredEvent,
    }
)  # the types whose fields make figures, beyond the count of events by type

_COUNT_COLUMNS = (
    ("metric", "TEXT"),
    ("label", "TEXT"),
    ("count", "BIGINT"),
    ("total", "DOUBLE PRECISION"),
)
_ADD_COUNTS = (
    "INSERT INTO m_counts (metric, label, count, total) "
    "SELECT r.metric, r.label, r.count, r.total FROM {rows} WHERE true "
    "ON CONFLICT (metric, label) DO UPDATE SET count = m_counts.count + excluded.count, "
    "total = m_counts.total + excluded.total"
)
_ID_COLUMNS = (("approval_id", "TEXT"),)
_STORED_OUTCOMES = (
    "SELECT o.approval_id, o.event_id, o.outcome FROM m_approval_outcomes o, {rows} "
    "WHERE o.approval_id = r.approval_id"
)
_OUTCOME_COLUMNS = (("approval_id", "TEXT"), ("event_id", "TEXT"), ("outcome", "TEXT"))
_INSERT_OUTCOMES = (
    "INSERT INTO m_approval_outcomes (approval_id, event_id, outcome) "
    "SELECT r.approval_id, r.event_id, r.outcome FROM {rows} WHERE true "
    "ON CONFLICT (approval_id) DO NOTHING"
)
_STORED_TIMES = (
    "SELECT a.approval_id, a.requested_ms, a.decided_ms FROM m_approval_times a, {rows} "
    "WHERE a.approval_id = r.approval_id"
)
_TIME_COLUMNS = (("approval_id", "TEXT"), ("requested_ms", "BIGINT"), ("decided_ms", "BIGINT"))
_UPSERT_TIMES = (
    "INSERT INTO m_approval_times (approval_id, requested_ms, decided_ms) "
    "SELECT r.approval_id, r.requested_ms, r.decided_ms FROM {rows} WHERE true "
    "ON CONFLICT (approval_id) DO UPDATE SET "
    "requested_ms = COALESCE(m_approval_times.requested_ms, excluded.requested_ms), "
    "decided_ms = COALESCE(m_approval_times.decided_ms, excluded.decided_ms)"
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
