"""Settings from the environment become aiokafka arguments, SASL and TLS included."""

from __future__ import annotations

import ssl
from pathlib import Path

import certifi
import pytest

from agentflux.kafka import AgentfluxSettings, connection_kwargs


def test_plaintext_defaults() -> None:
    """Without security settings, clients connect in plaintext to the listed servers."""
    kwargs = connection_kwargs(AgentfluxSettings(bootstrap_servers="a:1,b:2"))
    assert kwargs["bootstrap_servers"] == ["a:1", "b:2"]
    assert kwargs["security_protocol"] == "PLAINTEXT"
    assert "ssl_context" not in kwargs


def test_sasl_ssl_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """AGENTFLUX_* variables configure SASL/SCRAM over TLS with a CA file, secret kept secret."""
    ca = tmp_path / "ca.pem"
    ca.write_text(Path(certifi.where()).read_text())  # any real CA bundle will do
    monkeypatch.setenv("AGENTFLUX_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("AGENTFLUX_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("AGENTFLUX_SASL_USERNAME", "runtime")
    monkeypatch.setenv("AGENTFLUX_SASL_PASSWORD", "s3cret")
    monkeypatch.setenv("AGENTFLUX_SSL_CAFILE", str(ca))
    settings = AgentfluxSettings()
    assert "s3cret" not in repr(settings)
    kwargs = connection_kwargs(settings)
    assert kwargs["security_protocol"] == "SASL_SSL"
    assert kwargs["sasl_mechanism"] == "SCRAM-SHA-512"
    assert kwargs["sasl_plain_username"] == "runtime"
    assert kwargs["sasl_plain_password"] == "s3cret"  # noqa: S105  # the test value set above
    assert isinstance(kwargs["ssl_context"], ssl.SSLContext)
    assert kwargs["ssl_context"].verify_mode == ssl.CERT_REQUIRED


def test_invalid_protocol_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A security protocol Kafka does not know is a validation error, not a late failure."""
    monkeypatch.setenv("AGENTFLUX_SECURITY_PROTOCOL", "TLS")
    with pytest.raises(ValueError, match="security_protocol"):
        AgentfluxSettings()
