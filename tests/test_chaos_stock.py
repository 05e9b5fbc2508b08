"""Course task 12 (9_stock.py) under crashes, for real (issue 9): Redis started the
project's way (its redis.conf, in a folder of the test's own) and killed with SIGKILL,
then started again on the same folder; a worker of `./serve.sh 9_stock` killed with
SIGKILL under load.

What must hold: a reservation answered "confirmed" is never lost, the stock never goes
below 0 nor sells more than there was, every answer is the app's JSON, and the app keeps
serving. The invariants are checked in Redis and in the answers, after waiting for
conditions, never for a while.

One outcome no server can make exact: a request in flight when its Redis or its worker
is killed may have taken a unit whose "confirmed" never came back (the kill fell between
the write and the answer); it was answered 503, or its connection was cut. So the stock
taken is at least the units confirmed, and at most those plus the requests that were in
flight at the kill.
"""

import http.client
import os
import queue
import re
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.redis_server import RedisServer
from harness.waiting import wait_until
from tests.scripts import Script
from tests.served_apps import get, request, start_app, start_served, worker_pids

STOCK = 10  # product 2's initial quantity
CONFIRMED = b'{"status":"Reservation confirmed","itemId":2}'
NO_STOCK = b'{"status":"Not enough stock available","itemId":2}'
UNAVAILABLE = b'{"status":"Redis unavailable"}'
JSON_ANSWERS = {(200, CONFIRMED), (409, NO_STOCK), (503, UNAVAILABLE)}
CUT_OFF = 0  # the status of a request whose connection ended with no answer
SPAWNING = re.compile(r"\[INFO\] Spawning worker-(\d+) with PID: (\d+)")


def detail(current: int) -> bytes:
    return (
        b'{"itemId":2,"itemName":"Suitcase 450","price":100,"initialAvailableQuantity":10,'
        b'"currentQuantity":%d}' % current
    )


@dataclass
class Answer:
    started: float  # time.monotonic() when the request was sent
    status: int  # CUT_OFF if the connection ended without an answer
    body: bytes


class Buyers:
    """Buyers of product 2 in threads (a bounded number), spread over the app's ports.
    Each request is a ticket the test hands out, so that it decides how many buyers go
    and when: all at once (`buy`), or a steady stream (`start_stream`) that goes on while
    the test kills things."""

    def __init__(self, ports: list[int], threads: int = 16) -> None:
        self.answers: list[Answer] = []
        self._tickets: queue.Queue[bool] = queue.Queue()
        self._answered = threading.Condition()
        self._threads = [
            threading.Thread(target=self._buy, args=(ports[n % len(ports)],), daemon=True)
            for n in range(threads)
        ]
        self._streaming = threading.Event()
        self._sent = 0
        for thread in self._threads:
            thread.start()

    def _buy(self, port: int) -> None:
        while self._tickets.get():
            started = time.monotonic()
            try:
                reply = request(port, "/reserve_product/2")
                answer = Answer(started, reply.status, reply.body)
            except (OSError, http.client.HTTPException) as error:  # cut before or mid-answer
                answer = Answer(started, CUT_OFF, repr(error).encode())
            with self._answered:
                self.answers.append(answer)
                self._answered.notify_all()

    def _send(self, count: int) -> None:
        self._sent += count
        for _ in range(count):
            self._tickets.put(True)

    def wait(self) -> list[Answer]:
        """Every answer, once all the buyers sent have one."""
        wait_until(lambda: len(self.answers) >= self._sent, what=f"{self._sent} answers")
        return list(self.answers)

    def buy(self, count: int) -> list[Answer]:
        """`count` buyers at once; their answers."""
        first = self._sent
        self._send(count)
        return self.wait()[first:]

    def start_stream(self, burst: int = 4, every: float = 0.01) -> None:
        """Buyers `burst` at a time, `every` seconds, until `stop_stream`: a load that
        is still coming when Redis or a worker dies, and when it is back."""
        self._streaming.set()

        def stream() -> None:
            while self._streaming.is_set():
                self._send(burst)
                time.sleep(every)  # the pace of the load, not a wait for a result

        self._streamer = threading.Thread(target=stream, daemon=True)
        self._streamer.start()

    def stop_stream(self) -> list[Answer]:
        self._streaming.clear()
        self._streamer.join()
        return self.wait()

    def answered_since(self, moment: float) -> list[Answer]:
        with self._answered:
            return [answer for answer in self.answers if answer.started > moment]

    def wait_for_confirmed(self, count: int, timeout: float = 20) -> None:
        """Return as the `count`th unit is confirmed (at once: the test kills things
        then, with more units left and reservations on their way)."""
        with self._answered:
            assert self._answered.wait_for(lambda: confirmed(self.answers) >= count, timeout), (
                f"not {count} units confirmed within {timeout} s"
            )

    def stop(self) -> None:
        self._streaming.clear()
        for _ in self._threads:
            self._tickets.put(False)
        for thread in self._threads:
            thread.join(timeout=30)


@pytest.fixture
def buyers() -> Iterator[list[Buyers]]:
    """Buyers(ports) of the test's own, stopped even when the test fails."""
    made: list[Buyers] = []
    yield made
    for each in made:
        each.stop()


def confirmed(answers: list[Answer]) -> int:
    return sum(answer.status == 200 for answer in answers)


def stock_left(server: RedisServer) -> int:
    with server.client() as client:
        left = client.get("item.2")
    return STOCK if left is None else int(left)


def assert_taken_adds_up(server: RedisServer, answers: list[Answer], in_flight: int) -> int:
    """The stock in Redis against the answers: every confirmed unit taken, none sold
    twice, at most `in_flight` taken with no "confirmed" back. The units taken."""
    left = stock_left(server)
    taken = STOCK - left
    sold = confirmed(answers)
    assert 0 <= left <= STOCK
    assert sold <= taken <= sold + in_flight, (sold, taken, in_flight, what_happened(server))
    return taken


def what_happened(server: RedisServer) -> str:
    """For a failure: the commands the server ran (a FLUSHALL or DEL would be another
    process's), and the end of its log (what it loaded when it started)."""
    with server.client() as client:
        calls = {name: stats["calls"] for name, stats in client.info("commandstats").items()}
    log = (server.directory / "redis.log").read_text().splitlines()
    return f"commands {calls}; log: " + " | ".join(log[-12:])


# ------------------------------------------------------------------ Redis killed


def test_confirmed_reservations_outlive_a_kill_of_redis(make_redis_server, start_script):
    """Issue 9's first scenario, as a user met it: six confirmed, Redis killed, and the
    six are still taken."""
    server = make_redis_server().start()
    app, port = start_app(start_script, "9_stock.py", server.url)
    assert [get(port, "/reserve_product/2") for _ in range(6)] == [CONFIRMED] * 6

    server.kill()  # SIGKILL: no shutdown, no last snapshot
    server.start()  # on the same folder
    assert stock_left(server) == 4
    assert get(port, "/list_products/2") == detail(4)
    assert app.process.poll() is None
    app.interrupt()
    assert app.wait() == 0
    app.assert_no_traceback()


def start_two_flask_apps(start_script, redis_url: str) -> tuple[list[Script], list[int]]:
    started = [start_app(start_script, "9_stock.py", redis_url) for _ in "ab"]
    return [app for app, _ in started], [port for _, port in started]


def start_serve_sh(start_script, redis_url: str) -> tuple[list[Script], list[int]]:
    app, port = start_served(start_script, "9_stock", redis_url, workers=2)
    return [app], [port]


@pytest.mark.parametrize(
    "start_apps",
    [start_two_flask_apps, start_serve_sh],
    ids=["two python 9_stock.py", "serve.sh, 2 workers"],
)
def test_two_app_processes_under_a_redis_kill_sell_each_unit_once(
    make_redis_server, start_script, buyers, start_apps
):
    server = make_redis_server().start()
    apps, ports = start_apps(start_script, server.url)
    buyers.append(Buyers(ports))
    crowd = buyers[0]
    assert [(a.status, a.body) for a in crowd.buy(3)] == [(200, CONFIRMED)] * 3

    # Redis is killed in the middle of the load, with units still in stock, and started
    # again while the buyers keep coming.
    crowd.start_stream()
    crowd.wait_for_confirmed(6)
    server.kill()
    killed = time.monotonic()
    wait_until(lambda: any(a.status == 503 for a in crowd.answered_since(killed)))
    server.start()  # on the same folder
    restarted = time.monotonic()
    wait_until(lambda: any(a.status == 409 for a in crowd.answered_since(restarted)))
    answers = crowd.stop_stream()

    assert {(a.status, a.body) for a in answers} <= JSON_ANSWERS, answers
    assert {a.status for a in crowd.answered_since(restarted)} <= {200, 409}  # Redis is back
    # Sent once Redis was dead, a reservation took nothing; in flight, it may have.
    in_flight = sum(a.status == 503 and a.started < killed for a in answers)
    assert stock_left(server) == 0
    assert_taken_adds_up(server, answers, in_flight)
    for port in ports:
        assert get(port, "/list_products/2") == detail(0)
    for app in apps:
        assert app.process.poll() is None
    crowd.stop()
    for app in apps:
        app.interrupt()
        assert app.wait() == 0
        app.assert_no_traceback()


# ------------------------------------------------------------------ a worker killed


def test_a_killed_worker_of_serve_sh_is_respawned_and_the_service_answers(
    make_redis_server, start_script, buyers
):
    server = make_redis_server().start()
    app, port = start_served(start_script, "9_stock", server.url, workers=2)
    workers = worker_pids(app)
    assert len(workers) == 2
    victim = workers[0]
    number = worker_numbers(app)[victim]
    buyers.append(Buyers([port]))
    crowd = buyers[0]
    assert [(a.status, a.body) for a in crowd.buy(3)] == [(200, CONFIRMED)] * 3

    crowd.start_stream()
    crowd.wait_for_confirmed(6)
    os.kill(victim, signal.SIGKILL)
    # Reaped by granian: all its threads have ended and its listening socket is closed.
    wait_until(lambda: not Path(f"/proc/{victim}").exists(), what="the worker's end")
    killed = time.monotonic()
    app.read_until_line(f"[INFO] Respawning worker-{number}")
    app.read_until_line(f"[INFO] Started worker-{number}")
    respawned = time.monotonic()
    wait_until(lambda: len(crowd.answered_since(respawned)) >= 20, what="answers after")
    answers = crowd.stop_stream()

    # The other worker answered while granian started a new one in its place.
    assert len(worker_pids(app)) == 2 and victim not in worker_pids(app)
    assert any(killed < a.started < respawned for a in answers)
    # Only requests that were in flight at the kill may have been cut off.
    cut_off = [a for a in answers if a.status == CUT_OFF]
    assert all(a.started < killed for a in cut_off), cut_off
    assert {(a.status, a.body) for a in answers if a.status != CUT_OFF} <= {
        (200, CONFIRMED),
        (409, NO_STOCK),
    }
    assert stock_left(server) == 0
    assert_taken_adds_up(server, answers, len(cut_off))
    assert get(port, "/list_products/2") == detail(0)
    crowd.stop()
    app.terminate()
    assert app.wait() == 0
    app.assert_no_traceback()


def worker_numbers(app: Script) -> dict[int, int]:
    """Each worker's number by its PID, from granian's lines ("Spawning worker-1 with PID:
    123")."""
    spawned = (SPAWNING.fullmatch(line) for line in app.lines)
    return {int(match[2]): int(match[1]) for match in spawned if match}
