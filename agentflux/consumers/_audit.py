"""The audit view: append-only hash chains in publish order, with gaps and late events as evidence.

A session's events are chained per producer, in the order that producer published them (the
envelope's ``producer_id`` and ``sequence``, version 2), whatever topic each went to and in
whatever order they arrive: an event whose predecessor has not arrived yet is held until it
does. So the same events give the same chains and hashes on the live view, on any rebuild and on
a copy of the topics. Each record's hash is ``sha256(previous hash + payload)``.

* A sequence number still missing ``grace_s`` after a later one arrived is recorded as a
  **gap** record in its place; the chain goes on. If the event arrives later it is appended as
  **late**, never spliced in. An event seen twice (same event id) is recorded once.
* Events without a sequence (envelope version 1, the timeout job's, other clients') are
  chained per session and topic (chain ``topic:<topic>``), in the topic's order: a session's
  events of one topic are in one partition, in offset order.

Which events are held, and when a gap is declared, depends on when events arrive: a gap and the
late event after it are what the live view saw; a rebuild that finds the event in time chains it
normally.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import structlog
from prometheus_client import Counter

from agentflux.kafka import AgentfluxSettings

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from agentflux.consumers._ports import Store, Transaction
    from agentflux.consumers._records import Position
    from agentflux.schemas import BaseEvent

__all__ = [
    "AuditView",
    "ChainReport",
    "audit_report",
    "get_audit_log",
    "verify_audit",
]

_GENESIS = "0" * 64
_SWEEP_EVERY_S = 1.0  # how often pending events are checked against the grace period

_log = structlog.get_logger("agentflux.audit")
_stdlib_log = logging.getLogger("agentflux.audit")
_GAPS = Counter(
    "agentflux_audit_gaps", "Sequence numbers recorded as missing in an audit chain", ["group"]
)
_LATE = Counter(
    "agentflux_audit_late_events",
    "Events appended as late, after their gap was recorded",
    ["group"],
)

_COLUMNS = (
    "session_id, chain, seq, kind, event_id, event_type, occurred_ms, topic, part, off, "
    "producer_id, sequence, payload, prev_hash, hash"
)


def _chain(previous: str, payload: str) -> str:
    return hashlib.sha256(f"{previous}{payload}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class _Entry:
    """An event as the chain records it."""

    session_id: str
    chain: str
    event_id: str
    event_type: str
    occurred_ms: int
    topic: str
    part: int
    off: int
    producer_id: str | None
    sequence: int | None
    payload: str

    @classmethod
    def of(cls, event: BaseEvent, position: Position) -> _Entry:
        payload = json.dumps(event.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        # Version 2: the producer's chain (a sequence without a producer id is one producer too).
        sequenced = event.sequence is not None
        return cls(
            session_id=event.session_id,
            chain=(event.producer_id or "") if sequenced else f"topic:{event.topic}",
            event_id=str(event.event_id),
            event_type=event.EVENT_TYPE.value,
            occurred_ms=int(event.occurred_at.timestamp() * 1000),
            topic=position.topic,
            part=position.partition,
            off=position.offset,
            producer_id=event.producer_id if sequenced else None,
            sequence=event.sequence,
            payload=payload,
        )


class AuditView:
    """Appends each event to its session's chain for its producer, in publish order."""

    name = "audit"
    ddl = (
        (
            "CREATE TABLE IF NOT EXISTS audit_chain (session_id TEXT NOT NULL, chain TEXT NOT NULL, "
            "seq BIGINT NOT NULL, kind TEXT NOT NULL, event_id TEXT UNIQUE, event_type TEXT NOT NULL, "
            "occurred_ms BIGINT NOT NULL, topic TEXT NOT NULL, part INTEGER NOT NULL, off BIGINT NOT NULL, "
            "producer_id TEXT, sequence BIGINT, payload TEXT NOT NULL, prev_hash TEXT NOT NULL, "
            "hash TEXT NOT NULL, PRIMARY KEY (session_id, chain, seq))"
        ),
        "CREATE INDEX IF NOT EXISTS audit_by_type_time ON audit_chain (event_type, occurred_ms)",
        "CREATE INDEX IF NOT EXISTS audit_by_time ON audit_chain (occurred_ms)",
        (
            "CREATE TABLE IF NOT EXISTS audit_cursor (session_id TEXT NOT NULL, chain TEXT NOT NULL, "
            "next_sequence BIGINT NOT NULL, last_seq BIGINT NOT NULL, last_hash TEXT NOT NULL, "
            "PRIMARY KEY (session_id, chain))"
        ),
        (
            "CREATE TABLE IF NOT EXISTS audit_pending (session_id TEXT NOT NULL, chain TEXT NOT NULL, "
            "sequence BIGINT NOT NULL, event_id TEXT NOT NULL UNIQUE, event_type TEXT NOT NULL, "
            "occurred_ms BIGINT NOT NULL, topic TEXT NOT NULL, part INTEGER NOT NULL, off BIGINT NOT NULL, "
            "producer_id TEXT, payload TEXT NOT NULL, held_ms BIGINT NOT NULL, "
            "PRIMARY KEY (session_id, chain, sequence))"
        ),
        "CREATE INDEX IF NOT EXISTS audit_pending_by_time ON audit_pending (held_ms)",
    )
    # When an event was held is the wall clock of the build; everything else is the events'.
    order_dependent_columns: ClassVar[dict[str, tuple[str, ...]]] = {"audit_pending": ("held_ms",)}

    def __init__(
        self, grace_s: float | None = None, *, clock: Callable[[], float] = time.time
    ) -> None:
        """Hold out-of-order events up to ``grace_s`` seconds; ``clock`` is for tests.

        The default is the ``audit_grace_s`` setting (``AGENTFLUX_AUDIT_GRACE_S``, 30 s).
        """
        self.grace_s = AgentfluxSettings().audit_grace_s if grace_s is None else grace_s
        self._clock = clock
        self._swept_at = float("-inf")

    async def apply(self, tx: Transaction, event: BaseEvent, position: Position) -> None:
        """Chain the event in publish order (once: a known event id is ignored)."""
        entry = _Entry.of(event, position)
        await _lock(tx, entry.session_id, entry.chain)
        if await _known(tx, entry.event_id):
            return
        if entry.sequence is None:  # envelope v1: the topic's order
            await _append(tx, entry, "event")
        else:
            await self._place(tx, entry)
        now = self._clock()
        if now - self._swept_at >= _SWEEP_EVERY_S:
            self._swept_at = now
            await self.sweep(tx, now)

    async def _place(self, tx: Transaction, entry: _Entry) -> None:
        cursor = await _cursor(tx, entry.session_id, entry.chain)
        expected = int(cursor["next_sequence"])
        assert entry.sequence is not None  # noqa: S101  # _place is for sequenced events
        if entry.sequence == expected:
            await _append(tx, entry, "event")
            await _drain(tx, entry.session_id, entry.chain)
        elif entry.sequence > expected and not await _held(tx, entry):
            await _hold(tx, entry, int(self._clock() * 1000))
        else:  # its number was passed over (a gap) or is taken by another event: evidence
            await _append(tx, entry, "late")
            _LATE.labels("audit").inc()

    async def sweep(self, tx: Transaction, now: float | None = None) -> int:
        """Record the gaps before events held longer than the grace period; return how many."""
        cutoff = int(((self._clock() if now is None else now) - self.grace_s) * 1000)
        overdue = await tx.fetch(
            "SELECT session_id, chain, MIN(sequence) AS first FROM audit_pending "
            "WHERE held_ms <= $1 GROUP BY session_id, chain ORDER BY session_id, chain",
            cutoff,
        )
        gaps = 0
        for row in overdue:
            session_id, chain, first = row["session_id"], row["chain"], int(row["first"])
            await _lock(tx, session_id, chain)
            cursor = await _cursor(tx, session_id, chain)
            missing_from = int(cursor["next_sequence"])
            if first > missing_from:  # else its predecessor came meanwhile: nothing is missing
                await _append_gap(tx, session_id, chain, missing_from, first - 1)
                _GAPS.labels("audit").inc(first - missing_from)
                gaps += first - missing_from
            await _drain(tx, session_id, chain)
        return gaps


async def _known(tx: Transaction, event_id: str) -> bool:
    row = await tx.fetchone(
        "SELECT 1 AS known FROM audit_chain WHERE event_id = $1 "
        "UNION ALL SELECT 1 AS known FROM audit_pending WHERE event_id = $1",
        event_id,
    )
    return row is not None


async def _lock(tx: Transaction, session_id: str, chain: str) -> None:
    """Make the chain's cursor exist and lock it: one transaction at a time extends a chain.

    The no-op update takes PostgreSQL's row lock until commit (a concurrent transaction on the
    same chain waits, then sees what this one held or appended); SQLite writes one at a time.
    """
    await tx.execute(
        "INSERT INTO audit_cursor (session_id, chain, next_sequence, last_seq, last_hash) "
        "VALUES ($1, $2, 0, 0, $3) ON CONFLICT (session_id, chain) DO NOTHING",
        session_id,
        chain,
        _GENESIS,
    )
    await tx.execute(
        "UPDATE audit_cursor SET last_seq = last_seq WHERE session_id = $1 AND chain = $2",
        session_id,
        chain,
    )


async def _cursor(tx: Transaction, session_id: str, chain: str) -> dict[str, Any]:
    row = await tx.fetchone(
        "SELECT next_sequence, last_seq, last_hash FROM audit_cursor "
        "WHERE session_id = $1 AND chain = $2",
        session_id,
        chain,
    )
    assert row is not None  # noqa: S101  # _lock made it
    return row


async def _link(
    tx: Transaction, session_id: str, chain: str, payload: str, next_sequence: int | None
) -> tuple[int, str, str]:
    """(seq, previous hash, hash) of a record appended to a chain; the cursor moves past it."""
    cursor = await _cursor(tx, session_id, chain)
    seq = int(cursor["last_seq"]) + 1
    previous = str(cursor["last_hash"])
    digest = _chain(previous, payload)
    following = int(cursor["next_sequence"]) if next_sequence is None else next_sequence
    await tx.execute(
        "UPDATE audit_cursor SET next_sequence = $3, last_seq = $4, last_hash = $5 "
        "WHERE session_id = $1 AND chain = $2",
        session_id,
        chain,
        following,
        seq,
        digest,
    )
    return seq, previous, digest


async def _append(tx: Transaction, entry: _Entry, kind: str) -> None:
    """Append ``entry`` at the end of its chain as ``kind`` ('event' or 'late')."""
    # A late event does not move the expected number: the chain already passed it.
    following = entry.sequence + 1 if kind == "event" and entry.sequence is not None else None
    seq, previous, digest = await _link(tx, entry.session_id, entry.chain, entry.payload, following)
    await tx.execute(
        f"INSERT INTO audit_chain ({_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",  # noqa: S608  # column names are ours
        entry.session_id,
        entry.chain,
        seq,
        kind,
        entry.event_id,
        entry.event_type,
        entry.occurred_ms,
        entry.topic,
        entry.part,
        entry.off,
        entry.producer_id,
        entry.sequence,
        entry.payload,
        previous,
        digest,
    )
    # The audit trail is the table above, not the log: one line per event only when the
    # standard library's "agentflux.audit" logger is at DEBUG (its check is cached).
    if _stdlib_log.isEnabledFor(logging.DEBUG):
        _log.debug(
            "audited",
            session_id=entry.session_id,
            chain=entry.chain,
            seq=seq,
            kind=kind,
            event_id=entry.event_id,
            hash=digest,
        )


async def _append_gap(tx: Transaction, session_id: str, chain: str, first: int, last: int) -> None:
    """A record standing for the sequence numbers ``first``..``last`` that never arrived."""
    payload = json.dumps({"missing_from": first, "missing_to": last}, separators=(",", ":"))
    seq, previous, digest = await _link(tx, session_id, chain, payload, last + 1)
    await tx.execute(
        f"INSERT INTO audit_chain ({_COLUMNS}) VALUES ($1, $2, $3, 'gap', NULL, 'gap', 0, '', -1, -1, $4, $5, $6, $7, $8)",  # noqa: S608  # column names are ours
        session_id,
        chain,
        seq,
        chain,
        first,
        payload,
        previous,
        digest,
    )
    _log.warning(
        "audit gap", session_id=session_id, producer_id=chain, missing_from=first, missing_to=last
    )


async def _held(tx: Transaction, entry: _Entry) -> bool:
    """Whether another event already waits with this number (a producer that reused it)."""
    row = await tx.fetchone(
        "SELECT 1 AS held FROM audit_pending WHERE session_id = $1 AND chain = $2 AND sequence = $3",
        entry.session_id,
        entry.chain,
        entry.sequence,
    )
    return row is not None


async def _hold(tx: Transaction, entry: _Entry, held_ms: int) -> None:
    await tx.execute(
        "INSERT INTO audit_pending (session_id, chain, sequence, event_id, event_type, occurred_ms, topic, part, off, "
        "producer_id, payload, held_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        entry.session_id,
        entry.chain,
        entry.sequence,
        entry.event_id,
        entry.event_type,
        entry.occurred_ms,
        entry.topic,
        entry.part,
        entry.off,
        entry.producer_id,
        entry.payload,
        held_ms,
    )


async def _drain(tx: Transaction, session_id: str, chain: str) -> None:
    """Append the held events that now follow the chain's end, in order."""
    while True:
        cursor = await _cursor(tx, session_id, chain)
        row = await tx.fetchone(
            "SELECT * FROM audit_pending WHERE session_id = $1 AND chain = $2 AND sequence = $3",
            session_id,
            chain,
            int(cursor["next_sequence"]),
        )
        if row is None:
            return
        await tx.execute(
            "DELETE FROM audit_pending WHERE session_id = $1 AND chain = $2 AND sequence = $3",
            session_id,
            chain,
            row["sequence"],
        )
        entry = _Entry(
            session_id,
            chain,
            row["event_id"],
            row["event_type"],
            int(row["occurred_ms"]),
            row["topic"],
            int(row["part"]),
            int(row["off"]),
            row["producer_id"],
            int(row["sequence"]),
            row["payload"],
        )
        await _append(tx, entry, "event")


async def get_audit_log(  # noqa: PLR0913  # the old logger's filters, all optional
    store: Store,
    *,
    session_id: str | None = None,
    event_type: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Audit records matching every given filter, in chain order (by session, chain, seq)."""
    rows = await store.rows(
        f"SELECT {_COLUMNS} FROM audit_chain "  # noqa: S608  # column names are ours
        "WHERE (CAST($1 AS TEXT) IS NULL OR session_id = $1) AND (CAST($2 AS TEXT) IS NULL OR event_type = $2) "
        "AND (CAST($3 AS BIGINT) IS NULL OR occurred_ms >= $3) AND (CAST($4 AS BIGINT) IS NULL OR occurred_ms < $4) "
        "ORDER BY session_id, chain, seq LIMIT $5",
        session_id,
        event_type,
        None if since is None else int(since.timestamp() * 1000),
        None if until is None else int(until.timestamp() * 1000),
        limit,
    )
    return [{**row, "payload": json.loads(row["payload"])} for row in rows]


@dataclass(slots=True)
class ChainReport:
    """What ``verify_audit`` found in one session's chains."""

    session_id: str
    records: int = 0
    gaps: int = 0  # sequence numbers recorded as missing
    late: int = 0
    pending: int = 0  # events still waiting for a predecessor
    tampered: list[str] | None = None  # each broken link, described

    @property
    def status(self) -> str:
        """``tampered``, ``gaps``, ``late``, ``pending`` or ``intact`` (the worst that applies)."""
        for name, found in (
            ("tampered", self.tampered),
            ("gaps", self.gaps),
            ("late", self.late),
            ("pending", self.pending),
        ):
            if found:
                return name
        return "intact"


async def verify_audit(store: Store) -> list[str]:
    """Every problem in the chains, one line each: edited or removed records, gaps, late events."""
    problems: list[str] = []
    for session_id, report in sorted((await audit_report(store)).items()):
        problems.extend(f"session {session_id} {problem}" for problem in report.tampered or ())
        if report.gaps:
            problems.append(f"session {session_id}: {report.gaps} event(s) never arrived (gaps)")
        if report.late:
            problems.append(f"session {session_id}: {report.late} event(s) arrived late")
    return problems


async def audit_report(store: Store) -> dict[str, ChainReport]:
    """Every session's chains checked link by link: what is intact, missing, late or edited."""
    reports: dict[str, ChainReport] = {}
    rows = await store.rows(
        "SELECT session_id, chain, seq, kind, event_id, sequence, payload, prev_hash, hash FROM audit_chain "
        "ORDER BY session_id, chain, seq"
    )
    current, expected_seq, expected_prev = ("", ""), 1, _GENESIS
    for row in rows:
        report = reports.setdefault(row["session_id"], ChainReport(row["session_id"]))
        if (row["session_id"], row["chain"]) != current:
            current, expected_seq, expected_prev = (row["session_id"], row["chain"]), 1, _GENESIS
        problems: list[str] = []
        where = f"chain {row['chain']} record {row['seq']}"
        if int(row["seq"]) != expected_seq:
            problems.append(f"{where}: records {expected_seq}..{int(row['seq']) - 1} removed")
        if row["prev_hash"] != expected_prev:
            problems.append(f"{where}: does not chain to the record before it")
        if _chain(row["prev_hash"], row["payload"]) != row["hash"]:
            problems.append(f"{where}: content changed after it was recorded")
        if problems:
            report.tampered = [*(report.tampered or []), *problems]
        report.records += 1
        if row["kind"] == "gap":
            missing = json.loads(row["payload"])
            report.gaps += int(missing["missing_to"]) - int(missing["missing_from"]) + 1
        elif row["kind"] == "late":
            report.late += 1
        expected_seq, expected_prev = int(row["seq"]) + 1, row["hash"]
    for row in await store.rows(
        "SELECT session_id, COUNT(*) AS held FROM audit_pending GROUP BY session_id"
    ):
        reports.setdefault(row["session_id"], ChainReport(row["session_id"])).pending = int(
            row["held"]
        )
    return reports
