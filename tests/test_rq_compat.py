"""rq_compat.py, RQ's private names behind one door, checked against the installed RQ.

On an RQ other than the one rq_compat.py was read from, this fails first and says what
to do: read each of PRIVATE_NAMES in the new RQ's source, fix what changed, then set
RQ_VERSION (and requirements.txt's pin)."""

import importlib
import importlib.metadata
import inspect
import logging
import re
import signal

import pytest
import redis
from rq import Queue, SimpleWorker, get_current_job
from rq.job import Job
from rq.utils import now
from rq.worker import BaseWorker, DequeueStrategy, WorkerStatus
from rq.worker_pool import WorkerPool

from queuing import rq_compat
from tests.scripts import PROJECT

# The project's modules, which must reach RQ's private names through rq_compat only.
CHECKED = sorted(
    path
    for path in PROJECT.glob("**/*.py")
    if not {".venv", ".cache", ".bench", ".redis", "tests", "conformance"}
    & set(path.relative_to(PROJECT).parts)
    and path.name != "rq_compat.py"
)


def test_rq_is_the_version_rq_compat_was_read_from():
    pinned = re.search(r"^rq==(\S+)", (PROJECT / "requirements.txt").read_text(), re.M)
    installed = importlib.metadata.version("rq")
    assert pinned and pinned.group(1) == rq_compat.RQ_VERSION, (
        f"requirements.txt pins rq {pinned and pinned.group(1)}; rq_compat.py was read from "
        f"RQ {rq_compat.RQ_VERSION}: check its PRIVATE_NAMES against the pinned RQ"
    )
    if installed != rq_compat.RQ_VERSION:
        pytest.fail(
            f"RQ {installed} is installed, not RQ {rq_compat.RQ_VERSION}, whose private names "
            "rq_compat.py uses: read each of rq_compat.PRIVATE_NAMES in this RQ's source, "
            "fix rq_compat.py where it changed, then set RQ_VERSION",
            pytrace=False,
        )


@pytest.fixture
def worker(redis_url):
    connection = redis.Redis.from_url(redis_url)
    queues = [Queue(name, connection=connection) for name in ("a", "b", "c")]
    return SimpleWorker(queues, connection=connection, prepare_for_work=False)


@pytest.mark.parametrize("name", sorted(rq_compat.PRIVATE_NAMES))
def test_each_private_name_is_in_rq(worker, name):
    if ":" in name:  # a module's
        module, attribute = name.split(":")
        assert hasattr(importlib.import_module(module), attribute), f"this RQ has no {name}"
        return
    owner, attribute = name.split(".", 1)
    if "(" in attribute:  # a parameter of a method that RQ calls by that name
        method, parameter = attribute.rstrip(")").split("(")
        called = inspect.getsource(WorkerPool.start_worker)
        assert parameter in inspect.signature(getattr(WorkerPool, method)).parameters
        assert f"{method}(" in called and f"{parameter}={parameter}" in called
        return
    holder = {"BaseWorker": worker, "Queue": worker.queues[0], "Job": Job}[owner]
    assert hasattr(holder, attribute), f"RQ {rq_compat.RQ_VERSION} had {name}; this RQ has not"


def test_the_current_job_is_the_one_set(worker):
    job = Job(id="a", connection=worker.connection)
    token = rq_compat.set_current_job(job)
    assert get_current_job() is job
    rq_compat.reset_current_job(token)
    assert get_current_job() is None


def test_each_accessor_does_what_rq_expects(worker, redis_url):
    assert rq_compat.ordered_queues(worker) == worker.queues
    rq_compat.set_dequeue_strategy(worker, DequeueStrategy.ROUND_ROBIN)
    worker.reorder_queues(reference_queue=worker.queues[0])
    assert [q.name for q in rq_compat.ordered_queues(worker)] == ["b", "c", "a"]

    rq_compat.set_state_in_memory(worker, WorkerStatus.BUSY)
    assert worker.get_state() == WorkerStatus.BUSY

    assert not rq_compat.stop_requested(worker)
    rq_compat.mark_stop_requested(worker)
    assert rq_compat.stop_requested(worker)
    worker.connection.set("rq:suspended", 1)  # `rq suspend`: a stop ends the wait at once
    worker.check_for_suspension(burst=False)

    job = Job.create("tests.worker_jobs.returns", args=({},), connection=worker.connection)
    rq_compat.prepare_for_queue(worker.queues[0], job)
    assert (job.origin, job.get_status(refresh=False)) == ("a", "queued")
    assert job.timeout == Queue.DEFAULT_TIMEOUT


def test_rq_s_signal_handlers_and_date_of_a_stop(worker):
    worker = SimpleWorker(worker.queues, connection=worker.connection)
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    try:
        rq_compat.install_signal_handlers(worker)
        assert signal.getsignal(signal.SIGTERM) == worker.request_stop
    finally:
        signal.signal(signal.SIGINT, before[0])
        signal.signal(signal.SIGTERM, before[1])
    worker.register_birth()
    rq_compat.set_shutdown_requested(worker, now())
    worker.set_shutdown_requested_date()
    assert worker.shutdown_requested_date is not None


def test_the_record_of_a_job_that_raised_is_recognised(worker):
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    worker.log.addHandler(handler)
    try:
        job = Job.create("tests.worker_jobs.fails", args=({},), connection=worker.connection)
        try:
            raise ValueError("failed")
        except ValueError as error:
            worker.handle_exception(job, type(error), error, error.__traceback__)
        worker.log.error("another error")
    finally:
        worker.log.removeHandler(handler)
    assert [rq_compat.is_job_exception_record(record) for record in records] == [True, False]


def test_no_module_of_the_project_uses_them_but_rq_compat():
    names = {name.split(".", 1)[1].split("(")[0] for name in rq_compat.PRIVATE_NAMES}
    names |= {"_exc_handlers", "_pool_class", "_pool_kwargs", "_connection_class", "_queue_names"}
    pattern = re.compile(r"\.(" + "|".join(sorted(names)) + r")\b")
    found = [
        f"{path.relative_to(PROJECT)}:{number}: {line.strip()}"
        for path in CHECKED
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert found == [], "use rq_compat for these:\n" + "\n".join(found)


def test_the_start_scheduler_hook_takes_what_rq_compat_passes():
    parameters = list(inspect.signature(BaseWorker._start_scheduler).parameters)
    assert parameters[:5] == ["self", "burst", "logging_level", "date_format", "log_format"]
