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
from rq.registry import FinishedJobRegistry

from tests.http_client import request, start_app, start_served, worker_pids
from tests.scripts import wait_until
from tests.test_seat_app import BLOCKED, IN_PROCESS, PROCESSING, SeatWatcher, is_end

pytestmark = pytest.mark.slow  # crashes, done for real

ANSWERS = {
    (200, IN_PROCESS),
    (409, BLOCKED),
    (503, b'{"status":"Reservation failed"}'),
}


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


def assert_each_job_ended_once(connection: redis.Redis, end_lines: list[str]) -> None:
    """Every job ever queued ended exactly once, and the seats add up."""
    queued = int(connection.get("job_queue:ids") or 0)
    ends = {}
    for line in end_lines:
        job_id = line.split()[3]
        assert job_id not in ends, f"job {job_id} ended twice: {ends[job_id]!r}, {line!r}"
        ends[job_id] = line
    assert sorted(ends, key=int) == [str(n) for n in range(1, queued + 1)]
    completed = {job for job, line in ends.items() if line.endswith(" completed")}
    left = int(connection.get("available_seats"))
    claims = {claim.decode() for claim in connection.smembers("reserved_seats")}
    assert left >= 0
    assert claims == completed
    assert len(completed) == 50 - left
    finished = FinishedJobRegistry("reserve_seat", connection=connection).get_job_ids()
    assert set(finished) == completed


def wait_for_every_end(apps, connection: redis.Redis, timeout: float = 90) -> list[str]:
    """The apps' end lines, once there is one for every job queued."""
    lines = []

    def all_ended() -> bool:
        lines.extend(line for app in apps for line in app.lines_so_far() if is_end(line))
        return len(lines) >= int(connection.get("job_queue:ids") or 0)

    wait_until(all_ended, timeout, what="an end for every job")
    return lines


def test_redis_killed_under_load_loses_no_reservation(make_redis_server, start_script):
    server = make_redis_server().start()
    app, port = start_app(start_script, "100_seat.py", server.url)
    assert request(port, "/process").body == PROCESSING
    watcher = SeatWatcher(server.url)
    buyers = Buyers([port], 150)
    wait_until(lambda: len(buyers.answers) >= 30, what="30 answers")

    server.kill()
    wait_until(lambda: (503, b'{"status":"Reservation failed"}') in buyers.answers[30:])
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
    assert "Traceback" not in app.stderr()


def seats_left(redis_url: str) -> int:
    with redis.Redis.from_url(redis_url) as connection:
        return int(connection.get("available_seats"))


def process_everywhere(port: int) -> None:
    """/process on each worker of the server (a new connection each time, which granian
    gives to either worker)."""
    for _ in range(12):
        assert request(port, "/process").body == PROCESSING


def test_a_server_worker_killed_mid_job_gives_no_seat_twice(redis_url, start_script):
    app, port = start_served(start_script, "100_seat", redis_url)
    process_everywhere(port)
    watcher = SeatWatcher(redis_url)
    buyers = Buyers([port], 150)
    wait_until(lambda: len(buyers.answers) >= 30, what="30 answers")

    victim = worker_pids(app)[0]
    os.kill(victim, signal.SIGKILL)
    seats_at_the_kill = seats_left(redis_url)
    wait_until(lambda: len(worker_pids(app)) == 2 and victim not in worker_pids(app))
    process_everywhere(port)  # the new worker works the queue too
    answers = buyers.wait()
    assert seats_left(redis_url) <= seats_at_the_kill  # the new worker did not reset them

    # Requests at the killed worker, in hand or queued on its socket, are cut off (their
    # jobs, if queued, are counted below like any other); the rest got a real answer.
    cut_off = [answer for answer in answers if isinstance(answer, str)]
    assert set(answers) - set(cut_off) <= ANSWERS
    assert len(cut_off) < len(answers)
    with redis.Redis.from_url(redis_url) as connection:
        assert_each_job_ended_once(connection, wait_for_every_end([app], connection))
    assert watcher.stop() >= 0
    app.terminate()
    assert app.wait() == 0
