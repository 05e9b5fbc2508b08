"""A primary watched by Sentinel, killed with SIGKILL under load (issue 13): the
sentinels promote the replica, every process follows it without a restart, and nothing
confirmed before the kill is lost.

The set: a primary, one replica, three sentinels (harness/sentinel.py), each server with
min-replicas-to-write 1, as `./install_redis.sh --sentinel` runs them. With its only
replica promoted, the new primary refuses writes until the old one has come back as its
replica: meanwhile the apps answer 503 and nothing is taken. Checked in Redis and in
what the processes printed, after waiting for conditions, never for a while.
"""

import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

import dashboard
from harness.paced_clients import PacedClients
from harness.redis_server import PROJECT, find_redis_server
from harness.sentinel import ReplicatedRedis, role
from harness.waiting import wait_until
from queuing.redis_connection import create_client
from tests.scripts import run_script, script_env
from tests.seat_reservations import (
    ANSWERS,
    FAILED,
    IN_PROCESS,
    assert_each_job_ended_once,
    wait_for_every_end,
)
from tests.served_apps import request, start_served

pytestmark = pytest.mark.slow  # five servers, apps, a failover

STOCK = 10  # product 2's initial quantity
CONFIRMED = (200, b'{"status":"Reservation confirmed","itemId":2}')
STOCK_ANSWERS = {
    CONFIRMED,
    (409, b'{"status":"Not enough stock available","itemId":2}'),
    (503, b'{"status":"Redis unavailable"}'),
}


@pytest.fixture
def replicated(tmp_path: Path):
    binary = find_redis_server()
    if binary is None:
        pytest.skip("no redis-server")
    servers = ReplicatedRedis(binary, tmp_path / "replicated").start()
    yield servers
    servers.stop()


def rq(url: str, *arguments: str) -> str:
    """RQ's own command line on the Sentinel URL, through rq_settings."""
    command = [str(Path(sys.executable).with_name("rq")), *arguments, "-c", "rq_settings"]
    done = subprocess.run(
        command, cwd=PROJECT, env=script_env(url), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def confirmations(clients: PacedClients) -> int:
    return clients.answered_since(0).count(CONFIRMED)


def stock_left(connection: redis.Redis) -> int:
    left = connection.get("item.2")
    return STOCK if left is None else int(left)


def workers_in(replicated: ReplicatedRedis) -> list[str]:
    """The states of the RQ workers registered on the primary."""
    with replicated.primary().client() as connection:
        return sorted(connection.hget(key, "state") for key in connection.smembers("rq:workers"))


def test_the_course_scripts_run_on_a_sentinel_url(replicated):
    with replicated.primary().client() as connection:
        connection.set("Holberton", "School")
        connection.wait(1, 5000)
    for script in ("0_redis_client.py", "1_redis_op.py", "2_redis_op_async.py"):
        done = run_script(script, replicated.url)
        assert (done.returncode, done.stderr) == (0, "")
        assert done.stdout.splitlines()[:2] in (
            ["Redis client connected to the server"],
            ["Redis client connected to the server", "School"],
        )


def test_a_connection_held_across_a_failover_goes_to_the_new_primary(replicated, monkeypatch):
    """A worker holds its own connection for its whole life (queuing.job_queue.step.JobSteps)."""
    monkeypatch.setenv("REDIS_URL", replicated.url)
    client = create_client()
    held = client.connection_pool.get_connection()
    held.send_command("SET", "before", "the kill")
    assert held.read_response() == "OK"

    killed = replicated.kill_primary()
    new_primary = replicated.wait_for_failover(killed.port)
    replicated.restart(killed)
    with pytest.raises(redis.ConnectionError):  # the reply of the old primary, cut off
        held.send_command("GET", "before")
        held.read_response()
    held.send_command("SET", "after", "the failover")
    assert held.read_response() == "OK"
    assert (held.host, held.port) == ("127.0.0.1", new_primary.port)
    client.connection_pool.release(held)


def test_the_apps_follow_a_failover_and_lose_nothing_confirmed(replicated, start_script):
    url = replicated.url
    seats, seats_port = start_served(start_script, "100_seat", url)
    for _ in range(12):  # a worker in each of the app's processes
        assert request(seats_port, "/process").status == 200
    stock, stock_port = start_served(start_script, "9_stock", url)
    rq(url, "suspend")  # seat jobs wait in the queue, to be run after the failover
    seat_buyers = PacedClients(seats_port, "/reserve_seat", clients=3, pause=0.02)
    stock_buyers = PacedClients(stock_port, "/reserve_product/2", clients=1, pause=0.3)
    wait_until(
        lambda: confirmations(stock_buyers) >= 2 and len(seat_buyers.answered_since(0)) >= 30
    )

    killed = replicated.kill_primary()
    confirmed_before_the_kill = confirmations(stock_buyers)
    replicated.wait_for_failover(killed.port)
    replicated.restart(killed)  # it rejoins as a replica: writes are taken again
    assert role(killed) == "slave"
    back = time.monotonic()
    wait_until(lambda: len(seat_buyers.answered_since(back)) >= 20, 30)
    rq(url, "resume")
    seat_buyers.stop()
    stock_buyers.stop()
    seat_answers, stock_answers = seat_buyers.answered_since(0), stock_buyers.answered_since(0)

    assert set(seat_answers) <= ANSWERS
    assert set(stock_answers) <= STOCK_ANSWERS
    assert (503, FAILED) in seat_answers  # the switch was hit
    with replicated.primary().client() as connection:
        # Nothing confirmed is lost, nothing is oversold, and a 503 took nothing: but
        # the one request whose answer the kill may have cut between write and WAIT.
        confirmed = stock_answers.count(CONFIRMED)
        assert confirmed >= confirmed_before_the_kill > 0
        assert confirmed <= STOCK - stock_left(connection) <= confirmed + 1
        assert stock_left(connection) >= 0
    with redis.Redis.from_url(replicated.primary().url) as connection:
        in_process = seat_answers.count((200, IN_PROCESS))
        assert int(connection.get("job_queue:ids")) >= in_process
        assert_each_job_ended_once(connection, wait_for_every_end([seats], connection))
    seats.terminate()
    stock.terminate()
    assert seats.wait() == 0 and stock.wait() == 0
    seats.assert_no_traceback()
    stock.assert_no_traceback()


def test_a_creator_and_its_processor_follow_a_failover(replicated, start_script, monkeypatch):
    url = replicated.url
    processor = start_script("7_job_processor.py", url)
    rq(url, "suspend")
    wait_until(lambda: workers_in(replicated) == ["suspended", "suspended"], 30)
    creator = start_script("7_job_creator.py", url)
    # Printed once a replica has them (WAIT): they survive the primary.
    assert creator.read_lines(11) == [f"Notification job created: {n}" for n in range(1, 12)]

    killed = replicated.kill_primary()
    replicated.wait_for_failover(killed.port)
    replicated.restart(killed)
    rq(url, "resume")

    try:
        assert creator.wait(60) == 0
    except subprocess.TimeoutExpired:
        creator.lines_so_far()
        raise AssertionError(f"{creator.lines} {processor.error_lines[-10:]}") from None
    ends = [line for line in creator.lines if " completed" in line or " failed: " in line]
    assert sorted(int(line.split()[2]) for line in ends) == list(range(1, 12))
    creator.assert_no_traceback()
    processor.interrupt()
    assert processor.wait() == 0
    processor.assert_no_traceback()

    # The dashboard, on the same URL, shows the queue on the new primary.
    monkeypatch.setenv("REDIS_URL", url)
    monkeypatch.delenv("RQ_DASHBOARD_USERNAME", raising=False)
    queues = dashboard.create_app().test_client().get("/0/data/queues.json").json["queues"]
    assert [queue["name"] for queue in queues] == ["push_notification_code_2"]
