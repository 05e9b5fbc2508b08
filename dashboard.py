"""Watch the queues as Kue's UI let you: rq-dashboard, on this project's Redis.

    python dashboard.py        # http://127.0.0.1:9181/, on the Redis of REDIS_URL

It shows every queue with its jobs by state (queued, started, finished, failed...),
each job with its data, error and meta, where job_queue keeps its progress
(`{"progress": 50}`), and the workers. Beside it, under /kue, Kue's JSON API
(queuing/kue_api.py): http://127.0.0.1:9181/kue/stats, /kue/job/<id>, POST /kue/job...

The dashboard can delete and requeue jobs, so it is safe by default:
- it listens on 127.0.0.1 (DASHBOARD_HOST, DASHBOARD_PORT change that: 9181 by
  default), and on any other address only with credentials;
- with RQ_DASHBOARD_USERNAME and RQ_DASHBOARD_PASSWORD set, every page asks for them
  (HTTP basic auth), and so does Kue's JSON API: wrong or none get 401 and change
  nothing;
- 100_seat.py serves both under /rq (the API under /rq/kue), and only when those
  credentials are set.
"""

import contextlib
import hmac
import ipaddress
import os
import signal
import sys
from typing import Any

import redis
from flask import Flask, Response, current_app, request
from rq_dashboard.web import blueprint, push_rq_connection, setup_rq_connection

from queuing.kue_api import kue_blueprint
from queuing.redis_connection import create_client, redis_url, run
from queuing.web_app import json_response, port_from_environment

CREDENTIALS = ("RQ_DASHBOARD_USERNAME", "RQ_DASHBOARD_PASSWORD")
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9181


def credentials() -> tuple[str, str] | None:
    """The username and password of the environment, if both are set."""
    username, password = (os.environ.get(name, "") for name in CREDENTIALS)
    return (username, password) if username and password else None


def add_dashboard(
    app: Flask,
    prefix: str,
    required: tuple[str, str] | None,
    client: redis.Redis | None = None,
) -> None:
    """Serve the dashboard under `prefix` and Kue's JSON API under `<prefix>/kue`, behind
    basic auth when credentials are `required`: on `client` (bytes replies, as RQ's) if
    given, else on REDIS_URL's Redis."""
    app.config["RQ_DASHBOARD_REDIS_URL"] = redis_url()
    setup_rq_connection(app)
    app.register_blueprint(blueprint, url_prefix=prefix)
    # No route of the dashboard's begins with /kue (tests/test_kue_api.py checks).
    kue = kue_blueprint(client or create_client(decode_responses=False))
    app.register_blueprint(kue, url_prefix=f"{prefix}/kue")
    if client is not None:
        _use_client(app, client)
    if required is None:
        return
    guarded = (blueprint.name, kue.name)

    @app.before_request
    def ask_for_credentials() -> Response | None:
        # Before any of their own views: nothing runs, nothing changes.
        if request.blueprint not in guarded or _match(request.authorization, required):
            return None
        return json_response(
            {"status": "Unauthorized"}, 401, {"WWW-Authenticate": 'Basic realm="RQ dashboard"'}
        )


def _use_client(app: Flask, client: redis.Redis) -> None:
    """The dashboard's views on `client`, one Redis: rq-dashboard 0.9.0's
    push_rq_connection, run before each of its views, would make a client of the URL of
    the view's instance number each time; this takes its place."""

    def push_app_client() -> Response | None:
        if request.view_args and request.view_args.get("instance_number", 0) != 0:
            return json_response({"status": "Not Found"}, 404)
        current_app.redis_conn = client
        return None

    app.redis_conn = client
    handlers = app.before_request_funcs[blueprint.name]
    handlers[handlers.index(push_rq_connection)] = push_app_client


def _match(given: object, required: tuple[str, str]) -> bool:
    if given is None or given.type != "basic":
        return False
    username, password = given.username or "", given.password or ""
    same_name = hmac.compare_digest(username.encode(), required[0].encode())
    return hmac.compare_digest(password.encode(), required[1].encode()) and same_name


def create_app() -> Flask:
    """The dashboard alone, at the root of its own app."""
    # The app's own /static would hide the dashboard's (its pages only ask the app's
    # for a favicon).
    app = Flask(__name__, static_url_path="/app-static")
    add_dashboard(app, "", credentials())
    return app


def _stop_once(signum: int, frame: Any) -> None:
    """SIGTERM: a stop, as Ctrl-C (werkzeug's server ends on KeyboardInterrupt). One is
    enough: another, on the way out, must not cut that short."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


def main() -> None:
    # First: a SIGTERM at any moment from here on ends the dashboard cleanly (exit 0).
    signal.signal(signal.SIGTERM, _stop_once)
    # A stop before werkzeug's serve_forever (which takes one as the end), or as it
    # closes: the dashboard has nothing to finish, so it is a clean end all the same.
    with contextlib.suppress(KeyboardInterrupt):
        serve()


def serve() -> None:
    """The dashboard on DASHBOARD_HOST:DASHBOARD_PORT until Ctrl-C or SIGTERM."""
    host = os.environ.get("DASHBOARD_HOST") or DEFAULT_HOST
    port = port_from_environment("DASHBOARD_PORT", DEFAULT_PORT)
    if not _is_loopback(host) and credentials() is None:
        sys.exit(
            f"Not listening on {host} without credentials: set {CREDENTIALS[0]} and "
            f"{CREDENTIALS[1]}, or keep DASHBOARD_HOST at 127.0.0.1"
        )
    print(f"RQ dashboard of {redis_url()} on http://{host}:{port}/", flush=True)
    # Not web_app.run_until_stopped: its SIGTERM handler would replace _stop_once.
    create_app().run(host=host, port=port, threaded=True)


def _is_loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


if __name__ == "__main__":
    run(main)
