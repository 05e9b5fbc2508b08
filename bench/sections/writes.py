"""The write routes under wrk, this port's and Express's, each run checked: the stock
of /reserve_product/1 (and its edge: more requests at once than units), the seats of
/reserve_seat once its queue has drained. The Sentinel section runs them too."""

import http.client
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import redis

from bench.context import Bench, Target
from bench.processes import Serving, run_wrk, serve_command, wrk_or_skip
from harness.waiting import wait_until

# The stock of product 1 and the seats, set in Redis large enough that none run out
# while wrk loads them (an answer "none left" is a 409 here, which wrk would count as
# an error, and a 200 in the course's JS, which it would not).
STOCK = 100_000_000
SEATS = 100_000_000
# Then the stock check at the edge: this stock, more requests than that at once, every
# answer counted.
EDGE_STOCK, EDGE_REQUESTS, EDGE_CONNECTIONS = 200, 1000, 32


def rows(bench: Bench) -> list[dict]:
    wrk = wrk_or_skip("the write routes")
    if wrk is None:
        return []
    print(f"Write routes ({bench.options.connections} connections, {bench.options.seconds} s):")
    routes = [
        ("GET /reserve_product/1", reserve_product),
        ("GET /reserve_seat (after /process)", reserve_seat),
    ]
    rows = []
    for name, measure in routes:
        served = {"port": lambda m=measure: m(bench, wrk, serve_command, "port")}
        if bench.peer:
            served["peer"] = lambda m=measure: m(bench, wrk, bench.express, "peer")
        rows.append(bench.row("writes", name, "req/s", served))
    return rows


def reserve_product(
    bench: Bench, wrk: list[str], serve: Callable, stack: str, on: Target | None = None
) -> dict:
    """wrk on a stock that cannot run out, every answer a confirmation: the stock must
    go down by at least the confirmations wrk counted (it can go down by up to a
    request a connection more: those still in flight when wrk stopped). Then the edge:
    EDGE_REQUESTS at once for EDGE_STOCK units, every answer counted. On the plain
    server unless `on` another."""
    on = on or bench.plain
    connections = bench.options.connections
    on.redis.flushall()
    with Serving(serve, "9_stock", on.env) as port:
        url = f"http://127.0.0.1:{port}/reserve_product/1"
        on.redis.set("item.1", STOCK)
        run_wrk(wrk, url, 2, connections)  # warm up
        time.sleep(0.5)  # the warm-up's last requests
        before = int(on.redis.get("item.1"))
        figures = run_wrk(wrk, url, bench.options.seconds, connections)
        time.sleep(0.5)
        taken = before - int(on.redis.get("item.1"))
        on.redis.set("item.1", EDGE_STOCK)
        answers = get_many(port, "/reserve_product/1", EDGE_REQUESTS, EDGE_CONNECTIONS)
        edge_confirmed = sum(b'"Reservation confirmed"' in body for _, body in answers)
        edge_left = int(on.redis.get("item.1"))
    confirmed = int(figures["requests"])
    check = {
        "confirmed": confirmed,
        "stock_taken": taken,
        "oversold": max(0, confirmed - taken),  # at least this many
        "edge_stock": EDGE_STOCK,
        "edge_confirmed": edge_confirmed,
        "edge_stock_left": edge_left,
        "edge_oversold": max(0, edge_confirmed - (EDGE_STOCK - edge_left)),
    }
    # Every confirmation took a unit, and the edge's stock was sold to the last one.
    check["right"] = not check["oversold"] and not check["edge_oversold"] and edge_left == 0
    return {**figures, "check": check}


def reserve_seat(
    bench: Bench, wrk: list[str], serve: Callable, stack: str, on: Target | None = None
) -> dict:
    """wrk on seats that cannot run out, the app's queue worked since /process; once
    the queue has drained, the seats taken must be the jobs completed. On the plain
    server unless `on` another."""
    on = on or bench.plain
    connections, seconds = bench.options.connections, bench.options.seconds
    count = SEAT_JOBS[stack]
    on.redis.flushall()
    with Serving(serve, "100_seat", on.env) as port:
        launched = lambda: on.redis.get("available_seats") is not None  # noqa: E731
        wait_until(launched, 30, "100_seat's seats set")
        on.redis.set("available_seats", SEATS)
        get_many(port, "/process", 1, 1)
        url = f"http://127.0.0.1:{port}/reserve_seat"
        run_wrk(wrk, url, 2, connections)  # warm up
        before = seat_jobs(count, on.redis)
        figures = run_wrk(wrk, url, seconds, connections)
        ended = time.monotonic()
        figures["backlog"] = seat_jobs(count, on.redis)["queued"]
        wait_until(lambda: seat_jobs(count, on.redis)["drained"], 600, "the seat queue drained")
        # An answer says "in process": the reservations made per second are the jobs
        # worked from wrk's start until the queue drained, over that time.
        drain = time.monotonic() - ended
        jobs = seat_jobs(count, on.redis)
        worked = jobs["completed"] + jobs["failed"] - before["completed"] - before["failed"]
        figures["worked_per_s"] = worked / (seconds + drain)
        taken = SEATS - int(on.redis.get("available_seats"))
    check = {
        "jobs": jobs["created"],
        "completed": jobs["completed"],
        "failed": jobs["failed"],
        "seats_taken": taken,
        "oversold": max(0, jobs["completed"] - taken),
    }
    # Every job completed and took a seat; this port also records which job holds one.
    check["right"] = taken == jobs["completed"] == jobs["created"]
    if stack == "port":
        check["claims"] = on.redis.scard("reserved_seats")
        check["right"] &= check["claims"] == taken
    return {**figures, "check": check}


def seat_jobs(count: Callable[[redis.Redis], tuple[int, int, int]], client: redis.Redis) -> dict:
    created, completed, failed = count(client)
    return {
        "created": created,
        "completed": completed,
        "failed": failed,
        "queued": created - completed - failed,
        "drained": completed + failed == created,
    }


def _count(created: str, completed: str, failed: str) -> Callable[[redis.Redis], tuple]:
    """A stack's seat jobs: created (its id counter), completed, failed."""

    def count(client: redis.Redis) -> tuple[int, int, int]:
        with client.pipeline(transaction=False) as pipe:
            pipe.get(created).zcard(completed).zcard(failed)
            ids, done, failures = pipe.execute()
        return int(ids or 0), done, failures

    return count


# Where each stack keeps its seat jobs: job_queue's id counter and RQ's registries;
# Kue's id counter and its sets of jobs by state.
SEAT_JOBS = {
    "port": _count("job_queue:ids", "rq:finished:reserve_seat", "rq:failed:reserve_seat"),
    "peer": _count("q:ids", "q:jobs:reserve_seat:complete", "q:jobs:reserve_seat:failed"),
}


def get_many(port: int, path: str, count: int, connections: int) -> list[tuple[int, bytes]]:
    """`count` GETs on `connections` connections at once: each answer's status and body."""

    def one_connection(requests: int) -> list[tuple[int, bytes]]:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        answers = []
        try:
            for _ in range(requests):
                connection.request("GET", path)
                response = connection.getresponse()
                answers.append((response.status, response.read()))
        finally:
            connection.close()
        return answers

    shares = [count // connections + (n < count % connections) for n in range(connections)]
    with ThreadPoolExecutor(connections) as pool:
        return [answer for answers in pool.map(one_connection, shares) for answer in answers]
