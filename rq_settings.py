"""RQ's own command line on REDIS_URL, a Sentinel URL included: `rq worker -c
rq_settings reserve_seat`, `rq info -c rq_settings`."""

from queuing.redis_connection import settings_for_rq

_settings = settings_for_rq()
REDIS_URL = _settings.get("REDIS_URL")  # a plain redis:// URL, else None
SENTINEL = _settings.get("SENTINEL")  # the sentinels and the primary's name, else None
