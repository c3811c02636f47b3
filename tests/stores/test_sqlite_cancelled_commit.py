"""A SQLite transaction cancelled at its commit leaves the store usable.

A runner's write cancelled (its task crashed or timed out) can be cancelled while its
transaction's COMMIT waits its turn on the store's thread: that COMMIT then never runs, and
the BEGIN sent with the transaction's first read must be rolled back all the same.
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING

from agentflux.consumers import SqliteStore

if TYPE_CHECKING:
    import sqlite3
    from pathlib import Path


def _hold(connection: sqlite3.Connection, gate: threading.Event) -> None:
    """Keep the store's one thread busy until ``gate`` opens."""
    del connection  # the store's thread passes it; only holding the thread matters
    gate.wait(timeout=60)


async def test_a_commit_cancelled_before_it_ran_rolls_the_transaction_back(
    tmp_path: Path,
) -> None:
    """The next transaction starts (no "transaction within a transaction") and sees nothing."""
    gate = threading.Event()
    body_done = asyncio.Event()
    async with SqliteStore(tmp_path / "cancelled.db") as store:
        await store.migrate(["CREATE TABLE IF NOT EXISTS t (n INTEGER NOT NULL)"])
        loop = asyncio.get_running_loop()
        holding: list[asyncio.Future[None]] = []

        async def write() -> None:
            async with store.transaction() as tx:
                await tx.fetch("SELECT count(*) AS n FROM t")  # BEGIN reaches SQLite here
                await tx.execute("INSERT INTO t (n) VALUES ($1)", 1)
                # Queued on the store's thread now, ahead of the COMMIT the block's end sends.
                holding.append(loop.run_in_executor(store._thread, _hold, store._connection, gate))
                body_done.set()

        writing = asyncio.create_task(write())
        await body_done.wait()  # the writer is suspended on its COMMIT, queued behind _hold
        writing.cancel()
        # asyncio passes a cancel on to the executor's future in a callback of the next loop
        # turn: the thread stays held until then, so the COMMIT is cancelled before it can run.
        await asyncio.sleep(0)
        gate.set()
        await asyncio.gather(writing, *holding, return_exceptions=True)
        assert writing.cancelled()
        async with asyncio.timeout(30):
            rows = await store.rows("SELECT count(*) AS n FROM t")
    assert rows == [{"n": 0}]
