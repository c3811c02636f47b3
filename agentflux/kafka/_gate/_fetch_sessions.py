"""Incremental fetch sessions (KIP-227): a fetch names only what changed since the last one.

aiokafka fetches without a session: every request lists every assigned partition with its
offset, and every response lists every one of them back, with data or not. The runner reads the
six category topics of six partitions each, so each fetch encoded and decoded 36 partitions in
Python; at a steady low rate a consumer fetches about once per event, so that was most of its
CPU, and the machine's load is what sets the latency tail.

Kafka's Java consumer has used fetch sessions since Kafka 2.1. The broker keeps the session's
partitions and their offsets; a request carries only the partitions whose offset changed, plus
those to forget; a response carries only the partitions with records, a moved high watermark,
log start or last stable offset, or an error. The broker still reads every partition of the
session at its offset, so records not taken (a response dropped on a rebalance) come again.

``install_fetch_sessions`` gives consumers marked with ``lazy_headers`` (the
runner's) a fetcher that keeps one ``FetchSession`` per broker and sends its requests as
``SessionFetchRequest``; its ``topics`` stay the whole request, which is what aiokafka's
response handling reads offsets from, while the bytes sent are the session's difference. A
session error from the broker (session unknown or evicted, wrong epoch), a failed or cancelled
request and a broker speaking Fetch older than v7 all fall back to a full fetch, which starts
a new session, as the Java consumer does. Stopping the consumer ends its sessions (a last fetch
at epoch -1), so brokers free their slots at once. Unmarked consumers get aiokafka's fetcher.
"""

from __future__ import annotations

import asyncio
import contextlib
import warnings
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from aiokafka.consumer import consumer as _consumer
from aiokafka.consumer import fetcher as _fetcher
from aiokafka.errors import KafkaError
from aiokafka.protocol.fetch import FetchRequest

from agentflux.kafka._gate import gate
from agentflux.kafka._gate._lazy_headers import lazy_headers

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["FetchSession", "SessionFetchRequest", "install_fetch_sessions", "unavailable"]

_FIRST_SESSION_VERSION = 7  # Fetch v7 added session ids, epochs and forgotten partitions
_LEADER_EPOCH_VERSION = 9  # v9 added each partition's current leader epoch
_RACK_VERSION = 11
_NO_SESSION = 0
_INITIAL_EPOCH = 0  # a full fetch that creates a session (and closes the one it names)
_SESSIONLESS_EPOCH = -1  # a full fetch outside any session (aiokafka's)
_MAX_EPOCH = 2**31 - 1
_FETCH_SESSION_ID_NOT_FOUND = 70
_CLOSE_TIMEOUT_S = 1.0  # closing is a courtesy: the broker evicts idle sessions anyway
_NO_ERROR = 0

# (topic, partition): a plain tuple, equal to aiokafka's TopicPartition and several times
# cheaper to make (every assigned partition is keyed on every fetch).
Partition = tuple[str, int]
# (fetch offset, max bytes) of one partition: what the broker keeps for it in a session.
PartitionFetch = tuple[int, int]


class FetchSession:
    """One broker's fetch session for one consumer: what the broker holds of its fetches.

    ``partitions`` are those the broker acknowledged in the session, at the offsets last sent.
    ``id`` 0 means no session: the next fetch is a full one (epoch 0), which asks the broker
    for a new session and closes the one it names.
    """

    __slots__ = ("epoch", "id", "partitions", "supported")

    def __init__(self) -> None:
        """A consumer starts without a session."""
        self.id = _NO_SESSION
        self.epoch = _INITIAL_EPOCH
        self.partitions: dict[Partition, PartitionFetch] = {}
        self.supported = True

    def request_for(
        self, wanted: dict[Partition, PartitionFetch]
    ) -> tuple[int, int, dict[Partition, PartitionFetch], list[Partition]]:
        """Session id, epoch, partitions to send and to forget, for a fetch of ``wanted``."""
        if self.epoch in {_INITIAL_EPOCH, _SESSIONLESS_EPOCH}:
            return self.id, self.epoch, wanted, []
        changed = {tp: fetch for tp, fetch in wanted.items() if self.partitions.get(tp) != fetch}
        forgotten = [tp for tp in self.partitions if tp not in wanted]
        return self.id, self.epoch, changed, forgotten

    def answered(
        self, wanted: dict[Partition, PartitionFetch], error_code: int, session_id: int
    ) -> None:
        """The broker answered a session fetch of ``wanted`` with this top-level outcome."""
        if self.epoch == _SESSIONLESS_EPOCH:  # the session is closed, whatever the answer
            self.reset(forget_id=True)
            return
        if error_code != _NO_ERROR:
            # Session unknown (evicted, broker restarted): ask for a new one. Any other error
            # (e.g. a wrong epoch): a full fetch that closes this session and opens another.
            self.reset(forget_id=error_code == _FETCH_SESSION_ID_NOT_FOUND)
            return
        if self.epoch == _INITIAL_EPOCH:
            self.id = session_id  # 0: the broker keeps no session for us; fetch in full again
            if session_id == _NO_SESSION:
                self.partitions = {}
                return
        self.partitions = dict(wanted)
        self.epoch = 1 if self.epoch == _MAX_EPOCH else self.epoch + 1

    def close(self) -> None:
        """Make the next fetch the one that ends the session (epoch -1, nothing fetched)."""
        self.epoch = _SESSIONLESS_EPOCH
        self.partitions = {}

    def reset(self, *, forget_id: bool = False) -> None:
        """Send the next fetch in full (after a failure the broker's state is not known)."""
        if forget_id:
            self.id = _NO_SESSION
        self.epoch = _INITIAL_EPOCH
        self.partitions = {}


class SessionFetchRequest(FetchRequest):  # type: ignore[misc]  # aiokafka is untyped
    """aiokafka's fetch request, sent as the difference from its broker's ``FetchSession``.

    ``topics`` is the whole request (aiokafka's response handling reads each partition's fetch
    offset from it); what ``build`` encodes is the session's difference, on Fetch v7+.
    """

    def __init__(self, request: FetchRequest, session: FetchSession) -> None:
        """The same fetch as ``request``, for the broker whose session is ``session``."""
        super().__init__(
            request._max_wait_ms,  # noqa: SLF001  # a copy of aiokafka's own request
            request._min_bytes,  # noqa: SLF001
            request._max_bytes,  # noqa: SLF001
            request._isolation_level,  # noqa: SLF001
            request.topics,
            rack_id=request._rack_id,  # noqa: SLF001
        )
        self.session = session
        self.wanted: dict[Partition, PartitionFetch] = {
            (topic, partition): (offset, max_bytes)
            for topic, partitions in request.topics
            for partition, offset, max_bytes in partitions
        }
        self.in_session = False  # whether the bytes sent were a session fetch (set by build)

    def build(self, request_struct_class: type[Any]) -> Any:
        """The request at the negotiated version: a session fetch from v7, aiokafka's below."""
        version = request_struct_class.API_VERSION
        if version < _FIRST_SESSION_VERSION or not self.session.supported:
            self.session.supported = False
            return super().build(request_struct_class)
        self.in_session = True
        session_id, epoch, changed, forgotten = self.session.request_for(self.wanted)
        args: list[object] = [
            -1,  # replica id: a consumer
            self._max_wait_ms,
            self._min_bytes,
            self._max_bytes,
            self._isolation_level,
            session_id,
            epoch,
            _by_topic(
                (tp, _partition_fetch(tp[1], fetch, version)) for tp, fetch in changed.items()
            ),
            _by_topic((tp, tp[1]) for tp in forgotten),
        ]
        if version >= _RACK_VERSION:
            args.append(self._rack_id)
        return request_struct_class(*args)


def _partition_fetch(partition: int, fetch: PartitionFetch, version: int) -> tuple[int, ...]:
    offset, max_bytes = fetch
    if version >= _LEADER_EPOCH_VERSION:
        return (partition, -1, offset, -1, max_bytes)  # leader epoch, log start: unknown
    return (partition, offset, -1, max_bytes)


def _by_topic(items: Iterable[tuple[Partition, Any]]) -> list[tuple[str, list[Any]]]:
    grouped: dict[str, list[Any]] = {}
    for tp, item in items:
        grouped.setdefault(tp[0], []).append(item)
    return list(grouped.items())


class _SessionClient:
    """The consumer's client as the fetcher sees it: session fetches keep their session."""

    def __init__(self, client: Any) -> None:
        self._client = client
        # Read for every partition of every fetch; aiokafka's client keeps one for its life.
        self.cluster = client.cluster

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    async def send(self, node_id: int, request: Any, **kwargs: Any) -> Any:
        if not isinstance(request, SessionFetchRequest):
            return await self._client.send(node_id, request, **kwargs)
        try:
            response = await self._client.send(node_id, request, **kwargs)
        except BaseException:
            # Sent or not, answered or cancelled: the broker's epoch is not known.
            request.session.reset()
            raise
        if request.in_session:
            request.session.answered(request.wanted, response.error_code, response.session_id)
        return response


def _forget_departed(sessions: dict[int, FetchSession], cluster: Any) -> None:
    """Drop the sessions of brokers gone from ``cluster``'s metadata (their state went too)."""
    for node_id in [node_id for node_id in sessions if cluster.broker_metadata(node_id) is None]:
        del sessions[node_id]


class _SessionFetcher(_fetcher.Fetcher):  # type: ignore[misc]  # aiokafka is untyped
    """aiokafka's fetcher, with a fetch session per broker for consumers marked to use them."""

    def __init__(self, client: Any, subscriptions: Any, **kwargs: Any) -> None:
        super().__init__(client, subscriptions, **kwargs)
        self._sessions: defaultdict[int, FetchSession] | None = None  # by broker node id
        if kwargs.get("key_deserializer") is lazy_headers:
            self._sessions = defaultdict(FetchSession)
            self._client = _SessionClient(client)  # the fetch routine reads it once it runs
            client.cluster.add_listener(self._metadata_updated)

    def _metadata_updated(self, cluster: Any) -> None:
        # A broker that left the cluster (scaled in, replaced) keeps no session for us; one
        # that comes back under its id starts a new session at the next fetch.
        if self._sessions:
            _forget_departed(self._sessions, cluster)

    def _get_actions_per_node(self, assignment: Any) -> tuple[Any, ...]:
        requests, *rest = super()._get_actions_per_node(assignment)
        if self._sessions is not None:
            requests = [
                (node_id, SessionFetchRequest(request, self._sessions[node_id]))
                for node_id, request in requests
            ]
        return (requests, *rest)

    async def close(self) -> None:
        """Stop fetching, then end each broker's session so its slot is free at once."""
        await super().close()
        if self._sessions is None:
            return
        self._client.cluster.remove_listener(self._metadata_updated)
        if not self._sessions:
            return
        sessions, self._sessions = self._sessions, defaultdict(FetchSession)
        await asyncio.gather(
            *(
                self._end(node_id, session)
                for node_id, session in sessions.items()
                if session.id != _NO_SESSION and session.supported
            )
        )

    async def _end(self, node_id: int, session: FetchSession) -> None:
        # Best effort within a second: a broker that is gone has no session to free, and a
        # session left open is evicted by the broker once idle (two minutes by default).
        session.close()
        request = SessionFetchRequest(
            FetchRequest(0, 0, self._fetch_max_bytes, self._isolation_level, []), session
        )
        with contextlib.suppress(KafkaError, OSError, TimeoutError):
            await asyncio.wait_for(self._client.send(node_id, request), _CLOSE_TIMEOUT_S)


def unavailable() -> str | None:
    """Why fetch sessions cannot be installed (the gate, aiokafka's consumer), or None."""
    if not (state := gate()).open:
        return state.reason
    if _consumer.Fetcher is _SessionFetcher:
        return None
    if _consumer.Fetcher is not _fetcher.Fetcher or not hasattr(
        _fetcher.Fetcher, "_get_actions_per_node"
    ):
        return "aiokafka's consumer changed: consumers fetch without sessions"
    return None


def install_fetch_sessions() -> bool:
    """Give consumers marked with ``lazy_headers`` fetch sessions (process-wide).

    Idempotent. Returns False, and leaves aiokafka as it is, with the gate closed or when its
    consumer no longer makes its fetcher from the name this replaces (then with a warning).
    """
    if (reason := unavailable()) is not None:
        if gate().open:
            warnings.warn(reason, RuntimeWarning, stacklevel=2)
        return False
    _consumer.Fetcher = _SessionFetcher
    return True
