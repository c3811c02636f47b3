"""The health endpoint's HTTP handling on a real loopback socket (no broker needed)."""

from __future__ import annotations

import asyncio

import httpx

from agentflux._health_http import serve_http
from agentflux._local._ports import free_ports


async def _teapot() -> tuple[int, str, bytes]:
    """A route with an answer no default could produce."""
    return 418, "text/plain", b"short and stout\n"


async def _raw(port: int, request: bytes) -> bytes:
    """Send ``request`` as is, then end the sending side, and read the whole answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    writer.write_eof()
    await writer.drain()
    answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    return answer


async def test_routes_answer_and_everything_else_is_not_found() -> None:
    """A route's status and body go out as given; other paths and methods answer 404."""
    port = free_ports(1)[0]
    async with (
        await serve_http(port, {"/tea": _teapot}),
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client,
    ):
        tea = await client.get("/tea?cups=2")
        head = await client.head("/tea")
        missing = await client.get("/coffee")
        posted = await client.post("/tea")
    assert (tea.status_code, tea.text, tea.headers["connection"]) == (
        418,
        "short and stout\n",
        "close",
    )
    assert (head.status_code, head.content, head.headers["content-length"]) == (418, b"", "16")
    assert (missing.status_code, posted.status_code) == (404, 404)


async def test_a_malformed_request_gets_400_and_the_server_goes_on() -> None:
    """Garbage gets 400, a silent client nothing; the next request is answered."""
    port = free_ports(1)[0]
    async with await serve_http(port, {"/tea": _teapot}):
        garbage = await _raw(port, b"NOT HTTP AT ALL\r\n\r\n")
        silent = await _raw(port, b"")
        after = await _raw(port, b"GET /tea HTTP/1.1\r\nhost: x\r\n\r\n")
    assert garbage.startswith(b"HTTP/1.1 400 ")
    assert silent == b""
    assert after.startswith(b"HTTP/1.1 418 ")
    assert after.endswith(b"short and stout\n")
