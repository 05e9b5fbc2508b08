"""Real redis-server processes for the tests: on 127.0.0.1, a free port, a temp folder."""

import contextlib
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis

PROJECT = Path(__file__).resolve().parent.parent
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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RedisServer:
    """One redis-server; `stop()` and `start()` again restart it on the same port."""

    def __init__(
        self, binary: str, directory: Path, port: int | None = None, persist: bool = False
    ) -> None:
        self.binary = binary
        self.directory = directory
        self.port = port or free_port()
        self.persist = persist  # saves its data when stopped, and loads it when started
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, decode_responses=True)

    def start(self, timeout: float = 10) -> "RedisServer":
        self.directory.mkdir(parents=True, exist_ok=True)
        log = self.directory / "redis.log"
        command = [self.binary, "--bind", "127.0.0.1", "--port", str(self.port)]
        command += ["--dir", str(self.directory), "--appendonly", "no", "--logfile", str(log)]
        # Nothing is written to disk unless a test asks for it.
        command += ["--save", "3600 1"] if self.persist else ["--save", ""]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while not self._answers_ping():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server did not start on {self.port}: {log.read_text()}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def _answers_ping(self) -> bool:
        with contextlib.suppress(redis.ConnectionError), self.client() as client:
            return client.ping()
        return False
