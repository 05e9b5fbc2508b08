"""The write routes on the plain server and on a Sentinel set (a primary, a replica,
three sentinels: harness/sentinel.py; its confirmed writes wait for the replica, WAIT
1), runs in turns, so that WAIT's cost shows; then the failover (bench/failover.py)."""

import os
import tempfile
from pathlib import Path

import redis

from bench import failover
from bench.context import HARNESS, Bench, Target, median, start_on_free_ports
from bench.processes import serve_command, wrk_or_skip
from bench.sections.writes import reserve_product, reserve_seat
from harness.sentinel import ReplicatedRedis


def rows(bench: Bench) -> list[dict]:
    wrk = wrk_or_skip("the Sentinel rows")
    if wrk is None:
        return []
    print(
        f"Sentinel (a primary, a replica, three sentinels; {bench.options.connections} "
        f"connections, {bench.options.seconds} s, in turns with the plain server):"
    )
    with tempfile.TemporaryDirectory(prefix="bench-sentinel-") as folder:
        binary = bench.server.binary
        replicated = start_on_free_ports(
            lambda attempt: ReplicatedRedis(binary, Path(folder) / f"set-{attempt}").start()
        )
        try:
            return measure(bench, wrk, replicated)
        finally:
            replicated.stop()


def measure(bench: Bench, wrk: list[str], replicated: ReplicatedRedis) -> list[dict]:
    primary = redis.Redis(port=replicated.primary().port, client_name=HARNESS)
    sentinel = Target(primary, {**os.environ, "REDIS_URL": replicated.url})
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
            runs: dict[str, list[dict]] = {"plain": [], "sentinel": []}
            for _ in range(bench.options.runs):
                runs["plain"].append(route(bench, wrk, serve_command, "port"))
                runs["sentinel"].append(route(bench, wrk, serve_command, "port", sentinel))
            plain, on_sentinel = median(runs["plain"]), median(runs["sentinel"])
            rows.append(row(f"{name} (redis://)", plain))
            rows.append(row(f"{name} (Sentinel, WAIT)", on_sentinel))
            rows[-1]["vs_plain"] = {
                "ratio": on_sentinel["value"] / plain["value"],
                "p50_ms_more": on_sentinel["p50_ms"] - plain["p50_ms"],
                "p99_ms_more": on_sentinel["p99_ms"] - plain["p99_ms"],
            }
    finally:
        primary.close()
    bench.failover = failover.measure(replicated, serve_command, sentinel.env, bench.options.runs)
    return rows


def row(name: str, figures: dict) -> dict:
    row = {"section": "sentinel", "workload": name, "unit": "req/s", "port": figures}
    return row | {"peer": None, "bullmq": None, "ratios": {}}
