-- KEYS: scheduled, queue, queues, events
-- ARGV: now, enqueued_at, job_key, limit, events_kept, job_id
-- Promote delayed jobs (Kue's `promotion`): move the jobs of RQ's registry of scheduled
-- jobs of a queue, `scheduled`, to the queue, writing what RQ's scheduler writes (the
-- job's status `queued` and its enqueued_at; the id pushed on the queue, at its front for
-- a retry RQ was asked to put there) and a `promotion` event on the queue's `events`.
-- Which: the one job_id names ('' for none: those due at `now`, seconds since the epoch,
-- `limit` at most). A job moved by another promoter meanwhile is left alone: in one
-- script, a job is promoted once. A rate-limited job is left to RQ's scheduler.
-- enqueued_at: now, as RQ writes dates. job_key: RQ's job key, a format string.
-- Returns the ids promoted, and when the next job left is due ('' for none).

local ids
if job_id ~= '' then
  ids = {job_id}
else
  ids = redis.call('ZRANGEBYSCORE', scheduled, '-inf', now, 'LIMIT', 0, limit)
end
local promoted = {}
for _, id in ipairs(ids) do
  local job = string.format(job_key, id)
  local f = redis.call('HMGET', job, 'status', 'rate_limit_key', 'enqueue_at_front_on_retry',
    'ended_at')
  if (f[2] or '') == '' and redis.call('ZREM', scheduled, id) == 1 then
    if f[1] then
      redis.call('HSET', job, 'status', 'queued', 'enqueued_at', enqueued_at)
      if f[3] == '1' and f[4] then
        redis.call('LPUSH', queue, id)
      else
        redis.call('RPUSH', queue, id)
      end
      redis.call('XADD', events, 'MAXLEN', '~', events_kept, '*', 'job', id, 'event', 'promotion')
      promoted[#promoted + 1] = id
    end
  end
end
if #promoted > 0 then redis.call('SADD', queues, queue) end
local next_due = redis.call('ZRANGE', scheduled, 0, 0, 'WITHSCORES')[2] or ''
return {promoted, next_due}
