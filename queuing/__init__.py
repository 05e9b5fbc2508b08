"""The library behind the course's scripts: what they share, written once.

- `redis_connection`: clients from REDIS_URL (plain or Sentinel), the scripts' one-line
  errors, writes confirmed by a replica.
- `redis_scripts`: Lua scripts with named KEYS and ARGV.
- `web_app`: what the two Flask apps share (JSON answers, serving, Redis reads).
- `job_queue`: Kue's jobs on RQ (numbered ids, events to the creator, progress, the
  fast worker), a package of modules; `job_timeouts` and `rq_compat` serve it.
"""
