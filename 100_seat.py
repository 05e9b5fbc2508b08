"""Task 13 (100-seat.js): seat reservations through the queue reserve_seat, port 1245.

`/reserve_seat` queues a job; `/process` starts working the queue, in every process that
serves the app; each job takes one seat. The seats live in Redis under
`available_seats`, and reservations are enabled while seats are left there, so every
process agrees: several app processes, or `rq worker reserve_seat` run in this folder
on another machine with the same REDIS_URL, never reserve more than there are.

Every reservation in process ends exactly once: one seat taken and `completed`, or no
seat taken and `failed`, whatever crashes. A job takes its seat and records its claim
on it (`reserved_seats`, the ids of the jobs holding one) in one atomic step, so a job
run again never takes a second; a job that ends failed after taking one (its worker
died mid-job) gives it back. So at every moment 50 = seats left + claims, and once the
ends are heard, claims = jobs completed.

    python 100_seat.py      # Flask's own server, as npm run dev
    ./serve.sh 100_seat     # production: granian, 2 workers (README: The two apps)
"""

import atexit
import contextlib
import multiprocessing.util
import os
import threading
import time
from pathlib import Path

import redis
from flask import Flask, Response
from rq import Queue, get_current_job
from rq.job import Job

from dashboard import add_dashboard, credentials
from queuing.job_queue import QueueListener, WorkerThread, create_job
from queuing.redis_connection import UNREACHABLE, create_client, run
from queuing.redis_scripts import LuaScript
from queuing.web_app import create_app_client, create_json_app, json_response, redis_get, serve

QUEUE = "reserve_seat"
JOB_FUNCTION = "100_seat.reserve_seat_job"  # RQ names the function a job runs
# A seat job takes a millisecond; past this it is stuck, and its worker stops it. A
# job whose worker died is found abandoned this long plus 10 s after it started.
JOB_TIMEOUT_SECONDS = 5
LISTENERS = "100_seat"  # the app processes, which share the printing of the job ends
# Set by /process, cleared by a launch: while it is there, every process serving the app
# works the queue (a server's /process reaches one of its processes, and a process
# started later, or again after a crash, must work it too).
PROCESSING_KEY = "100_seat:processing"
INITIAL_SEATS = 50
LUA = Path(__file__).parent / "lua"  # the course scripts' Lua, one file a script

# Reading the seats and writing them back in two steps (as the course did) lets two
# jobs both take the last seat: these scripts take a seat, or give it back, in one step.
TAKE_ONE_SEAT = LuaScript.from_file(LUA / "take_one_seat.lua")
GIVE_BACK_SEAT = LuaScript.from_file(LUA / "give_back_seat.lua")


class Seats:
    """The seats left, and the jobs that hold one, in Redis."""

    KEY = "available_seats"
    CLAIMS_KEY = "reserved_seats"

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def reserve_seat(self, number: int) -> None:
        """Set the seats, none reserved: `number` = seats left + claims from now on."""
        with self.client.pipeline() as pipe:  # MULTI: both or neither
            pipe.set(self.KEY, number)
            pipe.delete(self.CLAIMS_KEY)
            pipe.execute()

    def get_current_available_seats(self) -> str:
        seats = redis_get(self.client, self.KEY)
        return "0" if seats is None else seats.decode()

    def reservation_enabled(self) -> bool:
        return int(self.get_current_available_seats()) > 0

    def take_one(self, job_id: str) -> int | None:
        """The seats left once job `job_id` holds one, or None when there was none."""
        keys = {"seats": self.KEY, "claims": self.CLAIMS_KEY, "job": Job.key_for(job_id)}
        left = TAKE_ONE_SEAT.run(self.client, keys, {"job_id": job_id})
        if left == -2:
            raise RuntimeError("Job ended already: no seat taken")
        return None if left < 0 else left

    def give_back(self, job_id: str) -> bool:
        """Give back the seat of a job that failed, if it held one."""
        keys = {"seats": self.KEY, "claims": self.CLAIMS_KEY, "job": Job.key_for(job_id)}
        return GIVE_BACK_SEAT.run(self.client, keys, {"job_id": job_id}) == 1


def reserve_seat_job(data: dict) -> int:
    """What each job of the queue reserve_seat runs, wherever it runs."""
    job = get_current_job()
    left = Seats(job.connection).take_one(job.id)
    if left is None:
        raise RuntimeError("Not enough seats available")
    return left


def print_completed(job_id: str) -> None:
    print(f"Seat reservation job {job_id} completed", flush=True)


def print_failed(job_id: str, error: str) -> None:
    print(f"Seat reservation job {job_id} failed: {error}", flush=True)


def launch(client: redis.Redis | None = None) -> None:
    """What launching the app does, once however many processes serve it (`python
    100_seat.py`, `./serve.sh 100_seat`): 50 seats, none reserved, and the ends of the
    jobs heard from now on."""
    client = client or create_client(decode_responses=False)
    Seats(client).reserve_seat(INITIAL_SEATS)
    client.delete(PROCESSING_KEY)  # the queue is worked once /process says so
    QueueListener.start_group(client, QUEUE, LISTENERS)


class Reservations:
    """The app's state, all in Redis but for its two threads: the one that hears how
    the queue's jobs end, and this process's worker of the queue, started once
    `/process` was called on any process of the app."""

    PROCESSING_CHECK_SECONDS = 1.0  # how soon a process follows a /process sent to another

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.seats = Seats(client)
        self.queue = Queue(QUEUE, connection=client)
        self.listener = QueueListener(
            self.queue,
            LISTENERS,
            completed=print_completed,
            failed=print_failed,
            before_failed=self._give_back_seat,  # done even if this process dies then
            every_check=self.follow_processing,  # for a process that gets no requests
        )
        self.processor: WorkerThread | None = None
        self._listening_in: int | None = None  # the process whose thread hears the ends
        self._next_processing_check = 0.0
        self._lock = threading.Lock()

    def _give_back_seat(self, job_id: str, error: str) -> None:
        self.seats.give_back(job_id)

    def reserve(self) -> bool:
        """Queue a reservation job, unless reservations are blocked."""
        if not self.seats.reservation_enabled():
            return False
        create_job(self.queue, JOB_FUNCTION, {}, JOB_TIMEOUT_SECONDS)
        return True

    def listen(self) -> None:
        """Hear the ends of the jobs, from a thread of this process. Threads do not
        survive a fork: a server that builds the app, then forks its workers (gunicorn
        --preload), needs the thread started in each worker."""
        if self._listening_in == os.getpid():
            return
        with self._lock, contextlib.suppress(*UNREACHABLE):  # tried again on the next request
            if self._listening_in != os.getpid():
                self.listener.listen_in_background()
                self._listening_in = os.getpid()
                self._stop_at_exit()

    def start_processing(self) -> None:
        """/process: the queue is worked from now on, here and in the app's other processes."""
        self.client.set(PROCESSING_KEY, 1)
        self._start_worker()

    def follow_processing(self) -> None:
        """Work the queue here too if /process was called on another process (checked
        once a second at most: before a request, and from the listener's thread)."""
        if self._working_here() or time.monotonic() < self._next_processing_check:
            return
        self._next_processing_check = time.monotonic() + self.PROCESSING_CHECK_SECONDS
        with contextlib.suppress(*UNREACHABLE):  # tried again later
            if self.client.exists(PROCESSING_KEY):
                self._start_worker()

    def _working_here(self) -> bool:
        return self.processor is not None and self.processor.is_alive()

    def _start_worker(self) -> None:
        with self._lock:  # one worker, however many calls at once
            if not self._working_here():
                self.processor = WorkerThread([QUEUE], self.client)

    def close(self) -> None:
        """Stop the threads; the job in hand, if any, ends first."""
        if self.processor is not None:
            self.processor.stop()
        self.listener.close()

    def _stop_at_exit(self) -> None:
        # The job in hand ends before the process does. A server whose workers are
        # multiprocessing children (granian) ends them with os._exit, which skips atexit
        # but runs multiprocessing's finalizers.
        atexit.register(self.close)
        multiprocessing.util.Finalize(self, self.close, exitpriority=10)


def create_app(client: redis.Redis | None = None) -> Flask:
    """The app, on the Redis of REDIS_URL unless given a (bytes) client. It changes
    nothing in Redis: launch() sets the seats."""
    app = create_json_app(__name__)
    client = client or create_app_client(decode_responses=False)  # RQ stores bytes
    reservations = Reservations(client)
    app.extensions["reservations"] = reservations
    if (required := credentials()) is not None:  # it can delete jobs: not without them
        add_dashboard(app, "/rq", required, client)

    @app.before_request
    def start_threads() -> None:
        reservations.listen()
        reservations.follow_processing()

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
        reservations.start_processing()  # Redis unreachable: 503, as every route
        return json_response({"status": "Queue processing"})

    return app


def main() -> None:
    launch()
    serve(create_app())


if __name__ == "__main__":
    run(main)
