"""The write routes on the plain server and on two Sentinel sets (harness/sentinel.py:
a primary with one replica, and with two as `./install_redis.sh --sentinel` sets it up;
three sentinels each; the confirmed writes wait for a replica, WAIT 1), runs in turns,
so that WAIT's cost shows, and what a second replica adds to it; then the failover on
the two-replica set (bench/failover.py)."""

import os
import tempfile
from contextlib import ExitStack
from pathlib import Path

import redis

from bench import failover
from bench.context import HARNESS, Bench, Target, median, start_on_free_ports
from bench.processes import serve_command, wrk_or_skip
from bench.sections.writes import reserve_product, reserve_seat
from harness.sentinel import ReplicatedRedis, script_down_after_ms

# The Redis each route is served on, in the table's order: the row's name.
TARGETS = {"plain": "redis://", "one": "1 replica", "two": "2 replicas"}


def rows(bench: Bench) -> list[dict]:
    wrk = wrk_or_skip("the Sentinel rows")
    if wrk is None:
        return []
    print(
        f"Sentinel (a primary with 1 and with 2 replicas, three sentinels; "
        f"{bench.options.connections} connections, {bench.options.seconds} s, in turns "
        "with the plain server):"
    )
    # The failover is measured with the down-after of the set a user installs.
    down_after_ms = script_down_after_ms()
    with tempfile.TemporaryDirectory(prefix="bench-sentinel-") as folder, ExitStack() as sets:
        binary = bench.server.binary

        def started(stack: ExitStack, name: str, replicas: int, **options: int) -> ReplicatedRedis:
            replicated = start_on_free_ports(
                lambda attempt: ReplicatedRedis(
                    binary, Path(folder) / f"{name}-{attempt}", replicas, **options
                ).start()
            )
            stack.callback(replicated.stop)
            return replicated

        two = started(sets, "two", 2, down_after_ms=down_after_ms)
        with ExitStack() as one_only:  # stopped before the failover: no load of its own
            one = started(one_only, "one", 1)
            rows = measure(bench, wrk, {"one": one, "two": two})
        env = {**os.environ, "REDIS_URL": two.url}
        runs = bench.options.runs
        bench.failover = failover.measure(two, serve_command, env, runs, down_after_ms)
        return rows


def measure(bench: Bench, wrk: list[str], sets: dict[str, ReplicatedRedis]) -> list[dict]:
    clients = {
        name: redis.Redis(port=replicated.primary().port, client_name=HARNESS)
        for name, replicated in sets.items()
    }
    targets = {"plain": bench.plain} | {
        name: Target(clients[name], {**os.environ, "REDIS_URL": sets[name].url}) for name in sets
    }
    # Named short, to fit the table: the seat runs call /process first, as the write
    # section's do.
    routes = [
        ("GET /reserve_product/1", reserve_product),
        ("GET /reserve_seat", reserve_seat),
    ]
    rows = []
    try:
        for name, route in routes:
            print(f"  {name}...", flush=True)
            runs: dict[str, list[dict]] = {target: [] for target in TARGETS}
            for run in range(bench.options.runs):
                # In turns, each first in its turn once in three runs.
                order = list(TARGETS)[run % 3 :] + list(TARGETS)[: run % 3]
                for target in order:
                    runs[target].append(route(bench, wrk, serve_command, "port", targets[target]))
            figures = {target: median(runs[target]) for target in TARGETS}
            for target, label in TARGETS.items():
                rows.append(row(f"{name} ({label})", figures[target]))
                if target != "plain":
                    rows[-1]["vs_plain"] = versus(figures[target], figures["plain"])
            rows[-1]["vs_one_replica"] = versus(figures["two"], figures["one"])
    finally:
        for client in clients.values():
            client.close()
    return rows


def versus(figures: dict, other: dict) -> dict:
    return {
        "ratio": figures["value"] / other["value"],
        "p50_ms_more": figures["p50_ms"] - other["p50_ms"],
        "p99_ms_more": figures["p99_ms"] - other["p99_ms"],
    }


def row(name: str, figures: dict) -> dict:
    row = {"section": "sentinel", "workload": name, "unit": "req/s", "port": figures}
    return row | {"peer": None, "bullmq": None, "ratios": {}}
