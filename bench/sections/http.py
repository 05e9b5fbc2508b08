"""The HTTP rows: the apps' read routes under wrk, this port's and Express's; with
--compare-servers, WSGI servers side by side first."""

from collections.abc import Callable

from bench.context import Bench, median
from bench.processes import SERVERS, Serving, run_wrk, serve_command, wrk_or_skip

ROUTES = [("9_stock", "/list_products/1"), ("100_seat", "/available_seats")]


def rows(bench: Bench) -> list[dict]:
    wrk = wrk_or_skip("the HTTP rows")
    if wrk is None:
        return []
    print(f"HTTP ({bench.options.connections} connections, {bench.options.seconds} s a run):")
    if bench.options.compare_servers:
        compare_servers(bench, wrk)
    rows = []
    for module, path in ROUTES:
        served = {"port": lambda m=module, p=path: load(bench, wrk, serve_command, m, p)}
        if bench.peer:
            served["peer"] = lambda m=module, p=path: load(bench, wrk, bench.express, m, p)
        rows.append(bench.row("http", f"GET {path}", "req/s", served))
    return rows


def load(bench: Bench, wrk: list[str], serve: Callable, module: str, path: str) -> dict:
    bench.redis.flushall()
    with Serving(serve, module, bench.env) as port:
        url = f"http://127.0.0.1:{port}{path}"
        run_wrk(wrk, url, 2, bench.options.connections)  # warm up
        return run_wrk(wrk, url, bench.options.seconds, bench.options.connections)


def compare_servers(bench: Bench, wrk: list[str]) -> None:
    print("  WSGI servers, GET /list_products/1 of 9_stock (runs in turns):")
    runs: dict[str, list[dict]] = {name: [] for name in SERVERS}
    for _ in range(bench.options.runs):
        for name, server in SERVERS.items():
            runs[name].append(load(bench, wrk, server, "9_stock", "/list_products/1"))
    for name in SERVERS:
        figures = bench.servers[name] = median(runs[name])
        print(f"    {name:40s} {figures['value']:7.0f} req/s, p99 {figures['p99_ms']:5.1f} ms")
