"""bench/run.py's report: the figures as results.json holds them (merged into an earlier
run's with --update), and the table printed."""

import argparse
import json
import os
import platform
import shutil
import subprocess
import textwrap
from collections import Counter
from datetime import datetime
from pathlib import Path

from bench import failover, python_peers
from bench.context import PYTHON_STACKS, Bench
from bench.sections.writes import EDGE_REQUESTS, EDGE_STOCK

ROW_LISTS = ("rows", "write_rows", "memory_rows", "sentinel_rows")


def report(options: argparse.Namespace, bench: Bench, rows: list[dict], seconds: int) -> dict:
    """The figures of a run, as results.json holds them."""
    return {
        "machine": machine(),
        "date": datetime.now().isoformat(timespec="seconds"),
        "settings": {key: value for key, value in vars(options).items() if key != "out"},
        "peers": bench.peer.versions if bench.peer else None,
        "python_peers": python_peers.versions(bench.python_peers),
        "redis": bench.redis_settings,
        "seconds": seconds,
        # The job workloads, Kue's job options, the HTTP reads and the Redis floor:
        # throughput, more is better (but the delayed jobs' lateness, in ms).
        "rows": [row for row in rows if row["section"] in ("jobs", "job_options", "http", "redis")],
        # The write routes: throughput, and what each run's check found.
        "write_rows": [row for row in rows if row["section"] == "writes"],
        # Redis memory per finished job: less is better.
        "memory_rows": [row for row in rows if row["section"] == "memory"],
        # The write routes on a plain REDIS_URL and on a Sentinel one, in turns.
        "sentinel_rows": [row for row in rows if row["section"] == "sentinel"],
        # kill -9 and SIGSTOP of the Sentinel set's primary under a paced load.
        "failover": bench.failover,
        "servers": bench.servers,
    }


def save(report: dict, out: Path, update: list[str] | None, order: list[str]) -> None:
    """Write `report` into `out`; with `update` (the sections run), into the figures
    already there, in their place. `order`: every section, in the table's order."""
    if update and out.exists():
        report = updated(json.loads(out.read_text()), report, update, order)
    out.write_text(json.dumps(report, indent=2) + "\n")


def updated(old: dict, report: dict, sections: list[str], order: list[str]) -> dict:
    """The figures of an earlier run (`old`) with those of the sections just run in their
    place; the earlier run's date and settings kept, this run's noted under "updates"."""
    merged = dict(old)
    for key in ROW_LISTS:
        kept = [row for row in old.get(key, []) if row["section"] not in sections]
        rows = kept + report[key]
        merged[key] = sorted(rows, key=lambda row: order.index(row["section"]))
    if "sentinel" in sections:
        merged["failover"] = report["failover"]
    if "jobs" in sections:  # the only rows the Python peers take part in
        merged["python_peers"] = report["python_peers"]
    if report["servers"]:
        merged["servers"] = report["servers"]
    update = {key: report[key] for key in ("date", "settings", "seconds", "machine")}
    merged["updates"] = [*old.get("updates", []), {"sections": sections, **update}]
    return merged


def machine() -> dict:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if "model name" in line), "")
    node = (
        shutil.which("node")
        and subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    )
    return {
        "cpu": cpu or platform.processor(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "node": node or None,
    }


def print_table(report: dict, rows: list[dict]) -> None:
    m, peers, r = report["machine"], report["peers"], report["redis"]
    print(f"\n{m['cores']} cores ({m['cpu']}), Python {m['python']}, node {m['node']}")
    print(f"Redis {r['version']} (stream-node-max-bytes {r['stream-node-max-bytes']},", end=" ")
    print(f"hash-max-listpack-value {r['hash-max-listpack-value']}: the project's redis.conf)")
    if peers:
        print(
            f"JS original: Kue {peers['kue']} for jobs, Express {peers['express']} for HTTP; "
            f"BullMQ {peers['bullmq']} (its events stream kept to 100,000 entries for the "
            "end-to-end listener, so that it loses none; at its default 10,000 in the memory row)"
        )
    print(f"{'workload':40s} {'this port':>12s} {'JS original':>12s} {'ratio':>7s}", end="")
    print(f" {'BullMQ':>10s} {'ratio':>7s}")
    print(f"{'':40s} {'':>12s} {'Kue/Express':>12s} {'port/JS':>7s} {'':>10s} {'port/BQ':>7s}")
    for row in rows:
        port, peer, bullmq = row["port"], row["peer"], row["bullmq"]
        print(f"{row['workload']:40s} {port['value']:>12,.0f}", end="")
        print(f" {figure(peer):>12s} {ratio(row, 'peer'):>7s}", end="")
        print(f" {figure(bullmq):>10s} {ratio(row, 'bullmq'):>7s}  {row['unit']}")
        if "p99_ms" in port:
            ours = f"{port['p50_ms']:.1f} / {port['p99_ms']:.1f}"
            theirs = f"{peer['p50_ms']:.1f} / {peer['p99_ms']:.1f}" if peer else "-"
            print(f"{'  p50 / p99 latency, ms':40s} {ours:>12s} {theirs:>12s}")
        if "worked_per_s" in port:
            theirs = f"{peer['worked_per_s']:,.0f}" if peer else "-"
            print(f"{'  jobs worked/s, until the queue drained':40s}", end="")
            print(f" {port['worked_per_s']:>12,.0f} {theirs:>12s}", end="")
            print(f" {port['worked_per_s'] / peer['worked_per_s']:>6.2f}x" if peer else "")
            theirs = f"{peer['backlog']:,}" if peer else "-"
            print(f"{'  jobs still queued as wrk ended':40s} {port['backlog']:>12,} {theirs:>12s}")
        if row["section"] == "memory":
            print("  less is better; used_memory from an empty server to the queue drained")
        if "median_late_ms" in port:
            print_lateness(row)
        if "method" in row:
            print(textwrap.fill(row["method"], 100, initial_indent="  ", subsequent_indent="  "))
        if "vs_plain" in row:
            cost = row["vs_plain"]
            print(f"  WAIT's cost: {cost['ratio']:.2f}x the req/s of redis://", end="")
            print(f", p50 {cost['p50_ms_more']:+.1f} ms, p99 {cost['p99_ms_more']:+.1f} ms")
        if "vs_one_replica" in row:
            cost = row["vs_one_replica"]
            print(f"  the second replica: {cost['ratio']:.2f}x the req/s of one", end="")
            print(f", p50 {cost['p50_ms_more']:+.1f} ms, p99 {cost['p99_ms_more']:+.1f} ms")
        for stack in ("port", "peer"):
            if row[stack] and "checks" in row[stack]:
                print(f"  {'this port' if stack == 'port' else 'JS original'}: ", end="")
                print(describe_checks(row["workload"], row[stack]["checks"]))


def print_python_peers(report: dict, rows: list[dict]) -> None:
    """The rows the Python peers took part in, beside this port, and how each ran them."""
    rows = [row for row in rows if any(stack in row for stack in PYTHON_STACKS)]
    stacks = [stack for stack in PYTHON_STACKS if stack in report["python_peers"]]
    if not rows or not stacks:
        return
    names = {stack: python_peers.NAMES[stack] for stack in stacks}
    print("\nThe Python peers (port/x: this port's figure over the fastest Python peer's;")
    print("for RSS, less is better)")
    print(f"{'workload':40s} {'this port':>10s}", end="")
    print("".join(f" {names[stack][:10]:>10s}" for stack in stacks), f"{'port/x':>7s}")
    for row in rows:
        print(f"{row['workload']:40s} {row['port']['value']:>10,.0f}", end="")
        print("".join(f" {figure(row.get(stack)):>10s}" for stack in stacks), end="")
        values = [row[stack]["value"] for stack in stacks if row.get(stack)]
        best = min(values) if row["unit"] == "MB" else max(values)
        print(f" {row['port']['value'] / best:>6.2f}x  {row['unit']}")
    for stack in stacks:
        peer = report["python_peers"][stack]
        print(f"  {names[stack]} {peer['version']}: {peer['how']}")


def print_lateness(row: dict) -> None:
    """The delayed jobs' row's other figures: the median job's and the first's lateness."""
    ours, theirs = (lateness(row[stack]) for stack in ("port", "bullmq"))
    print(f"{'  median / first job late by, ms':40s} {ours:>12s} {'-':>12s} {'':>7s} {theirs:>10s}")


def lateness(figures: dict | None) -> str:
    return f"{figures['median_late_ms']:,.0f} / {figures['first_late_ms']:,.0f}" if figures else "-"


def print_failover(measured: dict) -> None:
    kills = measured["kill"]["runs"]
    print(
        f"\nFailover with no one acting: {measured['replicas']} replicas, down-after "
        f"{measured['down_after_ms']:,} ms (redis-setup/sentinel.sh's), {measured['clients']} "
        f"paced clients (GET {failover.PRODUCT} on ./serve.sh 9_stock); median of "
        f"{len(kills)} runs of each, every run in brackets"
    )
    print("kill -9 of the primary, not restarted until these were taken:")
    print_event(measured["kill"], "the kill")
    restarts = ", ".join(f"{run['restarted_to_settled_s']:.1f}" for run in kills)
    print(f"  then restarted: a replica again, in sync, in {restarts} s")
    print(
        f"SIGSTOP of the primary, SIGCONT once {failover.STEADY} reservations were confirmed "
        f"again (at most down-after + {measured['freeze_extra_s']} s):"
    )
    freeze = measured["freeze"]
    print_event(freeze, "the freeze")
    print(f"  {'frozen for':32s} {times(freeze, 'frozen_s')}")
    roles = ", ".join(str(run["old_primary_role"]) for run in freeze["runs"])
    print(f"  {'old primary a replica':32s} {times(freeze, 'demoted_after_thaw_s')} after SIGCONT")
    print(f"  {'old primary, ROLE at the end':32s} {roles}")


def print_event(measured: dict, event: str) -> None:
    """The lines a kill and a freeze share."""
    runs = measured["runs"]
    promoted = times(measured, "promoted_s")
    print(f"  {'all sentinels name a new primary':32s} {promoted} after {event} (polled)")
    first = times(measured, "first_confirmed_s")
    print(f"  {'first reservation confirmed':32s} {first} after {event} (goal: within 10 s)")
    meanwhile = ", ".join(str(run["failed_meanwhile"]) for run in runs)
    print(f"  {'requests failed meanwhile':32s} {meanwhile}")
    after = ", ".join(str(run["failed_after"]) for run in runs)
    print(f"  {'failed, sent after recovery':32s} {after}")
    failed = ", ".join(f"{run['failed']} of {run['requests']}" for run in runs)
    unclear = measured["unclear"]
    clear = "every one a JSON 503" if not unclear else f"{unclear} NOT a JSON 503"
    print(f"  {'requests failed in all':32s} {failed} ({clear})")
    answers = Counter()
    for run in runs:
        answers.update(run["failed_answers"])
    for answer, count in answers.most_common(3):
        print(f"    {count:6,} x {answer}")
    for example in sorted({text for run in runs for text in run["unclear_examples"]})[:3]:
        print(f"    not a JSON 503: {example}")
    confirmed = ", ".join(f"{run['confirmed']:,}" for run in runs)
    taken = ", ".join(f"{run['stock_taken']:,}" for run in runs)
    # More confirmed than taken: a confirmation lost, or a unit given back where it was
    # not taken (docs/performance.md, Sentinel): either way the stock is wrong.
    lost = (
        "nothing confirmed lost"
        if not measured["lost"]
        else f"{measured['lost']} MORE CONFIRMED THAN TAKEN (lost, or given back elsewhere)"
    )
    print(f"  {'confirmed / stock taken':32s} {confirmed} / {taken}: {lost}")
    if not measured["right"]:
        print("  WRONG: a run lost a confirmation, answered unclearly or never recovered")


def times(measured: dict, key: str) -> str:
    """The median and each run's figure, in seconds; NEVER for a run that did not get
    there."""
    each = ", ".join("NEVER" if run[key] is None else f"{run[key]:.2f}" for run in measured["runs"])
    median = measured[key]
    return f"{'NEVER' if median is None else f'{median:.2f} s'} ({each})"


def figure(figures: dict | None) -> str:
    return f"{figures['value']:,.0f}" if figures else "-"


def ratio(row: dict, stack: str) -> str:
    return f"{row['ratios'][stack]:.2f}x" if stack in row["ratios"] else "-"


def describe_checks(workload: str, checks: list[dict]) -> str:
    """What the write runs' checks found, in one line."""
    oversold = [check for check in checks if check["oversold"] or check.get("edge_oversold")]
    runs = f"oversold in {len(oversold)} of {len(checks)} runs" if oversold else "never oversold"
    wrong = [check for check in checks if not check["right"] and check not in oversold]
    if wrong:  # not oversold, yet not right either: units or jobs unaccounted for
        runs = f"WRONG in {len(wrong)} of {len(checks)} runs, {runs}"
    if "stock_taken" in checks[0]:
        confirmed = sum(check["confirmed"] for check in checks)
        taken = sum(check["stock_taken"] for check in checks)
        edge = ", ".join(str(check["edge_confirmed"]) for check in checks)
        return (
            f"{runs}: {confirmed:,} confirmed, stock down {taken:,}; "
            f"{EDGE_REQUESTS} at once for a stock of {EDGE_STOCK}: {edge} confirmed"
        )
    completed = sum(check["completed"] for check in checks)
    taken = sum(check["seats_taken"] for check in checks)
    failed = sum(check["failed"] for check in checks)
    return f"{runs}: {completed:,} jobs completed ({failed} failed), {taken:,} seats taken"
