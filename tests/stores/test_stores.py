"""The store contract, run once per adapter against real databases."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from conftest import fresh_postgres_database
from contract import StoreContract
from rows_contract import RowsContract
from views_contract import ViewsContract

from agentflux.consumers import PostgresStore, SqliteStore, open_store

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from agentflux.consumers import Store


class TestSqliteStore(StoreContract, RowsContract, ViewsContract):
    """SQLite (its own thread, WAL) honours the store contract."""

    @pytest.fixture
    async def store(self, tmp_path: Path) -> AsyncIterator[Store]:
        """A fresh SQLite file."""
        async with SqliteStore(tmp_path / "views.db") as store:
            yield store


@pytest.mark.postgres
class TestPostgresStore(StoreContract, RowsContract, ViewsContract):
    """PostgreSQL (asyncpg) honours the store contract."""

    @pytest.fixture
    async def store(self, postgres_url: str) -> AsyncIterator[Store]:
        """A fresh database on the test server."""
        async with PostgresStore(await fresh_postgres_database(postgres_url)) as store:
            yield store


def test_open_store_picks_the_adapter(tmp_path: Path) -> None:
    """Store URLs choose the adapter; unknown schemes are refused clearly."""
    assert isinstance(open_store(f"sqlite:///{tmp_path}/v.db"), SqliteStore)
    assert isinstance(open_store("postgresql://u@h/db"), PostgresStore)
    with pytest.raises(ValueError, match="unsupported store URL"):
        open_store("mysql://x")


async def test_sqlite_opens_with_a_large_page_cache_and_rarer_checkpoints(tmp_path: Path) -> None:
    """The writing connection keeps 64 MiB of pages and checkpoints the WAL every 10,000 pages."""
    async with SqliteStore(tmp_path / "v.db") as store:
        cache = await store.rows("PRAGMA cache_size")
        checkpoint = await store.rows("PRAGMA wal_autocheckpoint")
    assert list(cache[0].values()) == [-65536]
    assert list(checkpoint[0].values()) == [10000]
