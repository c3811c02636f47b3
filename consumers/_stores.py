"""The store adapters: SQLite (aiosqlite, embedded default) and PostgreSQL (asyncpg)."""

from __future__ import annotations

import asyncio
import re
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiosqlite
import asyncpg

from consumers._ports import Store, Transaction

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

__all__ = ["PostgresStore", "SqliteStore", "open_store"]

_PLACEHOLDER = re.compile(r"\$(\d+)")


class _SqliteTransaction(Transaction):
    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._connection = connection

    async def execute(self, sql: str, *args: Any) -> None:
        await self._connection.execute(_PLACEHOLDER.sub(r"?\1", sql), args)

    async def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        async with self._connection.execute(_PLACEHOLDER.sub(r"?\1", sql), args) as cursor:
            names = [c[0] for c in cursor.description or ()]
            return [dict(zip(names, row, strict=True)) for row in await cursor.fetchall()]


class SqliteStore(Store):
    """SQLite in WAL mode; one connection, transactions serialised by a lock."""

    def __init__(self, path: str | Path) -> None:
        """Keep the database at ``path`` (created with its folder if missing)."""
        self.path = Path(path)
        self.url = f"sqlite:///{self.path}"
        self._connection: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        """Open the file, switch to WAL, create the offsets table."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._connection = await aiosqlite.connect(self.path, isolation_level=None)
        await self._connection.execute("PRAGMA journal_mode=WAL")
        await self._connection.execute("PRAGMA synchronous=NORMAL")
        await self._connection.execute("PRAGMA busy_timeout=10000")
        await self.migrate([])

    async def close(self) -> None:
        """Close the connection."""
        if self._connection is not None:
            await self._connection.close()
            self._connection = None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on error."""
        if self._connection is None:
            raise RuntimeError("store is not open")
        async with self._lock:
            await self._connection.execute("BEGIN IMMEDIATE")
            try:
                yield _SqliteTransaction(self._connection)
            except BaseException:
                await self._connection.execute("ROLLBACK")
                raise
            await self._connection.execute("COMMIT")


class _PostgresTransaction(Transaction):
    def __init__(
        self, connection: asyncpg.Connection[Any] | asyncpg.pool.PoolConnectionProxy[Any]
    ) -> None:
        self._connection = connection

    async def execute(self, sql: str, *args: Any) -> None:
        await self._connection.execute(sql, *args)

    async def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        return [dict(row) for row in await self._connection.fetch(sql, *args)]


class PostgresStore(Store):
    """PostgreSQL through an asyncpg pool."""

    def __init__(self, url: str, *, pool_size: int = 4) -> None:
        """Connect to ``url`` (``postgresql://user:password@host:port/database``)."""
        self.url = url
        self._pool_size = pool_size
        self._pool: asyncpg.Pool[Any] | None = None

    async def open(self) -> None:
        """Create the pool and the offsets table."""
        self._pool = await asyncpg.create_pool(self.url, min_size=1, max_size=self._pool_size)
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


def open_store(url: str) -> Store:
    """A store for ``sqlite:///path.db`` or ``postgresql://...`` (not yet opened)."""
    if url.startswith("sqlite:///"):
        return SqliteStore(url.removeprefix("sqlite:///"))
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresStore(url)
    raise ValueError(f"unsupported store URL {url!r}: use sqlite:///path.db or postgresql://...")
