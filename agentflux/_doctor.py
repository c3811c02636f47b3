"""What ``agentflux doctor`` reports: versions, the cluster it would talk to, accelerations."""

from __future__ import annotations

import asyncio
import platform
import sys
from dataclasses import dataclass, field
from importlib import metadata

import httpx

from agentflux._accelerations import Acceleration, accelerations
from agentflux._local import JavaNotFoundError, find_java
from agentflux._local._java import java_major_version
from agentflux.kafka import AgentfluxSettings
from agentflux.kafka._gate import gate, tested_range

__all__ = ["Report", "check_endpoint", "report"]

_CHECK_TIMEOUT_S = 2.0


@dataclass(frozen=True, slots=True)
class Report:
    """Everything ``agentflux doctor`` prints, as (label, value) rows and the accelerations."""

    rows: list[tuple[str, str]] = field(default_factory=list)
    accelerations: list[Acceleration] = field(default_factory=list)


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def _java(minimum: int) -> str:
    try:
        java = find_java(minimum)
    except JavaNotFoundError:
        return f"no Java {minimum}+ found"
    return f"{java_major_version(java)} ({java})"


def _event_loop(settings: AgentfluxSettings) -> str:
    if settings.event_loop != "auto":
        return settings.event_loop
    try:
        import uvloop  # noqa: F401, PLC0415  # only whether it is installed
    except ImportError:
        return "auto (asyncio: uvloop is not installed)"
    return "auto (uvloop)"


async def check_endpoint(host: str, port: int) -> str:
    """'reachable' or why not: a TCP connection, nothing sent."""
    try:
        _reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port), _CHECK_TIMEOUT_S
        )
    except (OSError, TimeoutError) as exc:
        return f"unreachable ({exc.__class__.__name__}: {exc})"
    writer.close()
    await writer.wait_closed()
    return "reachable"


async def _cluster(settings: AgentfluxSettings) -> str:
    answers = []
    for server in settings.bootstrap_servers.split(","):
        host, _, port = server.strip().rpartition(":")
        answers.append(f"{server.strip()} {await check_endpoint(host.strip('[]'), int(port))}")
    return f"{'; '.join(answers)} ({settings.security_protocol})"


async def _registry(settings: AgentfluxSettings) -> str:
    url = settings.registry_url.rstrip("/")
    try:
        async with httpx.AsyncClient(timeout=_CHECK_TIMEOUT_S) as client:
            answer = await client.get(f"{url}/subjects")
            # Apicurio tells its version on its own API, beside the Confluent-compatible one.
            base = url.split("/apis/", 1)[0]
            info = await client.get(f"{base}/apis/registry/v3/system/info")
    except httpx.HTTPError as exc:
        return f"{url} unreachable ({exc.__class__.__name__}: {exc})"
    version = ""
    if info.is_success:
        body = info.json()
        version = f", {body.get('name', 'registry')} {body.get('version', '?')}"
    return f"{url} answers HTTP {answer.status_code}{version}"


async def report(settings: AgentfluxSettings | None = None) -> Report:
    """Versions, the cluster and registry the settings name (checked), and accelerations."""
    settings = settings or AgentfluxSettings()
    state = gate()
    aiokafka_note = "tested" if state.open or "outside" not in state.reason else "untested"
    rows = [
        ("agentflux", _version("agentflux")),
        ("python", f"{platform.python_version()} ({sys.executable})"),
        ("aiokafka", f"{state.aiokafka_version} ({aiokafka_note}: {tested_range()})"),
        ("pydantic", _version("pydantic")),
        ("fastavro", _version("fastavro")),
        ("java (kafka)", _java(17)),
        ("java (registry)", _java(21)),
        ("event loop", _event_loop(settings)),
        ("kafka", await _cluster(settings)),
        ("registry", await _registry(settings)),
    ]
    return Report(rows=rows, accelerations=accelerations())
