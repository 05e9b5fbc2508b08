"""The examples beside the course's scripts (examples/), run as a user runs them, from
the project's folder, on the test's own Redis: examples/kue_options.py and its processor,
Kue's job options on RQ."""

from collections import defaultdict

from harness.net import free_port
from harness.waiting import wait_until
from tests.rq_cli import registered_workers
from tests.scripts import Script

QUEUE = "kue_options"
CREATOR = "examples/kue_options.py"
PROCESSOR = "examples/kue_options_processor.py"
# The jobs' numbers, in the order the creator queues them: low, critical, delayed, and
# the blacklisted one, tried 3 times.
LOW, CRITICAL, DELAYED, BLACKLISTED = "4153518781", "4153518782", "4153518743", "4153518780"
MESSAGES = {
    LOW: "A notification of low priority",
    CRITICAL: "A critical notification",
    DELAYED: "A notification delayed by 2 seconds",
}
ERROR = f"Phone number {BLACKLISTED} is blacklisted"


def created_lines() -> list[str]:
    """The creator's first lines, as it queues the jobs (ids 1 to 4: each test's Redis
    starts empty)."""
    return [
        "Notification job 1 created: priority low",
        "Notification job 2 created: priority critical",
        "Notification job 3 created: delayed by 2 seconds",
        "Notification job 4 created: 3 attempts, 1 second apart",
    ]


def lines_of_each_job() -> dict[str, list[str]]:
    """Every line the creator prints about each job once queued, in the order it prints
    them: a job's events come in the order they happened."""

    def ran(job_id: str, number: str) -> list[str]:
        return [
            f"Notification job {job_id} started",
            f'Notification job {job_id} 50% complete, data: {{"stage": "sending"}}',
            f"Notification job {job_id} completed, result: "
            f'{{"phoneNumber": "{number}", "delivered": true}}',
            f"Notification job {job_id} logged: Notification sent to {number}",
        ]

    promoted = "promoted: its wait is over, it is queued"
    return {
        "1": ran("1", LOW),
        "2": ran("2", CRITICAL),
        "3": [f"Notification job 3 {promoted}", *ran("3", DELAYED)],
        "4": [
            "Notification job 4 started",
            f"Notification job 4 failed attempt 1: {ERROR}",
            f"Notification job 4 {promoted}",
            "Notification job 4 started",
            f"Notification job 4 failed attempt 2: {ERROR}",
            f"Notification job 4 {promoted}",
            "Notification job 4 started",
            f"Notification job 4 failed: {ERROR}",
        ],
    }


def by_job(lines: list[str]) -> dict[str, list[str]]:
    per_job = defaultdict(list)
    for line in lines:
        per_job[line.split()[2]].append(line)
    return dict(per_job)


def assert_creator_output(lines: list[str]) -> None:
    assert lines[:4] == created_lines()
    assert by_job(lines[4:]) == lines_of_each_job()
    # Queued while the queue was paused, the critical job started before the low one,
    # though queued after it; which of the others started first is not told. (Here the
    # processor meets the priority levels for the first time. One that already works
    # them may start the low one first: its idle workers take a paused queue's jobs and
    # put them back, and start the one in hand on resume, a bug of the job module.)
    assert lines.index("Notification job 2 started") < lines.index("Notification job 1 started")


def assert_processor_sent_the_three(processor: Script) -> None:
    """Two jobs at a time, in one process: the lines of the three jobs that ran, in
    whatever order their threads wrote them."""
    expected = [f"Sending notification to {n}, with message: {m}" for n, m in MESSAGES.items()]
    assert sorted(processor.read_lines(3)) == sorted(expected)


def start_processor(start_script, redis_url: str) -> Script:
    processor = start_script(PROCESSOR, redis_url)
    wait_until(lambda: registered_workers(redis_url, QUEUE) == 1, what="its worker registered")
    return processor


def stop(processor: Script) -> None:
    """Ctrl-C: the processor ends cleanly, having said nothing else."""
    processor.interrupt()
    assert processor.wait() == 0
    assert processor.rest == []
    processor.assert_no_traceback()


def test_processor_first_then_the_creator(redis_url, start_script):
    processor = start_processor(start_script, redis_url)
    creator = start_script(CREATOR, redis_url)
    assert creator.wait(60) == 0
    assert_creator_output(creator.lines)
    assert creator.stderr() == ""
    assert_processor_sent_the_three(processor)
    stop(processor)


def test_creator_first_then_the_processor(redis_url, start_script):
    creator = start_script(CREATOR, redis_url)
    assert creator.read_lines(4) == created_lines()
    processor = start_processor(start_script, redis_url)
    assert creator.wait(60) == 0
    assert_creator_output(creator.lines)
    assert creator.stderr() == ""
    assert_processor_sent_the_three(processor)
    stop(processor)


def test_without_redis_the_creator_says_so_in_one_line(start_script):
    port = free_port()
    creator = start_script(CREATOR, f"redis://127.0.0.1:{port}/0")
    assert creator.wait() == 1
    assert creator.lines == [
        "Redis client not connected to the server: "
        f"Error 111 connecting to 127.0.0.1:{port}. Connection refused."
    ]
    assert creator.stderr() == ""


def test_without_redis_the_processor_waits_for_it_and_stops_on_ctrl_c(start_script):
    port = free_port()
    processor = start_script(PROCESSOR, f"redis://127.0.0.1:{port}/0")
    wait_until(lambda: len(processor.error_lines) >= 2, what="two tries to reach Redis")
    stop(processor)
    assert processor.lines == []
    # Why it does nothing, once a second, in one line each.
    assert set(processor.stderr().splitlines()) == {
        f"Worker: Redis unreachable (Error 111 connecting to 127.0.0.1:{port}. "
        "Connection refused.), trying again in 1 s"
    }
