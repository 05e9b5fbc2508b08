"""Task 11 (8-job.test.js): create_push_notifications_jobs in test mode.

Test mode, as Kue's queue.testMode: the queue lives on fakeredis (no server needed) and
its jobs are stored, not run, until a test runs a worker itself.
"""

import importlib

import fakeredis
import pytest
from rq import Queue, SimpleWorker

create_push_notifications_jobs = importlib.import_module("8_job").create_push_notifications_jobs

JOB_DATA = [
    {"phoneNumber": "4153518780", "message": "This is the code 1234 to verify your account"},
    {"phoneNumber": "4153518743", "message": "This is the code 4321 to verify your account"},
]


@pytest.fixture
def queue():
    """Enter test mode before the test; clear the queue and leave it after."""
    queue = Queue("push_notification_code_3", connection=fakeredis.FakeRedis())
    yield queue
    queue.empty()
    assert queue.count == 0
    queue.connection.flushall()


def run_queued_jobs(queue: Queue) -> None:
    """What a processor does: here, in this process, on the fake server."""
    SimpleWorker([queue], connection=queue.connection).work(burst=True)


@pytest.mark.parametrize("not_a_list", [None, "jobs", {"phoneNumber": "1"}, (JOB_DATA[0],), 3])
def test_display_an_error_message_if_jobs_is_not_an_array(queue, not_a_list):
    with pytest.raises(TypeError, match=r"^Jobs is not an array$"):
        create_push_notifications_jobs(not_a_list, queue)
    assert queue.count == 0


def test_create_two_new_jobs_to_the_queue(queue, capsys):
    create_push_notifications_jobs(JOB_DATA, queue)

    assert capsys.readouterr().out == ("Notification job created: 1\nNotification job created: 2\n")
    assert queue.job_ids == ["1", "2"]
    assert [job.args for job in queue.jobs] == [(JOB_DATA[0],), (JOB_DATA[1],)]
    assert [job.func_name for job in queue.jobs] == ["7_job_processor.notification_job"] * 2


def test_ids_keep_rising(queue, capsys):
    create_push_notifications_jobs(JOB_DATA[:1], queue)
    create_push_notifications_jobs(JOB_DATA[:1], queue)
    assert capsys.readouterr().out == ("Notification job created: 1\nNotification job created: 2\n")


def test_an_empty_list_creates_nothing(queue, capsys):
    create_push_notifications_jobs([], queue).wait()
    assert capsys.readouterr().out == ""
    assert queue.count == 0


def test_progress_and_completion_lines_come_with_their_events(queue, capsys):
    creator = create_push_notifications_jobs(JOB_DATA[1:], queue)
    assert capsys.readouterr().out == "Notification job created: 1\n"

    run_queued_jobs(queue)
    creator.wait()
    assert capsys.readouterr().out.splitlines() == [
        "Sending notification to 4153518743, with message: This is the code 4321 to verify "
        "your account",
        "Notification job 1 0% complete",
        "Notification job 1 50% complete",
        "Notification job 1 completed",
    ]


def test_the_failure_line_comes_with_its_error(queue, capsys):
    creator = create_push_notifications_jobs(JOB_DATA[:1], queue)
    assert capsys.readouterr().out == "Notification job created: 1\n"

    run_queued_jobs(queue)
    creator.wait()
    assert capsys.readouterr().out.splitlines() == [
        "Notification job 1 0% complete",
        "Notification job 1 failed: Phone number 4153518780 is blacklisted",
    ]
