"""The bench's stamps of the Python peers' jobs: each job function notes its own start
and end, so that the harness times every peer the same way, whatever the peer stores
(Celery and Dramatiq keep no start or end of a job; arq and SAQ keep theirs in their own
formats). No Redis call: each worker process keeps, in a file of its own in the folder
that BENCH_STAMPS names, the jobs it ended, the first start and the last end, written in
place (a shared mapping of the file); the harness adds up the files (bench/python_peers.py).
"""

import mmap
import os
import struct
import threading
import time
from pathlib import Path

# jobs ended, first start and last end (seconds since the epoch): 8 bytes each
RECORD = struct.Struct("qdd")
COUNT = struct.Struct("q")
TIMES = struct.Struct("dd")


class _ProcessStamps:
    """One worker process's file, opened at its first job (after a fork: a file per
    process, by PID)."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        path = Path(os.environ["BENCH_STAMPS"]) / f"{self.pid}.stamps"
        with path.open("wb") as file:
            file.write(RECORD.pack(0, 0.0, 0.0))
        with path.open("r+b") as file:
            self.mapping = mmap.mmap(file.fileno(), RECORD.size)
        self.count, self.first, self.last = 0, float("inf"), 0.0

    def ended(self, started: float, ended: float) -> None:
        self.count += 1
        self.first, self.last = min(self.first, started), max(self.last, ended)
        # The times before the count: a harness that sees the last count sees its times.
        self.mapping[COUNT.size :] = TIMES.pack(self.first, self.last)
        self.mapping[: COUNT.size] = COUNT.pack(self.count)


_lock = threading.Lock()
_stamps: _ProcessStamps | None = None


def job_ended(started: float) -> None:
    """Called by a job function as it returns, with the time.time() it started at."""
    global _stamps
    ended = time.time()
    with _lock:
        if _stamps is None or _stamps.pid != os.getpid():
            _stamps = _ProcessStamps()
        _stamps.ended(started, ended)


def read(folder: Path) -> tuple[int, float, float]:
    """The jobs ended in every process, the first start and the last end."""
    records = [RECORD.unpack(path.read_bytes()[: RECORD.size]) for path in folder.glob("*.stamps")]
    records = [record for record in records if record[0]]
    if not records:
        return 0, 0.0, 0.0
    count = sum(record[0] for record in records)
    return count, min(record[1] for record in records), max(record[2] for record in records)
