"""RateLimiter: the long-run rate holds when sleeps overshoot, bursts are bounded, bad input."""

from __future__ import annotations

import pytest

from agentflux.producers import RateLimiter


class _Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_strict_pacing_spaces_calls_one_interval_apart() -> None:
    """With burst 1 and no time passing, each call waits one interval longer than the last."""
    clock = _Clock()
    limiter = RateLimiter(100, burst=1, clock=clock)
    assert [round(limiter.delay(), 6) for _ in range(4)] == [0.0, 0.01, 0.02, 0.03]


def test_oversleeping_does_not_lower_the_long_run_rate() -> None:
    """Every wait overshooting by 1.5 ms (a late event loop) still gives 1000 calls/s overall."""
    clock = _Clock()
    limiter = RateLimiter(1000, burst=5, clock=clock)
    start = clock.now
    for _ in range(10_000):
        wait = limiter.delay()
        if wait > 0:
            clock.now += wait + 0.0015
    elapsed = clock.now - start
    assert 9.9 < elapsed < 10.1


def test_idle_time_banks_at_most_burst_calls() -> None:
    """After a long idle spell exactly ``burst`` calls pass at once, then pacing resumes."""
    clock = _Clock()
    limiter = RateLimiter(10, burst=3, clock=clock)
    clock.now += 60
    assert [limiter.delay() == 0 for _ in range(4)] == [True, True, True, False]


def test_no_rate_never_waits() -> None:
    """``rate=None`` is unlimited: no call waits."""
    limiter = RateLimiter(None, clock=_Clock())
    assert all(limiter.delay() == 0 for _ in range(1000))


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-5, 1), (10, 0)])
def test_nonsense_settings_are_refused(rate: float, burst: int) -> None:
    """A rate that is not positive or a burst under 1 raises ValueError."""
    with pytest.raises(ValueError, match="must be"):
        RateLimiter(rate, burst)
