"""The secured local cluster: real SASL_SSL, SCRAM-SHA-512, TLS and ACLs applied from topics.yaml.

One secured cluster for the module (``agentflux up --secure``), its ACLs applied from the
shipped teams plus two test teams (billing, safety), users created through the admin API.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import ssl
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml
from _cli import run_agentflux
from _clusters import secured_cluster, security_env, settings_as, teams_declaration
from _samples import sample_events
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from agentflux._acls import (
    AclBinding,
    ScramUser,
    add_user,
    apply_acls,
    list_users,
    remove_user,
)
from agentflux._local._ports import free_ports
from agentflux._topics import apply_topics
from agentflux.consumers import GroupRunner
from agentflux.consumers._redrive import read_dead_letters
from agentflux.kafka import (
    AgentfluxSettings,
    AuthenticationError,
    AuthorizationError,
    TlsVerificationError,
    access_refused,
    connection_kwargs,
    stop_consumer,
    topic_partitions,
)
from agentflux.kafka._gate._security import (
    UnknownScramUserError,
    create_acls,
    delete_acls,
    describe_acls,
)
from agentflux.producers import EventPublisher, PublishDeniedError
from agentflux.schemas import BaseEvent, load_topics

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from agentflux._local import LocalCluster

pytestmark = [pytest.mark.broker]

_USERS = ("agent-runtime", "billing", "safety")
_HANG_GUARD_S = 120  # a bound on waiting, so a regression fails instead of hanging the suite


@dataclass
class Secured:
    """A running secured cluster, its teams' declaration and its users' passwords."""

    local: LocalCluster
    admin: AgentfluxSettings
    declaration: Path
    passwords: dict[str, str]

    def settings_of(self, user: str) -> AgentfluxSettings:
        """Settings that log in as ``user`` with its real password."""
        return settings_as(self.admin, user, self.passwords[user]).model_copy(
            update={"auto_register_schemas": True}
        )


async def _secure_setup(local: LocalCluster, folder: Path) -> Secured:
    admin = local.settings().model_copy(update={"auto_register_schemas": True})
    declaration = teams_declaration(folder)
    loaded = load_topics(declaration)
    await apply_topics(admin, loaded.topics)
    await apply_acls(admin, loaded)
    passwords = {user: secrets.token_urlsafe(16) for user in _USERS}
    for user, password in passwords.items():
        await add_user(admin, user, password)
    return Secured(local, admin, declaration, passwords)


@pytest.fixture(scope="module")
async def secured(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Secured]:
    """One secured 1-node cluster for the module, topics, ACLs and users in place."""
    with secured_cluster(1) as local:
        yield await _secure_setup(local, tmp_path_factory.mktemp("teams"))


def _agent_events(count: int) -> list[BaseEvent]:
    """``count`` distinct events of agent.events, over a few sessions."""
    templates = [e for e in sample_events() if e.TOPIC == "agent.events"]
    return [
        templates[i % len(templates)].model_copy(
            update={"event_id": uuid.uuid4(), "session_id": f"session-{i % 5}"}
        )
        for i in range(count)
    ]


@contextlib.asynccontextmanager
async def _running(runner: GroupRunner) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(runner.run())
    try:
        yield task
    finally:
        runner.stop()
        with contextlib.suppress(Exception):
            await task


async def _consume_all(
    settings: AgentfluxSettings, group: str, expected: set[uuid.UUID]
) -> set[uuid.UUID]:
    """What ``group`` handles of agent.events until it has seen every id in ``expected``."""
    seen: set[uuid.UUID] = set()

    async def handle(event: BaseEvent) -> None:
        seen.add(event.event_id)

    models = {type(e) for e in sample_events() if e.TOPIC == "agent.events"}
    topic = settings.topic_prefix + "agent.events"
    runner = GroupRunner(group, [topic], settings=settings, handlers=dict.fromkeys(models, handle))
    async with _running(runner) as task, asyncio.timeout(_HANG_GUARD_S):
        while not expected <= seen:
            if task.done():
                task.result()  # its failure, if it stopped
            await asyncio.sleep(0.1)  # poll interval over the handler's set
    return seen


async def test_runtime_publishes_and_a_team_consumes_under_its_prefix(secured: Secured) -> None:
    """The runtime principal publishes; team billing consumes the shared topic as billing.*."""
    events = _agent_events(12)
    async with EventPublisher(secured.settings_of("agent-runtime")) as publisher:
        for event in events:
            await publisher.publish(event)
    expected = {e.event_id for e in events}
    seen = await _consume_all(secured.settings_of("billing"), "billing.usage", expected)
    assert expected <= seen


async def test_a_team_is_refused_writing_a_shared_topic(secured: Secured) -> None:
    """Billing publishing to agent.events is denied: principal, topic and WRITE are named."""
    async with EventPublisher(secured.settings_of("billing")) as publisher:
        with pytest.raises(PublishDeniedError) as refused:
            await publisher.publish(_agent_events(1)[0])
    assert isinstance(refused.value, AuthorizationError)
    assert (refused.value.principal, refused.value.operation) == ("User:billing", "WRITE")
    assert (refused.value.resource_type, refused.value.resource_name) == ("topic", "agent.events")
    assert "User:billing" in str(refused.value)


async def test_a_team_is_refused_another_teams_group_id(secured: Secured) -> None:
    """Billing joining a group under safety's prefix is denied, naming the group."""
    runner = GroupRunner(
        "safety.review", ["tool.events"], settings=secured.settings_of("billing"), handlers={}
    )
    with pytest.raises(AuthorizationError) as refused:
        async with asyncio.timeout(_HANG_GUARD_S):
            await runner.run()
    assert refused.value.principal == "User:billing"
    assert (refused.value.resource_type, refused.value.resource_name) == ("group", "safety.review")
    assert refused.value.operation == "READ"


async def test_a_team_is_refused_another_teams_dead_letters(secured: Secured) -> None:
    """Billing reading safety's dead-letter topic is denied, not shown as empty."""
    dlq = "agentflux.dlq.safety.review"
    await apply_topics(
        secured.admin,
        [load_topics().dead_letter_spec("safety.review", load_topics().topics[0])],
    )
    with pytest.raises(AuthorizationError) as refused:
        await read_dead_letters(secured.settings_of("billing"), dlq, "billing.usage")
    assert refused.value.principal == "User:billing"
    assert (refused.value.resource_type, refused.value.resource_name) == ("topic", dlq)
    # Its owner reads it (empty, but allowed).
    assert await read_dead_letters(secured.settings_of("safety"), dlq, "safety.review") == []


async def test_a_wrong_password_fails_at_once_with_a_clear_error(secured: Secured) -> None:
    """A wrong password is an AuthenticationError on start, not retries until a timeout."""
    wrong = settings_as(secured.admin, "billing")  # a random password
    # A long connect timeout: the failure must come from the refused login, not from it.
    publisher = EventPublisher(wrong, connect_timeout_s=3600)
    with pytest.raises(AuthenticationError) as refused:
        async with asyncio.timeout(_HANG_GUARD_S):
            await publisher.start()
    assert refused.value.principal == "User:billing"
    assert refused.value.mechanism == "SCRAM-SHA-512"
    assert "AGENTFLUX_SASL_PASSWORD" in str(refused.value)
    runner = GroupRunner("billing.usage", ["agent.events"], settings=wrong, handlers={})
    with pytest.raises(AuthenticationError):
        async with asyncio.timeout(_HANG_GUARD_S):
            await runner.run()


@contextlib.asynccontextmanager
async def _tls_server(certificate: Path) -> AsyncIterator[int]:
    """A TLS server on 127.0.0.1 presenting ``certificate``; its port."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificate)

    async def close_at_once(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    port = free_ports(1)[0]
    server = await asyncio.start_server(close_at_once, "127.0.0.1", port, ssl=context)
    try:
        yield port
    finally:
        server.close()
        await server.wait_closed()


async def test_a_certificate_for_another_host_is_refused(secured: Secured, tmp_path: Path) -> None:
    """A server at 127.0.0.1 with the cluster CA's certificate for another host is refused."""
    wrong_host = secured.local.security.authority.issue(
        tmp_path / "wrong-host.pem", "wrong-host", ("wrong-host.invalid",)
    )
    async with _tls_server(wrong_host) as port:
        settings = secured.settings_of("billing").model_copy(
            update={"bootstrap_servers": f"127.0.0.1:{port}"}
        )
        publisher = EventPublisher(settings, connect_timeout_s=3600)
        with pytest.raises(TlsVerificationError) as refused:
            async with asyncio.timeout(_HANG_GUARD_S):
                await publisher.start()
    assert refused.value.server == f"127.0.0.1:{port}"
    assert "127.0.0.1" in str(refused.value)


async def _refusals(settings: AgentfluxSettings, rounds: int) -> int:
    """Billing's forbidden attempts, ``rounds`` times each: how many were refused."""
    refused = 0
    async with EventPublisher(settings) as publisher:
        for _ in range(rounds):
            with contextlib.suppress(PublishDeniedError):
                await publisher.publish(_agent_events(1)[0])
                continue
            refused += 1
            other = GroupRunner("safety.review", ["tool.events"], settings=settings, handlers={})
            with contextlib.suppress(AuthorizationError):
                await other.run()
                continue
            refused += 1
    return refused


async def topic_partitions_of(settings: AgentfluxSettings, topic: str) -> set[int]:
    """The partitions of ``topic`` as ``settings``' principal sees them."""
    consumer = AIOKafkaConsumer(**connection_kwargs(settings))
    await consumer.start()
    try:
        return await topic_partitions(settings, consumer, topic)
    finally:
        await stop_consumer(consumer)


async def _offsets_of(settings: AgentfluxSettings, topic: str) -> dict[int, int]:
    consumer = AIOKafkaConsumer(**connection_kwargs(settings))
    await consumer.start()
    try:
        partitions = await topic_partitions(settings, consumer, topic)
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in partitions])
        return {tp.partition: offset for tp, offset in ends.items()}
    finally:
        await stop_consumer(consumer)


async def test_nothing_the_runtime_publishes_is_lost_while_a_team_is_refused(
    secured: Secured,
) -> None:
    """Runtime events published during billing's refused attempts all arrive, none added."""
    before = await _offsets_of(secured.admin, "agent.events")
    events = _agent_events(60)
    acknowledged: list[tuple[int, int]] = []

    async def publish_all() -> None:
        async with EventPublisher(secured.settings_of("agent-runtime")) as publisher:
            for event in events:
                result = await publisher.publish(event)
                acknowledged.append((result.partition, result.offset))

    async with asyncio.timeout(_HANG_GUARD_S * 2):
        refused, _ = await asyncio.gather(
            _refusals(secured.settings_of("billing"), rounds=5), publish_all()
        )
    assert refused == 10  # every forbidden attempt was refused, none let through
    assert len(acknowledged) == len(events)
    after = await _offsets_of(secured.admin, "agent.events")
    # Exactly the runtime's events were appended: none lost, none from billing.
    assert sum(after[p] - before.get(p, 0) for p in after) == len(events)
    expected = {e.event_id for e in events}
    seen = await _consume_all(secured.settings_of("billing"), "billing.count", expected)
    assert expected <= seen


async def test_acls_apply_is_idempotent_reports_drift_and_prunes_only_when_asked(
    secured: Secured,
) -> None:
    """A second apply changes nothing; drift is removed; another principal's ACL needs --prune."""
    loaded = load_topics(secured.declaration)
    assert (await apply_acls(secured.admin, loaded, dry_run=True)).in_sync
    drift = AclBinding("User:billing", "TOPIC", "hitl.events", "LITERAL", "READ")
    stranger = AclBinding("User:stranger", "TOPIC", "agent.events", "LITERAL", "READ")
    from aiokafka.admin import AIOKafkaAdminClient  # noqa: PLC0415  # only here

    admin = AIOKafkaAdminClient(**connection_kwargs(secured.admin))
    await admin.start()
    try:
        await create_acls(admin, [drift.to_entry(), stranger.to_entry()])
    finally:
        await admin.close()
    planned = await apply_acls(secured.admin, loaded, dry_run=True)
    assert (planned.create, planned.drift, planned.unmanaged) == ([], [drift], [stranger])
    applied = await apply_acls(secured.admin, loaded)
    assert applied.delete == [drift]
    kept = await apply_acls(secured.admin, loaded, dry_run=True)
    assert (kept.drift, kept.unmanaged) == ([], [stranger])
    pruned = await apply_acls(secured.admin, loaded, prune=True)
    assert pruned.delete == [stranger]
    assert (await apply_acls(secured.admin, loaded, prune=True, dry_run=True)).in_sync


def _one_team_declaration(folder: Path, team: dict[str, object]) -> Path:
    """The shipped topics with ``team`` as the only team: no other principal is managed."""
    declared = yaml.safe_load(teams_declaration(folder).read_text())
    declared["teams"] = [team]
    path = folder / "one-team.yaml"
    path.write_text(yaml.safe_dump(declared, sort_keys=False))
    return path


@contextlib.asynccontextmanager
async def _acls_removed_after(settings: AgentfluxSettings, principal: str) -> AsyncIterator[None]:
    """Delete ``principal``'s ACLs on the way out: the module's other tests see none of them."""
    try:
        yield
    finally:
        from aiokafka.admin import AIOKafkaAdminClient  # noqa: PLC0415  # only here

        admin = AIOKafkaAdminClient(**connection_kwargs(settings))
        await admin.start()
        try:
            entries = await describe_acls(admin)
            await delete_acls(admin, [entry for entry in entries if entry[3] == principal])
        finally:
            await admin.close()


async def test_topics_and_acls_apply_behind_the_topic_prefix(
    secured: Secured, tmp_path: Path
) -> None:
    """With AGENTFLUX_TOPIC_PREFIX, both commands create and grant the topics the clients use."""
    prefix = f"p{uuid.uuid4().hex[:6]}."
    user = f"pre-{uuid.uuid4().hex[:6]}"
    team = {
        "name": user,
        "principal": f"User:{user}",
        "reads": ["agent.events"],
        "group_prefix": f"{user}.",
        "writes": ["tool.events"],
    }
    declaration = str(_one_team_declaration(tmp_path, team))
    env = _cli_env(secured.admin) | {"AGENTFLUX_TOPIC_PREFIX": prefix}
    topics = await run_agentflux("topics", "apply", "--file", declaration, env=env)
    assert topics.code == 0, topics.stderr
    assert f"create {prefix}agent.events" in topics.stdout
    async with _acls_removed_after(secured.admin, f"User:{user}"):
        await _prefixed_team_works(secured, env, declaration, prefix, user)


async def _prefixed_team_works(
    secured: Secured, env: dict[str, str], declaration: str, prefix: str, user: str
) -> None:
    """ACLs applied behind ``prefix`` let ``user`` use the prefixed topics, not the plain ones."""
    acls = await run_agentflux("acls", "apply", "--file", declaration, env=env)
    assert acls.code == 0, acls.stderr
    for granted in (
        f"READ topic {prefix}agent.events",
        f"WRITE topic {prefix}tool.events",
        f"READ group {user}.*",  # group ids are not named from topics: no prefix
        f"WRITE topic agentflux.dlq.{user}.*",  # nor are dead-letter topics
    ):
        assert f"create  ALLOW User:{user} {granted}" in acls.stdout
    again = await run_agentflux("acls", "apply", "--dry-run", "--file", declaration, env=env)
    assert "no change" in again.stdout, again.stdout + again.stderr
    password = secrets.token_urlsafe(16)
    await add_user(secured.admin, user, password)
    member = settings_as(secured.admin, user, password).model_copy(
        update={"topic_prefix": prefix, "auto_register_schemas": True}
    )
    # The publisher and a group behind the prefix reach exactly the granted topics.
    events = _agent_events(6)
    async with EventPublisher(secured.admin.model_copy(update={"topic_prefix": prefix})) as runtime:
        for event in events:
            await runtime.publish(event)
    expected = {e.event_id for e in events}
    assert expected <= await _consume_all(member, f"{user}.reader", expected)
    tool_event = next(e for e in sample_events() if e.TOPIC == "tool.events")
    async with EventPublisher(member) as publisher:
        written = await publisher.publish(tool_event)
    assert written.topic == f"{prefix}tool.events"
    # The unprefixed topic is not granted.
    unprefixed = member.model_copy(update={"topic_prefix": ""})
    runner = GroupRunner(f"{user}.plain", ["agent.events"], settings=unprefixed, handlers={})
    with pytest.raises(AuthorizationError) as refused:
        async with asyncio.timeout(_HANG_GUARD_S):
            await runner.run()
    assert (refused.value.resource_type, refused.value.resource_name) == ("topic", "agent.events")


async def _agentflux_with_stdin(env: dict[str, str], stdin: bytes, *args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from agentflux.cli import main; main()",
        *args,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    async with asyncio.timeout(_HANG_GUARD_S):
        out, _ = await process.communicate(stdin)
    assert process.returncode is not None
    return process.returncode, out.decode()


def _cli_env(settings: AgentfluxSettings) -> dict[str, str]:
    import os  # noqa: PLC0415  # only the command line tests

    return {
        **os.environ,
        "AGENTFLUX_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "AGENTFLUX_REGISTRY_URL": settings.registry_url,
        **security_env(settings),
        "COLUMNS": "200",
    }


async def test_the_commands_add_a_user_and_apply_acls(secured: Secured) -> None:
    """`users add` takes the password on stdin; `acls apply --dry-run` prints the plan."""
    env = _cli_env(secured.admin)
    password = secrets.token_urlsafe(16)
    code, out = await _agentflux_with_stdin(env, f"{password}\n".encode(), "users", "add", "carol")
    assert code == 0, out
    assert "User:carol" in out
    carol = settings_as(secured.admin, "carol", password)
    # Carol logs in; with no ACL at all, the publisher's start is refused by authorization.
    with pytest.raises(PublishDeniedError) as refused:
        await EventPublisher(carol).start()
    assert (refused.value.principal, refused.value.resource_type) == ("User:carol", "cluster")
    result = await run_agentflux(
        "acls", "apply", "--dry-run", "--file", str(secured.declaration), env=env
    )
    assert result.code == 0, result.stderr
    assert "no change" in result.stdout
    denied = await run_agentflux(
        "acls", "apply", "--file", str(secured.declaration), env=_cli_env(carol)
    )
    assert denied.code != 0
    assert "error" in denied.stderr


async def test_users_are_listed_and_removed(secured: Secured) -> None:
    """`users list` shows a user; `users remove` ends its logins; unknown or self is refused."""
    name = f"gone-{uuid.uuid4().hex[:6]}"
    password = secrets.token_urlsafe(16)
    await add_user(secured.admin, name, password)
    user = settings_as(secured.admin, name, password)
    assert await access_refused(user) is None  # it logs in
    env = _cli_env(secured.admin)
    listed = await run_agentflux("users", "list", env=env)
    assert listed.code == 0, listed.stderr
    assert f"{name}  User:{name}  SCRAM-SHA-512 (8192 iterations)" in listed.stdout.splitlines()
    assert ScramUser(name, (("SCRAM-SHA-512", 8192),)) in await list_users(secured.admin)
    removed = await run_agentflux("users", "remove", name, env=env)
    assert removed.code == 0, removed.stderr
    assert f"user {name} removed (SCRAM-SHA-512)" in removed.stdout
    assert name not in {u.name for u in await list_users(secured.admin)}
    refused = await access_refused(user)
    assert isinstance(refused, AuthenticationError)
    assert refused.principal == f"User:{name}"
    again = await run_agentflux("users", "remove", name, env=env)
    assert again.code == 4, again.stdout + again.stderr
    assert f"user {name} has no SCRAM credentials" in again.stderr
    with pytest.raises(UnknownScramUserError):
        await remove_user(secured.admin, name)
    admin_name = secured.admin.sasl_username
    assert admin_name is not None
    itself = await run_agentflux("users", "remove", admin_name, env=env)
    assert itself.code == 1
    assert "the user this command logs in as" in itself.stderr
    assert admin_name in {u.name for u in await list_users(secured.admin)}


async def test_a_team_may_not_list_or_remove_users(secured: Secured) -> None:
    """Billing listing or removing users is denied on the cluster, naming billing."""
    with pytest.raises(AuthorizationError) as listing:
        await list_users(secured.settings_of("billing"))
    assert (listing.value.principal, listing.value.resource_type) == ("User:billing", "cluster")
    assert listing.value.operation == "DESCRIBE"
    with pytest.raises(AuthorizationError) as removing:
        await remove_user(secured.settings_of("billing"), "safety")
    assert removing.value.principal == "User:billing"
    assert removing.value.operation == "ALTER"
    denied = await run_agentflux("users", "list", env=_cli_env(secured.settings_of("billing")))
    assert denied.code == 1
    assert "User:billing is not allowed to DESCRIBE cluster" in denied.stderr
    assert "safety" in {u.name for u in await list_users(secured.admin)}


@pytest.fixture(scope="module")
def secured3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalCluster, Path]]:
    """A secured 3-node cluster of its own (started once, for the one test that needs it)."""
    with secured_cluster(3) as local:
        yield local, tmp_path_factory.mktemp("teams3")


@pytest.mark.cluster3
@pytest.mark.slow
async def test_three_secured_nodes_publish_consume_and_refuse(
    secured3: tuple[LocalCluster, Path],
) -> None:
    """On 3 secured nodes the runtime publishes, billing consumes, billing's write is refused."""
    local, folder = secured3
    setup = await _secure_setup(local, folder)
    events = _agent_events(9)
    async with EventPublisher(setup.settings_of("agent-runtime")) as publisher:
        for event in events:
            await publisher.publish(event)
    expected = {e.event_id for e in events}
    assert expected <= await _consume_all(setup.settings_of("billing"), "billing.n3", expected)
    async with EventPublisher(setup.settings_of("billing")) as publisher:
        with pytest.raises(PublishDeniedError):
            await publisher.publish(events[0])


async def test_up_secure_prints_settings_that_log_in_and_up_without_it_is_refused(
    secured: Secured,
) -> None:
    """`up --secure` on the running cluster starts nothing and prints working settings."""
    env = {**_cli_env(secured.admin), "AGENTFLUX_SASL_PASSWORD": ""}
    state_dir = str(secured.local.state_dir)
    printed = await run_agentflux("up", "--secure", "--state-dir", state_dir, env=env)
    assert printed.code == 0, printed.stderr
    exports = dict(
        line.removeprefix("export ").split("=", 1)
        for line in printed.stdout.splitlines()
        if line.startswith("export AGENTFLUX_")
    )
    assert all(
        line.startswith("export AGENTFLUX_")
        for line in printed.stdout.splitlines()
        if line.startswith("export")
    )  # every line `grep ^export` picks is a setting
    assert secured.passwords["billing"] not in printed.stdout
    password_file = Path(exports["AGENTFLUX_SASL_PASSWORD"].removeprefix('"$(cat ').split(")")[0])
    settings = AgentfluxSettings(
        bootstrap_servers=exports["AGENTFLUX_BOOTSTRAP_SERVERS"],
        registry_url=exports["AGENTFLUX_REGISTRY_URL"],
        security_protocol=exports["AGENTFLUX_SECURITY_PROTOCOL"],  # type: ignore[arg-type]
        sasl_mechanism=exports["AGENTFLUX_SASL_MECHANISM"],  # type: ignore[arg-type]
        sasl_username=exports["AGENTFLUX_SASL_USERNAME"],
        sasl_password=password_file.read_text().strip(),  # type: ignore[arg-type]
        ssl_cafile=Path(exports["AGENTFLUX_SSL_CAFILE"]),
    )
    assert await access_refused(settings) is None
    assert await topic_partitions_of(settings, "agent.events")
    plain = await run_agentflux("up", "--state-dir", state_dir, env=env)
    assert plain.code != 0
    assert "holds a secured cluster" in plain.stderr
