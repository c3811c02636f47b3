"""The one place that turns settings into aiokafka client arguments."""

from __future__ import annotations

import asyncio
import ssl
from typing import TYPE_CHECKING, Any

from aiokafka.admin import AIOKafkaAdminClient

from agentflux.kafka._gate._clients import close_cut_short

if TYPE_CHECKING:
    from aiokafka import AIOKafkaConsumer

    from agentflux.kafka._settings import AgentfluxSettings

__all__ = ["connection_kwargs", "stop_consumer", "topic_partitions"]

_TOPIC_AUTHORIZATION_FAILED = 29  # Kafka's error code


def connection_kwargs(settings: AgentfluxSettings) -> dict[str, Any]:
    """Return the keyword arguments every aiokafka client needs to reach the cluster.

    Producers, consumers and admin clients all start from these, then add their own.
    """
    kwargs: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers.split(","),
        "client_id": settings.client_id,
        "security_protocol": settings.security_protocol,
    }
    if settings.security_protocol in {"SSL", "SASL_SSL"}:
        context = ssl.create_default_context(
            cafile=str(settings.ssl_cafile) if settings.ssl_cafile else None,
        )
        if settings.ssl_certfile is not None:
            context.load_cert_chain(
                str(settings.ssl_certfile),
                str(settings.ssl_keyfile) if settings.ssl_keyfile else None,
            )
        kwargs["ssl_context"] = context
    if settings.security_protocol.startswith("SASL"):
        kwargs["sasl_mechanism"] = settings.sasl_mechanism or "PLAIN"
        kwargs["sasl_plain_username"] = settings.sasl_username
        kwargs["sasl_plain_password"] = (
            settings.sasl_password.get_secret_value() if settings.sasl_password else None
        )
    return kwargs


async def topic_partitions(
    settings: AgentfluxSettings, consumer: AIOKafkaConsumer, topic: str
) -> set[int]:
    """The partition ids of ``topic`` (empty: no such topic), from aiokafka's public API only.

    The consumer's metadata knows every topic that existed when it started; a topic created
    since is asked of the cluster (aiokafka has no public refresh of a consumer's metadata).
    A topic the principal may not see raises ``AuthorizationError``: it is not an empty one.
    """
    known: set[int] | None = consumer.partitions_for_topic(topic)
    if known:
        return set(known)
    admin = AIOKafkaAdminClient(**connection_kwargs(settings))
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    for found in described:
        if found["topic"] == topic and found["error_code"] == _TOPIC_AUTHORIZATION_FAILED:
            from agentflux.kafka._access import AuthorizationError, principal_of  # noqa: PLC0415  # _access imports this module

            raise AuthorizationError(principal_of(settings), "topic", topic, "DESCRIBE")
    return {
        partition["partition"]
        for found in described
        if found["topic"] == topic and not found["error_code"]
        for partition in found["partitions"]
    }


async def stop_consumer(consumer: AIOKafkaConsumer) -> None:
    """Stop ``consumer``, and close its connections even when aiokafka's stop is cut short.

    While a broker is down, aiokafka's fetcher retries a fetch after a backoff sleep; stopping
    it cancels that sleep, and the cancellation escapes ``Fetcher.close`` (aio-libs/aiokafka
    issue 647). The consumer is then marked closed with its client open: every broker
    connection, and the metadata task that keeps reconnecting, outlive it.
    """
    try:
        await consumer.stop()
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise  # this task is being cancelled: not aiokafka's stray cancellation
        await close_cut_short(consumer)
