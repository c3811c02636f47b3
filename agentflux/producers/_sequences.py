"""The envelope's ``producer_id`` and ``sequence``: which process published an event, in what order.

Every event a publisher sends carries its ``producer_id`` (fixed for the process's life) and a
``sequence`` per session: 0, 1, 2, ... in the order the process published that session's events.
Readers order a session's events by (``producer_id``, ``sequence``) whatever topic each went to,
and a missing number is a gap they can see.

A session's counter is set aside when its ``session_deleted`` event is published: memory is one
small entry per session still open (about 100 bytes), plus the last :data:`ENDED_REMEMBERED`
deleted sessions, whose numbering goes on if their id is used again.
"""

from __future__ import annotations

import os
import secrets
import socket
from typing import Any

from agentflux.schemas import EventType

__all__ = ["ENDED_REMEMBERED", "SessionSequences", "new_producer_id"]

ENDED_REMEMBERED = 65_536
"""How many deleted sessions keep their next number, in case their id is used again."""

_MAX_HOST = 96  # the producer id is an identifier: at most 128 characters in all


def new_producer_id() -> str:
    """``host:pid:random``: unique per process, and readable in an audit trail."""
    return f"{socket.gethostname()[:_MAX_HOST]}:{os.getpid()}:{secrets.token_hex(4)}"


class SessionSequences:
    """Stamps each event's envelope with this process's producer id and the session's next number.

    An event that already carries a ``sequence`` (relayed, or re-driven from a dead-letter topic)
    keeps its own ``producer_id`` and ``sequence``.
    """

    __slots__ = ("_ended", "_next", "producer_id")

    def __init__(self, producer_id: str | None = None) -> None:
        """Use ``producer_id`` (default: a new one for this process)."""
        self.producer_id = producer_id or new_producer_id()
        self._next: dict[str, int] = {}
        # Deleted sessions' next numbers, oldest first (dicts keep insertion order).
        self._ended: dict[str, int] = {}

    def stamped(self, fields: dict[str, Any]) -> dict[str, Any]:
        """The fields to encode: ``fields`` with this producer's id and the session's number."""
        if fields["sequence"] is not None:
            return fields
        session = fields["session_id"]
        sequence = self._next.get(session)
        if sequence is None:  # a new session, or an id used again after its deletion
            sequence = self._ended.pop(session, 0)
        if fields["event_type"] is EventType.SESSION_DELETED:
            self._next.pop(session, None)  # the session's last event, normally
            self._ended[session] = sequence + 1
            if len(self._ended) > ENDED_REMEMBERED:
                del self._ended[next(iter(self._ended))]
        else:
            self._next[session] = sequence + 1
        stamped = fields.copy()  # a copy of the table: about half the cost of {**fields, ...}
        stamped["producer_id"] = self.producer_id
        stamped["sequence"] = sequence
        return stamped

    def rewind(self, stamped: dict[str, Any], original: dict[str, Any]) -> None:
        """Give the number back: the stamped event was refused before it was queued."""
        if stamped is not original:
            self._ended.pop(stamped["session_id"], None)
            self._next[stamped["session_id"]] = stamped["sequence"]

    def open_sessions(self) -> int:
        """How many sessions have a counter (published to, not deleted yet)."""
        return len(self._next)
