"""The secured local cluster: SASL_SSL listeners, SCRAM-SHA-512, TLS from a local CA, ACLs.

What ``agentflux up --secure`` adds to a node, all kept under ``<state dir>/security``:

- a local CA (``ca.pem``, what clients trust) and one certificate for all nodes, naming
  127.0.0.1 and localhost, so clients verify the host name as they would in production;
- the client listener ``SASL_SSL`` with SCRAM-SHA-512 only; brokers talk to each other on it
  as the platform admin principal (``User:admin``), whose SCRAM credentials are written into
  the metadata log when the node is formatted (``kafka-storage format --add-scram``): SCRAM
  users live in that log, so the first one must be there before any broker can check a login;
- the controller listener ``SSL`` with client certificates required (mutual TLS): the
  controllers authenticate each other and the brokers by the nodes' certificate, principal
  ``User:agentflux-node``. SCRAM cannot serve it (the controllers would need the metadata
  log to check a login before they have elected a leader to read it from), and a plain
  listener would let anyone on the machine act as a node;
- KRaft's ``StandardAuthorizer`` with no ACL meaning no access, and the admin and node
  principals as super users. ``agentflux acls apply`` grants the teams the rest.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from agentflux._local._tls import LOCAL_HOSTS, CertificateAuthority, write_private
from agentflux.kafka import AgentfluxSettings

if TYPE_CHECKING:
    from pathlib import Path

    from agentflux._local._config import NodePorts

__all__ = ["ADMIN_USER", "MECHANISM", "NODE_PRINCIPAL", "LocalSecurity"]

ADMIN_USER = "admin"
NODE_PRINCIPAL = "User:agentflux-node"
MECHANISM: Final = "SCRAM-SHA-512"
_SCRAM_MODULE = "org.apache.kafka.common.security.scram.ScramLoginModule"
_AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"


def _jaas(username: str, password: str) -> str:
    return f'{_SCRAM_MODULE} required username="{username}" password="{password}";'


@dataclass(frozen=True, slots=True)
class LocalSecurity:
    """The security material of one local cluster, in ``directory``; created once, then kept."""

    directory: Path

    @property
    def authority(self) -> CertificateAuthority:
        """The local CA."""
        return CertificateAuthority(self.directory)

    @property
    def ca_file(self) -> Path:
        """The CA certificate every client trusts."""
        return self.authority.certificate_file

    @property
    def node_file(self) -> Path:
        """Every node's key and certificate (PEM), for 127.0.0.1 and localhost."""
        return self.directory / "node.pem"

    @property
    def password_file(self) -> Path:
        """The admin principal's password, readable by its owner only."""
        return self.directory / "admin.password"

    def prepare(self) -> None:
        """Create the CA, the nodes' certificate and the admin password where missing."""
        if not self.authority.exists():
            self.authority.create()
        if not self.node_file.exists():
            self.authority.issue(self.node_file, NODE_PRINCIPAL.removeprefix("User:"), LOCAL_HOSTS)
        if not self.password_file.exists():
            write_private(self.password_file, secrets.token_urlsafe(24).encode())

    def admin_password(self) -> str:
        """The admin principal's password."""
        return self.password_file.read_text().strip()

    def server_properties(self, node: NodePorts) -> dict[str, object]:
        """What a secured node sets over the plain ones (listeners, TLS, SASL, authorizer)."""
        node_key_store = {"ssl.keystore.type": "PEM", "ssl.keystore.location": self.node_file}
        return {
            "listeners": (
                f"SASL_SSL://127.0.0.1:{node.broker},CONTROLLER://127.0.0.1:{node.controller}"
            ),
            "advertised.listeners": f"SASL_SSL://127.0.0.1:{node.broker}",
            "inter.broker.listener.name": "SASL_SSL",
            "listener.security.protocol.map": "SASL_SSL:SASL_SSL,CONTROLLER:SSL",
            **node_key_store,
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": self.ca_file,
            "sasl.enabled.mechanisms": MECHANISM,
            "sasl.mechanism.inter.broker.protocol": MECHANISM,
            "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": _jaas(
                ADMIN_USER, self.admin_password()
            ),
            "listener.name.controller.ssl.client.auth": "required",
            # The node certificate's subject "CN=agentflux-node,O=..." becomes User:agentflux-node.
            "listener.name.controller.ssl.principal.mapping.rules": (
                "RULE:^CN=([^,]+),.*$/$1/,DEFAULT"
            ),
            "authorizer.class.name": _AUTHORIZER,
            "allow.everyone.if.no.acl.found": "false",
            "super.users": f"User:{ADMIN_USER};{NODE_PRINCIPAL}",
        }

    def format_arguments(self) -> list[str]:
        """``kafka-storage format`` arguments that put the admin's SCRAM credentials in the log."""
        return ["--add-scram", f"{MECHANISM}=[name={ADMIN_USER},password={self.admin_password()}]"]

    def registry_properties(self) -> str:
        """Apicurio's ``config/application.properties``: its Kafka clients log in as the admin.

        ``apicurio.kafka.common.*`` goes to each of its Kafka clients (producer, consumer,
        admin). A file, not the environment, keeps the password off ``/proc/<pid>/environ``.
        """
        common = {
            "security.protocol": "SASL_SSL",
            "sasl.mechanism": MECHANISM,
            "sasl.jaas.config": _jaas(ADMIN_USER, self.admin_password()),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": self.ca_file,
        }
        return "".join(f"apicurio.kafka.common.{key}={value}\n" for key, value in common.items())

    def admin_settings(self, bootstrap_servers: str, registry_url: str) -> AgentfluxSettings:
        """Settings that reach the secured cluster as the platform admin."""
        return AgentfluxSettings(
            bootstrap_servers=bootstrap_servers,
            registry_url=registry_url,
            security_protocol="SASL_SSL",
            sasl_mechanism=MECHANISM,
            sasl_username=ADMIN_USER,
            sasl_password=self.admin_password(),  # type: ignore[arg-type]  # pydantic makes it a SecretStr
            ssl_cafile=self.ca_file,
        )

    def exports(self) -> dict[str, str]:
        """The ``AGENTFLUX_*`` variables of a client, the password read from its file."""
        return {
            "AGENTFLUX_SECURITY_PROTOCOL": "SASL_SSL",
            "AGENTFLUX_SASL_MECHANISM": MECHANISM,
            "AGENTFLUX_SASL_USERNAME": ADMIN_USER,
            "AGENTFLUX_SASL_PASSWORD": f'"$(cat {self.password_file})"',
            "AGENTFLUX_SSL_CAFILE": str(self.ca_file),
        }
