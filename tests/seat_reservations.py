"""The seat app's reservations as its tests see them (test_seat_app.py,
test_chaos_seats.py, test_failover.py): the app's answers, the line it prints as a
reservation job ends, the check that every job ended exactly once, a watch on the seats
left, and the processes that work the queue."""

import contextlib
import threading

import redis
from rq import Queue, Worker
from rq.registry import FinishedJobRegistry

from harness.waiting import wait_until

IN_PROCESS = b'{"status":"Reservation in process"}'
BLOCKED = b'{"status":"Reservation are blocked"}'
FAILED = b'{"status":"Reservation failed"}'  # Redis unreachable, or no replica confirmed
PROCESSING = b'{"status":"Queue processing"}'
# Every answer /reserve_seat may give.
ANSWERS = {(200, IN_PROCESS), (409, BLOCKED), (503, FAILED)}

EVENTS = "job_queue:events:reserve_seat"
# How a seat job ends: with its seat, without, or canceled when no replica confirmed it
# in time (a Sentinel set on a busy machine: its request was answered 503).
ENDED = {b"finished", b"failed", b"canceled"}


def seats(number: int) -> bytes:
    """The body of /available_seats with `number` seats left."""
    return b'{"numberOfAvailableSeats":"%d"}' % number


def is_end(line: str) -> bool:
    """A line the app prints when a job has ended (completed or failed)."""
    return line.startswith("Seat reservation job ")


def pids_working_the_queue(url: str) -> set[int]:
    """The processes whose workers RQ has registered on the queue reserve_seat (a
    process killed with SIGKILL stays registered a while)."""
    with redis.Redis.from_url(url) as connection:
        queue = Queue("reserve_seat", connection=connection)
        return {worker.pid for worker in Worker.all(queue=queue)}


class SeatWatcher:
    """Reads available_seats over and over while a test runs: the lowest it ever saw."""

    def __init__(self, url: str) -> None:
        self.lowest = 50
        self._stop = threading.Event()
        # A daemon: a test that fails before stop() must not keep pytest from exiting.
        self._thread = threading.Thread(target=self._watch, args=(url,), daemon=True)
        self._thread.start()

    def _watch(self, url: str) -> None:
        with redis.Redis.from_url(url) as connection:
            while not self._stop.is_set():
                try:
                    self.lowest = min(self.lowest, int(connection.get("available_seats") or 50))
                except (redis.ConnectionError, redis.TimeoutError):  # a test's outage
                    self._stop.wait(0.05)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.lowest


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
