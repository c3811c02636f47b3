"""Waiting, the runner's way: bounded waits that an event cuts short."""

from __future__ import annotations

import asyncio
import contextlib

__all__ = ["wait_at_most"]


async def wait_at_most(event: asyncio.Event, seconds: float) -> None:
    """Return once ``event`` is set or ``seconds`` have passed, whichever comes first."""
    if seconds > 0 and not event.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), seconds)
