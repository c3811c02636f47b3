"""The store adapters: SQLite (embedded default, its own thread) and PostgreSQL (asyncpg)."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from functools import lru_cache
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import asyncpg

from agentflux.consumers._ports import ROWS, Store, Transaction

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Sequence

    from agentflux.consumers._ports import Columns

__all__ = ["PostgresStore", "SqliteStore", "StoreNotFoundError", "open_store"]

_PLACEHOLDER = re.compile(r"\$(\d+)")
_MAX_DEFERRED = 1000  # statements held before they are sent anyway (memory stays bounded)

_MAX_ROWS_PER_STATEMENT = 256  # rows in one multi-row statement (see _rows_statements)
_CACHED_STATEMENTS = 512  # prepared statements kept per connection (sqlite3's default: 128)

Statement = tuple[str, tuple[Any, ...]]


class _Rows(NamedTuple):
    """A statement over many rows: ``sql`` holds ``{rows}``, a table ``r`` of ``names``."""

    sql: str
    names: tuple[str, ...]
    rows: list[tuple[Any, ...]]


@lru_cache(maxsize=512)
def _sqlite_form(sql: str) -> tuple[str, tuple[int, ...] | None]:
    """``$1`` placeholders as SQLite's plain ``?``, and which argument each takes, in order.

    None: the arguments go as they are (each placeholder once, in order). Plain ``?`` rather
    than ``?1``: some sqlite3 modules (Python 3.12.0-3.12.2) warn that ``?1`` is a named
    placeholder given a sequence. Views' statements are constants: cached.
    """
    order = tuple(int(number) - 1 for number in _PLACEHOLDER.findall(sql))
    return _PLACEHOLDER.sub("?", sql), None if order == tuple(range(len(order))) else order


def _sqlite_statement(sql: str, args: tuple[Any, ...]) -> Statement:
    text, order = _sqlite_form(sql)
    return text, args if order is None else tuple(args[index] for index in order)


def _sqlite_rows(sql: str, columns: Columns, rows: Sequence[Sequence[Any]]) -> _Rows:
    return _Rows(sql, tuple(name for name, _ in columns), [tuple(row) for row in rows])


@lru_cache(maxsize=512)
def _values_form(sql: str, names: tuple[str, ...], count: int) -> str:
    """``{rows}`` as ``count`` rows of plain ``?`` in one ``VALUES`` list, renamed to ``names``.

    SQLite types each value as it is bound, as it did for the single row of ``?`` before.
    """
    row = f"({', '.join('?' * len(names))})"
    cells = ", ".join(f"column{number} AS {name}" for number, name in enumerate(names, start=1))
    values = ", ".join([row] * count)
    return sql.replace(ROWS, f"(SELECT {cells} FROM (VALUES {values})) AS r")  # noqa: S608  # only our names and ?


def _chunk_sizes(count: int, most: int) -> list[int]:
    """``count`` rows cut into chunks of powers of two up to ``most``, largest first.

    Few distinct sizes, so each statement text is prepared once and then found in the
    connection's statement cache: a text per exact count would be parsed again each batch.
    (``itertools.batched``, checked, cuts equal chunks only, and needs Python 3.12.)
    """
    largest = 1 << (max(most, 1).bit_length() - 1)
    sizes = [largest] * (count // largest)
    rest = count % largest
    sizes.extend(1 << bit for bit in reversed(range(rest.bit_length())) if rest >> bit & 1)
    return sizes


def _rows_statements(connection: sqlite3.Connection, statement: _Rows) -> list[Statement]:
    """``statement`` as a few multi-row statements over its rows, in their order.

    One statement per row (``executemany``) paid SQLite's per-execution setup and sqlite3's
    per-call work for each row; one ``VALUES`` list per chunk pays it once. Rows run in order
    within a statement (an ``INSERT ... SELECT`` upserts row by row, as ``executemany`` did),
    and chunks in order. Chunks stay below the connection's limit on parameters. Checked
    instead: SQLite's ``carray`` extension (not in Python's sqlite3) and one JSON parameter
    expanded by ``json_each`` (bytes do not travel in JSON, and every cell is parsed again).
    """
    names, rows = statement.names, statement.rows
    limit = connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // len(names)
    found: list[Statement] = []
    start = 0
    for size in _chunk_sizes(len(rows), min(_MAX_ROWS_PER_STATEMENT, limit)):
        chunk = rows[start : start + size]
        start += size
        found.append((_values_form(statement.sql, names, size), tuple(chain.from_iterable(chunk))))
    return found


class StoreNotFoundError(FileNotFoundError):
    """A store opened read-only does not exist (reading never creates one)."""


def _connect(path: Path) -> sqlite3.Connection:
    # Transactions are explicit; multi-row statements come in several sizes (_chunk_sizes).
    connection = sqlite3.connect(path, isolation_level=None, cached_statements=_CACHED_STATEMENTS)
    # SQLite's default page size (4 KiB) is kept on purpose. Measured on each view alone
    # (2026-12-06): 16 KiB pages cut the audit rebuild's SQLite-thread CPU by a sixth (fetches of
    # 2,000 events) but cost a third more on audit's and a half more on context's with 10-event
    # transactions (live traffic), as every commit writes whole pages to the WAL; 8 KiB: the same
    # trade, smaller. A page size would have to be set here, before the first table and before
    # WAL mode: on an existing database the PRAGMA changes nothing until a VACUUM.
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute("PRAGMA busy_timeout=10000")
    # Batches insert at random keys of several B-trees: with SQLite's default 2 MB cache most
    # pages were read again each batch, and a checkpoint every 1,000 pages wrote the same hot
    # pages again and again (measured on the audit view: about 15 us of CPU per event saved).
    connection.execute("PRAGMA cache_size=-65536")  # KiB: up to 64 MiB, grown only as used
    connection.execute("PRAGMA wal_autocheckpoint=10000")  # pages: a WAL of up to ~40 MB
    return connection


def _connect_read_only(path: Path) -> sqlite3.Connection:
    # mode=ro: SQLite refuses to create the file or write to it; the journal mode is left alone.
    connection = sqlite3.connect(
        f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None
    )
    connection.execute("PRAGMA busy_timeout=10000")
    return connection


def _run_statements(
    connection: sqlite3.Connection,
    statements: list[Statement | _Rows],
    query: Statement | _Rows | None,
) -> list[dict[str, Any]]:
    """Run ``statements`` then ``query`` (its rows returned); roll back if any of them fails."""
    try:
        for statement in statements:
            if isinstance(statement, _Rows):
                for sql, args in _rows_statements(connection, statement):
                    connection.execute(sql, args)
            else:
                connection.execute(*statement)
        if query is None:
            return []
        found: list[dict[str, Any]] = []
        queries = _rows_statements(connection, query) if isinstance(query, _Rows) else [query]
        for sql, args in queries:
            cursor = connection.execute(sql, args)
            names = [column[0] for column in cursor.description or ()]
            found.extend(dict(zip(names, row, strict=True)) for row in cursor.fetchall())
    except BaseException:
        _rollback(connection)
        raise
    return found


def _rollback(connection: sqlite3.Connection) -> None:
    if connection.in_transaction:
        connection.execute("ROLLBACK")


class _SqliteTransaction(Transaction):
    """Statements are held and sent with the next read or the commit: one thread hop for many.

    A hop to SQLite's thread costs far more CPU than a statement: a view applying an event per
    statement spent nearly all of its time hopping. A failing statement therefore
    raises at the next read or at the commit, and the whole transaction rolls back.
    """

    def __init__(self, store: SqliteStore) -> None:
        self._store = store
        # A read-only connection cannot take the write lock IMMEDIATE asks for.
        self._pending: list[Statement | _Rows] = [
            ("BEGIN" if store.read_only else "BEGIN IMMEDIATE", ())
        ]
        self.begun = False  # BEGIN was sent: a failure must roll back in the database too
        self._failed: BaseException | None = None  # as PostgreSQL, no statement after a failure

    async def execute(self, sql: str, *args: Any) -> None:
        self._pending.append(_sqlite_statement(sql, args))
        if len(self._pending) >= _MAX_DEFERRED:
            await self._send(None)

    async def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        return await self._send(_sqlite_statement(sql, args))

    async def execute_rows(self, sql: str, columns: Columns, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self._pending.append(_sqlite_rows(sql, columns, rows))
            if len(self._pending) >= _MAX_DEFERRED:
                await self._send(None)

    async def fetch_rows(
        self, sql: str, columns: Columns, rows: Sequence[Sequence[Any]]
    ) -> list[dict[str, Any]]:
        # One hop to SQLite's thread for all the rows: the hop is what costs.
        return await self._send(_sqlite_rows(sql, columns, rows)) if rows else []

    async def _send(self, query: Statement | _Rows | None) -> list[dict[str, Any]]:
        if self._failed is not None:
            # Rolled back in SQLite: anything sent now would run outside any transaction.
            raise RuntimeError("the transaction failed and was rolled back") from self._failed
        statements, self._pending = self._pending, []
        self.begun = True
        try:
            rows: list[dict[str, Any]] = await self._store.call(_run_statements, statements, query)
        except BaseException as exc:
            self._failed = exc
            raise
        return rows

    async def commit(self) -> None:
        self._pending.append(("COMMIT", ()))
        await self._send(None)


# SQLite has no ``ADD COLUMN IF NOT EXISTS``: the store looks at the table first.
_ADD_COLUMN = re.compile(
    r"ALTER TABLE (\w+) ADD COLUMN IF NOT EXISTS (\w+) (.+)", re.IGNORECASE | re.DOTALL
)


class SqliteStore(Store):
    """SQLite in WAL mode: one connection on a thread of its own, transactions serialised.

    Each transaction's statements reach that thread together (see ``_SqliteTransaction``).
    """

    def __init__(self, path: str | Path, *, read_only: bool = False) -> None:
        """Keep the database at ``path`` (created with its folder if missing, unless read-only).

        ``read_only``: only read an existing database (:class:`StoreNotFoundError` if missing).
        """
        self.path = Path(path)
        self.url = f"sqlite:///{self.path}"
        self.read_only = read_only
        self._connection: sqlite3.Connection | None = None
        self._thread: ThreadPoolExecutor | None = None
        self._lock = asyncio.Lock()

    async def call(self, function: Callable[..., Any], *args: Any) -> Any:
        """``function(connection, *args)`` on the store's thread (sqlite3 is blocking)."""
        if self._connection is None or self._thread is None:
            raise RuntimeError("store is not open")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, function, self._connection, *args)

    async def open(self) -> None:
        """Open the file, switch to WAL, create the offsets table (read-only: only open it)."""
        if self.read_only and not self.path.is_file():
            raise StoreNotFoundError(f"no SQLite store at {self.path}")
        if not self.read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        # One thread: sqlite3 connections belong to the thread that made them.
        self._thread = ThreadPoolExecutor(1, thread_name_prefix=f"sqlite-{self.path.name}")
        loop = asyncio.get_running_loop()
        connect = _connect_read_only if self.read_only else _connect
        try:
            self._connection = await loop.run_in_executor(self._thread, connect, self.path)
        except BaseException:
            self._thread.shutdown(wait=False)
            self._thread = None
            raise
        if not self.read_only:
            await self.migrate([])

    async def close(self) -> None:
        """Close the connection and its thread."""
        if self._connection is not None and self._thread is not None:
            await self.call(sqlite3.Connection.close)
            self._thread.shutdown(wait=False)  # idle: it ends at once
        self._connection = None
        self._thread = None

    async def _ddl_form(self, tx: Transaction, statement: str) -> str | None:
        if statement.lstrip().startswith("DO $$"):
            return None  # PostgreSQL's procedural blocks: changes SQLite cannot make at all
        added = _ADD_COLUMN.fullmatch(statement.strip())
        if added is None:
            return statement
        table, column, kind = added.groups()
        # Inside migrate's transaction (BEGIN IMMEDIATE): no other writer adds it meanwhile.
        found = await tx.fetch("SELECT name FROM pragma_table_info($1)", table)
        if any(row["name"] == column for row in found):
            return None
        return f"ALTER TABLE {table} ADD COLUMN {column} {kind}"

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on error."""
        if self._connection is None:
            raise RuntimeError("store is not open")
        async with self._lock:
            tx = _SqliteTransaction(self)
            try:
                yield tx
                await tx.commit()  # in here: a COMMIT cancelled before it ran leaves BEGIN to undo
            except BaseException:
                if tx.begun:  # else nothing reached the database: nothing to undo
                    await self.call(_rollback)
                raise


class _PostgresTransaction(Transaction):
    def __init__(
        self, connection: asyncpg.Connection[Any] | asyncpg.pool.PoolConnectionProxy[Any]
    ) -> None:
        self._connection = connection

    async def execute(self, sql: str, *args: Any) -> None:
        await self._connection.execute(sql, *args)

    async def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        return [dict(row) for row in await self._connection.fetch(sql, *args)]

    async def execute_rows(self, sql: str, columns: Columns, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            await self._connection.execute(_unnest_form(sql, tuple(columns)), *_arrays(rows))

    async def insert_rows(
        self, table: str, columns: Columns, rows: Sequence[Sequence[Any]]
    ) -> None:
        # COPY in binary: each value encoded once by its column's codec (an array parameter
        # costs asyncpg an abstract-class check per element, measured as most of its time).
        if rows:
            names = [name for name, _ in columns]
            await self._connection.copy_records_to_table(table, records=rows, columns=names)

    async def fetch_rows(
        self, sql: str, columns: Columns, rows: Sequence[Sequence[Any]]
    ) -> list[dict[str, Any]]:
        if not rows:
            return []
        found = await self._connection.fetch(_unnest_form(sql, tuple(columns)), *_arrays(rows))
        return [dict(row) for row in found]


@lru_cache(maxsize=128)
def _unnest_form(sql: str, columns: tuple[tuple[str, str], ...]) -> str:
    """``{rows}`` as ``unnest`` of one array parameter per column: one statement for all rows.

    Multi-argument ``unnest`` in FROM zips its arrays into rows, in order (PostgreSQL's docs,
    "Table Functions"); asyncpg sends each array in binary. ``executemany`` was the other
    choice: one round trip too, but the statement runs once per row on the server.
    """
    arrays = ", ".join(
        f"CAST(${number} AS {kind}[])" for number, (_, kind) in enumerate(columns, start=1)
    )
    names = ", ".join(name for name, _ in columns)
    return sql.replace(ROWS, f"unnest({arrays}) AS r({names})")


def _arrays(rows: Sequence[Sequence[Any]]) -> list[list[Any]]:
    """Rows turned into one list per column."""
    return [list(column) for column in zip(*rows, strict=True)]


class PostgresStore(Store):
    """PostgreSQL through an asyncpg pool."""

    def __init__(self, url: str, *, pool_size: int = 4, read_only: bool = False) -> None:
        """Connect to ``url`` (``postgresql://user:password@host:port/database``).

        ``read_only``: every transaction is read-only, and no table is created.
        """
        self.url = url
        self._pool_size = pool_size
        self._pool: asyncpg.Pool[Any] | None = None
        self.read_only = read_only

    async def open(self) -> None:
        """Create the pool and the offsets table (read-only: only the pool)."""
        server_settings = {"default_transaction_read_only": "on"} if self.read_only else None
        self._pool = await asyncpg.create_pool(
            self.url, min_size=1, max_size=self._pool_size, server_settings=server_settings
        )
        if not self.read_only:
            await self.migrate([])

    async def close(self) -> None:
        """Close the pool."""
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """A pooled connection in a transaction (committed on success)."""
        if self._pool is None:
            raise RuntimeError("store is not open")
        async with self._pool.acquire() as connection, connection.transaction():
            yield _PostgresTransaction(connection)


def open_store(url: str, *, read_only: bool = False) -> Store:
    """A store for ``sqlite:///path.db`` or ``postgresql://...`` (not yet opened).

    ``read_only``: for commands that only read; a missing SQLite file is then an error
    (:class:`StoreNotFoundError`) instead of a new, empty database.
    """
    if url.startswith("sqlite:///"):
        return SqliteStore(url.removeprefix("sqlite:///"), read_only=read_only)
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresStore(url, read_only=read_only)
    raise ValueError(f"unsupported store URL {url!r}: use sqlite:///path.db or postgresql://...")
