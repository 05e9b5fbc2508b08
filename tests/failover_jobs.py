"""Jobs of tests/test_job_failover.py, run by a processor in another process, which a
test holds in hand across a failover: the word to end comes through a file, since Redis
is what the test takes away."""

import time
from pathlib import Path


def waits_for_its_file(data: dict) -> str:
    """Runs until the file `data["file"]` exists (at most a minute), then returns. Each
    run adds a line to the file `data["runs"]`, if given."""
    if "runs" in data:
        with Path(data["runs"]).open("a") as runs:
            runs.write("run\n")
    file = Path(data["file"])
    deadline = time.monotonic() + 60
    while not file.exists():
        if time.monotonic() > deadline:
            raise TimeoutError("the test never let the job end")
        time.sleep(0.02)
    return "done"
