"""A pytest plugin (``-p asan_extensions``) loading the sanitizer build of the C extensions.

``make fuzz`` builds the three extensions with AddressSanitizer and UndefinedBehaviorSanitizer
into a folder of their own (``AGENTFLUX_FUZZ_BUILD``) and starts pytest with libasan preloaded;
this plugin, imported before any test or conftest, puts those builds in ``sys.modules`` in place
of the installed ones, so the normal install is never touched. It refuses to run (rather than
fuzz the unsanitized build) when the folder or the sanitizer runtime is missing.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
from pathlib import Path

import pytest

_EXTENSIONS = (
    "agentflux.schemas._native",
    "agentflux.consumers._batches",
    "agentflux.producers._records",
)


def _load(build: Path) -> None:
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    for name in _EXTENSIONS:
        *package, leaf = name.split(".")
        path = build.joinpath(*package, leaf + suffix)
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None or not path.is_file():
            raise pytest.UsageError(f"no sanitizer build of {name} at {path}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[name] = module


def _sanitizer_loaded() -> bool:
    maps = Path("/proc/self/maps")
    return not maps.exists() or "libasan" in maps.read_text()


_build = os.environ.get("AGENTFLUX_FUZZ_BUILD")
if not _build:
    raise pytest.UsageError("AGENTFLUX_FUZZ_BUILD names no folder (run `make fuzz`)")
if not _sanitizer_loaded():
    raise pytest.UsageError("libasan is not loaded (LD_PRELOAD it, as `make fuzz` does)")
_load(Path(_build))
