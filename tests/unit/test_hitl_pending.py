"""The HITL timeout job's state on a fake clock (what times out, once; what a restart rebuilds), its group."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentflux.consumers import (
    ContextView,
    MetricsView,
    Position,
    SqliteStore,
    _pending,
    get_context,
)
from agentflux.consumers._groups import SHIPPED_GROUPS, shipped_service
from agentflux.consumers._metrics import get_metrics
from agentflux.consumers._pending import PendingApprovals, timeout_event, timeout_event_id
from agentflux.consumers._timeouts import HitlTimeoutJob, parse_rebuild_from
from agentflux.kafka import AgentfluxSettings
from agentflux.producers import Simulator
from agentflux.schemas import (
    BaseEvent,
    HitlApprovalRequestedEvent,
    HitlDecision,
    HitlDecisionMadeEvent,
    HitlTimeoutOccurredEvent,
)

if TYPE_CHECKING:
    from pathlib import Path

T0 = 1_800_000_000.0  # the fake clock's start, seconds since the epoch


def _request(approval: str, *, at: float = T0, timeout_s: int = 10) -> HitlApprovalRequestedEvent:
    return HitlApprovalRequestedEvent(
        session_id=f"s-{approval}",
        approval_id=approval,
        subject="run shell?",
        timeout_s=timeout_s,
        occurred_at=datetime.fromtimestamp(at, UTC),
        correlation_id="corr-1",
    )


def _decision(approval: str, *, at: float) -> HitlDecisionMadeEvent:
    return HitlDecisionMadeEvent(
        session_id=f"s-{approval}",
        approval_id=approval,
        approver="alice",
        decision=HitlDecision.APPROVED,
        occurred_at=datetime.fromtimestamp(at, UTC),
    )


def _fold(log: list[BaseEvent], start: int = 0) -> PendingApprovals:
    state = PendingApprovals()
    for offset, event in enumerate(log[start:], start):
        state.apply(event, offset, int(event.occurred_at.timestamp() * 1000))
    return state


def test_an_approval_times_out_once_when_its_timeout_has_passed() -> None:
    """Nothing expires before the deadline; at it, the request once; never again after."""
    request = _request("a1")
    state = _fold([request])
    assert state.next_deadline() == T0 + 10
    assert state.expire(T0 + 9.999) == []
    assert len(state) == 1
    assert state.expire(T0 + 10) == [request]
    assert len(state) == 0  # sent: no longer waiting
    assert state.expire(T0 + 10) == []
    assert state.expire(T0 + 1000) == []
    assert state.next_deadline() is None


def test_an_approval_decided_in_time_never_times_out() -> None:
    """A decision read before the deadline closes the approval: no timeout, ever."""
    state = _fold([_request("a1"), _decision("a1", at=T0 + 3)])
    assert state.expire(T0 + 10_000) == []
    assert len(state) == 0


def test_a_decision_after_the_timeout_is_late_and_does_not_reopen() -> None:
    """Timeout read back, then a decision: counted late; a repeated request reopens nothing."""
    request = _request("a1")
    state = _fold([request])
    (expired,) = state.expire(T0 + 11)
    assert state.apply(timeout_event(expired, T0 + 11), 1, 0) == "timed out"
    assert state.apply(_decision("a1", at=T0 + 20), 2, 0) == "late"
    assert state.late == 1
    assert state.apply(request, 3, 0) == "repeated"
    assert state.expire(T0 + 10_000) == []


def test_a_decision_ahead_of_the_sent_timeout_in_the_log_stands() -> None:
    """A decision that reached the log before the job's timeout wins: the timeout is superseded."""
    state = _fold([_request("a1")])
    (expired,) = state.expire(T0 + 10)
    assert state.apply(_decision("a1", at=T0 + 9), 1, 0) == "superseded"
    assert state.apply(timeout_event(expired, T0 + 10), 2, 0) is None  # already closed
    assert state.superseded == 1
    assert state.late == 0


def test_the_deadline_counts_from_publication_when_that_was_later() -> None:
    """A request published after its occurred_at times out timeout_s after it reached Kafka."""
    state = PendingApprovals()
    state.apply(_request("a1"), 0, int((T0 + 30) * 1000))
    assert state.expire(T0 + 39) == []
    assert len(state.expire(T0 + 40)) == 1


def test_a_restart_rebuilds_the_same_pending_approvals_from_the_committed_metadata() -> None:
    """Rebuilt from the committed rebuild_from to the end, the state fires what is left, once."""
    log: list[BaseEvent] = [
        _request("a1", timeout_s=5),  # times out before the commit
        _request("a2", timeout_s=50),  # still waiting at the commit
        _decision("a1", at=T0 + 100),  # after a1's timeout: will be late
        _request("a3", at=T0 + 1, timeout_s=5),  # times out before the commit
        _request("a4", at=T0 + 2, timeout_s=500),  # decided after the commit
    ]
    live = _fold(log[:2])
    # The job's transaction at T0 + 6: a1's timeout sent, position 2 committed with rebuild_from.
    sent = live.expire(T0 + 6)
    assert [r.approval_id for r in sent] == ["a1"]
    rebuild_from = live.rebuild_from(2)
    assert rebuild_from == 0  # a1's timeout is not read back yet: its request is read again
    log.insert(2, timeout_event(sent[0], T0 + 6))  # committed with that position
    log.append(_decision("a4", at=T0 + 7))

    # Killed; restarted: the rebuild reads from rebuild_from to the end, publishing nothing.
    rebuilt = _fold(log, start=rebuild_from)
    assert rebuilt.expire(T0 + 6) == [log[4]]  # a3 only: a1 timed out already, a2 not due
    assert rebuilt.late == 1  # a1's decision, after its timeout
    assert [r.approval_id for r in rebuilt.expire(T0 + 51)] == ["a2"]
    assert rebuilt.expire(T0 + 10_000) == []  # a4 was decided


_STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("request"), st.integers(0, 7), st.integers(1, 20)),
        st.tuples(st.just("decide"), st.integers(0, 7), st.just(0)),
        st.tuples(st.just("tick"), st.integers(0, 7), st.integers(0, 15)),
    ),
    max_size=60,
)


# At the shipped memory of closed approvals. With a memory smaller than the approvals closed
# between a decision and a repeat of its request (hypothesis finds it at 2), a restart can open
# the forgotten approval again: a documented limit, not covered here.
@given(_STEPS, st.integers(0, 60), st.just(100_000))
def test_a_job_restarted_at_any_point_publishes_what_an_uninterrupted_one_would(
    steps: list[tuple[str, int, int]], crash_at: int, remembered: int
) -> None:
    """Any requests, decisions and ticks: rebuilt from the last commit, it goes on alike."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_pending, "_CLOSED_REMEMBERED", remembered)
        _restart_equals_uninterrupted(steps, crash_at)


def _restart_equals_uninterrupted(steps: list[tuple[str, int, int]], crash_at: int) -> None:
    log: list[BaseEvent] = []
    live, now, rebuild_from = PendingApprovals(), T0, 0
    restarted: PendingApprovals | None = None  # from the crash on, fed the same records
    fired: set[uuid.UUID] = set()

    def append(event: BaseEvent) -> None:
        log.append(event)
        for state in (live, restarted) if restarted is not None else (live,):
            state.apply(event, len(log) - 1, int(event.occurred_at.timestamp() * 1000))

    for step, (kind, approval, amount) in enumerate(steps):
        if step == crash_at:
            restarted = _fold(log, start=rebuild_from)
        if kind == "request":
            append(_request(f"a{approval}", at=now, timeout_s=amount))
        elif kind == "decide":
            append(_decision(f"a{approval}", at=now))
        else:  # a transaction: the due timeouts and the position, committed together
            now += amount
            due = live.expire(now)
            if restarted is not None:
                assert restarted.expire(now) == due
            for request in due:
                assert request.event_id not in fired  # never twice for one request
                fired.add(request.event_id)
                append(timeout_event(request, now))
            rebuild_from = live.rebuild_from(len(log))
    restarted = restarted if restarted is not None else _fold(log, start=rebuild_from)
    assert restarted.expire(now + 1000) == live.expire(now + 1000)


def test_rebuild_from_starts_at_the_oldest_request_still_held(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Open or remembered closed approvals pin it; forgotten ones free it; none: the position."""
    monkeypatch.setattr(_pending, "_CLOSED_REMEMBERED", 1)
    assert PendingApprovals().rebuild_from(5) == 5
    state = _fold([_request("a1"), _request("a2", timeout_s=60), _decision("a1", at=T0 + 1)])
    assert state.rebuild_from(3) == 0  # a1 is closed, and remembered
    state.apply(_decision("a2", at=T0 + 2), 3, 0)  # a1 is forgotten: one closure remembered
    assert state.rebuild_from(4) == 1
    state.apply(_request("a1"), 4, 0)  # forgotten: a repeated request opens it again
    assert state.rebuild_from(5) == 1


def test_timeouts_have_one_id_per_request_and_point_at_it() -> None:
    """uuid5 of the request's id, whatever the time; caused by, and correlated with, the request."""
    request = _request("a1")
    first, again = timeout_event(request, T0 + 10), timeout_event(request, T0 + 99)
    assert first.event_id == again.event_id == timeout_event_id(request.event_id)
    assert first.event_id != timeout_event_id(uuid.uuid4())
    assert first.causation_id == str(request.event_id)
    assert first.correlation_id == request.correlation_id
    assert (first.session_id, first.approval_id, first.waited_s) == ("s-a1", "a1", 10)
    assert again.waited_s == 99
    assert first.source == "agentflux.hitl-timeouts"


def test_committed_metadata_names_where_to_rebuild_from() -> None:
    """Only the job's own metadata names an offset; anything else names none."""
    assert parse_rebuild_from("rebuild_from=42") == 42
    assert parse_rebuild_from("") is None
    assert parse_rebuild_from("rebuild_from=x") is None
    assert parse_rebuild_from("replayed by agentflux") is None


async def _views(tmp_path: Path, log: list[BaseEvent]) -> tuple[dict[str, object], dict[str, int]]:
    async with SqliteStore(tmp_path / "views.db") as store:
        views = (ContextView(), MetricsView())
        await store.migrate([sql for view in views for sql in view.ddl])
        for offset, event in enumerate(log):
            async with store.transaction() as tx:
                for view in views:
                    await view.apply(tx, event, Position("hitl.events", 0, offset))
        context = await get_context(store, "s-a1")
        approvals = (await get_metrics(store))["approvals"]
    assert context is not None
    return context, approvals


async def test_views_keep_the_timeout_when_a_decision_comes_late(tmp_path: Path) -> None:
    """Context stays timed out (not pending, not approved); metrics count a late decision."""
    request = _request("a1")
    log: list[BaseEvent] = [request, timeout_event(request, T0 + 10), _decision("a1", at=T0 + 30)]
    context, approvals = await _views(tmp_path, log)
    assert context["pending_approvals"] == []
    assert (approvals["timed_out"], approvals["late"], approvals["approved"]) == (1, 1, 0)
    assert approvals["avg_latency_ms"] is None  # a late decision is no answer to time


async def test_views_keep_a_decision_that_came_before_the_timeout(tmp_path: Path) -> None:
    """A timeout behind a decision in the log counts nothing: the decision is the outcome."""
    request = _request("a1")
    log: list[BaseEvent] = [request, _decision("a1", at=T0 + 9), timeout_event(request, T0 + 10)]
    context, approvals = await _views(tmp_path, log)
    assert context["pending_approvals"] == []
    assert (approvals["approved"], approvals["timed_out"], approvals["late"]) == (1, 0, 0)


def test_the_simulator_leaves_timeouts_to_the_job() -> None:
    """No simulated timeout events; every request carries the asked timeout, some stay unanswered."""
    events = list(Simulator(sessions=200, seed=3, approval_timeout_s=7).events())
    assert not any(isinstance(e, HitlTimeoutOccurredEvent) for e in events)
    requests = [e for e in events if isinstance(e, HitlApprovalRequestedEvent)]
    decided = {e.approval_id for e in events if isinstance(e, HitlDecisionMadeEvent)}
    assert {r.timeout_s for r in requests} == {7}
    assert 0 < len({r.approval_id for r in requests} - decided) < len(requests)


def test_the_job_is_a_shipped_group_without_a_view(tmp_path: Path) -> None:
    """It runs as a service on the prefixed hitl topic; view-only commands refuse it."""
    from typer.testing import CliRunner  # noqa: PLC0415  # only this test drives the CLI

    from agentflux.cli import app  # noqa: PLC0415

    settings = AgentfluxSettings(topic_prefix="staging.")
    job = shipped_service("hitl-timeouts", None, settings)
    assert isinstance(job, HitlTimeoutJob)
    assert (job.group_id, job.topics) == ("agentflux.hitl-timeouts", ["staging.hitl.events"])
    with pytest.raises(ValueError, match="keeps no view"):
        SHIPPED_GROUPS["hitl-timeouts"].view()
    refused = CliRunner().invoke(
        app, ["rebuild", "hitl-timeouts", "--into", f"sqlite:///{tmp_path / 'x.db'}"]
    )
    assert refused.exit_code == 2  # a usage error, before anything is opened
    assert "context, metrics, audit" in refused.output
