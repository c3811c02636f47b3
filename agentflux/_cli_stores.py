"""Opening a view's store for a command: read-only when the command only reads.

A command that only reads never creates a store or its folder; a store that is missing, not a
database, out of reach, or without the view's tables is reported as such (see
:mod:`agentflux._cli_errors`), with the URL it was pointed at (password hidden).
"""

from __future__ import annotations

import sqlite3
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import asyncpg

from agentflux._cli_errors import InputError, NotFoundError, RefusedError, UnreachableError
from agentflux.consumers import open_store
from agentflux.consumers._stores import StoreNotFoundError
from agentflux.kafka import AgentfluxSettings

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from agentflux.consumers import Store

__all__ = ["shown_url", "view_store"]


def shown_url(url: str) -> str:
    """``url`` with its password, if any, replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


async def _open(store: Store, where: str, fill: str) -> None:
    """Open ``store``; why it could not be, as the error a person reads."""
    try:
        await store.open()
    except StoreNotFoundError as exc:
        raise NotFoundError(f"no store at {where}", fill) from exc
    except asyncpg.InvalidCatalogNameError as exc:
        raise NotFoundError(f"no database {where}", fill) from exc
    except asyncpg.PostgresError as exc:
        raise RefusedError(f"PostgreSQL refused {where}: {exc}") from exc
    except sqlite3.DatabaseError as exc:
        raise InputError(f"cannot open {where} as a SQLite store: {exc}") from exc
    except OSError as exc:  # connecting to PostgreSQL: refused, no such host, timed out
        raise UnreachableError(
            f"no PostgreSQL answers for {where} ({exc.strerror or exc})",
            "start it, or point --store / AGENTFLUX_STORE_URL at a reachable one",
        ) from exc


@asynccontextmanager
async def view_store(url: str | None, view: str, *, read_only: bool) -> AsyncIterator[Store]:
    """The store of ``view`` at ``url`` (default: ``AGENTFLUX_STORE_URL``), opened.

    ``read_only``: never created; a missing store or missing view tables are
    :class:`NotFoundError`. Bad URLs, unreachable servers and files that are not databases
    are reported too, whatever the mode.
    """
    url = url or AgentfluxSettings().store_url
    where = shown_url(url)
    fill = (
        f"the {view} group fills it: run `agentflux consume {view}` (or `make demo`), "
        "or point --store / AGENTFLUX_STORE_URL at its store"
    )
    try:
        store = open_store(url, read_only=read_only)
    except ValueError as exc:  # the only thing open_store refuses: the URL's scheme
        raise InputError(str(exc).replace(repr(url), repr(where))) from exc
    await _open(store, where, fill)
    try:
        yield store
    except asyncpg.UndefinedTableError as exc:
        raise NotFoundError(f"{where} holds no {view} view ({exc})", fill) from exc
    except sqlite3.DatabaseError as exc:  # SQLite reads the file at the first query only
        if "no such table" in str(exc):
            raise NotFoundError(f"{where} holds no {view} view ({exc})", fill) from exc
        if type(exc) is sqlite3.DatabaseError:  # not a database at all
            raise InputError(f"cannot open {where} as a SQLite store: {exc}") from exc
        raise
    finally:
        await store.close()
