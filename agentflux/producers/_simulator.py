"""A realistic, seedable generator of agent-runtime traffic, for the demo and the benchmarks.

Each session is a plausible story: it opens, the user writes, the orchestrator hands over to a
coder or reviewer, agents call the LLM (with durations and tokens), request tools (some need a
human's approval, granted, rejected or left unanswered; some fail), errors happen, and it
closes. An approval left unanswered is not closed here: the HITL timeout job
(``agentflux consume hitl-timeouts``) publishes its timeout once its ``timeout_s`` has passed.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from agentflux.schemas import (
    AgentErrorOccurredEvent,
    AgentProcessingCompletedEvent,
    AgentProcessingStartedEvent,
    AgentSwitchedEvent,
    BaseEvent,
    HitlApprovalRequestedEvent,
    HitlDecision,
    HitlDecisionMadeEvent,
    MessageRole,
    MetricsPerformanceMeasuredEvent,
    SessionCreatedEvent,
    SessionDeletedEvent,
    SessionMessageAddedEvent,
    SessionUpdatedEvent,
    SystemStartupEvent,
    ToolApprovalRequiredEvent,
    ToolExecutionCompletedEvent,
    ToolExecutionFailedEvent,
    ToolExecutionRequestedEvent,
    ToolExecutionStartedEvent,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator

    from agentflux.producers._protocols import Transport

__all__ = ["RateLimiter", "Simulator"]

_AGENTS = ("coder", "reviewer", "researcher")
_TOOLS = ("read_file", "write_file", "run_tests", "search_code", "shell")
_RISKY = {"write_file", "shell"}
_MODELS = ("gpt-4.1", "claude-sonnet", "llama-70b")


class RateLimiter:
    """Paces calls to ``rate`` per second on average, letting at most ``burst`` pass at once.

    A virtual schedule (the generic cell rate algorithm): each call is due one interval after
    the previous one. A sleep that overshoots (the event loop wakes a millisecond late, say) is
    made up by the next calls passing at once, so the long-run rate holds; idle time banks at
    most ``burst`` calls. ``burst=1`` paces strictly and falls below ``rate`` when the loop
    oversleeps.
    """

    def __init__(
        self,
        rate: float | None,
        burst: int = 100,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``rate`` None means unlimited; ``clock`` is for tests."""
        if rate is not None and rate <= 0:
            raise ValueError(f"rate must be positive, not {rate}")
        if burst < 1:
            raise ValueError(f"burst must be at least 1, not {burst}")
        self._interval = 0.0 if rate is None else 1 / rate
        self._slack = (burst - 1) * self._interval  # how far behind schedule a call may start
        self._clock = clock
        self._due = clock() - self._slack  # starts idle: a first burst may pass at once

    def delay(self) -> float:
        """Take the next slot on the schedule; how long to wait for it (0: go now)."""
        now = self._clock()
        due = max(self._due, now - self._slack)
        self._due = due + self._interval
        return max(0.0, due - now)

    async def acquire(self) -> None:
        """Wait for the next slot on the schedule."""
        if self._interval and (wait := self.delay()) > 0:
            await asyncio.sleep(wait)  # pacing, not a readiness wait


class _Story:
    """The events of one session, in order, with plausible timing."""

    def __init__(
        self, rng: random.Random, session_id: str, start: datetime, approval_timeout_s: int
    ) -> None:
        self.rng = rng
        self.approval_timeout_s = approval_timeout_s
        self.session_id = session_id
        self.clock = start
        self.correlation_id = f"corr-{uuid.UUID(int=rng.getrandbits(128)).hex[:16]}"
        self.previous: str | None = None
        self.agent = "orchestrator"

    def _tick(self, low_ms: int, high_ms: int) -> datetime:
        self.clock += timedelta(milliseconds=self.rng.randint(low_ms, high_ms))
        return self.clock

    def emit(self, cls: type[BaseEvent], **fields: Any) -> BaseEvent:
        event = cls(
            event_id=uuid.UUID(int=self.rng.getrandbits(128), version=4),
            session_id=self.session_id,
            occurred_at=self._tick(5, 400),
            correlation_id=self.correlation_id,
            causation_id=self.previous,
            **fields,
        )
        self.previous = str(event.event_id)
        return event

    def _id(self, prefix: str) -> str:
        return f"{prefix}-{self.rng.getrandbits(48):012x}"

    def events(self) -> Iterator[BaseEvent]:  # one readable story, branch by branch
        rng = self.rng
        yield self.emit(
            SessionCreatedEvent,
            user_id=f"user-{rng.randint(1, 500)}",
            initial_agent="orchestrator",
            title=rng.choice(["Fix flaky test", "Add endpoint", "Refactor module", "Review PR"]),
        )
        for turn in range(rng.randint(1, 4)):
            yield self.emit(
                SessionMessageAddedEvent,
                message_id=self._id("msg"),
                role=MessageRole.USER,
                content=f"request {turn}: " + "please " * rng.randint(1, 20) + "help",
            )
            target = rng.choice(_AGENTS)
            if target != self.agent:
                yield self.emit(
                    AgentSwitchedEvent,
                    from_agent=self.agent,
                    to_agent=target,
                    reason=f"{target} task",
                )
                self.agent = target
            model = rng.choice(_MODELS)
            request = self._id("req")
            yield self.emit(
                AgentProcessingStartedEvent, agent=self.agent, model=model, request_id=request
            )
            if rng.random() < 0.05:
                yield self.emit(
                    AgentErrorOccurredEvent,
                    agent=self.agent,
                    error_type=rng.choice(["RateLimited", "ContextTooLong", "Timeout"]),
                    error_message="upstream LLM error",
                    recoverable=rng.random() < 0.7,
                )
                continue
            yield self.emit(
                AgentProcessingCompletedEvent,
                agent=self.agent,
                model=model,
                request_id=request,
                duration_ms=rng.randint(300, 9000),
                input_tokens=rng.randint(200, 8000),
                output_tokens=rng.randint(20, 2000),
                finish_reason="stop",
            )
            for _ in range(rng.randint(0, 3)):
                yield from self._tool_call()
            yield self.emit(
                SessionMessageAddedEvent,
                message_id=self._id("msg"),
                role=MessageRole.ASSISTANT,
                content="done: " + "x" * rng.randint(10, 400),
                agent=self.agent,
            )
        if rng.random() < 0.3:
            yield self.emit(SessionUpdatedEvent, changes={"title": "renamed"})
        if rng.random() < 0.9:
            yield self.emit(SessionDeletedEvent, reason="user closed the session")

    def _tool_call(self) -> Iterator[BaseEvent]:
        rng = self.rng
        tool = rng.choice(_TOOLS)
        call = self._id("call")
        needs_approval = tool in _RISKY and rng.random() < 0.7
        yield self.emit(
            ToolExecutionRequestedEvent,
            call_id=call,
            tool_name=tool,
            agent=self.agent,
            arguments='{"path": "src/app.py"}',
            requires_approval=needs_approval,
        )
        if needs_approval:
            approval = self._id("appr")
            yield self.emit(
                ToolApprovalRequiredEvent,
                call_id=call,
                tool_name=tool,
                approval_id=approval,
                reason="risky",
            )
            yield self.emit(
                HitlApprovalRequestedEvent,
                approval_id=approval,
                call_id=call,
                subject=f"run {tool}?",
                timeout_s=self.approval_timeout_s,
            )
            outcome = rng.random()
            if outcome < 0.1:
                return  # nobody answers: the timeout job closes it after timeout_s
            decision = HitlDecision.APPROVED if outcome < 0.8 else HitlDecision.REJECTED
            yield self.emit(
                HitlDecisionMadeEvent,
                approval_id=approval,
                approver=rng.choice(["alice", "bob", "carol"]),
                decision=decision,
                comment=None if decision is HitlDecision.APPROVED else "too risky",
            )
            if decision is HitlDecision.REJECTED:
                return
        yield self.emit(ToolExecutionStartedEvent, call_id=call, tool_name=tool)
        duration = rng.randint(5, 3000)
        if rng.random() < 0.12:
            yield self.emit(
                ToolExecutionFailedEvent,
                call_id=call,
                tool_name=tool,
                duration_ms=duration,
                error_type=rng.choice(["Timeout", "PermissionError", "ExitCode1"]),
                error_message="tool failed",
            )
        else:
            yield self.emit(
                ToolExecutionCompletedEvent,
                call_id=call,
                tool_name=tool,
                duration_ms=duration,
                result_summary="ok",
            )


class Simulator:
    """Interleaves many concurrent sessions' stories, reproducibly from ``seed``."""

    def __init__(
        self,
        *,
        sessions: int,
        seed: int = 42,
        session_prefix: str = "sim",
        approval_timeout_s: int = 300,
    ) -> None:
        """``sessions`` stories, started together and interleaved at random.

        Every approval request asks for an answer within ``approval_timeout_s``; the answered
        ones are decided within a few hundred milliseconds of event time.
        """
        self.sessions = sessions
        self.approval_timeout_s = approval_timeout_s
        self.seed = seed
        self.session_prefix = session_prefix

    def events(self) -> Iterator[BaseEvent]:
        """Every event of every session; each session's events stay in their story's order."""
        rng = random.Random(self.seed)  # noqa: S311  # reproducible traffic, not security
        start = datetime.now(UTC)
        instance = f"runtime-{self.seed}"
        yield SystemStartupEvent(
            event_id=uuid.UUID(int=rng.getrandbits(128), version=4),
            session_id=f"system:{instance}",
            service="agent-runtime",
            version="1.0.0",
            instance=instance,
        )
        stories = [
            _Story(
                random.Random(rng.getrandbits(64)),  # noqa: S311  # reproducible traffic
                f"{self.session_prefix}-{i:05d}",
                start,
                self.approval_timeout_s,
            )
            for i in range(self.sessions)
        ]
        running = [s.events() for s in stories]
        emitted = 0
        while running:
            index = rng.randrange(len(running))
            try:
                yield next(running[index])
                emitted += 1
            except StopIteration:
                running[index] = running[-1]
                running.pop()
                continue
            if emitted % 500 == 0:
                yield MetricsPerformanceMeasuredEvent(
                    event_id=uuid.UUID(int=rng.getrandbits(128), version=4),
                    session_id=f"system:{instance}",
                    operation="simulator.batch",
                    duration_ms=rng.uniform(1, 50),
                )

    async def run(self, transport: Transport, *, rate: float | None = None) -> int:
        """Publish every event through ``transport`` at about ``rate`` per second; count them."""
        limiter = RateLimiter(rate)
        count = 0
        for event in self.events():
            await limiter.acquire()
            await transport.publish(event)
            count += 1
        return count

    async def stream(self, *, rate: float | None = None) -> AsyncIterator[BaseEvent]:
        """The events as an async stream paced at ``rate`` events/s."""
        limiter = RateLimiter(rate)
        for event in self.events():
            await limiter.acquire()
            yield event
