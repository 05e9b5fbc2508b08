"""HTTP on loopback for the app tests: the exact bytes an app answers."""

import http.client
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.redis_server import free_port
from tests.scripts import Script, wait_until


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


def accepts_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


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
    """Serve an app as README says, with granian or gunicorn, two workers, on a free port."""
    port = free_port()
    program = str(Path(sys.executable).with_name(server))
    if server == "granian":
        command = [program, "--interface", "wsgi", "--workers", "2", "--blocking-threads", "2"]
        command += ["--workers-kill-timeout", "5", "--host", "127.0.0.1", "--port", str(port)]
        command += ["--factory", f"{module}:create_app"]
    else:  # gunicorn builds the app once, then forks its workers
        command = [program, "-w", "2", "-b", f"127.0.0.1:{port}", "--preload"]
        command += [f"{module}:create_app()"]
    app = start_script(module, redis_url, command)
    wait_for(app, port)
    if server == "granian":  # it listens before its workers run; a stop before then waits
        started = {line for line in app.read_until_line("[INFO] Started worker-2")}
        if "[INFO] Started worker-1" not in started:
            app.read_until_line("[INFO] Started worker-1")
    return app, port


def wait_for(app: Script, port: int) -> None:
    wait_until(lambda: accepts_connections(port) or app.process.poll() is not None, what="up")
    assert app.process.poll() is None, app.stderr()
