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

    _open: dict[_Key, _Open] = field(default_factory=dict)
    _deadlines: list[tuple[float, _Key]] = field(default_factory=list)  # of unsent approvals
    # Closed approvals, remembered: (timed out?, request offset), oldest closure first, bounded.
    _closed: dict[_Key, tuple[bool, int]] = field(default_factory=dict)
    # The request offset of every approval held (open or remembered closed): where to rebuild.
    _offsets: list[tuple[int, _Key]] = field(default_factory=list)
    late: int = 0  # decisions read after the approval's timeout
    superseded: int = 0  # timeouts sent while a decision was already on its way to the log
    _unsent: int = 0  # open approvals whose timeout is not sent yet

    def __len__(self) -> int:
        """Open approvals whose timeout is not sent yet."""
        return self._unsent

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
        self._unsent += 1
        heapq.heappush(self._deadlines, (deadline, key))
        heapq.heappush(self._offsets, (offset, key))
        return "opened"

    def _decision(self, key: _Key) -> str | None:
        approval = self._open.pop(key, None)
        if approval is not None:
            self._close(key, timed_out=False, was=approval)
            if approval.fired:
                self.superseded += 1  # first in the log: the decision stands, our timeout not
                return "superseded"
            return "decided"
        if self._closed.get(key, (False, 0))[0]:
            self.late += 1
            return "late"
        return None  # decided twice, closed before this state began, or never requested

    def _timeout(self, key: _Key) -> str | None:
        approval = self._open.pop(key, None)
        if approval is None:
            return None  # already closed: by a decision first, or before this state began
        self._close(key, timed_out=True, was=approval)
        return "timed out"

    def _close(self, key: _Key, *, timed_out: bool, was: _Open) -> None:
        if not was.fired:
            self._unsent -= 1
        self._closed[key] = (timed_out, was.offset)
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
            self._unsent -= 1
            expired.append(approval.request)

    def _drop_closed(self) -> None:
        # Closed approvals leave their heap entry behind; drop those that reach the top.
        deadlines, held = self._deadlines, self._open
        while deadlines and (
            (approval := held.get(deadlines[0][1])) is None
            or approval.fired
            or approval.deadline != deadlines[0][0]
        ):
            heapq.heappop(deadlines)

    def rebuild_from(self, next_offset: int) -> int:
        """Where a rebuild of this state must start reading: the oldest request it still holds.

        The state is a function of the partition from there on: every approval it holds, open
        (its timeout sent or not) or remembered closed, is requested at or after it, and every
        approval requested before it is closed and forgotten. (A timeout sent is committed in
        the same transaction as this position: a rebuild reads it back, or it was never sent.)
        ``next_offset`` (the position) when it holds none.
        """
        offsets = self._offsets
        while offsets and not self._holds(*offsets[0]):
            heapq.heappop(offsets)  # closed and forgotten since
        return offsets[0][0] if offsets else next_offset

    def _holds(self, offset: int, key: _Key) -> bool:
        approval = self._open.get(key)
        if approval is not None:
            return approval.offset == offset
        closed = self._closed.get(key)
        return closed is not None and closed[1] == offset
