"""Typed errors for a cluster that refuses a client: who it is (login, TLS) or what it may do.

aiokafka reports a failed SASL login only in a log line (its bootstrap then fails like an
unreachable cluster, and a caller retrying connections would wait out its whole timeout), a
certificate that does not match as an ``ssl`` error deep inside, and a denied operation by a
bare resource name. These errors say who was refused, on what, and what to check.
"""

from __future__ import annotations

import contextlib
import ssl
from typing import TYPE_CHECKING

from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    KafkaError,
    SaslAuthenticationFailed,
    TopicAuthorizationFailedError,
    TransactionalIdAuthorizationFailed,
)

from agentflux.kafka._clients import connection_kwargs
from agentflux.kafka._gate._security import login_once

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from agentflux.kafka._settings import AgentfluxSettings

__all__ = [
    "AuthenticationError",
    "AuthorizationError",
    "KafkaAccessError",
    "TlsVerificationError",
    "access_refused",
    "authorization_error",
    "principal_of",
    "refusals_explained",
]

_PROBE_TIMEOUT_MS = 10_000


class KafkaAccessError(Exception):
    """The cluster refused this client: its login, its TLS peer, or an operation (ACLs)."""


class AuthenticationError(KafkaAccessError):
    """The broker rejected the SASL login (wrong user, password or mechanism)."""

    def __init__(self, principal: str, mechanism: str, server: str, detail: str) -> None:
        """Name who tried to log in where, with which mechanism."""
        self.principal, self.mechanism, self.server = principal, mechanism, server
        super().__init__(
            f"{server} rejected the {mechanism} login of {principal}: {detail}. Check "
            "AGENTFLUX_SASL_USERNAME, AGENTFLUX_SASL_PASSWORD and AGENTFLUX_SASL_MECHANISM"
        )


class TlsVerificationError(KafkaAccessError):
    """The broker's certificate was not accepted (unknown CA, wrong host name, expired)."""

    def __init__(self, server: str, detail: str) -> None:
        """Name the server whose certificate failed, and why."""
        self.server = server
        super().__init__(
            f"the certificate of {server} was refused: {detail}. Check AGENTFLUX_SSL_CAFILE "
            "and that the bootstrap address is a name the broker's certificate lists"
        )


class AuthorizationError(KafkaAccessError):
    """An ACL denied ``principal`` the ``operation`` on a resource (``topic agent.events``)."""

    def __init__(
        self, principal: str, resource_type: str, resource_name: str, operation: str
    ) -> None:
        """Name the principal, the resource and the operation denied."""
        self.principal = principal
        self.resource_type, self.resource_name = resource_type, resource_name
        self.operation = operation
        super().__init__(
            f"{principal} is not allowed to {operation} {resource_type} {resource_name}: "
            "no ACL grants it (`agentflux acls apply` grants what topics.yaml declares)"
        )


def principal_of(settings: AgentfluxSettings) -> str:
    """The principal the cluster sees for these settings, as Kafka names it."""
    if settings.security_protocol.startswith("SASL") and settings.sasl_username:
        return f"User:{settings.sasl_username}"
    if settings.ssl_certfile is not None:
        return f"the subject of {settings.ssl_certfile}"
    return "User:ANONYMOUS"


def authorization_error(
    exc: BaseException | None,
    settings: AgentfluxSettings,
    operation: str,
    group: str | None = None,
    error_type: type[AuthorizationError] = AuthorizationError,
) -> AuthorizationError | None:
    """The typed error for aiokafka's authorization failure ``exc``, or None for another error.

    ``operation`` is what the caller was doing (``WRITE`` to publish, ``READ`` to consume);
    ``group`` the consumer group it used, named when the group was denied; ``error_type`` a
    subclass to raise instead (the publisher's, which is a ``PublishError`` too).
    """
    principal = principal_of(settings)
    if isinstance(exc, TopicAuthorizationFailedError):
        # aiokafka puts the denied topic name(s) in the error's arguments.
        names = ", ".join(sorted(str(a) for a in _flat(exc.args))) or "(unnamed)"
        return error_type(principal, "topic", names, operation)
    if isinstance(exc, GroupAuthorizationFailedError):
        named = group or ", ".join(str(a) for a in exc.args) or "(unnamed)"
        return error_type(principal, "group", named, "READ")
    if isinstance(exc, ClusterAuthorizationFailedError):
        # What a client with no grant at all meets first: an idempotent producer's id needs
        # IDEMPOTENT_WRITE on the cluster, or WRITE on some topic.
        cluster_operation = "IDEMPOTENT_WRITE" if operation == "WRITE" else operation
        return error_type(principal, "cluster", "kafka-cluster", cluster_operation)
    if isinstance(exc, TransactionalIdAuthorizationFailed):
        return error_type(principal, "transactional id", str(exc), "WRITE")
    return None


def _flat(args: tuple[object, ...]) -> list[object]:
    flat: list[object] = []
    for arg in args:
        flat.extend(arg if isinstance(arg, set | frozenset | list | tuple) else [arg])
    return flat


async def access_refused(settings: AgentfluxSettings) -> KafkaAccessError | None:
    """Why the first bootstrap server refuses these settings' login or TLS; None if it does not.

    One connection, made when a client could not bootstrap: a cluster that refuses who the
    client is will not change its mind on retries, a cluster not up yet may. On an aiokafka
    outside the tested range nothing is diagnosed (None).
    """
    kwargs = connection_kwargs(settings)
    host, _, port = kwargs.pop("bootstrap_servers")[0].rpartition(":")
    server = f"{host}:{port}"
    try:
        await login_once(host, int(port), request_timeout_ms=_PROBE_TIMEOUT_MS, **kwargs)
    except SaslAuthenticationFailed as exc:
        return AuthenticationError(
            principal_of(settings), settings.sasl_mechanism or "PLAIN", server, str(exc)
        )
    except ssl.SSLCertVerificationError as exc:
        return TlsVerificationError(server, exc.verify_message or str(exc))
    except (KafkaError, OSError, TimeoutError):
        return None  # not up, not reachable: the caller's retries and timeout decide
    return None


@contextlib.asynccontextmanager
async def refusals_explained(
    settings: AgentfluxSettings, operation: str, group: str | None = None
) -> AsyncIterator[None]:
    """Turn a refused login or TLS peer, or a denied operation, into the typed errors above.

    Around a client's life: a failed bootstrap is checked for a refused login or certificate
    (one connection); an authorization failure names the principal, resource and operation.
    """
    try:
        yield
    except KafkaConnectionError as exc:
        refused = await access_refused(settings)
        if refused is None:
            raise
        raise refused from exc
    except KafkaError as exc:
        denied = authorization_error(exc, settings, operation, group)
        if denied is None:
            raise
        raise denied from exc
