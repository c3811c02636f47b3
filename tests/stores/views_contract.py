"""The shipped views on every store: batched writes, the same state as event by event, by hand."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from agentflux._rebuild import view_tables
from agentflux.consumers import (
    ContextView,
    MetricsView,
    Position,
    get_agent_avg_duration,
    get_metrics,
    get_tool_success_rate,
)
from agentflux.consumers._ports import apply_events
from agentflux.consumers._runner import apply_fetched
from agentflux.producers import Simulator
from agentflux.schemas import (
    AgentErrorOccurredEvent,
    AgentProcessingCompletedEvent,
    HitlApprovalRequestedEvent,
    HitlDecisionMadeEvent,
    HitlTimeoutOccurredEvent,
    ToolExecutionCompletedEvent,
    ToolExecutionFailedEvent,
)

if TYPE_CHECKING:
    from agentflux.consumers import Store, Transaction, View
    from agentflux.schemas import BaseEvent

_ITEMS = [("k", "TEXT"), ("v", "BIGINT"), ("note", "TEXT"), ("share", "DOUBLE PRECISION")]
_ITEMS_DDL = [
    "CREATE TABLE IF NOT EXISTS rows_items (k TEXT PRIMARY KEY, v BIGINT NOT NULL, note TEXT, share DOUBLE PRECISION)"
]
_START = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


def _at(seconds: float) -> datetime:
    return _START + timedelta(seconds=seconds)


async def _table_rows(store: Store, view: View) -> dict[str, list[str]]:
    found = {}
    for table in view_tables(view):
        rows = await store.rows(f"SELECT * FROM {table}")  # noqa: S608  # names from our DDL
        found[table] = sorted(repr(sorted(row.items())) for row in rows)
    return found


async def _wipe(store: Store, view: View) -> None:
    async with store.transaction() as tx:
        for table in view_tables(view):
            await tx.execute(f"DELETE FROM {table}")  # noqa: S608  # names from our DDL


def _out_of_order_with_repeats(events: list[BaseEvent], seed: int) -> list[BaseEvent]:
    """Arrival as several topics make it: shuffled in windows, a tenth of the events twice."""
    rng = random.Random(seed)
    arrived = list(events)
    for start in range(0, len(arrived), 40):
        window = arrived[start : start + 40]
        rng.shuffle(window)
        arrived[start : start + 40] = window
    for event in rng.sample(events, len(events) // 10):
        arrived.insert(rng.randrange(len(arrived) + 1), event)
    return arrived


class ViewsContract:
    """The shipped views' batched writes, on every adapter (``store`` comes from the subclass)."""

    async def test_rows_statements_upsert_and_read_many_rows(self, store: Store) -> None:
        """execute_rows writes every row in one call (NULLs, big ints, floats); fetch_rows reads them back."""
        await store.migrate(_ITEMS_DDL)
        upsert = (
            "INSERT INTO rows_items (k, v, note, share) SELECT r.k, r.v, r.note, r.share "
            "FROM {rows} WHERE true ON CONFLICT (k) DO UPDATE SET v = rows_items.v + excluded.v"
        )
        rows = [(f"k{n:04}", 2**40 + n, None if n % 2 else f"n{n}", n / 4) for n in range(1500)]
        async with store.transaction() as tx:
            await tx.execute_rows(upsert, _ITEMS, rows)
            await tx.execute_rows(upsert, _ITEMS, [])
            await tx.execute_rows(upsert, _ITEMS, [("k0003", 7, "ignored", 0.0)])
            found = await tx.fetch_rows(
                "SELECT i.k, i.v, i.note, i.share FROM rows_items i, {rows} WHERE i.k = r.k",
                [("k", "TEXT")],
                [("k0003",), ("k1499",), ("absent",)],
            )
            assert await tx.fetch_rows("SELECT 1 AS one FROM {rows}", [("k", "TEXT")], []) == []
        assert sorted(found, key=lambda row: row["k"]) == [
            {"k": "k0003", "v": 2**40 + 10, "note": None, "share": 0.75},
            {"k": "k1499", "v": 2**40 + 1499, "note": None, "share": 1499 / 4},
        ]
        total = await store.rows("SELECT COUNT(*) AS n, SUM(share) AS s FROM rows_items")
        assert total == [{"n": 1500, "s": sum(n / 4 for n in range(1500))}]

    async def test_a_failing_rows_statement_undoes_the_transaction(self, store: Store) -> None:
        """A multi-row statement the database refuses rolls back everything, offsets included."""
        await store.migrate(_ITEMS_DDL)
        insert = "INSERT INTO rows_items (k, v) SELECT r.k, r.v FROM {rows} WHERE true"
        with pytest.raises(Exception, match=r"(?i)not[ -]?null"):  # noqa: PT012  # raised at the call or the commit
            async with store.transaction() as tx:
                await tx.record_positions("g", [Position("t", 0, 5), Position("t", 1, 9)])
                await tx.execute_rows(insert, _ITEMS[:2], [("a", 1), ("b", None)])
        assert await store.rows("SELECT k FROM rows_items") == []
        assert await store.positions("g") == {}

    @pytest.mark.parametrize("view_type", [ContextView, MetricsView])
    async def test_batches_leave_the_state_events_one_by_one_leave(
        self, store: Store, view_type: type[ContextView | MetricsView]
    ) -> None:
        """Out-of-order events with repeats: any batch sizes give the tables event-by-event application gives."""
        view = view_type()
        await store.migrate(view.ddl)
        events = _out_of_order_with_repeats(list(Simulator(sessions=12, seed=3).events()), 5)
        applied = [(event, Position("t", 0, n)) for n, event in enumerate(events)]
        for event, position in applied:
            async with store.transaction() as tx:
                await view.apply(tx, event, position)
        one_by_one = await _table_rows(store, view)
        assert all(one_by_one.values()), one_by_one  # the data reach every table of the view
        for size in (7, 250, len(applied)):
            await _wipe(store, view)
            for start in range(0, len(applied), size):
                async with store.transaction() as tx:
                    await apply_events(view, tx, applied[start : start + size])
            assert await _table_rows(store, view) == one_by_one, f"batches of {size}"

    async def test_metrics_are_the_figures_worked_out_by_hand(self, store: Store) -> None:
        """Fetches with redeliveries and a decision before its request give exactly the hand-computed metrics."""
        view = MetricsView()
        await store.migrate(view.ddl)
        agent = [
            AgentProcessingCompletedEvent(session_id="s1", agent="coder", duration_ms=100, input_tokens=10, output_tokens=5),
            AgentProcessingCompletedEvent(session_id="s1", agent="coder", duration_ms=300, input_tokens=20, output_tokens=10),
            AgentProcessingCompletedEvent(session_id="s1", agent="reviewer", duration_ms=50, input_tokens=1, output_tokens=1),
            AgentErrorOccurredEvent(session_id="s1", agent="coder", error_type="Timeout", error_message="slow"),
        ]  # fmt: skip
        tool = [
            ToolExecutionCompletedEvent(session_id="s1", call_id="c1", tool_name="write_file", duration_ms=10),
            ToolExecutionCompletedEvent(session_id="s1", call_id="c2", tool_name="write_file", duration_ms=30),
            ToolExecutionFailedEvent(session_id="s1", call_id="c3", tool_name="write_file", duration_ms=20, error_type="IOError", error_message="disk"),
            ToolExecutionCompletedEvent(session_id="s1", call_id="c4", tool_name="read_file", duration_ms=5),
        ]  # fmt: skip
        hitl = [
            # a1's decision arrives before its request: the latency is counted when the pair completes.
            HitlDecisionMadeEvent(session_id="s1", approval_id="a1", approver="ann", decision="APPROVED", occurred_at=_at(5)),
            HitlApprovalRequestedEvent(session_id="s1", approval_id="a1", subject="deploy", occurred_at=_at(1)),
            HitlApprovalRequestedEvent(session_id="s1", approval_id="a2", subject="delete", occurred_at=_at(2)),
            HitlDecisionMadeEvent(session_id="s1", approval_id="a2", approver="bob", decision="REJECTED", occurred_at=_at(4)),
            HitlTimeoutOccurredEvent(session_id="s1", approval_id="a3", waited_s=300),
        ]  # fmt: skip
        topics = {"agent.events": agent, "tool.events": tool, "hitl.events": hitl}

        def fetch(**ranges: tuple[int, int]) -> list[tuple[BaseEvent, Position]]:
            return [
                (topics[f"{name}.events"][offset], Position(f"{name}.events", 0, offset))
                for name, (first, last) in ranges.items()
                for offset in range(first, last + 1)
            ]

        fetches = [
            fetch(agent=(0, 1), tool=(0, 1), hitl=(0, 0)),
            fetch(agent=(0, 3), hitl=(0, 2)),  # agent 0-1 and hitl 0 again: redelivered
            fetch(tool=(0, 3), hitl=(3, 4)),  # tool 0-1 again
            fetch(agent=(0, 3), tool=(0, 3), hitl=(0, 4)),  # all of it again: a replay
        ]
        redelivered = []
        for events in fetches:
            ends = {(p.topic, p.partition): p for _, p in events}  # the last of each partition
            async with store.transaction() as tx:

                async def effects(tx: Transaction, fresh: list[tuple[BaseEvent, Position]]) -> None:
                    await apply_events(view, tx, fresh)

                skipped = await apply_fetched(tx, "metrics", events, list(ends.values()), effects)
            redelivered.append(sum(skipped.values()))
        assert redelivered == [0, 3, 2, 13]
        counted = {type(event).EVENT_TYPE.value: 0 for event in agent + tool + hitl}
        for event in agent + tool + hitl:
            counted[event.EVENT_TYPE.value] += 1
        assert counted == {
            "agent_processing_completed": 3,
            "agent_error_occurred": 1,
            "tool_execution_completed": 3,
            "tool_execution_failed": 1,
            "hitl_decision_made": 2,
            "hitl_approval_requested": 2,
            "hitl_timeout_occurred": 1,
        }  # the names the figures below are keyed by
        assert await get_metrics(store) == {
            "total_events": 13,
            "events_by_type": dict(sorted(counted.items())),
            "agents": {
                "coder": {"calls": 2, "avg_duration_ms": 200.0, "tokens": 45},
                "reviewer": {"calls": 1, "avg_duration_ms": 50.0, "tokens": 2},
            },
            "tools": {
                "read_file": {"completed": 1, "failed": 0, "success_rate": 1.0},
                "write_file": {"completed": 2, "failed": 1, "success_rate": 2 / 3},
            },
            "approvals": {
                "approved": 1,
                "rejected": 1,
                "timed_out": 1,
                "late": 0,
                "approval_rate": 1 / 3,
                "avg_latency_ms": 3000.0,  # a1: 5 s - 1 s, a2: 4 s - 2 s
            },
            "errors_by_type": {"IOError": 1, "Timeout": 1},
        }
        assert await get_agent_avg_duration(store, "coder") == 200.0
        assert await get_tool_success_rate(store, "write_file") == 2 / 3
        assert await store.positions("metrics") == {
            ("agent.events", 0): 3,
            ("tool.events", 0): 3,
            ("hitl.events", 0): 4,
        }
