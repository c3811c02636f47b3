"""ACLs and SCRAM users through aiokafka's connection: requests its admin client has no call for.

aiokafka 0.14's ``AIOKafkaAdminClient`` has no ``create_acls``, ``describe_acls``,
``delete_acls``, ``describe_user_scram_credentials`` nor ``alter_user_scram_credentials``
(checked: ``aiokafka/admin/client.py``). Its protocol module does define the ACL requests
(``aiokafka.protocol.admin``, versions 0-1, which Kafka 4 still serves), and its types encode
the flexible DescribeUserScramCredentials and AlterUserScramCredentials requests defined below
from Kafka's ``DescribeUserScramCredentialsRequest.json`` and
``AlterUserScramCredentialsRequest.json``. They are sent through the admin client's connection
to any broker, which forwards the changes to the controller.

A refusal raises aiokafka's error for Kafka's code (``ClusterAuthorizationFailedError``, ...),
so ``agentflux.kafka.refusals_explained`` names the principal; a user with no SCRAM credential
raises ``UnknownScramUserError``.

Like the other calls of ``_clients``, these are not accelerations: on an untested aiokafka they
raise ``UnsupportedClientError`` instead of sending (there is no public path to take), and
Kafka's own tools do the same job (``kafka-acls``, ``kafka-configs --entity-type users``).

``login_once`` opens one connection (TLS handshake and SASL login) to tell why a client could
not bootstrap: aiokafka's public clients only log a refused login, then report the cluster as
unreachable.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import TYPE_CHECKING, Any, ClassVar, TypeAlias

from aiokafka.conn import create_conn
from aiokafka.errors import for_code
from aiokafka.protocol.admin import CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import (
    CompactArray,
    CompactBytes,
    CompactString,
    Int8,
    Int16,
    Int32,
    Schema,
    TaggedFields,
)

from agentflux.kafka._gate import gate

if TYPE_CHECKING:
    from collections.abc import Sequence

    from aiokafka.admin import AIOKafkaAdminClient

__all__ = [
    "ANY",
    "SCRAM_MECHANISMS",
    "AclEntry",
    "ScramCredential",
    "UnknownScramUserError",
    "UnsupportedClientError",
    "create_acls",
    "delete_acls",
    "delete_scram_user",
    "describe_acls",
    "describe_scram_users",
    "login_once",
    "upsert_scram_user",
]

# (resource type, resource name, pattern type, principal, host, operation, permission), each
# enum as Kafka's wire code (org.apache.kafka.common.acl / resource).
AclEntry: TypeAlias = tuple[int, str, int, str, str, int, int]
ANY = 1  # the "any" code of every ACL enum (resource type, pattern, operation, permission)
SCRAM_MECHANISMS = {1: "SCRAM-SHA-256", 2: "SCRAM-SHA-512"}  # ScramMechanism's codes
# (mechanism code, iterations) of one of a user's credentials.
ScramCredential: TypeAlias = tuple[int, int]
_SCRAM_SHA_512 = 2
_ITERATIONS = 8192  # Kafka accepts 4096 to 16384 for SCRAM-SHA-512
_RESOURCE_NOT_FOUND = 91  # Kafka's code for a user without that credential


class UnsupportedClientError(RuntimeError):
    """The installed aiokafka is not one these requests were tested with."""


class UnknownScramUserError(LookupError):
    """The cluster has no SCRAM credential for this user."""

    def __init__(self, name: str) -> None:
        """Name the user."""
        self.name = name
        super().__init__(f"user {name} has no SCRAM credentials on this cluster")


def _require_tested() -> None:
    if not gate().tested:
        raise UnsupportedClientError(
            f"ACLs and SCRAM users need aiokafka {gate().aiokafka_version} to be one agentflux "
            "was tested with; use Kafka's kafka-acls and kafka-configs tools instead"
        )


def _raise_for(error_code: int, message: str | None, what: str) -> None:
    """Kafka's error ``error_code`` as aiokafka's class for it (its code and message kept)."""
    if error_code:
        raise for_code(error_code)(f"{what} failed: error {error_code} {message or ''}".rstrip())


async def login_once(host: str, port: int, **connection: Any) -> bool:
    """Connect to ``host``:``port`` and log in once, then close; False on an untested aiokafka.

    ``connection`` holds the client's security arguments (``connection_kwargs`` without the
    bootstrap servers). A refused login or certificate raises as aiokafka raises it.
    """
    if not gate().tested:
        return False  # the public path: no diagnosis, the caller's retries and timeout decide
    conn = await create_conn(host, port, **connection)
    conn.close()
    return True


async def describe_acls(admin: AIOKafkaAdminClient) -> list[AclEntry]:
    """Every ACL binding of the cluster."""
    _require_tested()
    request = DescribeAclsRequest(ANY, None, ANY, None, None, ANY, ANY)  # null filters match all
    response: Any = await admin._send_request(request)  # noqa: SLF001  # no public call
    _raise_for(response.error_code, response.error_message, "DescribeAcls")
    return [
        (resource_type, name, pattern, principal, host, operation, permission)
        for resource_type, name, pattern, acls in response.resources
        for principal, host, operation, permission in acls
    ]


async def create_acls(admin: AIOKafkaAdminClient, entries: list[AclEntry]) -> None:
    """Create these bindings (one request each: aiokafka's request carries one)."""
    _require_tested()
    for entry in entries:
        response: Any = await admin._send_request(CreateAclsRequest(*entry))  # noqa: SLF001
        for error_code, message in response.creation_responses:
            _raise_for(error_code, message, f"CreateAcls {entry}")


async def delete_acls(admin: AIOKafkaAdminClient, entries: list[AclEntry]) -> None:
    """Delete exactly these bindings."""
    _require_tested()
    for entry in entries:
        response: Any = await admin._send_request(DeleteAclsRequest(*entry))  # noqa: SLF001
        for error_code, message, _matching in response.filter_responses:
            _raise_for(error_code, message, f"DeleteAcls {entry}")


_TAGS = ("tags", TaggedFields)  # every structure of a flexible version ends with its tags


class _ResponseV0(Response):  # type: ignore[misc]  # aiokafka's protocol types are untyped
    API_VERSION = 0


class _AlterUserScramCredentialsResponseV0(_ResponseV0):
    API_KEY = 51
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        (
            "results",
            CompactArray(
                ("user_name", CompactString("utf-8")),
                ("error_code", Int16),
                ("error_message", CompactString("utf-8")),
                _TAGS,
            ),
        ),
        _TAGS,
    )


class _AlterUserScramCredentialsRequestV0(RequestStruct):  # type: ignore[misc]  # aiokafka's protocol types are untyped
    FLEXIBLE_VERSION = True
    API_KEY = 51
    API_VERSION = 0
    RESPONSE_TYPE = _AlterUserScramCredentialsResponseV0
    SCHEMA = Schema(
        (
            "deletions",
            CompactArray(("name", CompactString("utf-8")), ("mechanism", Int8), _TAGS),
        ),
        (
            "upsertions",
            CompactArray(
                ("name", CompactString("utf-8")),
                ("mechanism", Int8),
                ("iterations", Int32),
                ("salt", CompactBytes),
                ("salted_password", CompactBytes),
                _TAGS,
            ),
        ),
        _TAGS,
    )


class _AlterUserScramCredentialsRequest(Request[_AlterUserScramCredentialsRequestV0]):  # type: ignore[misc]  # aiokafka's protocol types are untyped
    API_KEY: ClassVar[int] = 51

    def __init__(
        self,
        *,
        deletions: Sequence[tuple[str, int, dict[int, bytes]]] = (),
        upsertions: Sequence[tuple[str, int, int, bytes, bytes, dict[int, bytes]]] = (),
    ) -> None:
        self._deletions = list(deletions)
        self._upsertions = list(upsertions)

    def build(
        self, request_struct_class: type[_AlterUserScramCredentialsRequestV0]
    ) -> _AlterUserScramCredentialsRequestV0:
        return request_struct_class(self._deletions, self._upsertions, {})


class _DescribeUserScramCredentialsResponseV0(_ResponseV0):
    API_KEY = 50
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("error_code", Int16),
        ("error_message", CompactString("utf-8")),
        (
            "results",
            CompactArray(
                ("user", CompactString("utf-8")),
                ("error_code", Int16),
                ("error_message", CompactString("utf-8")),
                (
                    "credential_infos",
                    CompactArray(("mechanism", Int8), ("iterations", Int32), _TAGS),
                ),
                _TAGS,
            ),
        ),
        _TAGS,
    )


class _DescribeUserScramCredentialsRequestV0(RequestStruct):  # type: ignore[misc]  # aiokafka's protocol types are untyped
    FLEXIBLE_VERSION = True
    API_KEY = 50
    API_VERSION = 0
    RESPONSE_TYPE = _DescribeUserScramCredentialsResponseV0
    SCHEMA = Schema(
        ("users", CompactArray(("name", CompactString("utf-8")), _TAGS)),
        _TAGS,
    )


class _DescribeUserScramCredentialsRequest(Request[_DescribeUserScramCredentialsRequestV0]):  # type: ignore[misc]  # aiokafka's protocol types are untyped
    API_KEY: ClassVar[int] = 50

    def __init__(self, names: list[str] | None) -> None:
        self._names = names

    def build(
        self, request_struct_class: type[_DescribeUserScramCredentialsRequestV0]
    ) -> _DescribeUserScramCredentialsRequestV0:
        # An empty array asks for every user with a credential. So would null, but a Kafka 4.1
        # broker that denies a null request fails building its error (NullPointerException in
        # DescribeUserScramCredentialsRequest.getErrorResponse) and never answers.
        return request_struct_class([(name, {}) for name in self._names or ()], {})


async def describe_scram_users(
    admin: AIOKafkaAdminClient, names: list[str] | None = None
) -> dict[str, list[ScramCredential]]:
    """Each user's SCRAM credentials (mechanism code, iterations): ``names``, or every user.

    A named user without any raises ``UnknownScramUserError``.
    """
    _require_tested()
    response: Any = await admin._send_request(_DescribeUserScramCredentialsRequest(names))  # noqa: SLF001  # no public call
    _raise_for(response.error_code, response.error_message, "DescribeUserScramCredentials")
    found: dict[str, list[ScramCredential]] = {}
    for user, error_code, message, credentials, _tags in response.results:
        if error_code == _RESOURCE_NOT_FOUND:
            raise UnknownScramUserError(user)
        _raise_for(error_code, message, f"DescribeUserScramCredentials for {user}")
        found[user] = [(mechanism, iterations) for mechanism, iterations, _ in credentials]
    return found


async def delete_scram_user(admin: AIOKafkaAdminClient, name: str) -> list[int]:
    """Delete every SCRAM credential of user ``name``; the mechanism codes it had.

    A user without any raises ``UnknownScramUserError``. The user's ACLs are left as they are.
    """
    mechanisms = [code for code, _ in (await describe_scram_users(admin, [name]))[name]]
    request = _AlterUserScramCredentialsRequest(
        deletions=[(name, mechanism, {}) for mechanism in mechanisms]
    )
    response: Any = await admin._send_request(request)  # noqa: SLF001  # no public call
    for user, error_code, message, _tags in response.results:
        if error_code == _RESOURCE_NOT_FOUND:  # removed by someone else since the describe
            raise UnknownScramUserError(user)
        _raise_for(error_code, message, f"AlterUserScramCredentials for {user}")
    return mechanisms


async def upsert_scram_user(admin: AIOKafkaAdminClient, name: str, password: str) -> None:
    """Create user ``name`` with SCRAM-SHA-512 credentials for ``password``, or replace them.

    The client salts and hashes (RFC 5802's SaltedPassword, PBKDF2 with HMAC-SHA-512): the
    password itself never crosses the wire.
    """
    _require_tested()
    salt = secrets.token_bytes(32)
    salted = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, _ITERATIONS)
    request = _AlterUserScramCredentialsRequest(
        upsertions=[(name, _SCRAM_SHA_512, _ITERATIONS, salt, salted, {})]
    )
    response: Any = await admin._send_request(request)  # noqa: SLF001  # no public call
    for user, error_code, message, _tags in response.results:
        _raise_for(error_code, message, f"AlterUserScramCredentials for {user}")
