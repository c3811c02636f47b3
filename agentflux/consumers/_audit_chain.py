"""The audit chains of one batch, worked out in memory: placed, held, drained, closed by gaps.

Pure: the view reads the chains' ends and held events, folds the batch here, and writes what
this returns. The rules are the per-event ones (see ``_audit``), applied to each event in turn.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agentflux.schemas._json import model_json

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from agentflux.consumers._records import Position
    from agentflux.schemas import BaseEvent

__all__ = ["COLUMNS", "GENESIS", "ChainEnd", "ChainKey", "Entry", "Fold", "link"]

GENESIS = "0" * 64
# The columns of audit_chain, in the order of the rows a fold makes.
COLUMNS = (
    "session_id, chain, seq, kind, event_id, event_type, occurred_ms, topic, part, off, "
    "producer_id, sequence, payload, prev_hash, hash"
)

ChainKey = tuple[str, str]  # (session id, chain)


def link(previous: str, payload: str) -> str:
    """A record's hash: ``sha256(previous hash + payload)``."""
    return hashlib.sha256(f"{previous}{payload}".encode()).hexdigest()


@dataclass(slots=True)  # not frozen: a frozen one's __init__ costs a setattr call per field
class Entry:
    """An event as the chain records it (never changed once made)."""

    session_id: str
    chain: str
    event_id: str
    event_type: str
    occurred_ms: int
    topic: str
    part: int
    off: int
    producer_id: str | None
    sequence: int | None
    payload: str

    @classmethod
    def of(cls, event: BaseEvent, position: Position) -> Entry:
        """The entry of an event read at ``position``."""
        # pydantic's own JSON, in the model's field order: the same text for the same event and
        # model (written in C for the plain models, see model_json).
        payload = model_json(event)
        # Version 2: the producer's chain (a sequence without a producer id is one producer too).
        sequenced = event.sequence is not None
        return cls(
            session_id=event.session_id,
            chain=(event.producer_id or "") if sequenced else f"topic:{event.topic}",
            event_id=str(event.event_id),
            event_type=event.EVENT_TYPE.value,
            occurred_ms=int(event.occurred_at.timestamp() * 1000),
            topic=position.topic,
            part=position.partition,
            off=position.offset,
            producer_id=event.producer_id if sequenced else None,
            sequence=event.sequence,
            payload=payload,
        )

    @classmethod
    def held(cls, row: Mapping[str, Any]) -> Entry:
        """The entry of a row of ``audit_pending``."""
        return cls(
            row["session_id"],
            row["chain"],
            row["event_id"],
            row["event_type"],
            int(row["occurred_ms"]),
            row["topic"],
            int(row["part"]),
            int(row["off"]),
            row["producer_id"],
            int(row["sequence"]),
            row["payload"],
        )

    @property
    def key(self) -> ChainKey:
        """The chain it belongs to."""
        return self.session_id, self.chain


@dataclass(slots=True)
class ChainEnd:
    """Where a chain ends: the number it expects next, its last record and that record's hash."""

    next_sequence: int
    last_seq: int
    last_hash: str


@dataclass(slots=True)
class Fold:
    """A batch's effect on the chains it touches: the rows to write, in key order."""

    ends: dict[ChainKey, ChainEnd]
    waiting: dict[ChainKey, dict[int, Entry]]  # held events by chain and sequence
    held_ms: int  # when the events held now were held (wall clock, for the record)
    stored: set[tuple[ChainKey, int]] = field(default_factory=set)  # held in the store already
    records: list[tuple[Any, ...]] = field(default_factory=list)  # audit_chain rows
    changed: set[ChainKey] = field(default_factory=set)
    released: list[tuple[str, str, int]] = field(default_factory=list)  # stored, now chained
    gaps: int = 0  # sequence numbers recorded as missing
    late: int = 0
    gap_records: list[tuple[str, str, int, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.stored = {(key, sequence) for key, held in self.waiting.items() for sequence in held}

    def place(self, entry: Entry) -> None:
        """Chain an event not seen before: appended, held for its predecessor, or late."""
        sequence = entry.sequence
        if sequence is None:  # envelope v1: the topic's order
            self._append(entry.key, entry, "event")
            return
        key = (entry.session_id, entry.chain)
        end = self.ends[key]
        if sequence == end.next_sequence:  # the common case: next in its chain
            self._append(key, entry, "event")
            if self.waiting.get(key):
                self._drain(key)
            return
        held = self.waiting.get(key)
        if held is None:
            held = self.waiting[key] = {}
        if sequence > end.next_sequence and sequence not in held:
            held[sequence] = entry
        else:  # its number was passed over (a gap) or is taken by another event: evidence
            self._append(key, entry, "late")
            self.late += 1

    def close(self, key: ChainKey, overdue: Callable[[Entry], bool]) -> None:
        """Record as gaps the numbers before held events that are ``overdue``, then go on."""
        held = self.waiting.get(key)
        while held and any(overdue(entry) for entry in held.values()):
            end, first = self.ends[key], min(held)
            if first > end.next_sequence:  # always, as placing drains what follows the end
                self._gap(key, end.next_sequence, first - 1)
            self._drain(key)

    def held_keys(self) -> list[ChainKey]:
        """The chains with events still held."""
        return [key for key, held in self.waiting.items() if held]

    def new_held(self) -> list[Entry]:
        """Events held by this batch, still held at its end, in key order."""
        return sorted(
            (
                entry
                for key, held in self.waiting.items()
                for sequence, entry in held.items()
                if (key, sequence) not in self.stored
            ),
            key=lambda entry: (entry.session_id, entry.chain, entry.sequence),
        )

    def _drain(self, key: ChainKey) -> None:
        """Append the held events that now follow the chain's end, in order."""
        held, end = self.waiting[key], self.ends[key]
        while (entry := held.pop(end.next_sequence, None)) is not None:
            if (key, end.next_sequence) in self.stored:
                self.released.append((*key, end.next_sequence))
            self._append(key, entry, "event")

    def _link(self, key: ChainKey, payload: str) -> tuple[int, str, str]:
        end = self.ends[key]
        seq, previous = end.last_seq + 1, end.last_hash
        digest = link(previous, payload)
        end.last_seq, end.last_hash = seq, digest
        self.changed.add(key)
        return seq, previous, digest

    def _append(self, key: ChainKey, entry: Entry, kind: str) -> None:
        seq, previous, digest = self._link(key, entry.payload)
        if kind == "event" and entry.sequence is not None:
            # A late event does not move the expected number: the chain already passed it.
            self.ends[key].next_sequence = entry.sequence + 1
        self.records.append(
            (
                entry.session_id,
                entry.chain,
                seq,
                kind,
                entry.event_id,
                entry.event_type,
                entry.occurred_ms,
                entry.topic,
                entry.part,
                entry.off,
                entry.producer_id,
                entry.sequence,
                entry.payload,
                previous,
                digest,
            )
        )

    def _gap(self, key: ChainKey, first: int, last: int) -> None:
        """A record standing for the sequence numbers ``first``..``last`` that never arrived."""
        payload = json.dumps({"missing_from": first, "missing_to": last}, separators=(",", ":"))
        seq, previous, digest = self._link(key, payload)
        self.ends[key].next_sequence = last + 1
        session_id, chain = key
        # No event: no id, type 'gap', no time nor place; its producer and first missing number.
        gap = (None, "gap", 0, "", -1, -1, chain, first)
        self.records.append((session_id, chain, seq, "gap", *gap, payload, previous, digest))
        self.gaps += last - first + 1
        self.gap_records.append((session_id, chain, first, last))
