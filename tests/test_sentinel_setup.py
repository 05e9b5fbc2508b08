"""Issue 13, part 2, and issue 20: the replicated set-up, a primary, two replicas and
three sentinels, from `redis-setup/sentinel.sh` (and its alias `./install_redis.sh
--sentinel`), and from harness/sentinel.py.

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
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from harness.net import free_port
from harness.redis_server import PROJECT, RedisServer
from harness.sentinel import MASTER_NAME, SENTINEL_COUNT, ReplicatedRedis, in_sync, role
from harness.waiting import wait_until
from queuing.redis_connection import (
    UNREACHABLE,
    confirmed_command,
    create_client,
    replicas_to_confirm,
)
from tests.redis_ports import answers, client

pytestmark = pytest.mark.slow  # it starts, kills and restarts servers and sentinels

BUILT = PROJECT / ".redis" / "bin"
REPLICA_COUNT = 2  # the script's default, REDIS_REPLICA_PORTS="6380 6381"
# redis-setup/sentinel.sh's down-after-milliseconds is 3 s; the sentinels then elect a
# leader, promote a replica and move the other one over: a generous bound, not a timing
# goal (that one, 10 s from a kill -9 to a confirmed write, is measured and printed).
SCRIPT_FAILOVER_TIMEOUT = 60
RUN = ".redis/run/sentinel-set"


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
    primary: int  # the first primary, REDIS_PORT
    replicas: list[int]
    sentinels: list[int]

    @property
    def data_ports(self) -> list[int]:
        """The first primary, then the replicas, in the order the script is given them."""
        return [self.primary, *self.replicas]

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "REDIS_PORT": str(self.primary),
            "REDIS_REPLICA_PORTS": " ".join(map(str, self.replicas)),
            "SENTINEL_PORTS": " ".join(map(str, self.sentinels)),
        }

    def start(self) -> subprocess.CompletedProcess:
        return self.run(*self.commands.start)

    def stop(self) -> subprocess.CompletedProcess:
        return self.run(*self.commands.stop)

    def run(
        self, script: str, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(self.project / script), *args],
            cwd=self.project,
            env=self.env if env is None else env,
            capture_output=True,
            text=True,
            timeout=120,  # a start takes ~10 s; under the suite-wide 300
        )

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.sentinels)
        return f"redis+sentinel://{hosts}/{MASTER_NAME}/0"

    def folder(self, port: int) -> Path:
        return self.project / RUN / str(port)

    def pid(self, port: int) -> int:
        name = "redis.pid" if port in self.data_ports else "sentinel.pid"
        return int((self.folder(port) / name).read_text())

    def replicas_of(self, primary: int) -> list[int]:
        """The data servers but `primary`, in the order the script names them."""
        return [port for port in self.data_ports if port != primary]


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
    ports = [free_port() for _ in range(1 + REPLICA_COUNT + SENTINEL_COUNT)]
    assert len(set(ports)) == len(ports)
    commands = SET_COMMANDS[getattr(request, "param", "alias")]
    replicas = ports[1 : 1 + REPLICA_COUNT]
    script_set = ScriptSet(tmp_path, commands, ports[0], replicas, ports[1 + REPLICA_COUNT :])
    yield script_set
    script_set.stop()
    # Should --stop have failed: what the script started, by the PIDs it wrote.
    for pid_file in tmp_path.glob(f"{RUN}/*/*.pid"):
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


def assert_set_is(s: ScriptSet, primary: int) -> None:
    """One primary, every other data server its replica and in sync, and each sentinel
    knowing them all, none down, and the other sentinels."""
    replicas = s.replicas_of(primary)
    assert role_of(primary)[0] == "master"
    assert all(replica_in_sync(replica, primary) for replica in replicas)
    for port in s.sentinels:
        assert named_primary(port) == ("127.0.0.1", primary)
        with client(port) as sentinel:
            master = sentinel.sentinel_master(MASTER_NAME)
            assert master["num-other-sentinels"] == SENTINEL_COUNT - 1
            known = sentinel.sentinel_slaves(MASTER_NAME)
            assert sorted(r["port"] for r in known) == sorted(replicas)
            assert all(r["flags"] == "slave" for r in known)
            others = {other["port"] for other in sentinel.sentinel_sentinels(MASTER_NAME)}
            assert others == set(s.sentinels) - {port}


def started_line(s: ScriptSet, port: int, primary: int) -> str:
    what = "the primary" if port == primary else f"a replica of 127.0.0.1:{primary}"
    return f"Started {what} on 127.0.0.1:{port} (pid {s.pid(port)}), its data in {RUN}/{port}."


def running_line(s: ScriptSet, port: int) -> str:
    what = "Redis server" if port in s.data_ports else "sentinel"
    return (
        f"The {what} on 127.0.0.1:{port} is already running (pid {s.pid(port)}); "
        "not starting a second one."
    )


def started_lines(s: ScriptSet, primary: int) -> list[str]:
    return [
        *(started_line(s, port, primary) for port in [primary, *s.replicas_of(primary)]),
        *(
            f"Started a sentinel on 127.0.0.1:{port} (pid {s.pid(port)}), "
            f"its state in {RUN}/{port}."
            for port in s.sentinels
        ),
    ]


def final_lines(s: ScriptSet, primary: int) -> list[str]:
    replicas = s.replicas_of(primary)
    if len(replicas) == 1:
        in_sync_line = f"its replica on 127.0.0.1:{replicas[0]} is in sync, and the "
        in_sync_line += f"{SENTINEL_COUNT} sentinels know both"
    else:
        first, second = replicas
        in_sync_line = f"its replicas on 127.0.0.1:{first} and 127.0.0.1:{second} are in "
        in_sync_line += f"sync, and the {SENTINEL_COUNT} sentinels know them all"
    sentinel_ports = " ".join(map(str, s.sentinels))
    replica_ports = " ".join(map(str, s.replicas))
    return [
        f"The primary is on 127.0.0.1:{primary}, {in_sync_line} and each other.",
        f"REDIS_URL={s.url}",
        f"  connect: .redis/bin/redis-cli -p {s.sentinels[0]} "
        f"sentinel get-master-addr-by-name {MASTER_NAME}",
        f"  stop:    REDIS_PORT={s.primary} REDIS_REPLICA_PORTS='{replica_ports}' "
        f"SENTINEL_PORTS='{sentinel_ports}' {s.commands.stop_shown}",
    ]


def stopped_lines(s: ScriptSet, pids: dict[int, int], primary: int) -> list[str]:
    """--stop's lines: the sentinels, then the primary, then each replica."""
    return [
        *(f"Stopped the sentinel on 127.0.0.1:{port} (pid {pids[port]})." for port in s.sentinels),
        *(
            f"Stopped the {'primary' if port == primary else 'replica'} on 127.0.0.1:{port} "
            f"(pid {pids[port]}); it saved its data in {RUN}/{port}."
            for port in [primary, *s.replicas_of(primary)]
        ),
    ]


@pytest.mark.parametrize("script_set", ["alias", "direct"], indirect=True)
def test_the_script_starts_the_set_prints_its_url_twice_is_safe_and_stop_ends_all(script_set):
    s = script_set
    all_ports = [*s.data_ports, *s.sentinels]
    started = s.start()
    assert started.returncode == 0, started.stderr
    lines = started.stdout.splitlines()
    assert re.fullmatch(r"Reusing Redis 7\.0\.15 built from .*, in \.redis/bin\.", lines[0])
    assert lines[1:] == started_lines(s, s.primary) + final_lines(s, s.primary)
    assert lines[-3] == (
        "REDIS_URL=redis+sentinel://"
        + ",".join(f"127.0.0.1:{port}" for port in s.sentinels)
        + "/mymaster/0"
    )
    assert_set_is(s, s.primary)
    for port in s.data_ports:
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
        *(running_line(s, port) for port in all_ports),
        *final_lines(s, s.primary),
    ]
    assert {port: s.pid(port) for port in all_ports} == pids

    stopped = s.stop()
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout.splitlines() == stopped_lines(s, pids, s.primary)
    assert not any(Path(f"/proc/{pid}").exists() for pid in pids.values())
    assert not any(answers(port) for port in all_ports)
    assert s.stop().stdout == (
        f"No server of the sentinel set started by this script is running "
        f"(ports {s.primary}, {' '.join(map(str, s.replicas))}, "
        f"{' '.join(map(str, s.sentinels))}).\n"
    )


def test_a_second_start_after_a_kill_9_of_one_replica_restarts_just_that_one(script_set):
    s = script_set
    assert s.start().returncode == 0
    gone, other = s.replicas
    killed = s.pid(gone)
    pids = {port: s.pid(port) for port in [s.primary, other, *s.sentinels]}
    os.kill(killed, signal.SIGKILL)
    wait_until(lambda: not answers(gone), 10, f"the replica on {gone} gone")
    with client(s.primary) as primary:
        # The other replica confirms: the primary takes writes as before.
        primary.set("while", "one replica is down")
        assert primary.wait(1, 5000) == 1

    again = s.start()
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[1:] == [
        *(
            started_line(s, port, s.primary) if port == gone else running_line(s, port)
            for port in s.data_ports  # the primary, then each replica
        ),
        *(running_line(s, port) for port in s.sentinels),
        *final_lines(s, s.primary),
    ]
    assert s.pid(gone) != killed
    assert {port: s.pid(port) for port in pids} == pids
    assert_set_is(s, s.primary)
    assert role_of(gone)[:3] == ["slave", "127.0.0.1", s.primary]
    with client(gone) as replica:
        assert replica.get("while") == "one replica is down"


def test_a_primary_down_with_its_sentinels_and_not_failed_over_starts_as_the_primary(
    script_set,
):
    s = script_set
    assert s.start().returncode == 0
    with client(s.primary) as primary:
        primary.set("before", "the kills")
        assert primary.wait(2, 5000) == 2
    replica_pids = {port: s.pid(port) for port in s.replicas}
    # The sentinels first: none of them is left to fail the primary over.
    for port in [*s.sentinels, s.primary]:
        os.kill(s.pid(port), signal.SIGKILL)
    wait_until(
        lambda: not any(answers(port) for port in [*s.sentinels, s.primary]),
        10,
        "the sentinels and the primary gone",
    )

    again = s.start()
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[1:] == [
        started_line(s, s.primary, s.primary),
        *(running_line(s, port) for port in s.replicas),
        *(
            f"Started a sentinel on 127.0.0.1:{port} (pid {s.pid(port)}), "
            f"its state in {RUN}/{port}."
            for port in s.sentinels
        ),
        *final_lines(s, s.primary),
    ]
    assert {port: s.pid(port) for port in s.replicas} == replica_pids
    assert_set_is(s, s.primary)
    with client(s.primary) as primary:
        assert primary.get("before") == "the kills"


def test_one_replica_is_a_set_too(script_set):
    s = script_set
    s.replicas = s.replicas[:1]
    started = s.start()
    assert started.returncode == 0, started.stderr
    assert started.stdout.splitlines()[1:] == started_lines(s, s.primary) + final_lines(
        s, s.primary
    )
    assert_set_is(s, s.primary)


def confirmed_write(redis_client: redis.Redis, key: str, value: str) -> bool:
    """SET, then WAIT 1 on the same connection (confirmed_command): whether a replica
    had it in time; False if the primary is gone, has no replica or none confirmed."""
    try:
        confirmed_command(redis_client, "SET", key, value)
    except UNREACHABLE:
        return False
    return True


def test_a_kill_9_of_the_primary_fails_over_and_writes_are_confirmed_with_no_one_acting(
    script_set, monkeypatch
):
    s = script_set
    assert s.start().returncode == 0
    monkeypatch.setenv("REDIS_URL", s.url)
    monkeypatch.delenv("REDIS_CONFIRM_REPLICAS", raising=False)
    with create_client() as sentinel_client:
        assert replicas_to_confirm(sentinel_client) == 1  # WAIT 1
        assert confirmed_write(sentinel_client, "before", "the kill")
        killed = s.pid(s.primary)
        os.kill(killed, signal.SIGKILL)
        killed_at = time.monotonic()
        # No one acts: the sentinels promote a replica and move the other one over,
        # and the client finds the new primary, which has a replica to confirm with.
        wait_until(
            lambda: confirmed_write(sentinel_client, "after", "the failover"),
            SCRIPT_FAILOVER_TIMEOUT,
            "a write confirmed by a replica after the kill",
            every=0.05,
        )
        seconds = time.monotonic() - killed_at
        print(f"\nkill -9 of the primary to the first confirmed write: {seconds:.2f} s")
        new_primary = sentinel_client.connection_pool.get_master_address()[1]
    assert new_primary in s.replicas
    other = next(port for port in s.replicas if port != new_primary)
    assert role_of(new_primary)[0] == "master"
    assert replica_in_sync(other, new_primary)
    with client(new_primary) as primary:
        assert primary.mget("before", "after") == ["the kill", "the failover"]

    # Run again: only the killed server starts, as a replica of the new primary.
    again = s.start()
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[1:] == [
        running_line(s, new_primary),
        started_line(s, s.primary, new_primary),
        running_line(s, other),
        *(running_line(s, port) for port in s.sentinels),
        *final_lines(s, new_primary),
    ]
    assert s.pid(s.primary) != killed
    assert_set_is(s, new_primary)
    assert role_of(s.primary)[:3] == ["slave", "127.0.0.1", new_primary]
    with client(s.primary) as old_primary:
        assert old_primary.mget("before", "after") == ["the kill", "the failover"]

    # Stopped and started again: each takes the role the sentinels recorded, not the
    # one the ports were first given; never two primaries.
    pids = {port: s.pid(port) for port in [*s.data_ports, *s.sentinels]}
    stopped = s.stop()
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout.splitlines() == stopped_lines(s, pids, new_primary)
    restarted = s.start()
    assert restarted.returncode == 0, restarted.stderr
    assert restarted.stdout.splitlines()[1:] == started_lines(s, new_primary) + final_lines(
        s, new_primary
    )
    assert_set_is(s, new_primary)
    with client(new_primary) as primary:
        assert primary.mget("before", "after", "Holberton") == [
            "the kill",
            "the failover",
            "School",
        ]


@pytest.mark.parametrize("script_set", ["alias", "direct"], indirect=True)
def test_a_port_taken_by_another_server_starts_nothing(script_set, make_redis_server):
    s = script_set
    taken = s.replicas[-1]
    make_redis_server(taken, persist=False).start()
    result = s.start()
    assert result.returncode == 1
    assert result.stderr == (
        f"{s.commands.error_prefix} already "
        f"answers on 127.0.0.1:{taken}; stop it (./install_redis.sh --stop, if it is "
        f"the single server) or set REDIS_PORT and REDIS_REPLICA_PORTS\n"
    )
    assert not any(answers(port) for port in [*s.data_ports, *s.sentinels] if port != taken)


@pytest.mark.parametrize("script_set", ["alias", "direct"], indirect=True)
def test_the_old_replica_port_setting_is_refused_with_its_new_name(script_set):
    s = script_set
    env = {**s.env, "REDIS_REPLICA_PORT": str(s.replicas[0])}
    del env["REDIS_REPLICA_PORTS"]
    result = s.run(*s.commands.start, env=env)
    assert result.returncode == 1
    script = s.commands.start[0].split("/")[-1]
    assert result.stderr == (
        f"{script}: REDIS_REPLICA_PORT was renamed REDIS_REPLICA_PORTS, the replicas' ports "
        'separated by spaces (default "6380 6381"): set that instead\n'
    )
    assert result.stdout == ""  # before anything is built or started
    assert not (s.project / ".redis" / "run").exists()
    assert not any(answers(port) for port in [*s.data_ports, *s.sentinels])


@pytest.fixture
def replicated(redis_binary: str, tmp_path: Path) -> Iterator[ReplicatedRedis]:
    """Not started, unlike conftest's: these tests start it themselves."""
    replicated = ReplicatedRedis(redis_binary, tmp_path / "replicated")
    yield replicated
    replicated.stop()


def test_replicated_redis_fails_over_restarts_and_stops_every_process(replicated):
    assert replicated.start() is replicated
    hosts = ",".join(f"127.0.0.1:{sentinel.port}" for sentinel in replicated.sentinels)
    assert replicated.url == f"redis+sentinel://{hosts}/mymaster/0"
    first, second, third = replicated.servers
    assert replicated.primary() is first
    assert replicated.replicas() == [second, third]
    assert role(first) == "master"
    assert in_sync(second, first.port) and in_sync(third, first.port)
    for sentinel in replicated.sentinels:
        assert sentinel.named_primary() == first.port
        assert sentinel.knows(first.port, [second.port, third.port])
    with first.client() as primary:
        primary.set("before", "the kill")
        assert primary.wait(2, 5000) == 2

    killed = replicated.kill_primary()
    assert killed is first
    assert killed.process is None
    new_primary = replicated.wait_for_failover(killed.port)
    assert new_primary in (second, third)
    other = third if new_primary is second else second
    assert role(new_primary) == "master"
    assert {sentinel.named_primary() for sentinel in replicated.sentinels} == {new_primary.port}
    with new_primary.client() as primary:
        assert primary.get("before") == "the kill"
        # The other replica follows the new primary: it confirms with no one acting.
        primary.set("after", "the failover")
        assert primary.wait(1, 5000) == 1

    assert replicated.restart(killed) is killed
    assert role(killed) == "slave"
    assert in_sync(killed, new_primary.port) and in_sync(other, new_primary.port)
    assert replicated.primary() is new_primary
    assert set(replicated.replicas()) == {killed, other}
    with killed.client() as replica:
        assert replica.get("after") == "the failover"

    pids = replicated.pids
    assert len(pids) == 3 + SENTINEL_COUNT
    replicated.stop()
    assert replicated.pids == []
    assert not any(Path(f"/proc/{pid}").exists() for pid in pids)
    replicated.stop()  # twice is safe, as after a failed test


def test_a_frozen_server_is_thawed_and_stopped_by_stop(replicated):
    replicated.start()
    frozen = replicated.replicas()[0]
    replicated.freeze(frozen)
    pid = frozen.pid
    assert Path(f"/proc/{pid}/status").read_text().count("(stopped)") == 1
    replicated.stop()
    assert not Path(f"/proc/{pid}").exists()


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
