"""An async client of the Confluent schema-registry REST API (Apicurio ccompat included)."""

from __future__ import annotations

import asyncio
import json
from functools import cache
from typing import TYPE_CHECKING, Any, Protocol, Self, TypeVar

import httpx
import structlog

from agentflux.schemas._errors import (
    IncompatibleSchemaError,
    RegistryError,
    RegistryUnavailableError,
    SchemaNotFoundError,
)
from agentflux.schemas._types import COMPATIBILITY_LEVELS

if TYPE_CHECKING:
    import ssl
    from collections.abc import Awaitable, Callable, Hashable
    from types import TracebackType

    from pydantic import SecretStr

__all__ = ["COMPATIBILITY_LEVELS", "RegistryClient", "RegistrySettings", "canonical"]

_CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
_NOT_FOUND_CODES = {40401, 40402, 40403}
_SUBJECTS_PAGE = 1000
_log = structlog.get_logger("agentflux.registry")
T = TypeVar("T")


class RegistrySettings(Protocol):
    """Where the registry is and how to reach it (``agentflux.kafka.AgentfluxSettings`` has it).

    A protocol, so that the contract package depends on no other part of the platform.
    """

    @property
    def registry_url(self) -> str: ...
    @property
    def registry_username(self) -> str | None: ...
    @property
    def registry_password(self) -> SecretStr | None: ...
    @property
    def registry_timeout_s(self) -> float: ...
    @property
    def registry_retries(self) -> int: ...


def canonical(schema: str | dict[str, Any]) -> str:
    """One spelling of a schema, so equal schemas share cache entries."""
    parsed = json.loads(schema) if isinstance(schema, str) else schema
    return json.dumps(parsed, sort_keys=True, separators=(",", ":"))


@cache
def _shared_tls_context() -> ssl.SSLContext:
    """The TLS context httpx makes by default (CA bundle, SSL_CERT_FILE/DIR), once per process.

    Each ``httpx.AsyncClient`` otherwise loads the CA bundle again, a noticeable CPU cost for
    every runner, publisher or CLI command started, even against a plain-http registry.
    """
    return httpx.create_ssl_context()


class RegistryClient:
    """Registers and looks up Avro schemas, caching by id and by (subject, schema).

    Connection errors and 5xx answers are retried with exponential backoff a bounded number
    of times, then raise ``RegistryUnavailableError``; 4xx answers raise at once.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 5.0,
        retries: int = 3,
        auth: tuple[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """Talk to the registry at ``url`` (the Confluent-compatible base URL)."""
        self.url = url.rstrip("/")
        self._retries = retries
        self._http = httpx.AsyncClient(
            base_url=self.url,
            timeout=timeout_s,
            auth=auth,
            headers={"Accept": _CONTENT_TYPE, "Content-Type": _CONTENT_TYPE},
            transport=transport,
            verify=_shared_tls_context(),
        )
        self._by_id: dict[int, str] = {}
        self._ids: dict[tuple[str, str], int] = {}
        self._in_flight: dict[Hashable, asyncio.Future[Any]] = {}

    @classmethod
    def from_settings(cls, settings: RegistrySettings) -> RegistryClient:
        """A client configured from the platform settings."""
        auth = None
        if settings.registry_username and settings.registry_password:
            auth = (settings.registry_username, settings.registry_password.get_secret_value())
        return cls(
            settings.registry_url,
            timeout_s=settings.registry_timeout_s,
            retries=settings.registry_retries,
            auth=auth,
        )

    async def __aenter__(self) -> Self:
        """Use the client as an async context manager; it closes on exit."""
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Close the HTTP connections."""
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._http.aclose()

    # -- HTTP ----------------------------------------------------------------------------------

    async def _once(self, key: Hashable, ask: Callable[[], Awaitable[T]]) -> T:
        """Ask the registry once for callers that want the same answer at the same time.

        A consumer's partitions meet a new schema id together, and a runtime's sessions publish
        a new event type together: without this, each asked the registry itself. Every caller
        gets the answer or the error; an error is not remembered, the next caller asks again.
        A caller cancelled while waiting leaves the request to the others.
        """
        pending = self._in_flight.get(key)
        if pending is None:
            pending = asyncio.ensure_future(ask())
            self._in_flight[key] = pending
            pending.add_done_callback(lambda done: self._settle(key, done))
        return await asyncio.shield(pending)

    def _settle(self, key: Hashable, done: asyncio.Future[Any]) -> None:
        self._in_flight.pop(key, None)
        if not done.cancelled():
            done.exception()  # retrieved: callers that all left must not leave it unreported

    async def _request(self, method: str, path: str, body: Any = None) -> Any:
        delay = 0.1
        for attempt in range(self._retries + 1):
            try:
                response = await self._http.request(method, path, json=body)
            except httpx.TransportError as exc:
                failure: str = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code < httpx.codes.INTERNAL_SERVER_ERROR:
                    return self._answer(response)
                failure = f"HTTP {response.status_code}: {response.text[:200]}"
            if attempt < self._retries:
                _log.info(
                    "registry retry", method=method, path=path, attempt=attempt + 1, cause=failure
                )
                await asyncio.sleep(delay)  # backoff between retries, doubling each time
                delay *= 2
        raise RegistryUnavailableError(
            f"schema registry at {self.url} unavailable after {self._retries + 1} attempt(s) "
            f"({method} {path}): {failure}",
        )

    @staticmethod
    def _answer(response: httpx.Response) -> Any:
        if response.is_success:
            return response.json() if response.content else None
        try:
            detail = response.json()
        except ValueError:
            detail = {"message": response.text}
        code = detail.get("error_code")
        message = f"{detail.get('message', response.text)} (HTTP {response.status_code})"
        if response.status_code == httpx.codes.NOT_FOUND or code in _NOT_FOUND_CODES:
            raise SchemaNotFoundError(message, status=response.status_code, code=code)
        if response.status_code == httpx.codes.CONFLICT:
            raise IncompatibleSchemaError(message, status=response.status_code, code=code)
        raise RegistryError(message, status=response.status_code, code=code)

    # -- schemas -------------------------------------------------------------------------------

    async def register(self, subject: str, schema: str | dict[str, Any]) -> int:
        """Register ``schema`` under ``subject`` (or find it there) and return its global id."""
        key = (subject, canonical(schema))
        if key in self._ids:
            return self._ids[key]

        async def ask() -> int:
            body = {"schema": key[1], "schemaType": "AVRO"}
            try:
                answer = await self._request("POST", f"/subjects/{subject}/versions", body)
            except IncompatibleSchemaError:
                # Apicurio answers 409 "already exists" to a registration that meets the same
                # schema being registered: a retry whose first attempt went through with its
                # answer lost, or another client registering it at the same moment. The schema
                # being there is what was asked for; anything else is the conflict it says.
                answer = await self._registered(subject, body)
                if answer is None:
                    raise
            schema_id = int(answer["id"])
            self._ids[key] = schema_id
            self._by_id[schema_id] = key[1]
            return schema_id

        return await self._once(("register", *key), ask)

    async def lookup(self, subject: str, schema: str | dict[str, Any]) -> int | None:
        """The id of ``schema`` if it is registered under ``subject``, else None."""
        key = (subject, canonical(schema))
        if key in self._ids:
            return self._ids[key]

        async def ask() -> int | None:
            answer = await self._registered(subject, {"schema": key[1], "schemaType": "AVRO"})
            if answer is None:
                return None
            self._ids[key] = int(answer["id"])
            return self._ids[key]

        return await self._once(("lookup", *key), ask)

    async def _registered(self, subject: str, body: dict[str, str]) -> Any:
        """The registry's answer for the schema in ``body`` under ``subject``; None: not there."""
        try:
            return await self._request("POST", f"/subjects/{subject}", body)
        except SchemaNotFoundError:
            return None

    async def get_schema(self, schema_id: int) -> str:
        """The schema text of a global id (cached: ids never change meaning)."""
        if schema_id in self._by_id:
            return self._by_id[schema_id]

        async def ask() -> str:
            answer = await self._request("GET", f"/schemas/ids/{schema_id}")
            text: str = answer["schema"]
            self._by_id[schema_id] = text
            return text

        return await self._once(("schema", schema_id), ask)

    async def get_versions(self, subject: str) -> list[int]:
        """The version numbers registered under ``subject`` ([] if none)."""
        try:
            return [int(v) for v in await self._request("GET", f"/subjects/{subject}/versions")]
        except SchemaNotFoundError:
            return []

    async def get_version(self, subject: str, version: int | str = "latest") -> dict[str, Any]:
        """One version of a subject: subject, version, id, schema."""
        answer: dict[str, Any] = await self._request(
            "GET", f"/subjects/{subject}/versions/{version}"
        )
        return answer

    async def subjects(self) -> list[str]:
        """Every subject the registry holds, page by page (Apicurio answers 1000 at a time)."""
        found: dict[str, None] = {}
        while True:
            page = await self._request(
                "GET", f"/subjects?limit={_SUBJECTS_PAGE}&offset={len(found)}"
            )
            before = len(found)
            found.update(dict.fromkeys(page))
            # A registry that ignores paging sends everything at once, then the same again.
            if len(page) < _SUBJECTS_PAGE or len(found) == before:
                return list(found)

    async def delete_subject(self, subject: str, *, permanent: bool = False) -> None:
        """Delete a subject (soft, then also hard if ``permanent``)."""
        await self._request("DELETE", f"/subjects/{subject}")
        if permanent:
            await self._request("DELETE", f"/subjects/{subject}?permanent=true")
        self._ids = {k: v for k, v in self._ids.items() if k[0] != subject}

    # -- compatibility -------------------------------------------------------------------------

    async def set_compatibility(self, subject: str, level: str) -> None:
        """Set the subject's compatibility level (one of ``COMPATIBILITY_LEVELS``)."""
        if level not in COMPATIBILITY_LEVELS:
            raise ValueError(f"unknown compatibility level {level!r}")
        body = {"compatibility": level}
        try:
            await self._request("PUT", f"/config/{subject}", body)
        except IncompatibleSchemaError:
            # Apicurio answers 409 "rule already exists" when the rule was made meanwhile: by
            # this request's own retry after a lost answer, or by another client. It exists
            # now, so the same PUT updates it.
            await self._request("PUT", f"/config/{subject}", body)

    async def delete_compatibility(self, subject: str) -> None:
        """Drop the subject's own level: it follows the registry's global level again."""
        try:
            await self._request("DELETE", f"/config/{subject}")
        except SchemaNotFoundError:
            return  # it had no level of its own

    async def get_compatibility(self, subject: str) -> str | None:
        """The subject's own compatibility level, or None if it follows the global one."""
        try:
            answer = await self._request("GET", f"/config/{subject}")
        except SchemaNotFoundError:
            return None
        level = answer.get("compatibilityLevel") or answer.get("compatibility")
        return str(level) if level else None

    async def check_compatibility(self, subject: str, schema: str | dict[str, Any]) -> list[str]:
        """Why ``schema`` would be refused under ``subject``'s level; [] when it is compatible.

        Asks against every version (``/versions``), as registration judges: against
        ``/versions/latest`` a ``*_TRANSITIVE`` level is checked against the latest only.
        """
        if not await self.get_versions(subject):
            return []  # the first version of a subject is always accepted
        answer = await self._request(
            "POST",
            f"/compatibility/subjects/{subject}/versions?verbose=true",
            {"schema": canonical(schema), "schemaType": "AVRO"},
        )
        if answer.get("is_compatible", False):
            return []
        return [str(m) for m in answer.get("messages") or ["incompatible (no detail given)"]]
