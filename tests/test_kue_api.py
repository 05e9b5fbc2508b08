"""Kue's JSON API (queuing/kue_api.py), as dashboard.py serves it under /kue and
100_seat.py under /rq/kue: each route's exact body, each error in JSON, the
dashboard's credentials, and a job posted by type then worked."""

import base64
import importlib
import json
import time

import pytest
import redis
from flask import Flask
from rq import Queue
from rq.job import Job

import dashboard
from harness.net import free_port
from queuing.job_queue import JobWorker, lookup, report_progress, types
from queuing.job_queue.events import log_line
from queuing.job_queue.types import create_job_of_type
from tests.flask_client import assert_json
from tests.served_apps import request, wait_for

TYPE = "kue_api_email"  # its jobs run `email` below, in this process's workers
USER, PASSWORD = "ops", "s3cret-enough"
CREDENTIALS = {"RQ_DASHBOARD_USERNAME": USER, "RQ_DASHBOARD_PASSWORD": PASSWORD}
OPTIONS = "priority, delay, attempts, backoff, ttl, removeOnComplete"


def email(data: dict) -> dict:
    if data.get("fail"):
        raise ValueError("mailbox full")
    report_progress(1, 1)
    log_line("sent to %s", data["to"])
    return {"sent": data["to"]}


types.register(TYPE, email)


def compact(body: object) -> bytes:
    """A body as the API sends it: JSON, compact, keys in order (web_app.json_response)."""
    return json.dumps(body, separators=(",", ":")).encode()


def basic(username: str, password: str) -> dict:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def app_of(monkeypatch, redis_url: str, **credentials: str):
    """dashboard.py's app (the dashboard, and the API under /kue) on `redis_url`."""
    monkeypatch.setenv("REDIS_URL", redis_url)
    for name in CREDENTIALS:
        monkeypatch.delenv(name, raising=False)
    for name, value in credentials.items():
        monkeypatch.setenv(name, value)
    return dashboard.create_app()


@pytest.fixture
def client(monkeypatch, redis_url):
    """The API without credentials, as `python dashboard.py` serves it on 127.0.0.1."""
    return app_of(monkeypatch, redis_url).test_client()


def work(connection: redis.Redis, queue_name: str = TYPE) -> None:
    queue = Queue(queue_name, connection=connection)
    JobWorker([queue], connection=connection).work(burst=True, logging_level="CRITICAL")


def ms(at) -> str:
    return str(round(at.timestamp() * 1_000_000) // 1000)


@pytest.fixture
def jobs(connection):
    """1 complete, 2 failed, 3 inactive, 4 inactive (sms), 5 delayed."""
    create_job_of_type(connection, TYPE, {"to": "tj"})
    create_job_of_type(connection, TYPE, {"to": "x", "fail": True})
    work(connection)
    create_job_of_type(connection, TYPE, {"to": "later"})
    create_job_of_type(connection, "sms", {"to": "4153518780"})
    create_job_of_type(connection, TYPE, {"to": "tomorrow"}, delay=86400)


# ------------------------------------------------------------------ GET


def test_stats_counts_every_queue(client, jobs):
    assert_json(
        client.get("/kue/stats"),
        200,
        b'{"inactiveCount":2,"completeCount":1,"activeCount":0,"failedCount":1,'
        b'"delayedCount":1,"workTime":0}',
    )


def test_a_job_posted_by_type_is_worked_and_shows_complete_with_its_result(client, connection):
    posted = client.post("/kue/job", json={"type": TYPE, "data": {"to": "tj"}})
    assert_json(posted, 200, b'{"message":"job created","id":1}')
    work(connection)
    stored = Job.fetch("1", connection=connection)
    assert_json(
        client.get("/kue/job/1"),
        200,
        b'{"id":"1","type":"kue_api_email","data":{"to":"tj"},"result":{"sent":"tj"},'
        b'"priority":0,"progress":"100","state":"complete",'
        b'"created_at":"%s","updated_at":"%s","started_at":"%s","duration":"%s",'
        b'"workerId":"%s","attempts":{"made":0,"remaining":1,"max":1},"options":{},'
        b'"logs":["sent to tj"]}'
        % (
            ms(stored.created_at).encode(),
            ms(stored.ended_at).encode(),
            ms(stored.started_at).encode(),
            lookup.get_job(connection, "1")["duration"].encode(),
            stored.worker_name.encode(),
        ),
    )
    assert_json(client.get("/kue/job/1/log"), 200, b'["sent to tj"]')


def test_an_unknown_job_is_404(client):
    assert_json(client.get("/kue/job/7"), 404, b'{"error":"job \\"7\\" doesnt exist"}')
    assert_json(client.get("/kue/job/7/log"), 404, b'{"error":"job \\"7\\" doesnt exist"}')
    assert_json(client.delete("/kue/job/7"), 404, b'{"error":"job \\"7\\" doesnt exist"}')


def ids_of(response) -> list[str]:
    assert response.status_code == 200, response.data
    return [job["id"] for job in response.get_json()]


def test_ranges_of_jobs_by_state_and_type(client, connection, jobs):
    assert ids_of(client.get("/kue/jobs/0..-1")) == ["1", "2", "3", "4", "5"]
    assert ids_of(client.get("/kue/jobs/0..1/desc")) == ["5", "4"]
    assert ids_of(client.get("/kue/jobs/1..2/asc")) == ["2", "3"]
    assert ids_of(client.get("/kue/jobs/inactive/0..-1")) == ["3", "4"]
    assert ids_of(client.get("/kue/jobs/inactive/0..0/desc")) == ["4"]
    assert ids_of(client.get(f"/kue/jobs/{TYPE}/inactive/0..-1")) == ["3"]
    assert ids_of(client.get("/kue/jobs/sms/inactive/0..9/desc")) == ["4"]
    assert ids_of(client.get("/kue/jobs/failed/0..-1")) == ["2"]
    every = client.get("/kue/jobs/0..-1")
    assert every.data == compact(lookup.get_jobs(connection, ["1", "2", "3", "4", "5"]))
    assert [job["state"] for job in every.get_json()] == [
        "complete",
        "failed",
        "inactive",
        "inactive",
        "delayed",
    ]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (
            "/kue/jobs/done/0..1",
            b'{"error":"unknown state \'done\': one of inactive, active, complete, failed, '
            b'delayed"}',
        ),
        (
            f"/kue/jobs/{TYPE}/done/0..1/desc",
            b'{"error":"unknown state \'done\': one of inactive, active, complete, failed, '
            b'delayed"}',
        ),
        ("/kue/jobs/0..1/up", b'{"error":"unknown order \'up\': one of asc, desc"}'),
        ("/kue/jobs/failed/0..1/up", b'{"error":"unknown order \'up\': one of asc, desc"}'),
    ],
)
def test_an_unknown_state_or_order_is_400(client, path, body):
    assert_json(client.get(path), 400, body)


# ------------------------------------------------------------------ POST


def test_post_one_job_with_kue_s_options(client, connection):
    job = {"type": TYPE, "data": {"to": "tj"}, "options": {"attempts": 5, "priority": "high"}}
    assert_json(client.post("/kue/job", json=job), 200, b'{"message":"job created","id":1}')
    assert connection.lrange(f"rq:queue:{TYPE}:high", 0, -1) == [b"1"]
    assert connection.hget("rq:job:1", "retries_left") == b"4"
    shown = lookup.get_job(connection, "1")
    assert (shown["priority"], shown["options"]) == (-10, {"priority": "high", "attempts": 5})
    assert connection.xrange(f"job_queue:events:{TYPE}")[0][1] == {
        b"job": b"1",
        b"event": b"created",
    }


def test_kue_s_milliseconds_become_seconds(client, connection):
    options = {
        "delay": 86_400_000,
        "ttl": 1500,
        "attempts": 3,
        "backoff": {"type": "exponential", "delay": 2000},
        "removeOnComplete": True,
    }
    before = time.time()
    response = client.post("/kue/job", json={"type": TYPE, "data": {}, "options": options})
    after = time.time()
    assert_json(response, 200, b'{"message":"job created","id":1}')
    due = connection.zscore(f"rq:scheduled:{TYPE}", "1")
    assert before + 86_400 <= due <= after + 86_400
    stored = connection.hgetall("rq:job:1")
    assert (stored[b"timeout"], stored[b"result_ttl"]) == (b"2", b"0")  # whole seconds
    # Kue's exponential backoff, 2 s: waits of 1 s and 3 s (RQ's: a second more, whole)
    assert json.loads(stored[b"retry_intervals"]) == [2, 4]
    shown = lookup.get_job(connection, "1")
    assert (shown["delay"], shown["ttl"], shown["state"]) == ("86400000", "2000", "delayed")
    assert shown["options"] == {
        "delay": 86400.0,
        "attempts": 3,
        "backoff": {"type": "exponential", "delay": 2.0},
        "ttl": 1.5,
        "remove_on_complete": True,
    }


def test_post_an_array_creates_every_good_job_and_says_why_the_others_failed(client, connection):
    response = client.post(
        "/kue/job",
        json=[
            {"type": TYPE, "data": {"to": "a"}},
            {"type": TYPE, "data": {"to": "b"}, "options": {"priority": "urgent"}},
            {"data": {"to": "c"}},
            {"type": "sms", "data": {"to": "d"}, "options": {"delay": 1000}},
        ],
    )
    # As Kue's: the array in order, and the status of the first element that failed.
    assert_json(
        response,
        400,
        b'[{"message":"job created","id":1},'
        b'{"error":"priority: one of low, normal, medium, high, critical, or a whole '
        b"number; not 'urgent'\"},"
        b'{"error":"Must provide job type"},'
        b'{"message":"job created","id":2}]',
    )
    assert sorted(connection.keys("rq:job:*")) == [b"rq:job:1", b"rq:job:2"]
    assert connection.lrange(f"rq:queue:{TYPE}", 0, -1) == [b"1"]
    assert connection.zrange("rq:scheduled:sms", 0, -1) == [b"2"]


def test_post_an_array_of_good_jobs(client):
    jobs = [{"type": TYPE, "data": {"to": "a"}}, {"type": TYPE}]
    assert_json(
        client.post("/kue/job", json=jobs),
        200,
        b'[{"message":"job created","id":1},{"message":"job created","id":2}]',
    )


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (
            b"nope",
            "Bad JSON: Expecting value: line 1 column 1 (char 0)",
        ),
        (
            b"3",
            "A job is an object with type, data, options; not 3",
        ),
        (
            {"data": {}},
            "Must provide job type",
        ),
        (
            {"type": "", "data": {}},
            "Must provide job type",
        ),
        (
            {"type": 5},
            "type: a name, not 5 (a priority goes in options)",
        ),
        (
            {"type": f"{TYPE}:high"},
            f"type: a name, not '{TYPE}:high' (a priority goes in options)",
        ),
        (
            {"type": TYPE, "option": {}},
            "option: no such field; the fields: type, data, options",
        ),
        (
            {"type": TYPE, "options": []},
            "options: an object of Kue's options, not []",
        ),
        (
            {"type": TYPE, "options": {"searchKeys": ["to"]}},
            f"searchKeys: no such option; the options: {OPTIONS}",
        ),
        (
            {"type": TYPE, "options": {"delay": "1d"}},
            "delay: a number of milliseconds, not '1d'",
        ),
        (
            {"type": TYPE, "options": {"delay": -1}},
            "delay: must be at least 0, not -1",
        ),
        (
            {"type": TYPE, "options": {"ttl": 0}},
            "ttl: must be above 0, not 0",
        ),
        (
            {"type": TYPE, "options": {"attempts": 0}},
            "attempts: a whole number of at least 1, not 0",
        ),
        (
            {"type": TYPE, "options": {"removeOnComplete": 1}},
            "removeOnComplete: true or false, not 1",
        ),
        (
            {"type": TYPE, "options": {"backoff": {"type": "linear"}}},
            "backoff: type must be one of fixed, exponential, not 'linear'",
        ),
        (
            {"type": TYPE, "options": {"backoff": {"delay": -5}}},
            "backoff delay: must be at least 0, not -5",
        ),
        (
            {"type": TYPE, "options": {"backoff": {"wait": 5}}},
            "wait: no such backoff field; the backoff fields: type, delay, maxDelay",
        ),
        (
            {"type": TYPE, "options": {"backoff": 5}},
            "backoff: true, or an object with a type; not 5",
        ),
    ],
)
def test_a_bad_job_is_400_naming_what_is_wrong_and_nothing_is_queued(
    client, connection, body, error
):
    if isinstance(body, bytes):
        response = client.post("/kue/job", data=body, content_type="application/json")
    else:
        response = client.post("/kue/job", json=body)
    assert_json(response, 400, compact({"error": error}))
    assert connection.keys("*") == []


def test_nothing_to_create_is_204(client, connection):
    for body in ({}, []):
        response = client.post("/kue/job", json=body)
        assert (response.status_code, response.data) == (204, b"")
    assert connection.keys("*") == []


def test_null_options_are_not_given(client, connection):
    job = {"type": TYPE, "data": None, "options": {"delay": None, "priority": None}}
    assert_json(client.post("/kue/job", json=job), 200, b'{"message":"job created","id":1}')
    assert lookup.get_job(connection, "1")["data"] == {}  # Kue's default data
    assert connection.lrange(f"rq:queue:{TYPE}", 0, -1) == [b"1"]


# ------------------------------------------------------------------ DELETE


def test_delete_removes_the_job_and_tells_its_stream(client, connection, jobs):
    assert_json(client.delete("/kue/job/2"), 200, b'{"message":"job 2 removed"}')
    assert not connection.exists("rq:job:2", "rq:results:2")
    assert connection.zrange(f"rq:failed:{TYPE}", 0, -1) == []
    last = connection.xrevrange(f"job_queue:events:{TYPE}", count=1)[0][1]
    assert last == {b"job": b"2", b"event": b"remove"}
    assert_json(client.delete("/kue/job/2"), 404, b'{"error":"job \\"2\\" doesnt exist"}')
    assert_json(client.get("/kue/job/2"), 404, b'{"error":"job \\"2\\" doesnt exist"}')


# ------------------------------------------------------------------ JSON, always


@pytest.mark.parametrize(
    ("method", "path", "status", "body", "allow"),
    [
        ("GET", "/kue/nothing", 404, b'{"error":"Not Found"}', None),
        ("GET", "/kue", 404, b'{"error":"Not Found"}', None),
        ("GET", "/kue/", 404, b'{"error":"Not Found"}', None),
        ("GET", "/kue/jobs/a..b", 404, b'{"error":"Not Found"}', None),
        ("POST", "/kue/stats", 405, b'{"error":"Method Not Allowed"}', "GET, HEAD, OPTIONS"),
        ("PUT", "/kue/job/1", 405, b'{"error":"Method Not Allowed"}', "DELETE, GET, HEAD, OPTIONS"),
        ("GET", "/kue/job", 405, b'{"error":"Method Not Allowed"}', "OPTIONS, POST"),
    ],
)  # fmt: skip
def test_any_other_route_or_method_is_json(client, method, path, status, body, allow):
    response = client.open(path, method=method)
    assert_json(response, status, body)
    assert response.headers.get("Allow") == allow


def test_options_say_what_a_route_takes(client):
    response = client.options("/kue/job/1")
    assert (response.status_code, response.headers["Allow"]) == (204, "DELETE, GET, HEAD, OPTIONS")


def test_redis_down_is_503_json(monkeypatch):
    client = app_of(monkeypatch, f"redis://127.0.0.1:{free_port()}/0").test_client()
    for response in (
        client.get("/kue/stats"),
        client.get("/kue/job/1"),
        client.get("/kue/job/1/log"),
        client.get("/kue/jobs/0..1"),
        client.get("/kue/jobs/failed/0..1"),
        client.delete("/kue/job/1"),
        client.post("/kue/job", json={"type": TYPE}),
    ):
        assert_json(response, 503, b'{"error":"Redis unavailable"}')
    assert_json(
        client.post("/kue/job", json=[{"type": TYPE}, {}]),
        503,
        b'[{"error":"Redis unavailable"},{"error":"Must provide job type"}]',
    )


def test_an_unexpected_error_is_500_json_not_a_traceback(client, connection, monkeypatch):
    connection.set("rq:queues", "not a set")  # WRONGTYPE for RQ's SMEMBERS
    assert_json(client.get("/kue/stats"), 500, b'{"error":"Internal Server Error"}')

    def broken(*args: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(lookup, "get_job", broken)
    assert_json(client.get("/kue/job/1"), 500, b'{"error":"Internal Server Error"}')


# ------------------------------------------------------------------ beside rq-dashboard


KUE_ROUTES = [
    ("GET", "/kue/stats", "kue.stats"),
    ("GET", "/kue/job/1", "kue.job"),
    ("GET", "/kue/job/1/log", "kue.job_log"),
    ("DELETE", "/kue/job/1", "kue.remove"),
    ("POST", "/kue/job", "kue.create"),
    ("GET", "/kue/jobs/0..2", "kue.jobs"),
    ("GET", "/kue/jobs/0..2/desc", "kue.jobs"),
    ("GET", "/kue/jobs/failed/0..2", "kue.jobs_in_state"),
    ("GET", "/kue/jobs/failed/0..2/desc", "kue.jobs_in_state"),
    ("GET", "/kue/jobs/email/failed/0..2", "kue.jobs_of_type"),
    ("GET", "/kue/jobs/email/failed/0..2/desc", "kue.jobs_of_type"),
    # rq-dashboard's own actions, under /kue: the API's (not found), never the dashboard's
    ("POST", "/kue/job/1/delete", "kue.unknown"),
    ("POST", "/kue/queue/email/failed/empty", "kue.unknown"),
    ("GET", "/kue/0/data/queues.json", "kue.unknown"),
]


@pytest.mark.parametrize("prefix", ["", "/rq"])
def test_no_route_of_rq_dashboard_takes_a_path_of_the_api(monkeypatch, redis_url, prefix):
    app = app_of(monkeypatch, redis_url)
    if prefix:  # as 100_seat.py serves them
        app = Flask(__name__)
        dashboard.add_dashboard(app, prefix, None)
    routes = app.url_map.bind("localhost")
    assert [routes.match(f"{prefix}{path}", method)[0] for method, path, _ in KUE_ROUTES] == [
        endpoint for _, _, endpoint in KUE_ROUTES
    ]
    theirs = [rule.rule for rule in app.url_map.iter_rules() if rule.endpoint.startswith("rq_")]
    assert theirs and not [rule for rule in theirs if rule.startswith(f"{prefix}/kue")]
    assert routes.match(f"{prefix}/job/1/delete", "POST")[0] == "rq_dashboard.delete_job_view"


def test_with_credentials_the_api_asks_for_them_and_changes_nothing_without(
    monkeypatch, redis_url, connection, jobs
):
    client = app_of(monkeypatch, redis_url, **CREDENTIALS).test_client()
    for headers in ({}, basic(USER, "wrong")):
        for method, path, _ in KUE_ROUTES:
            response = client.open(path, method=method, headers=headers, json={"type": TYPE})
            assert_json(response, 401, b'{"status":"Unauthorized"}')
            assert response.headers["WWW-Authenticate"] == 'Basic realm="RQ dashboard"'
    assert connection.get("job_queue:ids") == b"5"  # nothing created, nothing removed
    assert connection.exists("rq:job:1")
    allowed = client.get("/kue/stats", headers=basic(USER, PASSWORD))
    assert allowed.status_code == 200
    removed = client.delete("/kue/job/1", headers=basic(USER, PASSWORD))
    assert_json(removed, 200, b'{"message":"job 1 removed"}')


def seat_app(monkeypatch, redis_url: str, client: redis.Redis | None = None, **env: str):
    monkeypatch.setenv("REDIS_URL", redis_url)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return importlib.import_module("100_seat").create_app(client)


def test_the_seat_app_serves_it_under_rq_kue_on_its_own_client(monkeypatch, connection, jobs):
    # REDIS_URL names a server that is not there: the API reads the app's own client.
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    app = seat_app(monkeypatch, nowhere, connection, **CREDENTIALS)
    try:
        client = app.test_client()
        assert_json(client.get("/rq/kue/stats"), 401, b'{"status":"Unauthorized"}')
        stats = client.get("/rq/kue/stats", headers=basic(USER, PASSWORD))
        assert stats.get_json()["inactiveCount"] == 2
    finally:
        app.extensions["reservations"].close()


def test_the_seat_app_serves_no_api_without_credentials(monkeypatch, redis_url):
    for name in CREDENTIALS:
        monkeypatch.delenv(name, raising=False)
    app = seat_app(monkeypatch, redis_url)
    try:
        assert_json(app.test_client().get("/rq/kue/stats"), 404, b'{"status":"Not Found"}')
    finally:
        app.extensions["reservations"].close()


def test_python_dashboard_py_serves_it_at_kue(redis_url, start_script, connection, jobs):
    port = free_port()
    script = start_script("dashboard.py", redis_url, DASHBOARD_PORT=str(port))
    wait_for(script, port)
    reply = request(port, "/kue/stats")
    assert (reply.status, reply.content_type) == (200, "application/json")
    assert reply.body == (
        b'{"inactiveCount":2,"completeCount":1,"activeCount":0,"failedCount":1,'
        b'"delayedCount":1,"workTime":0}'
    )
