"""bench/run.py works: a small run gives every figure, side by side with the JS peer
where node is installed. (The benchmark itself is not a test: see README.)"""

import argparse
import json
import re
import shutil
import subprocess
import sys

import pytest
import redis

from bench.context import PYTHON_STACKS, Bench
from bench.cpu_per_job import Costs, measure
from bench.processes import Running
from bench.stacks import PythonSide
from harness.redis_server import PROJECT, RedisServer
from harness.sentinel import script_down_after_ms
from queuing.job_queue import IDS_KEY

# npm, wrk, a small run of the benchmark: minutes, above the suite-wide 300 s timeout.
pytestmark = [pytest.mark.bench, pytest.mark.timeout(600)]
RUN_TIMEOUT_SECONDS = 540  # under the test's own, so that this one says what hung

WORKLOADS = [
    "enqueue, one after another",
    "enqueue, at once (as 7_job_creator)",
    "processing, 1 at a time",
    "processing, 2 at a time",
    "end to end, 2 at a time",
    "waiting jobs (20 ms each), 50 at a time",
    "worker side's RSS, 50 at a time",
    "waiting jobs (20 ms each), 200 at a time",
    "worker side's RSS, 200 at a time",
    "delayed 1 s, 2 at a time: last late by",
    "retried once, end to end, 2 at a time",
    "GET /list_products/1",
    "GET /available_seats",
    "Redis GET, no pipelining",
    "Redis GET, 16 pipelined",
]
# The rows of queued jobs worked, where the Python peers take part.
PYTHON_PEER_WORKLOADS = [
    "processing, 1 at a time",
    "processing, 2 at a time",
    "waiting jobs (20 ms each), 50 at a time",
    "worker side's RSS, 50 at a time",
    "waiting jobs (20 ms each), 200 at a time",
    "worker side's RSS, 200 at a time",
]
SENTINEL_WORKLOADS = [
    f"{route} ({target})"
    for route in ("GET /reserve_product/1", "GET /reserve_seat")
    for target in ("redis://", "1 replica", "2 replicas")
]


def test_a_small_run_gives_every_figure(tmp_path, redis_binary):
    out = tmp_path / "figures.json"
    command = [sys.executable, "bench/run.py", "--jobs", "100", "--runs", "1", "--seconds", "1"]
    result = subprocess.run(
        [*command, "--out", str(out)],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_SECONDS,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(out.read_text())
    assert [row["workload"] for row in report["rows"]] == WORKLOADS
    assert all(row["port"]["value"] > 0 for row in report["rows"])
    # Kue and Express beside the job rows and the HTTP reads; BullMQ beside the job rows
    # and those of Kue's job options (Kue not measured there).
    with_peer = [row for row in report["rows"] if row["section"] in ("jobs", "http")]
    with_bullmq = [row for row in report["rows"] if row["section"] in ("jobs", "job_options")]
    if shutil.which("node"):
        assert all(row["peer"]["value"] > 0 for row in with_peer)
        assert all(row["bullmq"]["value"] > 0 for row in with_bullmq)
    else:
        assert "node is not installed here" in result.stdout
    assert "this port  JS original   ratio" in result.stdout
    # The Python peers, each in a virtualenv of its own, in the rows of queued jobs.
    assert list(report["python_peers"]) == list(PYTHON_STACKS)
    with_python_peers = [row for row in report["rows"] if any(s in row for s in PYTHON_STACKS)]
    assert [row["workload"] for row in with_python_peers] == PYTHON_PEER_WORKLOADS
    assert all(row[stack]["value"] > 0 for row in with_python_peers for stack in PYTHON_STACKS)
    assert "The Python peers (port/x" in result.stdout
    # The delayed jobs' row: how late the last, the median and the first job started, and
    # how both rows of Kue's job options are measured.
    (delayed,) = (row["port"] for row in report["rows"] if row["workload"].startswith("delayed"))
    assert delayed["value"] >= delayed["median_late_ms"] >= delayed["first_late_ms"]
    assert "median / first job late by, ms" in result.stdout
    assert all(row["method"] for row in report["rows"] if row["section"] == "job_options")
    assert report["machine"]["cores"] > 0
    # Sentinel: the write routes on the three URLs, checked as they ran; one kill and one
    # freeze of the primary of the two-replica set, no one acting: writes confirmed again
    # after each, every failed request a JSON 503, nothing confirmed lost.
    assert [row["workload"] for row in report["sentinel_rows"]] == SENTINEL_WORKLOADS
    assert all(check["right"] for row in report["sentinel_rows"] for check in row["port"]["checks"])
    failover = report["failover"]
    assert failover["replicas"] == 2
    assert failover["down_after_ms"] == script_down_after_ms()
    # (A request may fail before the event too, a 503 like the others, on a machine busy
    # enough that the replica's WAIT takes over a second: a timing, not checked.)
    kill, freeze = failover["kill"], failover["freeze"]
    assert [run["right"] for run in kill["runs"]] == [True], kill
    assert kill["unclear"] == kill["lost"] == 0
    for event in (kill, freeze):
        assert event["first_confirmed_s"] is not None, event
    assert freeze["unclear"] == 0, freeze
    assert freeze["runs"][0]["old_primary_role"] == "slave", freeze
    assert freeze["lost"] == 0, freeze  # the give-back goes on the take's own connection
    assert "first reservation confirmed" in result.stdout


@pytest.mark.skipif(not shutil.which("node"), reason="compares with BullMQ, which needs node")
def test_cpu_per_job_gives_a_row_per_workload_and_stack(redis_binary):
    command = [sys.executable, "bench/cpu_per_job.py", "--jobs", "50", "--runs", "1"]
    result = subprocess.run(
        command, cwd=PROJECT, capture_output=True, text=True, timeout=RUN_TIMEOUT_SECONDS
    )
    assert result.returncode == 0, result.stdout + result.stderr
    rows = [line.split() for line in result.stdout.splitlines()[-6:]]
    assert [row[:2] for row in rows] == [
        [workload, stack]
        for workload in ("enqueue_serial", "processor_1", "processor_2")
        for stack in ("port", "bullmq")
    ]
    # jobs/s, then per job: CPU of Redis and of the stack, Redis's time in scripts and
    # in commands. CPU is counted in ticks of 10 ms: with 50 jobs, it may show none.
    figures = [[float(figure.replace(",", "")) for figure in row[2:]] for row in rows]
    assert all(len(row) == 5 and row[0] > 0 and row[3] > 0 for row in figures)


def test_one_redis_gives_every_figure(redis_binary):
    command = [sys.executable, "bench/one_redis.py", "--jobs", "100", "--runs", "1"]
    result = subprocess.run(
        command, cwd=PROJECT, capture_output=True, text=True, timeout=RUN_TIMEOUT_SECONDS
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = [re.split(r"\s{2,}", line.strip(), maxsplit=1) for line in result.stdout.splitlines()]
    figures = dict(line for line in lines if len(line) == 2)
    assert len(figures) == 16 + 3 + 4, result.stdout
    # every job worked, and kept as RQ keeps it (its hash and its result), or removed
    assert figures["keys left, kept"] == f"{2 * 100 + 6}"
    assert figures["keys left, removed"] == "5"
    assert figures["jobs still queued, of 2,000"] == "2,000"
    assert figures["the seat app's take_one_seat.lua"].startswith("refused: ")


class SeenReadyLate(PythonSide):
    """This port's processor, seen ready only once it has worked every job queued: the
    harness at its latest (a loaded machine), every time."""

    def ready(self, client: redis.Redis, processor: Running, concurrency: int) -> bool:
        queued = int(client.get(IDS_KEY) or 0)
        ready = super().ready(client, processor, concurrency)
        return ready and self.finished(client) >= queued


def test_cpu_per_job_counts_every_job_however_late_the_processor_is_seen_ready(
    redis_server: RedisServer,
):
    bench = Bench(argparse.Namespace(jobs=20), redis_server, peer=None)
    figures = measure(bench, SeenReadyLate(), "processor_1", 20)
    # jobs/s, then per job: CPU of Redis and of the processor, Redis's time in scripts
    # and in commands; the 20 jobs' scripts ran inside the window.
    assert len(figures) == 5
    assert float(figures[0].replace(",", "")) > 0
    assert float(figures[3].replace(",", "")) > 0


def test_a_window_in_which_no_job_finished_is_a_clear_error():
    with pytest.raises(ValueError, match="no job finished in the window measured"):
        Costs(jobs=0, own=0.1, server=0.1, scripts=0.0, commands=0.0).per_job()
