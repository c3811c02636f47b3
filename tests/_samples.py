"""One valid instance of every event type, for round-trip tests."""

from __future__ import annotations

from datetime import UTC, datetime

from agentflux.schemas import (
    EVENT_MODELS,
    BaseEvent,
    EventType,
    HitlDecision,
    MessageRole,
)

_WHEN = datetime(2026, 11, 24, 12, 30, 15, 123000, tzinfo=UTC)

_PAYLOADS: dict[EventType, dict[str, object]] = {
    EventType.AGENT_SWITCHED: {"from_agent": "orchestrator", "to_agent": "coder", "reason": "code"},
    EventType.AGENT_PROCESSING_STARTED: {"agent": "coder", "model": "gpt-x", "request_id": "r1"},
    EventType.AGENT_PROCESSING_COMPLETED: {
        "agent": "coder",
        "duration_ms": 1234,
        "input_tokens": 10,
        "output_tokens": 99,
        "finish_reason": "stop",
    },
    EventType.AGENT_ERROR_OCCURRED: {
        "agent": "coder",
        "error_type": "RateLimited",
        "error_message": "429",
        "recoverable": True,
    },
    EventType.SESSION_CREATED: {"initial_agent": "orchestrator", "metadata": {"tier": "pro"}},
    EventType.SESSION_UPDATED: {"changes": {"title": "Refactor"}},
    EventType.SESSION_DELETED: {"reason": "user closed"},
    EventType.SESSION_MESSAGE_ADDED: {
        "message_id": "m1",
        "role": MessageRole.USER,
        "content": "héllo ✓",
    },
    EventType.TOOL_EXECUTION_REQUESTED: {
        "call_id": "c1",
        "tool_name": "write_file",
        "agent": "coder",
        "arguments": '{"path": "a.py"}',
        "requires_approval": True,
    },
    EventType.TOOL_EXECUTION_STARTED: {"call_id": "c1", "tool_name": "write_file"},
    EventType.TOOL_EXECUTION_COMPLETED: {
        "call_id": "c1",
        "tool_name": "write_file",
        "duration_ms": 12,
        "result_summary": "ok",
    },
    EventType.TOOL_EXECUTION_FAILED: {
        "call_id": "c1",
        "tool_name": "write_file",
        "duration_ms": 3,
        "error_type": "PermissionError",
        "error_message": "denied",
    },
    EventType.TOOL_APPROVAL_REQUIRED: {
        "call_id": "c1",
        "tool_name": "write_file",
        "approval_id": "a1",
        "reason": "writes files",
    },
    EventType.HITL_APPROVAL_REQUESTED: {"approval_id": "a1", "call_id": "c1", "subject": "write?"},
    EventType.HITL_DECISION_MADE: {
        "approval_id": "a1",
        "approver": "alice",
        "decision": HitlDecision.REJECTED,
        "comment": "not now",
    },
    EventType.HITL_TIMEOUT_OCCURRED: {"approval_id": "a1", "waited_s": 300},
    EventType.SYSTEM_STARTUP: {"service": "runtime", "version": "1.2.3", "instance": "i-1"},
    EventType.SYSTEM_SHUTDOWN: {"service": "runtime", "instance": "i-1", "reason": "deploy"},
    EventType.SYSTEM_BACKGROUND_TASK_STARTED: {"task_id": "t1", "task_name": "compaction"},
    EventType.SYSTEM_BACKGROUND_TASK_COMPLETED: {
        "task_id": "t1",
        "task_name": "compaction",
        "duration_ms": 5000,
        "success": False,
        "error_message": "disk full",
    },
    EventType.METRICS_COLLECTED: {"name": "queue_depth", "value": 3.5, "tags": {"q": "main"}},
    EventType.METRICS_PERFORMANCE_MEASURED: {"operation": "retrieve", "duration_ms": 1.25},
}


def sample_events() -> list[BaseEvent]:
    """Every event type once, with every optional field filled where there is one."""
    return [
        model(
            session_id="session-1",
            occurred_at=_WHEN,
            correlation_id="corr-1",
            causation_id="cause-1",
            **_PAYLOADS[event_type],  # type: ignore[arg-type]
        )
        for event_type, model in EVENT_MODELS.items()
    ]
