"""Rebuild a shipped view from the retained events, compare it with the live one, swap them.

A rebuild reads every category topic of the view from its earliest retained offset up to the
end offsets seen when it starts, with a temporary consumer group (deleted afterwards), into a
fresh store (an audit rebuild ends by recording as gaps the numbers still missing). Comparing
reads both stores' view tables, every column (the audit chain's numbers and hashes included),
but those a view names as depending on when it was built. Swapping hands the rebuilt store to
the live group at exactly the offsets the rebuild ended at, so the live service goes on with
nothing lost or applied twice.
"""

from __future__ import annotations

import asyncio
import re
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from agentflux._offsets import (
    ReplayPlan,
    admin_client,
    committed_offsets,
    delete_group,
    execute_replay,
    partitions_of,
    probe_consumer,
)
from agentflux.consumers import AuditView, PostgresStore, SqliteStore
from agentflux.consumers._groups import SHIPPED_GROUPS

if TYPE_CHECKING:
    from collections.abc import Callable

    from aiokafka.structs import TopicPartition

    from agentflux.consumers import GroupSpec, Store, View
    from agentflux.kafka import AgentfluxSettings

__all__ = [
    "RebuildResult",
    "StoreNotFreshError",
    "SwapError",
    "audit_against_topics",
    "compare_views",
    "rebuild_view",
    "swap_into_live",
    "view_tables",
]

_TABLE = re.compile(r"CREATE TABLE IF NOT EXISTS (\w+)", re.IGNORECASE)
_IDLE_WAIT_S = 5.0
_FLOAT_DIGITS = 6  # float sums depend on addition order in their last bits


class SwapError(RuntimeError):
    """The rebuilt store cannot replace the live one (kinds differ, databases in use)."""


class StoreNotFreshError(RuntimeError):
    """The store a rebuild should fill already holds rows of the view."""


@dataclass(frozen=True, slots=True)
class RebuildResult:
    """What a rebuild read: its temporary group, the end offsets it stopped at, the time taken."""

    group_id: str
    ends: dict[TopicPartition, int]
    events: int
    seconds: float
    dead_letters: int = 0
    dead_letter_topic: str | None = None  # kept only when it holds records


def view_tables(view: View) -> list[str]:
    """The tables a view's DDL creates."""
    return [m.group(1) for statement in view.ddl if (m := _TABLE.search(statement))]


async def _ensure_fresh(store: Store, view: View) -> None:
    await store.migrate(view.ddl)
    for table in view_tables(view):
        if await store.rows(f"SELECT 1 AS found FROM {table} LIMIT 1"):  # noqa: S608  # names from our DDL
            raise StoreNotFreshError(
                f"{store.url} already holds {view.name} rows (table {table}); "
                "rebuild into a new, empty store"
            )


async def _committed(settings: AgentfluxSettings, group: str) -> dict[TopicPartition, int]:
    async with admin_client(settings) as admin:
        return await committed_offsets(admin, group)


async def rebuild_view(
    group: str | GroupSpec,
    into: Store,
    settings: AgentfluxSettings,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> RebuildResult:
    """Fill the fresh store ``into`` with ``group``'s view from the earliest retained events.

    ``group``: a shipped group's name or any group's declaration (a team's too).
    ``progress(done, total)`` is called as the temporary group commits its way to the end.
    """
    spec = SHIPPED_GROUPS[group] if isinstance(group, str) else group
    name = spec.name
    await _ensure_fresh(into, spec.view())
    async with probe_consumer(settings) as probe:
        partitions = await partitions_of(settings, probe, spec.topics(settings))
        begins = await probe.beginning_offsets(partitions)
        ends: dict[TopicPartition, int] = await probe.end_offsets(partitions)
    total = sum(ends[tp] - begins[tp] for tp in partitions)
    group_id = f"agentflux.rebuild.{name}.{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    runner = spec.runner(into, settings, group_id=group_id, view_only=True)
    try:
        async with admin_client(settings) as admin, runner:  # one admin for all the polling
            while True:
                committed = await committed_offsets(admin, group_id)
                done = sum(
                    min(committed.get(tp, begins[tp]), ends[tp]) - begins[tp] for tp in partitions
                )
                if progress is not None:
                    progress(done, total)
                if done >= total:
                    break
                if runner.finished:
                    runner.raise_failure()
                await asyncio.sleep(0.2)  # the group commits batch by batch; look again shortly
    finally:
        await delete_group(settings, group_id)
    if name == "audit":
        await _final_audit_sweep(into)
    dead_letters = await _drop_if_empty(settings, runner.dlq_topic)
    return RebuildResult(
        group_id,
        ends,
        total,
        time.monotonic() - started,
        dead_letters,
        runner.dlq_topic if dead_letters else None,
    )


async def _final_audit_sweep(store: Store) -> None:
    """Every retained event has been read: a number still missing never arrived, it is a gap."""
    async with store.transaction() as tx:
        await AuditView(grace_s=1).sweep(tx, everything=True)


async def _drop_if_empty(settings: AgentfluxSettings, topic: str) -> int:
    """Delete the temporary group's dead-letter topic unless it holds records; their count."""
    async with admin_client(settings) as admin, probe_consumer(settings) as probe:
        if topic not in await admin.list_topics():
            return 0
        partitions = await partitions_of(settings, probe, [topic])
        count = sum((await probe.end_offsets(partitions)).values())
        if not count:
            await admin.delete_topics([topic])
        return int(count)


def _comparable(
    rows: list[dict[str, Any]], volatile: tuple[str, ...]
) -> Counter[tuple[tuple[str, Any], ...]]:
    def normal(value: Any) -> Any:
        return round(value, _FLOAT_DIGITS) if isinstance(value, float) else value

    return Counter(
        tuple(sorted((k, normal(v)) for k, v in row.items() if k not in volatile)) for row in rows
    )


async def compare_views(view: View, live: Store, rebuilt: Store, *, examples: int = 3) -> list[str]:
    """Differences between two stores' copies of ``view``, one line each; empty if equal."""
    volatile: dict[str, tuple[str, ...]] = getattr(view, "order_dependent_columns", {})
    differences: list[str] = []
    for table in view_tables(view):
        query = f"SELECT * FROM {table}"  # noqa: S608  # names from our DDL
        ours = _comparable(await live.rows(query), volatile.get(table, ()))
        theirs = _comparable(await rebuilt.rows(query), volatile.get(table, ()))
        only_live, only_rebuilt = ours - theirs, theirs - ours
        if not only_live and not only_rebuilt:
            continue
        differences.append(
            f"{table}: {sum(only_live.values())} row(s) only in the live view, "
            f"{sum(only_rebuilt.values())} only in the rebuilt one"
        )
        differences.extend(
            f"  live only: {dict(row)}" for row in list(only_live.elements())[:examples]
        )
        differences.extend(
            f"  rebuilt only: {dict(row)}" for row in list(only_rebuilt.elements())[:examples]
        )
    return differences


async def audit_against_topics(store: Store, settings: AgentfluxSettings) -> dict[str, list[str]]:
    """Per session, how the chains in ``store`` differ from chains derived again from the topics.

    Records whose events have expired from the topics show as "not in the retained events".
    """
    with tempfile.TemporaryDirectory(prefix="agentflux-audit-") as folder:
        async with SqliteStore(Path(folder) / "audit.db") as derived:
            await rebuild_view("audit", derived, settings)  # its final sweep included
            theirs = await _hashes(derived)
    ours = await _hashes(store)
    differences: dict[str, list[str]] = {}
    for key in sorted(ours.keys() | theirs.keys()):
        session_id, chain, seq = key
        where = f"chain {chain} record {seq}"
        if key not in theirs:
            problem = f"{where}: not in the retained events"
        elif key not in ours:
            problem = f"{where}: in the retained events, missing from the store"
        elif ours[key] != theirs[key]:
            problem = f"{where}: differs from the retained events"
        else:
            continue
        differences.setdefault(session_id, []).append(problem)
    return differences


async def _hashes(store: Store) -> dict[tuple[str, str, int], str]:
    rows = await store.rows("SELECT session_id, chain, seq, hash FROM audit_chain")
    return {(r["session_id"], r["chain"], int(r["seq"])): str(r["hash"]) for r in rows}


async def swap_into_live(
    settings: AgentfluxSettings,
    result: RebuildResult,
    rebuilt: Store,
    live: Store,
    live_group: str,
) -> str:
    """Make the rebuilt store the live one; the live group resumes where the rebuild ended.

    SQLite: the live file is moved aside and the rebuilt one takes its place. PostgreSQL: the two
    databases (on one server) are renamed. Refuses (:class:`SwapError`, :class:`GroupActiveError`)
    while the live group has members or, for PostgreSQL, anything is still connected to either
    database, before anything moved. Closes both stores; returns where the old view now is.
    """
    if not (
        (isinstance(rebuilt, SqliteStore) and isinstance(live, SqliteStore))
        or (isinstance(rebuilt, PostgresStore) and isinstance(live, PostgresStore))
    ):
        raise SwapError("both stores must be SQLite, or both PostgreSQL")
    async with rebuilt.transaction() as tx:  # harmless until the swap: nothing reads it yet
        await tx.execute("DELETE FROM agentflux_offsets WHERE grp = $1", live_group)
        await tx.execute(
            "UPDATE agentflux_offsets SET grp = $1 WHERE grp = $2", live_group, result.group_id
        )
    await rebuilt.close()
    await live.close()
    if isinstance(live, PostgresStore):
        await _check_databases_idle(live.url, rebuilt.url)
    committed = await _committed(settings, live_group)
    plan = ReplayPlan(
        group=live_group,
        moves={tp: (committed.get(tp), end) for tp, end in sorted(result.ends.items())},
    )
    await execute_replay(settings, plan)  # raises while the live group is active
    if isinstance(live, SqliteStore) and isinstance(rebuilt, SqliteStore):
        return str(await asyncio.to_thread(_swap_files, live.path, rebuilt.path))
    return await _swap_databases(live.url, rebuilt.url)


def _swap_files(live: Path, rebuilt: Path) -> Path:
    replaced = live.with_name(f"{live.name}.replaced-{_stamp()}")
    if live.exists():
        live.rename(replaced)
    for suffix in ("-wal", "-shm"):  # closed cleanly they are gone; never leave stale ones
        Path(f"{live}{suffix}").unlink(missing_ok=True)
    rebuilt.rename(live)
    return replaced


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S")


def _databases(live_url: str, rebuilt_url: str) -> tuple[str, str, str]:
    """The live and rebuilt database names, and the server's maintenance database URL."""
    live, rebuilt = urlsplit(live_url), urlsplit(rebuilt_url)
    if (live.hostname, live.port) != (rebuilt.hostname, rebuilt.port):
        raise SwapError("--swap renames databases: build the rebuilt one on the live server")
    return (
        live.path.lstrip("/"),
        rebuilt.path.lstrip("/"),
        urlunsplit(live._replace(path="/postgres")),
    )


async def _check_databases_idle(live_url: str, rebuilt_url: str) -> None:
    live_db, rebuilt_db, admin_url = _databases(live_url, rebuilt_url)
    admin = await asyncpg.connect(admin_url)
    try:
        # Backends of connections just closed (ours included) linger for a moment; ask again.
        deadline = asyncio.get_running_loop().time() + _IDLE_WAIT_S
        while busy := await admin.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = ANY($1::text[])",
            [live_db, rebuilt_db],
        ):
            if asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.1)  # poll interval between two questions to the server
    finally:
        await admin.close()
    if busy:
        raise SwapError(
            f"{busy} connection(s) still open to {live_db} or {rebuilt_db}; stop the service first"
        )


async def _swap_databases(live_url: str, rebuilt_url: str) -> str:
    live_db, rebuilt_db, admin_url = _databases(live_url, rebuilt_url)
    replaced = f"{live_db}_replaced_{_stamp()}"
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f'ALTER DATABASE "{live_db}" RENAME TO "{replaced}"')
        await admin.execute(f'ALTER DATABASE "{rebuilt_db}" RENAME TO "{live_db}"')
    finally:
        await admin.close()
    return urlunsplit(urlsplit(live_url)._replace(path=f"/{replaced}"))
