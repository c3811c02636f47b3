"""The extension points of the read side, in one place: the store and the views on it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol, Self

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

    from agentflux.consumers._records import Position
    from agentflux.schemas import BaseEvent, EventRows

__all__ = [
    "ROWS",
    "BatchView",
    "FoldsRows",
    "InStepView",
    "RowView",
    "Store",
    "Transaction",
    "View",
    "apply_events",
]

ROWS = "{rows}"  # in a statement of execute_rows/fetch_rows: the rows, as a table named r

Columns = Sequence[tuple[str, str]]  # (name, SQL type) of each column of the rows


def _one_row(columns: Columns) -> str:
    """One row of ``columns`` as a table ``r``: ``$1, $2, ...`` cast to their types."""
    cells = ", ".join(
        f"CAST(${number} AS {kind}) AS {name}"
        for number, (name, kind) in enumerate(columns, start=1)
    )
    return f"(SELECT {cells}) AS r"


class Transaction(ABC):
    """One database transaction. SQL uses ``$1, $2, ...`` placeholders on every adapter."""

    @abstractmethod
    async def execute(self, sql: str, *args: Any) -> None:
        """Run a statement.

        An adapter may hold statements and send them with the next read or the commit (the
        SQLite one does): a statement the database refuses then raises there, and the whole
        transaction rolls back either way.
        """

    @abstractmethod
    async def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        """Run a query; rows as dicts."""

    async def fetchone(self, sql: str, *args: Any) -> dict[str, Any] | None:
        """The first row of a query, or None."""
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None

    async def execute_rows(self, sql: str, columns: Columns, rows: Sequence[Sequence[Any]]) -> None:
        """Run ``sql`` over many rows at once: ``{rows}`` in it (:data:`ROWS`) is a table ``r``.

        ``columns`` names each column of ``rows`` with its SQL type (``TEXT``, ``BIGINT``,
        ``DOUBLE PRECISION``...); every parameter comes from the rows, so ``sql`` has no ``$n``
        of its own. ``INSERT ... SELECT ... FROM {rows} WHERE true ON CONFLICT ...`` (SQLite
        needs the ``WHERE`` there) and ``UPDATE ... FROM {rows} WHERE ...`` are the usual forms.
        Adapters send it as one statement where they can (PostgreSQL: over ``unnest`` of one
        array per column; SQLite: a ``VALUES`` list per chunk of rows); this default runs it
        once per row.
        """
        one_row = sql.replace(ROWS, _one_row(columns))
        for row in rows:
            await self.execute(one_row, *row)

    async def fetch_rows(
        self, sql: str, columns: Columns, rows: Sequence[Sequence[Any]]
    ) -> list[dict[str, Any]]:
        """A query over many rows at once, as :meth:`execute_rows`: every row it returns."""
        one_row = sql.replace(ROWS, _one_row(columns))
        found: list[dict[str, Any]] = []
        for row in rows:
            found.extend(await self.fetch(one_row, *row))
        return found

    async def insert_rows(
        self, table: str, columns: Columns, rows: Sequence[Sequence[Any]]
    ) -> None:
        """Append ``rows`` to ``table`` (no conflict handling): the fastest bulk insert there is.

        ``columns`` as for :meth:`execute_rows`. PostgreSQL sends them with ``COPY``; this default
        is an ``INSERT ... SELECT`` over :meth:`execute_rows`.
        """
        names = ", ".join(name for name, _ in columns)
        cells = ", ".join(f"r.{name}" for name, _ in columns)
        await self.execute_rows(
            f"INSERT INTO {table} ({names}) SELECT {cells} FROM {ROWS}",  # noqa: S608  # names are the caller's constants
            columns,
            rows,
        )

    async def applied_positions(self, group: str) -> dict[tuple[str, int], int]:
        """The last offset this group applied on each partition, by (topic, partition)."""
        rows = await self.fetch(
            "SELECT topic, part, last_offset FROM agentflux_offsets WHERE grp = $1", group
        )
        return {(r["topic"], int(r["part"])): int(r["last_offset"]) for r in rows}

    async def position(self, group: str, topic: str, partition: int) -> int | None:
        """The last offset this group applied on a partition, or None."""
        row = await self.fetchone(
            "SELECT last_offset FROM agentflux_offsets WHERE grp = $1 AND topic = $2 AND part = $3",
            group,
            topic,
            partition,
        )
        return None if row is None else int(row["last_offset"])

    async def record_position(self, group: str, position: Position) -> None:
        """Store the offset just applied, in the same transaction as its effect."""
        await self.record_positions(group, [position])

    async def record_positions(self, group: str, positions: Sequence[Position]) -> None:
        """Store the offsets just applied (one per partition), in the transaction of their effects.

        None moves back: a re-read batch that ends below what was applied (after a restart or a
        replay) must not lower the guard, or the records after it would apply twice.
        """
        await self.execute_rows(
            "INSERT INTO agentflux_offsets (grp, topic, part, last_offset) "
            "SELECT r.grp, r.topic, r.part, r.last_offset FROM {rows} WHERE true "
            "ON CONFLICT (grp, topic, part) DO UPDATE SET last_offset = CASE "
            "WHEN excluded.last_offset > agentflux_offsets.last_offset "
            "THEN excluded.last_offset ELSE agentflux_offsets.last_offset END",
            _OFFSET_COLUMNS,
            # In key order, as every multi-row write: concurrent writers lock rows in one order.
            sorted((group, p.topic, p.partition, p.offset) for p in positions),
        )

    async def mark_redriven(self, group: str, event_id: str) -> bool:
        """Record that a dead-lettered event was re-driven; False if it already was."""
        if await self.fetchone(
            "SELECT 1 AS seen FROM agentflux_redriven WHERE grp = $1 AND event_id = $2",
            group,
            event_id,
        ):
            return False
        await self.execute(
            "INSERT INTO agentflux_redriven (grp, event_id) VALUES ($1, $2)", group, event_id
        )
        return True


_OFFSET_COLUMNS: Columns = (
    ("grp", "TEXT"),
    ("topic", "TEXT"),
    ("part", "INTEGER"),
    ("last_offset", "BIGINT"),
)

_BOOKKEEPING_DDL = (
    (
        "CREATE TABLE IF NOT EXISTS agentflux_offsets ("
        "grp TEXT NOT NULL, topic TEXT NOT NULL, part INTEGER NOT NULL, "
        "last_offset BIGINT NOT NULL, PRIMARY KEY (grp, topic, part))"
    ),
    # Dead-lettered events never advanced the offsets above, so re-driving them is guarded by id.
    (
        "CREATE TABLE IF NOT EXISTS agentflux_redriven ("
        "grp TEXT NOT NULL, event_id TEXT NOT NULL, PRIMARY KEY (grp, event_id))"
    ),
)


class Store(ABC):
    """A transactional database for views: effects and offsets commit together.

    Adapters: ``SqliteStore`` (embedded default) and
    ``PostgresStore``. Both pass ``tests/stores/contract.py``.
    """

    url: str

    @abstractmethod
    async def open(self) -> None:
        """Connect and create the offsets table."""

    @abstractmethod
    async def close(self) -> None:
        """Disconnect."""

    @abstractmethod
    def transaction(self) -> AbstractAsyncContextManager[Transaction]:
        """A transaction: committed when the block exits normally, rolled back on error."""

    async def migrate(self, statements: Sequence[str]) -> None:
        """Create tables and indexes (idempotent ``IF NOT EXISTS`` statements).

        ``ALTER TABLE t ADD COLUMN IF NOT EXISTS c TYPE`` brings a table made by an older
        version up to its ``CREATE`` (which names the column too), on every adapter.
        """
        async with self.transaction() as tx:
            for statement in (*_BOOKKEEPING_DDL, *statements):
                runnable = await self._ddl_form(tx, statement)
                if runnable is not None:
                    await tx.execute(runnable)

    async def _ddl_form(self, tx: Transaction, statement: str) -> str | None:  # noqa: ARG002  # adapters that need to look use it
        """``statement`` as this database runs it; None to skip it (already in place)."""
        return statement

    async def positions(self, group: str) -> dict[tuple[str, int], int]:
        """Every partition's last applied offset for ``group``."""
        async with self.transaction() as tx:
            return await tx.applied_positions(group)

    async def __aenter__(self) -> Self:
        """Open on entry."""
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Close on exit."""
        await self.close()

    async def rows(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        """A read-only query in its own transaction."""
        async with self.transaction() as tx:
            return await tx.fetch(sql, *args)


class View(Protocol):
    """A projection of events into a store, applied exactly once per event."""

    @property
    def name(self) -> str:
        """The view's name (its group's short name)."""

    @property
    def ddl(self) -> Sequence[str]:
        """Idempotent CREATE statements of its tables."""

    async def apply(self, tx: Transaction, event: BaseEvent, position: Position) -> None:
        """Apply one event's effect inside ``tx``."""


class BatchView(View, Protocol):
    """A view that applies a fetched batch at once: few statements for many events.

    The runner applies every partition of a fetch in one transaction through
    :func:`apply_events`; a view without ``apply_batch`` gets its events one by one.
    """

    async def apply_batch(
        self, tx: Transaction, events: Sequence[tuple[BaseEvent, Position]]
    ) -> None:
        """Apply ``events`` inside ``tx``: the same effect as ``apply`` on each, in order.

        Events of one partition come in offset order; partitions may interleave. Writes to
        rows other writers share go in key order (deadlock-free with concurrent writers).
        """


class InStepView(View, Protocol):
    """A view that folds a session's events in publish order across topics (the audit chains).

    A store-backed runner with such a view, reading more than one topic, reads its partitions
    in step by record time while it is behind (a rebuild, a catch-up): records of a partition
    ahead of the slowest one are carried, unwritten and uncommitted, until it catches up. The
    view still gets events out of order (within a fetch, across the carried edge) and must
    accept them; it just gets far fewer.
    """

    reads_in_step: Literal[True]


class RowView(View, Protocol):
    """A view that folds rows (the fields ``rows`` names of each event), not model instances.

    A store-backed runner with this view alone (no other view, no handlers) decodes records
    straight into rows, in C where it can: no model instance is built for its events. Its
    ``apply`` (one event, on the record-by-record path) must fold ``rows.row(event)`` the same.
    """

    @property
    def rows(self) -> EventRows:
        """The fields the view keeps of each event type."""

    async def apply_rows(
        self, tx: Transaction, rows: Sequence[tuple[tuple[Any, ...], Position]]
    ) -> None:
        """Apply the events of ``rows`` inside ``tx``, as ``apply_batch`` would (same order)."""


class FoldsRows(ABC):
    """A ``RowView``'s ``apply`` and ``apply_batch``: ``apply_rows`` of the events' rows."""

    @property
    @abstractmethod
    def rows(self) -> EventRows:
        """The fields the view keeps of each event type."""

    @abstractmethod
    async def apply_rows(
        self, tx: Transaction, rows: Sequence[tuple[tuple[Any, ...], Position]]
    ) -> None:
        """Apply the events of ``rows`` inside ``tx``, in order."""

    async def apply(self, tx: Transaction, event: BaseEvent, position: Position) -> None:
        """Apply one event: its row, alone."""
        await self.apply_batch(tx, [(event, position)])

    async def apply_batch(
        self, tx: Transaction, events: Sequence[tuple[BaseEvent, Position]]
    ) -> None:
        """Apply a batch: the events' rows, in order (the runner's row path gives them so)."""
        row = self.rows.row
        await self.apply_rows(tx, [(row(event), position) for event, position in events])


async def apply_events(
    view: View, tx: Transaction, events: Sequence[tuple[BaseEvent, Position]]
) -> None:
    """``view``'s ``apply_batch`` if it has one, else its ``apply`` on each event in order."""
    apply_batch = getattr(view, "apply_batch", None)
    if apply_batch is not None:
        await apply_batch(tx, events)
        return
    for event, position in events:
        await view.apply(tx, event, position)
