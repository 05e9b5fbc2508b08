"""Jobs for tests/test_rq_bookkeeping.py: the outcomes a job can have. Each records what
Redis holds while it runs."""

from rq import get_current_job
from rq.command import handle_stop_job_command

from queuing.job_queue import report_progress
from tests.redis_state import snapshot

states: list[dict] = []  # what Redis held while each job ran


def record_the_state() -> None:
    job = get_current_job()
    states.append(snapshot(job.connection, job.worker_name))


def returns_nothing(data: dict) -> None:
    record_the_state()
    report_progress(50)


def returns_a_value(data: dict) -> dict:
    record_the_state()
    return {"sent to": data["phoneNumber"]}


def raises(data: dict) -> None:
    record_the_state()
    raise ValueError(f"Phone number {data['phoneNumber']} is blacklisted")


def raises_on_first_try(data: dict) -> dict:
    """Fails its first try (of three: Retry(max=2)), succeeds on its second."""
    record_the_state()
    if get_current_job().retries_left == 2:
        raise ValueError(f"Phone number {data['phoneNumber']} is busy")
    return {"sent to": data["phoneNumber"]}


stopping_worker = None  # the worker whose job asks to be stopped (stopped_on_request)


def stopped_on_request(data: dict) -> None:
    """Stopped by RQ's stop-job command while it runs (as `rq`'s send_stop_job_command
    reaches its worker), then fails."""
    handle_stop_job_command(stopping_worker, {"job_id": get_current_job().id})
    raise RuntimeError("Stopped")
