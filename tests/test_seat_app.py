"""Course task 13: 100_seat.py. Routes through Flask's test client; the course's curl
session, a crowd of reservations, two processes, RQ's own worker and a Redis outage over
HTTP against the app started as a user starts it."""

import importlib
from concurrent.futures import ThreadPoolExecutor
from unittest.mock import patch

import pytest
import redis
from rq.job import Job
from rq.registry import StartedJobRegistry

from harness.net import free_port
from harness.waiting import wait_until
from queuing.job_queue import JobWorker
from queuing.job_queue.step import JobSteps
from tests.flask_client import assert_json
from tests.rq_cli import registered_workers, rq_cli
from tests.scripts import run_script
from tests.seat_reservations import (
    BLOCKED,
    IN_PROCESS,
    PROCESSING,
    SeatWatcher,
    is_end,
    pids_working_the_queue,
    seats,
)
from tests.served_apps import get, request, start_app, start_served, start_with_server, worker_pids

seat_app = importlib.import_module("100_seat")


@pytest.fixture
def app(redis_url, monkeypatch):
    # The app's worker looks up from the queue this often: closing the app waits for it.
    monkeypatch.setattr(JobWorker, "WAIT_SECONDS", 0.1)
    with redis.Redis.from_url(redis_url) as connection:
        seat_app.launch(connection)
        app = seat_app.create_app(connection)
        yield app
        app.extensions["reservations"].close()


@pytest.fixture
def client(app):
    return app.test_client()


def queued_jobs(redis_client) -> int:
    return redis_client.llen("rq:queue:reserve_seat")


def workers_on_the_queue(url: str) -> int:
    return registered_workers(url, "reserve_seat")


# ------------------------------------------------------------------ routes


def test_launching_sets_50_seats(client, redis_client):
    assert_json(client.get("/available_seats"), 200, seats(50))
    assert redis_client.get("available_seats") == "50"


def test_a_reservation_is_a_job_and_takes_a_seat_once_processed(client, redis_client, capsys):
    assert_json(client.get("/reserve_seat"), 200, IN_PROCESS)
    assert queued_jobs(redis_client) == 1
    assert_json(client.get("/available_seats"), 200, seats(50))  # nothing processed yet

    assert_json(client.get("/process"), 200, PROCESSING)
    assert printed_lines(capsys, 1) == ["Seat reservation job 1 completed"]
    assert_json(client.get("/available_seats"), 200, seats(49))
    assert queued_jobs(redis_client) == 0


def printed_lines(capsys, count: int) -> list[str]:
    """The next `count` lines the app prints (from its threads)."""
    lines = []

    def enough() -> bool:
        lines.extend(capsys.readouterr().out.splitlines())
        return len(lines) >= count

    wait_until(enough, what=f"{count} lines")
    return lines


def test_the_app_prints_each_job_s_end(client, redis_client, capsys):
    redis_client.set("available_seats", 1)
    client.get("/reserve_seat")
    client.get("/reserve_seat")
    client.get("/process")
    assert printed_lines(capsys, 2) == [
        "Seat reservation job 1 completed",
        "Seat reservation job 2 failed: Not enough seats available",
    ]
    assert redis_client.get("available_seats") == "0"


def test_with_no_seat_left_reservations_are_blocked(client, redis_client):
    redis_client.set("available_seats", 0)  # as the job that took the last one leaves it
    assert_json(client.get("/reserve_seat"), 409, BLOCKED)
    assert queued_jobs(redis_client) == 0


def test_process_called_again_starts_no_second_worker(client, redis_url):
    with ThreadPoolExecutor(max_workers=8) as pool:
        replies = list(pool.map(lambda _: client.get("/process"), range(8)))
    assert {(reply.status_code, reply.data) for reply in replies} == {(200, PROCESSING)}
    wait_until(lambda: workers_on_the_queue(redis_url) == 1)
    client.get("/process")
    assert workers_on_the_queue(redis_url) == 1


def test_a_process_works_the_queue_once_process_was_called_on_any(
    app, client, redis_client, monkeypatch
):
    monkeypatch.setattr(seat_app.Reservations, "PROCESSING_CHECK_SECONDS", 0)  # at each request
    reservations = app.extensions["reservations"]
    client.get("/available_seats")
    assert reservations.processor is None  # launched: nothing works the queue yet
    redis_client.set(seat_app.PROCESSING_KEY, 1)  # as /process on another process does
    client.get("/available_seats")
    assert reservations.processor.is_alive()
    assert_json(client.get("/reserve_seat"), 200, IN_PROCESS)
    wait_until(lambda: redis_client.get("available_seats") == "49")


def test_a_launch_ends_processing_until_process_is_called(app, client, redis_client):
    client.get("/process")
    assert redis_client.exists(seat_app.PROCESSING_KEY)
    seat_app.launch(app.extensions["reservations"].client)
    assert not redis_client.exists(seat_app.PROCESSING_KEY)


def test_without_redis_reservations_fail_with_503(make_redis_server):
    server = make_redis_server()  # never started
    with redis.Redis.from_url(server.url) as connection:
        app = seat_app.create_app(connection)
        client = app.test_client()
        assert_json(client.get("/reserve_seat"), 503, b'{"status":"Reservation failed"}')
        assert_json(client.get("/available_seats"), 503, b'{"status":"Redis unavailable"}')
        # Processing is turned on in Redis, for every process of the app: not without it.
        assert_json(client.get("/process"), 503, b'{"status":"Redis unavailable"}')
        assert app.extensions["reservations"].processor is None
        app.extensions["reservations"].close()


def test_errors_answer_json(client):
    assert_json(client.get("/reserve"), 404, b'{"status":"Not Found"}')
    assert_json(client.post("/process"), 405, b'{"status":"Method Not Allowed"}')


# ------------------------------------------------------------------ over HTTP


def job_ends(apps, count: int, timeout: float = 60) -> list[str]:
    """Read the output of the app (or apps) until they have told the end of `count`
    jobs; those lines (a server may print lines of its own among them)."""
    apps = apps if isinstance(apps, list) else [apps]
    ends = [line for app in apps for line in app.lines if is_end(line)]

    def enough() -> bool:
        ends.extend(line for app in apps for line in app.lines_so_far() if is_end(line))
        return len(ends) >= count

    wait_until(enough, timeout, what=f"{count} job ends")
    return ends


def ended_jobs(app_lines: list[str]) -> tuple[int, list[str]]:
    """How many jobs the app printed as completed, and the errors of the failed ones."""
    completed = [line for line in app_lines if line.endswith(" completed")]
    failed = [line.split("failed: ")[1] for line in app_lines if " failed: " in line]
    return len(completed), failed


def test_the_course_curl_session(redis_url, start_script):
    app, port = start_app(start_script, "100_seat.py", redis_url)
    assert get(port, "/available_seats") == seats(50)
    assert get(port, "/reserve_seat") == IN_PROCESS
    assert get(port, "/process") == PROCESSING
    assert app.next_line() == "Seat reservation job 1 completed"
    assert get(port, "/available_seats") == seats(49)

    answers = [get(port, "/reserve_seat") for _ in range(50)]
    assert answers[:49] == [IN_PROCESS] * 49  # a seat is left for each of them
    assert set(answers[49:]) <= {IN_PROCESS, BLOCKED}
    wait_until(lambda: get(port, "/available_seats") == seats(0))
    assert [get(port, "/reserve_seat") for _ in range(3)] == [BLOCKED] * 3
    completed, failed = ended_jobs(job_ends(app, answers.count(IN_PROCESS) + 1))
    assert completed == 50
    assert failed == ["Not enough seats available"] * (answers.count(IN_PROCESS) - 49)

    app.interrupt()
    assert app.wait() == 0
    app.assert_no_traceback()
    assert workers_on_the_queue(redis_url) == 0


def crowd(ports: list[int], reservations: int) -> list[bytes]:
    """`reservations` clients at once on /reserve_seat, with /process called at once
    too, several times on each port; the answers to the reservations."""
    paths = ["/reserve_seat"] * reservations + ["/process"] * 4 * len(ports)
    jobs = [(ports[n % len(ports)], path) for n, path in enumerate(paths)]
    with ThreadPoolExecutor(max_workers=32) as pool:
        replies = list(pool.map(lambda job: request(*job), jobs))
    assert all(r.status in (200, 409) for r in replies), {r.status for r in replies}
    return [r.body for r, (_, path) in zip(replies, jobs, strict=True) if path == "/reserve_seat"]


def test_200_reservations_at_once_complete_exactly_50(redis_url, start_script):
    app, port = start_app(start_script, "100_seat.py", redis_url)
    watcher = SeatWatcher(redis_url)
    answers = crowd([port], 200)
    in_process = answers.count(IN_PROCESS)
    assert in_process + answers.count(BLOCKED) == 200
    completed, failed = ended_jobs(job_ends(app, in_process))
    assert completed == 50
    assert failed == ["Not enough seats available"] * (in_process - 50)
    assert watcher.stop() == 0  # never below
    assert get(port, "/available_seats") == seats(0)
    assert get(port, "/reserve_seat") == BLOCKED
    assert workers_on_the_queue(redis_url) == 1  # /process called 4 times started one


def test_one_process_call_works_the_queue_in_every_worker_of_the_server(redis_url, start_script):
    app, port = start_served(start_script, "100_seat", redis_url)
    assert get(port, "/process") == PROCESSING  # it reaches one of the two workers

    def both_work_the_queue() -> bool:
        get(port, "/available_seats")  # on a new connection: either worker
        return set(worker_pids(app)) <= pids_working_the_queue(redis_url)

    wait_until(both_work_the_queue)
    answers = [get(port, "/reserve_seat") for _ in range(10)]
    assert answers == [IN_PROCESS] * 10
    completed, failed = ended_jobs(job_ends(app, 10))
    assert (completed, failed) == (10, [])
    assert get(port, "/available_seats") == seats(40)


def test_two_app_processes_agree(redis_url, start_script):
    (app_a, port_a), (app_b, port_b) = (
        start_app(start_script, "100_seat.py", redis_url) for _ in "ab"
    )
    answers = crowd([port_a, port_b], 150)
    in_process = answers.count(IN_PROCESS)
    wait_until(lambda: get(port_a, "/available_seats") == seats(0))
    # Each job's end is printed once, by one of them.
    lines = job_ends([app_a, app_b], in_process)
    completed, failed = ended_jobs(lines)
    assert completed == 50
    assert len(failed) == in_process - 50
    assert get(port_a, "/available_seats") == get(port_b, "/available_seats") == seats(0)
    assert get(port_a, "/reserve_seat") == get(port_b, "/reserve_seat") == BLOCKED


def test_rq_s_own_worker_works_the_queue_for_the_app(redis_url, start_script):
    app, port = start_app(start_script, "100_seat.py", redis_url)
    assert [get(port, "/reserve_seat") for _ in range(3)] == [IN_PROCESS] * 3
    worker = rq_cli("worker", "--burst", "--url", redis_url, "reserve_seat")
    assert worker.returncode == 0, worker.stderr
    assert sorted(app.read_lines(3)) == [f"Seat reservation job {n} completed" for n in (1, 2, 3)]
    assert get(port, "/available_seats") == seats(47)


def test_a_redis_outage_gives_503_and_the_app_serves_again(make_redis_server, start_script):
    server = make_redis_server(persist=True).start()
    app, port = start_app(start_script, "100_seat.py", server.url)
    assert get(port, "/reserve_seat") == IN_PROCESS
    assert get(port, "/process") == PROCESSING
    assert app.next_line() == "Seat reservation job 1 completed"

    server.stop()
    reply = request(port, "/reserve_seat")
    assert (reply.status, reply.body) == (503, b'{"status":"Reservation failed"}')
    reply = request(port, "/available_seats")
    assert (reply.status, reply.body) == (503, b'{"status":"Redis unavailable"}')
    assert app.process.poll() is None

    server.start()
    wait_until(lambda: request(port, "/available_seats").status == 200)
    assert get(port, "/available_seats") == seats(49)  # the failed reservation took none
    assert get(port, "/reserve_seat") == IN_PROCESS
    during_the_outage = app.read_until_line("Seat reservation job 2 completed")[:-1]
    assert set(during_the_outage) <= {  # the listening thread, as node_redis would say it
        "Redis client not connected to the server: Connection closed by server.",
        f"Redis client not connected to the server: Error 111 connecting to 127.0.0.1:"
        f"{server.port}. Connection refused.",
    }
    assert get(port, "/available_seats") == seats(48)
    app.interrupt()
    assert app.wait() == 0
    app.assert_no_traceback()


@pytest.mark.slow  # runs the script
def test_without_redis_at_launch_it_says_so_in_one_line():
    port = free_port()
    result = run_script("100_seat.py", f"redis://127.0.0.1:{port}/0", PORT=str(free_port()))
    assert result.stdout == (
        "Redis client not connected to the server: "
        f"Error 111 connecting to 127.0.0.1:{port}. Connection refused.\n"
    )
    assert (result.returncode, result.stderr) == (1, "")


def test_served_by_a_production_server_as_readme_says(redis_url, start_script):
    app, port = start_with_server(start_script, "granian", "100_seat", redis_url)
    answers = crowd([port], 60)
    wait_until(lambda: get(port, "/available_seats") == seats(0))
    completed, failed = ended_jobs(job_ends(app, answers.count(IN_PROCESS)))
    assert completed == 50
    assert len(failed) == answers.count(IN_PROCESS) - 50
    app.terminate()
    assert app.wait() == 0
    assert workers_on_the_queue(redis_url) == 0


# ------------------------------------------------------------------ exactly one end


def seats_and_claims(redis_client) -> tuple[int, set[str]]:
    return int(redis_client.get("available_seats")), redis_client.smembers("reserved_seats")


def run_seat_job(connection, job_id: str):
    """Run job `job_id`'s function as a worker would, and nothing else (no bookkeeping)."""
    job = Job.fetch(job_id, connection=connection)
    with patch.object(seat_app, "get_current_job", return_value=job):
        return seat_app.reserve_seat_job({})


def start_next_job(reservations) -> None:
    """Take the next job as a worker does, and leave it started."""
    connection = reservations.client
    worker = JobWorker([reservations.queue], connection=connection)
    steps = JobSteps(connection, worker.name, worker.key, worker.step_settings())
    steps.step(None, reservations.queue)
    steps.close()


def test_a_job_run_again_takes_no_second_seat(app, redis_client):
    reservations = app.extensions["reservations"]
    assert reservations.reserve()
    start_next_job(reservations)
    connection = reservations.client
    assert run_seat_job(connection, "1") == 49
    assert run_seat_job(connection, "1") == 49
    assert seats_and_claims(redis_client) == (49, {"1"})


def test_a_job_abandoned_after_taking_its_seat_gives_it_back_and_fails(app, redis_client, capsys):
    reservations = app.extensions["reservations"]
    connection = reservations.client
    reservations.reserve()
    reservations.reserve()
    start_next_job(reservations)  # job 1 started by a worker...
    run_seat_job(connection, "1")  # ...that took a seat, then died
    assert seats_and_claims(redis_client) == (49, {"1"})

    reservations.listen()
    StartedJobRegistry("reserve_seat", connection=connection).cleanup(timestamp=2**40)
    assert printed_lines(capsys, 1) == [
        "Seat reservation job 1 failed: Job abandoned: its worker stopped before the job ended"
    ]
    assert seats_and_claims(redis_client) == (50, set())
    reservations.start_processing()  # job 2 takes the seat back
    assert printed_lines(capsys, 1) == ["Seat reservation job 2 completed"]
    assert seats_and_claims(redis_client) == (49, {"2"})


def test_a_job_ended_before_it_ran_takes_no_seat(app, redis_client, capsys):
    reservations = app.extensions["reservations"]
    reservations.reserve()
    start_next_job(reservations)  # job 1 started by a worker that stalls (SIGSTOP)...
    reservations.listen()
    StartedJobRegistry("reserve_seat", connection=reservations.client).cleanup(timestamp=2**40)
    assert printed_lines(capsys, 1) == [
        "Seat reservation job 1 failed: Job abandoned: its worker stopped before the job ended"
    ]
    with pytest.raises(RuntimeError, match="Job ended already: no seat taken"):
        run_seat_job(reservations.client, "1")  # ...and then runs it
    assert seats_and_claims(redis_client) == (50, set())


def test_a_completed_job_keeps_its_seat(app, redis_client, capsys):
    reservations = app.extensions["reservations"]
    reservations.listen()
    reservations.reserve()
    reservations.start_processing()
    assert printed_lines(capsys, 1) == ["Seat reservation job 1 completed"]
    assert not reservations.seats.give_back("1")
    assert seats_and_claims(redis_client) == (49, {"1"})
