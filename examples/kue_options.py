"""Kue's job options on RQ, the creator (its processor: kue_options_processor.py): four
notification jobs, one option each, and, as it happens, what becomes of them.

- priority: a low job, then a critical one, queued while the queue is paused; once it
  is resumed, the critical one starts first;
- delay: a job delayed by 2 seconds, promoted to the queue when due, then run;
- attempts with backoff: a job for a blacklisted number, tried 3 times, 1 second apart:
  a `failed attempt` line for each of the first two tries, then `failed`.
The jobs that run report their progress with data, keep a log line and return a result,
which `completed` brings here.

Run from the project's folder, the processor in another terminal (either first):
`python examples/kue_options.py`. It ends once every job has ended.
"""

import json
import sys
from pathlib import Path

# Run as `python examples/kue_options.py`, Python puts examples/ first on the path, not
# the project's folder, where `queuing` is.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rq import Queue
from rq.job import Job

from queuing.job_queue import JobCreator, pause_queue, resume_queue
from queuing.redis_connection import create_client, run

QUEUE = "kue_options"
# RQ names the function a job runs by its import path: the processor's, in the package
# `examples`, importable from the project's folder where the processor runs.
JOB_FUNCTION = "examples.kue_options_processor.notification_job"

low_job = {"phoneNumber": "4153518781", "message": "A notification of low priority"}
critical_job = {"phoneNumber": "4153518782", "message": "A critical notification"}
delayed_job = {"phoneNumber": "4153518743", "message": "A notification delayed by 2 seconds"}
blacklisted_job = {"phoneNumber": "4153518780", "message": "A notification tried 3 times"}


def on_started(job_id: str) -> None:
    print(f"Notification job {job_id} started")


def on_promoted(job_id: str) -> None:
    print(f"Notification job {job_id} promoted: its wait is over, it is queued")


def on_progress(job_id: str, percent: int, data: dict) -> None:
    print(f"Notification job {job_id} {percent}% complete, data: {json.dumps(data)}")


def on_failed_attempt(job_id: str, error: str, attempts_made: int) -> None:
    print(f"Notification job {job_id} failed attempt {attempts_made}: {error}")


def on_failed(job_id: str, error: str) -> None:
    print(f"Notification job {job_id} failed: {error}")


def main() -> None:
    queue = Queue(QUEUE, connection=create_client(decode_responses=False))

    def on_completed(job_id: str, result: dict) -> None:
        print(f"Notification job {job_id} completed, result: {json.dumps(result)}")
        # A job's log lines are kept with it (its meta, which rq-dashboard shows too).
        for line in Job.fetch(job_id, connection=queue.connection).meta.get("logs", []):
            print(f"Notification job {job_id} logged: {line}")

    creator = JobCreator(
        queue,
        started=on_started,
        promoted=on_promoted,
        progress=on_progress,
        failed_attempt=on_failed_attempt,
        failed=on_failed,
        completed=on_completed,
    )
    # Paused, so that both wait in the queue, whatever the processor is doing: a worker
    # then takes the critical one first, though it was queued last.
    pause_queue(queue)
    try:
        job = creator.create(JOB_FUNCTION, low_job, priority="low")
        print(f"Notification job {job.id} created: priority low")
        job = creator.create(JOB_FUNCTION, critical_job, priority="critical")
        print(f"Notification job {job.id} created: priority critical")
    finally:
        resume_queue(queue)
    job = creator.create(JOB_FUNCTION, delayed_job, delay=2)
    print(f"Notification job {job.id} created: delayed by 2 seconds")
    backoff = {"type": "fixed", "delay": 1}
    job = creator.create(JOB_FUNCTION, blacklisted_job, attempts=3, backoff=backoff)
    print(f"Notification job {job.id} created: 3 attempts, 1 second apart")
    creator.wait()


if __name__ == "__main__":
    run(main)
