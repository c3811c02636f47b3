"""The audit view: an append-only, hash-chained record of every event, queryable and verifiable."""

from __future__ import annotations

import hashlib
import json
import logging
from typing import TYPE_CHECKING, Any, ClassVar

import structlog

if TYPE_CHECKING:
    from datetime import datetime

    from agentflux.consumers._ports import Store, Transaction
    from agentflux.consumers._records import Position
    from agentflux.schemas import BaseEvent

__all__ = ["AuditView", "get_audit_log", "verify_audit"]

_GENESIS = "0" * 64
_log = structlog.get_logger("agentflux.audit")
_stdlib_log = logging.getLogger("agentflux.audit")


def _chain(previous: str, payload: str) -> str:
    return hashlib.sha256(f"{previous}{payload}".encode()).hexdigest()


class AuditView:
    """Appends each event to its session's chain: hash = sha256(previous hash + payload)."""

    name = "audit"
    ddl = (
        (
            "CREATE TABLE IF NOT EXISTS audit_log (session_id TEXT NOT NULL, seq BIGINT NOT NULL, event_id TEXT NOT NULL UNIQUE, "
            "event_type TEXT NOT NULL, occurred_ms BIGINT NOT NULL, topic TEXT NOT NULL, part INTEGER NOT NULL, off BIGINT NOT NULL, "
            "payload TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL, PRIMARY KEY (session_id, seq))"
        ),
        "CREATE INDEX IF NOT EXISTS audit_by_type_time ON audit_log (event_type, occurred_ms)",
        "CREATE INDEX IF NOT EXISTS audit_by_time ON audit_log (occurred_ms)",
    )
    # A session's chain interleaves its topics in arrival order, so two correct builds can
    # number and hash it differently; comparisons of two builds leave these columns out.
    order_dependent_columns: ClassVar[dict[str, tuple[str, ...]]] = {
        "audit_log": ("seq", "prev_hash", "hash")
    }

    async def apply(self, tx: Transaction, event: BaseEvent, position: Position) -> None:
        """Append the event to its session's chain (once: a known event id is ignored)."""
        if await tx.fetchone(
            "SELECT 1 AS known FROM audit_log WHERE event_id = $1", str(event.event_id)
        ):
            return
        last = await tx.fetchone(
            "SELECT seq, hash FROM audit_log WHERE session_id = $1 ORDER BY seq DESC LIMIT 1",
            event.session_id,
        )
        seq = 1 if last is None else int(last["seq"]) + 1
        previous = _GENESIS if last is None else str(last["hash"])
        payload = json.dumps(event.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        digest = _chain(previous, payload)
        await tx.execute(
            "INSERT INTO audit_log (session_id, seq, event_id, event_type, occurred_ms, topic, part, off, payload, prev_hash, hash) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            event.session_id,
            seq,
            str(event.event_id),
            event.EVENT_TYPE.value,
            int(event.occurred_at.timestamp() * 1000),
            position.topic,
            position.partition,
            position.offset,
            payload,
            previous,
            digest,
        )
        # The audit trail is the table above, not the log: one line per event only when the
        # standard library's "agentflux.audit" logger is at DEBUG (where the CLI's logging, and
        # most programs', decide; its check is cached), and no field is gathered otherwise.
        if _stdlib_log.isEnabledFor(logging.DEBUG):
            _log.debug(
                "audited",
                session_id=event.session_id,
                seq=seq,
                event_id=str(event.event_id),
                event_type=event.EVENT_TYPE.value,
                occurred_at=event.occurred_at.isoformat(),
                correlation_id=event.correlation_id,
                hash=digest,
            )


async def get_audit_log(  # noqa: PLR0913  # the old logger's filters, all optional
    store: Store,
    *,
    session_id: str | None = None,
    event_type: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Audit records matching every given filter, oldest first, at most ``limit``."""
    rows = await store.rows(
        "SELECT session_id, seq, event_id, event_type, occurred_ms, topic, part, off, payload, hash FROM audit_log "
        "WHERE (CAST($1 AS TEXT) IS NULL OR session_id = $1) AND (CAST($2 AS TEXT) IS NULL OR event_type = $2) "
        "AND (CAST($3 AS BIGINT) IS NULL OR occurred_ms >= $3) AND (CAST($4 AS BIGINT) IS NULL OR occurred_ms < $4) "
        "ORDER BY occurred_ms, session_id, seq LIMIT $5",
        session_id,
        event_type,
        None if since is None else int(since.timestamp() * 1000),
        None if until is None else int(until.timestamp() * 1000),
        limit,
    )
    return [{**row, "payload": json.loads(row["payload"])} for row in rows]


async def verify_audit(store: Store) -> list[str]:
    """Every broken link: a changed record, a removed one, or a forged chain. [] if intact."""
    problems: list[str] = []
    rows = await store.rows(
        "SELECT session_id, seq, event_id, payload, prev_hash, hash FROM audit_log ORDER BY session_id, seq"
    )
    previous_session, expected_seq, expected_prev = None, 1, _GENESIS
    for row in rows:
        if row["session_id"] != previous_session:
            previous_session, expected_seq, expected_prev = row["session_id"], 1, _GENESIS
        where = f"session {row['session_id']} record {row['seq']} (event {row['event_id']})"
        if int(row["seq"]) != expected_seq:
            problems.append(
                f"{where}: records {expected_seq}..{int(row['seq']) - 1} are missing (removed)"
            )
        if row["prev_hash"] != expected_prev:
            problems.append(
                f"{where}: does not chain to the record before it (removed or reordered)"
            )
        if _chain(row["prev_hash"], row["payload"]) != row["hash"]:
            problems.append(f"{where}: content changed after it was recorded")
        expected_seq, expected_prev = int(row["seq"]) + 1, row["hash"]
    return problems
