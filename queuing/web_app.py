"""What the two Flask apps share: answers that are always JSON, as Express's `res.json`
sends them (compact, keys in the order written, no trailing newline), truthful status
codes for errors, strict ids, and serving on PORT.
"""

import json
import os
import re
import signal
import sys
from typing import Any

import redis
from flask import Flask, Response
from werkzeug.exceptions import HTTPException

from queuing.redis_connection import UNREACHABLE, create_client, lean_command

DEFAULT_PORT = 1245
DEFAULT_HOST = "127.0.0.1"
# How long an app waits for one answer of Redis: its longest command is WAIT (1 s,
# redis_connection.CONFIRM_TIMEOUT_MS). A primary that hangs (frozen, or cut off by the
# network) then costs a request a 503 after this, and the next connection asks the
# sentinels again: once they have failed it over, the app serves from the new primary
# without waiting for the old one to wake.
REDIS_SOCKET_TIMEOUT_SECONDS = 3.0
# An id is a whole number written in digits, nothing else; 18 digits keep int() cheap.
ID = re.compile(r"[0-9]{1,18}")


def create_app_client(decode_responses: bool = True) -> redis.Redis:
    """The client of an app's requests: REDIS_URL's, with REDIS_SOCKET_TIMEOUT_SECONDS."""
    return create_client(decode_responses, socket_timeout=REDIS_SOCKET_TIMEOUT_SECONDS)


def json_response(body: Any, status: int = 200, headers: dict | None = None) -> Response:
    return Response(
        json.dumps(body, separators=(",", ":")),
        status=status,
        headers=headers,
        mimetype="application/json",
    )


def redis_get(client: redis.Redis, key: str) -> Any:
    """GET, the one command of the apps' busiest routes, as lean as redis-py allows."""
    return lean_command(client, "GET", key)


def parse_id(text: str) -> int | None:
    """`"12"` -> 12; anything else (`abc`, `-1`, `1.5`, `2abc`, 40 digits) -> None."""
    return int(text) if ID.fullmatch(text) else None


def create_json_app(name: str) -> Flask:
    """A Flask app whose every answer is JSON, errors included."""
    app = Flask(name)
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = False  # OPTIONS answers 405 JSON, not empty HTML

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        allowed = getattr(error, "valid_methods", None)  # set on 405 Method Not Allowed
        headers = {"Allow": ", ".join(sorted(allowed))} if allowed else None
        return json_response({"status": error.name}, error.code or 500, headers)

    @app.errorhandler(redis.RedisError)
    def redis_error(error: redis.RedisError) -> Response:
        if isinstance(error, UNREACHABLE):
            return json_response({"status": "Redis unavailable"}, 503)
        app.logger.exception("Redis error")
        return json_response({"status": "Internal Server Error"}, 500)

    @app.errorhandler(Exception)
    def server_error(error: Exception) -> Response:
        app.logger.exception("Unexpected error")
        return json_response({"status": "Internal Server Error"}, 500)

    return app


def serve(app: Flask) -> None:
    """Serve with Flask's own threaded server, as the course's `npm run dev` did, on PORT
    (default 1245) of HOST (default 127.0.0.1), until Ctrl-C or SIGTERM."""
    port = port_from_environment("PORT", DEFAULT_PORT)
    run_until_stopped(app, os.environ.get("HOST") or DEFAULT_HOST, port)


def run_until_stopped(app: Flask, host: str, port: int) -> None:
    """Flask's threaded server, until Ctrl-C or SIGTERM (which it takes as Ctrl-C)."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    app.run(host=host, port=port, threaded=True)


def port_from_environment(name: str, default: int) -> int:
    """The port an environment variable names; a one-line exit for anything else."""
    port = os.environ.get(name) or str(default)
    if not port.isdigit() or not 0 < int(port) < 65536:
        sys.exit(f"Invalid {name} {port!r}: a port number is 1 to 65535")
    return int(port)
