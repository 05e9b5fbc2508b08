"""Where the time goes, per job and per request: the figures behind README's
Performance section.

    .venv/bin/python bench/profile.py

Jobs: one worker in this process works a burst of trivial jobs, once as RQ's own
SimpleWorker and once as job_queue's JobWorker; for each, per job: the round trips to
Redis, the commands Redis ran, Redis's own time and this process's CPU time. The same
for queueing a job, with RQ's enqueue and with JobCreator.create.

HTTP: the CPU time of one request to GET /list_products/1, through Flask and as a bare
WSGI function doing the same work, and of the GET inside it, through redis-py's client
and on a pooled connection.
"""

import importlib
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import redis
from rq import Queue, SimpleWorker
from werkzeug.test import EnvironBuilder

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.jobs import JOB_FUNCTION, job_data
from harness.redis_server import RedisServer, find_redis_server
from queuing.job_queue import ON_FAILURE, ON_SUCCESS, JobCreator, JobWorker
from queuing.web_app import redis_get

JOBS = 3000
REQUESTS = 5000


class RoundTrips:
    """Counts what redis-py sends: one send is one round trip (a pipeline's included)."""

    count = 0

    def __init__(self) -> None:
        original = redis.connection.AbstractConnection.send_packed_command

        def counted(connection, command, check_health=True):
            RoundTrips.count += 1
            return original(connection, command, check_health)

        redis.connection.AbstractConnection.send_packed_command = counted


def redis_cpu(client: redis.Redis) -> float:
    """The CPU seconds the Redis server has used so far."""
    cpu = client.info("cpu")
    return cpu["used_cpu_user"] + cpu["used_cpu_sys"]


def per_item(client: redis.Redis, count: int, action: Callable[[], None]) -> dict:
    """What one of `count` items of `action` costs: round trips, the commands Redis ran
    (those of scripts included), Redis's CPU time and this process's."""
    client.config_resetstat()
    round_trips, server = RoundTrips.count, redis_cpu(client)
    cpu, wall = time.process_time(), time.perf_counter()
    action()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    server = redis_cpu(client) - server
    stats = client.info("commandstats")
    commands = sum(s["calls"] for name, s in stats.items() if "eval" not in name)
    return {
        "per second": round(count / wall),
        "round trips": round((RoundTrips.count - round_trips) / count, 1),
        "Redis commands": round(commands / count, 1),
        "Redis CPU µs": round(server / count * 1e6),
        "CPU µs": round(cpu / count * 1e6),
    }


def job_figures(client: redis.Redis) -> dict:
    queue = Queue("profile", connection=client)
    creator = JobCreator(queue)
    figures = {}

    def rq_enqueue() -> None:
        for n in range(JOBS):
            queue.enqueue(JOB_FUNCTION, job_data(n), on_success=ON_SUCCESS, on_failure=ON_FAILURE)

    def ours_enqueue() -> None:
        for n in range(JOBS):
            creator.create(JOB_FUNCTION, job_data(n))

    for name, enqueue, worker_class in [
        ("RQ (enqueue, SimpleWorker)", rq_enqueue, SimpleWorker),
        ("job_queue (JobCreator, JobWorker)", ours_enqueue, JobWorker),
    ]:
        client.flushall()
        figures[f"queue a job: {name}"] = per_item(client, JOBS, enqueue)
        worker = worker_class([queue], connection=client)
        work = lambda w=worker: w.work(burst=True, logging_level="WARNING")  # noqa: E731
        figures[f"work a job: {name}"] = per_item(client, JOBS, work)
    return figures


def request_figures(client: redis.Redis) -> dict:
    stock = importlib.import_module("9_stock")
    app = stock.create_app(redis.Redis(port=client.connection_pool.connection_kwargs["port"]))
    environ = EnvironBuilder(path="/list_products/1").get_environ()

    def start_response(status: str, headers: list, exc_info: object = None) -> None:
        pass

    def bare_wsgi(environ: dict, start_response: Callable) -> list[bytes]:
        item = stock.get_item_by_id(1)
        stored = redis_get(client, "item.1")
        body = {**item, "currentQuantity": 4 if stored is None else int(stored)}
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(body, separators=(",", ":")).encode()]

    def cpu_us(action: Callable[[], object]) -> float:
        for _ in range(500):
            action()
        start = time.process_time()
        for _ in range(REQUESTS):
            action()
        return round((time.process_time() - start) / REQUESTS * 1e6, 1)

    return {
        "GET /list_products/1 through Flask": cpu_us(
            lambda: b"".join(app(dict(environ), start_response))
        ),
        "the same work, a bare WSGI function": cpu_us(
            lambda: b"".join(bare_wsgi(dict(environ), start_response))
        ),
        "its Redis GET, redis-py's client": cpu_us(lambda: client.get("item.1")),
        "its Redis GET, a pooled connection": cpu_us(lambda: redis_get(client, "item.1")),
    }


def main() -> None:
    RoundTrips()
    with tempfile.TemporaryDirectory() as folder:
        server = RedisServer(find_redis_server(), Path(folder)).start()
        try:
            client = redis.Redis(port=server.port)
            jobs = job_figures(client)
            client.flushall()
            requests = request_figures(client)
        finally:
            server.stop()
    columns = ["per second", "round trips", "Redis commands", "Redis CPU µs", "CPU µs"]
    print(f"{'per job':44s}" + "".join(f"{c:>15s}" for c in columns))
    for name, row in jobs.items():
        print(f"{name:44s}" + "".join(f"{row[c]:>15}" for c in columns))
    print(f"\n{'per request (one thread, CPU µs)':44s}")
    for name, value in requests.items():
        print(f"{name:44s}{value:>15}")


if __name__ == "__main__":
    main()
