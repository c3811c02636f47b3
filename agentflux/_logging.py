"""Logging of the platform's processes, configured once, when the command line starts.

structlog's loggers and the standard library's (aiokafka's, asyncio's, ``warnings``) go through
the same processors and one handler on stderr: readable lines on a terminal, one JSON object
per line otherwise (for log collectors). Importing agentflux configures nothing: a program that
uses the library keeps its own logging set-up.

``AGENTFLUX_LOG_FORMAT`` (``console`` | ``json``) and ``AGENTFLUX_LOG_LEVEL`` override the
defaults. They are read here, not in the platform's settings model, because logging is set up
before any command reads those settings (and a setting that fails to validate must still be
reported through a configured logger).
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Literal

import structlog
from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from typing import TextIO

__all__ = ["LogSettings", "configure_logging", "json_lines"]

LogFormat = Literal["console", "json"]
_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


# A logger binds its configuration on first use (cheaper calls). The test suite turns it off:
# structlog.testing.capture_logs cannot see a logger cached under another configuration.
CACHE_LOGGERS = True


class LogSettings(BaseSettings):
    """``AGENTFLUX_LOG_FORMAT`` and ``AGENTFLUX_LOG_LEVEL``; unset, the caller's defaults."""

    model_config = SettingsConfigDict(env_prefix="AGENTFLUX_LOG_", env_file=".env", extra="ignore")

    format: LogFormat | None = None
    level: str | None = None

    @field_validator("level")
    @classmethod
    def _known_level(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if value.upper() not in _LEVELS:
            raise ValueError(f"choose one of {', '.join(_LEVELS)}")
        return value.upper()


class _OwnHandler(logging.StreamHandler):  # type: ignore[type-arg]  # TextIO stream
    """The handler this module installs, so that configuring again replaces only it.

    Without a stream of its own it writes to whatever ``sys.stderr`` is at each record (as
    logging's last-resort handler does): a test runner swapping stderr for a command's run
    leaves no handler behind on a closed stream.
    """

    def __init__(self, stream: TextIO | None, *, json: bool) -> None:
        super().__init__(stream)
        self._own_stream = stream
        self.json = json

    @property
    def stream(self) -> TextIO:
        return self._own_stream if self._own_stream is not None else sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        self._own_stream = value


def _shared_processors() -> list[structlog.typing.Processor]:
    """What every event gets, from structlog or from the standard library alike."""
    return [
        structlog.contextvars.merge_contextvars,  # group / topic / partition of the batch
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]


def configure_logging(
    settings: LogSettings | None = None,
    *,
    default_level: str = "INFO",
    client_level: str | None = None,
    stream: TextIO | None = None,
) -> LogFormat:
    """Route structlog and the standard library through one handler on ``stream``; its format.

    The format is ``console`` when ``stream`` (stderr by default) is a terminal and ``json``
    otherwise, unless ``AGENTFLUX_LOG_FORMAT`` says; the level is ``default_level`` unless
    ``AGENTFLUX_LOG_LEVEL`` says, and aiokafka's is ``client_level`` (if given) unless
    ``AGENTFLUX_LOG_LEVEL`` says. Calling it again replaces the previous configuration.
    """
    settings = settings or LogSettings()
    is_terminal = (stream or sys.stderr).isatty()
    log_format: LogFormat = settings.format or ("console" if is_terminal else "json")
    level = logging.getLevelNamesMapping()[settings.level or default_level.upper()]

    rendering: list[structlog.typing.Processor] = (
        [structlog.processors.dict_tracebacks, structlog.processors.JSONRenderer()]
        if log_format == "json"
        else [
            structlog.dev.ConsoleRenderer(
                colors=is_terminal, exception_formatter=structlog.dev.plain_traceback
            )
        ]
    )
    shared = _shared_processors()
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        # Below the level a call returns at once: a disabled debug line costs almost nothing.
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=CACHE_LOGGERS,
    )
    handler = _OwnHandler(stream, json=log_format == "json")
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *rendering],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _OwnHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # A command that fails says why itself: the client's own report of it is a repeat.
    quieter = client_level if settings.level is None else None
    logging.getLogger("aiokafka").setLevel(quieter.upper() if quieter else logging.NOTSET)
    # httpx logs every registry request at INFO: a line per schema at each start.
    httpx_level = logging.NOTSET if level <= logging.DEBUG else logging.WARNING
    logging.getLogger("httpx").setLevel(httpx_level)
    logging.captureWarnings(capture=True)  # warnings.warn (ResourceWarning ...) as log events too
    return log_format


def json_lines() -> bool:
    """Whether the configured logging writes JSON lines (so should a command's failure)."""
    root = logging.getLogger()
    return any(isinstance(h, _OwnHandler) and h.json for h in root.handlers)
