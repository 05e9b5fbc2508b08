"""The creator's side: JobCreator queues jobs with numbered ids and hears what becomes of
them; create_job queues one whose end a QueueListener hears."""

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
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
from queuing.redis_connection import UNREACHABLE, not_connected
from queuing.redis_scripts import LuaScript, NotConfirmed

# The course's jobs take milliseconds; one that runs this long is stuck and is stopped.
JOB_TIMEOUT_SECONDS = 30
# A creator with nothing to read for this long checks its jobs in Redis (see _catch_up).
CATCH_UP_AFTER_SECONDS = 5.0
CATCH_UP_JOBS = 1000

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
        self._reader = blocking_client(queue.connection, CATCH_UP_AFTER_SECONDS + 10)
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
                self._deliver({"job": job_id, "event": "failed", "error": stored_error(job)})
        clean_up_abandoned_jobs(self.queue)


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


CANCEL_UNCONFIRMED = LuaScript.from_file(Path(__file__).with_name("cancel_unconfirmed.lua"))
NOT_CONFIRMED = "Not confirmed by a replica in time: canceled"


def _cancel_unconfirmed(queue: Queue, jobs: list[Job]) -> None:
    """Take back the jobs no replica confirmed, those no worker has taken yet."""
    for job in jobs:
        keys = {"queue": queue.key, "job": job.key, "events": events_key(queue.name)}
        keys["canceled"] = CanceledJobRegistry(queue.name, connection=queue.connection).key
        args = {"events_kept": EVENTS_KEPT, "job_id": job.id, "now": int(time.time())}
        CANCEL_UNCONFIRMED.run(queue.connection, keys, {**args, "error": NOT_CONFIRMED})
