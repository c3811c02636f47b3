"""Typed errors of the contract: registry, codec, compatibility."""

from __future__ import annotations

__all__ = [
    "CodecError",
    "CorruptPayloadError",
    "IncompatibleSchemaError",
    "RegistryError",
    "RegistryUnavailableError",
    "SchemaNotFoundError",
    "SchemaResolutionError",
    "UnknownSchemaIdError",
]


class RegistryError(Exception):
    """The schema registry refused a request or answered something unexpected."""

    def __init__(self, message: str, *, status: int | None = None, code: int | None = None) -> None:
        """Keep the HTTP status and the registry's error code next to the message."""
        super().__init__(message)
        self.status = status
        self.code = code


class RegistryUnavailableError(RegistryError):
    """The registry could not be reached (or kept failing) within the retries and timeout."""


class SchemaNotFoundError(RegistryError):
    """The registry has no such subject, version or schema id."""


class IncompatibleSchemaError(RegistryError):
    """A schema breaks the subject's compatibility level; nothing was registered."""


class CodecError(Exception):
    """An event could not be encoded or a record could not be decoded."""


class CorruptPayloadError(CodecError):
    """The bytes are not a Confluent-framed Avro record of the schema they name."""


class UnknownSchemaIdError(CodecError):
    """The record names a schema id the registry does not know."""


class SchemaResolutionError(CodecError):
    """The writer's schema cannot be read with the reader's schema (Avro resolution failed)."""
