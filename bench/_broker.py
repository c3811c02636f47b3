"""The broker's side of a latency run: its CPU and its GC pauses, when the bench started it.

On a shared machine the end-to-end tail is made of waits the clients do not cause: the broker
stopping the world to collect, and the processes queueing for a core. The latency runs record
both, so the report says how much of the slowest 1 % a broker pause explains.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

from agentflux._local import GcPause, read_gc_pauses

__all__ = ["BrokerWatch", "PauseOverlap", "process_cpu_seconds"]

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int) -> float:
    """A process's user + system CPU so far (NaN where there is no ``/proc`` or no such process)."""
    try:
        # After the parenthesised command name: utime and stime are fields 14 and 15.
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


@dataclass(frozen=True, slots=True)
class PauseOverlap:
    """Events whose publish -> handler interval contained part of a broker GC pause."""

    pauses: int
    pause_ms: float
    max_pause_ms: float
    events: int
    events_in_pause: int
    slowest: int  # the run's slowest 1 %
    slowest_in_pause: int


class BrokerWatch:
    """CPU time and GC pauses of the local broker process ``pid`` (Linux ``/proc``)."""

    def __init__(self, pid: int, gc_log: Path) -> None:
        """Watch ``pid``, whose JVM logs its collections to ``gc_log``."""
        self._pid = pid
        self._gc_log = gc_log

    def cpu_seconds(self) -> float:
        """The broker's user + system CPU so far (NaN where there is no ``/proc``)."""
        return process_cpu_seconds(self._pid)

    def overlap(
        self, sent: dict[str, float], received: dict[str, float], slowest: set[str]
    ) -> PauseOverlap:
        """Match pauses against events timed with ``perf_counter`` (sent, received by id)."""
        to_perf = time.perf_counter() - time.time()  # the log's wall clock -> perf_counter
        first, last = min(sent.values()), max(received.values())
        pauses = [
            (pause.started + to_perf, pause.ended + to_perf, pause)
            for pause in read_gc_pauses(self._gc_log)
            if first <= pause.ended + to_perf and pause.started + to_perf <= last
        ]

        def in_pause(event_id: str) -> bool:
            start, end = sent[event_id], received[event_id]
            return any(begun <= end and start <= ended for begun, ended, _ in pauses)

        return PauseOverlap(
            pauses=len(pauses),
            pause_ms=sum(_ms(pause) for _, _, pause in pauses),
            max_pause_ms=max((_ms(pause) for _, _, pause in pauses), default=0.0),
            events=len(sent),
            events_in_pause=sum(1 for event_id in sent if in_pause(event_id)),
            slowest=len(slowest),
            slowest_in_pause=sum(1 for event_id in slowest if in_pause(event_id)),
        )


def _ms(pause: GcPause) -> float:
    return pause.seconds * 1000
