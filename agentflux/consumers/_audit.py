"""The audit view: append-only hash chains in publish order, with gaps and late events as evidence.

A session's events are chained per producer, in the order that producer published them (the
envelope's ``producer_id`` and ``sequence``, version 2), whatever topic each went to and in
whatever order they arrive: an event whose predecessor has not arrived yet is held until it
does. So the same events give the same chains and hashes on the live view, on any rebuild and on
a copy of the topics. Each record's hash is ``sha256(previous hash + payload)``.

* A sequence number still missing when the held event after it is overdue (``_audit_clock``:
  the session's partitions moved ``grace_s`` past it in event time, or delivered nothing for
  ``grace_s`` of wall-clock time) is recorded as a **gap** record in its place; the chain goes
  on. If the event arrives later it is appended as **late**, never spliced in. An event seen
  twice (same event id) is recorded once.
* Events without a sequence (envelope version 1, the timeout job's, other clients') are
  chained per session and topic (chain ``topic:<topic>``), in the topic's order: a session's
  events of one topic are in one partition, in offset order.

A fetched batch is applied with a handful of statements (``apply_batch``): the chains' ends
read and locked at once, the batch folded in memory (``_audit_chain``), then one multi-row
statement each for the records, the chains' ends and the held events.

Held events are kept in memory too, between batches (``_HeldCache``): a rebuild reads the topics
at different speeds, so a large share of events wait for a predecessor over several batches, and
reading them all back from the store each batch cost more than holding them. The store stays the
truth: each chain's cursor row carries a ``held_token``, a new random value whenever that chain's
held events change ('' when none are held), and the copy in memory is used only while its token
is the one the locked cursor row holds (a rolled back batch, another member, a restart: read
again).
"""

from __future__ import annotations

import logging
import math
import secrets
import time
from operator import itemgetter
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import structlog
from prometheus_client import Counter

from agentflux.consumers._audit_chain import GENESIS, ChainEnd, ChainKey, Entry, Fold
from agentflux.consumers._audit_clock import StreamClock
from agentflux.consumers._audit_report import (
    ChainReport,
    audit_report,
    get_audit_log,
    verify_audit,
)
from agentflux.kafka import AgentfluxSettings
from agentflux.schemas import EventCategory

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Sequence

    from agentflux.consumers._ports import Transaction
    from agentflux.consumers._records import Position
    from agentflux.schemas import BaseEvent

__all__ = [
    "AuditView",
    "ChainReport",
    "audit_report",
    "get_audit_log",
    "verify_audit",
]

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
_EVERYTHING = 2**62  # a cutoff (ms) past every event: each held event is overdue
# PostgreSQL stores made before event ids were unique per session: their UNIQUE (event_id)
# constraints, found by column in the catalog (their names are PostgreSQL's choice), dropped.
# SQLite cannot drop a table constraint's index (its stores keep it, stricter but correct);
# its adapter skips DO blocks.
_DROP_GLOBAL_EVENT_IDS = """DO $$
DECLARE found record;
BEGIN
  FOR found IN
    SELECT c.conrelid::regclass AS table_name, c.conname FROM pg_constraint c
    JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
    WHERE c.conrelid IN ('audit_chain'::regclass, 'audit_pending'::regclass)
      AND c.contype = 'u' AND cardinality(c.conkey) = 1 AND a.attname = 'event_id'
  LOOP
    EXECUTE format('ALTER TABLE %s DROP CONSTRAINT IF EXISTS %I', found.table_name, found.conname);
  END LOOP;
END $$"""


class AuditView:
    """Appends each event to its session's chain for its producer, in publish order."""

    name = "audit"
    ddl = (
        (
            "CREATE TABLE IF NOT EXISTS audit_chain (session_id TEXT NOT NULL, chain TEXT NOT NULL, "
            "seq BIGINT NOT NULL, kind TEXT NOT NULL, event_id TEXT, event_type TEXT NOT NULL, "
            "occurred_ms BIGINT NOT NULL, topic TEXT NOT NULL, part INTEGER NOT NULL, off BIGINT NOT NULL, "
            "producer_id TEXT, sequence BIGINT, payload TEXT NOT NULL, prev_hash TEXT NOT NULL, "
            "hash TEXT NOT NULL, PRIMARY KEY (session_id, chain, seq))"
        ),
        # No time indexes (earlier versions made these two): each cost a random-key B-tree
        # insert per record while neither verify nor chain-order reads use them; filters by
        # type or time read the table in chain order (the primary key) up to the limit.
        "DROP INDEX IF EXISTS audit_by_type_time",
        "DROP INDEX IF EXISTS audit_by_time",
        (
            "CREATE TABLE IF NOT EXISTS audit_cursor (session_id TEXT NOT NULL, chain TEXT NOT NULL, "
            "next_sequence BIGINT NOT NULL, last_seq BIGINT NOT NULL, last_hash TEXT NOT NULL, "
            "held_token TEXT, PRIMARY KEY (session_id, chain))"
        ),
        # NULL in rows of earlier versions: what the chain holds is not known, it is read.
        "ALTER TABLE audit_cursor ADD COLUMN IF NOT EXISTS held_token TEXT",
        (
            "CREATE TABLE IF NOT EXISTS audit_pending (session_id TEXT NOT NULL, chain TEXT NOT NULL, "
            "sequence BIGINT NOT NULL, event_id TEXT NOT NULL, event_type TEXT NOT NULL, "
            "occurred_ms BIGINT NOT NULL, topic TEXT NOT NULL, part INTEGER NOT NULL, off BIGINT NOT NULL, "
            "producer_id TEXT, payload TEXT NOT NULL, held_ms BIGINT NOT NULL, "
            "PRIMARY KEY (session_id, chain, sequence))"
        ),
        "CREATE INDEX IF NOT EXISTS audit_pending_by_time ON audit_pending (part, occurred_ms)",
        # An event's identity is (session_id, event_id): a key that starts with the session
        # lands on the session's pages, where a global random key touched a page per record.
        _DROP_GLOBAL_EVENT_IDS,
        "CREATE UNIQUE INDEX IF NOT EXISTS audit_chain_event ON audit_chain (session_id, event_id)",
        "CREATE UNIQUE INDEX IF NOT EXISTS audit_pending_event ON audit_pending (session_id, event_id)",
    )
    # Read in step across the category topics while behind (``InStepView``): a rebuild reads
    # the topics at different speeds, and every event waiting for a predecessor across
    # fetches costs a held row written and deleted.
    reads_in_step: ClassVar[Literal[True]] = True
    # When an event was held is the wall clock of the build; everything else is the events'.
    # The held token is random: it says whether a copy in memory is current, nothing else.
    order_dependent_columns: ClassVar[dict[str, tuple[str, ...]]] = {
        "audit_pending": ("held_ms",),
        "audit_cursor": ("held_token",),
    }

    def __init__(
        self, grace_s: float | None = None, *, clock: Callable[[], float] = time.time
    ) -> None:
        """Hold out-of-order events up to ``grace_s`` seconds; ``clock`` is for tests.

        The default is the ``audit_grace_s`` setting (``AGENTFLUX_AUDIT_GRACE_S``, 30 s).
        """
        settings = AgentfluxSettings()
        self.grace_s = settings.audit_grace_s if grace_s is None else grace_s
        self.stream = StreamClock(self.grace_s, clock)
        # Until a runner says which topics its member reads (``follow``): the category topics.
        self.stream.follow([settings.topic_prefix + c.topic for c in EventCategory], None)
        self._held = _HeldCache()

    def follow(self, topics: Collection[str], assigned: Callable[[], Collection[int]]) -> None:
        """Decide gaps over a member's ``topics`` and the partition numbers ``assigned()`` gives."""
        self.stream.follow(topics, assigned)

    async def apply(self, tx: Transaction, event: BaseEvent, position: Position) -> None:
        """Chain the event in publish order (once: a known event id is ignored)."""
        await self.apply_batch(tx, [(event, position)])

    async def apply_batch(
        self, tx: Transaction, events: Sequence[tuple[BaseEvent, Position]]
    ) -> None:
        """Chain a batch: the same records as ``apply`` on each event in turn, few statements."""
        now = self.stream.now()
        entries: dict[tuple[str, str], Entry] = {}
        for event, position in events:
            entry = Entry.of(event, position)
            self.stream.observe(position.topic, position.partition, entry.occurred_ms, now)
            # A duplicate within the batch: once.
            entries.setdefault((entry.session_id, entry.event_id), entry)
        await self._settle(tx, list(entries.values()), self.stream.cutoffs(now), now)

    async def sweep(self, tx: Transaction, *, everything: bool = False) -> int:
        """Record the gaps before overdue held events; return how many numbers were missing.

        ``everything``: every held event is overdue (a rebuild that has read all it will read).
        """
        now = self.stream.now()
        cutoffs = {-1: float(_EVERYTHING)} if everything else self.stream.cutoffs(now)
        return await self._settle(tx, [], cutoffs, now)

    async def _settle(
        self, tx: Transaction, entries: list[Entry], cutoffs: dict[int, float], now: float
    ) -> int:
        """Place ``entries``, close the overdue chains, write it all; the numbers found missing."""
        overdue_keys = await _overdue_chains(tx, cutoffs)
        keys = sorted({entry.key for entry in entries} | overdue_keys)
        if not keys:
            return 0
        ends, tokens = await _lock_ends(tx, keys)
        known = await _known_ids(tx, [(entry.session_id, entry.event_id) for entry in entries])
        sequenced = [key for key in keys if not key[1].startswith("topic:")]
        self._held.follow(self.stream.assignment())
        waiting, unknown = self._held.take(sequenced, tokens, overdue_keys)
        waiting.update(await _held(tx, unknown))
        fold = Fold(ends, waiting, held_ms=int(now * 1000))
        for entry in entries:
            if (entry.session_id, entry.event_id) not in known:
                fold.place(entry)
        for key in fold.held_keys():
            fold.close(key, lambda e: e.occurred_ms < cutoffs.get(e.part, cutoffs.get(-1, -1)))
        new_tokens = _new_tokens(fold, tokens, unknown)
        tokens.update(new_tokens)
        await _write(tx, fold, tokens, set(new_tokens))
        self._held.keep(fold.waiting, sequenced, tokens)
        self._account(fold)
        return fold.gaps

    @staticmethod
    def _account(fold: Fold) -> None:
        if fold.gaps:
            _GAPS.labels("audit").inc(fold.gaps)
        if fold.late:
            _LATE.labels("audit").inc(fold.late)
        for session_id, chain, first, last in fold.gap_records:
            _log.warning(
                "audit gap",
                session_id=session_id,
                producer_id=chain,
                missing_from=first,
                missing_to=last,
            )
        # The audit trail is the table, not the log: one line per record only when the standard
        # library's "agentflux.audit" logger is at DEBUG (checked once a batch).
        if fold.records and _stdlib_log.isEnabledFor(logging.DEBUG):
            for record in fold.records:
                session_id, chain, seq, kind, event_id = record[:5]
                _log.debug(
                    "audited",
                    session_id=session_id,
                    chain=chain,
                    seq=seq,
                    kind=kind,
                    event_id=event_id,
                    hash=record[-1],
                )


class _HeldCache:
    """Each chain's held events as the store held them when the chain's ``held_token`` was set.

    Entries are taken out while a batch folds them (a batch that fails leaves nothing behind)
    and put back with the token written. Dropped when the member's partitions change: a
    chain another member wrote meanwhile is read again even were its token to match.
    """

    # Events kept (about 1 KB each with their payload); past that the copy starts again empty
    # and chains are read from the store as before: memory stays bounded in an outage too.
    MOST_EVENTS = 50_000

    def __init__(self) -> None:
        self._chains: dict[ChainKey, tuple[str, dict[int, Entry]]] = {}
        self._events = 0  # held events in _chains
        self._assignment: frozenset[int] | None = None

    def follow(self, assignment: frozenset[int] | None) -> None:
        """Forget everything when the partitions assigned change."""
        if assignment != self._assignment:
            self._forget()
            self._assignment = assignment

    def _forget(self) -> None:
        self._chains.clear()
        self._events = 0

    def take(
        self,
        keys: list[ChainKey],
        tokens: dict[ChainKey, str | None],
        overdue: set[ChainKey],
    ) -> tuple[dict[ChainKey, dict[int, Entry]], list[ChainKey]]:
        """The held events of ``keys`` known from memory, and the keys to read from the store.

        '' holds nothing, unless the store has an overdue event for the chain (a row written
        by a version before the tokens): then it is read.
        """
        known: dict[ChainKey, dict[int, Entry]] = {}
        unknown: list[ChainKey] = []
        for key in keys:
            token, cached = tokens.get(key), self._chains.pop(key, None)
            if cached is not None:
                self._events -= len(cached[1])
            if token == "" and key not in overdue:  # '' (nothing held) differs from None (unknown)
                continue
            if cached is not None and token is not None and cached[0] == token:
                known[key] = cached[1]
            else:
                unknown.append(key)
        return known, unknown

    def keep(
        self,
        waiting: dict[ChainKey, dict[int, Entry]],
        keys: list[ChainKey],
        tokens: dict[ChainKey, str | None],
    ) -> None:
        """Remember what ``keys`` hold after a batch, under the tokens it wrote."""
        for key in keys:
            held, token = waiting.get(key), tokens.get(key)
            if held and token:
                self._chains[key] = (token, held)
                self._events += len(held)
        if self._events > self.MOST_EVENTS:
            self._forget()


def _new_tokens(
    fold: Fold, tokens: dict[ChainKey, str | None], unknown: list[ChainKey]
) -> dict[ChainKey, str]:
    """A token for each chain whose held events changed, or were read for want of one."""
    stored = fold.stored
    touched = {
        key for key, held in fold.waiting.items() if any((key, n) not in stored for n in held)
    }
    touched.update((session_id, chain) for session_id, chain, _ in fold.released)
    touched.update(key for key in unknown if tokens.get(key) is None)
    return {key: secrets.token_hex(8) if fold.waiting.get(key) else "" for key in touched}


async def _overdue_chains(tx: Transaction, cutoffs: dict[int, float]) -> set[ChainKey]:
    """The chains holding an event that is overdue by ``cutoffs`` (-1: every partition)."""
    if not cutoffs:
        return set()
    if -1 in cutoffs:
        rows = await tx.fetch("SELECT DISTINCT session_id, chain FROM audit_pending")
    else:
        bounds = [(part, min(cutoff, _EVERYTHING)) for part, cutoff in sorted(cutoffs.items())]
        rows = await tx.fetch_rows(
            _OVERDUE, _CUTOFF_COLUMNS, [(p, math.ceil(c)) for p, c in bounds]
        )
    return {(row["session_id"], row["chain"]) for row in rows}


async def _lock_ends(
    tx: Transaction, keys: list[ChainKey]
) -> tuple[dict[ChainKey, ChainEnd], dict[ChainKey, str | None]]:
    """The ends of ``keys`` (new chains made) and their held tokens, locked until commit.

    One writer per chain.

    The upsert takes PostgreSQL's row lock even when it changes nothing (a concurrent
    transaction on the same chain waits, then sees what this one held or appended); SQLite
    writes one transaction at a time. Keys in order: concurrent writers lock in one order.
    """
    rows = await tx.fetch_rows(_LOCK_ENDS, _KEY_COLUMNS, keys)
    ends: dict[ChainKey, ChainEnd] = {}
    tokens: dict[ChainKey, str | None] = {}
    for row in rows:
        key = (row["session_id"], row["chain"])
        ends[key] = ChainEnd(int(row["next_sequence"]), int(row["last_seq"]), str(row["last_hash"]))
        tokens[key] = row["held_token"]
    return ends, tokens


async def _known_ids(tx: Transaction, event_ids: list[tuple[str, str]]) -> set[tuple[str, str]]:
    """The (session_id, event_id) pairs already chained or held."""
    if not event_ids:
        return set()
    rows = await tx.fetch_rows(_KNOWN, _ID_COLUMNS, sorted(event_ids))
    return {(row["session_id"], row["event_id"]) for row in rows}


async def _held(tx: Transaction, keys: list[ChainKey]) -> dict[ChainKey, dict[int, Entry]]:
    held: dict[ChainKey, dict[int, Entry]] = {}
    for row in await tx.fetch_rows(_HELD, _KEY_COLUMNS, keys) if keys else []:
        entry = Entry.held(row)
        assert entry.sequence is not None  # noqa: S101  # held events are numbered
        held.setdefault(entry.key, {})[entry.sequence] = entry
    return held


async def _write(
    tx: Transaction, fold: Fold, tokens: dict[ChainKey, str | None], retokened: set[ChainKey]
) -> None:
    """Everything the fold decided, one statement per table, each in key order.

    ``tokens``: each chain's held token; the cursor rows of the chains that got a record or a
    new token (``retokened``) are written.
    """
    await tx.execute_rows(_RELEASE, _HELD_KEY_COLUMNS, sorted(fold.released))
    await tx.insert_rows(
        "audit_pending", _HOLD_COLUMNS, [_held_row(e, fold.held_ms) for e in fold.new_held()]
    )
    records: list[tuple[Any, ...]] = sorted(fold.records, key=_RECORD_KEY)
    await tx.insert_rows("audit_chain", _RECORD_COLUMNS, records)
    await tx.execute_rows(
        _MOVE_ENDS,
        _END_COLUMNS,
        [
            (*key, end.next_sequence, end.last_seq, end.last_hash, tokens.get(key))
            for key in sorted(fold.changed | retokened)
            for end in (fold.ends[key],)
        ],
    )


def _held_row(e: Entry, held_ms: int) -> tuple[Any, ...]:
    """A row of ``audit_pending`` (``_HOLD_COLUMNS``)."""
    return (
        e.session_id,
        e.chain,
        e.sequence,
        e.event_id,
        e.event_type,
        e.occurred_ms,
        e.topic,
        e.part,
        e.off,
        e.producer_id,
        e.payload,
        held_ms,
    )


_RECORD_KEY = itemgetter(0, 1, 2)  # (session_id, chain, seq): a record's place


_KEY_COLUMNS = (("session_id", "TEXT"), ("chain", "TEXT"))
_ID_COLUMNS = (("session_id", "TEXT"), ("event_id", "TEXT"))
_CUTOFF_COLUMNS = (("part", "INTEGER"), ("cutoff", "BIGINT"))
_HELD_KEY_COLUMNS = (*_KEY_COLUMNS, ("sequence", "BIGINT"))
_END_COLUMNS = (
    *_KEY_COLUMNS,
    ("next_sequence", "BIGINT"),
    ("last_seq", "BIGINT"),
    ("last_hash", "TEXT"),
    ("held_token", "TEXT"),
)
# Where an event came from, as both audit_pending and audit_chain keep it.
_EVENT_COLUMNS = (
    ("event_id", "TEXT"),
    ("event_type", "TEXT"),
    ("occurred_ms", "BIGINT"),
    ("topic", "TEXT"),
    ("part", "INTEGER"),
    ("off", "BIGINT"),
    ("producer_id", "TEXT"),
)
_HOLD_COLUMNS = (*_HELD_KEY_COLUMNS, *_EVENT_COLUMNS, ("payload", "TEXT"), ("held_ms", "BIGINT"))
_RECORD_COLUMNS = (
    *_KEY_COLUMNS,
    ("seq", "BIGINT"),
    ("kind", "TEXT"),
    *_EVENT_COLUMNS,
    ("sequence", "BIGINT"),
    ("payload", "TEXT"),
    ("prev_hash", "TEXT"),
    ("hash", "TEXT"),
)
_OVERDUE = (
    "SELECT DISTINCT p.session_id, p.chain FROM audit_pending p JOIN {rows} "
    "ON p.part = r.part AND p.occurred_ms < r.cutoff"
)
_LOCK_ENDS = (
    "INSERT INTO audit_cursor (session_id, chain, next_sequence, last_seq, last_hash, "  # noqa: S608  # GENESIS is ours
    "held_token) "
    f"SELECT r.session_id, r.chain, 0, 0, '{GENESIS}', '' FROM {{rows}} WHERE true "
    "ON CONFLICT (session_id, chain) DO UPDATE SET last_seq = audit_cursor.last_seq "
    "RETURNING session_id, chain, next_sequence, last_seq, last_hash, held_token"
)
_KNOWN = (
    "SELECT r.session_id, r.event_id FROM {rows} WHERE EXISTS (SELECT 1 FROM audit_chain c "
    "WHERE c.session_id = r.session_id AND c.event_id = r.event_id) OR EXISTS (SELECT 1 "
    "FROM audit_pending p WHERE p.session_id = r.session_id AND p.event_id = r.event_id)"
)
_HELD = (
    "SELECT p.session_id, p.chain, p.sequence, p.event_id, p.event_type, p.occurred_ms, p.topic, "
    "p.part, p.off, p.producer_id, p.payload FROM audit_pending p JOIN {rows} "
    "ON p.session_id = r.session_id AND p.chain = r.chain"
)
_RELEASE = (
    "DELETE FROM audit_pending WHERE (session_id, chain, sequence) IN "
    "(SELECT r.session_id, r.chain, r.sequence FROM {rows})"
)
_MOVE_ENDS = (
    "UPDATE audit_cursor SET next_sequence = r.next_sequence, last_seq = r.last_seq, "
    "last_hash = r.last_hash, held_token = r.held_token FROM {rows} "
    "WHERE audit_cursor.session_id = r.session_id AND audit_cursor.chain = r.chain"
)
