"""What `kill -9` of Redis loses, for each `appendfsync` mode, with and without a busy
disk: a client INCRs one after another, the server is killed, started again on the same
folder, and what it acknowledged is compared with what is there.

    .venv/bin/python bench/durability.py            # about a minute
    .venv/bin/python bench/durability.py --kills 40

`everysec` syncs in a background thread, and while a sync is running Redis holds back
writing new data to the file for up to two seconds, yet still answers: a kill in that
window loses acknowledged writes. A busy disk makes syncs slow, so the window opens
often. `no` writes every reply's data to the kernel first (a killed process loses
nothing; a machine that dies loses what the kernel had not written yet, up to ~30 s).
"""

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.redis_server import RedisServer, find_redis_server
from harness.waiting import wait_until

WRITES_PER_ROUND = 300


def rounds_with_loss(binary: str, mode: str, kills: int, folder: Path) -> tuple[int, int]:
    """(kills that lost acknowledged writes, writes lost in all)."""
    server = RedisServer(binary, folder).start()
    lossy, lost = 0, 0
    try:
        for _ in range(kills):
            with server.client() as client:
                client.config_set("appendfsync", mode)  # redis.conf's again at each start
                for _ in range(WRITES_PER_ROUND):
                    acknowledged = client.incr("counter")
            server.kill()
            server.start()
            missing = acknowledged - there_once_loaded(server)
            lossy, lost = lossy + (missing > 0), lost + max(missing, 0)
    finally:
        server.stop()
    return lossy, lost


def there_once_loaded(server: RedisServer) -> int:
    with server.client() as client:
        # It answers while it reads its file, commands that read data with an error.
        wait_until(lambda: not client.info("persistence")["loading"], 60, "its file read")
        return int(client.get("counter") or 0)


def busy_disk(folder: Path) -> subprocess.Popen:
    """Another process writing to the disk and syncing each block, as a busy machine."""
    target = folder / "busy"
    command = ["dd", "if=/dev/zero", f"of={target}", "bs=1M", "count=100000", "oflag=dsync"]
    return subprocess.Popen(command, stderr=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=30, help="kills per mode (30)")
    options = parser.parse_args()
    binary = find_redis_server() or sys.exit("No redis-server: run ./install_redis.sh first.")
    print(f"{'appendfsync':<12} {'disk':<6} kills with a loss   writes lost")
    for disk in ("quiet", "busy"):
        for mode in ("everysec", "no", "always"):
            with tempfile.TemporaryDirectory(prefix="durability-") as name:
                folder = Path(name)
                writer = busy_disk(folder) if disk == "busy" else None
                try:
                    lossy, lost = rounds_with_loss(binary, mode, options.kills, folder / "redis")
                finally:
                    if writer is not None:
                        writer.kill()
                        writer.wait()
                        os.remove(folder / "busy")
            print(f"{mode:<12} {disk:<6} {lossy:>3} of {options.kills:<13} {lost:>6}")


if __name__ == "__main__":
    main()
