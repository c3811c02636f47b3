"""A C extension built from an older source is left unused and named, never called wrongly."""

from __future__ import annotations

import os
import sys
import types

import pytest

from agentflux._accelerations import accelerations
from agentflux._builds import load_extension
from agentflux.consumers._reader import RECORD_READER_INTERFACE
from agentflux.producers._batching import RECORD_WRITER_INTERFACE
from agentflux.schemas import _conversions
from agentflux.schemas._conversions import NATIVE_INTERFACE, native_build_is_current

_NATIVE = "agentflux.schemas._native"


@pytest.mark.skipif(
    os.environ.get("AGENTFLUX_REQUIRE_NATIVE") != "1" and _conversions._native is None,
    reason="C extension not built (AGENTFLUX_REQUIRE_NATIVE=1 makes this a failure)",
)
def test_the_built_codec_takes_the_calls_this_code_makes() -> None:
    """The extension built from this source states the interface the Python side expects."""
    assert _conversions._native is not None
    assert native_build_is_current(_conversions._native)


@pytest.mark.parametrize("stated", [None, NATIVE_INTERFACE - 1, NATIVE_INTERFACE + 1])
def test_a_build_stating_another_interface_is_not_current(stated: int | None) -> None:
    """A build without the constant, or with another value, is not used."""
    stale = types.ModuleType(_NATIVE)
    if stated is not None:
        stale.INTERFACE = stated  # type: ignore[attr-defined]  # what a build would state
    assert not native_build_is_current(stale)


def test_doctor_names_a_stale_codec_build(monkeypatch: pytest.MonkeyPatch) -> None:
    """With a stale build importable, the native codec is off and the reason says rebuild."""
    stale = types.ModuleType(_NATIVE)
    stale.INTERFACE = NATIVE_INTERFACE - 1  # type: ignore[attr-defined]  # an older build
    monkeypatch.setitem(sys.modules, _NATIVE, stale)
    codec = next(a for a in accelerations() if a.name == "native codec")
    assert not codec.active
    assert "older source" in codec.reason


_EXTENSIONS = [
    ("agentflux.schemas._native", NATIVE_INTERFACE),
    ("agentflux.consumers._batches", RECORD_READER_INTERFACE),
    ("agentflux.producers._records", RECORD_WRITER_INTERFACE),
]


@pytest.mark.parametrize(("name", "interface"), _EXTENSIONS)
def test_every_built_extension_takes_the_calls_this_code_makes(name: str, interface: int) -> None:
    """Each C extension built from this source is loaded: it states the interface expected."""
    module, reason = load_extension(name, interface)
    if module is None and os.environ.get("AGENTFLUX_REQUIRE_NATIVE") != "1":
        pytest.skip(reason)
    assert module is not None, reason
    assert reason == ""


@pytest.mark.parametrize(("name", "interface"), _EXTENSIONS)
def test_a_stale_extension_is_left_unused_with_its_reason(
    monkeypatch: pytest.MonkeyPatch, name: str, interface: int
) -> None:
    """A build without the constant, or for another interface, is not loaded; the reason says rebuild."""
    for stated in (None, interface + 1):
        stale = types.ModuleType(name)
        if stated is not None:
            stale.INTERFACE = stated  # type: ignore[attr-defined]  # what a build would state
        monkeypatch.setitem(sys.modules, name, stale)
        module, reason = load_extension(name, interface)
        assert module is None
        assert reason == (
            f"the C extension {name} was built from an older source: "
            "install the package again to rebuild it"
        )


def test_an_extension_not_built_is_named() -> None:
    """No module by that name: not built, and said so."""
    module, reason = load_extension("agentflux.no_such_extension", 1)
    assert module is None
    assert reason == "the C extension agentflux.no_such_extension is not built"
