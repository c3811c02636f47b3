"""The local brokers' garbage-collection logs: when each JVM stopped the world, and for how long.

Kafka's start script logs every broker's collections (``kafkaServer-gc.log``, rotated); the
local cluster does the same, one ``gc.log`` per node directory. A stop-the-world pause stalls
every request the broker is serving, so at low rates the pauses are much of the tail of
end-to-end latency: the benchmark matches them against its slowest events.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["GC_LOG_NAME", "GcPause", "gc_log_options", "read_gc_pauses"]

GC_LOG_NAME = "gc.log"
# The JVM writes a pause's line when it ends: "[<time>][<uptime>] GC(12) Pause Young (Normal)
# (G1 Evacuation Pause) 277M->182M(315M) 9.365ms"; G1's Remark and Cleanup and ZGC's pauses
# read the same way. Lines without a duration (a pause's start under gc*) are not pauses.
_PAUSE_LINE = re.compile(
    r"^\[(?P<time>[^\]]+)\].*\bGC\(\d+\) Pause (?P<kind>\w+).* (?P<ms>\d+(?:\.\d+)?)ms$"
)


@dataclass(frozen=True, slots=True)
class GcPause:
    """One stop-the-world pause; times in seconds since the epoch."""

    ended: float
    seconds: float
    kind: str  # Young, Remark, Cleanup, Full, ...

    @property
    def started(self) -> float:
        """When the JVM stopped."""
        return self.ended - self.seconds


def gc_log_options(log_file: Path) -> tuple[str, ...]:
    """JVM options that log collections to ``log_file`` with wall-clock times, rotated."""
    return (f"-Xlog:gc:file={log_file}:time,uptime:filecount=4,filesize=16m",)


def read_gc_pauses(log_file: Path) -> list[GcPause]:
    """Every pause in ``log_file`` and its rotated files (``gc.log.0`` ...), oldest first."""
    pauses = [
        pause
        for path in log_file.parent.glob(f"{log_file.name}*")
        for pause in _pauses_in(path.read_text(encoding="utf-8", errors="replace"))
    ]
    return sorted(pauses, key=lambda pause: pause.ended)


def _pauses_in(text: str) -> list[GcPause]:
    pauses = []
    for line in text.splitlines():
        match = _PAUSE_LINE.match(line)
        if match is None:
            continue
        try:
            # The "time" decorator, with its offset: 2026-12-02T00:07:52.048+0000.
            ended = datetime.strptime(match["time"], "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()
        except ValueError:  # another decorator first: not a line this module wrote
            continue
        pauses.append(GcPause(ended, float(match["ms"]) / 1000, match["kind"]))
    return pauses
