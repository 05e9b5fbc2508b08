"""A job's numbered id and the events its creator hears: the keys, the events stream,
`report_progress` from inside a job, and the callbacks that tell a job's end.

Keys: `job_queue:ids` (the counter, INCRBY) and `job_queue:events:<queue>` (the streams).
"""

import functools
import json
import logging
import re
from pathlib import Path
from typing import Any

import redis
from rq import Callback, Queue, get_current_job
from rq.connections import parse_connection
from rq.exceptions import AbandonedJobError
from rq.job import Job, JobStatus
from rq.registry import StartedJobRegistry
from rq.timeouts import JobTimeoutException

from queuing.job_queue.keeping import keep_last
from queuing.job_queue.options import TTL_EXCEEDED, base_queue_name
from queuing.job_timeouts import WatchedDeathPenalty
from queuing.redis_scripts import LuaScript

IDS_KEY = "job_queue:ids"
EVENTS_KEY = "job_queue:events:{queue}"
# Older events are trimmed; a creator that far behind still learns how its jobs ended
# (see JobCreator._catch_up).
EVENTS_KEPT = 100_000
# The statuses of a job that has ended, listed once (end_once.lua is given them).
ENDED = (JobStatus.FINISHED, JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED)

# The name every job made here stores for its callbacks (RQ keeps it in the job's hash,
# and the worker's step compares it): the package's, whatever module defines them.
CALLBACKS_MODULE = "queuing.job_queue"
# The names jobs queued before the library moved into queuing/ carry: still theirs.
OLD_CALLBACKS_MODULE = "job_queue"

log = logging.getLogger("job_queue")


@functools.cache  # a worker asks for it at every step: queue names are few
def events_key(queue_name: str) -> str:
    """The events stream of a queue, shared by its priority levels (options.py)."""
    return EVENTS_KEY.format(queue=base_queue_name(queue_name))


def report_progress(completed: int, total: int = 100, data: Any = None) -> None:
    """From inside a job: report how far it is, as Kue's `job.progress(completed, total,
    data)`.

    The percent (and `data`, if given: anything JSON can hold) goes to the creator as a
    `progress` event and into the job's meta, where RQ's tools show it.
    """
    if total <= 0:
        raise ValueError(f"report_progress(): total must be above 0, not {total}")
    job = _running_job("report_progress")
    percent = min(100, completed * 100 // total)
    job.meta["progress"] = percent
    entry = {"job": job.id, "event": "progress", "percent": percent}
    if data is not None:
        job.meta["progress_data"] = data
        entry["data"] = json.dumps(data)
    _save_meta_and_tell(job, entry)


def log_line(text: Any, *args: Any) -> None:
    """From inside a job: keep a line with it, as Kue's `job.log('%s sent', what)`: shown
    by a lookup of the job (lookup.get_job, the JSON API) and, in its meta["logs"], by
    rq-dashboard. `args` are formatted in as with the % operator; a value that is not a
    string is kept as its repr."""
    job = _running_job("log_line")
    line = (text % args if args else text) if isinstance(text, str) else repr(text)
    job.meta.setdefault("logs", []).append(line)
    _save_meta_and_tell(job, None)


def _running_job(name: str) -> Job:
    job = get_current_job()
    if job is None:
        raise RuntimeError(f"{name}() is for the function of a running job")
    return job


SAVE_META = LuaScript.from_file(Path(__file__).with_name("save_meta.lua"))


def _save_meta_and_tell(job: Job, entry: dict | None) -> None:
    keys = {"job": job.key, "events": events_key(job.origin)}
    args = {"meta": job.serializer.dumps(job.meta), "events_kept": EVENTS_KEPT}
    fields = [item for pair in (entry or {}).items() for item in pair]
    SAVE_META.run(job.connection, keys, args, fields)


def tell_started(job: Job) -> None:
    """Kue's `start`, for a job_queue job that RQ's own code runs (the worker's step
    tells it for the others)."""
    if job.success_callback is job_completed:
        entry = {"job": job.id, "event": "start"}
        job.connection.xadd(events_key(job.origin), entry, maxlen=EVENTS_KEPT, approximate=True)


def result_json(return_value: Any) -> str:
    """A job's return value for its `completed` event: JSON, or '' for None; a value JSON
    cannot hold goes as its repr."""
    if return_value is None:
        return ""
    try:
        return json.dumps(return_value)
    except (TypeError, ValueError):
        return json.dumps(repr(return_value))


# RQ's callbacks run before RQ saves the status, and RQ's cleanup of abandoned jobs may
# run in two processes at once, or again after a crash: without END_ONCE, a job could be
# told ended twice, or failed after it finished.
END_ONCE = LuaScript.from_file(Path(__file__).with_name("end_once.lua"))
_FINAL_STATUSES = " ".join(status.value for status in ENDED)


def _end_once(
    connection: redis.Redis, job: Job, status: JobStatus, event: str, detail: str = ""
) -> None:
    keys = {"job": job.key, "events": events_key(job.origin)}
    args = {"events_kept": EVENTS_KEPT, "job_id": job.id, "status": status.value}
    args |= {"event": event, "detail": detail, "final_statuses": _FINAL_STATUSES}
    END_ONCE.run(connection, keys, args)


def job_completed(job: Job, connection: redis.Redis, result: Any) -> None:
    """RQ success callback of every job made here: tell the creator, with the result."""
    _end_once(connection, job, JobStatus.FINISHED, "completed", result_json(result))
    keep_last(job, finished=True, ending_now=True)


def job_failed(job: Job, connection: redis.Redis, exc_type: type, exc_value: Any, tb: Any) -> None:
    """RQ failure callback of every job made here: tell the creator, with the error. A
    job with attempts left is run again (RQ's Retry): that is a `failed attempt`, with
    the number of attempts made (RQ runs the callback before it counts the retry)."""
    error = error_text(exc_type, exc_value, job)
    if job.retries_left:
        entry = {"job": job.id, "event": "failed attempt", "error": error}
        entry["attempt"] = attempts_made(job)
        connection.xadd(events_key(job.origin), entry, maxlen=EVENTS_KEPT, approximate=True)
        return
    _end_once(connection, job, JobStatus.FAILED, "failed", error)
    keep_last(job, finished=False, ending_now=True)


# The callbacks every job made here carries: they send its end to its creator. Named by
# the package, not by events.py: a name stored in Redis outlives the module layout.
ON_SUCCESS = Callback(f"{CALLBACKS_MODULE}.job_completed")
ON_FAILURE = Callback(f"{CALLBACKS_MODULE}.job_failed")


def callback_names(callback: Callback) -> tuple[str, ...]:
    """The names a job's hash may hold for `callback`: today's, and the one it had
    before the library moved (a job queued then, kept in Redis across an upgrade)."""
    old_name = callback.name.replace(CALLBACKS_MODULE, OLD_CALLBACKS_MODULE, 1)
    return (callback.name, old_name)


def attempts_made(job: Job) -> int:
    """The tries of a job with retries left that have failed, this one included (as RQ
    counts a retry down only after its failure callback)."""
    attempts = job.meta.get("options", {}).get("attempts", job.retries_left + 1)
    return attempts - job.retries_left


def error_text(exc_type: type, exc_value: Any, job: Job | None = None) -> str:
    """What the creator is told of a job's error. A job past the time it was given (its
    `ttl` option) fails as Kue's does: "TTL exceeded"."""
    if exc_type is AbandonedJobError:
        return "Job abandoned: its worker stopped before the job ended"
    if job is not None and issubclass(exc_type, JobTimeoutException) and _has_ttl(job):
        return TTL_EXCEEDED
    return str(exc_value) or exc_type.__name__


def _has_ttl(job: Job) -> bool:
    return "ttl" in job.meta.get("options", {})


def stored_error(job: Job) -> str:
    """The message of the error RQ stored for a failed job (its traceback's last line)."""
    result = job.latest_result()
    lines = (result.exc_string or "").strip().splitlines() if result else []
    if not lines:
        return f"Job {job.get_status(refresh=False).value}"
    return re.sub(r"^[A-Za-z_][\w.]*: ", "", lines[-1])  # "ValueError: msg" -> "msg"


def clean_up_abandoned_jobs(queue: Queue) -> None:
    """RQ's cleanup of the started jobs whose worker stopped: they fail, and their
    failure callback tells their creator. Signals only work in the main thread; this
    may run in another."""
    StartedJobRegistry(
        queue.name, connection=queue.connection, death_penalty_class=WatchedDeathPenalty
    ).cleanup()


def blocking_client(connection: redis.Redis, socket_timeout: float) -> redis.Redis:
    """A client like `connection` whose reads may wait `socket_timeout` seconds: a
    blocking XREAD outlasts redis-py's default of 5, and the caller's client stays as is."""
    client_class, connection_class, kwargs = parse_connection(connection)
    kwargs["socket_timeout"] = socket_timeout
    return client_class(
        connection_pool=redis.ConnectionPool(connection_class=connection_class, **kwargs)
    )


def decode(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
