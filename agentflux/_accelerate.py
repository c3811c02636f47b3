"""The one process-wide switch of every acceleration: ``AGENTFLUX_ACCELERATE``.

Each acceleration (the C codec, the C record reader and writer, and the adapters over aiokafka's
private API in ``agentflux.kafka._gate``) has a public-API path that gives the same results.
``AGENTFLUX_ACCELERATE=0`` makes every layer take that path, so it can be run, tested and
measured on purpose. It is read from the environment, not the settings model, because the
contract package decides its codec at import and depends on no other part of the platform.
"""

from __future__ import annotations

import os
from typing import Final

__all__ = ["ACCELERATE_ENV", "accelerations_wanted"]

ACCELERATE_ENV: Final = "AGENTFLUX_ACCELERATE"
_OFF: Final = frozenset({"0", "false", "no", "off"})


def accelerations_wanted() -> bool:
    """False when ``AGENTFLUX_ACCELERATE`` turns every acceleration off (0, false, no, off)."""
    return os.environ.get(ACCELERATE_ENV, "1").strip().lower() not in _OFF
