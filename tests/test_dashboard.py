"""The dashboard (dashboard.py, and 100_seat.py's /rq): safe by default, and what it
shows in a real browser (headless Chromium from Debian's packages) of the jobs the
project's own scripts make."""

import base64
import importlib
import os
import shutil
from pathlib import Path

import pytest
import redis
from playwright.sync_api import sync_playwright
from rq import Queue
from rq.job import Job

from harness.net import free_port
from harness.redis_server import PROJECT
from queuing.job_queue import JobCreator, JobWorker
from tests.scripts import run_script
from tests.served_apps import get, request, start_app, wait_for

USER, PASSWORD = "ops", "s3cret-enough"
CREDENTIALS = {"RQ_DASHBOARD_USERNAME": USER, "RQ_DASHBOARD_PASSWORD": PASSWORD}
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# As README's walkthrough leaves the queues: what the browser must show for each
# (queued, deferred, scheduled, started, finished, failed, canceled).
EXPECTED_ROWS = {
    "push_notification_code": ["1", "0", "0", "0", "0", "0", "0"],
    "push_notification_code_2": ["0", "0", "0", "0", "9", "2", "0"],
    "push_notification_code_3": ["1", "0", "0", "0", "0", "0", "0"],
    "reserve_seat": ["3", "0", "0", "0", "0", "0", "0"],
}
SCREENSHOT = PROJECT / "docs" / "dashboard.png"  # README's, written when asked (see below)


def basic(username: str, password: str) -> dict:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.fixture
def dashboard(redis_url, start_script):
    """`python dashboard.py` on a free port, with credentials; its port."""
    port = free_port()
    script = start_script("dashboard.py", redis_url, DASHBOARD_PORT=str(port), **CREDENTIALS)
    wait_for(script, port)
    return port


def failed_job(redis_url: str) -> Job:
    """A failed job, as 7_job_processor fails a blacklisted number's."""
    connection = redis.Redis.from_url(redis_url)
    queue = Queue("push_notification_code_2", connection=connection)
    data = {"phoneNumber": "4153518780", "message": "This is the code 1234"}
    job = JobCreator(queue).create("7_job_processor.notification_job", data)
    JobWorker([queue], connection=connection).work(burst=True, logging_level="ERROR")
    return Job.fetch(job.id, connection=connection)


# ------------------------------------------------------------------ safe by default


def set_environment(monkeypatch, redis_url: str, **env: str) -> None:
    for name, value in {"REDIS_URL": redis_url, **env}.items():
        monkeypatch.setenv(name, value)


def dashboard_client(monkeypatch, redis_url: str, **env: str):
    set_environment(monkeypatch, redis_url, **env)
    return importlib.import_module("dashboard").create_app().test_client()


@pytest.mark.parametrize(
    "headers",
    [{}, basic(USER, "wrong"), basic("wrong", PASSWORD), {"Authorization": "Bearer x"}],
    ids=["none", "wrong password", "wrong user", "not basic"],
)
def test_without_the_right_credentials_401_and_nothing_changes(
    monkeypatch, redis_url, redis_client, headers
):
    job = failed_job(redis_url)
    client = dashboard_client(monkeypatch, redis_url, **CREDENTIALS)
    for method, path in [
        ("get", "/"),
        ("get", "/0/data/queues.json"),
        ("post", f"/job/{job.id}/delete"),
        ("post", f"/job/{job.id}/requeue"),
        ("get", "/requeue/push_notification_code_2"),
        ("post", "/queue/push_notification_code_2/failed/empty"),
    ]:
        response = getattr(client, method)(path, headers=headers)
        assert response.status_code == 401, path
        assert response.headers["WWW-Authenticate"] == 'Basic realm="RQ dashboard"'
    assert job.get_status(refresh=True) == "failed"  # neither deleted nor requeued
    assert redis_client.zcard("rq:failed:push_notification_code_2") == 1


def test_with_them_it_shows_the_queues(monkeypatch, redis_url):
    failed_job(redis_url)
    client = dashboard_client(monkeypatch, redis_url, **CREDENTIALS)
    response = client.get("/0/data/queues.json", headers=basic(USER, PASSWORD))
    assert response.status_code == 200
    [queue] = response.get_json()["queues"]
    assert (queue["name"], queue["failed_job_registry_count"]) == ("push_notification_code_2", 1)


def test_it_listens_on_127_0_0_1_by_default(redis_url, start_script):
    port = free_port()
    script = start_script("dashboard.py", redis_url, DASHBOARD_PORT=str(port))
    assert script.next_line() == (f"RQ dashboard of {redis_url} on http://127.0.0.1:{port}/")
    wait_for(script, port)
    assert request(port, "/").status == 200  # on loopback, without credentials too


@pytest.mark.slow  # runs the script
def test_elsewhere_it_will_not_listen_without_credentials(redis_url):
    result = run_script("dashboard.py", redis_url, DASHBOARD_HOST="0.0.0.0")
    assert result.returncode == 1
    assert result.stderr == (
        "Not listening on 0.0.0.0 without credentials: set RQ_DASHBOARD_USERNAME and "
        "RQ_DASHBOARD_PASSWORD, or keep DASHBOARD_HOST at 127.0.0.1\n"
    )


def seat_app(monkeypatch, redis_url: str, **env: str):
    set_environment(monkeypatch, redis_url, **env)
    return importlib.import_module("100_seat").create_app()


def test_the_seat_app_serves_no_dashboard_without_credentials(monkeypatch, redis_url):
    app = seat_app(monkeypatch, redis_url)
    try:
        response = app.test_client().get("/rq/")
        assert (response.status_code, response.data) == (404, b'{"status":"Not Found"}')
    finally:
        app.extensions["reservations"].close()


def test_the_seat_app_serves_it_under_rq_behind_its_credentials(monkeypatch, redis_url):
    app = seat_app(monkeypatch, redis_url, **CREDENTIALS)
    try:
        client = app.test_client()
        assert client.get("/rq/").status_code == 401
        assert client.get("/rq/", headers=basic(USER, "nope")).status_code == 401
        page = client.get("/rq/", headers=basic(USER, PASSWORD))
        assert page.status_code == 200
        assert b"<title>RQ dashboard</title>" in page.data
        assert client.get("/available_seats").status_code == 200  # the app's own: no auth
    finally:
        app.extensions["reservations"].close()


def test_the_seat_app_s_dashboard_reads_the_app_s_own_client(monkeypatch, redis_url):
    # REDIS_URL names a server that is not there: what /rq shows comes from the client
    # the app was given.
    client = redis.Redis.from_url(redis_url)
    Queue("push_notification_code", connection=client).enqueue("6_job_processor.notification_job")
    set_environment(monkeypatch, f"redis://127.0.0.1:{free_port()}/0", **CREDENTIALS)
    app = importlib.import_module("100_seat").create_app(client)
    try:
        http = app.test_client()
        queues = http.get("/rq/0/data/queues.json", headers=basic(USER, PASSWORD))
        assert queues.status_code == 200
        assert [(q["name"], q["count"]) for q in queues.json["queues"]] == [
            ("push_notification_code", 1)
        ]
        other = http.get("/rq/1/data/queues.json", headers=basic(USER, PASSWORD))
        assert (other.status_code, other.data) == (404, b'{"status":"Not Found"}')
    finally:
        app.extensions["reservations"].close()


# ------------------------------------------------------------------ in a real browser


def make_the_walkthrough_jobs(redis_url: str, start_script) -> None:
    """README's walkthrough: 7_job_creator's 11 jobs worked by 7_job_processor, the
    jobs of 6_job_creator and 8_job.py still waiting, three reservations of 100_seat.py."""
    creator = start_script("7_job_creator.py", redis_url)
    creator.read_lines(11)
    processor = start_script("7_job_processor.py", redis_url)
    assert creator.wait() == 0
    processor.interrupt()
    assert processor.wait() == 0
    for name in ("6_job_creator.py", "8_job.py"):
        waiting = start_script(name, redis_url)
        assert waiting.next_line().startswith("Notification job created: ")
    _, port = start_app(start_script, "100_seat.py", redis_url)
    assert [get(port, "/reserve_seat") for _ in range(3)] == [
        b'{"status":"Reservation in process"}'
    ] * 3


def launch_chromium(playwright):
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"No Chromium at {CHROMIUM}: apt-get install chromium (as .ci/run does), "
            "or set CHROMIUM",
            pytrace=False,
        )
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
    flags += ["--disable-component-update", "--disable-sync", "--no-first-run"]
    return playwright.chromium.launch(executable_path=CHROMIUM, args=flags)


@pytest.mark.browser
def test_a_browser_shows_the_queues_their_counts_and_a_job_s_progress(
    redis_url, start_script, dashboard, tmp_path
):
    make_the_walkthrough_jobs(redis_url, start_script)
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        context = browser.new_context(
            http_credentials={"username": USER, "password": PASSWORD},
            viewport={"width": 1400, "height": 640},
        )
        page = context.new_page()
        page.goto(f"http://127.0.0.1:{dashboard}/")
        page.wait_for_selector("tr[data-role=queue]")
        rows = {}
        for row in page.query_selector_all("tr[data-role=queue]"):
            cells = [cell.inner_text().strip() for cell in row.query_selector_all("td")]
            rows[cells[0]] = cells[1:]
        screenshot = tmp_path / "dashboard.png"
        page.screenshot(path=str(screenshot))
        if os.environ.get("UPDATE_DASHBOARD_SCREENSHOT"):  # how README's picture is made
            shutil.copy(screenshot, SCREENSHOT)

        with redis.Redis.from_url(redis_url) as client:
            finished = client.zrange("rq:finished:push_notification_code_2", 0, 0)[0].decode()
        page.goto(f"http://127.0.0.1:{dashboard}/0/view/job/{finished}")
        page.wait_for_selector("text=Metadata")
        job_page = page.inner_text("body")
        browser.close()

    assert rows == EXPECTED_ROWS
    assert screenshot.stat().st_size > 10_000
    assert '"progress": 50' in job_page  # job_queue's report_progress, in the job's meta


@pytest.mark.parametrize("when", ["as it says where", "once it listens"])
def test_sigterm_stops_it_cleanly(redis_url, start_script, when):
    port = free_port()
    script = start_script("dashboard.py", redis_url, DASHBOARD_PORT=str(port))
    # Its line says it takes SIGTERM as a stop; werkzeug's server is not serving yet.
    assert script.next_line() == f"RQ dashboard of {redis_url} on http://127.0.0.1:{port}/"
    if when == "once it listens":
        wait_for(script, port)
    script.terminate()
    assert script.wait() == 0
    script.assert_no_traceback()
