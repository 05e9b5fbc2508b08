"""Fixtures: a real redis-server for the session, spare ones for tests that stop them,
and scripts started in the background that are always ended."""

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from harness.redis_server import NO_SERVER, RedisServer, find_redis_server
from harness.sentinel import ReplicatedRedis
from tests.scripts import Script


@pytest.fixture(scope="session")
def redis_binary() -> str:
    binary = find_redis_server()
    if binary is None:
        pytest.fail(NO_SERVER, pytrace=False)
    return binary


@pytest.fixture(scope="session")
def redis_server(
    redis_binary: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RedisServer]:
    server = RedisServer(redis_binary, tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session's server, emptied for this test."""
    with redis_server.client() as client:
        client.flushall()
    return redis_server.url


@pytest.fixture
def connection(redis_url: str) -> Iterator[redis.Redis]:
    """A client of the test's server with bytes replies, as RQ's."""
    with redis.Redis.from_url(redis_url) as client:
        yield client


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    with redis.Redis.from_url(redis_url, decode_responses=True) as client:
        yield client


@pytest.fixture
def make_redis_server(redis_binary: str, tmp_path: Path) -> Iterator[Callable[..., RedisServer]]:
    """Servers of the test's own, to stop (or kill) and start, from the project's
    redis.conf: `port` fixes the port; the data outlive a restart unless
    `persist=False`. Not started."""
    servers: list[RedisServer] = []

    def make(port: int | None = None, persist: bool = True) -> RedisServer:
        server = RedisServer(redis_binary, tmp_path / f"redis-{len(servers)}", port, persist)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def replicated(redis_binary: str, tmp_path: Path) -> Iterator[ReplicatedRedis]:
    """A primary, two replicas and three sentinels on free ports, started, as
    `./install_redis.sh --sentinel` runs them (harness/sentinel.py); every process
    stopped after the test, a failed one too."""
    servers = ReplicatedRedis(redis_binary, tmp_path / "replicated").start()
    yield servers
    servers.stop()


@pytest.fixture
def start_script() -> Iterator[Callable[..., Script]]:
    """Start a script in the background; whatever a test leaves running is killed."""
    scripts: list[Script] = []

    def start(name: str, redis_url: str, command: list[str] | None = None, **env: str) -> Script:
        scripts.append(Script(name, redis_url, command, **env))
        return scripts[-1]

    yield start
    for script in scripts:
        script.close()


# Fixtures that start processes of the test's own: a test that uses one is `slow`.
PROCESS_FIXTURES = {"start_script", "make_redis_server"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark `slow` every test that starts processes (a script, an app, a server): the
    fast loop, `-m "not slow and not browser and not bench"`, keeps the tests that run
    in this process against the session's Redis."""
    for item in items:
        if PROCESS_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
