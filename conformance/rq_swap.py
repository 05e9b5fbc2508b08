"""pytest plugin for RQ's own test suite, loaded by rq_suite.py with `-p conformance.rq_swap`
into each test's pytest process (never into the project's own test run).

Imported as pytest starts, before any of RQ's test modules, it:

1. Replaces RQ's worker classes by `queuing.job_queue.JobWorker`, as RQ_CONFORMANCE_SWAP says:
   `none` (stock RQ), `simple` (`SimpleWorker`), `all` (`SimpleWorker` and `Worker`), or
   `rq-simple` (`Worker` by RQ's own `SimpleWorker`: the check of which tests need a
   forked work horse). Replaced where the tests get them: `rq.X`, `rq.worker.X`, and any
   name a test module has already imported; in `all`, the `rqworker` command a test starts
   gets `--worker-class queuing.job_queue.JobWorker`. RQ's own modules keep their classes.
2. Writes each test phase's outcome to RQ_CONFORMANCE_RESULT, one line each (`setup passed`,
   `call failed`...), for rq_suite.py to read.

The tests reach the run's redis-server through site/sitecustomize.py, checked here.
"""

import os
import subprocess
import sys

import redis.connection
import rq
import rq.worker

SWAP = os.environ.get("RQ_CONFORMANCE_SWAP", "none")
RESULT = os.environ.get("RQ_CONFORMANCE_RESULT")
NAMES = {
    "none": (),
    "simple": ("SimpleWorker",),
    "all": ("SimpleWorker", "Worker"),
    "rq-simple": ("Worker",),
}

if SWAP not in NAMES:
    sys.exit(f"RQ_CONFORMANCE_SWAP={SWAP!r}: one of {', '.join(NAMES)}")
if getattr(redis.connection, "CONFORMANCE_REDIS_PORT", None) is None:
    sys.exit("conformance/site/sitecustomize.py did not run: RQ's tests would use port 6379")

ORIGINAL = {"SimpleWorker": rq.SimpleWorker, "Worker": rq.Worker}
if SWAP == "rq-simple":
    REPLACEMENT = rq.SimpleWorker
else:
    from queuing.job_queue import JobWorker

    REPLACEMENT = JobWorker
for _name in NAMES[SWAP]:
    setattr(rq, _name, REPLACEMENT)
    setattr(rq.worker, _name, REPLACEMENT)

_popen_init = subprocess.Popen.__init__


def _popen_with_job_worker(self, args, *rest, **kwargs):
    if SWAP == "all" and isinstance(args, list | tuple) and _is_rq_worker_command(args):
        args = [*args, "--worker-class", "queuing.job_queue.JobWorker"]
    _popen_init(self, args, *rest, **kwargs)


def _is_rq_worker_command(args) -> bool:
    program = os.path.basename(str(args[0])) if args else ""
    return program == "rqworker" or (program == "rq" and list(args[1:2]) == ["worker"])


subprocess.Popen.__init__ = _popen_with_job_worker


def pytest_collection_finish(session) -> None:
    """Names the test modules imported before the swap (none expected) are replaced too."""
    replaced = {ORIGINAL[name]: REPLACEMENT for name in NAMES[SWAP]}
    for module_name, module in list(sys.modules.items()):
        if module_name == "tests" or module_name.startswith("tests."):
            for attribute, value in list(vars(module).items()):
                if isinstance(value, type) and value in replaced:
                    setattr(module, attribute, replaced[value])


def pytest_runtest_logreport(report) -> None:
    if RESULT:
        with open(RESULT, "a") as file:
            file.write(f"{report.when} {report.outcome}\n")
