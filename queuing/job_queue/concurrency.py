"""ConcurrentJobWorker: N jobs at a time in one process, as Kue's
`queue.process(type, n, fn)` and BullMQ's `concurrency` run them.

One thread (the worker's own, the process's main thread in a processor) takes the jobs
and writes their outcomes; the jobs run beside it, plain functions on N threads of the
process, `async def` functions as tasks of one event loop. Whatever ended since the last
round trip is written, and as many jobs taken as there are free places, in one round
trip: the steps (step.py), one a job, are sent at once on the worker's one connection
and Redis answers them in order. Each job is started, heartbeated, timed out and ended
as a JobWorker does it, so `rq info`, rq-dashboard and RQ's cleanup see what they see of
a JobWorker's jobs: one worker, busy while any of its jobs runs, one execution a job
(RQ 3 keeps a worker's executions in a set for that).
"""

import asyncio
import inspect
import math
import queue as queues
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from rq import Queue
from rq.defaults import DEFAULT_LOGGING_DATE_FORMAT, DEFAULT_LOGGING_FORMAT
from rq.exceptions import StopRequested
from rq.suspension import is_suspended
from rq.timeouts import JobTimeoutException
from rq.worker import WorkerStatus

from queuing import rq_compat
from queuing.job_queue.running import ColdStop, Heartbeat
from queuing.job_queue.step import Claimed, JobSteps, Outcome, renew_heartbeat
from queuing.job_queue.worker import JobWorker, ShutDown
from queuing.job_timeouts import WatchedDeathPenalty, raise_in_thread
from queuing.redis_connection import UNREACHABLE

# While jobs run and the queues are empty: how long it waits for one of them to end
# before it looks at the queues again (a job queued meanwhile waits up to this long).
LOOK_AGAIN_SECONDS = 0.1
# The most jobs taken in one round trip: Redis works the steps one after the other (some
# 0.15 ms each), and the first jobs of a round trip wait for the last one's reply. More
# than this, and jobs that end together (a wave) start again together, later.
STEPS_AT_ONCE = 25
# A job is stopped at its timeout by an exception raised in it, at its next Python
# instruction: one still running this long after is stuck in a call (time.sleep(60), a
# read without a timeout). It fails then all the same, its thread left to end alone and
# another one started in its place.
STUCK_SECONDS = 1.0


@dataclass
class _InFlight:
    """A job running beside the worker's thread: on which thread, or as which task."""

    claimed: Claimed
    queue: Queue
    thread_id: int = 0
    future: Future | None = None  # its task's, on the event loop
    # When the worker gives up waiting for it: past its timeout plus STUCK_SECONDS (or,
    # once stopped, STUCK_SECONDS later), and what it then fails with.
    deadline: float = math.inf
    stopped_by: type[BaseException] = JobTimeoutException
    stopping: bool = False  # stopped (ShutDown, or its timeout on the event loop)


class _JobThreads:
    """N threads that run what they are given, one thing at a time each. Daemon threads:
    a processor's second Ctrl-C ends the process at once, jobs and all (a cold stop)."""

    def __init__(self, count: int) -> None:
        self._inbox: queues.SimpleQueue[Callable[[], None] | None] = queues.SimpleQueue()
        self._replaced: set[int] = set()  # threads that end once their task returns
        for _ in range(count):
            self._start_one()

    def _start_one(self) -> None:
        threading.Thread(target=self._serve, name="job", daemon=True).start()

    def run(self, task: Callable[[], None]) -> None:
        self._inbox.put(task)

    def replace(self, thread_id: int) -> None:
        """Another thread in place of one stuck in its task."""
        self._replaced.add(thread_id)
        self._start_one()

    def stop(self) -> None:
        self._inbox.put(None)  # each thread passes it on as it ends

    def _serve(self) -> None:
        while (task := self._inbox.get()) is not None:
            task()
            if threading.get_ident() in self._replaced:
                self._replaced.discard(threading.get_ident())
                return
        self._inbox.put(None)


class _EventLoop:
    """An asyncio event loop in a thread of its own, for the `async def` jobs."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="jobs' event loop")
        self._thread.daemon = True
        self._thread.start()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self.loop.close()


class ConcurrentJobWorker(JobWorker):
    """A JobWorker that runs `concurrency` jobs at a time (see the module's docstring).

    A job RQ's own code must run (one the step does not cover: dependencies, changed
    hooks) runs on the worker's own thread, the others going on meanwhile. `work()`
    takes RQ's arguments but max_jobs, max_idle_time, with_scheduler (the project's
    processors promote delayed jobs themselves) and the dequeue strategy, which stays
    RQ's default."""

    # The job threads share the process: a job past its timeout is stopped by the one
    # watching thread (job_timeouts.py), not by SIGALRM, which only the main thread gets.
    death_penalty_class = WatchedDeathPenalty

    def __init__(self, *args: Any, concurrency: int = 1, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if concurrency < 1:
            raise ValueError(f"concurrency must be 1 or more, not {concurrency}")
        self.concurrency = concurrency
        self._running: dict[str, _InFlight] = {}  # by execution id
        self._ended: queues.SimpleQueue[tuple[str, Outcome | None]] = queues.SimpleQueue()
        # Outcomes ended, not yet written; those written lately, to write again after a
        # lost connection (the primary that took them may have died before its replica
        # had them: JobWorker._write_again).
        self._unwritten: list[Outcome] = []
        self._lately_written: deque[Outcome] = deque(maxlen=concurrency)
        self._queues_dry = False  # the last take found nothing: take one at a time
        self._threads: _JobThreads | None = None
        self._shutdown_at: float | None = None  # when jobs still in hand are stopped
        self._overdue_checked_at = 0.0
        self._event_loop: _EventLoop | None = None

    def work(
        self,
        burst: bool = False,
        logging_level: str | None = None,
        date_format: str = DEFAULT_LOGGING_DATE_FORMAT,
        log_format: str = DEFAULT_LOGGING_FORMAT,
    ) -> bool:
        """Work the queues until stopped (or, in burst mode, until they are empty and no
        job runs); True if it ran any job. Once asked to stop, it takes nothing more and
        returns when the jobs in hand have ended and their outcomes are written."""
        self.bootstrap(logging_level, date_format, log_format)
        self._thread_id = threading.get_ident()
        self.add_priority_levels()
        self._install_signal_handlers_unless_owned()
        steps = JobSteps(self.connection, self.name, self.key, self.step_settings())
        heartbeat = Heartbeat(self)
        self._threads = _JobThreads(self.concurrency)
        started = 0
        lost = False  # Redis, with the outcomes it took lately
        cold = False  # a cold stop: the jobs in hand are left to be found abandoned
        try:
            while not (self._stop_seen() and not self._running):
                if self._housekeeping_due():
                    self._keep_house_while_running(burst)
                self._end_the_overdue()
                taken = self._write_and_take(steps)
                started += taken
                if taken or self._stop_seen():
                    self._wait_for_an_end(0 if taken else LOOK_AGAIN_SECONDS)
                elif self._running or self._suspended:  # suspended: housekeeping waits
                    self._wait_for_an_end(LOOK_AGAIN_SECONDS)
                elif not self._wait_then_take(steps, burst) and burst:
                    break
        except UNREACHABLE:
            lost = True
            self._connect_afresh(steps)
            raise  # once the jobs in hand have ended (below): _WorkerLoop starts anew
        except StopRequested:  # `rq suspend` in burst mode
            pass
        except ColdStop:
            cold = True
            raise
        except Exception:
            self.log.error(
                "Worker %s: found an unhandled exception, quitting...", self.name, exc_info=True
            )
        finally:
            self._finish(steps, heartbeat, lost, cold)
        return bool(started)

    def _finish(self, steps: JobSteps, heartbeat: Heartbeat, lost: bool, cold: bool) -> None:
        """Wait for the jobs in hand to end and write their outcomes, waiting for Redis as
        long as it takes (a cold stop still ends it); after a lost connection, write
        again those written lately (JobWorker._write_again); then stop."""
        written_before = list(self._lately_written) if lost else []
        try:
            while (self._running or self._unwritten) and not cold:
                self._wait_for_an_end(LOOK_AGAIN_SECONDS)
                self._end_the_overdue()
                self._write_ended_until_written(steps)
            for outcome in written_before:
                self._write_again(steps, outcome)
            if not cold and not lost:
                self.set_state(WorkerStatus.IDLE)  # its last steps took nothing: still busy
        finally:
            if self._threads is not None:
                self._threads.stop()
            if self._event_loop is not None:
                self._event_loop.stop()
            self._stop_working(heartbeat, steps)

    def _write_ended_until_written(self, steps: JobSteps) -> None:
        while self._unwritten:
            try:
                self._write_ended(steps)
            except UNREACHABLE as error:
                self._connect_afresh(steps)
                self.log.warning(
                    "%d jobs ended, Redis unreachable (%s): retrying", len(self._unwritten), error
                )
                time.sleep(1)

    def _write_and_take(self, steps: JobSteps) -> int:
        """Write what ended and take as many jobs as there are free places (one while
        the queues were found empty), one step a job, all in one round trip; the jobs
        taken are started. How many were."""
        free = 0 if self._stop_seen() or self._suspended else self.concurrency - len(self._running)
        wanted = min(free, 1) if self._queues_dry else min(free, STEPS_AT_ONCE)
        if not wanted:
            self._write_ended(steps)
            return 0
        taken = 0
        skipped = False  # a deleted job at a queue's head: the queue may have more
        for queue in rq_compat.ordered_queues(self):  # the next queue for what is left
            outcomes, self._unwritten = self._unwritten, []
            takes = wanted - taken
            calls = [
                (outcomes[n] if n < len(outcomes) else None, queue if n < takes else None, "")
                for n in range(max(len(outcomes), takes))
            ]
            self._unwritten = outcomes  # until the server has them
            answers = self._steps(steps, calls)
            self._unwritten = []
            for kind, claimed in answers[:takes]:
                if claimed is not None:
                    self._taken(claimed, queue)
                    self._start(claimed, queue)
                    taken += 1
                skipped = skipped or kind in ("dependents", "gone")
            if taken == wanted:
                break
        self._queues_dry = taken < wanted and not skipped
        return taken

    def _write_ended(self, steps: JobSteps) -> None:
        outcomes = self._unwritten
        if outcomes:
            self._steps(steps, [(outcome, None, "") for outcome in outcomes])
            self._unwritten = []

    def _steps(
        self, steps: JobSteps, calls: list[tuple[Outcome | None, Queue | None, str]]
    ) -> list[tuple[str, Claimed | None]]:
        answers = self._steps_at_once(steps, calls)
        self._lately_written.extend(outcome for outcome, _, _ in calls if outcome is not None)
        return answers

    def _wait_then_take(self, steps: JobSteps, burst: bool) -> bool:
        """With no job in hand and the queues empty: block on them for a while, as a
        JobWorker does (or, in burst mode, do not); whether a job was taken."""
        if burst:
            return False
        claimed, queue = self._wait_for_job(steps)
        if claimed is None:
            return False
        self._queues_dry = False
        self._start(claimed, queue)
        return True

    def _wait_for_an_end(self, seconds: float) -> None:
        """Collect the outcomes of the jobs that ended, waiting up to `seconds` for the
        first when none has."""
        try:
            ended = [self._ended.get(timeout=seconds) if seconds else self._ended.get_nowait()]
        except queues.Empty:
            return
        while True:
            execution_id, outcome = ended.pop()
            # None: given up on (_give_up_on), its failure written already
            if self._running.pop(execution_id, None) is not None and outcome is not None:
                self._unwritten.append(outcome)
            try:
                ended.append(self._ended.get_nowait())
            except queues.Empty:
                return

    def _start(self, claimed: Claimed, queue: Queue) -> None:
        """Run the job beside this thread: on a job thread, or on the event loop. A job
        RQ's own code runs runs here and now (RQ's worker keeps one such job's state)."""
        execution_id = claimed.execution_id
        if not claimed.covered:
            self._run(claimed, queue)
            return
        in_flight = self._running[execution_id] = _InFlight(claimed, queue)
        timeout = claimed.job.timeout or self.queue_class.DEFAULT_TIMEOUT
        if timeout > 0:
            in_flight.deadline = time.monotonic() + timeout + STUCK_SECONDS
        if inspect.iscoroutinefunction(claimed.job.func):
            loop = self._loop()
            coroutine = self._perform_async(in_flight)
            in_flight.future = asyncio.run_coroutine_threadsafe(coroutine, loop)
        else:
            assert self._threads is not None  # started by work()
            self._threads.run(lambda: self._perform_on_thread(in_flight))

    def _loop(self) -> asyncio.AbstractEventLoop:
        if self._event_loop is None:
            self._event_loop = _EventLoop()
        return self._event_loop.loop

    def _perform_on_thread(self, in_flight: _InFlight) -> None:
        in_flight.thread_id = threading.get_ident()
        outcome = None
        try:
            outcome = self._perform(in_flight.claimed, in_flight.queue)
        except ColdStop:
            return
        except BaseException:  # the worker's own code failed: the job is left abandoned
            self.log.exception("Worker %s: job %s", self.name, in_flight.claimed.job.id)
        finally:
            in_flight.thread_id = 0
        self._ended.put((in_flight.claimed.execution_id, outcome))

    async def _perform_async(self, in_flight: _InFlight) -> None:
        """An `async def` job as JobWorker._perform runs a job: its timeout, what it
        raised, its outcome; get_current_job() names it inside."""
        claimed, queue = in_flight.claimed, in_flight.queue
        job = claimed.job
        token = rq_compat.set_current_job(job)
        outcome = None
        try:
            timeout = job.timeout or self.queue_class.DEFAULT_TIMEOUT
            try:
                async with asyncio.timeout(timeout if timeout > 0 else None):
                    return_value = await job.func(*job.args, **job.kwargs)
            except TimeoutError:
                raise JobTimeoutException(
                    f"Task exceeded maximum timeout value ({timeout} seconds)"
                ) from None
            except asyncio.CancelledError:
                if in_flight.stopping:
                    raise in_flight.stopped_by from None
                raise
            outcome = self._succeeded(claimed, queue, return_value)
        except BaseException:
            try:
                outcome = self._failed(claimed, queue, sys.exc_info())
            except BaseException:
                self.log.exception("Worker %s: job %s", self.name, job.id)
        finally:
            rq_compat.reset_current_job(token)
            self._ended.put((claimed.execution_id, outcome))

    def renew_heartbeat(self) -> None:
        """The heartbeat of every job in hand (from the heartbeat thread)."""
        super().renew_heartbeat()  # a job RQ's own code runs, if any
        for in_flight in list(self._running.values()):
            self._in_hand_renewed(in_flight.claimed)

    def _in_hand_renewed(self, claimed: Claimed) -> None:
        interval = int(self.job_monitoring_interval)
        ttl = interval + self.HEARTBEAT_MARGIN_SECONDS
        job, execution_id = claimed.job, claimed.execution_id
        renew_heartbeat(self.connection, self.key, job, execution_id, ttl, interval + 60)

    def request_stop(self, signum: int = 0, frame: Any = None) -> None:
        """Stop once the jobs in hand have ended (JobWorker.request_stop); with a
        shutdown timeout, those still running past it fail (ShutDown). A flag and a
        date: it may run in a signal handler."""
        busy = bool(self._running)
        if busy:
            rq_compat.mark_stop_requested(self)
            if self.shutdown_timeout is not None:
                self._shutdown_at = time.monotonic() + self.shutdown_timeout
        super().request_stop(signum, frame)
        if signum and busy:
            self._stop_date_unsaved = True  # RQ saves it when busy

    def _end_the_overdue(self) -> None:
        """Stop the jobs still running past the shutdown timeout; fail those stuck past
        their timeout or their stop."""
        now = time.monotonic()
        if now < self._overdue_checked_at + LOOK_AGAIN_SECONDS:
            return  # a tenth of a second is close enough, and the jobs in hand are many
        self._overdue_checked_at = now
        if self._shutdown_at is not None and now >= self._shutdown_at:
            self._shutdown_at = None
            for in_flight in self._running.values():
                self._stop(in_flight, ShutDown, now)
        for in_flight in list(self._running.values()):
            if now >= in_flight.deadline:
                self._give_up_on(in_flight)

    def _stop(self, in_flight: _InFlight, exception: type[BaseException], now: float) -> None:
        """Raise `exception` in the job (its thread, or its task)."""
        in_flight.stopped_by = exception
        in_flight.stopping = True
        in_flight.deadline = min(in_flight.deadline, now + STUCK_SECONDS)
        if in_flight.future is not None:
            in_flight.future.cancel()
        elif in_flight.thread_id:
            raise_in_thread(in_flight.thread_id, exception)

    def _give_up_on(self, in_flight: _InFlight) -> None:
        """Fail a job stuck in a call: what it would have ended with had it been stopped
        in time (its timeout, or ShutDown); its thread ends alone, another takes its
        place, and whatever the job ends with later is dropped."""
        claimed = in_flight.claimed
        del self._running[claimed.execution_id]
        if in_flight.stopped_by is ShutDown:
            error: BaseException = ShutDown()
        else:
            timeout = claimed.job.timeout or self.queue_class.DEFAULT_TIMEOUT
            error = in_flight.stopped_by(f"Task exceeded maximum timeout value ({timeout} seconds)")
        self.log.warning("Job %s: stuck in a call past its end (%s): failed", claimed.job.id, error)
        if in_flight.thread_id and self._threads is not None:
            self._threads.replace(in_flight.thread_id)
        outcome = self._failed(claimed, in_flight.queue, (type(error), error, None))
        if outcome is not None:
            self._unwritten.append(outcome)

    _suspended = False

    def _keep_house_while_running(self, burst: bool) -> None:
        """JobWorker's housekeeping, but for `rq suspend`: while jobs run, a suspended
        worker takes nothing more and goes on writing their outcomes; once none runs, it
        waits as RQ's worker does."""
        self._last_housekeeping = time.monotonic()
        self.heartbeat()
        self.add_priority_levels()
        self._suspended = bool(self._running) and bool(is_suspended(self.connection, self))
        if not self._running:
            self.check_for_suspension(burst)
        if self.should_run_maintenance_tasks:
            self.run_maintenance_tasks()
