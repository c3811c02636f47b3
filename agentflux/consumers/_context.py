"""The context view: per session, who is working, what happened, what is pending."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agentflux.consumers._ports import FoldsRows
from agentflux.consumers._records import millis
from agentflux.schemas import (
    AgentSwitchedEvent,
    EventRows,
    HitlApprovalRequestedEvent,
    HitlDecisionMadeEvent,
    HitlTimeoutOccurredEvent,
    SessionCreatedEvent,
    SessionDeletedEvent,
    SessionMessageAddedEvent,
    ToolApprovalRequiredEvent,
    ToolExecutionCompletedEvent,
    ToolExecutionFailedEvent,
    ToolExecutionRequestedEvent,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from datetime import datetime

    from agentflux.consumers._ports import Store, Transaction
    from agentflux.consumers._records import Position

__all__ = ["ContextView", "get_context"]


# Where a hand-over stands in its session's order: (at_ms, producer_id, sequence).
_Order = tuple[int, str | None, int | None]


def _supersedes(new: _Order, old: _Order) -> bool:
    """Whether a hand-over at ``new`` comes after one at ``old`` (docs: ordering guarantees).

    One producer's numbered events follow their sequence, whatever their clocks say; any other
    pair follows event time, then (producer id, sequence), and a full tie goes to ``new``, the
    one applied later (offset order). ``_HANDED_OVER`` says the same in SQL.
    """
    at, producer, sequence = new
    old_at, old_producer, old_sequence = old
    numbered = sequence is not None and old_sequence is not None
    if numbered and producer is not None and producer == old_producer:
        return sequence > old_sequence  # type: ignore[operator]  # numbered: neither is None
    rank = (at, producer or "", -1 if sequence is None else sequence)
    return rank >= (old_at, old_producer or "", -1 if old_sequence is None else old_sequence)


class ContextView(FoldsRows):
    """Maintains ``ctx_*`` tables: the live context of every session."""

    name = "context"
    ddl = (
        (
            "CREATE TABLE IF NOT EXISTS ctx_sessions (session_id TEXT PRIMARY KEY, status TEXT NOT NULL, "
            "current_agent TEXT, user_id TEXT, message_count BIGINT NOT NULL, last_activity_ms BIGINT NOT NULL)"
        ),
        (
            "CREATE TABLE IF NOT EXISTS ctx_handovers (session_id TEXT NOT NULL, event_id TEXT NOT NULL, "
            "at_ms BIGINT NOT NULL, from_agent TEXT NOT NULL, to_agent TEXT NOT NULL, reason TEXT NOT NULL, "
            "producer_id TEXT, sequence BIGINT, PRIMARY KEY (session_id, event_id))"
        ),
        # Stores made before hand-overs kept their place in the producer's order.
        "ALTER TABLE ctx_handovers ADD COLUMN IF NOT EXISTS producer_id TEXT",
        "ALTER TABLE ctx_handovers ADD COLUMN IF NOT EXISTS sequence BIGINT",
        (
            "CREATE TABLE IF NOT EXISTS ctx_tools (session_id TEXT NOT NULL, call_id TEXT NOT NULL, "
            "tool_name TEXT NOT NULL, status TEXT NOT NULL, PRIMARY KEY (session_id, call_id))"
        ),
        (
            "CREATE TABLE IF NOT EXISTS ctx_approvals (session_id TEXT NOT NULL, approval_id TEXT NOT NULL, "
            "status TEXT NOT NULL, call_id TEXT, PRIMARY KEY (session_id, approval_id))"
        ),
    )

    @property
    def rows(self) -> EventRows:
        """The fields the view keeps of each event type (see ``RowView``)."""
        return _ROWS

    async def apply_rows(
        self, tx: Transaction, rows: Sequence[tuple[tuple[Any, ...], Position]]
    ) -> None:
        """Fold a batch, each event as its row of :attr:`rows`: what ``apply_batch`` does."""
        batch = _Batch()
        batch.add_all(rows)
        await batch.write(tx)


@dataclass(slots=True)
class _Session:
    """One session's changes in a batch, as the per-event statements would leave them."""

    # The latest event time, kept as the datetime: comparing two is several times cheaper than
    # turning each into milliseconds, and millis is monotonic, so the latest's is the largest.
    last: datetime
    deleted: bool = False
    messages: int = 0
    created: bool = False
    initial_agent: str | None = None  # COALESCE over the created events: the first one's
    user_id: str | None = None  # the last created event's
    handover: tuple[_Order, str] | None = None  # (order, to_agent) of the latest hand-over


@dataclass(slots=True)
class _Tool:
    tool_name: str  # the first event's: later ones never rename the call
    status: str = "in_flight"  # the last outcome; a request never reopens a finished call


@dataclass(slots=True)
class _Approval:
    status: str | None = None  # the first outcome; None: requests only, the stored one stays
    call_id: str | None = None  # the first one given


class _Batch:
    """A batch folded in memory per row, then written in key order (see ``BatchView``)."""

    def __init__(self) -> None:
        self.sessions: dict[str, _Session] = {}
        self.handovers: dict[tuple[str, str], tuple[Any, ...]] = {}
        self.tools: dict[tuple[str, str], _Tool] = {}
        self.approvals: dict[tuple[str, str], _Approval] = {}

    def add_all(self, rows: Iterable[tuple[tuple[Any, ...], Position]]) -> None:
        """Fold each event's row in, in order: one loop, as it runs for every event."""
        sessions = self.sessions
        for row, _ in rows:
            fold, sid, at = row[0], row[1], row[2]
            session = sessions.get(sid)
            if session is None:
                session = sessions[sid] = _Session(at)
            elif at > session.last:
                session.last = at
            # Most events only touch the session's activity: their rows have no fold.
            if fold is not None:
                fold(self, session, row)

    def tool(self, sid: str, call_id: str, tool_name: str, outcome: str | None) -> None:
        tool = self.tools.get((sid, call_id))
        if tool is None:
            tool = self.tools[sid, call_id] = _Tool(tool_name)
        if outcome is not None:
            tool.status = outcome

    def approval(self, sid: str, approval_id: str, status: str | None, call_id: str | None) -> None:
        # Requests and decisions travel on different topics, so either may be applied first:
        # a request never overwrites a decision, and the call id is kept from whichever has it.
        # The first outcome (decision or timeout, in the hitl partition's order) stays: a late
        # decision does not reopen a timed-out approval (nor change a decided one).
        approval = self.approvals.get((sid, approval_id))
        if approval is None:
            approval = self.approvals[sid, approval_id] = _Approval()
        if status is not None and approval.status is None:
            approval.status = status
        if approval.call_id is None:
            approval.call_id = call_id

    async def write(self, tx: Transaction) -> None:
        """Every table in a fixed order, each one's rows in key order: locks in one order."""
        sessions = sorted(self.sessions.items())
        await tx.execute_rows(
            _UPSERT_SESSIONS,
            _SESSION_COLUMNS,
            [
                (sid, "deleted" if s.deleted else "active", s.messages, millis(s.last))
                for sid, s in sessions
            ],
        )
        await tx.execute_rows(
            _CREATED,
            _CREATED_COLUMNS,
            [(sid, s.initial_agent, s.user_id) for sid, s in sessions if s.created],
        )
        # Only rows locked by the upsert above are updated from here on.
        await tx.execute_rows(
            _HANDED_OVER,
            _HANDED_OVER_COLUMNS,
            [(sid, s.handover[1], *s.handover[0]) for sid, s in sessions if s.handover],
        )
        await tx.execute_rows(_INSERT_HANDOVERS, _HANDOVER_COLUMNS, sorted(self.handovers.values()))
        await tx.execute_rows(
            _UPSERT_TOOLS,
            _TOOL_COLUMNS,
            [(*key, t.tool_name, t.status) for key, t in sorted(self.tools.items())],
        )
        await tx.execute_rows(
            _UPSERT_APPROVALS,
            _APPROVAL_COLUMNS,
            [(*key, a.status, a.call_id) for key, a in sorted(self.approvals.items())],
        )


# Each fold takes the batch, the session and the event's row: (fold, session id, occurred at,
# then the fields _ROWS names for its type), whether it needs them or not.
def _created(_batch: _Batch, session: _Session, row: tuple[Any, ...]) -> None:
    session.created = True
    if session.initial_agent is None:
        session.initial_agent = row[3]
    session.user_id = row[4]


def _deleted(_batch: _Batch, session: _Session, _row: tuple[Any, ...]) -> None:
    session.deleted = True


def _message(_batch: _Batch, session: _Session, _row: tuple[Any, ...]) -> None:
    session.messages += 1


def _handed_over(batch: _Batch, session: _Session, row: tuple[Any, ...]) -> None:
    _, sid, at, event_id, producer_id, sequence, from_agent, to_agent, reason = row
    # The latest in the session's order wins, so one applied late (a re-driven dead letter, a
    # replay) never takes the session back.
    order = (millis(at), producer_id, sequence)
    if session.handover is None or _supersedes(order, session.handover[0]):
        session.handover = (order, to_agent)
    key = (sid, str(event_id))
    batch.handovers.setdefault(key, (*key, *order, from_agent, to_agent, reason))


def _tool_requested(batch: _Batch, _session: _Session, row: tuple[Any, ...]) -> None:
    batch.tool(row[1], row[3], row[4], None)


def _tool_completed(batch: _Batch, _session: _Session, row: tuple[Any, ...]) -> None:
    batch.tool(row[1], row[3], row[4], "completed")


def _tool_failed(batch: _Batch, _session: _Session, row: tuple[Any, ...]) -> None:
    batch.tool(row[1], row[3], row[4], "failed")


def _approval_asked(batch: _Batch, _session: _Session, row: tuple[Any, ...]) -> None:
    batch.approval(row[1], row[3], None, row[4])


def _decided(batch: _Batch, _session: _Session, row: tuple[Any, ...]) -> None:
    batch.approval(row[1], row[3], row[4].value.lower(), None)


def _timed_out(batch: _Batch, _session: _Session, row: tuple[Any, ...]) -> None:
    batch.approval(row[1], row[3], "timed_out", None)


_SESSION = ("session_id", "occurred_at")  # every row's, after its fold: its session's activity
_TOOL = (*_SESSION, "call_id", "tool_name")
_APPROVAL = (*_SESSION, "approval_id", "call_id")

# The fields the view keeps of each type, and its fold; any other type only touches the
# session's activity.
_ROWS = EventRows(
    {
        SessionCreatedEvent: (_created, (*_SESSION, "initial_agent", "user_id")),
        SessionDeletedEvent: (_deleted, _SESSION),
        SessionMessageAddedEvent: (_message, _SESSION),
        AgentSwitchedEvent: (
            _handed_over,
            (*_SESSION, "event_id", "producer_id", "sequence", "from_agent", "to_agent", "reason"),
        ),
        ToolExecutionRequestedEvent: (_tool_requested, _TOOL),
        ToolExecutionCompletedEvent: (_tool_completed, _TOOL),
        ToolExecutionFailedEvent: (_tool_failed, _TOOL),
        ToolApprovalRequiredEvent: (_approval_asked, _APPROVAL),
        HitlApprovalRequestedEvent: (_approval_asked, _APPROVAL),
        HitlDecisionMadeEvent: (_decided, (*_SESSION, "approval_id", "decision")),
        HitlTimeoutOccurredEvent: (_timed_out, (*_SESSION, "approval_id")),
    },
    default=(None, _SESSION),
)


_SESSION_COLUMNS = (
    ("session_id", "TEXT"),
    ("status", "TEXT"),
    ("messages", "BIGINT"),
    ("last_ms", "BIGINT"),
)
_UPSERT_SESSIONS = (
    "INSERT INTO ctx_sessions (session_id, status, current_agent, message_count, last_activity_ms) "
    "SELECT r.session_id, r.status, NULL, r.messages, r.last_ms FROM {rows} WHERE true "
    "ON CONFLICT (session_id) DO UPDATE SET "
    "status = CASE WHEN excluded.status = 'deleted' THEN 'deleted' ELSE ctx_sessions.status END, "
    "message_count = ctx_sessions.message_count + excluded.message_count, "
    "last_activity_ms = CASE WHEN excluded.last_activity_ms > ctx_sessions.last_activity_ms "
    "THEN excluded.last_activity_ms ELSE ctx_sessions.last_activity_ms END"
)
_CREATED_COLUMNS = (("session_id", "TEXT"), ("initial_agent", "TEXT"), ("user_id", "TEXT"))
_CREATED = (
    "UPDATE ctx_sessions SET current_agent = COALESCE(ctx_sessions.current_agent, r.initial_agent), "
    "user_id = r.user_id FROM {rows} WHERE ctx_sessions.session_id = r.session_id"
)
# Run before this batch's hand-overs are stored: none of them is after the batch's latest.
_HANDED_OVER_COLUMNS = (
    ("session_id", "TEXT"),
    ("to_agent", "TEXT"),
    ("at_ms", "BIGINT"),
    ("producer_id", "TEXT"),
    ("sequence", "BIGINT"),
)
_HANDED_OVER = (
    "UPDATE ctx_sessions SET current_agent = r.to_agent FROM {rows} "
    "WHERE ctx_sessions.session_id = r.session_id AND NOT EXISTS "
    "(SELECT 1 FROM ctx_handovers h WHERE h.session_id = r.session_id AND ("
    # h strictly after r by _supersedes (a tie leaves r, applied later, the current one):
    # one producer's numbers, else (time, producer, number).
    "(COALESCE(h.producer_id = r.producer_id AND h.sequence IS NOT NULL "
    "AND r.sequence IS NOT NULL, false) AND h.sequence > r.sequence) OR "
    "(NOT COALESCE(h.producer_id = r.producer_id AND h.sequence IS NOT NULL "
    "AND r.sequence IS NOT NULL, false) AND "
    "(h.at_ms, COALESCE(h.producer_id, ''), COALESCE(h.sequence, -1)) > "
    "(r.at_ms, COALESCE(r.producer_id, ''), COALESCE(r.sequence, -1)))))"
)
_HANDOVER_COLUMNS = (
    ("session_id", "TEXT"),
    ("event_id", "TEXT"),
    ("at_ms", "BIGINT"),
    ("producer_id", "TEXT"),
    ("sequence", "BIGINT"),
    ("from_agent", "TEXT"),
    ("to_agent", "TEXT"),
    ("reason", "TEXT"),
)
_INSERT_HANDOVERS = (
    "INSERT INTO ctx_handovers "
    "(session_id, event_id, at_ms, producer_id, sequence, from_agent, to_agent, reason) "
    "SELECT r.session_id, r.event_id, r.at_ms, r.producer_id, r.sequence, r.from_agent, "
    "r.to_agent, r.reason FROM {rows} WHERE true ON CONFLICT (session_id, event_id) DO NOTHING"
)
_TOOL_COLUMNS = (
    ("session_id", "TEXT"),
    ("call_id", "TEXT"),
    ("tool_name", "TEXT"),
    ("status", "TEXT"),
)
_UPSERT_TOOLS = (
    "INSERT INTO ctx_tools (session_id, call_id, tool_name, status) "
    "SELECT r.session_id, r.call_id, r.tool_name, r.status FROM {rows} WHERE true "
    "ON CONFLICT (session_id, call_id) DO UPDATE SET status = CASE "
    "WHEN excluded.status = 'in_flight' THEN ctx_tools.status ELSE excluded.status END"
)
_APPROVAL_COLUMNS = (
    ("session_id", "TEXT"),
    ("approval_id", "TEXT"),
    ("status", "TEXT"),
    ("call_id", "TEXT"),
)
# 'pending' is never a decision: a row of requests only keeps the stored status.
_UPSERT_APPROVALS = (
    "INSERT INTO ctx_approvals (session_id, approval_id, status, call_id) "
    "SELECT r.session_id, r.approval_id, COALESCE(r.status, 'pending'), r.call_id FROM {rows} "
    "WHERE true ON CONFLICT (session_id, approval_id) DO UPDATE SET "
    "status = CASE WHEN excluded.status = 'pending' OR ctx_approvals.status <> 'pending' "
    "THEN ctx_approvals.status ELSE excluded.status END, "
    "call_id = COALESCE(ctx_approvals.call_id, excluded.call_id)"
)


async def get_context(store: Store, session_id: str) -> dict[str, Any] | None:
    """The context of one session, or None if the view has never seen it."""
    async with store.transaction() as tx:
        session = await tx.fetchone("SELECT * FROM ctx_sessions WHERE session_id = $1", session_id)
        if session is None:
            return None
        handovers = await tx.fetch(
            "SELECT from_agent, to_agent, reason, at_ms FROM ctx_handovers WHERE session_id = $1 "
            "ORDER BY at_ms, COALESCE(producer_id, ''), COALESCE(sequence, -1), event_id",
            session_id,
        )
        tools = await tx.fetch(
            "SELECT t.call_id, t.tool_name FROM ctx_tools t WHERE t.session_id = $1 AND t.status = 'in_flight' "
            "AND NOT EXISTS (SELECT 1 FROM ctx_approvals a WHERE a.session_id = t.session_id "
            "AND a.call_id = t.call_id AND a.status IN ('rejected', 'timed_out')) ORDER BY t.call_id",
            session_id,
        )
        approvals = await tx.fetch(
            "SELECT approval_id FROM ctx_approvals WHERE session_id = $1 AND status = 'pending' ORDER BY approval_id",
            session_id,
        )
    return {
        "session_id": session_id,
        "status": session["status"],
        "current_agent": session["current_agent"],
        "user_id": session["user_id"],
        "message_count": int(session["message_count"]),
        "last_activity_ms": int(session["last_activity_ms"]),
        "handovers": handovers,
        "tools_in_flight": tools,
        "pending_approvals": [a["approval_id"] for a in approvals],
    }
