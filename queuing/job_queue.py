"""Kue's job model on RQ: what the course's Kue gave and RQ lacks, written once.

- Numbered ids. A job's id is the next value of one Redis counter (INCR), as in Kue,
  so ids rise across runs and processes: 1, 2, 3...
- Events heard by the process that created the job: `created`, `progress`,
  `completed`, `failed`. They are appended to a Redis Stream per queue, by the creator
  (`created`) and by whichever worker runs the job (the rest). A stream, not pub/sub:
  pub/sub stores nothing, so a creator that reads late would miss what happened; a
  stream keeps the events and the creator reads them from where its jobs began.
- Progress from inside a job: `report_progress(50)`, as Kue's `job.progress(50, 100)`.

The jobs stay plain RQ jobs on queues named as in the course: `rq info` lists them and
a stock `rq worker <queue>` started in this folder works them, events and all, because
the events come with the job itself (RQ success and failure callbacks, and
`report_progress`). The processors' own workers (JobWorker) send the same events from
the script that does a job's bookkeeping in one round trip (rq_bookkeeping.py).

Keys: `job_queue:ids` (the counter) and `job_queue:events:<queue>` (the streams).
"""

import contextlib
import logging
import os
import re
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from multiprocessing.process import BaseProcess
from typing import Any

import redis
from rq import Callback, Queue, Retry, SimpleWorker, get_current_job
from rq.connections import parse_connection
from rq.defaults import DEFAULT_LOGGING_DATE_FORMAT, DEFAULT_LOGGING_FORMAT, DEFAULT_WORKER_TTL
from rq.exceptions import AbandonedJobError, StopRequested
from rq.executions import Execution
from rq.job import Job, JobStatus
from rq.job_lifecycle import format_exc_info
from rq.logutils import blue, green
from rq.registry import CanceledJobRegistry, StartedJobRegistry
from rq.suspension import is_suspended
from rq.timeouts import JobTimeoutException
from rq.utils import now
from rq.worker import BaseWorker, DequeueStrategy, WorkerStatus
from rq.worker_pool import ForkProcess, WorkerPool

from queuing import rq_compat
from queuing.job_timeouts import WatchedDeathPenalty
from queuing.redis_connection import UNREACHABLE, confirmed_command, not_connected
from queuing.redis_scripts import LuaScript, NotConfirmed
from queuing.rq_bookkeeping import (
    Claimed,
    JobSteps,
    JobTemplate,
    Outcome,
    StepSettings,
    enqueue,
    renew_heartbeat,
    wait_for_job_id,
)

IDS_KEY = "job_queue:ids"
EVENTS_KEY = "job_queue:events:{queue}"
# Older events are trimmed; a creator that far behind still learns how its jobs ended
# (see JobCreator._catch_up).
EVENTS_KEPT = 100_000
# The course's jobs take milliseconds; one that runs this long is stuck and is stopped.
JOB_TIMEOUT_SECONDS = 30
# A creator with nothing to read for this long checks its jobs in Redis (see _catch_up).
CATCH_UP_AFTER_SECONDS = 5.0
CATCH_UP_JOBS = 1000
ENDED = {JobStatus.FINISHED, JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED}

log = logging.getLogger("job_queue")


def events_key(queue_name: str) -> str:
    return EVENTS_KEY.format(queue=queue_name)


def _append_event(target: Any, queue_name: str, job_id: str, event: str, **fields: Any) -> None:
    """XADD one event; `target` is a client or a pipeline."""
    entry = {"job": job_id, "event": event, **fields}
    target.xadd(events_key(queue_name), entry, maxlen=EVENTS_KEPT, approximate=True)


# ---------------------------------------------------------------- the worker side


def report_progress(completed: int, total: int = 100) -> None:
    """From inside a job: report how far it is, as Kue's `job.progress(completed, total)`.

    The percent goes to the creator as a `progress` event and into the job's meta, where
    RQ's tools show it.
    """
    if total <= 0:
        raise ValueError(f"report_progress(): total must be above 0, not {total}")
    job = get_current_job()
    if job is None:
        raise RuntimeError("report_progress() is for the function of a running job")
    percent = min(100, completed * 100 // total)
    job.meta["progress"] = percent
    with job.connection.pipeline() as pipe:
        pipe.hset(job.key, "meta", job.serializer.dumps(job.meta))  # what job.save_meta() writes
        _append_event(pipe, job.origin, job.id, "progress", percent=percent)
        pipe.execute()


# A job's end, written once: its status and its event in one step, unless it has ended
# already. RQ's callbacks run before RQ saves the status, and RQ's cleanup of abandoned
# jobs may run in two processes at once, or again after a crash: without this, a job
# could be told ended twice, or failed after it finished.
END_ONCE = LuaScript(
    keys=("job", "events"),  # the job's hash, its queue's events stream
    argv=("events_kept", "job_id", "status", "event", "error"),
    body="""
local current = redis.call('HGET', job, 'status')
if not current or current == 'finished' or current == 'failed' or current == 'stopped'
    or current == 'canceled' then
  return 0
end
redis.call('HSET', job, 'status', status)
if event == 'failed' then
  redis.call('XADD', events, 'MAXLEN', '~', events_kept, '*', 'job', job_id, 'event', event,
    'error', error)
else
  redis.call('XADD', events, 'MAXLEN', '~', events_kept, '*', 'job', job_id, 'event', event)
end
return 1
""",
)


def _end_once(
    connection: redis.Redis, job: Job, status: JobStatus, event: str, error: str = ""
) -> None:
    keys = {"job": job.key, "events": events_key(job.origin)}
    args = {"events_kept": EVENTS_KEPT, "job_id": job.id, "status": status.value}
    END_ONCE.run(connection, keys, {**args, "event": event, "error": error})


# A queued job that no replica confirmed in time, taken back if no worker has it yet:
# it ends canceled (RQ's status and registry) and its creator hears it failed.
CANCEL_UNCONFIRMED = LuaScript(
    keys=("queue", "job", "canceled", "events"),  # canceled: the queue's canceled registry
    argv=("events_kept", "job_id", "now", "error"),
    body="""
if redis.call('LREM', queue, 1, job_id) == 0 then return 0 end
redis.call('HSET', job, 'status', 'canceled')
redis.call('ZADD', canceled, now, job_id)
redis.call('XADD', events, 'MAXLEN', '~', events_kept, '*', 'job', job_id, 'event', 'failed',
  'error', error)
return 1
""",
)
NOT_CONFIRMED = "Not confirmed by a replica in time: canceled"


def _cancel_unconfirmed(queue: Queue, jobs: list[Job]) -> None:
    for job in jobs:
        keys = {"queue": queue.key, "job": job.key, "events": events_key(queue.name)}
        keys["canceled"] = CanceledJobRegistry(queue.name, connection=queue.connection).key
        args = {"events_kept": EVENTS_KEPT, "job_id": job.id, "now": int(time.time())}
        CANCEL_UNCONFIRMED.run(queue.connection, keys, {**args, "error": NOT_CONFIRMED})


def job_completed(job: Job, connection: redis.Redis, result: Any) -> None:
    """RQ success callback of every job made here: tell the creator."""
    _end_once(connection, job, JobStatus.FINISHED, "completed")


def job_failed(job: Job, connection: redis.Redis, exc_type: type, exc_value: Any, tb: Any) -> None:
    """RQ failure callback of every job made here: tell the creator, with the error."""
    if job.retries_left:
        return  # RQ runs it again: not the end of it
    _end_once(connection, job, JobStatus.FAILED, "failed", _error_text(exc_type, exc_value))


# The callbacks every job made here carries: they send its end to its creator.
ON_SUCCESS = Callback(job_completed)
ON_FAILURE = Callback(job_failed)


def _error_text(exc_type: type, exc_value: Any) -> str:
    if exc_type is AbandonedJobError:
        return "Job abandoned: its worker stopped before the job ended"
    return str(exc_value) or exc_type.__name__


# ---------------------------------------------------------------- the creator side

Handler = Callable[..., None]


class JobCreator:
    """Creates jobs on one queue and tells its handlers what becomes of them.

    Handlers get the job id first: `progress(job_id, percent)`, `completed(job_id)`,
    `failed(job_id, error)`. They run in the thread that calls `wait()`, one event at a
    time, in the order each job reported them. (An app, whose jobs may end after the
    process that queued them is gone, hears them with a QueueListener instead.)
    """

    def __init__(
        self,
        queue: Queue,
        *,
        progress: Handler | None = None,
        completed: Handler | None = None,
        failed: Handler | None = None,
    ) -> None:
        self.queue = queue
        self.connection: redis.Redis = queue.connection
        self._reader = _blocking_client(queue.connection, CATCH_UP_AFTER_SECONDS + 10)
        self.handlers = {"progress": progress, "completed": completed, "failed": failed}
        self._events_key = events_key(queue.name)
        self._read_from: str | None = None  # the stream position after the last event read
        self._unfinished: set[str] = set()  # jobs created here that have not ended yet
        self._lock = threading.Lock()

    def create(
        self, func: str | Callable, data: Any, job_timeout: int = JOB_TIMEOUT_SECONDS
    ) -> Job:
        """Queue a job running `func(data)`, with the next numbered id."""
        return self.create_many(func, [data], job_timeout)[0]

    def create_many(
        self, func: str | Callable, datas: list[Any], job_timeout: int = JOB_TIMEOUT_SECONDS
    ) -> list[Job]:
        """Queue a job running `func(data)` for each data, in one round trip, as Kue
        sends the saves of a loop of `queue.create(...).save()` at once."""
        jobs, first_event = _create_jobs(self.queue, func, datas, job_timeout)
        if not jobs:
            return []
        with self._lock:
            self._unfinished.update(job.id for job in jobs)
            if self._read_from is None:  # read from just before the first job's events
                self._read_from = first_event
        return jobs

    def wait(self) -> None:
        """Deliver events to the handlers until every job created here has ended."""
        while self._unfinished:
            self._deliver_next_events()

    def _deliver_next_events(self) -> None:
        try:
            entries = self._read_events()
            if entries:
                for entry_id, fields in entries:
                    self._read_from = _decode(entry_id)
                    self._deliver({_decode(k): _decode(v) for k, v in fields.items()})
            else:
                self._catch_up()
        except UNREACHABLE as error:
            # The stream keeps the events meanwhile: once Redis is back, nothing is lost.
            print(not_connected(error), flush=True)
            time.sleep(1)

    def _read_events(self) -> list:
        reply = self._reader.xread(
            {self._events_key: self._read_from or "0-0"},
            count=1000,
            block=int(CATCH_UP_AFTER_SECONDS * 1000),
        )
        return reply[0][1] if reply else []

    def _deliver(self, event: dict[str, str]) -> None:
        job_id, name = event["job"], event["event"]
        with self._lock:
            if job_id not in self._unfinished:
                return  # another creator's job, or one already reported as ended
            if name in ("completed", "failed"):
                self._unfinished.discard(job_id)
        handler = self.handlers.get(name)
        if handler is None:
            return
        if name == "progress":
            handler(job_id, int(event["percent"]))
        elif name == "failed":
            handler(job_id, event["error"])
        else:
            handler(job_id)

    def _catch_up(self) -> None:
        """Nothing new for a while: learn from Redis how jobs ended that sent no event.

        A stock forking `rq worker` whose work horse is killed fails the job without
        running its failure callback; a worker killed outright leaves its job "started"
        until RQ's registry cleanup calls it abandoned (and runs the callback, whose
        event arrives on the next read). Costs two round trips per check, none per job.
        """
        with self._lock:
            # The oldest first, a bounded number per check: a queue is worked oldest first.
            unfinished = sorted(self._unfinished, key=int)[:CATCH_UP_JOBS]
        if not unfinished:
            return
        for job_id, job in zip(
            unfinished, Job.fetch_many(unfinished, self.connection), strict=True
        ):
            if job is None:
                self._deliver({"job": job_id, "event": "failed", "error": "Job no longer in Redis"})
            elif job.get_status(refresh=False) == JobStatus.FINISHED:
                self._deliver({"job": job_id, "event": "completed"})
            elif job.get_status(refresh=False) in ENDED:
                self._deliver({"job": job_id, "event": "failed", "error": _stored_error(job)})
        _clean_up_abandoned_jobs(self.queue)


def create_job(
    queue: Queue, func: str | Callable, data: Any, job_timeout: int = JOB_TIMEOUT_SECONDS
) -> Job:
    """Queue a job running `func(data)`, with the next numbered id, its end to be heard
    by a QueueListener."""
    return _create_jobs(queue, func, [data], job_timeout)[0][0]


def _create_jobs(
    queue: Queue, func: str | Callable, datas: list[Any], job_timeout: int
) -> tuple[list[Job], str | None]:
    """The jobs, queued in one round trip, and the stream position of the first one's
    `created` event."""
    if not datas:
        return [], None
    template = _template(queue, func, job_timeout)
    jobs, hashes = zip(*(template.build(queue.connection, data) for data in datas), strict=True)
    try:
        first_event = enqueue(queue, jobs, hashes, IDS_KEY, events_key(queue.name), EVENTS_KEPT)
    except NotConfirmed as unconfirmed:
        _cancel_unconfirmed(queue, unconfirmed.reply)  # a job a worker took already runs
        raise
    return list(jobs), first_event


_templates: dict[tuple, JobTemplate] = {}


def _template(queue: Queue, func: str | Callable, job_timeout: int) -> JobTemplate:
    """One JobTemplate per queue, function and timeout, made once per process."""
    key = (queue.name, queue.serializer, func, job_timeout)
    if key not in _templates:
        callbacks = {"on_success": ON_SUCCESS, "on_failure": ON_FAILURE}
        _templates[key] = JobTemplate(queue, func, job_timeout, **callbacks)
    return _templates[key]


class QueueListener:
    """Hears how every job of a queue ends, whoever created it: for an app served by
    several processes, where the process that queued a job may be gone when it ends.

    The listeners of one group share the queue's events (a Redis consumer group): each
    end is given to one of them, and one given to a listener whose process died before
    it took it is taken over by another after CLAIM_AFTER_SECONDS. Each job ends once
    in the stream (END_ONCE, and the worker's step), and an end is handled by the
    listener whose XACK took it, so each end is handled once. Handlers:
    `completed(job_id)`, `failed(job_id, error)`; one that raises is logged.
    `before_failed(job_id, error)` runs before the end is taken: for writes to Redis,
    idempotent (it may run again, in another listener), that must happen whatever
    becomes of this process; the handler after it then only prints. A listener's
    process killed between an XACK and the handler's print loses that one line: the
    end itself is in Redis. `every_check()`, if given, runs in the listener's thread
    every CHECK_EVERY_SECONDS.
    """

    CLAIM_AFTER_SECONDS = 10
    CHECK_EVERY_SECONDS = 5  # for ends taken but not handled, and abandoned jobs
    FORGET_AFTER_SECONDS = 3600  # listeners gone this long leave the group

    def __init__(
        self,
        queue: Queue,
        group: str,
        *,
        completed: Handler | None = None,
        failed: Handler | None = None,
        before_failed: Handler | None = None,
        every_check: Callable[[], None] | None = None,
    ) -> None:
        self.queue = queue
        self.connection: redis.Redis = queue.connection
        self.group = group
        self.consumer = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.handlers = {"completed": completed, "failed": failed}
        self.before_taking = {"failed": before_failed}
        self.every_check = every_check
        self._key = events_key(queue.name)
        self._reader = _blocking_client(queue.connection, self.CHECK_EVERY_SECONDS + 10)
        self._closed = threading.Event()
        self._next_check = 0.0
        self._recovering = True  # first, what this listener was given and did not take
        self._unsure: list[tuple[Any, dict]] = []  # taken, maybe: the XACK was cut off

    @staticmethod
    def start_group(connection: redis.Redis, queue_name: str, group: str) -> None:
        """Start the group afresh, at the end of the queue's events (an app's launch)."""
        with connection.pipeline() as pipe:
            pipe.xgroup_destroy(events_key(queue_name), group)
            pipe.xgroup_create(events_key(queue_name), group, id="$", mkstream=True)
            pipe.execute(raise_on_error=False)

    def listen_in_background(self) -> threading.Thread:
        """Hear the ends in a thread of their own, from those of the jobs created once
        this has returned, if the group is new."""
        self._join_group()
        thread = threading.Thread(
            target=self._listen, name=f"ends of {self.queue.name}", daemon=True
        )
        thread.start()
        return thread

    def close(self) -> None:
        """Stop listening (within one read, 5 s at most)."""
        self._closed.set()

    def _listen(self) -> None:
        while not self._closed.is_set():
            try:
                if self._recovering:
                    self._finish_what_was_cut_off()
                self._listen_once()
            except UNREACHABLE as error:
                self._recovering = True
                if not self._closed.is_set():
                    # The stream and the group keep the events: nothing is lost meanwhile.
                    print(not_connected(error), flush=True)
                    time.sleep(1)
            except Exception as error:  # an error reply, a job that cannot be loaded: go on
                if isinstance(error, redis.ResponseError) and "NOGROUP" in str(error):
                    # A Redis that lost its data: hear what comes from now on.
                    self._unsure.clear()
                    self._recovering = False
                    self._join_group()
                else:
                    log.exception("Listening to %s", self._key)
                    time.sleep(1)

    def _listen_once(self) -> None:
        if time.monotonic() >= self._next_check:
            self._next_check = time.monotonic() + self.CHECK_EVERY_SECONDS
            self._take_over_unhandled_ends()
            _clean_up_abandoned_jobs(self.queue)
            if self.every_check is not None:
                self.every_check()
        self._handle_all(self._read(">", block=self.CHECK_EVERY_SECONDS * 1000))

    def _read(self, start: str, block: int | None = None) -> list:
        """Entries for this listener: new ones (">"), or those it was given and has not
        taken yet ("0")."""
        reply = self._reader.xreadgroup(
            self.group, self.consumer, {self._key: start}, count=100, block=block
        )
        return reply[0][1] if reply else []

    def _finish_what_was_cut_off(self) -> None:
        """Redis is back: handle what a lost connection left unsure. An end whose XACK
        went through but whose reply was lost is not pending any more: it was ours."""
        for entry_id, fields in self._unsure:
            pending = self.connection.xpending_range(
                self._key, self.group, min=entry_id, max=entry_id, count=1
            )
            # Gone with a primary that failed: its job ends again, with a new event.
            there = self.connection.xrange(self._key, min=entry_id, max=entry_id)
            if there and not pending:
                self._run_handler(fields, self.handlers)
        self._unsure.clear()
        while entries := self._read("0"):  # given to this listener, not yet taken
            self._handle_all(entries)
        self._recovering = False

    def _join_group(self) -> None:
        """Make the group if it is not there (an app not launched, or a Redis that lost
        its data), to hear what comes from now on."""
        try:
            self.connection.xgroup_create(self._key, self.group, id="$", mkstream=True)
        except redis.ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise

    def _take_over_unhandled_ends(self) -> None:
        start = "0-0"
        while True:
            start, entries, *_ = self.connection.xautoclaim(
                self._key,
                self.group,
                self.consumer,
                self.CLAIM_AFTER_SECONDS * 1000,
                start_id=start,
                count=100,
            )
            for entry_id, fields in entries:
                self._handle(entry_id, fields)
            if _decode(start) == "0-0":
                break
        for consumer in self.connection.xinfo_consumers(self._key, self.group):
            idle_seconds = consumer["idle"] / 1000
            if consumer["pending"] == 0 and idle_seconds > self.FORGET_AFTER_SECONDS:
                self.connection.xgroup_delconsumer(self._key, self.group, consumer["name"])

    def _handle_all(self, entries: list) -> None:
        for entry_id, fields in entries:
            self._handle(entry_id, fields)

    def _handle(self, entry_id: Any, fields: dict) -> None:
        """Take the end (XACK), then run its handler: only the listener whose XACK
        took it runs it, so an end is handled once even when Redis or a listener
        crashes in between (an XACK cut off by a crash is settled once Redis is back)."""
        self._run_handler(fields, self.before_taking)
        try:
            # Printed only once a replica has the XACK, and so the end before it: a
            # failover cannot bring back an end already printed.
            taken = confirmed_command(self.connection, "XACK", self._key, self.group, entry_id)
        except UNREACHABLE:
            self._unsure.append((entry_id, fields))
            raise
        if taken:
            self._run_handler(fields, self.handlers)

    def _run_handler(self, fields: dict, handlers: dict[str, Handler | None]) -> None:
        """Handlers may write to Redis, idempotently, before they print: a write that
        finds Redis gone is tried again until Redis is back."""
        event = {_decode(k): _decode(v) for k, v in fields.items()}
        handler = handlers.get(event.get("event", ""))
        if handler is None:
            return
        arguments = [event["job"], event["error"]] if event["event"] == "failed" else [event["job"]]
        while not self._closed.is_set():
            try:
                handler(*arguments)
                return
            except UNREACHABLE as error:
                print(not_connected(error), flush=True)
                time.sleep(1)
            except Exception:
                log.exception("Handler of %s for job %s", event["event"], event["job"])
                return


def _clean_up_abandoned_jobs(queue: Queue) -> None:
    """RQ's cleanup of the started jobs whose worker stopped: they fail, and their
    failure callback tells their creator. Signals only work in the main thread; this
    may run in another."""
    StartedJobRegistry(
        queue.name, connection=queue.connection, death_penalty_class=WatchedDeathPenalty
    ).cleanup()


def _blocking_client(connection: redis.Redis, socket_timeout: float) -> redis.Redis:
    """A client like `connection` whose reads may wait `socket_timeout` seconds: a
    blocking XREAD outlasts redis-py's default of 5, and the caller's client stays as is."""
    client_class, connection_class, kwargs = parse_connection(connection)
    kwargs["socket_timeout"] = socket_timeout
    return client_class(
        connection_pool=redis.ConnectionPool(connection_class=connection_class, **kwargs)
    )


def _stored_error(job: Job) -> str:
    """The message of the error RQ stored for a failed job (its traceback's last line)."""
    result = job.latest_result()
    lines = (result.exc_string or "").strip().splitlines() if result else []
    if not lines:
        return f"Job {job.get_status(refresh=False).value}"
    return re.sub(r"^[A-Za-z_][\w.]*: ", "", lines[-1])  # "ValueError: msg" -> "msg"


def _decode(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


# ---------------------------------------------------------------- the processor side


class JobWorker(SimpleWorker):
    """The workers of this project's processors.

    RQ's SimpleWorker (no fork per job), whose loop writes each job's bookkeeping in
    one round trip (rq_bookkeeping: finish a job and take the next in one script)
    instead of RQ's twenty; what RQ stores is the same, so RQ's tools see no
    difference, and a job outside that path runs through RQ's own code. `work()` takes
    RQ's arguments and keeps RQ's rules (max_jobs, max_idle_time, the scheduler, the
    dequeue strategies, the logging); RQ's own worker tests check it
    (conformance/rq_suite.py). A thread renews the heartbeat of a job that runs long, so
    a live worker's job is never called abandoned and a dead worker's soon is.
    """

    # Past the job's timeout a live worker has ended the job; this covers the bookkeeping.
    HEARTBEAT_MARGIN_SECONDS = 10
    # While waiting for jobs: how often it looks up from the queue (stop, heartbeat).
    WAIT_SECONDS = 1
    # RQ's: a worker that loses Redis between jobs waits for it in place, trying again
    # after 1 s, 2 s, 4 s... up to a minute. _WorkerLoop's workers leave work() instead
    # (False), and it starts a new worker once Redis is back, registered afresh: a Redis
    # restarted without its data has lost the old one's registration.
    waits_for_redis_in_place = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("maintenance_interval", 60)  # finds abandoned jobs within a minute
        super().__init__(*args, **kwargs)
        self.stop_requested = False
        self._last_housekeeping = 0.0
        # The job being run and its execution's id ('' for one RQ's own code runs), for
        # the heartbeat thread; None between jobs.
        self._in_hand: tuple[Job, str] | None = None
        self._signals_to_restore: dict[int, Any] = {}
        self._stop_date_unsaved = False

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        """How long a job's execution counts as alive without news: RQ's SimpleWorker's
        for a job without a timeout (-1), else its timeout plus a margin for the
        bookkeeping (RQ's SimpleWorker adds 60). The heartbeat thread renews it while
        the job runs."""
        if job.timeout == -1:
            return DEFAULT_WORKER_TTL
        return int(job.timeout or self.queue_class.DEFAULT_TIMEOUT) + self.HEARTBEAT_MARGIN_SECONDS

    def request_stop(self, signum: int = 0, frame: Any = None) -> None:
        """Stop once the job in hand, if any, has ended (checked between jobs, and at
        least once a second while waiting for one). A flag, never an exception: raised
        inside redis-py, one could pass for a lost connection.

        On a signal (RQ's handlers, which work() installs where the process has none of
        its own), what RQ's request_stop does besides: the date is kept, and another
        signal more than a second later stops at once (RQ's request_force_stop)."""
        self.stop_requested = True
        busy = self._in_hand is not None
        if busy:  # RQ's flag, which RQ sets only then (_shutdown)
            rq_compat.mark_stop_requested(self)
        if signum:
            rq_compat.set_shutdown_requested(self, now())
            self._stop_date_unsaved = busy  # RQ saves it when busy
            signal.signal(signal.SIGINT, self.request_force_stop)
            signal.signal(signal.SIGTERM, self.request_force_stop)
            self.handle_warm_shutdown_request()

    def work(
        self,
        burst: bool = False,
        logging_level: str | None = None,
        date_format: str = DEFAULT_LOGGING_DATE_FORMAT,
        log_format: str = DEFAULT_LOGGING_FORMAT,
        max_jobs: int | None = None,
        max_idle_time: int | None = None,
        with_scheduler: bool = False,
        dequeue_strategy: DequeueStrategy = DequeueStrategy.DEFAULT,
    ) -> bool:
        """Work the queues until stopped (or, in burst mode, until they are empty), as
        RQ's BaseWorker.work with the same arguments; True if it ran any job."""
        self.bootstrap(logging_level, date_format, log_format)
        rq_compat.set_dequeue_strategy(self, dequeue_strategy)
        if with_scheduler:
            rq_compat.start_scheduler(self, burst, logging_level, date_format, log_format)
        self._install_signal_handlers_unless_owned()
        steps = JobSteps(self.connection, self.name, self.key, self.step_settings())
        heartbeat = _Heartbeat(self)
        outcome: Outcome | None = None
        completed = 0
        idle_since = time.monotonic()
        waiting = True  # between jobs, where RQ's worker waits for a lost Redis in place
        reconnect_wait = 1.0
        try:
            while True:
                try:
                    if self._housekeeping_due():
                        # Written first: housekeeping may wait a long while (`rq suspend`).
                        self._write_outcome(steps, outcome)
                        outcome = None
                        self._keep_house(burst)
                    if self.stop_requested:
                        self.log.info("Worker %s: stopping on request", self.name)
                        break
                    claimed, queue = self._take(steps, outcome)
                    outcome = None
                    if claimed is None and not burst:
                        claimed, queue = self._wait_for_job(steps)
                    if claimed is None:
                        if burst:
                            self.log.info("Worker %s: done, quitting", self.name)
                            break
                        idle = time.monotonic() - idle_since
                        if max_idle_time is not None and idle >= max_idle_time:
                            self.log.info(
                                "Worker %s: idle for %d seconds, quitting", self.name, max_idle_time
                            )
                            break
                        continue
                    reconnect_wait = 1.0
                    waiting = False
                    outcome = self._run(claimed, queue)
                    waiting = True
                    completed += 1
                    idle_since = time.monotonic()
                    if max_jobs is not None and completed >= max_jobs:
                        self.log.info(
                            "Worker %s: finished executing %d jobs, quitting", self.name, completed
                        )
                        break
                # RQ's loop's rules, and its dequeue's for a Redis lost between jobs.
                except UNREACHABLE as error:
                    if not self.waits_for_redis_in_place:
                        raise  # for the caller to start anew (_WorkerLoop)
                    if waiting and not self.stop_requested:
                        self.log.error(
                            "Worker %s: could not connect to Redis instance: %s retrying in %d "
                            "seconds...",
                            self.name,
                            error,
                            reconnect_wait,
                        )
                        _sleep_unless(lambda: self.stop_requested, reconnect_wait)
                        reconnect_wait = min(
                            reconnect_wait * self.exponential_backoff_factor,
                            self.max_connection_wait_time,
                        )
                        continue
                    if isinstance(error, redis.exceptions.TimeoutError):
                        self.log.error(
                            "Worker %s: Redis connection timeout, quitting...", self.name
                        )
                    else:
                        self.log.error(
                            "Worker %s: found an unhandled exception, quitting...",
                            self.name,
                            exc_info=True,
                        )
                    break
                except StopRequested:  # `rq suspend` in burst mode
                    break
                except SystemExit:  # a cold stop
                    raise
                except BaseException:
                    self.log.error(
                        "Worker %s: found an unhandled exception, quitting...",
                        self.name,
                        exc_info=True,
                    )
                    break
        finally:
            try:
                self._write_outcome(steps, outcome)
            finally:
                heartbeat.stop()
                steps.close()
                try:
                    if self._stop_date_unsaved:
                        self.set_shutdown_requested_date()
                    self.teardown()
                finally:
                    self._restore_signal_handlers()
        return bool(completed)

    def _install_signal_handlers_unless_owned(self) -> None:
        """RQ's work() installs its handlers (SIGINT, SIGTERM: stop after the job in
        hand); so does this, unless the process has handlers of its own (a processor's
        worker process installs its own, _run_worker_process) or this is not the main
        thread (an app's WorkerThread: only the main thread may). They are put back as
        they were when work() returns."""
        if threading.current_thread() is not threading.main_thread():
            return
        unset = (signal.default_int_handler, signal.SIG_DFL, signal.SIG_IGN, None)
        current = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
        # An RQ worker that ran before in this process left its handlers: not the process's.
        if any(
            handler not in unset and not isinstance(getattr(handler, "__self__", None), BaseWorker)
            for handler in current.values()
        ):
            return
        self._signals_to_restore = current
        rq_compat.install_signal_handlers(self)

    def _restore_signal_handlers(self) -> None:
        for number, handler in self._signals_to_restore.items():
            signal.signal(number, handler)
        self._signals_to_restore = {}

    def _take(self, steps: JobSteps, outcome: Outcome | None) -> tuple[Claimed | None, Queue]:
        """Write the last job's outcome and take the next job, from the first queue that
        has one, in the order of the dequeue strategy."""
        queues = rq_compat.ordered_queues(self)
        for queue in queues:
            # Redis lost here: work() writes the outcome again once it is back (a job
            # ends once, so a second write of it changes nothing).
            kind, claimed = self._step(steps, outcome, queue)
            outcome = None
            while kind in ("dependents", "gone"):  # a deleted job at the head: the next
                kind, claimed = self._step(steps, None, queue)
            if claimed is not None:
                self._taken(claimed, queue)
                return claimed, queue
        return None, queues[0]

    def _step(
        self, steps: JobSteps, outcome: Outcome | None, queue: Queue | None, job_id: str = ""
    ) -> tuple[str, Claimed | None]:
        kind, claimed = steps.step(outcome, queue, job_id)
        if kind == "dependents":  # rare: the ended job has dependents, which RQ moves on
            job = outcome.job
            origin = self.queue_class(
                job.origin, connection=self.connection, serializer=self.serializer
            )
            origin.enqueue_dependents(job)
            if outcome.ttl == 0 and (outcome.finished or outcome.recorded):
                job.cleanup(0, remove_from_queue=not outcome.finished)  # kept for 0 s: RQ's
        return kind, claimed

    def _taken(self, claimed: Claimed, queue: Queue) -> None:
        """What RQ's dequeue does once it has a job: the queues reordered by the dequeue
        strategy, the job logged."""
        self.reorder_queues(reference_queue=queue)
        job = claimed.job
        job.redis_server_version = self.get_redis_server_version()
        if self.log.isEnabledFor(logging.INFO):
            if self.log_job_description:
                description = blue(job.description)
                self.log.info(
                    "Worker %s: %s: %s (%s)", self.name, green(queue.name), description, job.id
                )
            else:
                self.log.info("Worker %s: %s: %s", self.name, green(queue.name), job.id)

    def _write_outcome(self, steps: JobSteps, outcome: Outcome | None) -> None:
        """Write a job's outcome, waiting for Redis as long as it takes: lost, the job
        would later be called abandoned though it ran. A cold stop (a second Ctrl-C)
        still ends the wait."""
        while outcome is not None:
            try:
                self._step(steps, outcome, None)
                return
            except UNREACHABLE as error:
                self.log.warning(
                    "Job %s ended, Redis unreachable (%s): retrying", outcome.job.id, error
                )
                time.sleep(1)

    def _wait_for_job(self, steps: JobSteps) -> tuple[Claimed | None, Queue]:
        """Block on the queues for a while, as RQ's worker does, then take what came."""
        queues = rq_compat.ordered_queues(self)
        found = wait_for_job_id(queues, self.WAIT_SECONDS, self.connection)
        if found is None:
            return None, queues[0]
        queue, job_id = found
        _, claimed = self._step(steps, None, queue, job_id)
        if claimed is not None:
            self._taken(claimed, queue)
        return claimed, queue

    def step_settings(self) -> StepSettings:
        """What the steps of its jobs need to know of this module and this worker."""
        return StepSettings(
            default_timeout=self.queue_class.DEFAULT_TIMEOUT,
            heartbeat_margin=self.HEARTBEAT_MARGIN_SECONDS,
            no_timeout_ttl=DEFAULT_WORKER_TTL,
            one_queue=len(self.queues) == 1,
            fast_path=self._may_take_fast_path(),
            events_kept=EVENTS_KEPT,
            events_key=events_key,
            success_callback=ON_SUCCESS.name,
            failure_callback=ON_FAILURE.name,
        )

    def _may_take_fast_path(self) -> bool:
        """Whether RQ's per-job hooks are JobWorker's own. The step does their work for
        the jobs it covers: a subclass or a test that changes one of them (on the class
        or the worker) expects RQ's code to run them, so then every job goes through it."""
        return all(
            name not in vars(self) and getattr(type(self), name) is _OWN_HOOKS[name]
            for name in _RQ_HOOKS
        )

    def _housekeeping_due(self) -> bool:
        return time.monotonic() - self._last_housekeeping >= 1

    def check_for_suspension(self, burst: bool) -> None:
        """RQ's wait while `rq suspend` holds the workers, which a stop request also
        ends: RQ's signal handler raises StopRequested out of it when the worker is
        idle; a JobWorker's request_stop only sets a flag."""
        before_state = None
        notified = False
        while not self._stop_seen() and is_suspended(self.connection, self):
            if burst:
                self.log.info("Worker %s: suspended in burst mode, exiting", self.name)
                self.log.info(
                    "Worker %s: note: there could still be unfinished jobs on the queue",
                    self.name,
                )
                raise StopRequested
            if not notified:
                self.log.info("Worker %s: suspended, run `rq resume` to resume", self.name)
                before_state = self.get_state()
                self.set_state(WorkerStatus.SUSPENDED)
                notified = True
            time.sleep(1)
        if before_state:
            self.set_state(before_state)

    def _stop_seen(self) -> bool:
        return self.stop_requested or rq_compat.stop_requested(self)

    def _keep_house(self, burst: bool) -> None:
        """About once a second: RQ's heartbeat, `rq suspend`, and its maintenance."""
        self._last_housekeeping = time.monotonic()
        self.heartbeat()
        self.check_for_suspension(burst)
        if self.should_run_maintenance_tasks:
            self.run_maintenance_tasks()

    def renew_heartbeat(self) -> None:
        """RQ's maintain_heartbeats for the job in hand, if any (from the heartbeat
        thread): its execution and this worker stay alive for another
        job_monitoring_interval plus RQ's 60 s."""
        in_hand = self._in_hand
        if in_hand is None:
            return
        job, execution_id = in_hand
        if not execution_id:  # a job RQ's own code runs: the execution it made
            executions = list(self.executions.values())
            if not executions:
                return
            execution_id = executions[0].id
        ttl = self.job_monitoring_interval + 60
        renew_heartbeat(self.connection, self.key, job, execution_id, ttl, ttl)

    def _run(self, claimed: Claimed, queue: Queue) -> Outcome | None:
        """Run the job; its outcome, to be written with the next step. A job left to
        RQ runs through RQ's own code, which writes its outcome itself."""
        self._in_hand = (claimed.job, claimed.execution_id if claimed.covered else "")
        try:
            if not claimed.covered:
                self.execute_job(claimed.job, queue)
                return None
            return self._perform(claimed, queue)
        finally:
            self._in_hand = None

    def _perform(self, claimed: Claimed, queue: Queue) -> Outcome | None:
        job = claimed.job
        rq_compat.set_state_in_memory(self, WorkerStatus.BUSY)  # the step wrote it to Redis
        try:
            timeout = job.timeout or self.queue_class.DEFAULT_TIMEOUT
            with self.death_penalty_class(timeout, JobTimeoutException, job_id=job.id):
                return_value = job.perform()
        except _ColdStop:  # the job is left to be found abandoned
            raise
        except BaseException:  # as RQ's perform_job: whatever the job raised fails it
            exc_info = sys.exc_info()
            self.handle_exception(job, *exc_info)
            event = "failed" if job.failure_callback else ""
            error = _error_text(exc_info[0], exc_info[1])
            exc_string = format_exc_info(exc_info)
            recorded = not self.disable_default_exception_handler
            return Outcome.failed_with(claimed, self.name, exc_string, event, error, recorded)
        finally:
            rq_compat.set_state_in_memory(self, WorkerStatus.IDLE)
        if isinstance(return_value, Retry):
            self._retry(claimed, queue, return_value)
            return None
        ttl = job.get_result_ttl(self.default_result_ttl)
        event = "completed" if job.success_callback else ""
        outcome = Outcome.finished_with(claimed, self.name, return_value, ttl, event)
        if self.log.isEnabledFor(logging.INFO):
            self._log_success(outcome, return_value)
        return outcome

    def _retry(self, claimed: Claimed, queue: Queue, retry: Retry) -> None:
        """A job that returned rq.Retry: RQ's own handling (a plain job may return one,
        so the step cannot see it coming)."""
        job = claimed.job
        execution = Execution(claimed.execution_id, job.id, self.connection, self.name)
        execution.created_at = claimed.started_at
        self.handle_execution_ended(job, queue, job.success_callback_timeout)
        self.handle_job_retry(job, queue, retry, queue.started_job_registry, execution)

    def _log_success(self, outcome: Outcome, return_value: Any) -> None:
        """RQ's lines for a job that succeeded (handle_job_success, _finalize_success)."""
        job = outcome.job
        taken = outcome.ended_at - job.started_at if job.started_at else None
        if self.log_job_description:
            self.log.info(
                "Successfully completed %s job in %ss on worker %s",
                job.description,
                taken,
                self.name,
            )
        else:
            self.log.info(
                "Successfully completed job %s in %ss on worker %s", job.id, taken, self.name
            )
        self.log.info(
            "Worker %s: %s: %s (%s)", self.name, green(job.origin), blue("Job OK"), job.id
        )
        if return_value is not None:
            self.log.debug("Worker %s: result: %r", self.name, return_value)
        if self.log_result_lifespan:
            if outcome.ttl == 0:
                self.log.info("Worker %s: job %s result discarded immediately", self.name, job.id)
            elif outcome.ttl > 0:
                self.log.info(
                    "Worker %s: job %s result is kept for %s seconds",
                    self.name,
                    job.id,
                    outcome.ttl,
                )
            else:
                self.log.info(
                    "Worker %s: job %s result will never expire, clean up result key manually",
                    self.name,
                    job.id,
                )


# RQ's methods that run a job and write its bookkeeping, which the step does instead for
# a job it covers (rq/worker/base.py, worker_classes.py).
_RQ_HOOKS = (
    "execute_job",
    "prepare_execution",
    "perform_job",
    "prepare_job_execution",
    "handle_execution_ended",
    "handle_job_success",
    "handle_job_failure",
    "cleanup_execution",
    "increment_successful_job_count",
    "increment_failed_job_count",
    "increment_total_working_time",
    "get_heartbeat_ttl",
)
_OWN_HOOKS = {name: getattr(JobWorker, name) for name in _RQ_HOOKS}


def _sleep_unless(stop_requested: Callable[[], bool], seconds: float) -> None:
    """Sleep, in short naps that a stop request ends (time.sleep takes no lock: a
    signal handler may set the request meanwhile)."""
    deadline = time.monotonic() + seconds
    while not stop_requested() and (left := deadline - time.monotonic()) > 0:
        time.sleep(min(left, 0.05))


class _ColdStop(SystemExit):
    """A processor's second Ctrl-C: the worker process ends at once, and its job is left
    to be found abandoned (not failed as a job that raised SystemExit)."""


class _Heartbeat:
    """RQ's job monitoring for a worker that runs its jobs itself: a thread that, every
    job_monitoring_interval seconds, renews the heartbeat of the job in hand (RQ's
    forking Worker does it while its work horse runs). So a job with no timeout (-1) is
    never called abandoned while it runs, and a dead worker's job still is soon after.
    Between renewals it only waits: the worker's loop pays two assignments a job."""

    def __init__(self, worker: JobWorker) -> None:
        self.worker = worker
        self._stopped = threading.Event()
        self._thread = threading.Thread(
            target=self._beat, name=f"heartbeat of {worker.name}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not threading.current_thread():
            self._thread.join(5)

    def _beat(self) -> None:
        while not self._stopped.wait(self.worker.job_monitoring_interval):
            try:
                self.worker.renew_heartbeat()
            except UNREACHABLE as error:  # the next one may get through
                self.worker.log.debug("Worker %s: heartbeat not sent: %s", self.worker.name, error)
            except Exception:
                self.worker.log.exception("Worker %s: heartbeat failed", self.worker.name)


class _ThreadJobWorker(JobWorker):
    """A JobWorker in a thread of a larger process (an app), where signals are not its
    own: the process's watching thread stops a job past its timeout."""

    death_penalty_class = WatchedDeathPenalty


class _FailedJobIsAnOutcome(logging.Filter):
    """Drops RQ's error record of a job that raised, with its traceback: for the project's
    processors and apps a failed job is an outcome, which its creator hears (the `failed`
    event) and RQ stores (the failed registry, the result's traceback). The course's
    processors fail jobs on purpose and print nothing more."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not rq_compat.is_job_exception_record(record)


# The logger of the project's own workers (_WorkerLoop's): RQ's worker logger's child, so
# it logs where and as RQ's does, but for the failed jobs. Other workers in the same
# process (a JobWorker of one's own, RQ's) keep RQ's logging whole.
_WORKER_LOG = logging.getLogger("rq.worker.job_queue")
_WORKER_LOG.addFilter(_FailedJobIsAnOutcome())


class _WorkerLoop:
    """Works the queues until asked to stop, and starts a new worker whenever one
    stopped because Redis was lost."""

    def __init__(
        self, queue_names: list[str], connection: redis.Redis, worker_class: type = JobWorker
    ) -> None:
        self.queue_names = queue_names
        self.connection = connection
        self.worker_class = worker_class
        # A plain flag, not an Event: a processor's signal handler sets it, and Event.set
        # takes a lock that the very thread the handler interrupted may hold (in
        # Event.wait, or in an Event.set of the handler before): it waits for ever.
        self.stop_requested = False
        self.worker: JobWorker | None = None
        self._unregistered: list[JobWorker] = []  # cut off from Redis as they stopped

    def run(self) -> None:
        while not self.stop_requested:
            self._work()
            _sleep_unless(lambda: self.stop_requested, 1)  # Redis was lost: again in 1 s

    def request_stop(self) -> None:
        """Stop once the job in hand, if any, has ended. A flag, not an exception:
        raised inside redis-py, an exception could pass for a lost connection; and no
        lock, as it runs in a signal handler."""
        self.stop_requested = True
        if self.worker is not None:
            self.worker.request_stop()

    def _work(self) -> None:
        try:
            self._unregister_the_stopped()
            self.worker = self.worker_class(self.queue_names, connection=self.connection)
            self.worker.log = _WORKER_LOG
            self.worker.waits_for_redis_in_place = False
            if not self.stop_requested:
                self.worker.work(logging_level="WARNING")
        except UNREACHABLE as error:
            log.warning("Worker: Redis unreachable (%s), trying again in 1 s", error)
        finally:
            self._tidy_up()

    def _tidy_up(self) -> None:
        """Make sure the worker is gone, also from Redis: a worker stopped before RQ's
        loop began, or cut off from Redis, could not say so itself."""
        worker, self.worker = self.worker, None
        if worker is None:
            return
        if worker.pubsub_thread is not None:
            worker.pubsub_thread.stop()
        self._unregistered.append(worker)
        with contextlib.suppress(*UNREACHABLE):
            self._unregister_the_stopped()

    def _unregister_the_stopped(self) -> None:
        """Tell Redis the stopped workers are gone; after a Redis restart that kept its
        data, `rq info` would show them else until their keys expire (8 minutes)."""
        while self._unregistered:
            self._unregistered[0].register_death()
            self._unregistered.pop(0)


# Two stop requests this close are one Ctrl-C (the terminal's and the pool's echo of it).
SAME_STOP_REQUEST_SECONDS = 1


def _run_worker_process(queue_names: list[str], connection: redis.Redis) -> None:
    """One worker process of a processor. Ctrl-C or SIGTERM stops it once the job in
    hand has ended; another one, a second or more later, stops it at once (RQ's cold
    shutdown: the job is left to be found abandoned)."""
    loop = _WorkerLoop(queue_names, connection)
    first_request: list[float] = []

    def on_signal(signum: int, frame: Any) -> None:
        # The pool passes Ctrl-C on too: the same request comes twice at once.
        if first_request:
            if time.monotonic() - first_request[0] > SAME_STOP_REQUEST_SECONDS:
                raise _ColdStop(1)
            return  # the same request again: already in hand
        first_request.append(time.monotonic())
        loop.request_stop()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    loop.run()


class WorkerThread:
    """One worker in a thread of this process, for an app that works a queue itself."""

    def __init__(self, queue_names: Iterable[str], connection: redis.Redis) -> None:
        self._loop = _WorkerLoop(list(queue_names), connection, _ThreadJobWorker)
        self._thread = threading.Thread(target=self._loop.run, name="rq worker", daemon=True)
        self._thread.start()

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = 10) -> None:
        """Stop after the job in hand, if any; wait for it up to `timeout` seconds."""
        self._loop.request_stop()
        self._thread.join(timeout)


class _JobWorkerPool(WorkerPool):
    """RQ's worker pool (it starts the workers, restarts one that died, and stops them
    on Ctrl-C or SIGTERM), whose workers survive a Redis restart."""

    # RQ's start_worker() passes `_sleep` by that name (rq_compat.PRIVATE_NAMES). `burst`
    # and `logging_level` are not passed on: work() below, the one caller, starts the pool
    # with neither (burst False, WARNING), and a _WorkerLoop starts a new worker whenever
    # one returns, as a burst worker does once the queues are empty.
    def get_worker_process(
        self, name: str, burst: bool, _sleep: float = 0, **kwargs: Any
    ) -> BaseProcess:
        # A connection of its own for the new process, as RQ's pool makes one.
        client_class, connection_class, pool_kwargs = parse_connection(self.connection)
        pool = redis.ConnectionPool(connection_class=connection_class, **pool_kwargs)
        connection = client_class(connection_pool=pool)
        queue_names = [queue.name for queue in self.queues]
        return ForkProcess(
            target=_run_worker_process, args=(queue_names, connection), name=f"Worker {name}"
        )


def work(queue_names: Iterable[str], connection: redis.Redis, workers: int = 1) -> None:
    """Work the queues with `workers` jobs at a time (one RQ worker process each) until
    Ctrl-C or SIGTERM; jobs in hand are finished first."""
    _log_quietly()
    pool = _JobWorkerPool(list(queue_names), connection=connection, num_workers=workers)
    pool.start(logging_level="WARNING")


class _OneLineFormatter(logging.Formatter):
    """Log records in one line: an exception as its message, never a traceback."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            message = f"{message} {record.exc_info[1]!r}"
        return message.splitlines()[0] if message else message


def _log_quietly() -> None:
    """Warnings and errors of RQ and this module on stderr, one line each; a job that
    failed is not one of them (_WORKER_LOG).

    RQ would log to stdout, where the course's lines go; with a handler on the root
    logger it leaves logging to us.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_OneLineFormatter())
    logging.basicConfig(level=logging.WARNING, handlers=[handler], force=True)
