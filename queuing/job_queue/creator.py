"""The creator's side: JobCreator queues jobs with numbered ids and hears what becomes of
them; create_job queues one whose end a QueueListener hears."""

import inspect
import json
import pickle
import threading
import time
from collections.abc import Callable
from functools import cache, partial
from pathlib import Path
from typing import Any

import redis
from redis.connection import Connection
from rq import Queue
from rq.job import Job, JobStatus
from rq.registry import CanceledJobRegistry

from queuing.job_queue.bookkeeping import JobTemplate, enqueue
from queuing.job_queue.events import (
    ENDED,
    EVENTS_KEPT,
    IDS_KEY,
    ON_FAILURE,
    ON_SUCCESS,
    blocking_client,
    clean_up_abandoned_jobs,
    decode,
    events_key,
    stored_error,
)
from queuing.job_queue.options import (
    NO_OPTIONS,
    BadJobOption,
    JobOptions,
    job_options,
    priorities_key,
    priority_queue_name,
)
from queuing.redis_connection import UNREACHABLE, not_connected
from queuing.redis_scripts import LuaScript

# The course's jobs take milliseconds; one that runs this long is stuck and is stopped.
JOB_TIMEOUT_SECONDS = 30
# A creator with nothing to read for this long checks its jobs in Redis (see _catch_up).
CATCH_UP_AFTER_SECONDS = 5.0
CATCH_UP_JOBS = 1000

Handler = Callable[..., None]

# The events a job's creator may hear, by the name of their handler: the stream's name of
# each (Kue's: enqueue, start, promotion, progress, failed attempt, failed, complete,
# remove), and what its handler is given after the job's id, as many as it takes.
EVENTS = {
    "created": ("created", ()),
    "started": ("start", ()),
    "promoted": ("promotion", ()),
    "progress": ("progress", ("percent", "data")),
    "failed_attempt": ("failed attempt", ("error", "attempt")),
    "failed": ("failed", ("error",)),
    "completed": ("completed", ("result",)),
    "removed": ("remove", ()),
}
HANDLER_OF = {stream_name: handler for handler, (stream_name, _) in EVENTS.items()}
END_EVENTS = ("completed", "failed", "remove")  # a removed job will not end otherwise


def check_handlers(owner: str, handlers: dict[str, Handler | None]) -> None:
    """TypeError for a handler of no event (a misspelt name would never be called)."""
    unknown = set(handlers) - set(EVENTS)
    if unknown:
        names = ", ".join(sorted(unknown))
        raise TypeError(f"{owner}: no event {names}; the events: {', '.join(EVENTS)}")


def handler_arguments(event: dict[str, str]) -> list[Any]:
    """What a handler of `event` (a stream entry, decoded) is given: the job's id, then
    the event's details (JSON ones decoded; None when absent)."""
    _, details = EVENTS[HANDLER_OF[event["event"]]]
    arguments: list[Any] = [event["job"]]
    for name in details:
        value = event.get(name)
        if name in ("data", "result"):
            value = json.loads(value) if value else None
        elif name in ("percent", "attempt"):
            value = int(value)
        arguments.append(value)
    return arguments


def call_handler(handler: Handler, arguments: list[Any]) -> None:
    """Call `handler` with as many of `arguments` as it takes: the course's
    `completed(job_id)` and Kue's `complete(job_id, result)` both work."""
    handler(*arguments[: _positional_count(handler, len(arguments))])


@cache
def _positional_count(handler: Handler, most: int) -> int:
    try:
        parameters = inspect.signature(handler).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature: all of them
        return most
    count = 0
    for parameter in parameters:
        if parameter.kind is parameter.VAR_POSITIONAL:
            return most
        if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
            count += 1
    return min(count, most)


class JobCreator:
    """Creates jobs on one queue and tells its handlers what becomes of them.

    Handlers get the job id first, then what the event tells, as many arguments as they
    take: `progress(job_id, percent, data)`, `completed(job_id, result)`,
    `failed(job_id, error)`, `failed_attempt(job_id, error, attempts_made)`, and
    `created`, `started`, `promoted` (a delayed job queued), `removed` with the id alone.
    They run in the thread that calls `wait()`, one event at a time, in the order each
    job reported them. (An app, whose jobs may end after the process that queued them
    is gone, hears them with a QueueListener instead; every job of a queue, whoever
    created it, is heard by a QueueEvents.)
    """

    def __init__(self, queue: Queue, **handlers: Handler | None) -> None:
        check_handlers("JobCreator", handlers)
        self.queue = queue
        self.connection: redis.Redis = queue.connection
        self._reader = blocking_client(queue.connection, CATCH_UP_AFTER_SECONDS + 10)
        self.handlers = handlers
        self._events_key = events_key(queue.name)
        self._read_from: str | None = None  # the stream position after the last event read
        self._unfinished: set[str] = set()  # jobs created here that have not ended yet
        self._lock = threading.Lock()

    def create(
        self,
        func: str | Callable,
        data: Any,
        job_timeout: int = JOB_TIMEOUT_SECONDS,
        **options: Any,
    ) -> Job:
        """Queue a job running `func(data)`, with the next numbered id, and Kue's
        `options` (priority, delay, attempts, backoff, ttl, remove_on_complete,
        remove_on_fail: options.job_options); BadJobOption, and nothing queued, for one
        that cannot be honoured."""
        return self.create_many(func, [data], job_timeout, **options)[0]

    def create_many(
        self,
        func: str | Callable,
        datas: list[Any],
        job_timeout: int = JOB_TIMEOUT_SECONDS,
        **options: Any,
    ) -> list[Job]:
        """Queue a job running `func(data)` for each data, in one round trip, as Kue
        sends the saves of a loop of `queue.create(...).save()` at once."""
        checked = job_options(**options) if options else NO_OPTIONS
        jobs, first_event = _create_jobs(self.queue, func, datas, job_timeout, checked)
        if not jobs:
            return []
        with self._lock:
            self._unfinished.update(job.id for job in jobs)
            if self._read_from is None:  # read from just before the first job's events
                self._read_from = just_before(first_event)
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
                    self._read_from = decode(entry_id)
                    self._deliver({decode(k): decode(v) for k, v in fields.items()})
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
            if name in END_EVENTS:
                self._unfinished.discard(job_id)
        handler = self.handlers.get(HANDLER_OF.get(name, ""))
        if handler is not None:
            call_handler(handler, handler_arguments(event))

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
                self._deliver({"job": job_id, "event": "failed", "error": stored_error(job)})
        clean_up_abandoned_jobs(self.queue)


def just_before(entry_id: str) -> str:
    """The stream position just before `entry_id` ("<ms>-<seq>"): XREAD reads what comes
    after the position it is given."""
    milliseconds, sequence = (int(part) for part in entry_id.split("-"))
    if sequence > 0:
        return f"{milliseconds}-{sequence - 1}"
    return f"{milliseconds - 1}-{2**64 - 1}"


def create_job(
    queue: Queue,
    func: str | Callable,
    data: Any,
    job_timeout: int = JOB_TIMEOUT_SECONDS,
    **options: Any,
) -> Job:
    """Queue a job running `func(data)`, with the next numbered id and Kue's `options`
    (as JobCreator.create), its end to be heard by a QueueListener."""
    checked = job_options(**options) if options else NO_OPTIONS
    return _create_jobs(queue, func, [data], job_timeout, checked)[0][0]


def _create_jobs(
    queue: Queue, func: str | Callable, datas: list[Any], job_timeout: int, options: JobOptions
) -> tuple[list[Job], str | None]:
    """The jobs, queued in one round trip, and the stream position of the first one's
    `created` event."""
    if not datas:
        return [], None
    run_at = time.time() + options.delay if options.delay else None  # from the call, as Kue's
    level = queue
    if options.priority:
        name = priority_queue_name(queue.name, options.priority)
        level = Queue(name, connection=queue.connection, serializer=queue.serializer)
    template = _template(level, func, job_timeout, options)
    jobs, hashes = zip(*(_build(template, level, data) for data in datas), strict=True)
    first_event = enqueue(
        level,
        jobs,
        hashes,
        IDS_KEY,
        events_key(queue.name),
        EVENTS_KEPT,
        run_at=run_at,
        priorities_key=priorities_key(queue.name),
        priority=options.priority,
        cancel=partial(_cancel_unconfirmed, level),
    )
    return list(jobs), first_event


def _build(template: JobTemplate, queue: Queue, data: Any) -> tuple[Job, list[Any]]:
    try:
        return template.build(queue.connection, data)
    except (pickle.PicklingError, TypeError, AttributeError) as error:
        raise BadJobOption("data", f"cannot be stored ({error})") from error


_templates: dict[tuple, JobTemplate] = {}


def _template(
    queue: Queue, func: str | Callable, job_timeout: int, options: JobOptions
) -> JobTemplate:
    """One JobTemplate per queue, function and timeout for jobs without options, made
    once per process; one per call for jobs with options."""
    callbacks = {"on_success": ON_SUCCESS, "on_failure": ON_FAILURE}
    if options is not NO_OPTIONS:
        arguments = options.rq_arguments(job_timeout)
        timeout = arguments.pop("timeout")
        arguments["meta"] = {"options": options.given}
        delayed = options.delay > 0
        return JobTemplate(queue, func, timeout, delayed=delayed, **callbacks, **arguments)
    key = (queue.name, queue.serializer, func, job_timeout)
    if key not in _templates:
        _templates[key] = JobTemplate(queue, func, job_timeout, **callbacks)
    return _templates[key]


CANCEL_UNCONFIRMED = LuaScript.from_file(Path(__file__).with_name("cancel_unconfirmed.lua"))
NOT_CONFIRMED = "Not confirmed by a replica in time: canceled"


def _cancel_unconfirmed(queue: Queue, connection: Connection, jobs: list[Job]) -> None:
    """Take back the jobs no replica confirmed, those no worker has taken yet (a job a
    worker took already runs), on the connection that queued them (enqueue)."""
    for job in jobs:
        keys = {"queue": queue.key, "job": job.key, "events": events_key(queue.name)}
        keys["canceled"] = CanceledJobRegistry(queue.name, connection=queue.connection).key
        args = {"events_kept": EVENTS_KEPT, "job_id": job.id, "now": int(time.time())}
        CANCEL_UNCONFIRMED.run_on(connection, keys, {**args, "error": NOT_CONFIRMED})
