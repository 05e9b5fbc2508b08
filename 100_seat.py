"""Task 13 (100-seat.js): seat reservations through the queue reserve_seat, port 1245.

`/reserve_seat` queues a job; `/process` starts working the queue in this process; each
job takes one seat. The seats live in Redis under `available_seats`, and reservations
are enabled while seats are left there, so every process agrees: several app
processes, or `rq worker reserve_seat` run in this folder on another machine with the
same REDIS_URL, never reserve more than there are.

    python 100_seat.py           # Flask's own server, as npm run dev
    granian --interface wsgi --workers 2 --blocking-threads 2 --workers-kill-timeout 5 \
        --port 1245 --factory 100_seat:create_app  # production (README: The two apps)
"""

import atexit
import multiprocessing.util
import os
import threading

import redis
from flask import Flask, Response
from rq import Queue, get_current_job

from dashboard import add_dashboard, credentials
from job_queue import JobCreator, WorkerThread
from redis_connection import UNREACHABLE, create_client, run
from web_app import create_json_app, json_response, redis_get, serve

QUEUE = "reserve_seat"
JOB_FUNCTION = "100_seat.reserve_seat_job"  # RQ names the function a job runs
INITIAL_SEATS = 50

# Reading the seats and writing them back in two steps (as the course did) lets two
# jobs both take the last seat; this script does both in one step.
TAKE_ONE_SEAT = """
local seats = tonumber(redis.call('GET', KEYS[1]) or '0')
if seats < 1 then return -1 end
return redis.call('DECR', KEYS[1])
"""


class Seats:
    """The seats left, in Redis."""

    KEY = "available_seats"

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._take_one = client.register_script(TAKE_ONE_SEAT)

    def reserve_seat(self, number: int) -> None:
        self.client.set(self.KEY, number)

    def get_current_available_seats(self) -> str:
        seats = redis_get(self.client, self.KEY)
        return "0" if seats is None else seats.decode()

    def reservation_enabled(self) -> bool:
        return int(self.get_current_available_seats()) > 0

    def take_one(self) -> int | None:
        """The seats left once one is taken, or None when there was none."""
        left = self._take_one(keys=[self.KEY])
        return None if left < 0 else left


def reserve_seat_job(data: dict) -> int:
    """What each job of the queue reserve_seat runs, wherever it runs."""
    left = Seats(get_current_job().connection).take_one()
    if left is None:
        raise RuntimeError("Not enough seats available")
    return left


def print_completed(job_id: str) -> None:
    print(f"Seat reservation job {job_id} completed", flush=True)


def print_failed(job_id: str, error: str) -> None:
    print(f"Seat reservation job {job_id} failed: {error}", flush=True)


class Reservations:
    """The app's state, all in Redis but for its two threads: the one that hears how
    the jobs it created end, and the one worker of the queue that `/process` starts."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.seats = Seats(client)
        self.creator = JobCreator(
            Queue(QUEUE, connection=client), completed=print_completed, failed=print_failed
        )
        self.processor: WorkerThread | None = None
        self._listening_in: int | None = None  # the process whose thread hears the ends
        self._lock = threading.Lock()

    def reserve(self) -> bool:
        """Queue a reservation job, unless reservations are blocked."""
        if not self.seats.reservation_enabled():
            return False
        self._listen()
        self.creator.create(JOB_FUNCTION, {})
        return True

    def _listen(self) -> None:
        # Threads do not survive a fork: a server that builds the app, then forks its
        # workers (gunicorn --preload), needs the thread started in each worker.
        with self._lock:
            if self._listening_in != os.getpid():
                self.creator.listen_in_background()
                self._listening_in = os.getpid()

    def start_processing(self) -> None:
        with self._lock:  # one worker, however many calls at once
            if self.processor is None or not self.processor.is_alive():
                self.processor = WorkerThread([QUEUE], self.client)

    def close(self) -> None:
        """Stop the threads; the job in hand, if any, ends first."""
        if self.processor is not None:
            self.processor.stop()
        self.creator.close()


def create_app(client: redis.Redis | None = None, reset_seats: bool = True) -> Flask:
    """The app, on the Redis of REDIS_URL unless given a (bytes) client. As the course
    has it, launching it sets the seats to 50 (unless `reset_seats` is False)."""
    app = create_json_app(__name__)
    client = client or create_client(decode_responses=False)  # RQ stores bytes
    if reset_seats:
        Seats(client).reserve_seat(INITIAL_SEATS)
    reservations = Reservations(client)
    # The job in hand ends before the process does. A server whose workers are
    # multiprocessing children (granian) ends them with os._exit, which skips atexit
    # but runs multiprocessing's finalizers.
    atexit.register(reservations.close)
    multiprocessing.util.Finalize(reservations, reservations.close, exitpriority=10)
    app.extensions["reservations"] = reservations
    if (required := credentials()) is not None:  # it can delete jobs: not without them
        add_dashboard(app, "/rq", required)

    @app.get("/available_seats")
    def available_seats() -> Response:
        seats = reservations.seats.get_current_available_seats()
        return json_response({"numberOfAvailableSeats": seats})

    @app.get("/reserve_seat")
    def reserve_seat() -> Response:
        try:
            if not reservations.reserve():
                return json_response({"status": "Reservation are blocked"}, 409)
        except UNREACHABLE:
            return json_response({"status": "Reservation failed"}, 503)
        return json_response({"status": "Reservation in process"})

    @app.get("/process")
    def process() -> Response:
        reservations.start_processing()
        return json_response({"status": "Queue processing"})

    return app


if __name__ == "__main__":
    run(lambda: serve(create_app()))
