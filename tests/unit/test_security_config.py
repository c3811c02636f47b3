"""The secured cluster's material and the teams' ACLs, offline: certificates, properties, plans."""

from __future__ import annotations

import contextlib
import io
import ipaddress
import ssl
import stat
from pathlib import Path

import pytest
import yaml
from _clusters import TEST_TEAMS, teams_declaration
from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    GroupAuthorizationFailedError,
    TopicAuthorizationFailedError,
)
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from pydantic import SecretStr, ValidationError

from agentflux import _cli_security
from agentflux._acls import AclBinding, desired_acls
from agentflux._local._config import NodePorts, render_server
from agentflux._local._secure import LocalSecurity
from agentflux.consumers._groups import SHIPPED_GROUPS
from agentflux.kafka import AgentfluxSettings, authorization_error, connection_kwargs
from agentflux.schemas import TopicsDeclaration, load_topics

_SHIPPED = Path(__file__).resolve().parents[2] / "schemas" / "topics.yaml"


@pytest.fixture
def security(tmp_path: Path) -> LocalSecurity:
    """The security material of a cluster in a temporary folder, created."""
    created = LocalSecurity(tmp_path / "security")
    created.prepare()
    return created


def _leaf(pem_file: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificates(pem_file.read_bytes())[0]


def test_the_node_certificate_names_the_local_hosts_and_is_signed_by_the_ca(
    security: LocalSecurity,
) -> None:
    """SANs 127.0.0.1 and localhost, both TLS roles, issued by the local CA."""
    node = _leaf(security.node_file)
    names = node.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    usages = node.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(usages) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    node.verify_directly_issued_by(_leaf(security.ca_file))


def test_keys_and_the_password_are_readable_by_their_owner_only(security: LocalSecurity) -> None:
    """The node key file, the CA key and the admin password are mode 0600."""
    for secret in (security.node_file, security.password_file, security.directory / "ca-key.pem"):
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600, secret


def test_prepare_keeps_what_exists(security: LocalSecurity) -> None:
    """A second prepare (the next `up`) keeps the CA, certificate and password."""
    before = [
        p.read_bytes() for p in (security.ca_file, security.node_file, security.password_file)
    ]
    security.prepare()
    after = [p.read_bytes() for p in (security.ca_file, security.node_file, security.password_file)]
    assert before == after


def _handshake(security: LocalSecurity, certificate: Path, host: str) -> str | None:
    """A TLS handshake in memory: a client with the platform's settings against ``certificate``."""
    settings = AgentfluxSettings(
        security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512", ssl_cafile=security.ca_file
    )
    client_context: ssl.SSLContext = connection_kwargs(settings)["ssl_context"]
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(certificate)
    to_server, to_client = ssl.MemoryBIO(), ssl.MemoryBIO()
    server_in, server_out = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = client_context.wrap_bio(to_client, to_server, server_hostname=host)
    server = server_context.wrap_bio(server_in, server_out, server_side=True)
    for _ in range(10):  # a TLS 1.3 handshake takes a few flights
        for side in (client, server):
            with contextlib.suppress(ssl.SSLWantReadError):  # waiting for the other side
                side.do_handshake()
        server_in.write(to_server.read())
        to_client.write(server_out.read())
    return client.version()  # None unless the handshake completed


def test_clients_verify_the_broker_host_name(security: LocalSecurity, tmp_path: Path) -> None:
    """The node certificate passes for 127.0.0.1 and localhost; one for another host fails."""
    for host in ("127.0.0.1", "localhost"):
        assert _handshake(security, security.node_file, host) == "TLSv1.3"
    other = security.authority.issue(tmp_path / "other.pem", "other", ("other.invalid",))
    with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
        _handshake(security, other, "127.0.0.1")


def test_a_secured_node_enforces_tls_sasl_and_acls(security: LocalSecurity) -> None:
    """SASL_SSL clients, mutual TLS between nodes, StandardAuthorizer, no ACL = no access."""
    node = NodePorts(1, 9092, 9093)
    rendered = render_server(
        node, [node], Path("/data"), security.server_properties(node)
    ).splitlines()
    properties = dict(line.split("=", 1) for line in rendered)
    assert properties["listeners"] == "SASL_SSL://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"
    assert properties["listener.security.protocol.map"] == "SASL_SSL:SASL_SSL,CONTROLLER:SSL"
    assert properties["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert properties["listener.name.controller.ssl.client.auth"] == "required"
    assert properties["authorizer.class.name"].endswith("StandardAuthorizer")
    assert properties["allow.everyone.if.no.acl.found"] == "false"
    assert properties["super.users"] == "User:admin;User:agentflux-node"
    assert sum(line.startswith("listeners=") for line in rendered) == 1  # replaced, not added


def test_the_printed_exports_never_hold_the_password(security: LocalSecurity) -> None:
    """`up --secure` prints a shell command that reads the password file, not the password."""
    exports = security.exports()
    assert security.admin_password() not in "".join(exports.values())
    assert str(security.password_file) in exports["AGENTFLUX_SASL_PASSWORD"]
    assert exports["AGENTFLUX_SECURITY_PROTOCOL"] == "SASL_SSL"


@pytest.mark.parametrize("prefix", ["", "staging."])
def test_the_teams_acls_follow_the_declaration(tmp_path: Path, prefix: str) -> None:
    """Billing reads its topics (behind the topic prefix), groups and dead letters (not behind it)."""
    declaration = load_topics(teams_declaration(tmp_path)).behind_prefix(prefix)
    wanted = desired_acls(declaration)
    billing = {str(b) for b in wanted if b.principal == "User:billing"}
    assert billing == {
        f"ALLOW User:billing READ topic {prefix}agent.events",
        f"ALLOW User:billing READ topic {prefix}tool.events",
        "ALLOW User:billing READ group billing.*",
        "ALLOW User:billing CREATE topic agentflux.dlq.billing.*",
        "ALLOW User:billing WRITE topic agentflux.dlq.billing.*",
        "ALLOW User:billing READ topic agentflux.dlq.billing.*",
    }
    category = {t.name for t in declaration.topics if t.category is not None}
    # The names the audit group (which reads every category) subscribes to behind the prefix.
    assert category == set(SHIPPED_GROUPS["audit"].topics(AgentfluxSettings(topic_prefix=prefix)))
    writers = {
        b.name: b.principal
        for b in wanted
        if b.operation == "WRITE" and b.name in category and b.principal != "User:agent-runtime"
    }
    assert writers == {f"{prefix}hitl.events": "User:agentflux-platform"}  # the timeout job
    assert {
        b.name for b in wanted if b.principal == "User:agent-runtime" and b.operation == "WRITE"
    } == category


def test_an_acl_round_trips_through_the_wire_form() -> None:
    """A binding survives its Kafka wire codes."""
    binding = AclBinding("User:billing", "GROUP", "billing.", "PREFIXED", "READ")
    assert AclBinding.from_entry(binding.to_entry()) == binding
    assert binding.to_entry() == (3, "billing.", 4, "User:billing", "*", 3, 3)


def _with_teams(teams: list[dict[str, object]]) -> dict[str, object]:
    declared = yaml.safe_load(_SHIPPED.read_text())
    declared["teams"] = teams
    return dict(declared)


@pytest.mark.parametrize(
    ("teams", "message"),
    [
        ([{**TEST_TEAMS[0], "reads": ["nope.events"]}], "reads nope.events, which is not declared"),
        (
            [TEST_TEAMS[0], {**TEST_TEAMS[1], "group_prefix": "billing.x"}],
            "covers team safety's 'billing.x'",
        ),
        (
            [TEST_TEAMS[0], {**TEST_TEAMS[1], "principal": "User:billing"}],
            "principal User:billing is declared by more than one team",
        ),
        ([{**TEST_TEAMS[0], "writes": ["nope.events"]}], "writes nope.events"),
    ],
)
def test_a_declaration_whose_teams_conflict_is_refused(
    teams: list[dict[str, object]], message: str
) -> None:
    """Undeclared topics, overlapping group prefixes and shared principals are refused."""
    with pytest.raises(ValidationError, match=message):
        TopicsDeclaration.model_validate(_with_teams(teams))


def test_the_shipped_declaration_names_the_runtime_and_the_platform() -> None:
    """The shipped teams: the runtime writes; the platform reads everything under agentflux.*."""
    teams = {t.name: t for t in load_topics().teams}
    assert teams["agent-runtime"].writes is True
    assert teams["platform"].group_prefix == "agentflux."


def test_users_add_reads_the_password_from_the_environment_then_stdin(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The variable wins; otherwise the first line of a piped standard input."""
    monkeypatch.setenv(_cli_security.PASSWORD_ENV, "from-env")
    assert _cli_security._password() == "from-env"
    monkeypatch.delenv(_cli_security.PASSWORD_ENV)
    monkeypatch.setattr("sys.stdin", io.StringIO("from-stdin\nrest\n"))
    assert _cli_security._password() == "from-stdin"


def test_admin_settings_log_in_as_the_admin(security: LocalSecurity) -> None:
    """The launcher's own clients use SASL_SSL, SCRAM-SHA-512, the admin and the CA."""
    settings = security.admin_settings("127.0.0.1:1", "http://127.0.0.1:2")
    assert (settings.security_protocol, settings.sasl_mechanism) == ("SASL_SSL", "SCRAM-SHA-512")
    assert settings.sasl_username == "admin"
    assert isinstance(settings.sasl_password, SecretStr)
    assert settings.sasl_password.get_secret_value() == security.admin_password()
    assert settings.ssl_cafile == security.ca_file


def test_aiokafkas_authorization_failures_become_errors_that_name_who_what_and_how() -> None:
    """Topic, group and cluster denials name the principal, the resource and the operation."""
    settings = AgentfluxSettings(
        security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512", sasl_username="billing"
    )
    topic = authorization_error(TopicAuthorizationFailedError({"b", "a"}), settings, "WRITE")
    group = authorization_error(GroupAuthorizationFailedError("x"), settings, "READ", "safety.x")
    cluster = authorization_error(ClusterAuthorizationFailedError(), settings, "WRITE")
    described = [
        (e.principal, e.resource_type, e.resource_name, e.operation)
        for e in (topic, group, cluster)
        if e is not None
    ]
    assert described == [
        ("User:billing", "topic", "a, b", "WRITE"),
        ("User:billing", "group", "safety.x", "READ"),
        ("User:billing", "cluster", "kafka-cluster", "IDEMPOTENT_WRITE"),
    ]
    assert authorization_error(ValueError("other"), settings, "READ") is None
