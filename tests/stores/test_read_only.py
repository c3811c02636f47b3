"""Stores opened read-only, as the commands that only read open them: nothing created, nothing written."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
from typing import TYPE_CHECKING

import asyncpg
import pytest
from conftest import fresh_postgres_database

from agentflux.consumers import AuditView, open_store
from agentflux.consumers._stores import StoreNotFoundError

if TYPE_CHECKING:
    from pathlib import Path

    from agentflux.consumers import Store


async def _a_view_store(url: str) -> None:
    """Create the audit view's tables at ``url`` (as the audit group would)."""
    async with open_store(url) as store:
        await store.migrate(AuditView().ddl)


async def _write(store: Store, sql: str) -> None:
    async with store.transaction() as tx:
        await tx.execute(sql)
        await tx.fetch("SELECT 1 AS one")  # SQLite sends held statements with the next read


async def test_sqlite_read_only_reads_and_refuses_writes(tmp_path: Path) -> None:
    """A read-only SQLite store answers queries and refuses any write."""
    url = f"sqlite:///{tmp_path / 'views.db'}"
    await _a_view_store(url)
    async with open_store(url, read_only=True) as store:
        assert await store.rows("SELECT count(*) AS n FROM audit_chain") == [{"n": 0}]
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            await _write(store, "DELETE FROM audit_chain")


async def test_sqlite_read_only_creates_neither_file_nor_folder(tmp_path: Path) -> None:
    """Opening a missing SQLite store read-only fails and leaves the disk as it was."""
    path = tmp_path / "new-dir" / "views.db"
    with pytest.raises(StoreNotFoundError, match="no SQLite store"):
        async with open_store(f"sqlite:///{path}", read_only=True):
            pass
    assert not path.parent.exists()


@pytest.mark.postgres
async def test_postgres_read_only_creates_nothing_and_refuses_writes(postgres_url: str) -> None:
    """Read-only PostgreSQL: no bookkeeping table created, every transaction read-only."""
    url = await fresh_postgres_database(postgres_url)
    async with open_store(url, read_only=True) as store:
        tables = await store.rows(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        )
        assert tables == []
        with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
            await _write(store, "CREATE TABLE t (x INT)")


@pytest.mark.postgres
async def test_reading_an_empty_postgres_database_says_the_view_is_missing(
    postgres_url: str, tmp_path: Path
) -> None:
    """`agentflux audit verify` on a database without the audit view: exit 4, one message."""
    url = await fresh_postgres_database(postgres_url)
    keep = {k: v for k, v in os.environ.items() if not k.startswith("AGENTFLUX_")}
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-c", "from agentflux.cli import main; main()"),
        *("audit", "verify", "--store", url),
        env=keep | {"AGENTFLUX_LOG_FORMAT": "console"},
        cwd=tmp_path,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        _, err = await process.communicate()
    stderr = err.decode()
    assert process.returncode == 4, stderr
    assert "holds no audit view" in stderr
    assert "Traceback" not in stderr
