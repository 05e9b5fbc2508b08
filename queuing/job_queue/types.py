"""Jobs by type, as Kue's `queue.create(type, data)` and `queue.process(type, n, fn)`:
a processor registers a function for a type, and a job of that type (created here, or
posted to the Kue JSON API) runs it.

A type is a queue's name, as in Kue. Such a job is an RQ job of that queue whose
function is `run_by_type`: RQ stores a function by its import path, and a type's
function is known only to the processes that registered it. So a job of a type runs in a
processor that registered that type (`process`), and fails with a clear error in a
worker that did not.
"""

from collections.abc import Callable
from typing import Any

import redis
from rq import Queue, get_current_job
from rq.job import Job

from queuing.job_queue.creator import JOB_TIMEOUT_SECONDS, create_job
from queuing.job_queue.options import base_queue_name

# What a job of a type runs, by its import path (as RQ stores it).
RUN_BY_TYPE = "queuing.job_queue.types.run_by_type"

_functions: dict[str, Callable[[Any], Any]] = {}


class NoFunctionForType(LookupError):
    """A job of a type that this process registered no function for."""


def register(job_type: str, function: Callable[[Any], Any]) -> None:
    """Run `function(data)` for the jobs of `job_type` that this process's workers take."""
    _functions[job_type] = function


def run_by_type(data: Any) -> Any:
    """The function of every job created by type: runs the one registered for it."""
    job = get_current_job()
    job_type = base_queue_name(job.origin) if job is not None else ""
    function = _functions.get(job_type)
    if function is None:
        raise NoFunctionForType(f"No function registered for jobs of type {job_type!r} here")
    return function(data)


def create_job_of_type(
    connection: redis.Redis,
    job_type: str,
    data: Any,
    job_timeout: int = JOB_TIMEOUT_SECONDS,
    **options: Any,
) -> Job:
    """Queue a job of `job_type` (Kue's `queue.create(type, data)` with its options),
    run by the function a processor registered for the type."""
    queue = Queue(job_type, connection=connection)
    return create_job(queue, RUN_BY_TYPE, data, job_timeout, **options)


def process(
    job_type: str,
    function: Callable[[Any], Any],
    connection: redis.Redis,
    workers: int = 1,
    shutdown_timeout: float | None = None,
    processes: int = 1,
) -> None:
    """Kue's `queue.process(type, n, fn)`: run `function(data)` for the jobs of
    `job_type`, `workers` at a time, until Ctrl-C or SIGTERM (processes.work)."""
    from queuing.job_queue.processes import work  # the worker's modules import this one

    register(job_type, function)
    work([job_type], connection, workers, shutdown_timeout, processes)
