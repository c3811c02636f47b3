"""The store contract for multi-row statements: many rows, every type, in chunks or not."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from agentflux.consumers import Store

_DDL = [
    (
        "CREATE TABLE IF NOT EXISTS rows_items (k TEXT PRIMARY KEY, n BIGINT NOT NULL, "
        "f DOUBLE PRECISION, b BYTEA, note TEXT)"
    )
]
_COLUMNS = (
    ("k", "TEXT"),
    ("n", "BIGINT"),
    ("f", "DOUBLE PRECISION"),
    ("b", "BYTEA"),
    ("note", "TEXT"),
)
_UPSERT = (
    "INSERT INTO rows_items (k, n, f, b, note) SELECT r.k, r.n, r.f, r.b, r.note "
    "FROM {rows} WHERE true ON CONFLICT (k) DO UPDATE SET n = rows_items.n + excluded.n"
)
# More rows than one SQLite statement takes (256), and not a multiple of any chunk size.
_MANY = 1001


def _row(number: int) -> tuple[Any, ...]:
    """Row ``number``: a big integer, a float, bytes, and a NULL note on every third row."""
    note = None if number % 3 == 0 else f"note {number}"
    return (f"k{number:05}", 2**40 + number, number / 4, bytes([number % 256]) * 3, note)


async def _stored(store: Store) -> list[tuple[Any, ...]]:
    rows = await store.rows("SELECT k, n, f, b, note FROM rows_items ORDER BY k")
    return [(r["k"], r["n"], r["f"], bytes(r["b"]), r["note"]) for r in rows]


class RowsContract:
    """execute_rows, fetch_rows and insert_rows behave alike on every adapter.

    Mixed into each adapter's test class beside the store contract, whose ``store`` fixture
    it uses.
    """

    async def test_execute_rows_upserts_every_row_with_its_types(self, store: Store) -> None:
        """A thousand-row upsert stores each value with its type; a second one adds to them."""
        await store.migrate(_DDL)
        rows = [_row(number) for number in range(_MANY)]
        async with store.transaction() as tx:
            await tx.execute_rows(_UPSERT, _COLUMNS, rows)
        async with store.transaction() as tx:
            await tx.execute_rows(_UPSERT, _COLUMNS, rows[::2])
        expected = [(k, n * (2 - i % 2), f, b, note) for i, (k, n, f, b, note) in enumerate(rows)]
        stored = await _stored(store)
        assert stored == expected
        assert [type(value) for value in stored[1]] == [str, int, float, bytes, str]
        assert stored[0][4] is None

    async def test_fetch_rows_returns_the_rows_of_every_input_row(self, store: Store) -> None:
        """A query over many rows finds the matches of each of them, missing ones left out."""
        await store.migrate(_DDL)
        async with store.transaction() as tx:
            await tx.insert_rows("rows_items", _COLUMNS, [_row(n) for n in range(0, _MANY, 2)])
            found = await tx.fetch_rows(
                "SELECT i.k, i.n FROM rows_items i JOIN {rows} ON i.k = r.k",
                (("k", "TEXT"),),
                [(f"k{number:05}",) for number in range(_MANY)],
            )
        assert sorted((row["k"], row["n"]) for row in found) == [
            (f"k{n:05}", 2**40 + n) for n in range(0, _MANY, 2)
        ]

    async def test_fetch_rows_returns_what_an_upsert_returns(self, store: Store) -> None:
        """RETURNING over a multi-row upsert gives one row per input row, new or updated."""
        await store.migrate(_DDL)
        async with store.transaction() as tx:
            await tx.insert_rows("rows_items", _COLUMNS, [_row(n) for n in range(300)])
            returned = await tx.fetch_rows(
                f"{_UPSERT} RETURNING k, n", _COLUMNS, [_row(n) for n in range(200, 600)]
            )
        assert sorted((row["k"], row["n"]) for row in returned) == [
            (f"k{n:05}", (2**40 + n) * (1 + (n < 300))) for n in range(200, 600)
        ]

    async def test_insert_rows_appends_every_row(self, store: Store) -> None:
        """insert_rows stores a thousand rows as given, NULLs and bytes included."""
        await store.migrate(_DDL)
        rows = [_row(number) for number in range(_MANY)]
        async with store.transaction() as tx:
            await tx.insert_rows("rows_items", _COLUMNS, rows)
        assert await _stored(store) == rows

    async def test_a_refused_row_rolls_the_whole_transaction_back(self, store: Store) -> None:
        """A row breaking a constraint in a later chunk undoes every row before it."""
        await store.migrate(_DDL)
        rows = [_row(number) for number in range(_MANY)]
        rows[-1] = (rows[-1][0], None, *rows[-1][2:])  # n is NOT NULL
        with pytest.raises(Exception, match=r"(?i)not.null"):  # each adapter's own error
            async with store.transaction() as tx:
                await tx.insert_rows("rows_items", _COLUMNS, rows)
        assert await store.rows("SELECT k FROM rows_items") == []
