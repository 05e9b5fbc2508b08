"""RQ's private names, behind one door: every use of one in this project goes through here.

`job_queue.JobWorker` replaces RQ's `work()` loop and `job_queue`'s scripts write RQ's
bookkeeping itself; both need a few of RQ's internals that RQ gives no public way to
reach. Each is read here, from RQ 3.0.0's source (the version requirements.txt pins),
with why it is needed. RQ may rename or drop any of them in any release:
tests/test_rq_compat.py fails on an RQ other than RQ_VERSION and checks that each name
below still exists, so an upgrade means reading this file against the new RQ, not
auditing the project.

A name with a public way to it is not here: the pool's connection (`_connection_class`,
`_pool_class`, `_pool_kwargs`) is `rq.connections.parse_connection(pool.connection)`, its
queue names (`_queue_names`) are `pool.queues`; the handler chain (`_exc_handlers`) is run
by RQ's own `handle_exception`.
"""

import warnings
from datetime import datetime
from typing import Any

from rq import Queue
from rq import job as rq_job
from rq.job import Job
from rq.version import VERSION
from rq.worker import BaseWorker, DequeueStrategy

RQ_VERSION = "3.0.0"

if VERSION != RQ_VERSION:  # the project runs, but what follows may not hold: say so
    warnings.warn(
        f"RQ {VERSION} is installed; rq_compat.py was read from RQ {RQ_VERSION} "
        "(requirements.txt): check its PRIVATE_NAMES against this RQ",
        RuntimeWarning,
        stacklevel=2,
    )

# Each private name, as "<RQ class>.<name>" ("(name)" for a parameter of a method RQ
# calls, "<module>:<name>" for a module's): where it is in RQ_VERSION's source, and why
# this project uses it.
PRIVATE_NAMES: dict[str, tuple[str, str]] = {
    "BaseWorker._ordered_queues": (
        "rq/worker/base.py: BaseWorker.__init__, a list attribute; reorder_queues() rotates or "
        "shuffles it, dequeue_job_and_maintain_ttl() takes from the queues in its order",
        "JobWorker takes its jobs itself (job_queue's step), from the queues in the order "
        "RQ's dequeue strategy gives them",
    ),
    "BaseWorker._dequeue_strategy": (
        "rq/worker/base.py: set by work(dequeue_strategy=...), read by reorder_queues()",
        "JobWorker replaces work(); reorder_queues() reads the strategy from here",
    ),
    "BaseWorker._stop_requested": (
        "rq/worker/base.py: a bool attribute, set by _shutdown() when a stop is requested "
        "while a job runs; check_for_suspension() waits while it is False",
        "JobWorker sets it as RQ does (a stop while busy) and ends its suspension wait on it",
    ),
    "BaseWorker._state": (
        "rq/worker/base.py: the worker's state in memory; get_state() returns it, set_state() "
        "writes it to Redis too",
        "job_queue's step writes 'busy'/'idle' to Redis itself; get_state() (RQ's "
        "check_for_suspension, commands) must still tell the truth, without a second write",
    ),
    "BaseWorker._shutdown_requested_date": (
        "rq/worker/base.py: set by request_stop() on a signal, read by request_force_stop() "
        "(a second signal within 1 s is ignored) and set_shutdown_requested_date()",
        "JobWorker.request_stop() does RQ's signal bookkeeping without RQ's _shutdown(), "
        "which raises StopRequested from the signal handler",
    ),
    "BaseWorker._install_signal_handlers": (
        "rq/worker/base.py: called by work(): SIGINT and SIGTERM -> request_stop",
        "JobWorker.work() calls it as RQ's work() does, unless its process has handlers of "
        "its own (a processor's worker process) or it runs in a thread (an app's WorkerThread)",
    ),
    "BaseWorker._start_scheduler": (
        "rq/worker/base.py: called by work(with_scheduler=True)",
        "JobWorker.work() honours with_scheduler as RQ's work() does",
    ),
    "Queue._prepare_for_queue": (
        "rq/queue.py: what Queue.enqueue_job sets on a job before saving it (origin, "
        "enqueued_at, default timeout, status QUEUED)",
        "job_queue queues jobs in one Lua call and must store the hash RQ would store",
    ),
    "BaseWorker._stopped_job_id": (
        "rq/worker/base.py: set by the stop-job command (rq/command.py) for the job in hand; "
        "handle_job_failure marks that job STOPPED and never retries it",
        "JobWorker retries a failed job itself (job_queue's step) unless it was stopped so",
    ),
    "Job._serialize_meta": (
        "rq/job.py: the job's meta as Job.to_dict()/save() write it (an unreadable meta's "
        "bytes written back as they were)",
        "job_queue's step writes what RQ's job.save() writes when a failed job is retried",
    ),
    "rq.job:_current_job": (
        "rq/job.py: the ContextVar that Job.perform() sets to the job it runs and "
        "get_current_job() reads",
        "an async def job runs as a task on the worker's event loop, not through "
        "Job.perform(), and get_current_job() must name it there too (concurrency.py)",
    ),
    "WorkerPool.get_worker_process(_sleep)": (
        "rq/worker_pool.py: start_worker() calls get_worker_process(name, burst=, _sleep=, "
        "logging_level=)",
        "job_queue's pool overrides get_worker_process and must accept what RQ passes",
    ),
}


def ordered_queues(worker: BaseWorker) -> list[Queue]:
    """The worker's queues in the order its dequeue strategy gives now."""
    return worker._ordered_queues


def set_queues(worker: BaseWorker, queues: list[Queue]) -> None:
    """The worker's queues, in order (a JobWorker's priority levels join them)."""
    worker.queues = queues
    worker._ordered_queues = queues[:]


def set_dequeue_strategy(worker: BaseWorker, strategy: DequeueStrategy | str) -> None:
    worker._dequeue_strategy = strategy


def mark_stop_requested(worker: BaseWorker) -> None:
    worker._stop_requested = True


def stop_requested(worker: BaseWorker) -> bool:
    return worker._stop_requested


def set_state_in_memory(worker: BaseWorker, state: str) -> None:
    """The state get_state() returns, written to Redis by the caller's own step."""
    worker._state = state


def stopped_job_id(worker: BaseWorker) -> str | None:
    """The job a stop-job command stopped, while its failure is not yet handled."""
    return worker._stopped_job_id


def serialized_meta(job: Job) -> bytes:
    return job._serialize_meta()


def set_shutdown_requested(worker: BaseWorker, date: datetime) -> None:
    worker._shutdown_requested_date = date


def install_signal_handlers(worker: BaseWorker) -> None:
    worker._install_signal_handlers()


def start_scheduler(
    worker: BaseWorker, burst: bool, logging_level: str | None, date_format: str, log_format: str
) -> None:
    worker._start_scheduler(burst, logging_level, date_format, log_format)


def prepare_for_queue(queue: Queue, job: Job) -> None:
    queue._prepare_for_queue(job)


def is_job_exception_record(record: Any) -> bool:
    """Whether a log record is the one RQ's BaseWorker.handle_exception logs for a job that
    raised (rq/worker/base.py: an ERROR from `handle_exception` with `extra` job_id and
    queue): for the loggers of workers whose failed jobs are reported another way."""
    return record.funcName == "handle_exception" and hasattr(record, "job_id")


def set_current_job(job: Job) -> Any:
    """get_current_job() returns `job` in this context (a task's own) until reset with
    the token returned."""
    return rq_job._current_job.set(job)


def reset_current_job(token: Any) -> None:
    rq_job._current_job.reset(token)
