"""A consumer service's HTTP endpoint: liveness, readiness and Prometheus metrics.

Routes: ``/livez`` (the process's event loop answers), ``/readyz`` (partitions held and the
store answers a ping), ``/metrics`` (Prometheus text) and ``/health`` (kept as it always was:
200 with the group, whether partitions are assigned and the records handled).

HTTP/1.1 parsing and framing is h11's (already installed, as httpx's transport needs it);
aiohttp, whose server prometheus_client also supports, was checked and is not a dependency
(it would add seven packages for four GET routes). The exposition is prometheus_client's.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, TypeAlias

import h11
import structlog
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, generate_latest

from agentflux.consumers import render_prometheus
from agentflux.consumers._groups import SHIPPED_GROUPS

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from agentflux.consumers import GroupRunner, GroupSpec, Store
    from agentflux.consumers._timeouts import HitlTimeoutJob

Answer: TypeAlias = "tuple[int, str, bytes]"
Route: TypeAlias = "Callable[[], Awaitable[Answer]]"

__all__ = ["DEFAULT_HEALTH_HOST", "STORE_PING_SECONDS", "health_routes", "serve_http"]

DEFAULT_HEALTH_HOST = "127.0.0.1"  # a workstation's default; the services image sets 0.0.0.0
STORE_PING_SECONDS = 2.0  # shorter than a probe's usual timeout, so the probe gets an answer
_READ_BYTES = 16_384
_REQUEST_SECONDS = 10.0  # longer than any probe's or scrape's time to send a GET
_HTTP_OK = 200
_HTTP_UNAVAILABLE = 503
_JSON = "application/json"

_log = structlog.get_logger("agentflux.service")


async def serve_http(
    port: int, routes: dict[str, Route], host: str = DEFAULT_HEALTH_HOST
) -> asyncio.Server:
    """Serve ``routes`` (GET and HEAD, one request per connection) on ``host``:``port``."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await _answer_one(reader, writer, routes)
        except (h11.ProtocolError, ConnectionError) as error:
            _log.debug("health request dropped", error=str(error))
        finally:
            writer.close()

    server = await asyncio.start_server(answer, host, port)
    _log.info("health and metrics endpoint listening", host=host, port=port)
    return server


async def _answer_one(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, routes: dict[str, Route]
) -> None:
    connection = h11.Connection(h11.SERVER)
    try:
        async with asyncio.timeout(_REQUEST_SECONDS):
            request = await _request(reader, connection)
    except TimeoutError:
        return  # a client that never finishes its request holds no connection for long
    except h11.RemoteProtocolError as error:
        answer = (error.error_status_hint, "text/plain", b"bad request\n")
        writer.write(_response(connection, answer, with_body=True))
        await writer.drain()
        return
    if request is None:
        return  # the client went away before asking anything
    path = request.target.decode(errors="replace").split("?", 1)[0]
    route = routes.get(path) if request.method in {b"GET", b"HEAD"} else None
    answer = await route() if route else (404, "text/plain", b"not found\n")
    writer.write(_response(connection, answer, with_body=request.method != b"HEAD"))
    await writer.drain()


async def _request(reader: asyncio.StreamReader, connection: h11.Connection) -> h11.Request | None:
    """The connection's request line and headers; None if it closed before sending them."""
    while True:
        event = connection.next_event()
        if event is h11.NEED_DATA:
            connection.receive_data(await reader.read(_READ_BYTES))
            continue
        return event if isinstance(event, h11.Request) else None


def _response(connection: h11.Connection, answer: Answer, *, with_body: bool) -> bytes:
    status, content_type, body = answer
    headers = [
        ("content-type", content_type),
        ("content-length", str(len(body))),
        ("connection", "close"),  # one request per connection: probes and scrapes reconnect
    ]
    data = connection.send(h11.Response(status_code=status, headers=headers)) or b""
    if with_body:
        data += connection.send(h11.Data(data=body)) or b""
    return data + (connection.send(h11.EndOfMessage()) or b"")


def health_routes(
    spec: GroupSpec | str, runner: GroupRunner | HitlTimeoutJob, store: Store | None
) -> dict[str, Route]:
    """The service's routes: /livez, /readyz, /health and /metrics of ``runner``."""

    def status() -> dict[str, object]:
        return {
            "group": runner.group_id,
            "assigned": runner.ready.is_set(),
            "handled": runner.handled,
        }

    async def livez() -> Answer:
        # Answering at all is the check: this coroutine runs on the service's own event loop.
        return _HTTP_OK, _JSON, b'{"live": true}'

    async def readyz() -> Answer:
        found = status() | {"store": await _store_state(store)}
        ready = found["assigned"] is True and found["store"] in {"ok", "none"}
        return (_HTTP_OK if ready else _HTTP_UNAVAILABLE), _JSON, json.dumps(found).encode()

    async def health() -> Answer:
        return _HTTP_OK, _JSON, json.dumps(status()).encode()

    serves_metrics_view = spec is SHIPPED_GROUPS["metrics"] and store is not None

    async def metrics() -> Answer:
        own = generate_latest(runner.metrics.registry)
        view = await render_prometheus(store) if serves_metrics_view and store else b""
        return _HTTP_OK, CONTENT_TYPE_PLAIN_0_0_4, own + view

    return {"/livez": livez, "/readyz": readyz, "/health": health, "/metrics": metrics}


async def _store_state(store: Store | None) -> str:
    """``ok``, ``none`` (the group keeps no store) or why the store did not answer."""
    if store is None:
        return "none"
    try:
        async with asyncio.timeout(STORE_PING_SECONDS):
            await store.rows("SELECT 1")
    except TimeoutError:
        return "unreachable: no answer in time"
    except Exception as error:  # noqa: BLE001  # any driver's failure means not ready, reported
        return f"unreachable: {type(error).__name__}"
    return "ok"
