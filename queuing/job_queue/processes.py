"""How a processor works its queues (`work`: N jobs at a time in its own process, or in
worker processes under RQ's worker pool, each surviving a Redis restart), a worker in a
thread of an app (WorkerThread), and their logging."""

import contextlib
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from functools import partial
from multiprocessing.process import BaseProcess
from typing import Any

import redis
from rq import Queue
from rq.connections import parse_connection
from rq.worker_pool import ForkProcess, WorkerPool

from queuing import rq_compat
from queuing.job_queue.concurrency import ConcurrentJobWorker
from queuing.job_queue.events import log
from queuing.job_queue.promoting import Promoter
from queuing.job_queue.running import ColdStop
from queuing.job_queue.worker import JobWorker, LeavesAFrozenPrimary, sleep_unless
from queuing.job_timeouts import WatchedDeathPenalty
from queuing.redis_connection import UNREACHABLE


class _ProcessJobWorker(LeavesAFrozenPrimary, JobWorker):
    """A processor's worker of one job at a time, in a worker process with a connection
    pool of its own."""


class _ConcurrentWorker(LeavesAFrozenPrimary, ConcurrentJobWorker):
    """A worker of several jobs at a time with a connection pool of its own: a
    processor's, or an app's WorkerThread's (its jobs run on threads already, stopped
    past their timeout by the process's watching thread)."""


class _ThreadJobWorker(LeavesAFrozenPrimary, JobWorker):
    """A JobWorker in a thread of a larger process (an app), where signals are not its
    own: the process's watching thread stops a job past its timeout. Its connection pool
    is its own too (WorkerThread), so it leaves a frozen primary as a processor's does."""

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
        self,
        queue_names: list[str],
        connection: redis.Redis,
        new_worker: Callable[..., JobWorker] = JobWorker,
        shutdown_timeout: float | None = None,
    ) -> None:
        self.queue_names = queue_names
        self.connection = connection
        self.new_worker = new_worker  # (queue names, connection=) -> a worker
        self.shutdown_timeout = shutdown_timeout
        # A plain flag, not an Event: a processor's signal handler sets it, and Event.set
        # takes a lock that the very thread the handler interrupted may hold (in
        # Event.wait, or in an Event.set of the handler before): it waits for ever.
        self.stop_requested = False
        self.worker: JobWorker | None = None
        self._unregistered: list[JobWorker] = []  # cut off from Redis as they stopped

    def run(self) -> None:
        """Work, and promote the queues' delayed jobs when due (promoting.py)."""
        promoter = Promoter(self._queues, ", ".join(self.queue_names))
        try:
            while not self.stop_requested:
                self._work()
                sleep_unless(lambda: self.stop_requested, 1)  # Redis was lost: again in 1 s
        finally:
            promoter.stop()

    def _queues(self) -> list[Queue]:
        worker = self.worker
        return list(worker.queues) if worker is not None else []

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
            self.worker = self.new_worker(self.queue_names, connection=self.connection)
            self.worker.log = _WORKER_LOG
            self.worker.waits_for_redis_in_place = False
            self.worker.shutdown_timeout = self.shutdown_timeout
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


def _run_worker_process(
    queue_names: list[str],
    connection: redis.Redis,
    shutdown_timeout: float | None,
    jobs_at_a_time: int = 1,
) -> None:
    """One worker process of a processor, `jobs_at_a_time` jobs at a time. Ctrl-C or
    SIGTERM stops it once the jobs in hand have ended (or, with a `shutdown_timeout`,
    failed them past that); another one, a second or more later, stops it at once (RQ's
    cold shutdown: the jobs are left to be found abandoned)."""
    new_worker: Callable[..., JobWorker] = _ProcessJobWorker
    if jobs_at_a_time > 1:
        new_worker = partial(_ConcurrentWorker, concurrency=jobs_at_a_time)
    loop = _WorkerLoop(queue_names, connection, new_worker, shutdown_timeout)
    first_request: list[float] = []

    def on_signal(signum: int, frame: Any) -> None:
        # The pool passes Ctrl-C on too: the same request comes twice at once.
        if first_request:
            if time.monotonic() - first_request[0] > SAME_STOP_REQUEST_SECONDS:
                raise ColdStop
            return  # the same request again: already in hand
        first_request.append(time.monotonic())
        loop.request_stop()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    loop.run()


class WorkerThread:
    """One worker in a thread of this process, for an app that works a queue itself,
    `jobs_at_a_time` jobs at a time."""

    def __init__(
        self, queue_names: Iterable[str], connection: redis.Redis, jobs_at_a_time: int = 1
    ) -> None:
        new_worker: Callable[..., JobWorker] = _ThreadJobWorker
        if jobs_at_a_time > 1:
            new_worker = partial(_ConcurrentWorker, concurrency=jobs_at_a_time)
        # A connection of its own: RQ's worker raises its client's socket timeout to
        # its own (minutes), which an app's requests must not inherit.
        self._loop = _WorkerLoop(list(queue_names), own_client(connection), new_worker)
        self._thread = threading.Thread(target=self._loop.run, name="rq worker", daemon=True)
        self._thread.start()

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = 10) -> None:
        """Stop after the job in hand, if any, as Kue's `queue.shutdown(timeout)`: a job
        still running `timeout` seconds later fails ("Shut down before the job ended"),
        never left started."""
        self._loop.shutdown_timeout = timeout
        if (worker := self._loop.worker) is not None:
            worker.shutdown_timeout = timeout
        self._loop.request_stop()
        self._thread.join(timeout + 5)  # the failed job's outcome written, then it ends


class _JobWorkerPool(WorkerPool):
    """RQ's worker pool (it starts the workers, restarts one that died, and stops them
    on Ctrl-C or SIGTERM), whose workers survive a Redis restart."""

    # RQ's start_worker() passes `_sleep` by that name (rq_compat.PRIVATE_NAMES). `burst`
    # and `logging_level` are not passed on: work() below, the one caller, starts the pool
    # with neither (burst False, WARNING), and a _WorkerLoop starts a new worker whenever
    # one returns, as a burst worker does once the queues are empty.
    shutdown_timeout: float | None = None  # each worker process's (work())
    jobs_at_a_time = 1  # each worker process's

    def get_worker_process(
        self, name: str, burst: bool, _sleep: float = 0, **kwargs: Any
    ) -> BaseProcess:
        connection = own_client(self.connection)  # for the new process, as RQ's pool does
        queue_names = [queue.name for queue in self.queues]
        arguments = (queue_names, connection, self.shutdown_timeout, self.jobs_at_a_time)
        return ForkProcess(target=_run_worker_process, args=arguments, name=f"Worker {name}")


def work(
    queue_names: Iterable[str],
    connection: redis.Redis,
    workers: int = 1,
    shutdown_timeout: float | None = None,
    processes: int = 1,
) -> None:
    """Work the queues `workers` jobs at a time until Ctrl-C or SIGTERM, as Kue's
    `queue.process(type, n, fn)`: in this one process, plain functions on threads and
    `async def` ones on an event loop (concurrency.py). Jobs in hand are finished first,
    or, with a `shutdown_timeout` (seconds, Kue's `queue.shutdown(timeout)`), failed if
    still running past it. Delayed jobs and retries are promoted when due: nothing else
    need run.

    For jobs that keep a CPU busy (threads of one process share one), `processes` > 1
    works them in that many worker processes, `workers` jobs at a time each, under RQ's
    worker pool, which starts a new process in place of one that died."""
    _log_quietly()
    if processes == 1:
        _run_worker_process(list(queue_names), connection, shutdown_timeout, workers)
        return
    pool = _JobWorkerPool(list(queue_names), connection=connection, num_workers=processes)
    pool.shutdown_timeout = shutdown_timeout
    pool.jobs_at_a_time = workers
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


def own_client(connection: redis.Redis) -> redis.Redis:
    """A client like `connection` with a connection pool of its own."""
    client_class, connection_class, pool_kwargs = parse_connection(connection)
    pool = redis.ConnectionPool(connection_class=connection_class, **pool_kwargs)
    return client_class(connection_pool=pool)
