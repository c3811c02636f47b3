"""The machine a benchmark ran on: CPUs, Python, and its yardsticks (Python's speed, wake-ups)."""

from __future__ import annotations

import asyncio
import os
import platform
import time
import timeit
from typing import Any

from bench._measure import percentile

__all__ = ["machine_report", "yardstick_us"]


def yardstick_us() -> float:
    """Microseconds for ``sum(range(1000))``, best of 5: how fast this machine runs Python.

    Virtual machines of one kind differ by 2x and more; this puts figures from two of them side
    by side.
    """
    timer = timeit.Timer("sum(range(1000))")
    return round(min(timer.repeat(repeat=5, number=2000)) / 2000 * 1e6, 2)


async def _wakeups(sleep_s: float, times: int) -> tuple[float, list[float]]:
    """CPU microseconds per ``asyncio.sleep(sleep_s)`` wake-up, and how late each came (ms).

    With ``sleep_s`` 0 the loop never idles; with 0.001 it idles between wake-ups, as each
    process of a pipeline at 1k events/s does between events. Returning from idle costs much
    more on some virtual machines than on others (a second yardstick, for the latency rows), and
    on an idle machine its lateness is the floor that any one wake-up on an event's path adds:
    at 1k/s an event passes several (publisher, the broker's threads, consumer).
    """
    late_ms: list[float] = []
    cpu = time.process_time()
    for _ in range(times):
        asked = time.perf_counter()
        await asyncio.sleep(sleep_s)  # the measured wake-up itself, not a readiness wait
        late_ms.append((time.perf_counter() - asked - sleep_s) * 1e3)
    return round((time.process_time() - cpu) / times * 1e6, 1), late_ms


async def machine_report() -> dict[str, Any]:
    """The machine: CPUs, Python, OS, its yardsticks (Python's speed, a wake-up's CPU and delay)."""
    busy_cpu_us, _ = await _wakeups(0, 5000)
    idle_cpu_us, late_ms = await _wakeups(0.001, 2000)
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "sum_range_1000_us": yardstick_us(),
        "wakeup_cpu_us": {"busy_loop": busy_cpu_us, "after_1ms_idle": idle_cpu_us},
        "wakeup_late_ms": {
            "p50": round(percentile(late_ms, 0.5), 3),
            "p99": round(percentile(late_ms, 0.99), 3),
            "max": round(max(late_ms), 3),
        },
        "event_loop": type(asyncio.get_running_loop()).__module__.split(".")[0],
    }
