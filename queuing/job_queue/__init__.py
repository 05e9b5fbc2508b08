"""Kue's job model on RQ: what the course's Kue gave and RQ lacks, written once.

- Numbered ids. A job's id is the next value of one Redis counter (INCRBY), as in Kue,
  so ids rise across runs and processes: 1, 2, 3...
- Events heard by the process that created the job: `created`, `progress`,
  `completed`, `failed`. They are appended to a Redis Stream per queue, by the creator
  (`created`) and by whichever worker runs the job (the rest). A stream, not pub/sub:
  pub/sub stores nothing, so a creator that reads late would miss what happened; a
  stream keeps the events and the creator reads them from where its jobs began.
- Progress from inside a job: `report_progress(50)`, as Kue's `job.progress(50, 100)`.
- Kue's job options (options.py): `create(func, data, priority="high", delay=5,
  attempts=3, backoff={"type": "exponential", "delay": 2}, ttl=10,
  remove_on_complete=True)`, each in RQ's terms; the events `started`, `promoted`,
  `failed_attempt`, `removed` and a job's result; `log_line()` from inside a job; delayed
  jobs promoted by the processors (promoting.py); pause and resume a queue (control.py);
  every event of a queue (queue_events.py); jobs by type, as Kue's `queue.process(type,
  n, fn)` (types.py).

The jobs stay plain RQ jobs on queues named as in the course: `rq info` lists them and
a stock `rq worker <queue>` started in this folder works them, events and all, because
the events come with the job itself (RQ success and failure callbacks, and
`report_progress`). The processors' own workers (JobWorker) send the same events from
the script that does a job's bookkeeping in one round trip (step.py).

Its modules, one concern each:
- `events`: the ids' and events' keys, `report_progress`, the callbacks that tell a
  job's end (end_once.lua);
- `creator`: JobCreator, create_job (cancel_unconfirmed.lua);
- `listener`: QueueListener, for an app's processes;
- `bookkeeping`: jobs built and queued as RQ stores them (enqueue.lua), RQ's keys;
- `step`: a worker's step (step.lua) and a job's heartbeat (heartbeat.lua);
- `worker`, `taking`, `running`: JobWorker, its loop, how it takes and runs a job;
- `processes`: `work` (a processor's worker processes), WorkerThread, their logging;
- `options`: Kue's job options checked, and what each is in RQ's terms;
- `promoting`: delayed jobs and retries promoted when due (promote.lua);
- `control`: pause and resume a queue;
- `queue_events`: QueueEvents, every event of a queue's jobs;
- `types`: jobs by type (`process`, `create_job_of_type`);
- `lookup`, `states`: Kue's Job.get, job.remove, rangeByState and the queue's counts
  (the JSON API of queuing/kue_api.py is built on them).
Every name a script or an app uses is imported from here.
"""

import sys

from queuing.job_queue.control import is_paused, pause_queue, resume_queue
from queuing.job_queue.creator import JOB_TIMEOUT_SECONDS, NOT_CONFIRMED, JobCreator, create_job
from queuing.job_queue.events import (
    EVENTS_KEPT,
    IDS_KEY,
    ON_FAILURE,
    ON_SUCCESS,
    events_key,
    job_completed,
    job_failed,
    log_line,
    report_progress,
)
from queuing.job_queue.listener import QueueListener
from queuing.job_queue.lookup import get_job, job_logs, remove_job
from queuing.job_queue.options import PRIORITIES, BadJobOption, job_options
from queuing.job_queue.processes import WorkerThread, work
from queuing.job_queue.promoting import promote_job
from queuing.job_queue.queue_events import QueueEvents
from queuing.job_queue.states import job_counts, range_by_state, range_by_type
from queuing.job_queue.types import create_job_of_type, process, register, run_by_type
from queuing.job_queue.worker import JobWorker, ShutDown

# RQ stores each job's callbacks by their dotted names (events.ON_SUCCESS, ON_FAILURE),
# and resolves them with import_attribute when it runs them. Jobs queued before the
# library moved into queuing/ name them `job_queue.job_completed`, `job_queue.job_failed`,
# and Redis may keep such jobs across an upgrade (the append-only file): this package is
# also the module `job_queue`, so that RQ's own worker still finds their callbacks (in a
# process that has imported it: a course processor, or a job's module that uses it).
sys.modules.setdefault("job_queue", sys.modules[__name__])

__all__ = [
    "EVENTS_KEPT",
    "IDS_KEY",
    "JOB_TIMEOUT_SECONDS",
    "NOT_CONFIRMED",
    "ON_FAILURE",
    "ON_SUCCESS",
    "PRIORITIES",
    "BadJobOption",
    "JobCreator",
    "JobWorker",
    "QueueEvents",
    "QueueListener",
    "ShutDown",
    "WorkerThread",
    "create_job",
    "create_job_of_type",
    "events_key",
    "get_job",
    "is_paused",
    "job_completed",
    "job_counts",
    "job_failed",
    "job_logs",
    "job_options",
    "log_line",
    "pause_queue",
    "process",
    "promote_job",
    "range_by_state",
    "range_by_type",
    "register",
    "remove_job",
    "report_progress",
    "resume_queue",
    "run_by_type",
    "work",
]
