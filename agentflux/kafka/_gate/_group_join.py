"""One JoinGroup request per join, whatever the number of assignors (aio-libs/aiokafka PR 1168).

aiokafka 0.14 sends its JoinGroup request from inside the loop over the consumer's assignors:
with two (the runner offers range, then round robin for members of older versions), a member
joins once naming only range, ignores that answer and joins again naming both. The broker
takes the second request, whose protocols differ, as the member changing its subscription
during the rebalance and starts another one; each member doing the same in turn, a group of
two members or more can rebalance for minutes, reading nothing (seen as generations rising
every 100 ms, the broker logging "Updating metadata for member ... during CompletingRebalance").

Here the request names every assignor's protocol and is sent once: aiokafka's
``CoordinatorGroupRebalance.perform_group_join`` with that one change (the loop ends before the
request), installed process-wide on the aiokafka versions the gate was tested with, since it is
a fix, not an acceleration, and only where aiokafka's method is, to the letter, the one copied
(its sha256). Elsewhere nothing is replaced: ``assignors()`` then offers range alone (one
protocol, one request), and members of an older version, which offer only round robin, cannot
share a group with it (stop them first when upgrading).
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import logging
import warnings
from typing import Any, Final

import aiokafka.errors as kafka_errors
from aiokafka.consumer import group_coordinator as _coordinator
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
from aiokafka.coordinator.protocol import ConsumerProtocol
from aiokafka.protocol.group import JoinGroupRequest

from agentflux.kafka._gate import gate

__all__ = [
    "AIOKAFKA_JOIN_SOURCE_SHA256",
    "assignors",
    "install_one_join_per_rebalance",
    "unavailable",
]

# aiokafka's own code (logger and messages): its log lines stay the ones operators know.
_aiokafka_log = logging.getLogger(_coordinator.__name__)
# sha256 of ``inspect.getsource(CoordinatorGroupRebalance.perform_group_join)`` in the aiokafka
# this copy was made from (0.14.0): a test fails when aiokafka's changes, to look again.
AIOKAFKA_JOIN_SOURCE_SHA256: Final = (
    "ff2c2109b2e9868dc23f43643160ea3d87c40093adc03e5e8c9a45c81844ea75"
)


class _OneJoinRebalance(_coordinator.CoordinatorGroupRebalance):  # type: ignore[misc]  # untyped
    """aiokafka's rebalance, its JoinGroup naming every protocol, sent once."""

    async def perform_group_join(self) -> tuple[str, bytes] | None:  # noqa: C901, PLR0912  # aiokafka's
        """Join the group and return the assignment for the next generation (aiokafka's)."""
        _aiokafka_log.info("(Re-)joining group %s", self.group_id)
        topics = self._subscription.topics
        metadata_list = []
        for assignor in self._assignors:
            metadata = assignor.metadata(topics)
            if not isinstance(metadata, bytes):
                metadata = metadata.encode()
            metadata_list.append((assignor.name, metadata))
        # The one change: the request after the loop, not in it. KIP-394: a first join may be
        # answered "member id required" with the id to join with.
        try_join = True
        while try_join:
            try_join = False
            request = JoinGroupRequest(
                self.group_id,
                self._session_timeout_ms,
                self._rebalance_timeout_ms,
                self._coordinator.member_id,
                self._coordinator._group_instance_id,  # noqa: SLF001  # aiokafka's own
                ConsumerProtocol.PROTOCOL_TYPE,
                metadata_list,
            )
            try:
                response = await self._coordinator._send_req(request)  # noqa: SLF001
            except kafka_errors.KafkaError:
                # A connection error: the coordinator lookup backs off.
                return None
            if not self._subscription.active:
                return None  # the subscription changed: join again with the new one
            error_type = kafka_errors.for_code(response.error_code)
            if error_type is kafka_errors.MemberIdRequired:
                self._coordinator.member_id = response.member_id
                try_join = True

        if error_type is kafka_errors.NoError:
            self._coordinator.member_id = response.member_id
            self._coordinator.generation = response.generation_id
            protocol = response.group_protocol
            _aiokafka_log.info(
                "Joined group '%s' (generation %s) with member_id %s",
                self.group_id,
                response.generation_id,
                response.member_id,
            )
            if response.leader_id == response.member_id:
                _aiokafka_log.info(
                    "Elected group leader -- performing partition assignments using %s",
                    protocol,
                )
                assignment_bytes = await self._on_join_leader(response)
            else:
                assignment_bytes = await self._on_join_follower()
            if assignment_bytes is None:
                return None
            return (protocol, assignment_bytes)
        if error_type is kafka_errors.GroupLoadInProgressError:
            await asyncio.sleep(self._retry_backoff_ms / 1000)  # back off and try again
        elif error_type is kafka_errors.UnknownMemberIdError:
            self._coordinator.reset_generation()  # reset the member id and retry at once
        elif error_type in (
            kafka_errors.GroupCoordinatorNotAvailableError,
            kafka_errors.NotCoordinatorForGroupError,
        ):
            self._coordinator.coordinator_dead()  # the new coordinator is found at once
        elif error_type in (
            kafka_errors.InconsistentGroupProtocolError,
            kafka_errors.InvalidSessionTimeoutError,
            kafka_errors.InvalidGroupIdError,
        ):
            err = error_type()
            _aiokafka_log.error("Attempt to join group failed due to fatal error: %s", err)
            raise err
        elif error_type is kafka_errors.GroupAuthorizationFailedError:
            raise error_type(self.group_id)
        else:
            err = error_type()
            _aiokafka_log.error(
                "Unexpected error in join group '%s' response: %s", self.group_id, err
            )
            raise kafka_errors.KafkaError(repr(err))
        return None


def unavailable() -> str | None:
    """Why the fixed join cannot be installed (the gate, aiokafka's join), or None."""
    if not (state := gate()).tested:
        return state.reason
    installed = _coordinator.CoordinatorGroupRebalance
    if installed is _OneJoinRebalance:
        return None
    try:  # the join this copies, to the letter: a patch release that changed it is not patched
        source = inspect.getsource(installed.perform_group_join)
    except (OSError, TypeError):  # no source shipped (compiled files only)
        return "aiokafka's group join cannot be read: members offer the range assignor alone"
    if hashlib.sha256(source.encode()).hexdigest() != AIOKAFKA_JOIN_SOURCE_SHA256:
        return "aiokafka's group join changed: members offer the range assignor alone"
    return None


def install_one_join_per_rebalance() -> bool:
    """Make every consumer's join one request (process-wide, idempotent); whether it is now.

    Only on the aiokafka versions the gate was tested with (``gate().tested``) whose join is the
    one copied here; a tested version whose join is another says so once, as a warning.
    """
    if (reason := unavailable()) is not None:
        if gate().tested:
            warnings.warn(reason, RuntimeWarning, stacklevel=2)
        return False
    _coordinator.CoordinatorGroupRebalance = _OneJoinRebalance
    return True


def assignors() -> tuple[type[Any], ...]:
    """The assignors a runner offers: range first, round robin too when a join is one request.

    Range: with co-partitioned topics a member gets partition N of every topic it reads, so all
    of a session's events. Round robin second: a group whose members still run an older version
    agrees on it until they are all upgraded; offered only where the join sends it with range
    in one request (see the module's docstring).
    """
    if install_one_join_per_rebalance():
        return (RangePartitionAssignor, RoundRobinPartitionAssignor)
    return (RangePartitionAssignor,)
