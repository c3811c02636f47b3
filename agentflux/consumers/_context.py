"""The context view: per session, who is working, what happened, what is pending."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agentflux.schemas import (
    AgentSwitchedEvent,
    BaseEvent,
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
    from agentflux.consumers._ports import Store, Transaction
    from agentflux.consumers._records import Position

__all__ = ["ContextView", "get_context"]

_TOOL_DONE = {ToolExecutionCompletedEvent: "completed", ToolExecutionFailedEvent: "failed"}


def _ms(event: BaseEvent) -> int:
    return int(event.occurred_at.timestamp() * 1000)


class ContextView:
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
            "PRIMARY KEY (session_id, event_id))"
        ),
        (
            "CREATE TABLE IF NOT EXISTS ctx_tools (session_id TEXT NOT NULL, call_id TEXT NOT NULL, "
            "tool_name TEXT NOT NULL, status TEXT NOT NULL, PRIMARY KEY (session_id, call_id))"
        ),
        (
            "CREATE TABLE IF NOT EXISTS ctx_approvals (session_id TEXT NOT NULL, approval_id TEXT NOT NULL, "
            "status TEXT NOT NULL, call_id TEXT, PRIMARY KEY (session_id, approval_id))"
        ),
    )

    async def apply(self, tx: Transaction, event: BaseEvent, position: Position) -> None:  # noqa: ARG002  # context needs no offsets
        """Fold one event into its session's context."""
        sid = event.session_id
        await tx.execute(
            "INSERT INTO ctx_sessions (session_id, status, current_agent, message_count, last_activity_ms) "
            "VALUES ($1, 'active', NULL, 0, $2) ON CONFLICT (session_id) DO UPDATE SET "
            "last_activity_ms = CASE WHEN excluded.last_activity_ms > ctx_sessions.last_activity_ms "
            "THEN excluded.last_activity_ms ELSE ctx_sessions.last_activity_ms END",
            sid,
            _ms(event),
        )
        match event:
            case SessionCreatedEvent():
                await tx.execute(
                    "UPDATE ctx_sessions SET current_agent = COALESCE(current_agent, $2), user_id = $3 WHERE session_id = $1",
                    sid,
                    event.initial_agent,
                    event.user_id,
                )
            case SessionDeletedEvent():
                await tx.execute(
                    "UPDATE ctx_sessions SET status = 'deleted' WHERE session_id = $1", sid
                )
            case SessionMessageAddedEvent():
                await tx.execute(
                    "UPDATE ctx_sessions SET message_count = message_count + 1 WHERE session_id = $1",
                    sid,
                )
            case AgentSwitchedEvent():
                # The latest hand-over by event time wins, so one applied late (a re-driven
                # dead letter, a replay) never takes the session back to an older agent.
                await tx.execute(
                    "UPDATE ctx_sessions SET current_agent = $2 WHERE session_id = $1 AND NOT EXISTS "
                    "(SELECT 1 FROM ctx_handovers WHERE session_id = $1 AND at_ms > $3)",
                    sid,
                    event.to_agent,
                    _ms(event),
                )
                await tx.execute(
                    "INSERT INTO ctx_handovers (session_id, event_id, at_ms, from_agent, to_agent, reason) "
                    "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (session_id, event_id) DO NOTHING",
                    sid,
                    str(event.event_id),
                    _ms(event),
                    event.from_agent,
                    event.to_agent,
                    event.reason,
                )
            case ToolExecutionRequestedEvent():
                await self._tool(tx, sid, event.call_id, event.tool_name, "in_flight")
            case ToolExecutionCompletedEvent() | ToolExecutionFailedEvent():
                await self._tool(tx, sid, event.call_id, event.tool_name, _TOOL_DONE[type(event)])
            case ToolApprovalRequiredEvent() | HitlApprovalRequestedEvent():
                await self._approval(tx, sid, event.approval_id, None, event.call_id)
            case HitlDecisionMadeEvent():
                await self._approval(tx, sid, event.approval_id, event.decision.value.lower(), None)
            case HitlTimeoutOccurredEvent():
                await self._approval(tx, sid, event.approval_id, "timed_out", None)
            case _:
                pass

    @staticmethod
    async def _tool(tx: Transaction, sid: str, call_id: str, tool: str, status: str) -> None:
        # A request applied after its outcome (late, re-driven) must not reopen the call.
        await tx.execute(
            "INSERT INTO ctx_tools (session_id, call_id, tool_name, status) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (session_id, call_id) DO UPDATE SET status = CASE "
            "WHEN excluded.status = 'in_flight' THEN ctx_tools.status ELSE excluded.status END",
            sid,
            call_id,
            tool,
            status,
        )

    @staticmethod
    async def _approval(
        tx: Transaction, sid: str, approval_id: str, status: str | None, call_id: str | None
    ) -> None:
        # Requests and decisions travel on different topics, so either may be applied first:
        # a request never overwrites a decision, and the call id is kept from whichever has it.
        # The first outcome (decision or timeout, in the hitl partition's order) stays: a late
        # decision does not reopen a timed-out approval.
        await tx.execute(
            "INSERT INTO ctx_approvals (session_id, approval_id, status, call_id) "
            "VALUES ($1, $2, COALESCE($3, 'pending'), $4) ON CONFLICT (session_id, approval_id) DO UPDATE SET "
            "status = CASE WHEN $3 IS NULL OR ctx_approvals.status <> 'pending' THEN ctx_approvals.status ELSE $3 END, "
            "call_id = COALESCE(ctx_approvals.call_id, excluded.call_id)",
            sid,
            approval_id,
            status,
            call_id,
        )


async def get_context(store: Store, session_id: str) -> dict[str, Any] | None:
    """The context of one session, or None if the view has never seen it."""
    async with store.transaction() as tx:
        session = await tx.fetchone("SELECT * FROM ctx_sessions WHERE session_id = $1", session_id)
        if session is None:
            return None
        handovers = await tx.fetch(
            "SELECT from_agent, to_agent, reason, at_ms FROM ctx_handovers WHERE session_id = $1 ORDER BY at_ms, event_id",
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
