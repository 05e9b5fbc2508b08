"""redis_scripts.LuaScript: keys and arguments passed by name, the script loaded where
Redis lacks it, and a bad argument refused before anything is sent."""

import pytest
import redis

from queuing.redis_scripts import LuaScript

ADD = LuaScript(
    keys=("counter",),
    argv=("amount",),
    body="return redis.call('INCRBY', counter, amount) + #ARGV - REST_AT + 1",
)


def test_a_script_runs_by_name_and_is_loaded_where_redis_lacks_it(redis_client):
    assert ADD.run(redis_client, {"counter": "c"}, {"amount": 2}) == 2
    redis_client.script_flush()  # as a restarted server without the script
    assert ADD.run(redis_client, {"counter": "c"}, {"amount": 3}, rest=["x", "y"]) == 7
    assert redis_client.get("c") == "5"


def test_a_missing_or_unknown_name_is_refused(redis_client):
    with pytest.raises(ValueError, match=r"\['amount', 'mount'\] missing or unknown"):
        ADD.run(redis_client, {"counter": "c"}, {"mount": 2})
    assert redis_client.exists("c") == 0


def test_an_argument_redis_cannot_take_is_refused_and_changes_nothing(redis_client):
    with pytest.raises(redis.DataError):
        ADD.run(redis_client, {"counter": "c"}, {"amount": None})
    assert redis_client.exists("c") == 0
    assert ADD.run(redis_client, {"counter": "c"}, {"amount": 1}) == 1  # the connection is fine


def test_a_script_in_a_file_names_its_keys_and_arguments_and_takes_its_includes(
    redis_client, tmp_path
):
    (tmp_path / "add.lua").write_text(
        "-- KEYS: counter\n"
        "-- ARGV: amount, times\n"
        "-- ARGV: label\n"
        "-- Adds amount times to counter; names the result with label.\n"
        "-- INCLUDE: twice.lua\n"
        "\n"
        "return label .. twice(redis.call('INCRBY', counter, amount * times))\n"
    )
    (tmp_path / "twice.lua").write_text("local function twice(n) return n * 2 end\n")
    script = LuaScript.from_file(tmp_path / "add.lua")
    assert (script.keys, script.argv) == (("counter",), ("amount", "times", "label"))
    keys, args = {"counter": "c"}, {"amount": 2, "times": 3, "label": "total "}
    assert script.run(redis_client, keys, args) == "total 12"
    assert redis_client.get("c") == "6"


def test_a_header_that_is_not_a_list_of_names_is_refused(tmp_path):
    (tmp_path / "bad.lua").write_text("-- KEYS: the stock of a product\nreturn 1\n")
    with pytest.raises(ValueError, match=r"bad\.lua: names, comma-separated"):
        LuaScript.from_file(tmp_path / "bad.lua")
