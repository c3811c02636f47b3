"""The batch hook: a batch handed to ``send_batch`` keeps taking records until the sender takes it.

``send_batch`` queues a batch in aiokafka's accumulator and returns a shield of its delivery
future; the moment the producer's sender takes the batch (its "drained" signal, which also fixes
the batch's sequence number for the idempotent producer) is not public. Reading both from the
accumulator lets the publisher keep appending to a handed-over batch until that moment, as
aiokafka's own ``send()`` does; without them a handed-over batch is closed at once and the
next records start a new one (one produce request later, never a record appended too late).
``tests/unit/test_batching.py`` runs the publisher's batcher over aiokafka's real accumulator.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agentflux.kafka._gate import gate

if TYPE_CHECKING:
    import asyncio

    from aiokafka import AIOKafkaProducer

__all__ = ["taken_and_delivered", "unavailable"]


def unavailable() -> str | None:
    """Why handed-over batches cannot keep taking records (the gate), or None."""
    state = gate()
    return None if state.open else state.reason


def taken_and_delivered(
    producer: AIOKafkaProducer, tp: tuple[str, int], builder: Any
) -> tuple[asyncio.Future[None], asyncio.Future[Any]] | None:
    """(taken, delivered) futures of a builder just handed over, or None if not found.

    ``taken`` completes when the producer's sender takes the batch; ``delivered`` is the
    delivery future itself (``send_batch`` returns a shield of it: one more event-loop hop per
    batch). None with the gate closed, or if aiokafka's internals changed.
    """
    if not gate().open:
        return None
    try:
        queued = producer._message_accumulator._batches.get(tp)  # noqa: SLF001  # see the module
        if queued and queued[-1]._builder is builder:  # noqa: SLF001
            return queued[-1]._drain_waiter, queued[-1].future  # noqa: SLF001
    except AttributeError:
        pass
    return None
