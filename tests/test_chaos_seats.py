"""The seat app under crashes, done for real: Redis killed with SIGKILL under load, and a
worker of `./serve.sh 100_seat` killed with SIGKILL mid-job. Whatever happens, every
job queued ends exactly once (one seat taken and `completed`, or none and `failed`),
seats taken == jobs completed == 50 - seats left, and the seats never go below 0."""

import http.client
import os
import signal
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis

from harness.waiting import wait_until
from tests.seat_reservations import (
    ANSWERS,
    FAILED,
    IN_PROCESS,
    PROCESSING,
    SeatWatcher,
    assert_each_job_ended_once,
    pids_working_the_queue,
    wait_for_every_end,
)
from tests.served_apps import request, start_app, start_served, worker_pids

pytestmark = pytest.mark.slow  # crashes, done for real


class Buyers:
    """`count` reservations in the background, by `clients` clients one after another
    each, spread over the ports; every answer kept (or the error, for a request cut
    off by a crash)."""

    def __init__(self, ports: list[int], count: int, clients: int = 6) -> None:
        self.answers: list[tuple[int, bytes] | str] = []
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=clients)
        self._done = [self._pool.submit(self._buy, ports[n % len(ports)]) for n in range(count)]

    def _buy(self, port: int) -> None:
        try:
            reply = request(port, "/reserve_seat")
            answer: tuple[int, bytes] | str = (reply.status, reply.body)
        except (OSError, http.client.HTTPException) as error:
            answer = type(error).__name__
        with self._lock:
            self.answers.append(answer)

    def wait(self) -> list[tuple[int, bytes] | str]:
        for future in self._done:
            future.result()
        self._pool.shutdown()
        return self.answers


def test_redis_killed_under_load_loses_no_reservation(make_redis_server, start_script):
    server = make_redis_server().start()
    app, port = start_app(start_script, "100_seat.py", server.url)
    assert request(port, "/process").body == PROCESSING
    watcher = SeatWatcher(server.url)
    buyers = Buyers([port], 150)
    wait_until(lambda: len(buyers.answers) >= 30, what="30 answers")

    server.kill()
    wait_until(lambda: (503, FAILED) in buyers.answers[30:])
    server.start()
    answers = buyers.wait()

    assert set(answers) <= ANSWERS
    with redis.Redis.from_url(server.url) as connection:
        lines = wait_for_every_end([app], connection)
        assert answers.count((200, IN_PROCESS)) <= int(connection.get("job_queue:ids"))
        assert_each_job_ended_once(connection, lines)
    assert watcher.stop() >= 0
    app.interrupt()
    assert app.wait() == 0
    app.assert_no_traceback()


def seats_left(redis_url: str) -> int:
    with redis.Redis.from_url(redis_url) as connection:
        return int(connection.get("available_seats"))


def every_worker_works_the_queue(app, port: int, redis_url: str) -> bool:
    """After one /process: each live worker of the server works the queue (a request
    each time, which granian gives to either worker: a worker follows /process on one)."""
    request(port, "/available_seats")
    return set(worker_pids(app)) <= pids_working_the_queue(redis_url)


def test_a_server_worker_killed_mid_job_gives_no_seat_twice(redis_url, start_script):
    app, port = start_served(start_script, "100_seat", redis_url)
    assert request(port, "/process").body == PROCESSING  # one call, for every worker
    wait_until(lambda: every_worker_works_the_queue(app, port, redis_url))
    watcher = SeatWatcher(redis_url)
    buyers = Buyers([port], 150)
    wait_until(lambda: len(buyers.answers) >= 30, what="30 answers")

    victim = worker_pids(app)[0]
    os.kill(victim, signal.SIGKILL)
    seats_at_the_kill = seats_left(redis_url)
    wait_until(lambda: len(worker_pids(app)) == 2 and victim not in worker_pids(app))
    # The new worker works the queue too, without another /process.
    wait_until(lambda: every_worker_works_the_queue(app, port, redis_url))
    answers = buyers.wait()
    assert seats_left(redis_url) <= seats_at_the_kill  # the new worker did not reset them

    # Requests at the killed worker, in hand or queued on its socket, are cut off (their
    # jobs, if queued, are counted below like any other); the rest got a real answer.
    cut_off = [answer for answer in answers if isinstance(answer, str)]
    assert set(answers) - set(cut_off) <= ANSWERS
    assert len(cut_off) < len(answers)
    with redis.Redis.from_url(redis_url) as connection:
        # The killed worker may have taken one end and died before printing it.
        lines = wait_for_every_end([app], connection, lines_lost=1)
        assert_each_job_ended_once(connection, lines, lines_lost=1)
    assert watcher.stop() >= 0
    app.terminate()
    assert app.wait() == 0
