"""serve.sh, the apps' one production command: what it accepts, its launch step, and
granian's settings taken from the environment."""

import os
import subprocess

import pytest

from harness.net import free_port
from harness.redis_server import PROJECT
from tests.served_apps import SERVE, get, start_served, worker_pids

pytestmark = pytest.mark.slow  # every test runs ./serve.sh

USAGE = "usage: ./serve.sh 9_stock|100_seat   (environment: PORT, HOST, WORKERS, REDIS_URL)\n"


def run_serve(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(SERVE), *args],
        cwd=PROJECT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("args", [(), ("7_job_processor",), ("9_stock.py",), ("9_stock", "x")])
def test_anything_but_one_app_gets_the_usage_line(args):
    result = run_serve(*args)
    assert (result.returncode, result.stdout, result.stderr) == (2, "", USAGE)


def test_a_launch_that_cannot_reach_redis_says_so_in_one_line():
    port = free_port()
    result = run_serve("100_seat", REDIS_URL=f"redis://127.0.0.1:{port}/0", PORT=str(free_port()))
    assert result.stdout == (
        "Redis client not connected to the server: "
        f"Error 111 connecting to 127.0.0.1:{port}. Connection refused.\n"
    )
    assert (result.returncode, result.stderr) == (1, "")


def test_workers_and_port_come_from_the_environment(redis_url, start_script):
    app, port = start_served(start_script, "9_stock", redis_url, workers=3)
    assert len(worker_pids(app)) == 3
    assert f"[INFO] Listening at: http://127.0.0.1:{port}" in app.lines
    assert get(port, "/list_products/1").startswith(b'{"itemId":1,')
    app.interrupt()  # Ctrl-C in its terminal
    assert app.wait() == 0
    assert worker_pids(app) == []
    app.assert_no_traceback()
