"""RQ's bookkeeping of a job's life, written in Lua: one round trip to queue jobs
(enqueue.lua, here), one to finish a job and take the next (step.lua, step.py).

RQ keeps a job's state in Redis: its hash, the queue, the registries of started,
finished and failed jobs, the execution records, the worker's counters. RQ writes
them from Python, in some twenty round trips per job and milliseconds of CPU
(docs/performance.md has the measured figures): that caps a worker at a few hundred
jobs a second. The scripts write the very same keys and fields (those of RQ 3.0.0,
which requirements.txt pins; the test tests/test_rq_bookkeeping.py compares them with
RQ's own, key by key) in one round trip. RQ's own code still builds what it stores (the
job's hash, a result's fields), and a job this path does not cover (dependencies,
repeats, rate limits, webhooks, callbacks other than job_queue's) goes through
RQ's worker as usual.

The keys of a job the scripts take from a queue are known only inside them: they build
them from formats made here from RQ's own classes (rq_key_formats), so that RQ's key
prefix (RQ_KEY_PREFIX) holds for them as for RQ. A plain, non-cluster Redis is assumed.
"""

import functools
import zlib
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import redis
from redis.connection import Connection
from rq import Queue
from rq.executions import Execution, ExecutionRegistry
from rq.job import Job
from rq.registry import (
    FailedJobRegistry,
    FinishedJobRegistry,
    ScheduledJobRegistry,
    StartedJobRegistry,
)
from rq.results import Result
from rq.serializers import PickleSerializer
from rq.utils import get_call_string, now

from queuing import rq_compat
from queuing.redis_connection import NotConfirmed, Undo, confirm_on
from queuing.redis_scripts import LuaScript

ENQUEUE = LuaScript.from_file(Path(__file__).with_name("enqueue.lua"))
# Jobs per script call: a call blocks Redis while it runs.
ENQUEUE_CHUNK = 500

# Stand-ins for a job's id, an execution's id and a queue's name in RQ's keys: where
# they are in the key RQ builds shows what comes before and after.
_JOB_ID, _EXECUTION_ID, _QUEUE_NAME = "__job__", "__execution__", "__queue__"


@functools.cache
def rq_key_formats(job_class: type[Job] = Job) -> dict[str, str]:
    """RQ's keys that the scripts build from a job's id, an execution's `<job id>:<id>`
    or a queue's name, as RQ's classes build them, each a format string that Lua's
    string.format and Python's % both read ("rq:job:%s"). Made once per job class."""
    connection = redis.Redis()  # never connects: RQ's classes want one to build a key
    execution = Execution(_EXECUTION_ID, _JOB_ID, connection)
    keys = {
        "job_key": (job_class.key_for(_JOB_ID), _JOB_ID),
        "dependents_key": (job_class.dependents_key_for(_JOB_ID), _JOB_ID),
        "dependencies_key": (job_class(_JOB_ID, connection).dependencies_key, _JOB_ID),
        "result_key": (Result.get_key(_JOB_ID), _JOB_ID),
        "execution_key": (execution.key, f"{_JOB_ID}:{_EXECUTION_ID}"),
        "executions_key": (ExecutionRegistry(_JOB_ID, connection).key, _JOB_ID),
    }
    for name, registry in (
        ("started_key", StartedJobRegistry),
        ("finished_key", FinishedJobRegistry),
        ("failed_key", FailedJobRegistry),
        ("scheduled_key", ScheduledJobRegistry),  # a retried job's wait (Queue.schedule_job)
    ):
        keys[name] = (registry(_QUEUE_NAME, connection=connection).key, _QUEUE_NAME)
    keys["queue_key"] = (Queue(_QUEUE_NAME, connection=connection).key, _QUEUE_NAME)
    return {name: _key_format(key, stand_in) for name, (key, stand_in) in keys.items()}


def _key_format(key: str, stand_in: str) -> str:
    if key.count(stand_in) != 1:  # a prefix that holds the stand-in itself
        raise ValueError(f"RQ's key {key!r}: its id or name cannot be told from its prefix")
    return key.replace("%", "%%").replace(stand_in, "%s")


class JobTemplate:
    """Jobs running `func(data)` on one queue, as RQ's Queue.create_job builds them and
    enqueue_job stores them, at a third of the cost: RQ builds one job, and each job's
    hash is that one's with its own dates, data and description (RQ's Job.create and
    to_dict cost some 80 µs a job, in a request's path). tests/test_rq_bookkeeping.py
    compares what it stores with RQ's own."""

    def __init__(
        self, queue: Queue, func: Any, timeout: int, delayed: bool = False, **options: Any
    ) -> None:
        """`options`: Job.create's (callbacks, result_ttl, failure_ttl, retry, meta...);
        `delayed`: the jobs wait in the scheduled registry, as RQ's enqueue_at stores them
        (status `scheduled`, no `enqueued_at` until they are queued)."""
        sample = Job.create(  # as queue.create_job builds it
            func,
            args=(None,),
            connection=queue.connection,
            timeout=timeout,
            origin=queue.name,
            serializer=rq_serializer(queue.serializer),
            **options,
        )
        rq_compat.prepare_for_queue(queue, sample)  # origin, enqueued_at, status: RQ's own
        self._stored = sample.to_dict()
        self._queued_at = ("created_at",) if delayed else ("created_at", "enqueued_at")
        if delayed:
            self._stored["status"] = "scheduled"
            self._stored.pop("enqueued_at", None)
        self._func_name = sample.func_name
        self._serializer = sample.serializer
        self._timeout = sample.timeout
        self._origin = queue.name

    def build(self, connection: redis.Redis, data: Any) -> tuple[Job, list[Any]]:
        """A job running `func(data)`, and its hash as RQ stores it, flat."""
        at = now()
        at_text = rq_date(at)
        call = (self._func_name, None, (data,), {})
        pickled = self._serializer.dumps(call)
        description = get_call_string(self._func_name, (data,), {}, max_length=75)
        fields = self._stored | dict.fromkeys(self._queued_at, at_text)
        fields |= {"data": zlib.compress(pickled), "description": description}
        job = Job(connection=connection, serializer=rq_serializer(self._serializer))
        job.data = pickled
        job.origin, job.timeout, job.description = self._origin, self._timeout, description
        job.created_at = at
        job.enqueued_at = at if "enqueued_at" in self._queued_at else None
        return job, [item for pair in fields.items() for item in pair]


def enqueue(
    queue: Queue,
    jobs: Sequence[Job],
    hashes: Sequence[list[Any]],
    ids_key: str,
    events_key: str,
    kept: int,
    run_at: float | None = None,
    priorities_key: str = "",
    priority: int = 0,
    cancel: Callable[[Connection, list[Job]], None] | None = None,
) -> str:
    """Queue `jobs` with their `hashes` (as a JobTemplate builds them), a round trip per
    500, giving each its id from the counter (the hash RQ stores holds no id, so the one
    a job was built with is simply replaced). Returns the stream position of the first
    job's event.

    Confirmed once the replicas the connection needs have them (redis_connection); else
    `cancel(connection, jobs)` takes back every job queued by this call, on the one
    connection that queued them all (the server that has them, never one a failover
    made primary since, whose counter gave those ids to other jobs), and NotConfirmed
    carries those jobs."""
    keys = {"ids": ids_key, "queue": queue.key, "queues": queue.redis_queues_keys}
    keys["events"] = events_key
    keys["scheduled"] = queue.scheduled_job_registry.key
    keys["priorities"] = priorities_key
    job_key = rq_key_formats(queue.job_class)["job_key"]
    first_event = None
    pool = queue.connection.connection_pool
    connection = pool.get_connection()
    try:
        for start in range(0, len(jobs), ENQUEUE_CHUNK):
            chunk = jobs[start : start + ENQUEUE_CHUNK]
            chunk_hashes = hashes[start : start + ENQUEUE_CHUNK]
            lengths_then_hashes = [len(flat) for flat in chunk_hashes]
            lengths_then_hashes += [item for flat in chunk_hashes for item in flat]
            args = {"events_kept": kept, "count": len(chunk), "job_key": job_key}
            args |= {"run_at": "" if run_at is None else repr(run_at)}
            args |= {"priority": priority or ""}
            first_id, event = ENQUEUE.run_on(connection, keys, args, lengths_then_hashes)
            _number(chunk, first_id)
            queued = list(jobs[: start + len(chunk)])
            try:
                confirm_on(connection, queue.connection, None, _undo_by(cancel, queued))
            except NotConfirmed:
                raise NotConfirmed(queued) from None
            first_event = first_event or event.decode()
    finally:
        pool.release(connection)
    return first_event


def _undo_by(
    cancel: Callable[[Connection, list[Job]], None] | None, jobs: list[Job]
) -> Undo | None:
    """`cancel` of those jobs, as confirm_on's undo."""
    if cancel is None:
        return None
    return lambda connection, _reply: cancel(connection, jobs)


def _number(jobs: Sequence[Job], first_id: int) -> None:
    for offset, job in enumerate(jobs):
        job.id = str(first_id + offset)


class RestoredJob(Job):
    """RQ's Job, restored with a faster reading of its dates: RQ parses each with
    strptime, some 10 µs a date, five a job."""

    DATES = (b"created_at", b"enqueued_at", b"started_at", b"ended_at", b"last_heartbeat")

    def restore(self, raw_data: dict) -> None:
        dates = {field: raw_data.pop(field, None) for field in self.DATES}
        super().restore(raw_data)
        for field, value in dates.items():
            setattr(self, field.decode(), _parse_utc(value) if value else None)
        self.created_at = self.created_at or now()  # as RQ: a job has a creation date


def rq_serializer(serializer: Any) -> Any:
    """A serializer as an argument for RQ: None for its default, which RQ then takes
    without checking it against its protocol (some 15 µs a check)."""
    return None if serializer is PickleSerializer else serializer


def rq_date(at: datetime) -> str:
    """A date as RQ writes it (rq.utils.utcformat: the date's own clock time, and "Z"),
    without its strftime, the slower of the two."""
    return at.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _parse_utc(value: bytes) -> datetime:
    # RQ writes "2026-11-29T09:01:54.612841Z"; Python 3.10 reads no "Z".
    return datetime.fromisoformat(value.decode()[:-1] + "+00:00")
