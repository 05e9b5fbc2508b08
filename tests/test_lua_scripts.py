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
