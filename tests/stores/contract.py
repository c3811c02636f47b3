"""The store contract: every adapter must pass these (eventsourcing-style, one subclass each)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from consumers import Position

if TYPE_CHECKING:
    from consumers import Store

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
