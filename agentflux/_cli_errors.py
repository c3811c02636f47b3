"""What a command's expected failures say, and the exit code each one ends with.

Commands raise (or let through) typed errors; the root command group (``agentflux.cli``) turns
any of them into one or two lines, what failed and why, then what to do, and the exit code
below. A traceback is shown only with ``agentflux --debug``.

======  ==============================================================================
 code   meaning
======  ==============================================================================
  0     done
  1     the command ran and the answer is no: a check found problems (audit chain
        broken, rebuilt view differs, schema incompatible, dead letters still failing)
        or it refused to act (group still active, store not fresh, fewer partitions)
  2     the command line or its input is wrong: an unknown option or missing argument,
        an invalid value (store URL, replay target, event type, ``topics.yaml``,
        an ``AGENTFLUX_*`` setting)
  3     a service could not be reached: Kafka, the schema registry, PostgreSQL
  4     something named does not exist: a store (or its view's tables), a session,
        a consumer group, a topic, a schema, a dead letter
  5     a schema changed compatibly and is not released yet (``schemas diff``): CI
        fails on it until the change is released
  70    an unexpected error, i.e. a bug: run again with ``--debug`` and report it
======  ==============================================================================
"""

from __future__ import annotations

import sys
import traceback
from enum import IntEnum
from typing import ClassVar

from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError
from pydantic import ValidationError
from rich.console import Console
from rich.text import Text

from agentflux._local import ClusterError
from agentflux._offsets import (
    GroupActiveError,
    ReplayTargetError,
    UnknownGroupError,
    UnknownTopicError,
)
from agentflux._rebuild import StoreNotFreshError, SwapError
from agentflux._topics import PartitionDecreaseError
from agentflux.kafka import (
    AgentfluxSettings,
    AuthorizationError,
    EventLoopUnavailableError,
    KafkaAccessError,
)
from agentflux.producers import PublishError, SchemaNotRegisteredError
from agentflux.schemas import RegistryError, RegistryUnavailableError, SchemaNotFoundError

__all__ = [
    "EXIT_CODES",
    "CliError",
    "ExitCode",
    "InputError",
    "InternalError",
    "NotFoundError",
    "RefusedError",
    "UnreachableError",
    "explain",
    "report",
]


class ExitCode(IntEnum):
    """The exit codes of every command (the table in this module's docstring)."""

    OK = 0
    FAILED = 1
    USAGE = 2
    UNREACHABLE = 3
    NOT_FOUND = 4
    UNRELEASED = 5
    INTERNAL = 70  # EX_SOFTWARE of sysexits.h


EXIT_CODES: dict[ExitCode, str] = {
    ExitCode.OK: "done",
    ExitCode.FAILED: "a check found problems, or the command refused to act",
    ExitCode.USAGE: "the command line or its input is wrong",
    ExitCode.UNREACHABLE: "Kafka, the schema registry or PostgreSQL could not be reached",
    ExitCode.NOT_FOUND: "a store, session, group, topic, schema or dead letter does not exist",
    ExitCode.UNRELEASED: "a schema changed and is not released yet (schemas diff)",
    ExitCode.INTERNAL: "an unexpected error (a bug): run again with --debug and report it",
}


class CliError(Exception):
    """An expected failure: what failed and why (``message``), and what to do (``hint``)."""

    exit_code: ClassVar[ExitCode] = ExitCode.FAILED

    def __init__(self, message: str, hint: str | None = None) -> None:
        """Keep the two lines a person reads."""
        super().__init__(message)
        self.message = message
        self.hint = hint


class InternalError(CliError):
    """Anything else: a bug, shown as one line unless ``--debug`` asks for the traceback."""

    exit_code = ExitCode.INTERNAL


class RefusedError(CliError):
    """The command ran and the answer is no: a failed check or a refused action."""


class InputError(CliError):
    """An invalid value given to a command (an option, a file, a setting)."""

    exit_code = ExitCode.USAGE


class UnreachableError(CliError):
    """Kafka, the schema registry or a database did not answer."""

    exit_code = ExitCode.UNREACHABLE


class NotFoundError(CliError):
    """A store, session, group, topic or schema the command was pointed at does not exist."""

    exit_code = ExitCode.NOT_FOUND


def _settings() -> AgentfluxSettings | None:
    try:
        return AgentfluxSettings()
    except ValidationError:
        return None  # the settings themselves are what failed: said by their own message


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and what it was raised from, outermost first (a wrapped connection failure)."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__
    return chain


def _access(exc: BaseException) -> CliError | None:
    """The cluster refused who the client is (its login, its TLS peer) or what it asked."""
    if isinstance(exc, AuthorizationError):
        return RefusedError(f"refused: {exc}")
    if isinstance(exc, KafkaAccessError):  # its message says what to check
        return UnreachableError(str(exc))
    return None


def _unreachable(exc: BaseException) -> UnreachableError | None:
    """Kafka or the registry out of reach, even behind a publisher's or view's own error."""
    for cause in _causes(exc):
        if isinstance(cause, KafkaConnectionError | KafkaTimeoutError):
            settings = _settings()
            where = settings.bootstrap_servers if settings else "the bootstrap servers"
            return UnreachableError(
                f"no Kafka answers at {where}",
                "start one with `agentflux up`, or set AGENTFLUX_BOOTSTRAP_SERVERS",
            )
        if isinstance(cause, RegistryUnavailableError):
            settings = _settings()
            where = settings.registry_url if settings else "the registry URL"
            return UnreachableError(
                f"no schema registry answers at {where}",
                "start one with `agentflux up`, or set AGENTFLUX_REGISTRY_URL",
            )
    return None


def _from_contract(exc: BaseException) -> CliError | None:
    """The registry, the schemas, publishing."""
    if isinstance(exc, SchemaNotRegisteredError):  # names the subjects and the command
        return NotFoundError(f"publishing failed: {exc}")
    if isinstance(exc, PublishError):
        return RefusedError(f"publishing failed: {exc}")
    if isinstance(exc, SchemaNotFoundError):
        return NotFoundError(
            f"schema registry: {exc}", "register the schemas with `agentflux schemas register`"
        )
    if isinstance(exc, RegistryError):
        return RefusedError(f"the schema registry refused: {exc}")
    return None


def _from_platform(exc: BaseException) -> CliError | None:
    """Groups, topics, offsets, rebuilds and the local cluster."""
    if isinstance(exc, UnknownGroupError):
        return NotFoundError(str(exc), "`agentflux lag` lists the groups and their topics")
    if isinstance(exc, UnknownTopicError):
        return NotFoundError(
            str(exc), "`agentflux topics apply` creates the declared ones; check the name or prefix"
        )
    if isinstance(exc, ReplayTargetError):
        return InputError(str(exc))
    if isinstance(exc, GroupActiveError | StoreNotFreshError | SwapError | PartitionDecreaseError):
        return RefusedError(f"refused: {exc}")
    if isinstance(exc, ClusterError):  # its message ends with the logs' tails: the first line
        first, *rest = str(exc).splitlines() or [""]
        return RefusedError(
            f"local cluster: {first}",
            "`agentflux --debug ...` shows the whole message, with the end of the logs"
            if rest
            else None,
        )
    return None


def _from_settings(exc: BaseException) -> CliError | None:
    """``AGENTFLUX_*`` settings, and any other pydantic model a command validates."""
    if isinstance(exc, EventLoopUnavailableError):
        return InputError(str(exc))
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or exc.title
        return InputError(
            f"invalid {exc.title}: {where}: {first['msg']}",
            "check the AGENTFLUX_* environment variables and .env"
            if exc.title in {"AgentfluxSettings", "LogSettings"}
            else None,
        )
    return None


def explain(exc: BaseException) -> CliError:
    """The typed error a failure stands for; an unknown exception is an internal error."""
    if isinstance(exc, CliError):
        return exc
    for known in (_access, _unreachable, _from_contract, _from_platform, _from_settings):
        if (error := known(exc)) is not None:
            return error
    return InternalError(
        f"unexpected error: {type(exc).__name__}: {exc}",
        "run again with `agentflux --debug ...` for the traceback, and report it",
    )


def report(exc: BaseException, *, debug: bool, json_lines: bool) -> ExitCode:
    """Tell a person (or a log collector, with ``json_lines``) what failed; the exit code."""
    error = explain(exc)
    code = error.exit_code
    if json_lines:  # where logs are JSON, so is the failure: one object a collector can read
        import structlog  # noqa: PLC0415  # only this branch logs

        structlog.get_logger("agentflux.cli").error(
            error.message,
            hint=error.hint,
            exit_code=int(code),
            exc_info=exc if debug else None,  # the traceback as structured data
        )
        return code
    if debug:
        traceback.print_exception(exc, file=sys.stderr)
    console = Console(stderr=True, soft_wrap=True, highlight=False)
    console.print(Text.assemble(("error: ", "bold red"), error.message))
    if error.hint:
        console.print(Text(f"  {error.hint}", style="dim"))
    return code
