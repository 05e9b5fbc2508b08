-- KEYS: queue, job, canceled, events
-- ARGV: events_kept, job_id, now, error
-- A queued job that no replica confirmed in time, taken back if no worker has it yet: it
-- ends canceled (RQ's status and its canceled registry, `canceled`), and its creator
-- hears it failed.
-- INCLUDE: end_event.lua

if redis.call('LREM', queue, 1, job_id) == 0 then return 0 end
redis.call('HSET', job, 'status', 'canceled')
redis.call('ZADD', canceled, now, job_id)
append_end_event(events, events_kept, job_id, 'failed', error)
return 1
