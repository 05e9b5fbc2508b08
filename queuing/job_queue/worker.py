"""JobWorker: the worker of this project's processors and apps, RQ's SimpleWorker with
RQ's loop rewritten around one step a job (taking.py) and a job run as RQ runs it
(running.py)."""

import signal
import threading
import time
from typing import Any

import redis
from rq import Queue, SimpleWorker
from rq.defaults import DEFAULT_LOGGING_DATE_FORMAT, DEFAULT_LOGGING_FORMAT, DEFAULT_WORKER_TTL
from rq.exceptions import StopRequested
from rq.job import Job
from rq.suspension import is_suspended
from rq.utils import now
from rq.worker import BaseWorker, DequeueStrategy, WorkerStatus

from queuing import rq_compat
from queuing.job_queue.control import paused_key
from queuing.job_queue.events import EVENTS_KEPT, ON_FAILURE, ON_SUCCESS, callback_names, events_key
from queuing.job_queue.options import priorities_key, priority_queue_name
from queuing.job_queue.running import Heartbeat, RunsJobs
from queuing.job_queue.step import JobSteps, Outcome, StepSettings
from queuing.job_queue.taking import TakesJobs, sleep_unless
from queuing.job_timeouts import raise_in_thread
from queuing.redis_connection import UNREACHABLE


class JobWorker(TakesJobs, RunsJobs, SimpleWorker):
    """The workers of this project's processors.

    RQ's SimpleWorker (no fork per job), whose loop writes each job's bookkeeping in
    one round trip (step.py: finish a job and take the next in one script)
    instead of RQ's twenty; what RQ stores is the same, so RQ's tools see no
    difference, and a job outside that path runs through RQ's own code. `work()` takes
    RQ's arguments and keeps RQ's rules (max_jobs, max_idle_time, the scheduler, the
    dequeue strategies, the logging); RQ's own worker tests check it
    (conformance/rq_suite.py). A thread renews the heartbeat of a job that runs long, so
    a live worker's job is never called abandoned and a dead worker's soon is.
    """

    # Past the job's timeout a live worker has ended the job, and past the heartbeat
    # thread's renewal (every job_monitoring_interval) renewed it: this covers the
    # bookkeeping, or a renewal held up (tried again every second while Redis is lost):
    # a failover (sentinels' down-after-milliseconds, 3 s in redis-setup, and the
    # election), or a frozen primary (a processor's 11 s socket timeout, then the
    # failover done meanwhile). RQ's tests want a window above 30 s even with a 1 s
    # interval (test_execution_added_to_started_job_registry; RQ's margin is 60 s).
    HEARTBEAT_MARGIN_SECONDS = 35
    # While waiting for jobs: how often it looks up from the queue (stop, heartbeat).
    WAIT_SECONDS = 1
    # RQ's: a worker that loses Redis between jobs waits for it in place, trying again
    # after 1 s, 2 s, 4 s... up to a minute. _WorkerLoop's workers leave work() instead
    # (False), and it starts a new worker once Redis is back, registered afresh: a Redis
    # restarted without its data has lost the old one's registration.
    waits_for_redis_in_place = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # RQ's maintenance, where abandoned jobs are found, every 10 s (RQ: 600 s): about
        # 11 commands a queue and 0.1 ms of Redis's time a run (INFO commandstats), where
        # a job costs one round trip.
        kwargs.setdefault("maintenance_interval", 10)
        # The heartbeat thread renews a running job's window every 5 s (RQ: 30 s): one
        # short script per busy worker; a dead worker's job is found abandoned at most
        # 5 s + the margin after its last heartbeat, not 30 s + the margin.
        kwargs.setdefault("job_monitoring_interval", 5)
        super().__init__(*args, **kwargs)
        self.stop_requested = False
        self._last_housekeeping = 0.0
        # The job being run and its execution's id ('' for one RQ's own code runs), for
        # the heartbeat thread; None between jobs.
        self._in_hand: tuple[Job, str] | None = None
        self._signals_to_restore: dict[int, Any] = {}
        # The thread blocked waiting for a job (taking._wait_for_job), None when none is.
        self._blocked_in: int | None = None
        self._stop_date_unsaved = False
        # The queues it was given; their priority levels join them as jobs get them.
        self._given_queue_names = [queue.name for queue in self.queues]
        # Seconds a job in hand may go on once a stop is asked for, then it fails (Kue's
        # queue.shutdown(timeout)); None: it is waited for, however long it takes.
        self.shutdown_timeout: float | None = None
        self._thread_id = threading.get_ident()
        # The last outcome a step wrote: sent again after a lost connection, as the
        # server that took it may have died before its replica had it (_write_again).
        self._written: Outcome | None = None

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
        least once a second while waiting for one). A flag: an exception raised in the
        middle of a step would lose what it was writing or taking.

        On a signal (RQ's handlers, which work() installs where the process has none of
        its own), what RQ's request_stop does besides: the date is kept, another signal
        more than a second later stops at once (RQ's request_force_stop), and a worker
        blocked waiting for a job stops at once, as RQ's _shutdown raises StopRequested
        into its wait (redis-py drops the connection and passes the exception on)."""
        self.stop_requested = True
        busy = self._in_hand is not None
        if busy:  # RQ's flag, which RQ sets only then (_shutdown)
            rq_compat.mark_stop_requested(self)
            if self.shutdown_timeout is not None:
                fail_after_shutdown_timeout(self, self._in_hand[0], self.shutdown_timeout)
        if signum:
            rq_compat.set_shutdown_requested(self, now())
            self._stop_date_unsaved = busy  # RQ saves it when busy
            signal.signal(signal.SIGINT, self.request_force_stop)
            signal.signal(signal.SIGTERM, self.request_force_stop)
            self.handle_warm_shutdown_request()
            if self._blocked_in == threading.get_ident():
                raise StopRequested

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
        self._thread_id = threading.get_ident()
        self.add_priority_levels()
        if with_scheduler:
            rq_compat.start_scheduler(self, burst, logging_level, date_format, log_format)
        self._install_signal_handlers_unless_owned()
        steps = JobSteps(self.connection, self.name, self.key, self.step_settings())
        heartbeat = Heartbeat(self)
        outcome: Outcome | None = None
        completed = 0
        idle_since = time.monotonic()
        waiting = True  # between jobs, where RQ's worker waits for a lost Redis in place
        reconnect_wait = 1.0
        # The last outcomes written before Redis was lost, to write again (_write_again).
        again: list[Outcome] = []
        try:
            while True:
                try:
                    if again:  # after the outcome still unwritten, if any
                        self._write_outcome(steps, outcome)
                        outcome = None
                        while again:
                            self._step(steps, again[0], None)
                            again.pop(0)
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
                    if self._written is not None and self._written not in again:
                        again.append(self._written)
                    self._connect_afresh(steps)
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
                        sleep_unless(lambda: self.stop_requested, reconnect_wait)
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
                for written in again:
                    self._write_again(steps, written)
            finally:
                self._stop_working(heartbeat, steps)
        return bool(completed)

    def _stop_working(self, heartbeat: Heartbeat, steps: JobSteps) -> None:
        """What work() does last: its threads and connection let go, RQ's teardown (the
        worker's death in Redis), the signal handlers put back."""
        heartbeat.stop()
        steps.close()
        try:
            if self._stop_date_unsaved:
                self.set_shutdown_requested_date()
            self.teardown()
        finally:
            self._restore_signal_handlers()

    def _connect_afresh(self, steps: JobSteps) -> None:
        """After a lost connection, the worker's other connections connect again on
        their next use, to the primary the sentinels name by then: one left open to a
        server that stopped answering (a frozen primary) would cost a socket timeout
        each. Those in use elsewhere (an app's own) are left alone."""
        steps.disconnect()
        self.connection.connection_pool.disconnect(inuse_connections=False)

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

    def step_settings(self) -> StepSettings:
        """What the steps of its jobs need to know of this module and this worker."""
        return StepSettings(
            default_timeout=self.queue_class.DEFAULT_TIMEOUT,
            heartbeat_margin=self.HEARTBEAT_MARGIN_SECONDS,
            no_timeout_ttl=DEFAULT_WORKER_TTL,
            monitoring_interval=int(self.job_monitoring_interval),
            one_queue=len(self.queues) == 1,
            fast_path=self._may_take_fast_path(),
            events_kept=EVENTS_KEPT,
            events_key=events_key,
            paused_key=paused_key,
            success_callbacks=callback_names(ON_SUCCESS),
            failure_callbacks=callback_names(ON_FAILURE),
            job_class=self.job_class,
            serializer=self.serializer,
        )

    def _may_take_fast_path(self) -> bool:
        """Whether RQ's per-job hooks are JobWorker's own. The step does their work for
        the jobs it covers: a subclass or a test that changes one of them (on the class
        or the worker) expects RQ's code to run them, so then every job goes through it."""
        return all(
            name not in vars(self) and getattr(type(self), name) is _OWN_HOOKS[name]
            for name in _RQ_HOOKS
        )

    def add_priority_levels(self) -> None:
        """Work the priority levels the given queues' jobs were given (options.py), the
        highest first: `<queue>:critical`, `<queue>:high`, ..., `<queue>`, `<queue>:low`.
        One round trip, about once a second; nothing changes for queues without levels."""
        with self.connection.pipeline(transaction=False) as pipe:
            for name in self._given_queue_names:
                pipe.zrange(priorities_key(name), 0, -1, withscores=True)
            levels_of = pipe.execute()
        if not any(levels_of):
            return
        names = []
        for name, levels in zip(self._given_queue_names, levels_of, strict=True):
            numbers = sorted({0, *(int(score) for _, score in levels)})
            names += [priority_queue_name(name, number) for number in numbers]
        if names != [queue.name for queue in self.queues]:
            rq_compat.set_queues(self, [self._queue_named(name) for name in names])

    def _queue_named(self, name: str) -> Queue:
        return self.queue_class(
            name, connection=self.connection, job_class=self.job_class, serializer=self.serializer
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
        self.add_priority_levels()
        self.check_for_suspension(burst)
        if self.should_run_maintenance_tasks:
            self.run_maintenance_tasks()


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


class LeavesAFrozenPrimary:
    """For a JobWorker with a connection pool of its own (a processor's, an app's
    WorkerThread's): RQ's rule for a worker's socket timeout, its longest wait plus 10 s.
    RQ's worker blocks up to 405 s, so its reads may wait 415 s; a JobWorker blocks 1 s
    at a time (WAIT_SECONDS), so 11 s. A primary that stops answering without closing
    its connections (frozen: SIGSTOP, a VM paused) then costs the worker 11 s, after
    which it connects again, to the primary the sentinels name by then, instead of
    hanging until the old one wakes. A plain JobWorker keeps RQ's 415 s (RQ's tests
    check it)."""

    WAIT_SECONDS: int

    @property
    def connection_timeout(self) -> int:
        return self.WAIT_SECONDS + 10


class ShutDown(Exception):
    """Raised into a job still running when its worker's shutdown timeout is over."""

    def __init__(self, message: str = "Shut down before the job ended") -> None:
        super().__init__(message)


def fail_after_shutdown_timeout(worker: JobWorker, job: Job, seconds: float) -> None:
    """In `seconds`, if `worker` still runs `job`, make the job fail with ShutDown.

    In a process's main thread (a processor's worker process, asked to stop by a
    signal), by SIGALRM, as RQ's UnixSignalDeathPenalty stops a job: it cuts a sleep or
    a wait short. The job's own timeout, if it comes first, is left to stop it (one
    alarm: its penalty's end puts the alarm and its handler back). In another thread (an
    app's WorkerThread), raised in that thread, as RQ's TimerDeathPenalty stops a job:
    at its next Python instruction."""
    main_thread = threading.main_thread()
    if worker._thread_id == main_thread.ident and threading.current_thread() is main_thread:
        left, _ = signal.getitimer(signal.ITIMER_REAL)
        if 0 < left <= seconds:
            return

        def shut_down(signum: int, frame: Any) -> None:
            raise ShutDown

        signal.signal(signal.SIGALRM, shut_down)
        signal.setitimer(signal.ITIMER_REAL, seconds)
        return

    def fail_if_still_running() -> None:
        in_hand = worker._in_hand
        if in_hand is not None and in_hand[0] is job:
            raise_in_thread(worker._thread_id, ShutDown)

    timer = threading.Timer(seconds, fail_if_still_running)
    timer.daemon = True
    timer.start()
