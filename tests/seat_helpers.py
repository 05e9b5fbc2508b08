"""What the seat app's tests (test_seat_app.py, test_chaos_seats.py) share: its answers,
its job-end lines, and a watch on the seats left."""

import threading

import redis
from rq import Queue, Worker

IN_PROCESS = b'{"status":"Reservation in process"}'
BLOCKED = b'{"status":"Reservation are blocked"}'
PROCESSING = b'{"status":"Queue processing"}'


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
