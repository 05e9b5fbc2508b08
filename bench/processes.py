"""What bench/run.py starts and loads: processes that end with their `with` block, HTTP
servers for the apps, and wrk."""

import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from harness.net import accepts_connections, free_port
from harness.waiting import wait_until

PROJECT = Path(__file__).resolve().parent.parent
BENCH_CACHE = PROJECT / ".bench"
VENV_BIN = Path(sys.executable).parent


class Running:
    """A process started in a session of its own, ended with its `with` block
    (SIGTERM to the whole session, then SIGKILL if need be)."""

    def __init__(self, command: list[str], env: dict, stdout: int = subprocess.DEVNULL) -> None:
        self.process = subprocess.Popen(
            command,
            cwd=PROJECT,
            env=env,
            stdout=stdout,
            stderr=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )

    def __enter__(self) -> "Running":
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        except ProcessLookupError:
            self.process.wait()


def tree_rss_mb(pid: int) -> float:
    """The resident memory of a process and all its descendants, in MB (Linux: /proc)."""
    total_kb, pids = 0, [pid]
    while pids:
        current = pids.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            for task in Path(f"/proc/{current}/task").iterdir():
                pids += [int(child) for child in (task / "children").read_text().split()]
        except OSError:  # ended meanwhile
            continue
        # A zombie (a child ended, not yet reaped) has no VmRSS: it holds no memory.
        total_kb += next(
            (int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")),
            0,
        )
    return total_kb / 1024


# ---------------------------------------------------------------- the apps' servers


class Serving:
    """An app served (this port's or Express's) on a free port, until the `with` ends."""

    def __init__(self, serve: Callable[[str, int], list[str]], module: str, env: dict) -> None:
        self.port = free_port()
        self.running = Running(serve(module, self.port), env)

    def __enter__(self) -> int:
        try:
            wait_until(lambda: accepts_connections(self.port), 60, f"the app on {self.port}")
        except BaseException:
            self.running.__exit__()  # not served: ended here, as no `with` will
            raise
        return self.port

    def __exit__(self, *exc: object) -> None:
        self.running.__exit__(*exc)


def serve_command(module: str, port: int) -> list[str]:
    """README's production command for the apps: ./serve.sh (granian, 2 workers x 2
    threads), which holds its one copy of granian's command line."""
    settings = [f"PORT={port}", "HOST=127.0.0.1", "WORKERS=2"]
    return ["env", *settings, str(PROJECT / "serve.sh"), module]


def granian(module: str, port: int, threads: int, *settings: str) -> list[str]:
    """granian with a thread count and settings of its own, for --compare-servers only
    (serve.sh is the production command)."""
    command = [str(VENV_BIN / "granian"), "--interface", "wsgi", "--workers", "2"]
    command += ["--blocking-threads", str(threads), "--workers-kill-timeout", "5", *settings]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    return [*command, "--factory", f"{module}:create_app"]


def gunicorn(module: str, port: int, workers: int = 2, threads: int = 0) -> list[str]:
    command = [str(VENV_BIN / "gunicorn"), "-w", str(workers), "-b", f"127.0.0.1:{port}"]
    if threads:
        command += ["-k", "gthread", "--threads", str(threads)]
    return [*command, f"{module}:create_app()"]


# The servers --compare-servers measures, the one README recommends among them.
SERVERS: dict[str, Callable[[str, int], list[str]]] = {
    "gunicorn, 2 sync workers": lambda module, port: gunicorn(module, port),
    "gunicorn, 4 sync workers": lambda module, port: gunicorn(module, port, workers=4),
    "gunicorn, 2 gthread workers x 8": lambda module, port: gunicorn(module, port, threads=8),
    "granian, 2 workers x 1 thread": lambda module, port: granian(module, port, threads=1),
    "granian, 2 workers x 4 threads": lambda module, port: granian(module, port, threads=4),
    "granian, 2 x 2, single-threaded runtime": lambda module, port: granian(
        module, port, 2, "--runtime-mode", "st"
    ),
    "granian, 2 x 2, backpressure 8": lambda module, port: granian(
        module, port, 2, "--backpressure", "8"
    ),
    "granian, 2 workers x 2 threads": serve_command,  # serve.sh, as README says
}


# ---------------------------------------------------------------- wrk


def find_wrk() -> list[str] | None:
    """wrk on PATH, else Debian's, downloaded once into .bench/ (nothing installed)."""
    if shutil.which("wrk"):
        return ["wrk"]
    folder = BENCH_CACHE / "wrk"
    binary = folder / "root" / "usr" / "bin" / "wrk"
    if not binary.exists():
        print("Downloading wrk from Debian's packages into .bench/ ...")
        fetch = [
            str(PROJECT / "redis-setup" / "private_apt.sh"),
            "download",
            str(folder),
            "wrk",
            "libluajit-5.1-2",
        ]
        if subprocess.run(fetch, capture_output=True).returncode != 0:
            return None
        for deb in folder.glob("*.deb"):
            subprocess.run(["dpkg-deb", "-x", str(deb), str(folder / "root")], check=True)
    libraries = ":".join(str(path) for path in folder.glob("root/usr/lib/*-linux-gnu"))
    return ["env", f"LD_LIBRARY_PATH={libraries}", str(binary)]


def wrk_or_skip(skipped: str) -> list[str] | None:
    """wrk (find_wrk), or None once said that without it `skipped` are skipped."""
    wrk = find_wrk()
    if wrk is None:
        print(f"No wrk to load the apps with: {skipped} are skipped.")
    return wrk


def run_wrk(wrk: list[str], url: str, seconds: int, connections: int) -> dict:
    """Requests a second, the requests answered, and the median and 99th percentile
    latency in ms."""
    command = [*wrk, "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"{url} answered {errors.group(1)} errors")
    return {
        "value": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),
        "p50_ms": _latency_ms(out, "50%"),
        "p99_ms": _latency_ms(out, "99%"),
    }


def _latency_ms(out: str, percentile: str) -> float:
    value, unit = re.search(rf"{percentile}\s+([\d.]+)(us|ms|s)", out).groups()
    return float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]
