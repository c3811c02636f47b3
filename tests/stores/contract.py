"""The store contract: every adapter must pass these (eventsourcing-style, one subclass each)."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from agentflux.consumers import ContextView, Position, get_context
from agentflux.schemas import (
    AgentSwitchedEvent,
    SessionCreatedEvent,
    ToolExecutionCompletedEvent,
    ToolExecutionRequestedEvent,
)

if TYPE_CHECKING:
    from agentflux.consumers import Store

_DDL = [
    "CREATE TABLE IF NOT EXISTS contract_items (k TEXT PRIMARY KEY, v BIGINT NOT NULL, note TEXT)"
]


class StoreContract:
    """Behaviour every Store adapter guarantees; subclasses provide the ``store`` fixture."""

    @pytest.fixture
    async def store(self) -> Store:
        """An open, empty store (overridden per adapter)."""
        raise NotImplementedError

    async def test_commit_makes_changes_visible(self, store: Store) -> None:
        """What a committed transaction wrote is read back with its types."""
        await store.migrate(_DDL)
        async with store.transaction() as tx:
            await tx.execute(
                "INSERT INTO contract_items (k, v, note) VALUES ($1, $2, $3)", "a", 2**40, None
            )
        assert await store.rows("SELECT k, v, note FROM contract_items") == [
            {"k": "a", "v": 2**40, "note": None}
        ]

    async def test_error_rolls_back_effect_and_position(self, store: Store) -> None:
        """An exception inside a transaction undoes both the effect and the recorded offset."""
        await store.migrate(_DDL)
        with pytest.raises(RuntimeError, match="handler failed"):  # noqa: PT012  # the whole transaction is the subject
            async with store.transaction() as tx:
                await tx.execute("INSERT INTO contract_items (k, v) VALUES ($1, $2)", "b", 1)
                await tx.record_position("g", Position("t", 0, 7))
                raise RuntimeError("handler failed")
        assert await store.rows("SELECT k FROM contract_items") == []
        assert await store.positions("g") == {}

    async def test_a_failing_statement_fails_the_transaction_and_undoes_it(
        self, store: Store
    ) -> None:
        """A statement the database refuses raises (at the call or the commit); nothing stays."""
        await store.migrate(_DDL)
        with pytest.raises(Exception, match=r"(?i)not[ -]?null"):  # noqa: PT012  # raised at the call or the commit: the whole transaction is the subject
            async with store.transaction() as tx:
                await tx.execute("INSERT INTO contract_items (k, v) VALUES ($1, $2)", "c", 1)
                await tx.record_position("g", Position("t", 0, 3))
                await tx.execute("INSERT INTO contract_items (k, v) VALUES ($1, $2)", "d", None)
        assert await store.rows("SELECT k FROM contract_items") == []
        assert await store.positions("g") == {}

    async def test_a_transaction_that_failed_cannot_go_on(self, store: Store) -> None:
        """After a refused query, later statements do not run on their own: nothing is stored."""
        await store.migrate(_DDL)
        with pytest.raises(Exception):  # noqa: B017, PT011, PT012  # each adapter raises its own driver's error; the block as a whole fails
            async with store.transaction() as tx:
                with contextlib.suppress(Exception):
                    await tx.fetch("SELECT * FROM no_such_table")
                await tx.execute("INSERT INTO contract_items (k, v) VALUES ($1, $2)", "e", 1)
        assert await store.rows("SELECT k FROM contract_items") == []

    async def test_reads_see_the_transactions_own_writes(self, store: Store) -> None:
        """Within a transaction, a read returns what its earlier statements wrote."""
        await store.migrate(_DDL)
        async with store.transaction() as tx:
            for n in range(5):
                await tx.execute(
                    "INSERT INTO contract_items (k, v) VALUES ($1, $2)", f"k{n}", n * 10
                )
            await tx.execute("UPDATE contract_items SET v = v + 1 WHERE k = $1", "k4")
            rows = await tx.fetch("SELECT k, v FROM contract_items ORDER BY k")
        assert rows == [{"k": f"k{n}", "v": n * 10 + (n == 4)} for n in range(5)]

    async def test_many_statements_in_one_transaction_all_commit(self, store: Store) -> None:
        """A transaction of thousands of statements commits every one of them."""
        await store.migrate(_DDL)
        async with store.transaction() as tx:
            for n in range(2500):
                await tx.execute("INSERT INTO contract_items (k, v) VALUES ($1, $2)", f"m{n}", n)
        assert await store.rows("SELECT COUNT(*) AS n, SUM(v) AS s FROM contract_items") == [
            {"n": 2500, "s": sum(range(2500))}
        ]

    async def test_positions_are_per_group_and_partition(self, store: Store) -> None:
        """Recorded offsets upsert per (group, topic, partition) and read back."""
        async with store.transaction() as tx:
            await tx.record_position("g1", Position("t", 0, 5))
            await tx.record_position("g1", Position("t", 0, 9))
            await tx.record_position("g1", Position("t", 1, 3))
            await tx.record_position("g2", Position("t", 0, 1))
            assert await tx.position("g1", "t", 0) == 9
            assert await tx.position("g1", "u", 0) is None
        assert await store.positions("g1") == {("t", 0): 9, ("t", 1): 3}

    async def test_recorded_position_never_moves_back(self, store: Store) -> None:
        """A re-read batch ending below the applied offset leaves the guard where it was."""
        async with store.transaction() as tx:
            await tx.record_position("g", Position("t", 0, 344))
        async with store.transaction() as tx:
            await tx.record_position("g", Position("t", 0, 329))
        assert await store.positions("g") == {("t", 0): 344}

    async def test_upsert_and_migrate_are_idempotent(self, store: Store) -> None:
        """Migrations run twice without error; ON CONFLICT upserts work the same on every adapter."""
        await store.migrate(_DDL)
        await store.migrate(_DDL)
        for value in (1, 2):
            async with store.transaction() as tx:
                await tx.execute(
                    "INSERT INTO contract_items (k, v) VALUES ($1, $2) "
                    "ON CONFLICT (k) DO UPDATE SET v = contract_items.v + excluded.v",
                    "x",
                    value,
                )
        assert await store.rows("SELECT v FROM contract_items WHERE k = $1", "x") == [{"v": 3}]

    async def test_redriven_events_are_marked_once_per_group(self, store: Store) -> None:
        """mark_redriven is True the first time per (group, event id), False after, and rolls back."""
        async with store.transaction() as tx:
            assert await tx.mark_redriven("g1", "e1") is True
            assert await tx.mark_redriven("g1", "e1") is False
            assert await tx.mark_redriven("g2", "e1") is True
        with pytest.raises(RuntimeError, match="undo"):  # noqa: PT012  # the whole transaction is the subject
            async with store.transaction() as tx:
                assert await tx.mark_redriven("g1", "e2") is True
                raise RuntimeError("undo")
        async with store.transaction() as tx:
            assert await tx.mark_redriven("g1", "e2") is True

    async def test_context_view_is_not_undone_by_late_older_events(self, store: Store) -> None:
        """A hand-over or tool request applied late (re-driven) leaves the newer context as is."""
        view = ContextView()
        await store.migrate(view.ddl)
        start = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)

        def at(seconds: int) -> datetime:
            return start + timedelta(seconds=seconds)

        created = SessionCreatedEvent(
            session_id="s", initial_agent="orchestrator", occurred_at=at(0)
        )
        first = AgentSwitchedEvent(
            session_id="s", from_agent="orchestrator", to_agent="coder", occurred_at=at(1)
        )
        second = AgentSwitchedEvent(
            session_id="s", from_agent="coder", to_agent="reviewer", occurred_at=at(2)
        )
        requested = ToolExecutionRequestedEvent(
            session_id="s", call_id="c1", tool_name="t", agent="coder", arguments="{}",
            occurred_at=at(3),
        )  # fmt: skip
        done = ToolExecutionCompletedEvent(
            session_id="s", call_id="c1", tool_name="t", duration_ms=5, occurred_at=at(4)
        )
        orders = {
            "in-order": [created, first, second, requested, done],
            "late": [created, second, done, first, requested],  # two events re-driven late
        }
        for session, events in orders.items():
            for offset, event in enumerate(events):
                async with store.transaction() as tx:
                    copy = event.model_copy(update={"session_id": session})
                    await view.apply(tx, copy, Position("t", 0, offset))
        contexts = {session: await get_context(store, session) for session in orders}
        for context in contexts.values():
            assert context is not None
            context.pop("session_id")
        assert contexts["late"] == contexts["in-order"]
        assert contexts["late"]["current_agent"] == "reviewer"
        assert contexts["late"]["tools_in_flight"] == []
