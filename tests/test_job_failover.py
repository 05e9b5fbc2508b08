"""Job workers across a Sentinel failover (issue 20): a job in hand when the primary
dies (kill -9) ends exactly once on the new primary, and how soon.

The set: harness/sentinel.py's primary, replica(s) and three sentinels; a processor
(`work()`, two worker processes) on the Sentinel URL. What the dead primary never passed
on is made certain, not hoped for: its replicas are stopped (SIGSTOP) and the primary is
written to until its output buffer to each replica holds data the replica never read;
what the primary takes next dies with it. Each test prints how long the job took to end
after the kill (`-s` shows it; docs/jobs.md keeps the figures); the bounds are generous.
Every wait is on a condition, checked in Redis.
"""

import os
import signal
import time
from pathlib import Path

import pytest
import redis
from rq import Queue
from rq.job import Job
from rq.registry import FailedJobRegistry, FinishedJobRegistry, StartedJobRegistry
from rq.suspension import resume, suspend

from harness.sentinel import ReplicatedRedis
from harness.waiting import wait_until
from queuing.job_queue import create_job, events_key
from queuing.job_queue.events import clean_up_abandoned_jobs

pytestmark = pytest.mark.slow  # five servers, a processor, failovers

PROCESSOR = "tests/options_processor.py"  # of the queue `options`
# Two worker processes (two jobs at a time each): one killed, the other finds its job.
TWO_PROCESSES = {"PROCESSES": "2"}
QUEUE = "options"
HELD = "tests.failover_jobs.waits_for_its_file"
ENDED = (b"finished", b"failed")
# Generous: a failover, the old primary back as a replica (the new one refuses writes
# until then), and a busy machine. Not a timing goal: the figures are printed.
ENDS_WITHIN = 150


def client(port: int) -> redis.Redis:
    return redis.Redis(port=port, socket_timeout=5)


def status_on(port: int, job_id: str) -> bytes | None:
    with client(port) as connection:
        return connection.hget(f"rq:job:{job_id}", "status")


def replica_ports(primary_port: int) -> list[int]:
    """The ports of the primary's replicas, as it lists them."""
    with client(primary_port) as connection:
        info = connection.info("replication")
    return [int(info[f"slave{n}"]["port"]) for n in range(info["connected_slaves"])]


def pid_on(port: int) -> int:
    with client(port) as connection:
        return int(connection.info("server")["process_id"])


# Bytes left in the primary's output buffer to a stopped replica, past what the kernel's
# socket buffers could still take in (tcp_wmem's maximum is some 4 MB): what the primary
# writes after them dies with it.
HELD_BACK = 16 << 20


def held_back(connection: redis.Redis) -> list[int]:
    """The bytes held in the primary's output buffer to each replica."""
    return [int(replica["omem"]) for replica in connection.client_list(_type="replica")]


def hold_replication(primary_port: int) -> list[int]:
    """Stop every replica (SIGSTOP), then write to the primary until its output buffer
    to each holds HELD_BACK bytes the replica has not taken: from then on, what the
    primary writes reaches no replica before it dies. The stopped PIDs, for SIGCONT.
    Done within the primary's min-replicas-max-lag (5 s), or it refuses writes."""
    pids = [pid_on(port) for port in replica_ports(primary_port)]
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    junk = b"x" * (1 << 20)
    with client(primary_port) as connection:

        def every_buffer_holds_data() -> bool:
            connection.set(f"junk:{time.monotonic_ns()}", junk)
            held = held_back(connection)
            return len(held) == len(pids) and min(held) > HELD_BACK

        wait_until(every_buffer_holds_data, 3, "the replicas' output buffers to hold data")
    return pids


def release(pids: list[int]) -> None:
    for pid in pids:
        os.kill(pid, signal.SIGCONT)


def start_held_job(
    replicated: ReplicatedRedis, start_script, tmp_path: Path, job_timeout: int = 30
) -> tuple[Job, Path]:
    """A processor on the Sentinel URL, and a job it runs until the file exists: its
    start known to every replica."""
    primary = replicated.primary()
    start_script(PROCESSOR, replicated.url, **TWO_PROCESSES)
    with client(primary.port) as connection:
        wait_until(lambda: connection.scard("rq:workers") == 2, 30, "two workers")
        file = tmp_path / "may_end"
        queue = Queue(QUEUE, connection=connection)
        job = create_job(queue, HELD, {"file": str(file)}, job_timeout=job_timeout)
    ports = replica_ports(primary.port)
    wait_until(
        lambda: all(status_on(port, job.id) == b"started" for port in ports),
        30,
        "the job started, on every replica",
    )
    return job, file


def fail_over(replicated: ReplicatedRedis, before_the_kill=None, stopped=()) -> tuple[int, float]:
    """kill -9 the primary (and whatever `before_the_kill` kills with it), let the
    stopped replicas go on, wait for the failover and bring the old primary back as a
    replica. The new primary's port and the moment of the kill."""
    if before_the_kill:
        before_the_kill()
    killed_at = time.monotonic()
    killed = replicated.kill_primary()
    release(stopped)
    new_primary = replicated.wait_for_failover(killed.port)
    replicated.restart(killed)  # without a replica the new primary refuses writes
    return new_primary.port, killed_at


def wait_for_its_end(port: int, job: Job, killed_at: float) -> float:
    """Until the job has ended on the new primary; the seconds since the kill."""
    wait_until(lambda: status_on(port, job.id) in ENDED, ENDS_WITHIN, f"job {job.id} ended")
    return time.monotonic() - killed_at


def assert_ended_once(port: int, job: Job) -> bytes:
    """One end in the queue's stream, one status, one registry; the status."""
    with client(port) as connection:
        stream = connection.xrange(events_key(QUEUE))
        ends = [
            fields[b"event"]
            for _, fields in stream
            if fields[b"job"] == job.id.encode() and fields[b"event"] in (b"completed", b"failed")
        ]
        status = connection.hget(job.key, "status")
        finished = job.id in FinishedJobRegistry(QUEUE, connection=connection)
        failed = job.id in FailedJobRegistry(QUEUE, connection=connection)
        started = StartedJobRegistry(QUEUE, connection=connection).get_job_ids(cleanup=False)
    assert ends == [b"completed" if status == b"finished" else b"failed"], (ends, status)
    assert (finished, failed) == (status == b"finished", status == b"failed")
    assert job.id not in started
    return status


def test_an_outcome_the_dead_primary_never_passed_on_is_written_again(
    replicated, start_script, tmp_path
):
    """(a) The job's start reached the replica, its outcome did not: its live worker
    writes it again on the new primary."""
    job, file = start_held_job(replicated, start_script, tmp_path)
    primary = replicated.primary()
    stopped = hold_replication(primary.port)
    try:
        file.touch()  # the job ends; its worker writes the outcome on the old primary
        wait_until(lambda: status_on(primary.port, job.id) == b"finished", 3, "the outcome")
        with client(primary.port) as connection:
            assert min(held_back(connection)) > HELD_BACK  # the outcome among them
        port, killed_at = fail_over(replicated, stopped=stopped)
    finally:
        release(stopped)
    seconds = wait_for_its_end(port, job, killed_at)
    status = assert_ended_once(port, job)
    print(f"\n(a) job {job.id} ended {status.decode()} {seconds:.1f} s after the kill")
    assert status == b"finished"


def test_an_outcome_that_never_reached_the_dead_primary_is_written_on_the_new_one(
    replicated, start_script, tmp_path
):
    """(a') The job ends while the primary is down: its worker's step fails, and it
    writes the outcome again each second until the new primary takes it."""
    job, file = start_held_job(replicated, start_script, tmp_path)
    killed_at = time.monotonic()
    killed = replicated.kill_primary()
    file.touch()
    new_primary = replicated.wait_for_failover(killed.port)
    replicated.restart(killed)
    seconds = wait_for_its_end(new_primary.port, job, killed_at)
    status = assert_ended_once(new_primary.port, job)
    print(f"\n(a') job {job.id} ended {status.decode()} {seconds:.1f} s after the kill")
    assert status == b"finished"


def test_a_job_whose_start_the_dead_primary_never_passed_on_runs_again(
    replicated, start_script, tmp_path
):
    """(b) The job was taken on the old primary only: on the new one it is still queued,
    and runs again (at least once, not exactly once: the job ran twice). Its first run's
    outcome is dropped; it ends once, with the second's."""
    start_script(PROCESSOR, replicated.url, **TWO_PROCESSES)
    primary = replicated.primary()
    file, runs = tmp_path / "may_end", tmp_path / "runs"
    with client(primary.port) as connection:
        wait_until(lambda: connection.scard("rq:workers") == 2, 30, "two workers")
        suspend(connection)  # `rq suspend`: the job waits in the queue

        def suspended() -> bool:
            keys = connection.smembers("rq:workers")
            return [connection.hget(key, "state") for key in keys] == [b"suspended"] * 2

        wait_until(suspended, 30, "the workers suspended")
        job = create_job(
            Queue(QUEUE, connection=connection), HELD, {"file": str(file), "runs": str(runs)}
        )
    ports = replica_ports(primary.port)
    wait_until(lambda: all(status_on(port, job.id) == b"queued" for port in ports), 30)
    stopped = hold_replication(primary.port)
    try:
        with client(primary.port) as connection:
            resume(connection)  # on the old primary only
        wait_until(lambda: status_on(primary.port, job.id) == b"started", 3, "the job taken")
        with client(primary.port) as connection:
            worker = connection.hget(job.key, "worker_name").decode()
            pid = connection.hget(f"rq:worker:{worker}", "pid")
        port, killed_at = fail_over(replicated, stopped=stopped)
    finally:
        release(stopped)
    assert status_on(port, job.id) == b"queued"
    with client(port) as connection:
        resume(connection)
    file.touch()
    seconds = wait_for_its_end(port, job, killed_at)
    status = assert_ended_once(port, job)
    print(f"\n(b) job {job.id} ended {status.decode()} {seconds:.1f} s after the kill", end=" ")
    print(f"(it ran {runs.read_text().count('run')} times)")
    assert status == b"finished"
    assert runs.read_text() == "run\nrun\n"
    # The first run's worker, alive, writes its outcome before its process registers a
    # new worker on the new primary: dropped.
    with client(port) as connection:

        def its_process_works_again() -> bool:
            workers = connection.smembers("rq:workers")
            return any(connection.hget(key, "pid") == pid for key in workers)

        wait_until(its_process_works_again, 30, "the first run's process working again")
    assert assert_ended_once(port, job) == b"finished"


def test_a_live_worker_s_job_outlives_its_window_across_a_failover(
    replicated, start_script, tmp_path
):
    """(d) A job still running after the failover: its worker's heartbeat thread renews
    its window on the new primary, and RQ's cleanup, run past the window the old
    primary had given it, does not call it abandoned; it ends finished. (A timeout
    longer than the window and the wait: RQ's default.)"""
    job, file = start_held_job(replicated, start_script, tmp_path, job_timeout=180)
    killed = replicated.kill_primary()
    port = replicated.wait_for_failover(killed.port).port
    replicated.restart(killed)
    with client(port) as connection:
        ((_, window_end),) = connection.zrange(f"rq:wip:{QUEUE}", 0, -1, withscores=True)
        wait_until(lambda: time.time() > window_end + 1, 60, "the old window over")
        clean_up_abandoned_jobs(Queue(QUEUE, connection=connection))
    assert status_on(port, job.id) == b"started"
    file.touch()
    wait_until(lambda: status_on(port, job.id) in ENDED, 30, f"job {job.id} ended")
    assert assert_ended_once(port, job) == b"finished"


# The course's timeout (JobCreator's), and RQ's default.
@pytest.mark.parametrize("job_timeout", [30, 180])
def test_a_job_whose_worker_dies_with_the_primary_fails_as_abandoned(
    replicated, start_script, tmp_path, job_timeout
):
    """(c) The worker process dies with the primary (kill -9 both): the job, started on
    the new primary, fails as abandoned once its heartbeat has expired."""
    job, _ = start_held_job(replicated, start_script, tmp_path, job_timeout)
    with client(replicated.primary().port) as connection:
        worker = Job.fetch(job.id, connection=connection).worker_name
        pid = int(connection.hget(f"rq:worker:{worker}", "pid"))
    port, killed_at = fail_over(replicated, lambda: os.kill(pid, signal.SIGKILL))
    seconds = wait_for_its_end(port, job, killed_at)
    status = assert_ended_once(port, job)
    print(f"\n(c, timeout {job_timeout} s) job {job.id} ended {status.decode()}", end=" ")
    print(f"{seconds:.1f} s after the kill")
    assert status == b"failed"
    with client(port) as connection:
        error = Job.fetch(job.id, connection=connection).latest_result().exc_string
    assert "AbandonedJobError" in error


def test_workers_leave_a_frozen_primary_for_the_new_one(replicated, start_script, tmp_path):
    """A primary frozen (SIGSTOP) past the sentinels' down-after-milliseconds: they
    promote its replica, and the processor's workers, blocked on the frozen one, move to
    the new primary within their socket timeout (11 s) and work a job queued there,
    while the old one is still frozen."""
    start_script(PROCESSOR, replicated.url, **TWO_PROCESSES)
    frozen = replicated.primary()
    with client(frozen.port) as connection:
        wait_until(lambda: connection.scard("rq:workers") == 2, 30, "two workers")
    os.kill(frozen.pid, signal.SIGSTOP)
    frozen_at = time.monotonic()
    try:
        new_primary = replicated.wait_for_failover(frozen.port)
        with client(new_primary.port) as connection:
            # With one replica the new primary has none while the old one is frozen, and
            # refuses writes (min-replicas-to-write); a set of two would not need this.
            connection.config_set("min-replicas-to-write", 0)
            file = tmp_path / "may_end"
            file.touch()
            queue = Queue(QUEUE, connection=connection)
            job = create_job(queue, HELD, {"file": str(file)})
        wait_for_its_end(new_primary.port, job, frozen_at)
        seconds = time.monotonic() - frozen_at
        assert os.waitpid(frozen.pid, os.WNOHANG) == (0, 0)  # still there, frozen
        status = assert_ended_once(new_primary.port, job)
        print(f"\n(frozen) job {job.id} queued on the new primary ended", end=" ")
        print(f"{status.decode()} {seconds:.1f} s after the freeze")
        assert status == b"finished"
    finally:
        os.kill(frozen.pid, signal.SIGCONT)
    replicated.restart(frozen)  # back as a replica
