"""What a failover costs the stock app, for bench/run.py: `./serve.sh 9_stock` on a
Sentinel REDIS_URL, a few clients reserving one after another with a pause (a steady
load, not a throughput test), the primary killed with SIGKILL, and, once the sentinels
have promoted the replica, the old primary started again (it rejoins as a replica: the
new primary takes writes again only then, `min-replicas-to-write 1`).

Measured from the kill: when the sentinels named the new primary, when the old one was
back as its replica, and when a reservation sent after the kill was first confirmed;
the requests that failed meanwhile, and whether each got a clear JSON 503; and that the
stock taken covers every confirmation (nothing confirmed lost).
"""

import json
import statistics
import time
from collections.abc import Callable

import redis

from bench.processes import Running
from harness.net import accepts_connections, free_port
from harness.paced_clients import PacedClients
from harness.sentinel import ReplicatedRedis
from harness.waiting import wait_until

PRODUCT = "/reserve_product/1"
STOCK_KEY = "item.1"
STOCK = 1_000_000  # never runs out here: every answer is a confirmation or a failure
CONFIRMED = b'{"status":"Reservation confirmed","itemId":1}'
CLIENTS, PAUSE = 4, 0.05  # four clients, 50 ms between a client's answer and its next request
STEADY = 20  # confirmations before the kill, and after the first one that follows it
TIMEOUT = 60  # seconds for any of the steps


def confirmed_since(clients: PacedClients, moment: float) -> list[float]:
    """When the requests sent after `moment` were confirmed."""
    return [done for sent, done, _, body in clients.answers() if sent > moment and ok(body)]


def ok(body: bytes) -> bool:
    return body == CONFIRMED


def clear_refusal(status: int | None, body: bytes) -> bool:
    """A 503 whose body is JSON with a status, as the apps answer when Redis is lost."""
    if status != 503:
        return False
    try:
        return isinstance(json.loads(body).get("status"), str)
    except (ValueError, AttributeError):
        return False


def primary_client(replicated: ReplicatedRedis) -> redis.Redis:
    return replicated.primary().client()


def one_failover(replicated: ReplicatedRedis, serve: Callable, env: dict) -> dict:
    """One kill of the primary under paced load, and what it cost; the set settled again
    (the old primary a replica) when it returns."""
    with primary_client(replicated) as client:
        client.set(STOCK_KEY, STOCK)
    port = free_port()
    with Running(serve("9_stock", port), env):
        wait_until(lambda: accepts_connections(port), 60, "9_stock served")
        clients = PacedClients(port, PRODUCT, CLIENTS, PAUSE)
        try:
            steady = f"{STEADY} reservations confirmed"
            wait_until(lambda: len(confirmed_since(clients, 0)) >= STEADY, TIMEOUT, steady)
            # Timed from the moment the process is gone (kill_primary waits for it): a
            # request sent before may still have been served by it.
            killed = replicated.kill_primary()
            killed_at = time.monotonic()
            replicated.wait_for_failover(killed.port, TIMEOUT)
            promoted_at = time.monotonic()
            replicated.restart(killed, TIMEOUT)  # returns once the sentinels see it a replica
            rejoined_at = time.monotonic()
            wait_until(lambda: len(confirmed_since(clients, killed_at)) >= STEADY, TIMEOUT, steady)
        finally:
            clients.stop()
            answers = clients.answers()
    with primary_client(replicated) as client:
        taken = STOCK - int(client.get(STOCK_KEY))
    confirmed = sum(ok(body) for _, _, _, body in answers)
    first = min(done for sent, done, _, body in answers if sent > killed_at and ok(body))
    failed = [(status, body) for _, _, status, body in answers if not ok(body)]
    unclear = [answer for answer in failed if not clear_refusal(*answer)]
    before = [answer for answer in answers if answer[1] < killed_at]
    return {
        "promoted_s": round(promoted_at - killed_at, 3),
        "first_confirmed_s": round(first - killed_at, 3),
        # When the sentinels saw it a replica; writes are taken again a little earlier.
        "rejoined_s": round(rejoined_at - killed_at, 3),
        "requests": len(answers),
        "failed": len(failed),
        "failed_before_kill": sum(not ok(body) for _, _, _, body in before),
        "unclear": len(unclear),
        "unclear_examples": sorted({f"{status} {body[:80]!r}" for status, body in unclear})[:3],
        "confirmed": confirmed,
        "confirmed_before_kill": sum(ok(body) for _, _, _, body in before),
        "stock_taken": taken,
        "lost": max(0, confirmed - taken),  # confirmed, yet not taken: at least this many
        # Taken and answered 503: a kill between a write and its WAIT (docs/failover.md).
        "taken_unconfirmed": max(0, taken - confirmed),
        "right": taken >= confirmed and not unclear,
    }


def measure(replicated: ReplicatedRedis, serve: Callable, env: dict, runs: int) -> dict:
    """`runs` failovers one after another: the median of each time, every run's figures."""
    print(f"Failover ({CLIENTS} clients, {PAUSE * 1000:.0f} ms apart, GET {PRODUCT}):", flush=True)
    measured = []
    for run in range(runs):
        measured.append(one_failover(replicated, serve, env))
        print(f"  run {run + 1}: {describe(measured[-1])}", flush=True)
    times = ("promoted_s", "first_confirmed_s", "rejoined_s")
    return {
        **{key: statistics.median(run[key] for run in measured) for key in times},
        "failed": statistics.median(run["failed"] for run in measured),
        "unclear": sum(run["unclear"] for run in measured),
        "lost": sum(run["lost"] for run in measured),
        "right": all(run["right"] for run in measured),
        "clients": CLIENTS,
        "pause_s": PAUSE,
        "runs": measured,
    }


def describe(run: dict) -> str:
    clear = "every one a JSON 503" if not run["unclear"] else f"{run['unclear']} NOT a JSON 503"
    lost = "none lost" if not run["lost"] else f"{run['lost']} LOST"
    return (
        f"promoted {run['promoted_s']:.2f} s after the kill, first reservation confirmed "
        f"{run['first_confirmed_s']:.2f} s after it; {run['failed']} of {run['requests']} "
        f"requests failed ({clear}); {run['confirmed']:,} confirmed, stock down "
        f"{run['stock_taken']:,} ({lost})"
    )
