"""Issue 13, part 2: the replicated set-up, a primary, a replica and three sentinels, from
`redis-setup/sentinel.sh` (and its alias `./install_redis.sh --sentinel`) and from
harness/sentinel.py.

The script runs in a copy of the project in a temporary folder (its .redis/bin a link to
the project's build), on free ports: never the project's .redis/run, never 6379. Every
assertion is read from Redis (ROLE, INFO, SENTINEL) and from PIDs; waits are on
conditions.
"""

import os
import re
import shutil
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from harness.net import free_port
from harness.redis_server import PROJECT, RedisServer
from harness.sentinel import MASTER_NAME, SENTINEL_COUNT, ReplicatedRedis, in_sync, role
from harness.waiting import wait_until
from tests.redis_ports import answers, client

pytestmark = pytest.mark.slow  # it starts, kills and restarts servers and sentinels

BUILT = PROJECT / ".redis" / "bin"
# redis-setup/sentinel.sh's down-after-milliseconds is 5 s; the sentinels then elect a leader
# and promote: a generous bound, not a timing goal.
SCRIPT_FAILOVER_TIMEOUT = 60


@dataclass(frozen=True)
class SetCommands:
    """How a user starts and stops the set, and how the script's messages name itself."""

    start: tuple[str, ...]
    stop: tuple[str, ...]
    stop_shown: str  # the stop command the script prints
    error_prefix: str


SET_COMMANDS = {
    "alias": SetCommands(
        ("install_redis.sh", "--sentinel"),
        ("install_redis.sh", "--stop"),
        "./install_redis.sh --stop",
        "install_redis.sh: a Redis server not started by this script's --sentinel",
    ),
    "direct": SetCommands(
        ("redis-setup/sentinel.sh",),
        ("redis-setup/sentinel.sh", "--stop"),
        "./redis-setup/sentinel.sh --stop",
        "sentinel.sh: a Redis server not started by this script",
    ),
}


@dataclass
class ScriptSet:
    """The set's script in a project copy, with the ports of a test's own."""

    project: Path
    commands: SetCommands
    primary: int
    replica: int
    sentinels: list[int]

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "REDIS_PORT": str(self.primary),
            "REDIS_REPLICA_PORT": str(self.replica),
            "SENTINEL_PORTS": " ".join(map(str, self.sentinels)),
        }

    def start(self) -> subprocess.CompletedProcess:
        return self.run(*self.commands.start)

    def stop(self) -> subprocess.CompletedProcess:
        return self.run(*self.commands.stop)

    def run(self, script: str, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(self.project / script), *args],
            cwd=self.project,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,  # a start takes ~10 s; under the suite-wide 300
        )

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.sentinels)
        return f"redis+sentinel://{hosts}/{MASTER_NAME}/0"

    def folder(self, port: int) -> Path:
        return self.project / ".redis" / "run" / "sentinel-set" / str(port)

    def pid(self, port: int) -> int:
        name = "redis.pid" if port in (self.primary, self.replica) else "sentinel.pid"
        return int((self.folder(port) / name).read_text())


@pytest.fixture
def script_set(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ScriptSet]:
    """The set through install_redis.sh's alias, or through redis-setup/sentinel.sh when a
    test is parametrized with "direct"."""
    if not (BUILT / "redis-server").exists():
        pytest.fail("no Redis build: run ./install_redis.sh --build-only", pytrace=False)
    for name in ("install_redis.sh", "redis.conf", "redis-replicated.conf", "dump.rdb"):
        shutil.copy(PROJECT / name, tmp_path)
    shutil.copytree(PROJECT / "redis-setup", tmp_path / "redis-setup")
    (tmp_path / ".redis").mkdir()
    (tmp_path / ".redis" / "bin").symlink_to(BUILT)
    ports = [free_port() for _ in range(2 + SENTINEL_COUNT)]
    assert len(set(ports)) == len(ports)
    commands = SET_COMMANDS[getattr(request, "param", "alias")]
    script_set = ScriptSet(tmp_path, commands, ports[0], ports[1], ports[2:])
    yield script_set
    script_set.stop()
    # Should --stop have failed: what the script started, by the PIDs it wrote.
    for pid_file in tmp_path.glob(".redis/run/sentinel-set/*/*.pid"):
        pid = int(pid_file.read_text())
        if "redis-server" in process_command(pid):
            os.kill(pid, signal.SIGKILL)


def process_command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except FileNotFoundError:
        return ""


def role_of(port: int) -> list:
    with client(port) as redis_client:
        return redis_client.role()


def named_primary(sentinel_port: int) -> tuple[str, int] | None:
    with client(sentinel_port) as sentinel:
        return sentinel.sentinel_get_master_addr_by_name(MASTER_NAME)


def replica_in_sync(port: int, primary_port: int) -> bool:
    with client(port) as redis_client:
        info = redis_client.info("replication")
    return (
        info["role"] == "slave"
        and info["master_port"] == primary_port
        and info["master_link_status"] == "up"
    )


def assert_set_is(s: ScriptSet, primary: int, replica: int) -> None:
    """One primary, its replica in sync, and each sentinel knowing both and the others."""
    assert role_of(primary)[0] == "master"
    assert replica_in_sync(replica, primary)
    for port in s.sentinels:
        assert named_primary(port) == ("127.0.0.1", primary)
        with client(port) as sentinel:
            master = sentinel.sentinel_master(MASTER_NAME)
            assert master["num-other-sentinels"] == SENTINEL_COUNT - 1
            assert [r["port"] for r in sentinel.sentinel_slaves(MASTER_NAME)] == [replica]
            others = {other["port"] for other in sentinel.sentinel_sentinels(MASTER_NAME)}
            assert others == set(s.sentinels) - {port}


def started_lines(s: ScriptSet, primary: int, replica: int) -> list[str]:
    run = ".redis/run/sentinel-set"
    return [
        f"Started the primary on 127.0.0.1:{primary} (pid {s.pid(primary)}), "
        f"its data in {run}/{primary}.",
        f"Started a replica of 127.0.0.1:{primary} on 127.0.0.1:{replica} "
        f"(pid {s.pid(replica)}), its data in {run}/{replica}.",
        *(
            f"Started a sentinel on 127.0.0.1:{port} (pid {s.pid(port)}), "
            f"its state in {run}/{port}."
            for port in s.sentinels
        ),
    ]


def final_lines(s: ScriptSet, primary: int, replica: int) -> list[str]:
    sentinel_ports = " ".join(map(str, s.sentinels))
    return [
        f"The primary is on 127.0.0.1:{primary}, its replica on 127.0.0.1:{replica} is in "
        f"sync, and the {SENTINEL_COUNT} sentinels know both and each other.",
        f"REDIS_URL={s.url}",
        f"  connect: .redis/bin/redis-cli -p {s.sentinels[0]} "
        f"sentinel get-master-addr-by-name {MASTER_NAME}",
        f"  stop:    REDIS_PORT={s.primary} REDIS_REPLICA_PORT={s.replica} "
        f"SENTINEL_PORTS='{sentinel_ports}' {s.commands.stop_shown}",
    ]


@pytest.mark.parametrize("script_set", ["alias", "direct"], indirect=True)
def test_the_script_starts_the_set_prints_its_url_twice_is_safe_and_stop_ends_all(script_set):
    s = script_set
    all_ports = [s.primary, s.replica, *s.sentinels]
    started = s.start()
    assert started.returncode == 0, started.stderr
    lines = started.stdout.splitlines()
    assert re.fullmatch(r"Reusing Redis 7\.0\.15 built from .*, in \.redis/bin\.", lines[0])
    assert lines[1:] == started_lines(s, s.primary, s.replica) + final_lines(
        s, s.primary, s.replica
    )
    assert lines[-3] == (
        "REDIS_URL=redis+sentinel://"
        + ",".join(f"127.0.0.1:{port}" for port in s.sentinels)
        + "/mymaster/0"
    )
    assert_set_is(s, s.primary, s.replica)
    for port in (s.primary, s.replica):
        with client(port) as redis_client:
            assert redis_client.get("Holberton") == "School"  # the dump, then replicated
            # redis.conf's settings, and its append-only file on after the first start
            assert redis_client.config_get("appendonly") == {"appendonly": "yes"}
            assert redis_client.config_get("bind") == {"bind": "127.0.0.1"}
            assert redis_client.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
            # and redis-replicated.conf's: no writes without a replica
            assert redis_client.config_get("min-replicas-to-write") == {
                "min-replicas-to-write": "1"
            }
    for port in s.sentinels:
        # Each sentinel has a state file of its own, which Sentinel has rewritten.
        assert "sentinel myid " in (s.folder(port) / "sentinel.conf").read_text()
    # Sentinel's CONFIG REWRITEs go to each server's own file, never to redis.conf.
    assert (s.project / "redis.conf").read_bytes() == (PROJECT / "redis.conf").read_bytes()
    pids = {port: s.pid(port) for port in all_ports}
    assert all("redis-server" in process_command(pid) for pid in pids.values())

    again = s.start()
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[1:] == [
        *(
            f"The {'Redis server' if port in (s.primary, s.replica) else 'sentinel'} on "
            f"127.0.0.1:{port} is already running (pid {pids[port]}); not starting a second one."
            for port in all_ports
        ),
        *final_lines(s, s.primary, s.replica),
    ]
    assert {port: s.pid(port) for port in all_ports} == pids

    stopped = s.stop()
    assert stopped.returncode == 0, stopped.stderr
    run = ".redis/run/sentinel-set"
    assert stopped.stdout.splitlines() == [
        *(f"Stopped the sentinel on 127.0.0.1:{port} (pid {pids[port]})." for port in s.sentinels),
        f"Stopped the primary on 127.0.0.1:{s.primary} (pid {pids[s.primary]}); "
        f"it saved its data in {run}/{s.primary}.",
        f"Stopped the replica on 127.0.0.1:{s.replica} (pid {pids[s.replica]}); "
        f"it saved its data in {run}/{s.replica}.",
    ]
    assert not any(Path(f"/proc/{pid}").exists() for pid in pids.values())
    assert not any(answers(port) for port in all_ports)
    assert s.stop().stdout == (
        f"No server of the sentinel set started by this script is running "
        f"(ports {s.primary}, {s.replica}, {' '.join(map(str, s.sentinels))}).\n"
    )


def test_a_kill_9_of_the_primary_promotes_the_replica_and_the_old_one_rejoins_as_replica(
    script_set,
):
    s = script_set
    assert s.start().returncode == 0
    with client(s.primary) as primary:
        primary.set("before", "the kill")
        assert primary.wait(1, 5000) == 1  # the replica has it
    killed = s.pid(s.primary)
    os.kill(killed, signal.SIGKILL)

    def promoted() -> bool:
        named = {named_primary(port) for port in s.sentinels}
        return named == {("127.0.0.1", s.replica)} and role_of(s.replica)[0] == "master"

    wait_until(promoted, SCRIPT_FAILOVER_TIMEOUT, "the sentinels to promote the replica")
    with client(s.replica) as new_primary:
        assert new_primary.get("before") == "the kill"
        # Its only replica was itself: no writes until one is back (redis-replicated.conf).
        with pytest.raises(redis.ResponseError, match=r"^NOREPLICAS"):
            new_primary.set("after", "the failover")

    # Run again: only the killed server starts, as a replica of the new primary.
    again = s.start()
    assert again.returncode == 0, again.stderr
    lines = again.stdout.splitlines()
    assert lines[1:3] == [
        f"The Redis server on 127.0.0.1:{s.replica} is already running "
        f"(pid {s.pid(s.replica)}); not starting a second one.",
        f"Started a replica of 127.0.0.1:{s.replica} on 127.0.0.1:{s.primary} "
        f"(pid {s.pid(s.primary)}), its data in .redis/run/sentinel-set/{s.primary}.",
    ]
    assert s.pid(s.primary) != killed
    assert all("already running" in line for line in lines[3 : 3 + SENTINEL_COUNT])
    assert lines[3 + SENTINEL_COUNT :] == final_lines(s, s.replica, s.primary)
    assert_set_is(s, s.replica, s.primary)
    assert role_of(s.primary)[:3] == ["slave", "127.0.0.1", s.replica]
    with client(s.replica) as new_primary:
        new_primary.set("after", "the failover")
        assert new_primary.wait(1, 5000) == 1
    with client(s.primary) as old_primary:
        assert old_primary.mget("before", "after") == ["the kill", "the failover"]

    # Stopped and started again: each takes the role the sentinels recorded, not the
    # one the ports were first given; never two primaries.
    assert s.stop().returncode == 0
    restarted = s.start()
    assert restarted.returncode == 0, restarted.stderr
    assert restarted.stdout.splitlines()[1:] == started_lines(
        s, s.replica, s.primary
    ) + final_lines(s, s.replica, s.primary)
    assert_set_is(s, s.replica, s.primary)
    assert role_of(s.primary)[0] == "slave"
    with client(s.replica) as primary:
        assert primary.mget("before", "after", "Holberton") == [
            "the kill",
            "the failover",
            "School",
        ]


@pytest.mark.parametrize("script_set", ["alias", "direct"], indirect=True)
def test_a_port_taken_by_another_server_starts_nothing(script_set, make_redis_server):
    s = script_set
    make_redis_server(s.replica, persist=False).start()
    result = s.start()
    assert result.returncode == 1
    assert result.stderr == (
        f"{s.commands.error_prefix} already "
        f"answers on 127.0.0.1:{s.replica}; stop it (./install_redis.sh --stop, if it is "
        f"the single server) or set REDIS_PORT and REDIS_REPLICA_PORT\n"
    )
    assert not answers(s.primary)
    assert not any(answers(port) for port in s.sentinels)


@pytest.fixture
def replicated(redis_binary: str, tmp_path: Path) -> Iterator[ReplicatedRedis]:
    replicated = ReplicatedRedis(redis_binary, tmp_path / "replicated")
    yield replicated
    replicated.stop()


def test_replicated_redis_fails_over_restarts_and_stops_every_process(replicated):
    assert replicated.start() is replicated
    hosts = ",".join(f"127.0.0.1:{sentinel.port}" for sentinel in replicated.sentinels)
    assert replicated.url == f"redis+sentinel://{hosts}/mymaster/0"
    first, second = replicated.servers
    assert replicated.primary() is first
    assert replicated.replica() is second
    assert role(first) == "master"
    assert in_sync(second, first.port)
    for sentinel in replicated.sentinels:
        assert sentinel.named_primary() == first.port
        assert sentinel.knows(first.port, second.port)
    with first.client() as primary:
        primary.set("before", "the kill")
        assert primary.wait(1, 5000) == 1

    killed = replicated.kill_primary()
    assert killed is first
    assert killed.process is None
    new_primary = replicated.wait_for_failover(killed.port)
    assert new_primary is second
    assert role(second) == "master"
    assert {sentinel.named_primary() for sentinel in replicated.sentinels} == {second.port}
    with second.client() as primary:
        assert primary.get("before") == "the kill"

    assert replicated.restart(killed) is killed
    assert role(killed) == "slave"
    assert in_sync(killed, second.port)
    assert replicated.primary() is second
    assert replicated.replica() is killed
    with killed.client() as replica:
        assert replica.get("before") == "the kill"

    pids = replicated.pids
    assert len(pids) == 2 + SENTINEL_COUNT
    replicated.stop()
    assert replicated.pids == []
    assert not any(Path(f"/proc/{pid}").exists() for pid in pids)
    replicated.stop()  # twice is safe, as after a failed test


def test_a_replicated_redis_that_fails_to_start_leaves_no_process(
    redis_binary: str, tmp_path: Path
):
    replicated = ReplicatedRedis(redis_binary, tmp_path / "replicated")
    # Its replica's port taken by another server: the start fails and stops what it began.
    squatter = RedisServer(redis_binary, tmp_path / "squatter", replicated.servers[1].port, False)
    squatter.start()
    try:
        with pytest.raises(RuntimeError):
            replicated.start()
        assert replicated.pids == []
    finally:
        squatter.stop()
