"""What one benchmark run measured, and the arithmetic on it."""

from __future__ import annotations

import gc
import math
import statistics
import time
from dataclasses import dataclass
from typing import Any

__all__ = ["Measurement", "percentile", "settle_heap", "side_by_side"]


@dataclass(frozen=True, slots=True)
class Measurement:
    """Events handled, wall time and CPU time of one run."""

    events: int
    seconds: float
    cpu_seconds: float

    @classmethod
    def since(cls, started: float, cpu_started: float, events: int) -> Measurement:
        """Close a measurement begun at ``perf_counter`` / ``process_time`` readings."""
        return cls(events, time.perf_counter() - started, time.process_time() - cpu_started)

    @property
    def rate(self) -> float:
        """Events per second of wall time."""
        return self.events / self.seconds if self.seconds else math.inf

    @property
    def cpu_us_per_event(self) -> float:
        """Process CPU time per event, in microseconds."""
        return self.cpu_seconds / self.events * 1e6 if self.events else math.nan


def percentile(samples: list[float], fraction: float) -> float:
    """The nearest-rank percentile of ``samples`` (fraction in [0, 1])."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    rank = max(0, math.ceil(fraction * len(ordered)) - 1)
    return ordered[rank]


def settle_heap() -> None:
    """Collect, then freeze what is alive: call before each timed part, on both sides.

    The benchmark holds its own events in memory (hundreds of thousands of objects); frozen,
    they no longer make Python's full collections, and their pauses, part of what is measured.
    """
    gc.collect()
    gc.freeze()


def side_by_side(pairs: list[tuple[Measurement, Measurement]]) -> dict[str, Any]:
    """Medians of (platform, raw) rounds: rates, their ratio, CPU per event, and every round."""
    platform = [pair[0] for pair in pairs]
    raw = [pair[1] for pair in pairs]
    platform_rate = statistics.median(m.rate for m in platform)
    raw_rate = statistics.median(m.rate for m in raw)
    return {
        "platform_events_per_s": round(platform_rate),
        "raw_events_per_s": round(raw_rate),
        "ratio": round(platform_rate / raw_rate, 3),
        "platform_cpu_us_per_event": round(
            statistics.median(m.cpu_us_per_event for m in platform), 1
        ),
        "raw_cpu_us_per_event": round(statistics.median(m.cpu_us_per_event for m in raw), 1),
        "rounds": [
            {"platform_events_per_s": round(p.rate), "raw_events_per_s": round(r.rate)}
            for p, r in pairs
        ],
    }
