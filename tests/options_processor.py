"""A processor of the queue `options` for the tests of Kue's options, as a course
processor runs: `work()`, two worker processes, until Ctrl-C. SHUTDOWN_TIMEOUT (seconds)
is Kue's queue.shutdown(timeout)."""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the project, to import

from queuing.job_queue import work
from queuing.redis_connection import create_client, run


def main() -> None:
    timeout = os.environ.get("SHUTDOWN_TIMEOUT")
    connection = create_client(decode_responses=False)
    work(["options"], connection, workers=2, shutdown_timeout=float(timeout) if timeout else None)


if __name__ == "__main__":
    run(main)
