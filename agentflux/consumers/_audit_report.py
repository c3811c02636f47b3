"""Reading the audit chains back: records by filter, and each session's chains checked."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agentflux.consumers._audit_chain import COLUMNS, GENESIS, link

if TYPE_CHECKING:
    from datetime import datetime

    from agentflux.consumers._ports import Store

__all__ = ["ChainReport", "audit_report", "get_audit_log", "verify_audit"]


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
        f"SELECT {COLUMNS} FROM audit_chain "  # noqa: S608  # column names are ours
        "WHERE (CAST($1 AS TEXT) IS NULL OR session_id = $1) "
        "AND (CAST($2 AS TEXT) IS NULL OR event_type = $2) "
        "AND (CAST($3 AS BIGINT) IS NULL OR occurred_ms >= $3) "
        "AND (CAST($4 AS BIGINT) IS NULL OR occurred_ms < $4) "
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
        "SELECT session_id, chain, seq, kind, event_id, sequence, payload, prev_hash, hash "
        "FROM audit_chain ORDER BY session_id, chain, seq"
    )
    current, expected_seq, expected_prev = ("", ""), 1, GENESIS
    for row in rows:
        report = reports.setdefault(row["session_id"], ChainReport(row["session_id"]))
        if (row["session_id"], row["chain"]) != current:
            current, expected_seq, expected_prev = (row["session_id"], row["chain"]), 1, GENESIS
        problems: list[str] = []
        where = f"chain {row['chain']} record {row['seq']}"
        if int(row["seq"]) != expected_seq:
            problems.append(f"{where}: records {expected_seq}..{int(row['seq']) - 1} removed")
        if row["prev_hash"] != expected_prev:
            problems.append(f"{where}: does not chain to the record before it")
        if link(row["prev_hash"], row["payload"]) != row["hash"]:
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
