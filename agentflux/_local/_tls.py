"""A local certificate authority and the certificates it signs, for the secured local cluster.

Written with the ``cryptography`` library's X.509 builder (no ``openssl`` or ``keytool`` run):
PEM files only, which Kafka reads directly (``ssl.keystore.type=PEM``) and Python's ``ssl``
loads as they are.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["LOCAL_HOSTS", "CertificateAuthority", "write_private"]

# What clients of the local cluster connect to: the broker certificate names both.
LOCAL_HOSTS = ("127.0.0.1", "localhost")
_CA_DAYS = 3650
_LEAF_DAYS = 825  # the longest validity browsers and most TLS stacks accept for a leaf


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` readable by its owner only (keys, passwords), whatever the umask."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "agentflux local cluster"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _subject_alternative_names(hosts: tuple[str, ...]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    # PKCS#8, unencrypted: the one private-key form Kafka's PEM key store reads without a password.
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@dataclass(frozen=True, slots=True)
class CertificateAuthority:
    """The CA's files: ``ca.pem`` (what clients trust) and its key, next to each other."""

    directory: Path

    @property
    def certificate_file(self) -> Path:
        """The CA certificate, PEM: ``AGENTFLUX_SSL_CAFILE`` of every client."""
        return self.directory / "ca.pem"

    @property
    def _key_file(self) -> Path:
        return self.directory / "ca-key.pem"

    def exists(self) -> bool:
        """Whether this directory holds a CA already (it is created once and kept)."""
        return self.certificate_file.exists() and self._key_file.exists()

    def create(self) -> None:
        """A new self-signed CA (P-256, ten years)."""
        key = ec.generate_private_key(ec.SECP256R1())
        name = _name("agentflux local CA")
        now = dt.datetime.now(dt.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=_CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            # Key identifiers: Python 3.13's default TLS context verifies strictly (RFC 5280)
            # and refuses a chain without them ("Missing Authority Key Identifier").
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False
            )
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(key, hashes.SHA256())
        )
        write_private(self._key_file, _pem_key(key))
        self.certificate_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))

    def issue(self, path: Path, common_name: str, hosts: tuple[str, ...]) -> Path:
        """Write to ``path`` a key and a certificate for ``hosts`` signed by this CA (one PEM).

        The certificate serves both ends of TLS (server and client authentication), so one
        node's file is its broker certificate and its identity on the controller listener.
        """
        ca_key = serialization.load_pem_private_key(self._key_file.read_bytes(), password=None)
        if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
            raise TypeError(f"{self._key_file} is not the EC key this module writes")
        ca_certificate = x509.load_pem_x509_certificate(self.certificate_file.read_bytes())
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(ca_certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=_LEAF_DAYS))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
            .add_extension(_subject_alternative_names(hosts), critical=False)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        write_private(
            path,
            _pem_key(key)
            + certificate.public_bytes(serialization.Encoding.PEM)
            + ca_certificate.public_bytes(serialization.Encoding.PEM),
        )
        return path
