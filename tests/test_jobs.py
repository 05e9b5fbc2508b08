"""Course tasks 6 to 9 on a real Redis: the creators and processors run as a user runs
them, in either order, with the stock `rq worker`, and through faults."""

import os
import signal
from collections import defaultdict

import pytest
import redis
from rq import Queue
from rq.job import Job, JobStatus

from harness.net import free_port
from harness.waiting import wait_until
from queuing.job_queue import JobCreator
from tests.rq_cli import registered_workers, rq_cli
from tests.scripts import run_script
from tests.served_apps import is_alive

pytestmark = pytest.mark.slow  # every test runs the scripts as processes

JOBS_7 = [  # phone numbers of 7_job_creator.py, in its order
    "4153518780",
    "4153518781",
    "4153518743",
    "4153538781",
    "4153118782",
    "4153718781",
    "4159518782",
    "4158718781",
    "4153818782",
    "4154318781",
    "4151218782",
]
BLACKLISTED = {"4153518780", "4153518781"}
CODES = ["1234", "4562", "4321", "4562", "4321", "4562", "4321", "4562", "4321", "4562", "4321"]


def rq_connection(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)


def start_processor(start_script, name, url, queue_name):
    """A course processor, started: one worker registered (7_job_processor's two jobs at a
    time run in one process, as Kue's did)."""
    processor = start_script(name, url)
    wait_until(lambda: registered_workers(url, queue_name) == 1, what="its worker registered")
    return processor


# ------------------------------------------------------------------ 6: one job


def test_6_creator_first_then_processor(redis_url, start_script):
    creator = start_script("6_job_creator.py", redis_url)
    assert creator.next_line() == "Notification job created: 1"
    processor = start_script("6_job_processor.py", redis_url)
    assert processor.next_line() == (
        "Sending notification to 4153518780, with message: This is the code to verify your account"
    )
    assert creator.wait() == 0
    assert creator.lines == ["Notification job created: 1", "Notification job completed"]
    assert creator.stderr() == ""


def test_6_processor_first_and_ids_rise_across_runs(redis_url, start_script):
    processor = start_processor(
        start_script, "6_job_processor.py", redis_url, "push_notification_code"
    )
    for job_id in (1, 2):
        result = run_script("6_job_creator.py", redis_url)
        assert result.stdout.splitlines() == [
            f"Notification job created: {job_id}",
            "Notification job completed",
        ]
        assert (result.returncode, result.stderr) == (0, "")
    assert (
        processor.read_lines(2)
        == [
            "Sending notification to 4153518780, with message: This is the code to verify "
            "your account"
        ]
        * 2
    )


def test_6_creator_reports_a_job_that_failed_without_an_event(redis_url, start_script, tmp_path):
    creator = start_script("6_job_creator.py", redis_url)
    assert creator.next_line() == "Notification job created: 1"
    # Started outside the project folder, a stock worker cannot import the job's function,
    # nor the callback that would send the event: the creator learns it from Redis.
    rq_cli("worker", "--burst", "--url", redis_url, "push_notification_code", cwd=tmp_path)
    assert creator.wait() == 0
    assert creator.rest == ["Notification job failed"]


# ------------------------------------------------------------------ 7: progress, two at a time


def expected_lines_7(first_id: int) -> dict[str, list[str]]:
    """Every line 7_job_creator prints about each job, in the order it prints them."""
    lines = {}
    for offset, number in enumerate(JOBS_7):
        job_id = str(first_id + offset)
        progress = [f"Notification job {job_id} 0% complete"]
        if number in BLACKLISTED:
            ending = [f"Notification job {job_id} failed: Phone number {number} is blacklisted"]
        else:
            progress.append(f"Notification job {job_id} 50% complete")
            ending = [f"Notification job {job_id} completed"]
        lines[job_id] = progress + ending
    return lines


def lines_per_job(lines: list[str]) -> dict[str, list[str]]:
    per_job = defaultdict(list)
    for line in lines:
        per_job[line.split()[2]].append(line)
    return dict(per_job)


def sending_lines() -> list[str]:
    return sorted(
        f"Sending notification to {number}, with message: This is the code {code} to verify "
        "your account"
        for number, code in zip(JOBS_7, CODES, strict=True)
        if number not in BLACKLISTED
    )


def assert_7_creator_output(lines: list[str], first_id: int = 1) -> None:
    created = [f"Notification job created: {first_id + n}" for n in range(11)]
    assert lines[:11] == created
    assert lines_per_job(lines[11:]) == expected_lines_7(first_id)


def test_7_processor_first_works_two_at_a_time(redis_url, start_script):
    processor = start_processor(
        start_script, "7_job_processor.py", redis_url, "push_notification_code_2"
    )
    result = run_script("7_job_creator.py", redis_url)
    assert (result.returncode, result.stderr) == (0, "")
    assert_7_creator_output(result.stdout.splitlines())
    assert sorted(processor.read_lines(9)) == sending_lines()
    # Every job was worked by the one worker, in the processor's own process.
    with rq_connection(redis_url) as connection:
        (worker_key,) = connection.smembers("rq:workers:push_notification_code_2")
        assert int(connection.hget(worker_key, "pid")) == processor.process.pid
        names = {connection.hget(f"rq:job:{n}", "worker_name") for n in range(1, 12)}
        assert names == {worker_key.decode().removeprefix("rq:worker:").encode()}
    processor.interrupt()
    assert processor.wait() == 0
    assert processor.rest == []
    assert processor.stderr() == ""
    assert registered_workers(redis_url, "push_notification_code_2") == 0


def test_7_creator_first_then_processor(redis_url, start_script):
    creator = start_script("7_job_creator.py", redis_url)
    assert creator.read_lines(11) == [f"Notification job created: {n}" for n in range(1, 12)]
    processor = start_script("7_job_processor.py", redis_url)
    assert creator.wait() == 0
    assert_7_creator_output(creator.lines)
    assert creator.stderr() == ""
    assert sorted(processor.read_lines(9)) == sending_lines()


def test_7_stock_rq_worker_works_the_jobs_with_events(redis_url, start_script):
    creator = start_script("7_job_creator.py", redis_url)
    creator.read_lines(11)
    worker = rq_cli("worker", "--burst", "--url", redis_url, "push_notification_code_2")
    assert worker.returncode == 0, worker.stderr
    assert creator.wait() == 0
    assert_7_creator_output(creator.lines)
    assert sorted(line for line in worker.stdout.splitlines() if "Sending" in line) == (
        sending_lines()
    )


def test_7_ids_rise_across_runs(redis_url, start_script):
    start_processor(start_script, "7_job_processor.py", redis_url, "push_notification_code_2")
    for first_id in (1, 12):
        result = run_script("7_job_creator.py", redis_url)
        assert_7_creator_output(result.stdout.splitlines(), first_id)


def test_8_job_script_with_the_stock_worker_on_queue_3(redis_url, start_script):
    script = start_script("8_job.py", redis_url)
    assert script.next_line() == "Notification job created: 1"
    rq_cli("worker", "--burst", "--url", redis_url, "push_notification_code_3")
    assert script.wait() == 0
    assert script.rest == [
        "Notification job 1 0% complete",
        "Notification job 1 failed: Phone number 4153518780 is blacklisted",
    ]


# ------------------------------------------------------------------ stopping and faults


def slow_job_creator(url: str, queue_name: str = "push_notification_code_2", **handlers):
    return JobCreator(Queue(queue_name, connection=rq_connection(url)), **handlers)


def test_ctrl_c_finishes_the_jobs_in_hand_then_stops(redis_url, start_script):
    processor = start_processor(
        start_script, "7_job_processor.py", redis_url, "push_notification_code_2"
    )
    creator = slow_job_creator(redis_url)
    jobs = [creator.create("tests.slow_jobs.slow_job", {"seconds": 2}) for _ in range(3)]
    in_hand, queued = jobs[:2], jobs[2]
    wait_until(
        lambda: all(job.get_status(refresh=True) == JobStatus.STARTED for job in in_hand),
        what="two jobs started",
    )
    processor.interrupt()
    assert processor.wait() == 0
    assert processor.lines == ["Slow job done after 2 s"] * 2
    assert processor.stderr() == ""
    assert [job.get_status(refresh=True) for job in in_hand] == [JobStatus.FINISHED] * 2
    assert queued.get_status(refresh=True) == JobStatus.QUEUED  # left for the next one


def test_sigterm_stops_a_processor(redis_url, start_script):
    processor = start_processor(
        start_script, "6_job_processor.py", redis_url, "push_notification_code"
    )
    processor.terminate()
    assert processor.wait() == 0
    assert processor.stderr() == ""
    assert registered_workers(redis_url, "push_notification_code") == 0


def test_processor_goes_on_after_redis_restarts(make_redis_server, start_script):
    server = make_redis_server(persist=True).start()
    processor = start_processor(
        start_script, "7_job_processor.py", server.url, "push_notification_code_2"
    )
    assert_7_creator_output(run_script("7_job_creator.py", server.url).stdout.splitlines())

    server.stop()  # it saves its data, the workers' registrations among them
    server.start()
    result = run_script("7_job_creator.py", server.url)
    assert_7_creator_output(result.stdout.splitlines(), first_id=12)
    assert sorted(processor.read_lines(18)) == sorted(sending_lines() * 2)
    # The worker cut off by the restart is gone from Redis, its successor there.
    wait_until(lambda: registered_workers(server.url, "push_notification_code_2") == 1)
    processor.interrupt()
    assert processor.wait() == 0
    processor.assert_no_traceback()
    assert registered_workers(server.url, "push_notification_code_2") == 0


def test_the_jobs_of_a_killed_processor_fail_as_abandoned_each_once(redis_url, start_script):
    processor = start_processor(
        start_script, "7_job_processor.py", redis_url, "push_notification_code_2"
    )
    failures = []
    creator = slow_job_creator(
        redis_url, failed=lambda job_id, error: failures.append((job_id, error))
    )
    jobs = [
        creator.create("tests.slow_jobs.slow_job", {"seconds": 60}, job_timeout=5) for _ in range(2)
    ]
    wait_until(
        lambda: all(job.get_status(refresh=True) == JobStatus.STARTED for job in jobs),
        what="both jobs started",
    )
    assert worker_pid(redis_url, jobs[0]) == worker_pid(redis_url, jobs[1])  # one process
    os.kill(processor.process.pid, signal.SIGKILL)

    creator.wait()  # RQ calls a job abandoned once its execution's heartbeat has expired
    abandoned = "Job abandoned: its worker stopped before the job ended"
    assert sorted(failures) == sorted((job.id, abandoned) for job in jobs)
    info = rq_cli("info", "--url", redis_url, "push_notification_code_2")
    assert "push_notification_code_2 | 0, 0 executing, 0 finished, 2 failed" in info.stdout
    with rq_connection(redis_url) as connection:
        failed = Queue("push_notification_code_2", connection=connection).failed_job_registry
        assert sorted(failed.get_job_ids()) == sorted(job.id for job in jobs)
        for job in jobs:
            result = Job.fetch(job.id, connection=connection).latest_result()
            assert "AbandonedJobError" in result.exc_string
            assert len(list(Job.fetch(job.id, connection=connection).results())) == 1


@pytest.mark.parametrize("queue_name", ["push_notification_code_2"])
def test_an_abandoned_job_can_be_requeued_as_readme_says(redis_url, start_script, queue_name):
    with rq_connection(redis_url) as connection:
        queue = Queue(queue_name, connection=connection)
        creator = slow_job_creator(redis_url, queue_name)
        job = creator.create("tests.slow_jobs.slow_job", {"seconds": 0})
        queue.remove(job.id)
        queue.failed_job_registry.add(job, exc_string="AbandonedJobError")
    requeue = rq_cli("requeue", "--url", redis_url, "--queue", queue_name, "--all")
    assert requeue.returncode == 0, requeue.stderr
    processor = start_script("7_job_processor.py", redis_url)
    assert processor.next_line() == "Slow job done after 0 s"


# ------------------------------------------------------------------ no event lost to a race


def record_events(url: str) -> tuple[JobCreator, list]:
    events = []
    creator = slow_job_creator(
        url,
        progress=lambda job_id, percent: events.append((job_id, f"{percent}%")),
        completed=lambda job_id: events.append((job_id, "completed")),
        failed=lambda job_id, error: events.append((job_id, error)),
    )
    return creator, events


NOTIFY = "7_job_processor.notification_job"
BLOCKED = {"phoneNumber": "4153518780", "message": "code"}
SENT = {"phoneNumber": "4153518743", "message": "code"}


def test_a_creator_that_listens_after_its_jobs_ended_hears_every_event(redis_url):
    creator, events = record_events(redis_url)
    blocked, sent = creator.create(NOTIFY, BLOCKED), creator.create(NOTIFY, SENT)
    rq_cli("worker", "--burst", "--url", redis_url, "push_notification_code_2")
    assert blocked.get_status(refresh=True) == JobStatus.FAILED  # both ended, unheard

    creator.wait()
    assert events == [
        ("1", "0%"),
        ("1", "Phone number 4153518780 is blacklisted"),
        ("2", "0%"),
        ("2", "50%"),
        ("2", "completed"),
    ]
    assert sent.get_status(refresh=True) == JobStatus.FINISHED


def test_with_its_events_gone_a_creator_learns_the_end_from_the_jobs(redis_url):
    creator, events = record_events(redis_url)
    creator.create(NOTIFY, BLOCKED)
    creator.create(NOTIFY, SENT)
    rq_cli("worker", "--burst", "--url", redis_url, "push_notification_code_2")
    with rq_connection(redis_url) as connection:
        connection.delete("job_queue:events:push_notification_code_2")  # as if trimmed

    creator.wait()
    assert events == [
        ("1", "Phone number 4153518780 is blacklisted"),
        ("2", "completed"),
    ]


# ------------------------------------------------------------------ no Redis


@pytest.mark.parametrize("name", ["6_job_creator.py", "7_job_creator.py", "8_job.py"])
def test_a_creator_without_redis_says_so_in_one_line(name):
    port = free_port()
    result = run_script(name, f"redis://127.0.0.1:{port}/0")
    assert result.stdout == (
        "Redis client not connected to the server: "
        f"Error 111 connecting to 127.0.0.1:{port}. Connection refused.\n"
    )
    assert (result.returncode, result.stderr) == (1, "")


@pytest.mark.parametrize("name", ["6_job_processor.py", "7_job_processor.py"])
def test_a_processor_waits_for_redis_and_stops_on_ctrl_c(name, start_script):
    port = free_port()
    processor = start_script(name, f"redis://127.0.0.1:{port}/0")
    wait_until(lambda: len(processor.error_lines) >= 2, what="two tries to reach Redis")
    processor.interrupt()
    assert processor.wait() == 0
    assert processor.lines == []
    errors = processor.stderr().splitlines()
    assert errors  # it said why it does nothing, once a second, one line each
    assert set(errors) == {
        f"Worker: Redis unreachable (Error 111 connecting to 127.0.0.1:{port}. "
        "Connection refused.), trying again in 1 s"
    }


def worker_pid(url: str, job: Job) -> int:
    """The process of the worker that runs `job`."""
    with rq_connection(url) as connection:
        worker = Job.fetch(job.id, connection=connection).worker_name
        return int(connection.hget(f"rq:worker:{worker}", "pid"))


def ended_within(pid: int, seconds: float) -> bool:
    try:
        wait_until(lambda: not is_alive(pid), seconds)
    except AssertionError:
        return False
    return True


def test_a_second_ctrl_c_stops_at_once_leaving_the_job_to_be_found_abandoned(
    redis_url, start_script
):
    processor = start_processor(
        start_script, "7_job_processor.py", redis_url, "push_notification_code_2"
    )
    creator = slow_job_creator(redis_url)
    job = creator.create("tests.slow_jobs.slow_job", {"seconds": 60})
    wait_until(lambda: job.get_status(refresh=True) == JobStatus.STARTED, what="job started")
    pid = worker_pid(redis_url, job)
    processor.interrupt()  # warm: it would wait for the job's 60 seconds

    def stops_on_another_ctrl_c() -> bool:
        processor.interrupt()
        return ended_within(pid, 0.2)

    # A Ctrl-C soon after the first is taken for the pool's echo of it, and no observable
    # moment says when a later one counts: one more each time the job's worker has not
    # stopped (none once it has: the processor is then on its way out).
    wait_until(stops_on_another_ctrl_c, timeout=15, what="stopped on a second Ctrl-C")
    assert processor.wait() == 0
    processor.assert_no_traceback()
    assert job.get_status(refresh=True) == JobStatus.STARTED  # cut short, not finished
