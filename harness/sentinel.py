"""A primary, its replicas and three sentinels for the tests and the bench: real
processes on 127.0.0.1 and free ports, the set-up of `./install_redis.sh --sentinel`
(a primary and two replicas), by default with a quicker failover.

The data servers are `RedisServer`s started from a file of their own that includes
the project's redis.conf: Sentinel sends CONFIG REWRITE to a server whose role it
changes, and must never rewrite redis.conf. Each sentinel keeps its state in a
sentinel.conf of its own, which Sentinel rewrites. Every process is started by Popen and
ended by its PID.
"""

import contextlib
import os
import re
import signal
import subprocess
from pathlib import Path

import redis

from harness.net import free_port
from harness.redis_server import (
    PROJECT,
    REDIS_CONF,
    RedisServer,
    answers_as,
    answers_within,
    stop_process,
)
from harness.waiting import wait_until

# What the set's servers add to redis.conf: no writes without a replica.
REPLICATED_CONF = PROJECT / "redis-replicated.conf"

MASTER_NAME = "mymaster"
SENTINEL_COUNT = 3
QUORUM = 2  # two of the three sentinels must see the primary down before a failover
# Quicker than redis-setup/sentinel.sh's (script_down_after_ms()), so that a test does not
# wait long for a failover: the tests' servers hold little data, and never pause for a
# second. The bench measures with the script's.
DOWN_AFTER_MS = 1000
# A failover here takes well under a second; a failed one is tried again after twice this.
FAILOVER_TIMEOUT_MS = 5000
POLL = 0.05  # seconds between two looks at the servers while waiting on a condition
SET_SCRIPT = PROJECT / "redis-setup" / "sentinel.sh"


def script_down_after_ms() -> int:
    """The down-after-milliseconds of `./install_redis.sh --sentinel`'s set, read from
    its script: what the bench measures a user's failover with."""
    match = re.search(r"^DOWN_AFTER_MS=(\d+)$", SET_SCRIPT.read_text(), re.MULTILINE)
    if match is None:
        raise RuntimeError(f"no DOWN_AFTER_MS= line in {SET_SCRIPT}")
    return int(match[1])


class SentinelServer:
    """One sentinel (`redis-server sentinel.conf --sentinel`) watching `MASTER_NAME`.
    Its sentinel.conf is written on its first start only: Sentinel keeps its state there
    (its id, the primary now, the sentinels it met), so a restarted one remembers."""

    def __init__(
        self, binary: str, directory: Path, primary_port: int, down_after_ms: int = DOWN_AFTER_MS
    ) -> None:
        self.binary = binary
        self.directory = directory
        self.port = free_port()
        self.primary_port = primary_port
        self.down_after_ms = down_after_ms
        self.process: subprocess.Popen | None = None

    @property
    def config(self) -> Path:
        return self.directory / "sentinel.conf"

    @property
    def pid(self) -> int:
        assert self.process is not None, "not running"
        return self.process.pid

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, decode_responses=True)

    def start(self, timeout: float = 10) -> "SentinelServer":
        self.directory.mkdir(parents=True, exist_ok=True)
        if not self.config.exists():
            self.config.write_text(
                f"bind 127.0.0.1\nport {self.port}\ndir {self.directory}\n"
                f"logfile {self.directory / 'sentinel.log'}\n"
                f"sentinel monitor {MASTER_NAME} 127.0.0.1 {self.primary_port} {QUORUM}\n"
                f"sentinel down-after-milliseconds {MASTER_NAME} {self.down_after_ms}\n"
                f"sentinel failover-timeout {MASTER_NAME} {FAILOVER_TIMEOUT_MS}\n"
            )
        command = [self.binary, str(self.config), "--sentinel"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        if not answers_within(self.process, self._answers, timeout):
            log = self.directory / "sentinel.log"
            self.stop()
            raise RuntimeError(f"the sentinel did not start on {self.port}: {log.read_text()}")
        return self

    def _answers(self) -> bool:
        return answers_as(self.client(), self.port, self.pid)

    def named_primary(self) -> int | None:
        """The port of the primary this sentinel names now; None if it does not answer."""
        with contextlib.suppress(redis.ConnectionError), self.client() as client:
            address = client.sentinel_get_master_addr_by_name(MASTER_NAME)
            return int(address[1]) if address else None
        return None

    def knows(self, primary_port: int, replica_ports: list[int]) -> bool:
        """Whether it holds the primary up on that port and each of those replicas up,
        and has met the other sentinels."""
        with contextlib.suppress(redis.ConnectionError), self.client() as client:
            master = client.info("sentinel").get("master0", {})
            if master.get("status") != "ok" or master.get("sentinels") != SENTINEL_COUNT:
                return False
            if master.get("address") != f"127.0.0.1:{primary_port}":
                return False
            up = {
                replica["port"]
                for replica in client.sentinel_slaves(MASTER_NAME)
                if replica["is_slave"]
                and not (replica["is_sdown"] or replica["is_odown"] or replica["is_disconnected"])
            }
            return set(replica_ports) <= up
        return False

    def kill(self) -> None:
        """SIGKILL, as a crash."""
        assert self.process is not None, "not running"
        self.process.kill()
        self.process.wait()
        self.process = None

    def holds_down(self, port: int) -> bool:
        """Whether it holds the sentinel on `port` subjectively down: it has not heard
        from it for down-after-milliseconds."""
        with contextlib.suppress(redis.ConnectionError), self.client() as client:
            return any(
                other["port"] == port and other["is_sdown"]
                for other in client.sentinel_sentinels(MASTER_NAME)
            )
        return False

    def holds_replica_down(self, port: int) -> bool:
        """Whether it holds the replica on `port` subjectively down."""
        with contextlib.suppress(redis.ConnectionError), self.client() as client:
            return any(
                replica["port"] == port and replica["is_sdown"]
                for replica in client.sentinel_slaves(MASTER_NAME)
            )
        return False

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
        self.process = None


class ReplicatedRedis:
    """A primary, `replicas` replicas and `SENTINEL_COUNT` sentinels, in folders of their
    own under `directory`. `start()` returns once the replicas are in sync and the
    sentinels agree; `url` is the REDIS_URL that names the sentinels. `binary` is a
    redis-server (the sentinels are the same binary with --sentinel). With two replicas
    (`./install_redis.sh --sentinel`'s set), the new primary of a failover still has a
    replica to confirm writes with."""

    def __init__(
        self,
        binary: str,
        directory: Path,
        replicas: int = 2,
        down_after_ms: int = DOWN_AFTER_MS,
    ) -> None:
        self.binary = binary
        self.directory = directory
        self.servers: list[RedisServer] = []
        for _ in range(1 + replicas):
            port = free_port()
            folder = directory / f"redis-{port}"
            self.servers.append(RedisServer(binary, folder, port, config=folder / "redis.conf"))
        first_primary = self.servers[0].port
        self.sentinels = [
            SentinelServer(binary, directory / f"sentinel-{n}", first_primary, down_after_ms)
            for n in range(SENTINEL_COUNT)
        ]
        self.frozen: set[int] = set()  # PIDs stopped with SIGSTOP

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{sentinel.port}" for sentinel in self.sentinels)
        return f"redis+sentinel://{hosts}/{MASTER_NAME}/0"

    @property
    def pids(self) -> list[int]:
        """The PIDs of its processes that run now."""
        members = [*self.servers, *self.sentinels]
        return [member.process.pid for member in members if member.process is not None]

    def start(self, timeout: float = 30) -> "ReplicatedRedis":
        try:
            primary = self.servers[0]
            for server in self.servers:
                self._start_server(server, primary.port)
            for sentinel in self.sentinels:
                sentinel.start()
            self.wait_settled(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _start_server(self, server: RedisServer, primary_port: int) -> None:
        # Written afresh at each start (Sentinel may have rewritten it): the role comes
        # from the command line, as the sentinels name the primary now.
        server.directory.mkdir(parents=True, exist_ok=True)
        server.config.write_text(f"include {REDIS_CONF}\ninclude {REPLICATED_CONF}\n")
        server.args = (
            [] if server.port == primary_port else ["--replicaof", "127.0.0.1", str(primary_port)]
        )
        server.start()

    def _server_on(self, port: int) -> RedisServer:
        return next(server for server in self.servers if server.port == port)

    def _named_primary(self) -> int | None:
        """The port all running sentinels name as the primary; None if they disagree."""
        named = {s.named_primary() for s in self.sentinels if s.process is not None}
        return named.pop() if len(named) == 1 else None

    def primary(self) -> RedisServer:
        """The server the sentinels name as the primary now."""
        port = self._named_primary()
        if port is None:
            raise RuntimeError("the sentinels do not agree on a primary")
        return self._server_on(port)

    def replicas(self) -> list[RedisServer]:
        """The servers the sentinels do not name as the primary, running or not."""
        primary = self.primary()
        return [server for server in self.servers if server is not primary]

    def replica(self) -> RedisServer:
        """The first of `replicas()`."""
        return self.replicas()[0]

    def kill_primary(self) -> RedisServer:
        """SIGKILL to the primary, as a crash; the killed server."""
        server = self.primary()
        server.kill()
        return server

    def freeze(self, server: RedisServer) -> None:
        """SIGSTOP: the process holds its sockets and answers nothing, as a machine that
        hangs or a network that drops every packet, until `thaw`."""
        os.kill(server.pid, signal.SIGSTOP)
        self.frozen.add(server.pid)
        # A signal is delivered in its own time: frozen once the kernel says it stopped.
        wait_until(lambda: process_state(server.pid) == "T", 5, "the server stopped")

    def thaw(self, server: RedisServer) -> None:
        os.kill(server.pid, signal.SIGCONT)
        self.frozen.discard(server.pid)

    def wait_for_failover(self, old_port: int, timeout: float = 30) -> RedisServer:
        """Until the sentinels all name another primary than `old_port` and it answers
        as a primary; that server."""

        def failed_over() -> bool:
            port = self._named_primary()
            return port not in (None, old_port) and role(self._server_on(port)) == "master"

        wait_until(failed_over, timeout, f"a failover away from 127.0.0.1:{old_port}", POLL)
        return self.primary()

    def restart(self, server: RedisServer, timeout: float = 30) -> RedisServer:
        """Stop `server` if it runs, and start it again in the role the sentinels give it:
        a replica of the primary they name (an old primary rejoins as a replica, never as
        a second primary), or the primary if they still name it. Returns once settled."""
        server.stop()
        wait_until(
            lambda: self._named_primary() is not None, timeout, "the sentinels to agree", POLL
        )
        primary_port = self._named_primary()
        assert primary_port is not None
        self._start_server(server, primary_port)
        self.wait_settled(timeout)
        return server

    def settled(self) -> bool:
        """The primary the sentinels all name runs, every running replica is in sync
        with it, and each running sentinel holds them up and has met the others."""
        port = self._named_primary()
        if port is None:
            return False
        primary = self._server_on(port)
        running = [s for s in self.servers if s is not primary and s.process is not None]
        if primary.process is None or not running:
            return False
        sentinels = [sentinel for sentinel in self.sentinels if sentinel.process is not None]
        return all(in_sync(replica, primary.port) for replica in running) and all(
            sentinel.knows(primary.port, [replica.port for replica in running])
            for sentinel in sentinels
        )

    def wait_settled(self, timeout: float = 30) -> None:
        # The sentinels meet through hello messages every 2 s: a few seconds at most.
        wait_until(self.settled, timeout, "the replicas in sync and the sentinels agreeing", POLL)

    def stop(self) -> None:
        """Every process, by PID, the sentinels first (so that none fails the primary
        over meanwhile); a frozen one thawed first. Safe to call after a failed start or
        test, and twice."""
        errors = []
        for member in [*self.sentinels, *self.servers]:
            try:
                if member.process is not None and member.process.pid in self.frozen:
                    self.thaw(member)
                member.stop()
            except Exception as error:  # stop the others all the same
                errors.append(error)
        if errors:
            raise errors[0]


def role(server: RedisServer) -> str | None:
    """ "master" or "slave", as the server answers ROLE; None if it does not answer."""
    if server.process is None:
        return None
    with contextlib.suppress(redis.ConnectionError), server.client() as client:
        return client.role()[0]
    return None


def in_sync(replica: RedisServer, primary_port: int) -> bool:
    """A replica of that primary, its link up and no full sync under way."""
    if replica.process is None:
        return False
    with contextlib.suppress(redis.ConnectionError), replica.client() as client:
        info = client.info("replication")
        return (
            info["role"] == "slave"
            and info["master_port"] == primary_port
            and info["master_link_status"] == "up"
            and info["master_sync_in_progress"] == 0
        )
    return False


def process_state(pid: int) -> str:
    """The process's state as Linux shows it (R running, S sleeping, T stopped...)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
