"""Course tasks 0 to 5, the Redis client scripts (0_redis_client.py to 5_publisher.py):
each script's exact lines against a real Redis, and how each behaves with no server, on
Ctrl-C and with a bad REDIS_URL. (queuing/redis_scripts.py: test_lua_scripts.py.)"""

import pytest

from harness.net import free_port
from harness.waiting import wait_until
from tests.scripts import run_script

pytestmark = pytest.mark.slow  # every test runs the scripts as processes

CONNECTED = "Redis client connected to the server"
SCHOOLS = (
    "{'Portland': '50', 'Seattle': '80', 'New York': '20', "
    "'Bogota': '20', 'Cali': '40', 'Paris': '2'}"
)
CHANNEL = "holberton school channel"
CONNECTING_SCRIPTS = [
    "0_redis_client.py",
    "1_redis_op.py",
    "2_redis_op_async.py",
    "4_redis_advanced_op.py",
    "5_subscriber.py",
    "5_publisher.py",
]


def refused(port: int, asynchronous: bool = False) -> str:
    """The line a script prints while nothing listens on the port (redis-py's text)."""
    reason = f"Connect call failed ('127.0.0.1', {port})" if asynchronous else "Connection refused"
    error = f"Error 111 connecting to 127.0.0.1:{port}. {reason}."
    return f"Redis client not connected to the server: {error}"


def assert_clean_run(result, expected_lines):
    assert result.stdout.splitlines() == expected_lines
    assert result.stderr == ""
    assert result.returncode == 0


def test_0_connects(redis_url):
    assert_clean_run(run_script("0_redis_client.py", redis_url), [CONNECTED])


def test_0_without_server_retries_until_ctrl_c(start_script):
    port = free_port()
    script = start_script("0_redis_client.py", f"redis://127.0.0.1:{port}/0")
    assert script.read_lines(3) == [refused(port)] * 3
    script.interrupt()
    assert script.wait() == 130
    assert script.stderr() == ""  # no traceback


def test_0_started_before_the_server_connects_once_it_is_up(start_script, make_redis_server):
    server = make_redis_server()
    script = start_script("0_redis_client.py", server.url)
    assert script.read_lines(2) == [refused(server.port)] * 2
    server.start()
    assert script.wait() == 0
    assert script.lines[-1] == CONNECTED
    assert set(script.lines[:-1]) == {refused(server.port)}
    assert script.stderr() == ""


@pytest.mark.parametrize("name", ["1_redis_op.py", "2_redis_op_async.py"])
def test_1_and_2_get_set_get(name, redis_url, redis_client):
    redis_client.set("Holberton", "School")
    assert_clean_run(run_script(name, redis_url), [CONNECTED, "School", "Reply: OK", "100"])
    assert redis_client.get("HolbertonSanFrancisco") == "100"


@pytest.mark.parametrize("name", ["1_redis_op.py", "2_redis_op_async.py"])
def test_1_and_2_print_none_for_a_missing_key(name, redis_url):
    assert_clean_run(run_script(name, redis_url), [CONNECTED, "None", "Reply: OK", "100"])


def test_4_stores_the_hash_and_a_second_run_finds_every_field(redis_url, redis_client):
    first = run_script("4_redis_advanced_op.py", redis_url)
    assert_clean_run(first, [CONNECTED] + ["Reply: 1"] * 6 + [SCHOOLS])
    second = run_script("4_redis_advanced_op.py", redis_url)
    assert_clean_run(second, [CONNECTED] + ["Reply: 0"] * 6 + [SCHOOLS])
    assert redis_client.hget("HolbertonSchools", "New York") == "20"


def test_4_reports_an_error_reply_in_one_line(redis_url, redis_client):
    redis_client.set("HolbertonSchools", "not a hash")
    result = run_script("4_redis_advanced_op.py", redis_url)
    assert result.stdout.splitlines() == [
        CONNECTED,
        "Error: WRONGTYPE Operation against a key holding the wrong kind of value",
    ]
    assert (result.returncode, result.stderr) == (1, "")


def subscribers(redis_client) -> int:
    return redis_client.pubsub_numsub(CHANNEL)[0][1]


def test_5_publisher_and_subscriber_together(redis_url, redis_client, start_script):
    subscriber = start_script("5_subscriber.py", redis_url)
    assert subscriber.next_line() == CONNECTED
    # It subscribes right after the connected line.
    wait_until(lambda: subscribers(redis_client) == 1, what="the subscriber on the channel")

    publisher = run_script("5_publisher.py", redis_url)
    assert_clean_run(
        publisher,
        [
            CONNECTED,
            "About to send Holberton Student #1 starts course",
            "About to send Holberton Student #2 starts course",
            "About to send KILL_SERVER",
            "About to send Holberton Student #3 starts course",
        ],
    )
    assert subscriber.wait() == 0
    assert subscriber.lines == [
        CONNECTED,
        "Holberton Student #1 starts course",
        "Holberton Student #2 starts course",
        "KILL_SERVER",
    ]
    assert subscriber.stderr() == ""
    assert subscribers(redis_client) == 0


def test_5_subscriber_ends_on_ctrl_c(redis_url, start_script):
    subscriber = start_script("5_subscriber.py", redis_url)
    assert subscriber.next_line() == CONNECTED
    subscriber.interrupt()
    assert subscriber.wait() == 130
    assert subscriber.stderr() == ""


@pytest.mark.parametrize("name", CONNECTING_SCRIPTS)
def test_without_server_each_script_retries_then_stops_on_ctrl_c(name, start_script):
    port = free_port()
    script = start_script(name, f"redis://127.0.0.1:{port}/0")
    line = refused(port, asynchronous=name in ("2_redis_op_async.py", "5_publisher.py"))
    assert script.read_lines(2) == [line, line]
    script.interrupt()
    assert script.wait() == 130
    assert script.stderr() == ""


@pytest.mark.parametrize("name", CONNECTING_SCRIPTS)
def test_a_bad_redis_url_gets_one_line(name):
    result = run_script(name, "localhost:6379")
    assert result.stdout == ""
    assert result.stderr == (
        "Invalid REDIS_URL 'localhost:6379': Redis URL must specify one of the "
        "following schemes (redis://, rediss://, unix://)\n"
    )
    assert result.returncode == 1


def test_5_subscriber_whose_server_goes_away_says_so_in_one_line(start_script, make_redis_server):
    server = make_redis_server().start()
    subscriber = start_script("5_subscriber.py", server.url)
    assert subscriber.next_line() == CONNECTED
    server.stop()
    assert subscriber.wait() == 1
    assert subscriber.rest[-1].startswith("Redis client not connected to the server: ")
    assert subscriber.stderr() == ""
