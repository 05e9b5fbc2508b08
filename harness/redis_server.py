"""Real redis-server processes for the tests and the bench, started from the project's
redis.conf: on 127.0.0.1, a free port, a folder of their own."""

import contextlib
import os
import shutil
import signal
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

import redis

from harness.net import free_port
from harness.waiting import wait_until

PROJECT = Path(__file__).resolve().parent.parent
REDIS_CONF = PROJECT / "redis.conf"
NO_SERVER = (
    "No redis-server to test against: run ./install_redis.sh --build-only "
    "(it builds one into .redis/bin), or put one on PATH."
)


def find_redis_server() -> str | None:
    """REDIS_SERVER if set (a path), else the server install_redis.sh built, else one
    on PATH."""
    if chosen := os.environ.get("REDIS_SERVER"):
        return chosen if Path(chosen).is_file() else None
    built = PROJECT / ".redis" / "bin" / "redis-server"
    return str(built) if built.exists() else shutil.which("redis-server")


class RedisServer:
    """One redis-server started the project's way, from its redis.conf; `stop()` (or
    `kill()`) and `start()` again restart it on the same port and folder.

    `persist` (the default, as the project runs it): the append-only file and snapshots
    of redis.conf, so the data outlive a stop, and a `kill()`, to the next start. With
    `persist=False`, nothing is written to disk: a throwaway server, empty when started
    again.

    `config` is the file it starts from (a file of its own that includes redis.conf, for
    a server whose config Sentinel rewrites); `args` come last on its command line (e.g.
    `--replicaof`), read at each start.
    """

    def __init__(
        self,
        binary: str,
        directory: Path,
        port: int | None = None,
        persist: bool = True,
        *,
        config: Path = REDIS_CONF,
        args: Sequence[str] = (),
    ) -> None:
        self.binary = binary
        self.directory = directory
        self.port = port or free_port()
        self.persist = persist
        self.config = config
        self.args = list(args)
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int:
        assert self.process is not None, "not running"
        return self.process.pid

    @property
    def aof_manifest(self) -> Path:
        """Written by Redis once its append-only file is complete."""
        return self.directory / "appendonlydir" / "appendonly.aof.manifest"

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, decode_responses=True)

    def start(self, timeout: float = 10) -> "RedisServer":
        self.directory.mkdir(parents=True, exist_ok=True)
        log = self.directory / "redis.log"
        command = [self.binary, str(self.config), "--port", str(self.port)]
        command += ["--dir", str(self.directory), "--logfile", str(log)]
        # As install_redis.sh does: Redis 7.0 started with appendonly yes and no
        # append-only file yet would make an empty one and ignore a dump.rdb there.
        first_start = self.persist and not self.aof_manifest.exists()
        if not self.persist:
            command += ["--appendonly", "no", "--save", ""]
        elif first_start:
            command += ["--appendonly", "no"]
        command += self.args
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        if not answers_within(self.process, self._answers, timeout):
            self.stop()
            raise RuntimeError(f"redis-server did not start on {self.port}: {log.read_text()}")
        if first_start:
            self._turn_on_append_only_file(timeout)
        return self

    def _turn_on_append_only_file(self, timeout: float) -> None:
        with self.client() as client:
            client.config_set("appendonly", "yes")
            wait_until(
                lambda: self._append_only_file_written(client),
                timeout,
                f"redis-server on {self.port} to write its append-only file",
            )

    def _append_only_file_written(self, client: redis.Redis) -> bool:
        info = client.info("persistence")
        return (
            info["aof_enabled"] == 1
            and info["aof_rewrite_in_progress"] == 0
            and info["aof_rewrite_scheduled"] == 0
            and self.aof_manifest.exists()
        )

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
        self.process = None

    def kill(self) -> None:
        """SIGKILL, as a crash: no shutdown, no last save."""
        os.kill(self.pid, signal.SIGKILL)
        assert self.process is not None
        self.process.wait()
        self.process = None

    def _answers(self) -> bool:
        return answers_as(self.client(), self.port, self.pid)


def stop_process(process: subprocess.Popen) -> None:
    """SIGTERM, and SIGKILL if it has not ended within 10 s."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def answers_within(process: subprocess.Popen, answers: Callable[[], bool], timeout: float) -> bool:
    """Whether the server `process` started `answers()` within `timeout` seconds; False
    at once if it ends."""
    # Not in time is no AssertionError here: the caller says why, with the server's log.
    with contextlib.suppress(AssertionError):
        wait_until(lambda: answers() or process.poll() is not None, timeout)
    return process.poll() is None and answers()


def answers_as(client: redis.Redis, port: int, pid: int) -> bool:
    """Whether the server `pid` answers on `port`; an error if another process answers
    there (taken while it was stopped: its clients would silently use another's data)."""
    with contextlib.suppress(redis.ConnectionError), client:
        answering = client.info("server")["process_id"]
        if answering != pid:
            raise RuntimeError(f"port {port} is another server's (pid {answering})")
        return True
    return False
