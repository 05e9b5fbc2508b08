"""How a JobWorker runs the job it took: RQ's perform and its rules, the outcome for the
next step to write, RQ's log lines, and the heartbeat of a job that runs long."""

import logging
import sys
import threading
from datetime import datetime, timezone
from typing import Any

from rq import Queue, Retry
from rq.callbacks import execute_failure_callback
from rq.executions import Execution
from rq.job_lifecycle import format_exc_info
from rq.logutils import blue, green
from rq.timeouts import JobTimeoutException
from rq.worker import WorkerStatus

from queuing import rq_compat
from queuing.job_queue.events import attempts_made, error_text, result_json, tell_started
from queuing.job_queue.step import Claimed, Outcome, renew_heartbeat
from queuing.redis_connection import UNREACHABLE


class ColdStop(SystemExit):
    """A processor's second Ctrl-C: the worker process ends at once (status 0, as RQ's
    cold shutdown), and its jobs are left to be found abandoned (not failed as a job
    that raised SystemExit)."""


class RunsJobs:
    """JobWorker's running of a job (a part of JobWorker, an RQ SimpleWorker)."""

    def renew_heartbeat(self) -> None:
        """RQ's maintain_heartbeats for the job in hand, if any (from the heartbeat
        thread): its execution stays alive until the next renewal plus the worker's
        margin (HEARTBEAT_MARGIN_SECONDS), this worker for RQ's 60 s more."""
        in_hand = self._in_hand
        if in_hand is None:
            return
        job, execution_id = in_hand
        if not execution_id:  # a job RQ's own code runs: the execution it made
            executions = list(self.executions.values())
            if not executions:
                return
            execution_id = executions[0].id
        interval = self.job_monitoring_interval
        ttl = int(interval) + self.HEARTBEAT_MARGIN_SECONDS
        renew_heartbeat(self.connection, self.key, job, execution_id, ttl, int(interval) + 60)

    def _run(self, claimed: Claimed, queue: Queue) -> Outcome | None:
        """Run the job; its outcome, to be written with the next step. A job left to
        RQ runs through RQ's own code, which writes its outcome itself."""
        self._in_hand = (claimed.job, claimed.execution_id if claimed.covered else "")
        try:
            if not claimed.covered:
                tell_started(claimed.job)
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
        except ColdStop:  # the job is left to be found abandoned
            raise
        except BaseException:  # as RQ's perform_job: whatever the job raised fails it
            return self._failed(claimed, queue, sys.exc_info())
        finally:
            rq_compat.set_state_in_memory(self, WorkerStatus.IDLE)
        return self._succeeded(claimed, queue, return_value)

    def _failed(self, claimed: Claimed, queue: Queue, exc_info: Any) -> Outcome | None:
        """The outcome of a job that raised: failed, or a try to be made again."""
        job = claimed.job
        self.handle_exception(job, *exc_info)
        error = error_text(exc_info[0], exc_info[1], job)
        if job.should_retry:
            return self._failed_try(claimed, queue, exc_info, error)
        event = "failed" if job.failure_callback else ""
        exc_string = format_exc_info(exc_info)
        recorded = not self.disable_default_exception_handler
        return Outcome.failed_with(claimed, self.name, exc_string, event, error, recorded)

    def _succeeded(self, claimed: Claimed, queue: Queue, return_value: Any) -> Outcome | None:
        """The outcome of a job that returned `return_value`."""
        job = claimed.job
        if isinstance(return_value, Retry):
            self._retry(claimed, queue, return_value)
            return None
        ttl = job.get_result_ttl(self.default_result_ttl)
        event, result = ("", "")
        if job.success_callback:
            event, result = "completed", result_json(return_value)
        outcome = Outcome.finished_with(claimed, self.name, return_value, ttl, event, result)
        if self.log.isEnabledFor(logging.INFO):
            self._log_success(outcome, return_value)
        return outcome

    def _failed_try(
        self, claimed: Claimed, queue: Queue, exc_info: Any, error: str
    ) -> Outcome | None:
        """A failed job with retries left: queued again or scheduled by the next step, as
        RQ's handle_job_failure and Job.retry do, with the `failed attempt` event that
        job_queue's failure callback (events.job_failed) sends on RQ's path."""
        job = claimed.job
        if rq_compat.stopped_job_id(self) == job.id:
            # Stopped on request: RQ marks it stopped and never retries it; its own code,
            # in _finalize_failure's order (the callback, then the bookkeeping).
            self.handle_execution_ended(job, queue, job.failure_callback_timeout)
            try:
                execute_failure_callback(job, self.death_penalty_class, *exc_info)
            except Exception:  # a failing callback's error is the one recorded, as RQ's
                exc_info = sys.exc_info()
            execution = Execution(claimed.execution_id, job.id, self.connection, self.name)
            execution.created_at = claimed.started_at
            registry = queue.started_job_registry
            exc_string = format_exc_info(exc_info)
            self.handle_job_failure(job, queue, registry, exc_string, execution)
            return None
        event, attempt = "", 0
        if job.failure_callback:
            event = "failed attempt"
            attempt = attempts_made(job)
        outcome = Outcome.retried_with(claimed, job.get_retry_interval(), event, error, attempt)
        if job.log.isEnabledFor(logging.INFO):  # Job.retry's line
            left = job.retries_left - 1
            if outcome.retry == "at":
                due = datetime.fromtimestamp(outcome.retry_at, timezone.utc)
                job.log.info("Job %s: scheduled for retry at %s, %s remaining", job.id, due, left)
            else:
                job.log.info("Job %s: enqueued for retry, %s remaining", job.id, left)
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


class Heartbeat:
    """RQ's job monitoring for a worker that runs its jobs itself: a thread that, every
    job_monitoring_interval seconds, renews the heartbeat of the job in hand (RQ's
    forking Worker does it while its work horse runs). So a job with no timeout (-1) is
    never called abandoned while it runs, and a dead worker's job still is soon after.
    Between renewals it only waits: the worker's loop pays two assignments a job."""

    def __init__(self, worker: RunsJobs) -> None:
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
        interval = self.worker.job_monitoring_interval
        wait = interval
        while not self._stopped.wait(wait):
            wait = interval
            try:
                self.worker.renew_heartbeat()
            except UNREACHABLE as error:  # again in a second: the window is short (margin)
                self.worker.log.debug("Worker %s: heartbeat not sent: %s", self.worker.name, error)
                wait = min(interval, 1)
            except Exception:
                self.worker.log.exception("Worker %s: heartbeat failed", self.worker.name)
