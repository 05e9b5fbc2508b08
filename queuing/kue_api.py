"""Kue's JSON API (Kue 0.11.6's README, "JSON API") as a Flask blueprint, on RQ's jobs:

    GET    /stats                                   the counts of every queue, workTime
    GET    /job/<id>                                a job, as Kue's Job.toJSON shows it
    GET    /job/<id>/log                            its log lines
    GET    /jobs/<from>..<to>[/<order>]             jobs of any state, by id
    GET    /jobs/<state>/<from>..<to>[/<order>]     of one state
    GET    /jobs/<type>/<state>/<from>..<to>[/<order>]
    POST   /job                                     create a job, or an array of them
    DELETE /job/<id>                                remove a job

The bodies are Kue's. Every answer is JSON, errors too: `{"error": "<reason>"}` with 400
(bad JSON, an unknown state, order or option: the reason names it), 404 (an unknown job
or route), 405, 503 when Redis cannot be reached, 500 for anything else (logged).
Kue answered most errors with 200 and an {"error"} body; here the status says it too.
A bulk create whose element fails answers with that element's status, as Kue's does,
the array telling which were created.

dashboard.py serves it beside rq-dashboard, under `<prefix>/kue`, behind the same
credentials. Its lookups are queuing.job_queue.lookup's.
"""

import json
import logging
import math
from typing import Any

import redis
from flask import Blueprint, Response, current_app, request
from werkzeug.exceptions import HTTPException

from queuing.job_queue import lookup
from queuing.job_queue.options import BadJobOption, base_queue_name
from queuing.job_queue.types import create_job_of_type
from queuing.redis_connection import UNREACHABLE
from queuing.web_app import json_response

NAME = "kue"
REDIS_UNAVAILABLE = "Redis unavailable"
# Kue's job options in a POST, as its README names them (ms where Kue takes ms).
KUE_OPTIONS = ("priority", "delay", "attempts", "backoff", "ttl", "removeOnComplete")
JOB_FIELDS = ("type", "data", "options")
BACKOFF_FIELDS = ("type", "delay", "maxDelay")
# The counts of /stats, in the order Kue's route asks for them.
STATS = ("inactive", "complete", "active", "failed", "delayed")
RANGE = "<int(signed=True):start>..<int(signed=True):stop>"
ANY_METHOD = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

log = logging.getLogger(__name__)


class BadJobRequest(ValueError):
    """A POSTed job that is not one (no type, a field Kue has not); the message says why."""


def kue_blueprint(connection: redis.Redis) -> Blueprint:
    """Kue's JSON API on `connection` (bytes replies, as RQ's), to register under a
    prefix of the app's choosing."""
    api = Blueprint(NAME, __name__)
    _answer_errors_in_json(api)
    views = _Views(connection)
    routes = [
        ("/stats", views.stats, ["GET"]),
        ("/job/<job_id>", views.job, ["GET"]),
        ("/job/<job_id>/log", views.job_log, ["GET"]),
        ("/job/<job_id>", views.remove, ["DELETE"]),
        ("/job", views.create, ["POST"]),
    ]
    for path, view in (
        (f"/jobs/{RANGE}", views.jobs),
        (f"/jobs/<state>/{RANGE}", views.jobs_in_state),
        (f"/jobs/<job_type>/<state>/{RANGE}", views.jobs_of_type),
    ):
        routes += [(path, view, ["GET"]), (f"{path}/<order>", view, ["GET"])]
    for path, view, methods in routes:
        # OPTIONS is answered by _unknown, with the methods of these routes alone.
        api.add_url_rule(path, view_func=view, methods=methods, provide_automatic_options=False)
    # Any other path or method under the prefix: JSON, never the app's HTML page.
    every = {"methods": ANY_METHOD, "provide_automatic_options": False}
    api.add_url_rule("/", "unknown", _unknown, strict_slashes=False, **every)
    api.add_url_rule("/<path:path>", "unknown", _unknown, **every)
    return api


class _Views:
    """The API's views, on one Redis connection."""

    def __init__(self, connection: redis.Redis) -> None:
        self.connection = connection

    def stats(self) -> Response:
        counts = lookup.all_job_counts(self.connection)
        body: dict[str, int] = {f"{state}Count": counts[state] for state in STATS}
        body["workTime"] = lookup.work_time(self.connection)
        return json_response(body)

    def job(self, job_id: str) -> Response:
        found = lookup.get_job(self.connection, job_id)
        return json_response(found) if found is not None else _no_such_job(job_id)

    def job_log(self, job_id: str) -> Response:
        lines = lookup.job_logs(self.connection, job_id)
        return json_response(lines) if lines is not None else _no_such_job(job_id)

    def remove(self, job_id: str) -> Response:
        if not lookup.remove_job(self.connection, job_id):
            return _no_such_job(job_id)
        return json_response({"message": f"job {job_id} removed"})

    def create(self) -> Response:
        return _create(self.connection)

    def jobs(self, start: int, stop: int, order: str = "asc") -> Response:
        return _jobs(self.connection, lookup.range_jobs, start, stop, order)

    def jobs_in_state(self, state: str, start: int, stop: int, order: str = "asc") -> Response:
        return _jobs(self.connection, lookup.range_by_state, state, start, stop, order)

    def jobs_of_type(
        self, job_type: str, state: str, start: int, stop: int, order: str = "asc"
    ) -> Response:
        return _jobs(self.connection, lookup.range_by_type, job_type, state, start, stop, order)


def _no_such_job(job_id: str) -> Response:
    return json_response({"error": f'job "{job_id}" doesnt exist'}, 404)  # Kue's words


def _jobs(connection: redis.Redis, ids_of: Any, *args: Any) -> Response:
    try:
        ids = ids_of(connection, *args)
    except ValueError as error:  # an unknown state or order
        return json_response({"error": str(error)}, 400)
    return json_response([job for job in lookup.get_jobs(connection, ids) if job is not None])


# ------------------------------------------------------------------ POST /job


def _create(connection: redis.Redis) -> Response:
    """One job, or an array of them in order: each element answered as Kue answers it,
    an element that fails as {"error": reason} while the others are created."""
    try:
        body = json.loads(request.get_data() or b"{}")
    except ValueError as error:
        return json_response({"error": f"Bad JSON: {error}"}, 400)
    if body == {} or body == []:
        return Response(status=204, mimetype="application/json")  # Kue's: nothing to create
    if not isinstance(body, list):
        answer, status = _create_one(connection, body)
        return json_response(answer, status)
    answers = [_create_one(connection, element) for element in body]
    failures = [status for _, status in answers if status != 200]
    return json_response([answer for answer, _ in answers], failures[0] if failures else 200)


def _create_one(connection: redis.Redis, element: Any) -> tuple[dict, int]:
    try:
        job_type, data, options = _job_request(element)
        job = create_job_of_type(connection, job_type, data, **options)
    except (BadJobRequest, BadJobOption) as error:
        return {"error": str(error)}, 400
    except UNREACHABLE:
        return {"error": REDIS_UNAVAILABLE}, 503
    return {"message": "job created", "id": int(job.id)}, 200


def _job_request(element: Any) -> tuple[str, Any, dict[str, Any]]:
    """A POSTed job's type, data (Kue's default: {}) and options, in create_job_of_type's
    terms; BadJobRequest or BadJobOption says what is wrong."""
    if not isinstance(element, dict):
        raise BadJobRequest(f"A job is an object with {', '.join(JOB_FIELDS)}; not {element!r}")
    _known(element, JOB_FIELDS, "field")
    job_type = element.get("type")
    if not job_type:
        raise BadJobRequest("Must provide job type")  # Kue's words
    if not isinstance(job_type, str) or base_queue_name(job_type) != job_type:
        # "email:high" is the queue of email's high priority level (options.py)
        raise BadJobRequest(f"type: a name, not {job_type!r} (a priority goes in options)")
    data = element.get("data")
    return job_type, {} if data is None else data, python_options(element.get("options"))


def python_options(given: Any) -> dict[str, Any]:
    """Kue's options (README: priority, delay in ms, attempts, backoff {type, delay ms},
    ttl in ms, removeOnComplete) as create_job_of_type's (seconds); one left null is not
    given, as in Kue. BadJobOption names an option that cannot be honoured."""
    if given is None:
        return {}
    if not isinstance(given, dict):
        raise BadJobOption("options", f"an object of Kue's options, not {given!r}")
    _known(given, KUE_OPTIONS, "option")
    options: dict[str, Any] = {}
    for name, value in given.items():
        if value is None:
            continue
        if name in ("priority", "attempts"):
            options[name] = value
        elif name == "delay":
            options["delay"] = _seconds("delay", value)
        elif name == "ttl":
            options["ttl"] = _seconds("ttl", value, above_zero=True)
        elif name == "backoff":
            options["backoff"] = _backoff(value)
        else:
            options["remove_on_complete"] = _flag("removeOnComplete", value)
    return options


def _known(given: dict, known: tuple[str, ...], what: str) -> None:
    for name in given:
        if name not in known:
            raise BadJobRequest(f"{name}: no such {what}; the {what}s: {', '.join(known)}")


def _seconds(option: str, ms: Any, above_zero: bool = False) -> float:
    if isinstance(ms, bool) or not isinstance(ms, (int, float)) or not math.isfinite(ms):
        raise BadJobOption(option, f"a number of milliseconds, not {ms!r}")
    if ms < 0 or (above_zero and ms == 0):
        raise BadJobOption(option, f"must be {'above' if above_zero else 'at least'} 0, not {ms!r}")
    return ms / 1000


def _backoff(value: Any) -> bool | dict[str, Any]:
    """Kue's backoff: true (the job's delay between attempts), or {type: "fixed" or
    "exponential", delay: ms, maxDelay: ms}."""
    if isinstance(value, bool):
        return value
    if not isinstance(value, dict):
        raise BadJobOption("backoff", f"true, or an object with a type; not {value!r}")
    _known(value, BACKOFF_FIELDS, "backoff field")
    backoff = {"type": value["type"]} if "type" in value else {}
    if value.get("delay") is not None:
        backoff["delay"] = _seconds("backoff delay", value["delay"])
    if value.get("maxDelay") is not None:
        backoff["max_delay"] = _seconds("backoff maxDelay", value["maxDelay"])
    return backoff


def _flag(option: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise BadJobOption(option, f"true or false, not {value!r}")
    return value


# ------------------------------------------------------------------ errors


def _unknown(path: str = "") -> Response:
    allowed = _allowed_methods()
    if not allowed:
        return json_response({"error": "Not Found"}, 404)
    allow = {"Allow": ", ".join(sorted({*allowed, "OPTIONS"}))}
    if request.method == "OPTIONS":
        return Response(status=204, headers=allow, mimetype="application/json")
    return json_response({"error": "Method Not Allowed"}, 405, allow)


def _allowed_methods() -> list[str]:
    """The methods the API's other routes take at this path (the catch-all takes any);
    HEAD with GET, as Flask adds it."""
    adapter = current_app.url_map.bind_to_environ(request.environ)
    allowed = []
    for method in ("DELETE", "GET", "POST"):
        try:
            rule, _ = adapter.match(method=method, return_rule=True)
        except HTTPException:
            continue
        if rule.endpoint != request.endpoint:
            allowed += [method, "HEAD"] if method == "GET" else [method]
    return allowed


def _answer_errors_in_json(api: Blueprint) -> None:
    @api.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        return json_response({"error": error.name}, error.code or 500)

    @api.errorhandler(redis.RedisError)
    def redis_error(error: redis.RedisError) -> Response:
        if isinstance(error, UNREACHABLE):
            return json_response({"error": REDIS_UNAVAILABLE}, 503)
        log.exception("Redis error in Kue's JSON API")
        return json_response({"error": "Internal Server Error"}, 500)

    @api.errorhandler(Exception)
    def server_error(error: Exception) -> Response:
        log.exception("Unexpected error in Kue's JSON API")
        return json_response({"error": "Internal Server Error"}, 500)
