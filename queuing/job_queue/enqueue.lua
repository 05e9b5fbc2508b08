-- KEYS: ids, queue, queues, events, scheduled, priorities
-- ARGV: events_kept, count, job_key, run_at, priority
-- Queue `count` jobs: one id each from the counter `ids`, the job's hash as RQ's
-- Job.to_dict() makes it, the id pushed on `queue` (and the queue added to RQ's set of
-- queues, `queues`) and a `created` event on the stream `events` for its creator.
-- job_key: RQ's job key, a format string (string.format(job_key, id)).
-- run_at: '' to queue the jobs now, else when they are due (seconds since the epoch):
-- they wait in RQ's registry of scheduled jobs, `scheduled`, as RQ's enqueue_at puts them.
-- priority: '' for the normal level, else the level of `queue`, recorded in the sorted
-- set `priorities` for the queue's workers.
-- ARGV from REST_AT on: the number of fields of each job's flat hash, then the hashes
-- one after another.
-- Returns the first id and the stream position of its event.

local n = tonumber(count)
local first = redis.call('INCRBY', ids, n) - n + 1
local at, first_event = REST_AT + n, nil
for j = 1, n do
  local id = tostring(first + j - 1)
  local length = tonumber(ARGV[REST_AT + j - 1])
  redis.call('HSET', string.format(job_key, id), unpack(ARGV, at, at + length - 1))
  at = at + length
  if run_at == '' then
    redis.call('RPUSH', queue, id)
  else
    redis.call('ZADD', scheduled, run_at, id)
  end
  local event = redis.call('XADD', events, 'MAXLEN', '~', events_kept, '*',
    'job', id, 'event', 'created')
  first_event = first_event or event
end
redis.call('SADD', queues, queue)
if priority ~= '' then redis.call('ZADD', priorities, priority, priority) end
return {first, first_event}
