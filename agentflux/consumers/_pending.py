"""The pending approvals of one hitl partition: requested, not decided, with their deadlines.

A pure fold over the partition's records in log order, with no clock and no I/O: the timeout job
(``_timeouts``) feeds it records and asks what expired at a time it passes in, so the same
records give the same state on a live run, after a restart and in a unit test with a fake clock.

An approval's requests, decisions and timeouts all travel on the hitl topic keyed by session id,
so they share one partition and its order. The first outcome in that order (a decision or a
timeout) closes the approval for good: a decision after a timeout is counted as late and does
not reopen it, and a second request for an approval already seen changes nothing.
"""

from __future__ import annotations

import heapq
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from agentflux.schemas import (
    HitlApprovalRequestedEvent,
    HitlDecisionMadeEvent,
    HitlTimeoutOccurredEvent,
)

if TYPE_CHECKING:
    from agentflux.schemas import BaseEvent

__all__ = ["TIMEOUT_SOURCE", "PendingApprovals", "timeout_event", "timeout_event_id"]

TIMEOUT_SOURCE = "agentflux.hitl-timeouts"  # the envelope's source of every timeout it emits
# uuid5 namespace of the timeout ids: uuid5(namespace, request event id) names one timeout per
# request, the same on every run. (A fixed uuid4; changing it would change every id.)
_TIMEOUT_IDS = uuid.UUID("5d4d1a39-0f3c-4a39-9a43-7d3b2f8e61c4")
# How many closed approvals are remembered, to recognise a late decision or a repeated request:
# older ones' are ignored (memory stays bounded however long the job runs).
_CLOSED_REMEMBERED = 100_000

_Key = tuple[str, str]  # (session id, approval id): the views key approvals the same way


def timeout_event_id(request_event_id: uuid.UUID) -> uuid.UUID:
    """The one id of the timeout of the request ``request_event_id``."""
    return uuid.uuid5(_TIMEOUT_IDS, str(request_event_id))


def timeout_event(request: HitlApprovalRequestedEvent, now: float) -> HitlTimeoutOccurredEvent:
    """The timeout of ``request`` at ``now`` (seconds since the epoch), caused by the request."""
    requested = request.occurred_at.timestamp()
    return HitlTimeoutOccurredEvent(
        event_id=timeout_event_id(request.event_id),
        occurred_at=datetime.fromtimestamp(now, UTC),
        session_id=request.session_id,
        correlation_id=request.correlation_id,
        causation_id=str(request.event_id),
        source=TIMEOUT_SOURCE,
        approval_id=request.approval_id,
        waited_s=max(request.timeout_s, int(now - requested)),
    )


@dataclass(slots=True)
class _Open:
    request: HitlApprovalRequestedEvent
    offset: int  # of the request: where a rebuild must start to see it
    deadline: float  # seconds since the epoch
    fired: bool = False  # its timeout is sent, not yet read back from the partition


@dataclass(slots=True)
class PendingApprovals:
    """The open approvals of one partition, a deadline heap, and what the job counted."""

    _open: dict[_Key, _Open] = field(default_factory=dict)  # in request-offset order
    _deadlines: list[tuple[float, _Key]] = field(default_factory=list)
    _closed: dict[_Key, bool] = field(default_factory=dict)  # timed out?, oldest first, bounded
    late: int = 0  # decisions read after the approval's timeout
    superseded: int = 0  # timeouts sent while a decision was already on its way to the log

    def __len__(self) -> int:
        """Open approvals whose timeout is not sent yet."""
        return sum(1 for approval in self._open.values() if not approval.fired)

    def apply(self, event: BaseEvent, offset: int, timestamp_ms: int) -> str | None:
        """Fold one record in; what it did to an approval (None: nothing).

        ``timestamp_ms`` is the record's Kafka timestamp: an approval times out ``timeout_s``
        after its ``occurred_at``, or after it reached Kafka if that was later (nobody can
        answer a request before it is published).
        """
        match event:
            case HitlApprovalRequestedEvent():
                return self._request(event, offset, timestamp_ms)
            case HitlDecisionMadeEvent():
                return self._decision((event.session_id, event.approval_id))
            case HitlTimeoutOccurredEvent():
                return self._timeout((event.session_id, event.approval_id))
            case _:
                return None

    def _request(self, event: HitlApprovalRequestedEvent, offset: int, timestamp_ms: int) -> str:
        key = (event.session_id, event.approval_id)
        if key in self._open or key in self._closed:
            return "repeated"  # a request never reopens or restarts an approval
        start = max(event.occurred_at.timestamp(), timestamp_ms / 1000)
        deadline = start + event.timeout_s
        self._open[key] = _Open(event, offset, deadline)
        heapq.heappush(self._deadlines, (deadline, key))
        return "opened"

    def _decision(self, key: _Key) -> str | None:
        approval = self._open.pop(key, None)
        if approval is not None:
            self._close(key, timed_out=False)
            if approval.fired:
                self.superseded += 1  # first in the log: the decision stands, our timeout not
                return "superseded"
            return "decided"
        if self._closed.get(key):
            self.late += 1
            return "late"
        return None  # decided twice, closed before this state began, or never requested

    def _timeout(self, key: _Key) -> str | None:
        if self._open.pop(key, None) is None:
            return None  # already closed: by a decision first, or before this state began
        self._close(key, timed_out=True)
        return "timed out"

    def _close(self, key: _Key, *, timed_out: bool) -> None:
        self._closed[key] = timed_out
        if len(self._closed) > _CLOSED_REMEMBERED:
            del self._closed[next(iter(self._closed))]

    def next_deadline(self) -> float | None:
        """The earliest deadline of an approval whose timeout is not sent yet."""
        self._drop_closed()
        return self._deadlines[0][0] if self._deadlines else None

    def expire(self, now: float) -> list[HitlApprovalRequestedEvent]:
        """The requests whose deadline is at or before ``now``, each returned once, ever.

        They stay open (as sent) until their timeout, or a decision that came first, is read
        back from the partition.
        """
        expired: list[HitlApprovalRequestedEvent] = []
        while True:
            self._drop_closed()
            if not self._deadlines or self._deadlines[0][0] > now:
                return expired
            _, key = heapq.heappop(self._deadlines)
            approval = self._open[key]
            approval.fired = True
            expired.append(approval.request)

    def _drop_closed(self) -> None:
        # Closed approvals leave their heap entry behind; drop those that reach the top.
        deadlines = self._deadlines
        while deadlines and deadlines[0][1] not in self._open:
            heapq.heappop(deadlines)

    def rebuild_from(self, next_offset: int) -> int:
        """Where a rebuild of this state must start reading: the oldest unsent request's offset.

        Every approval requested before it is closed or has its timeout sent (sent in the same
        transaction as this position, so it is read back after a restart or never sent at all);
        ``next_offset`` (the position) when nothing is waiting.
        """
        for approval in self._open.values():  # in offset order: usually the first one answers
            if not approval.fired:
                return approval.offset
        return next_offset
