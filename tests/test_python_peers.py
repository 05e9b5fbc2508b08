"""The bench's Python peers, as far as the harness reads them without installing them:
the jobs' stamps (bench/python_peer/stamps.py) that time every peer alike, the versions
their requirements pin, the memory of their processes. (test_bench.py runs them.)"""

import os
import threading

import pytest

from bench import python_peers
from bench.processes import tree_rss_mb
from bench.python_peer import stamps
from bench.python_peers import PythonPeerSide
from harness.sentinel import process_state
from harness.waiting import wait_until


@pytest.fixture
def stamps_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_STAMPS", str(tmp_path))
    monkeypatch.setattr(stamps, "_stamps", None)  # this process's file not opened yet
    return tmp_path


def test_the_jobs_of_every_thread_and_process_are_added_up(stamps_folder):
    threads = [threading.Thread(target=stamps.job_ended, args=(1000.0 + n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    child = os.fork()
    if child == 0:  # a worker process forked after the first jobs: a file of its own
        stamps.job_ended(999.5)
        stamps.job_ended(1001.0)
        os._exit(0)
    assert os.waitpid(child, 0)[1] == 0

    count, first, last = stamps.read(stamps_folder)
    assert count == 10
    assert first == 999.5
    assert 1000 < last <= stamps.time.time()
    assert len(list(stamps_folder.glob("*.stamps"))) == 2


def test_a_side_forgets_the_last_run(stamps_folder):
    side = PythonPeerSide("saq", stamps_folder / "python", stamps_folder)
    stamps.job_ended(stamps.time.time())
    assert side.finished(None) == 1
    side.clear()
    assert side.finished(None) == 0
    assert side.command("processor", 50)[:2] == ["env", f"BENCH_STAMPS={stamps_folder}"]


def test_each_peer_pins_its_package():
    versions = python_peers.versions(dict.fromkeys(python_peers.PACKAGES))
    assert {stack: peer["version"] for stack, peer in versions.items()} == {
        "saq": "0.26.4",
        "arq": "0.28.0",
        "celery": "5.7.0",
        "dramatiq": "2.2.1",
        "bullmq_py": "2.15.0",
    }


def test_the_worker_side_s_memory_counts_an_ended_child_as_nothing():
    """A peer's worker may leave a child ended and not yet reaped (a zombie, whose
    status has no VmRSS) while the bench samples its processes' memory."""
    child = os.fork()
    if child == 0:
        os._exit(0)
    try:
        wait_until(lambda: process_state(child) == "Z", 5, "the child a zombie")
        assert tree_rss_mb(os.getpid()) > 0
    finally:
        os.waitpid(child, 0)
