"""How a JobWorker takes its jobs: each step writes the last job's outcome and takes the
next job in one round trip (step.py); RQ's dequeue rules around it."""

import logging
import threading
import time
from collections.abc import Callable

from rq import Queue
from rq.exceptions import StopRequested
from rq.logutils import blue, green

from queuing import rq_compat
from queuing.job_queue.control import paused_queues
from queuing.job_queue.keeping import keep_last
from queuing.job_queue.step import Claimed, JobSteps, Outcome, wait_for_job_id
from queuing.redis_connection import UNREACHABLE


class TakesJobs:
    """JobWorker's taking of jobs (a part of JobWorker, an RQ SimpleWorker)."""

    def _take(self, steps: JobSteps, outcome: Outcome | None) -> tuple[Claimed | None, Queue]:
        """Write the last job's outcome and take the next job, from the first queue that
        has one, in the order of the dequeue strategy."""
        queues = rq_compat.ordered_queues(self)
        for queue in queues:
            # Redis lost here: work() writes the outcome again once it is back (a job
            # ends once, so a second write of it changes nothing).
            kind, claimed = self._step(steps, outcome, queue)
            outcome = None
            while kind in ("dependents", "gone"):  # a deleted job at the head: the next
                kind, claimed = self._step(steps, None, queue)
            if claimed is not None:
                self._taken(claimed, queue)
                return claimed, queue
        return None, queues[0]

    def _step(
        self, steps: JobSteps, outcome: Outcome | None, queue: Queue | None, job_id: str = ""
    ) -> tuple[str, Claimed | None]:
        return self._steps_at_once(steps, [(outcome, queue, job_id)])[0]

    def _steps_at_once(
        self, steps: JobSteps, calls: list[tuple[Outcome | None, Queue | None, str]]
    ) -> list[tuple[str, Claimed | None]]:
        """Steps (each JobSteps.step's arguments) in one round trip, and what follows
        each outcome written: its job's count of kept jobs, its dependents."""
        answers = steps.steps(calls)
        for (outcome, _, _), (kind, _) in zip(calls, answers, strict=True):
            if outcome is not None:
                self._written = outcome
                self._ended_written(outcome, kind)
        return answers

    def _ended_written(self, outcome: Outcome, kind: str) -> None:
        # A retried try is not an end: job_queue's failure callback keeps nothing for it.
        if not outcome.retry and "options" in outcome.job.meta:
            keep_last(outcome.job, outcome.finished)  # remove_on_complete's count, if any
        if kind == "dependents":  # rare: the ended job has dependents, which RQ moves on
            job = outcome.job
            origin = self.queue_class(
                job.origin, connection=self.connection, serializer=self.serializer
            )
            origin.enqueue_dependents(job)
            if outcome.ttl == 0 and (outcome.finished or outcome.recorded):
                job.cleanup(0, remove_from_queue=not outcome.finished)  # kept for 0 s: RQ's

    def _taken(self, claimed: Claimed, queue: Queue) -> None:
        """What RQ's dequeue does once it has a job: the queues reordered by the dequeue
        strategy, the job logged."""
        self.reorder_queues(reference_queue=queue)
        job = claimed.job
        job.redis_server_version = self.get_redis_server_version()
        if self.log.isEnabledFor(logging.INFO):
            if self.log_job_description:
                description = blue(job.description)
                self.log.info(
                    "Worker %s: %s: %s (%s)", self.name, green(queue.name), description, job.id
                )
            else:
                self.log.info("Worker %s: %s: %s", self.name, green(queue.name), job.id)

    def _write_outcome(self, steps: JobSteps, outcome: Outcome | None) -> None:
        """Write a job's outcome, waiting for Redis as long as it takes: lost, the job
        would later be called abandoned though it ran. A cold stop (a second Ctrl-C)
        still ends the wait."""
        while outcome is not None:
            try:
                self._step(steps, outcome, None)
                return
            except UNREACHABLE as error:
                self.log.warning(
                    "Job %s ended, Redis unreachable (%s): retrying", outcome.job.id, error
                )
                time.sleep(1)

    def _write_again(self, steps: JobSteps, outcome: Outcome) -> None:
        """After a lost connection, write again the last outcome the server took
        (`outcome`, from before the loss): a primary that died just then may have taken
        it to its grave while its replica, promoted, still has the job started by this
        worker; RQ's cleanup would fail that job as abandoned once its heartbeat
        expires. The step drops it where the job is not in that execution any more (it
        got there, or it ended otherwise): a job still ends once. Tried until it gets
        through, as an outcome is, or until a stop request."""
        while not self.stop_requested:
            try:
                self._step(steps, outcome, None)
                return
            except UNREACHABLE as error:  # quietly: the server may have it already
                self.log.debug(
                    "Job %s: Redis unreachable (%s): writing its outcome again in 1 s",
                    outcome.job.id,
                    error,
                )
                sleep_unless(lambda: self.stop_requested, 1)

    def _wait_for_job(self, steps: JobSteps) -> tuple[Claimed | None, Queue]:
        """Block on the queues for a while, as RQ's worker does, then take what came.
        Paused queues are left out (control.py): popped, their job would only be put
        back, again and again. A stop signal meanwhile ends the wait at once
        (JobWorker.request_stop)."""
        queues = rq_compat.ordered_queues(self)
        paused = paused_queues(self.connection, queues)
        if paused:
            queues = [queue for queue in queues if queue.name not in paused]
            if not queues:
                sleep_unless(lambda: self.stop_requested, self.WAIT_SECONDS)
                return None, rq_compat.ordered_queues(self)[0]
        self._blocked_in = threading.get_ident()
        try:
            if self.stop_requested:  # asked before the wait began
                return None, queues[0]
            found = wait_for_job_id(queues, self.WAIT_SECONDS, self.connection)
        except StopRequested:
            return None, queues[0]
        finally:
            self._blocked_in = None
        if found is None:
            return None, queues[0]
        queue, job_id = found
        _, claimed = self._step(steps, None, queue, job_id)
        if claimed is not None:
            self._taken(claimed, queue)
        return claimed, queue


def sleep_unless(stop_requested: Callable[[], bool], seconds: float) -> None:
    """Sleep, in short naps that a stop request ends (time.sleep takes no lock: a
    signal handler may set the request meanwhile)."""
    deadline = time.monotonic() + seconds
    while not stop_requested() and (left := deadline - time.monotonic()) > 0:
        time.sleep(min(left, 0.05))
