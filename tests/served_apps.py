"""The apps as a user runs them (`python <name>`, ./serve.sh, gunicorn), on 127.0.0.1 and
a free port: started, asked over HTTP for the exact bytes they answer, and their worker
processes."""

import contextlib
import http.client
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.net import accepts_connections, free_port
from harness.redis_server import PROJECT
from harness.waiting import wait_until
from tests.scripts import Script

SERVE = PROJECT / "serve.sh"


@dataclass
class Reply:
    status: int
    content_type: str
    body: bytes
    headers: dict[str, str]


def request(port: int, path: str, method: str = "GET") -> Reply:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path)
        response = connection.getresponse()
        body = response.read()
        headers = dict(response.getheaders())
        return Reply(response.status, headers.get("Content-Type", ""), body, headers)
    finally:
        connection.close()


def get(port: int, path: str) -> bytes:
    """The body of a GET, as `curl localhost:<port><path>` prints it."""
    return request(port, path).body


def start_app(start_script: Callable[..., Script], name: str, redis_url: str) -> tuple[Script, int]:
    """Start an app as a user does (`python <name>`), on a free port; return it once it
    listens."""
    port = free_port()
    app = start_script(name, redis_url, PORT=str(port))
    wait_for(app, port)
    # Flask's own lines; what comes next is the app's.
    assert app.read_lines(2) == [f" * Serving Flask app '{name[:-3]}'", " * Debug mode: off"]
    app.lines.clear()
    return app, port


def start_with_server(
    start_script: Callable[..., Script], server: str, module: str, redis_url: str
) -> tuple[Script, int]:
    """Serve an app as README says, with ./serve.sh (granian) or gunicorn, two workers, on
    a free port."""
    if server == "granian":
        return start_served(start_script, module, redis_url)
    port = free_port()
    program = str(Path(sys.executable).with_name(server))
    # gunicorn builds the app once, then forks its workers
    command = [program, "-w", "2", "-b", f"127.0.0.1:{port}", "--preload"]
    app = start_script(module, redis_url, [*command, f"{module}:create_app()"])
    wait_for(app, port)
    return app, port


def start_served(
    start_script: Callable[..., Script], module: str, redis_url: str, workers: int = 2, **env: str
) -> tuple[Script, int]:
    """`./serve.sh <module>` on 127.0.0.1 and a free port, as a user runs it; return it
    once all its workers have started and the port takes connections. (On Linux each
    granian worker binds a socket of its own, SO_REUSEPORT, after granian's "Started
    worker" line: a request sent on that line alone may be refused.) What it printed
    before is in `app.lines`."""
    port = free_port()
    command = [str(SERVE), module]
    settings = {"PORT": str(port), "HOST": "127.0.0.1", "WORKERS": str(workers), **env}
    app = start_script(module, redis_url, command, **settings)
    waiting = {f"[INFO] Started worker-{n}" for n in range(1, workers + 1)}
    while waiting:  # a launch step or granian that fails ends it: next_line says so
        waiting.discard(app.next_line(timeout=30))
    wait_for(app, port)
    return app, port


def worker_pids(app: Script) -> list[int]:
    """The PIDs of the worker processes of an app started by `start_served`: the live
    children of granian's main process (serve.sh's own, as serve.sh execs granian)."""
    return sorted(pid for pid in children(app.process.pid) if is_alive(pid))


def children(pid: int) -> list[int]:
    """The processes `pid` started that have not been reaped yet (Linux's /proc)."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):  # a thread or the process ended meanwhile
            found += [int(child) for child in task.read_text().split()]
    return found


def is_alive(pid: int) -> bool:
    """Running, not a zombie waiting for its parent to reap it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # the state follows the command's name


def wait_for(app: Script, port: int) -> None:
    wait_until(lambda: accepts_connections(port) or app.process.poll() is not None, what="up")
    assert app.process.poll() is None, app.stderr()
