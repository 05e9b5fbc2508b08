"""Jobs already in Redis keep working across an upgrade of the library: a job hash
written by the code before the library moved into queuing/ (its callbacks stored as
`job_queue.job_completed`, `job_queue.job_failed`) is worked on the fast path, and its
creator hears its end; RQ's own worker finds its callbacks too. And RQ's key prefix
(RQ_KEY_PREFIX), which the scripts are given, holds for the keys they write."""

import os
import subprocess
import sys
import threading
from pathlib import Path

from rq import Queue, SimpleWorker
from rq.job import Job

from harness.waiting import wait_until
from queuing.job_queue import JobCreator, JobWorker
from queuing.job_queue.step import JobSteps

QUEUE = "stored"
OLD_CALLBACKS = {
    "success_callback_name": "job_queue.job_completed",
    "failure_callback_name": "job_queue.job_failed",
}
JOB_DATA = {"phoneNumber": "4153518743", "message": "This is the code 4321"}
BLACKLISTED = "Phone number 4153518743 is blacklisted"
PROJECT = Path(__file__).resolve().parent.parent


def creator_hearing(queue: Queue, heard: list) -> JobCreator:
    completed = lambda job_id: heard.append((job_id, "completed"))  # noqa: E731
    failed = lambda job_id, error: heard.append((job_id, "failed", error))  # noqa: E731
    return JobCreator(queue, completed=completed, failed=failed)


def hear_ends(creator: JobCreator, heard: list, count: int) -> None:
    """The creator's events delivered until `count` jobs were heard ending (within the
    wait's timeout: an end never sent fails the test, not hangs it)."""
    threading.Thread(target=creator.wait, daemon=True).start()
    wait_until(lambda: len(heard) >= count, what=f"{count} ends heard by the creator")


def jobs_stored_as_before(queue: Queue, heard: list) -> tuple[JobCreator, Job, Job]:
    """A creator whose ends go to `heard`, and two jobs it created, one that succeeds,
    one that fails, their hashes as the code before queuing/ wrote them: with the old
    callback names."""
    creator = creator_hearing(queue, heard)
    succeeds = creator.create("tests.bookkeeping_jobs.returns_nothing", JOB_DATA)
    fails = creator.create("tests.bookkeeping_jobs.raises", JOB_DATA)
    for job in (succeeds, fails):
        queue.connection.hset(job.key, mapping=OLD_CALLBACKS)
    return creator, succeeds, fails


def test_a_job_stored_with_the_old_callback_names_is_worked_on_the_fast_path(
    connection, monkeypatch
):
    steps_taken = []
    steps = JobSteps.steps

    def recorded_steps(self, calls):
        answers = steps(self, calls)
        for kind, claimed in answers:
            steps_taken.append((kind, claimed.job.id if claimed else None))
        return answers

    monkeypatch.setattr(JobSteps, "steps", recorded_steps)
    queue = Queue(QUEUE, connection=connection)
    heard = []
    creator, succeeds, fails = jobs_stored_as_before(queue, heard)

    JobWorker([queue], connection=connection).work(burst=True, logging_level="WARNING")
    hear_ends(creator, heard, 2)

    assert ("fast", succeeds.id) in steps_taken
    assert ("fast", fails.id) in steps_taken
    assert not [taken for taken in steps_taken if taken[0] == "rq"]
    assert heard == [(succeeds.id, "completed"), (fails.id, "failed", BLACKLISTED)]
    assert connection.hget(f"rq:job:{succeeds.id}", "status") == b"finished"


def test_rq_own_worker_finds_the_old_callbacks(connection):
    queue = Queue(QUEUE, connection=connection)
    heard = []
    creator, succeeds, fails = jobs_stored_as_before(queue, heard)

    SimpleWorker([queue], connection=connection).work(burst=True, logging_level="WARNING")
    hear_ends(creator, heard, 2)

    assert heard == [(succeeds.id, "completed"), (fails.id, "failed", BLACKLISTED)]


# Queues a job and works it with a JobWorker, under the RQ_KEY_PREFIX of the environment;
# prints the keys Redis holds then.
WORKS_A_JOB = """
import os, redis
from rq import Queue
from queuing.job_queue import JobCreator, JobWorker
connection = redis.Redis.from_url(os.environ["REDIS_URL"])
queue = Queue("stored", connection=connection)
creator = JobCreator(queue)
creator.create("tests.bookkeeping_jobs.returns_a_value", {"phoneNumber": "4153518743"})
JobWorker([queue], connection=connection).work(burst=True, logging_level="WARNING")
creator.wait()
print(*sorted(key.decode() for key in connection.keys()))
"""


def test_rq_key_prefix_holds_for_the_keys_the_scripts_write(redis_url):
    env = {**os.environ, "REDIS_URL": redis_url, "RQ_KEY_PREFIX": "myrq"}
    done = subprocess.run(
        [sys.executable, "-c", WORKS_A_JOB],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    keys = done.stdout.split()
    assert "myrq:job:1" in keys
    assert "myrq:results:1" in keys
    assert "myrq:finished:stored" in keys
    assert [key for key in keys if key.startswith("rq:")] == []
