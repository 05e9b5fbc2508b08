"""Writes confirmed to a user wait for a replica (issue 13): when none confirms in time
the answer is 503 (or the script's not-connected line) and nothing is taken.

A server with no replica, and REDIS_CONFIRM_REPLICAS=1, is a primary whose replica never
answers: each confirmed write waits its second (CONFIRM_TIMEOUT_MS) and is refused.
"""

import importlib

import pytest
import redis
from rq import Queue
from rq.job import Job
from rq.registry import CanceledJobRegistry

from queuing import redis_connection
from queuing.job_queue import NOT_CONFIRMED, JobCreator
from queuing.redis_connection import (
    NotConfirmed,
    confirmed_command,
    create_client,
    replicas_to_confirm,
)
from tests.scripts import run_script

stock_app = importlib.import_module("9_stock")
seat_app = importlib.import_module("100_seat")


@pytest.fixture
def one_replica_needed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_CONFIRM_REPLICAS", "1")
    monkeypatch.setattr(redis_connection, "CONFIRM_TIMEOUT_MS", 50)  # no replica will come


def test_a_plain_url_confirms_at_once_and_a_sentinel_one_needs_a_replica(redis_url, monkeypatch):
    with redis.Redis.from_url(redis_url) as connection:
        assert replicas_to_confirm(connection) == 0
        assert confirmed_command(connection, "SET", "key", "value") == b"OK"
    monkeypatch.setenv("REDIS_URL", "redis+sentinel://127.0.0.1:1/mymaster/0")
    assert replicas_to_confirm(create_client()) == 1  # no connection made yet


def test_an_unconfirmed_write_raises_with_its_reply(redis_url, one_replica_needed):
    with redis.Redis.from_url(redis_url) as connection:
        with pytest.raises(NotConfirmed) as raised:
            confirmed_command(connection, "INCR", "counter")
        assert raised.value.reply == 1
        assert isinstance(raised.value, redis.ConnectionError)  # as unreachable, for callers


def test_an_unconfirmed_write_is_undone_on_the_connection_that_made_it(
    redis_url, one_replica_needed
):
    """Past a failover another connection of the pool may reach another server: the
    undo must reach the one that has the write (a give-back sent to the new primary
    once lost a confirmed reservation)."""
    undone_on = []
    with redis.Redis.from_url(redis_url) as connection:
        pool = connection.connection_pool
        writer = pool.get_connection()
        writer.send_command("INCR", "counter")
        reply = writer.read_response()

        def undo(on: redis.connection.Connection, written: int) -> None:
            undone_on.append(on)
            on.send_command("DECRBY", "counter", written)
            on.read_response()

        with pytest.raises(NotConfirmed):
            redis_connection.confirm_on(writer, connection, reply, undo)
        assert undone_on == [writer]
        assert connection.get("counter") == b"0"
        pool.release(writer)


def test_an_unconfirmed_stock_reservation_is_a_503_and_takes_nothing(redis_url, one_replica_needed):
    with redis.Redis.from_url(redis_url, decode_responses=True) as connection:
        client = stock_app.create_app(connection).test_client()
        reply = client.get("/reserve_product/2")
        assert (reply.status_code, reply.data) == (503, b'{"status":"Redis unavailable"}')
        assert connection.get("item.2") == "10"  # taken, then given back
        assert client.get("/list_products/2").json["currentQuantity"] == 10


def test_an_unconfirmed_seat_reservation_is_a_503_and_its_job_is_canceled(
    redis_url, one_replica_needed
):
    with redis.Redis.from_url(redis_url) as connection:
        seat_app.launch(connection)
        app = seat_app.create_app(connection)
        try:
            reply = app.test_client().get("/reserve_seat")
        finally:
            # Its listener, left running, would take the ends of later tests' apps.
            app.extensions["reservations"].close()
        assert (reply.status_code, reply.data) == (503, b'{"status":"Reservation failed"}')
        assert connection.lrange("rq:queue:reserve_seat", 0, -1) == []
        job = Job.fetch("1", connection=connection)
        assert job.get_status() == "canceled"
        assert CanceledJobRegistry("reserve_seat", connection=connection).get_job_ids() == ["1"]
        events = connection.xrange("job_queue:events:reserve_seat")
        ended = {b"job": b"1", b"event": b"failed", b"error": NOT_CONFIRMED.encode()}
        assert events[-1][1] == ended
        assert connection.get("available_seats") == b"50"


def test_unconfirmed_jobs_are_canceled_and_the_creator_hears_it(redis_url, one_replica_needed):
    with redis.Redis.from_url(redis_url) as connection:
        creator = JobCreator(Queue("confirmed", connection=connection))
        with pytest.raises(NotConfirmed) as raised:
            creator.create_many("tests.worker_jobs.returns", [{}, {}])
        assert [job.id for job in raised.value.reply] == ["1", "2"]
        assert connection.llen("rq:queue:confirmed") == 0
        statuses = [Job.fetch(n, connection=connection).get_status() for n in ("1", "2")]
        assert statuses == ["canceled", "canceled"]


def test_the_job_creator_script_says_it_in_one_line(redis_url):
    done = run_script("7_job_creator.py", redis_url, REDIS_CONFIRM_REPLICAS="1")
    assert done.returncode == 1
    assert done.stdout == (
        "Redis client not connected to the server: no replica confirmed the write in time\n"
    )
    assert done.stderr == ""


def test_a_bad_replica_count_is_one_line(redis_url):
    done = run_script("1_redis_op.py", redis_url, REDIS_CONFIRM_REPLICAS="one")
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (
        "Invalid REDIS_CONFIRM_REPLICAS 'one': a number of replicas, 0 or more\n"
    )
