"""The C extensions built with the package, used only when built from this very source.

An editable install keeps the extensions it built until it is installed again: after an update
of the source, a build may no longer take the calls the Python side makes. Each extension states
the interface it was built for (``INTERFACE``); a build stating another one is left unused, and
``agentflux doctor`` says to install again, instead of calling it with the wrong arguments.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import types

__all__ = ["build_is_current", "load_extension"]


def build_is_current(module: types.ModuleType, interface: int) -> bool:
    """Whether ``module`` was built for ``interface`` (a build without the constant was not)."""
    return getattr(module, "INTERFACE", 0) == interface


def load_extension(name: str, interface: int) -> tuple[types.ModuleType | None, str]:
    """The extension ``name`` built for ``interface``, or None and why it is not used."""
    try:
        module = importlib.import_module(name)
    except ImportError:  # a source checkout, or an install without a C compiler
        return None, f"the C extension {name} is not built"
    if not build_is_current(module, interface):
        return None, (
            f"the C extension {name} was built from an older source: "
            "install the package again to rebuild it"
        )
    return module, ""
