"""What a PostgreSQL database went through: its deadlock and rollback counts, once settled."""

from __future__ import annotations

import asyncio

import asyncpg

_SETTLE_POLL_S = 0.05


async def database_counters(url: str) -> dict[str, int]:
    """Deadlocks and rolled-back transactions of the database of ``url`` so far.

    Backends report their counts when they go idle or exit, not at once: the counts are read
    once no other connection to the database is left (close the stores first).
    """
    connection = await asyncpg.connect(url)
    try:
        while await connection.fetchval(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ):
            await asyncio.sleep(_SETTLE_POLL_S)  # the server's own view: nothing here to await
        row = await connection.fetchrow(
            "SELECT deadlocks, xact_rollback FROM pg_stat_database WHERE datname = current_database()"
        )
    finally:
        await connection.close()
    assert row is not None
    return {"deadlocks": int(row["deadlocks"]), "rollbacks": int(row["xact_rollback"])}
