"""Registry clients share one TLS context instead of loading the CA bundle each."""

from __future__ import annotations

import ssl

from agentflux.schemas import RegistryClient
from agentflux.schemas._registry import _shared_tls_context


async def test_clients_share_one_verifying_tls_context() -> None:
    """Every client gets the same context, and it still verifies certificates and host names."""
    first, second = RegistryClient("https://a.example"), RegistryClient("http://b.example")
    try:
        context = _shared_tls_context()
        assert context is _shared_tls_context()
        assert context.verify_mode == ssl.CERT_REQUIRED
        assert context.check_hostname
        assert context.cert_store_stats()["x509_ca"] > 0  # the CA bundle is loaded
        for client in (first, second):
            pool = client._http._transport._pool  # type: ignore[attr-defined]  # httpcore's pool
            assert pool._ssl_context is context
    finally:
        await first.aclose()
        await second.aclose()
