"""Fetch sessions (KIP-227), client half: what each fetch sends and how answers move the session."""

from __future__ import annotations

import io
from typing import Any

import pytest
from aiokafka.cluster import ClusterMetadata
from aiokafka.protocol.fetch import (
    FetchRequest,
    FetchRequest_v4,
    FetchRequest_v8,
    FetchRequest_v11,
)
from aiokafka.protocol.metadata import MetadataResponse_v0
from aiokafka.structs import TopicPartition

from agentflux.kafka._gate._fetch_sessions import (
    FetchSession,
    SessionFetchRequest,
    _forget_departed,
    _SessionClient,
    install_fetch_sessions,
)

A0, A1, B0 = TopicPartition("a", 0), TopicPartition("a", 1), TopicPartition("b", 0)
_SESSION_ID_NOT_FOUND, _INVALID_EPOCH = 70, 71


def _request(wanted: dict[TopicPartition, tuple[int, int]]) -> FetchRequest:
    by_topic: dict[str, list[tuple[int, int, int]]] = {}
    for tp, (offset, max_bytes) in wanted.items():
        by_topic.setdefault(tp.topic, []).append((tp.partition, offset, max_bytes))
    return FetchRequest(500, 1, 52428800, 0, list(by_topic.items()), rack_id="r1")


def _open(session: FetchSession, wanted: dict[TopicPartition, tuple[int, int]]) -> None:
    """Answer a full fetch of ``wanted`` with session 42."""
    assert session.request_for(wanted)[:2] == (0, 0)
    session.answered(wanted, 0, 42)


def _sent(request: SessionFetchRequest, struct_class: Any) -> Any:
    """The request as the broker reads it: built at that version, encoded and decoded."""
    return struct_class.decode(io.BytesIO(request.build(struct_class).encode()))


def test_first_fetch_is_full_and_asks_for_a_session() -> None:
    """Without a session the request names every partition, session 0 at epoch 0."""
    wanted = {A0: (5, 100), B0: (7, 100)}
    assert FetchSession().request_for(wanted) == (0, 0, wanted, [])


def test_next_fetch_names_only_changed_and_forgotten_partitions() -> None:
    """In a session a fetch carries partitions whose offset moved, new ones, and ones dropped."""
    session = FetchSession()
    _open(session, {A0: (5, 100), A1: (9, 100), B0: (7, 100)})
    session_id, epoch, changed, forgotten = session.request_for(
        {A0: (6, 100), A1: (9, 100), TopicPartition("c", 3): (0, 100)}
    )
    assert (session_id, epoch) == (42, 1)
    assert changed == {A0: (6, 100), TopicPartition("c", 3): (0, 100)}
    assert forgotten == [B0]


def test_each_answer_moves_the_epoch_and_the_broker_view() -> None:
    """An answered fetch becomes what the broker holds; the epoch counts answers."""
    session = FetchSession()
    _open(session, {A0: (5, 100)})
    session.answered({A0: (8, 100)}, 0, 42)
    assert session.request_for({A0: (8, 100)}) == (42, 2, {}, [])
    assert session.partitions == {A0: (8, 100)}


def test_epoch_wraps_to_one() -> None:
    """After the largest int32 epoch the next one is 1 (0 would open a new session)."""
    session = FetchSession()
    _open(session, {A0: (5, 100)})
    session.epoch = 2**31 - 1
    session.answered({A0: (5, 100)}, 0, 42)
    assert session.epoch == 1


def test_broker_without_room_for_a_session_gets_full_fetches() -> None:
    """A full fetch answered with session 0 leaves the next fetch full as well."""
    session = FetchSession()
    wanted = {A0: (5, 100)}
    session.answered(wanted, 0, 0)
    assert session.request_for(wanted) == (0, 0, wanted, [])


@pytest.mark.parametrize(
    ("error_code", "next_id"),
    [(_SESSION_ID_NOT_FOUND, 0), (_INVALID_EPOCH, 42)],
)
def test_session_errors_fall_back_to_a_full_fetch(error_code: int, next_id: int) -> None:
    """Unknown session: ask for a new one; wrong epoch: a full fetch closing the old one."""
    session = FetchSession()
    wanted = {A0: (5, 100), B0: (7, 100)}
    _open(session, wanted)
    session.answered(wanted, error_code, 0)
    assert session.request_for(wanted) == (next_id, 0, wanted, [])
    assert session.partitions == {}


def test_request_keeps_every_partition_but_sends_the_difference() -> None:
    """``topics`` is the whole fetch (aiokafka reads offsets from it); v11 bytes the difference."""
    session = FetchSession()
    _open(session, {A0: (5, 100), A1: (9, 100), B0: (7, 100)})
    wanted = {A0: (6, 100), A1: (9, 100)}
    request = SessionFetchRequest(_request(wanted), session)
    assert request.topics == [("a", [(0, 6, 100), (1, 9, 100)])]
    sent = _sent(request, FetchRequest_v11)
    assert (sent.session_id, sent.session_epoch, sent.rack_id) == (42, 1, "r1")
    assert sent.topics == [("a", [(0, -1, 6, -1, 100)])]  # no leader epoch, no log start
    assert sent.forgotten_topics_data == [("b", [0])]
    assert (sent.max_wait_time, sent.min_bytes, sent.max_bytes) == (500, 1, 52428800)
    assert request.in_session


def test_request_before_v9_has_no_leader_epoch() -> None:
    """Fetch v7 and v8 partitions are (partition, offset, log start, max bytes)."""
    request = SessionFetchRequest(_request({A0: (6, 100)}), FetchSession())
    sent = _sent(request, FetchRequest_v8)
    assert sent.topics == [("a", [(0, 6, -1, 100)])]
    assert (sent.session_id, sent.session_epoch) == (0, 0)


def test_broker_before_v7_gets_aiokafka_requests_for_good() -> None:
    """Below v7 there are no sessions: aiokafka's own request, and the session is given up."""
    session = FetchSession()
    wanted = {A0: (6, 100), B0: (1, 100)}
    request = SessionFetchRequest(_request(wanted), session)
    sent = _sent(request, FetchRequest_v4)
    assert sorted(sent.topics) == [("a", [(0, 6, 100)]), ("b", [(0, 1, 100)])]
    assert not request.in_session
    assert not session.supported
    later = SessionFetchRequest(_request(wanted), session)
    assert _sent(later, FetchRequest_v11).session_epoch == -1  # aiokafka's: outside any session
    assert not later.in_session


class _Answering:
    """An aiokafka client stand-in that answers each send with the next of ``answers``."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.cluster = "the cluster"

    async def send(self, node_id: int, request: Any, **_: Any) -> Any:
        del node_id
        if isinstance(request, SessionFetchRequest):
            request.build(FetchRequest_v11)  # as the connection does when it sends
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer


class _Response:
    def __init__(self, error_code: int, session_id: int) -> None:
        self.error_code, self.session_id = error_code, session_id


async def test_client_moves_the_session_with_each_answer() -> None:
    """An answered session fetch opens the session; other requests and attributes pass through."""
    session = FetchSession()
    client = _SessionClient(_Answering(_Response(0, 42), "plain answer"))
    wanted = {A0: (5, 100)}
    await client.send(1, SessionFetchRequest(_request(wanted), session))
    assert (session.id, session.epoch, session.partitions) == (42, 1, wanted)
    assert await client.send(1, object()) == "plain answer"
    assert client.cluster == "the cluster"


@pytest.mark.parametrize("failure", [TimeoutError("no answer"), ConnectionError("gone")])
async def test_client_failure_starts_over_with_a_full_fetch(failure: Exception) -> None:
    """A fetch that failed leaves the broker's epoch unknown: the next one is full."""
    session = FetchSession()
    wanted = {A0: (5, 100)}
    _open(session, wanted)
    client = _SessionClient(_Answering(failure))
    with pytest.raises(type(failure)):
        await client.send(1, SessionFetchRequest(_request(wanted), session))
    assert session.request_for(wanted) == (42, 0, wanted, [])


def test_install_is_idempotent() -> None:
    """Installing twice keeps the one session fetcher."""
    assert install_fetch_sessions()
    assert install_fetch_sessions()


def test_closing_fetch_ends_the_session() -> None:
    """A closed session's next fetch is epoch -1 with nothing in it; after it, no session."""
    session = FetchSession()
    _open(session, {A0: (5, 100)})
    session.close()
    assert session.request_for({}) == (42, -1, {}, [])
    session.answered({}, 0, 0)
    assert (session.id, session.epoch, session.partitions) == (0, 0, {})


def test_sessions_of_brokers_gone_from_the_metadata_are_dropped() -> None:
    """A broker that left the cluster's metadata takes its session along; the others stay."""
    cluster = ClusterMetadata()
    cluster.update_metadata(MetadataResponse_v0([(1, "h", 1), (2, "h", 2)], []))
    sessions = {1: FetchSession(), 2: FetchSession()}
    _forget_departed(sessions, cluster)
    assert set(sessions) == {1, 2}
    cluster.update_metadata(MetadataResponse_v0([(2, "h", 2)], []))
    _forget_departed(sessions, cluster)
    assert set(sessions) == {2}
