"""The metrics view: the old collector's figures, kept in the store, exported to Prometheus."""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from agentflux.consumers._ports import FoldsRows
from agentflux.consumers._records import millis
from agentflux.schemas import (
    EVENT_MODELS,
    AgentErrorOccurredEvent,
    AgentProcessingCompletedEvent,
    BaseEvent,
    EventRows,
    HitlApprovalRequestedEvent,
    HitlDecisionMadeEvent,
    HitlTimeoutOccurredEvent,
    ToolExecutionCompletedEvent,
    ToolExecutionFailedEvent,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator, Sequence
    from datetime import datetime

    _Add = Callable[..., None]
    _Timings = dict[str, list[tuple[int | None, int | None]]]
    # (approval id, event id, outcome, time of the decision: None for a timeout)
    _Outcome = Callable[[str, str, str, datetime | None], None]

    from agentflux.consumers._ports import Store, Transaction
    from agentflux.consumers._records import Position

__all__ = [
    "MetricsView",
    "get_agent_avg_duration",
    "get_metrics",
    "get_tool_success_rate",
    "render_prometheus",
]


class MetricsView(FoldsRows):
    """Counters and sums per (metric, label) in ``m_counts``; approval timings on the side."""

    name = "metrics"
    ddl = (
        "CREATE TABLE IF NOT EXISTS m_counts (metric TEXT NOT NULL, label TEXT NOT NULL, count BIGINT NOT NULL, total DOUBLE PRECISION NOT NULL, PRIMARY KEY (metric, label))",
        "CREATE TABLE IF NOT EXISTS m_approval_times (approval_id TEXT PRIMARY KEY, requested_ms BIGINT, decided_ms BIGINT)",
        "CREATE TABLE IF NOT EXISTS m_approval_outcomes (approval_id TEXT PRIMARY KEY, event_id TEXT NOT NULL, outcome TEXT NOT NULL)",
    )

    @property
    def rows(self) -> EventRows:
        """The fields the view keeps of each event type (see ``RowView``)."""
        return _ROWS

    async def apply_rows(
        self, tx: Transaction, rows: Sequence[tuple[tuple[Any, ...], Position]]
    ) -> None:
        """Count a batch, each event as its row of :attr:`rows`: what ``apply_batch`` does."""
        counts: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0, 0.0])

        def add(metric: str, label: str, total: float = 0.0) -> None:
            figures = counts[metric, label]
            figures[0] += 1
            figures[1] += total

        # Per approval, its request and decision times in the order the events came.
        timings: dict[str, list[tuple[int | None, int | None]]] = defaultdict(list)
        outcome, store_outcomes = await self._first_outcomes(tx, rows, add, timings)
        for row, _ in rows:
            fold, event_type = row[0]
            add("events", event_type if event_type is not None else row[1].value)
            if fold is not None:  # most types are only counted
                fold(row, add, timings, outcome)
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
        rows: Sequence[tuple[tuple[Any, ...], Position]],
        add: Callable[..., None],
        timings: dict[str, list[tuple[int | None, int | None]]],
    ) -> tuple[_Outcome, Callable[[], Awaitable[None]]]:
        """(count one outcome, store the new first outcomes): an approval's first outcome only.

        A decision after the timeout counts as late (the approval stays timed out); a repeated
        decision, a timeout after a decision, or the first outcome delivered again, nothing.
        """
        ids = sorted({row[1] for row, _ in rows if row[0][0] in _OUTCOME_FOLDS})
        first = {
            row["approval_id"]: (row["event_id"], row["outcome"])
            for row in (
                await tx.fetch_rows(_STORED_OUTCOMES, _ID_COLUMNS, [(i,) for i in ids])
                if ids
                else []
            )
        }
        new: dict[str, tuple[str, str]] = {}

        def count(approval_id: str, event_id: str, outcome: str, decided: datetime | None) -> None:
            # decided: the time of a decision; None for a timeout.
            known = first.get(approval_id)
            if known is None:
                first[approval_id] = new[approval_id] = (event_id, outcome)
                add("approvals", outcome)
                if decided is not None:
                    timings[approval_id].append((None, millis(decided)))
            elif known[1] == "timed_out" and decided is not None and known[0] != event_id:
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


# A fold takes the event's row ((fold, event type), then the fields _ROWS names for its type),
# the counters' ``add``, the approvals' timings and the outcome counter.
def _processed(row: tuple[Any, ...], add: _Add, _timings: _Timings, _outcome: _Outcome) -> None:
    _, agent, duration_ms, input_tokens, output_tokens = row
    add("agent_duration_ms", agent, duration_ms)
    add("tokens", agent, input_tokens + output_tokens)


def _tool_completed(
    row: tuple[Any, ...], add: _Add, _timings: _Timings, _outcome: _Outcome
) -> None:
    add("tool_completed", row[1], row[2])


def _tool_failed(row: tuple[Any, ...], add: _Add, _timings: _Timings, _outcome: _Outcome) -> None:
    add("tool_failed", row[1], row[2])
    add("errors", row[3])


def _agent_error(row: tuple[Any, ...], add: _Add, _timings: _Timings, _outcome: _Outcome) -> None:
    add("errors", row[1])


def _requested(row: tuple[Any, ...], _add: _Add, timings: _Timings, _outcome: _Outcome) -> None:
    timings[row[1]].append((millis(row[2]), None))


def _decided(row: tuple[Any, ...], _add: _Add, _timings: _Timings, outcome: _Outcome) -> None:
    _, approval_id, event_id, decided, decision = row
    outcome(approval_id, str(event_id), decision.value.lower(), decided)


def _timed_out(row: tuple[Any, ...], _add: _Add, _timings: _Timings, outcome: _Outcome) -> None:
    outcome(row[1], str(row[2]), "timed_out", None)


_OUTCOME_FOLDS = frozenset({_decided, _timed_out})
_APPROVAL = ("approval_id", "event_id", "occurred_at")
# The fields each type's figures need, and its fold; every type is counted by its name.
_FIGURES: dict[type[BaseEvent], tuple[Any, tuple[str, ...]]] = {
    AgentProcessingCompletedEvent: (
        _processed,
        ("agent", "duration_ms", "input_tokens", "output_tokens"),
    ),
    ToolExecutionCompletedEvent: (_tool_completed, ("tool_name", "duration_ms")),
    ToolExecutionFailedEvent: (_tool_failed, ("tool_name", "duration_ms", "error_type")),
    AgentErrorOccurredEvent: (_agent_error, ("error_type",)),
    HitlApprovalRequestedEvent: (_requested, ("approval_id", "occurred_at")),
    HitlDecisionMadeEvent: (_decided, (*_APPROVAL, "decision")),
    HitlTimeoutOccurredEvent: (_timed_out, _APPROVAL),
}
_ROWS = EventRows(
    {
        model: (
            (_FIGURES.get(model, (None,))[0], model.EVENT_TYPE.value),
            _FIGURES.get(model, (None, ()))[1],
        )
        for model in EVENT_MODELS.values()
    },
    # A model from outside the contract (a codec given others): its type read from the event.
    default=((None, None), ("event_type",)),
)

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
