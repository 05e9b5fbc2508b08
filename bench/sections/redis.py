"""The floor: Redis itself, GETs from redis-benchmark, without and with pipelining."""

import subprocess
from pathlib import Path

from bench.context import Bench
from harness.redis_server import find_redis_server


def rows(bench: Bench) -> list[dict]:
    benchmark = Path(find_redis_server()).with_name("redis-benchmark")
    if not benchmark.exists():
        print("No redis-benchmark beside redis-server: the Redis floor is skipped.")
        return []
    print("The floor, Redis itself (redis-benchmark):")
    command = [str(benchmark), "-p", str(bench.server.port), "-t", "get", "-n", "200000", "-q"]

    def floor(pipelined: int) -> dict:
        out = subprocess.run([*command, "-P", str(pipelined)], capture_output=True, text=True)
        return {"value": float(out.stdout.split("GET: ")[-1].split()[0])}

    return [
        bench.row("redis", "Redis GET, no pipelining", "ops/s", {"port": lambda: floor(1)}),
        bench.row("redis", "Redis GET, 16 pipelined", "ops/s", {"port": lambda: floor(16)}),
    ]
