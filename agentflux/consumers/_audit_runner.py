"""The audit group's runner: the shipped runner, plus a sweep once a second for idle partitions.

A held event's gap is decided after each batch; a group that receives nothing applies no batch,
so the same decision is also taken once a second (``_audit_clock``: partitions that delivered
nothing for the grace period no longer hold it back).
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from agentflux.consumers._audit import AuditView
from agentflux.consumers._runner import GroupRunner

__all__ = ["AuditRunner"]

_SWEEP_EVERY_S = 1.0
_log = structlog.get_logger("agentflux.audit")


class AuditRunner(GroupRunner):
    """A ``GroupRunner`` whose audit views decide gaps over its topics and assignment."""

    async def run(self, *, install_signal_handlers: bool = False) -> None:
        """Consume until stopped, sweeping the audit views' idle partitions meanwhile."""
        views = [view for view in self.views if isinstance(view, AuditView)]
        for view in views:
            view.follow(self.topics, self._assigned_partitions)
        sweeper = asyncio.create_task(self._sweep_idle(views))
        try:
            await super().run(install_signal_handlers=install_signal_handlers)
        finally:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper

    def _assigned_partitions(self) -> set[int]:
        return {number for numbers in self.assignment.values() for number in numbers}

    async def _sweep_idle(self, views: list[AuditView]) -> None:
        store = self.store
        if store is None or not views:
            return
        while True:
            await asyncio.sleep(_SWEEP_EVERY_S)
            if not self.ready.is_set():
                continue
            # Between batches, never inside one: the sweep sees the batch's effects or none.
            async with self.batch_lock:
                for view in views:
                    try:
                        async with store.transaction() as tx:
                            await view.sweep(tx)
                    except Exception as exc:  # noqa: BLE001  # the next sweep tries again
                        _log.warning("audit sweep failed", group=self.group_id, error=repr(exc))
