"""The gate to aiokafka's private API: every reach into it lives in this package.

One adapter per concern, each with a public-API path that gives the same results, only at a
higher CPU cost:

- ``_lz4``: LZ4 batches compressed as Kafka's Java producer does (aiokafka's builders' encoder).
- ``_lazy_headers``: fetched records read in C, their headers only when asked (the fetcher's
  ``PartitionRecords`` and ``MemoryRecords``).
- ``_fetch_sessions``: incremental fetch sessions, KIP-227 (a ``Fetcher`` subclass).
- ``_event_batch``: the publisher's record batches written in C (a ``BatchBuilder`` subclass).
- ``_accumulator``: a handed-over batch keeps taking records until the producer's sender takes
  it (the accumulator's queued batches).
- ``_clients``: one broker's metadata, deleting a group, and closing a consumer whose stop
  aiokafka cut short.
- ``_group_join``: one JoinGroup request per join when a consumer offers two assignors (a fix of
  aiokafka's, which sends one per assignor and sets groups rebalancing over and over).
- ``_security``: ACLs and SCRAM users (requests aiokafka's admin client has no call for), and
  one login to tell a refused password or certificate from an unreachable cluster.

Each is checked against aiokafka's own code by a test, on the aiokafka versions in
``TESTED_AIOKAFKA``, the range ``pyproject.toml`` pins. With another version installed (the
pin overridden) the gate is closed: every adapter takes its public-API path, and one warning
says why. ``AGENTFLUX_ACCELERATE=0`` closes it to the accelerations only: the calls of
``_clients``, ``_group_join`` and ``_security`` (fixes for aiokafka bugs, calls its admin client
lacks) are not accelerations and stay on for the tested versions (``GateState.tested``).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Final

import aiokafka
import structlog

from agentflux._accelerate import ACCELERATE_ENV, accelerations_wanted

__all__ = ["TESTED_AIOKAFKA", "GateState", "gate", "tested_range"]

# [lowest, first untested): the versions the adapters were tested with (keep pyproject's pin equal).
TESTED_AIOKAFKA: Final = ((0, 14), (0, 15))

_log = structlog.get_logger("agentflux.kafka")


@dataclass(frozen=True, slots=True)
class GateState:
    """Whether the adapters may use aiokafka's internals, and why not when closed."""

    open: bool  # the accelerations may use aiokafka's internals
    reason: str  # why not, when closed
    aiokafka_version: str
    tested: bool  # the installed aiokafka is one the adapters were tested with


def tested_range() -> str:
    """The tested versions as a pip specifier, e.g. ``>=0.13,<0.15``."""
    (low_major, low_minor), (high_major, high_minor) = TESTED_AIOKAFKA
    return f">={low_major}.{low_minor},<{high_major}.{high_minor}"


def _release(version: str) -> tuple[int, int] | None:
    found = re.match(r"(\d+)\.(\d+)", version)
    return None if found is None else (int(found[1]), int(found[2]))


def state_for(version: str, *, wanted: bool) -> GateState:
    """The gate for aiokafka ``version``, with accelerations ``wanted`` or turned off."""
    release = _release(version)
    low, high = TESTED_AIOKAFKA
    tested = release is not None and low <= release < high
    if not tested:
        reason = f"aiokafka {version} is outside the tested range {tested_range()}"
    elif not wanted:
        reason = f"turned off by {ACCELERATE_ENV}=0"
    else:
        reason = ""
    return GateState(open=not reason, reason=reason, aiokafka_version=version, tested=tested)


@functools.cache
def gate() -> GateState:
    """The process's gate, decided once; an untested aiokafka is logged once, as a warning."""
    state = state_for(aiokafka.__version__, wanted=accelerations_wanted())
    if not state.tested:
        _log.warning(
            "aiokafka version not tested with agentflux's accelerations: "
            "aiokafka's public API only (correct, slower)",
            aiokafka=state.aiokafka_version,
            tested=tested_range(),
        )
    return state
