"""The seat app under crashes, done for real: Redis killed with SIGKILL under load, and a
worker of `./serve.sh 100_seat` killed with SIGKILL mid-job. Whatever happens, every
job queued ends exactly once (one seat taken and `completed`, or none and `failed`),
seats taken == jobs completed == 50 - seats left, and the seats never go below 0."""

import contextlib
import http.client
import os
import signal
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
from rq.registry import FinishedJobRegistry

from harness.waiting import wait_until
from tests.http_client import request, start_app, start_served, worker_pids
from tests.seat_helpers import (
    BLOCKED,
    IN_PROCESS,
    PROCESSING,
    SeatWatcher,
    is_end,
    pids_working_the_queue,
)

pytestmark = pytest.mark.slow  # crashes, done for real

EVENTS = "job_queue:events:reserve_seat"
# How a seat job ends: with its seat, without, or canceled when no replica confirmed it
# in time (a Sentinel set on a busy machine: its request was answered 503).
ENDED = {b"finished", b"failed", b"canceled"}
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


def assert_each_job_ended_once(
    connection: redis.Redis, end_lines: list[str], lines_lost: int = 0
) -> None:
    """Every job ever queued ended exactly once, in Redis and in the lines the apps
    printed, and the seats add up. `lines_lost`: how many end lines a process killed
    between taking an end and printing it may have taken with it (see QueueListener)."""
    queued = int(connection.get("job_queue:ids") or 0)
    jobs = [str(n) for n in range(1, queued + 1)]
    statuses = {job: connection.hget(f"rq:job:{job}", "status") for job in jobs}
    assert set(statuses.values()) <= ENDED, statuses
    completed = {job for job, status in statuses.items() if status == b"finished"}
    printed = {}
    for line in end_lines:
        job_id = line.split()[3]
        assert job_id not in printed, f"job {job_id} ended twice: {printed[job_id]!r}, {line!r}"
        assert (job_id in completed) == line.endswith(" completed"), line
        printed[job_id] = line
    assert set(printed) <= set(jobs)
    assert len(jobs) - len(printed) <= lines_lost, f"no end line for {set(jobs) - set(printed)}"
    left = int(connection.get("available_seats"))
    claims = {claim.decode() for claim in connection.smembers("reserved_seats")}
    assert left >= 0
    assert claims == completed
    assert len(completed) == 50 - left
    finished = FinishedJobRegistry("reserve_seat", connection=connection).get_job_ids()
    assert set(finished) == completed


def wait_for_every_end(
    apps, connection: redis.Redis, timeout: float = 90, lines_lost: int = 0
) -> list[str]:
    """The apps' end lines, once every job queued has ended in Redis, every end has
    been taken by a listener, and every end taken is printed (but for `lines_lost`)."""
    lines = []

    def all_taken() -> bool:
        lines.extend(line for app in apps for line in app.lines_so_far() if is_end(line))
        queued = int(connection.get("job_queue:ids") or 0)
        group = next(g for g in connection.xinfo_groups(EVENTS) if g["name"] == b"100_seat")
        statuses = [connection.hget(f"rq:job:{n}", "status") for n in range(1, queued + 1)]
        ended = all(status in ENDED for status in statuses)
        return ended and group["pending"] == 0 and group["lag"] == 0

    def all_printed(allowed_missing: int) -> bool:
        lines.extend(line for app in apps for line in app.lines_so_far() if is_end(line))
        return len(lines) >= int(connection.get("job_queue:ids")) - allowed_missing

    try:
        wait_until(all_taken, timeout, what="every job ended, every end taken")
        wait_until(lambda: all_printed(lines_lost), what="an end line for every end taken")
        if lines_lost:  # what may still come, from a live process
            with contextlib.suppress(AssertionError):
                wait_until(lambda: all_printed(0), 5)
    except AssertionError as error:
        raise AssertionError(f"{error}; {missing_ends(connection, lines)}") from None
    return lines


def missing_ends(connection: redis.Redis, lines: list[str]) -> str:
    """What Redis says of the jobs with no end line: their status, and the listeners'
    events not yet taken (a failing test's evidence)."""
    printed = {line.split()[3] for line in lines}
    queued = int(connection.get("job_queue:ids") or 0)
    missing = [str(n) for n in range(1, queued + 1) if str(n) not in printed]
    statuses = {job: connection.hget(f"rq:job:{job}", "status") for job in missing}
    groups = connection.xinfo_groups(EVENTS)
    return f"no end line for {statuses} (job: status); the listeners' group: {groups}"


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
