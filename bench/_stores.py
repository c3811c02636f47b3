"""The store side: the shipped views rebuilt into SQLite and a real PostgreSQL, beside read+decode.

Every figure reads the same simulated events from the earliest offsets with a fresh group,
timed from the moment its consumer has its partitions to the last event applied and committed
to the store (joining a group is not throughput). PostgreSQL runs at its default durability
(``fsync``, ``synchronous_commit`` and ``full_page_writes`` on): a private server started for the
run as the tests start theirs, or the one ``AGENTFLUX_BENCH_POSTGRES_URL`` names.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg

from agentflux._local._ports import free_ports
from agentflux.consumers import PostgresStore, SqliteStore
from agentflux.consumers._groups import SHIPPED_GROUPS, shipped_runner
from agentflux.producers import EventPublisher
from bench._cluster import make_topics
from bench._consume import noop_runner
from bench._events import EVENTS_SEED, generated_events
from bench._measure import Measurement, settle_heap

if TYPE_CHECKING:
    from collections.abc import Iterator

    from agentflux.consumers import GroupRunner, Store
    from agentflux.kafka import AgentfluxSettings

__all__ = ["bench_stores", "postgres_server", "stores_markdown"]

VIEWS = ("context", "metrics", "audit")
_JOIN_TIMEOUT_S = 60.0
_RUN_TIMEOUT_S = 900.0  # the slowest build on record (audit into PostgreSQL, before batching) x 4


def _run(command: list[str], *, check: bool = True) -> None:
    subprocess.run(command, check=check, capture_output=True)  # noqa: S603  # PostgreSQL's own tools, arguments made here


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """A PostgreSQL URL: ``AGENTFLUX_BENCH_POSTGRES_URL``, or a private server at default durability."""
    given = os.environ.get("AGENTFLUX_BENCH_POSTGRES_URL")
    if given:
        yield given
        return
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    if not found:
        raise RuntimeError(
            "no PostgreSQL server: apt-get install postgresql, or set AGENTFLUX_BENCH_POSTGRES_URL"
        )
    bin_dir, data = found[-1].parent, Path(tempfile.mkdtemp(prefix="agentflux-bench-pg-"))
    # Where the server's time goes, per statement (pg_stat_statements, PostgreSQL's contrib,
    # in Debian's server package): loaded at start when the server has it.
    statements = (bin_dir.parent / "lib" / "pg_stat_statements.so").exists()
    # initdb refuses to run as root: the server then runs as the postgres system user.
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_user:
        shutil.chown(data, "postgres")
    port = free_ports(1)[0]
    pg_ctl = [*as_user, str(bin_dir / "pg_ctl"), "-D", str(data / "db")]
    initdb = [*as_user, str(bin_dir / "initdb"), "-D", str(data / "db"), "-U", "postgres"]
    _run([*initdb, "--auth=trust", "-E", "UTF8"])
    # Only where it listens is set: every durability setting stays at PostgreSQL's default.
    options = f"-p {port} -k {data} -c listen_addresses=127.0.0.1"
    if statements:
        options += " -c shared_preload_libraries=pg_stat_statements"
    log = str(data / "server.log")
    _run([*pg_ctl, "-l", log, "-o", options, "-w", "start"])
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        _run([*pg_ctl, "-m", "fast", "-w", "stop"], check=False)
        shutil.rmtree(data, ignore_errors=True)


async def _new_database(server_url: str) -> str:
    name = f"bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return server_url.rsplit("/", 1)[0] + f"/{name}"


async def _database_counters(url: str) -> dict[str, int]:
    """The server's deadlock and rollback counts for the database of ``url``."""
    connection = await asyncpg.connect(url)
    try:
        row = await connection.fetchrow(
            "SELECT deadlocks, xact_rollback FROM pg_stat_database WHERE datname = current_database()"
        )
    finally:
        await connection.close()
    assert row is not None  # noqa: S101  # the database we are connected to
    return {"deadlocks": int(row["deadlocks"]), "rollbacks": int(row["xact_rollback"])}


async def _statements_followed(url: str) -> bool:
    """Whether the server tracks statements for the database of ``url`` (made so if it can)."""
    connection = await asyncpg.connect(url)
    try:
        await connection.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        await connection.fetchval("SELECT count(*) FROM pg_stat_statements")
    except asyncpg.PostgresError:  # not loaded at the server's start (an external server)
        return False
    finally:
        await connection.close()
    return True


async def _statement_times(url: str, events: int) -> list[dict[str, Any]]:
    """The statements that took the server the longest in the database of ``url``, per event.

    Server execution time (``total_exec_time``), so the client's share of a round trip and its
    waits are not in it; the schema's statements and the extension's own are left out.
    """
    connection = await asyncpg.connect(url)
    try:
        rows = await connection.fetch(
            "SELECT calls, total_exec_time, query FROM pg_stat_statements "
            "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND query !~* '^\\s*(CREATE|ALTER|DROP|DO|SHOW)' AND query !~ 'pg_stat' "
            "ORDER BY total_exec_time DESC LIMIT $1",
            _STATEMENTS_SHOWN,
        )
    finally:
        await connection.close()
    return [
        {
            "statement": " ".join(str(row["query"]).split())[:_STATEMENT_CHARS],
            "calls": int(row["calls"]),
            "server_us_per_event": round(float(row["total_exec_time"]) * 1000 / max(events, 1), 2),
        }
        for row in rows
    ]


_STATEMENTS_SHOWN = 4
_STATEMENT_CHARS = 48


async def _timed(runner: GroupRunner, expected: int) -> Measurement:
    """Run ``runner`` until it handled ``expected`` events, timed from its assignment."""
    settle_heap()
    async with runner:
        await asyncio.wait_for(runner.ready.wait(), _JOIN_TIMEOUT_S)
        started, cpu = time.perf_counter(), time.process_time()
        await asyncio.wait_for(runner.wait_handled(expected), _RUN_TIMEOUT_S)
        return Measurement.since(started, cpu, runner.handled)


async def _build(
    settings: AgentfluxSettings, view: str, store: Store, expected: int
) -> dict[str, Any]:
    runner = shipped_runner(view, store, settings, group_id=f"bench-{view}-{uuid.uuid4().hex[:6]}")
    sqlite_cpu = await _sqlite_thread_cpu(store)
    measured = await _timed(runner, expected)
    figures = {
        "events_per_s": round(measured.rate),
        "cpu_us_per_event": round(measured.cpu_us_per_event, 1),
        # Batches that failed and were applied again record by record (a deadlock, say).
        "fallbacks": getattr(runner, "batch_fallbacks", None),
    }
    sqlite_cpu_after = await _sqlite_thread_cpu(store)
    if sqlite_cpu is not None and sqlite_cpu_after is not None:
        # Part of cpu_us_per_event, spent on SQLite's own thread (it runs beside the event loop).
        spent = sqlite_cpu_after - sqlite_cpu
        figures["sqlite_thread_cpu_us_per_event"] = round(spent / measured.events * 1e6, 1)
    return figures


async def _sqlite_thread_cpu(store: Store) -> float | None:
    """The CPU time of a SQLite store's thread so far (seconds); None for any other store."""
    if not isinstance(store, SqliteStore):
        return None
    return float(await store.call(lambda _connection: time.thread_time()))


async def _into_postgres(
    settings: AgentfluxSettings, view: str, server_url: str, expected: int
) -> dict[str, Any]:
    url = await _new_database(server_url)
    followed = await _statements_followed(url)
    before = await _database_counters(url)
    async with PostgresStore(url) as store:
        figures = await _build(settings, view, store, expected)
    after = await _database_counters(url)
    if followed:
        figures["statements"] = await _statement_times(url, expected)
    return figures | {name: after[name] - before[name] for name in before}


async def bench_stores(
    settings: AgentfluxSettings, count: int, directory: Path, *, rounds: int = 1
) -> dict[str, Any]:
    """Publish ``count`` events on fresh topics; rebuild each view ``rounds`` times into each store."""
    settings = settings.model_copy(update={"topic_prefix": f"stores{uuid.uuid4().hex[:6]}."})
    await make_topics(settings, settings.topic_prefix, [])
    events = generated_events(count, seed=EVENTS_SEED)
    async with EventPublisher(settings) as publisher:
        for event in events:
            await publisher.enqueue(event)
        await publisher.flush()
    per_view = {
        view: sum(1 for e in events if e.EVENT_TYPE.category in SHIPPED_GROUPS[view].categories)
        for view in VIEWS
    }
    decode = [await _timed(noop_runner(settings, "stores-decode"), count) for _ in range(rounds)]
    report: dict[str, Any] = {
        "events": count,
        "rounds": rounds,
        "decode_events_per_s": round(statistics.median(m.rate for m in decode)),
        "decode_cpu_us_per_event": round(statistics.median(m.cpu_us_per_event for m in decode), 1),
        "views": {},
    }
    with postgres_server() as server_url:
        report["postgres"] = await _server_facts(server_url)
        for view in VIEWS:
            runs: dict[str, list[dict[str, Any]]] = {"sqlite": [], "postgresql": []}
            for _ in range(rounds):
                async with SqliteStore(directory / f"{view}-{uuid.uuid4().hex[:6]}.db") as store:
                    runs["sqlite"].append(await _build(settings, view, store, per_view[view]))
                runs["postgresql"].append(
                    await _into_postgres(settings, view, server_url, per_view[view])
                )
            report["views"][view] = {"events": per_view[view], **runs}
    return report


async def _server_facts(url: str) -> dict[str, str]:
    connection = await asyncpg.connect(url)
    try:
        return {
            name: str(await connection.fetchval(f"SHOW {name}"))
            for name in ("server_version", "fsync", "synchronous_commit", "full_page_writes")
        }
    finally:
        await connection.close()


def _spaced(number: int) -> str:
    return f"{number:,}".replace(",", " ")


def _rates(runs: list[dict[str, Any]]) -> str:
    return " / ".join(_spaced(run["events_per_s"]) for run in runs)


def _problems(runs: list[dict[str, Any]]) -> str:
    deadlocks = sum(run.get("deadlocks", 0) for run in runs)
    fallbacks = [run["fallbacks"] for run in runs if run.get("fallbacks") is not None]
    return f"{deadlocks} / {sum(fallbacks) if fallbacks else 'not counted'}"


def stores_markdown(stores: dict[str, Any]) -> list[str]:
    """The store side as markdown lines: one row per view, each round's rate."""
    pg = stores["postgres"]
    caption = (
        f"Views rebuilt from the earliest offsets, events/s, each round ({stores['rounds']}); "
        f"PostgreSQL {pg['server_version']} with fsync {pg['fsync']}, synchronous_commit "
        f"{pg['synchronous_commit']}. Read + decode alone (no store): "
        f"{_spaced(stores['decode_events_per_s'])} events/s."
    )
    lines = [
        caption,
        "",
        "| view | events | SQLite | PostgreSQL | PostgreSQL deadlocks / batches retried |",
        "|---|---|---|---|---|",
    ]
    lines.extend(
        f"| {view} | {_spaced(runs['events'])} | {_rates(runs['sqlite'])} | "
        f"{_rates(runs['postgresql'])} | {_problems(runs['postgresql'])} |"
        for view, runs in stores["views"].items()
    )
    return lines + _statements_markdown(stores["views"])


def _statements_markdown(views: dict[str, Any]) -> list[str]:
    """Where PostgreSQL's time went in each view's last build, when the server said."""
    lines = [
        f"- {view}: "
        + "; ".join(
            f"`{found['statement']}…` {found['server_us_per_event']} µs ({_spaced(found['calls'])} calls)"
            for found in statements
        )
        for view, runs in views.items()
        if (statements := runs["postgresql"][-1].get("statements"))
    ]
    if not lines:
        return []
    caption = (
        "PostgreSQL's execution time per event of the statements that took it longest, in each "
        "view's last build (`pg_stat_statements`; the client's side of each round trip is not in it):"
    )
    return ["", caption, "", *lines]
