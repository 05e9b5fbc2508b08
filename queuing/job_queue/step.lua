-- KEYS: worker, worker_executions, queue, intermediate, ended_events, taken_events, paused
-- ARGV: outcome, ended_id, ended_execution, ended_origin, ended_at, ended_at_seconds
-- ARGV: working_time, ttl, failure_ttl, record_failure, event, detail
-- ARGV: retry, retry_at, attempt, ended_meta
-- ARGV: take, take_id, fast_path, one_queue, heartbeat_margin, no_timeout_ttl
-- ARGV: monitoring_interval
-- ARGV: execution, now, started_at, default_timeout, events_kept, queue_name, worker_name
-- ARGV: success_callbacks, failure_callbacks
-- ARGV: job_key, dependents_key, dependencies_key, result_key, execution_key
-- ARGV: executions_key, started_key, finished_key, failed_key
-- ARGV: queue_key, scheduled_key, all_queues
--
-- A worker's step: finish its last job, if any, then take the next one from the queue.
-- Finishing writes what RQ's handle_job_success / handle_job_failure and
-- cleanup_execution write; taking writes what its prepare_execution and
-- prepare_job_execution write, for a job the fast path covers (else the job is left in
-- the intermediate list for RQ's worker code, which takes it from there).
--
-- The keys: the worker's hash, the set of its executions, the queue to take from ('' with
-- nothing to take), that queue's intermediate list, the stream where the finished
-- job's end event goes, the stream where the taken job's `start` event goes, and the
-- queue's pause flag (job_queue's pause_queue: while it is set, nothing is taken).
-- The arguments, 1. the last job's outcome (all '' but ttl when there is none):
--   outcome: 'finished', 'failed', or ''; ended_id, ended_execution, ended_origin: its
--   job's id, its execution's id, its queue's name; ended_at: when it ended, as RQ
--   writes dates, ended_at_seconds: the same, whole seconds since the epoch;
--   working_time: seconds it ran, for the worker's total; ttl: of its result when
--   finished, of its failed-registry entry when failed; failure_ttl: its job's own
--   ('' for RQ's default); record_failure: '1' when a failed job's result and
--   failed-registry entry are written, as RQ's default exception handler does, '' when
--   the worker disables that handler; event: for its creator, 'completed', 'failed', or
--   '' (no callbacks); detail: the error of a failed one, the result (JSON, or '') of a
--   completed one.
--   A failed job with retries left (RQ's Retry; job_queue's `attempts`), as RQ's
--   Job.retry writes it: retry: 'back' or 'front' to queue it again at that end of
--   its queue, 'at' to schedule it at retry_at (whole seconds since the epoch, RQ's
--   ScheduledJobRegistry score), '' for a job not retried; attempt: the attempts made,
--   for its `failed attempt` event; ended_meta: its meta as RQ's job.save() writes it
--   ('' for none).
-- The arguments, 2. taking the next job:
--   take: 'pop' (the next on the queue), 'id' (the one take_id names) or '' (none);
--   fast_path: '1' to start here a job the step can do all of, '' to leave every job to
--   RQ's code (a worker whose RQ hooks were changed: JobWorker._may_take_fast_path);
--   one_queue: '1' to pop into the intermediate list (RQ's dequeue for a worker of one
--   queue, whose job RQ's own code then takes out of it), '' for a plain LPOP;
--   heartbeat_margin: seconds past its timeout, or past the heartbeat thread's next
--   renewal, before a job counts as abandoned; no_timeout_ttl: the worker's TTL while
--   it runs a job without a timeout (-1); monitoring_interval: seconds between two
--   renewals of the heartbeat thread (RQ's job_monitoring_interval); execution: the
--   new execution's id; now: seconds since the epoch, started_at: the same, as RQ
--   writes dates; default_timeout: of a job without its own; events_kept: the events
--   stream's approximate length; success_callbacks, failure_callbacks: the callback
--   names (space-separated) whose effect is the step's own end event (job_queue's).
-- The arguments, 3. RQ's keys, as RQ's classes build them (bookkeeping.rq_key_formats),
--   each a format string of a job's id (job_key, dependents_key, dependencies_key,
--   result_key, executions_key), of an execution's `<job id>:<id>` (execution_key)
--   or of a queue's name (started_key, finished_key, failed_key, queue_key,
--   scheduled_key); all_queues: the set of RQ's queue keys (Queue.redis_queues_keys).
-- ARGV from REST_AT on: the fields of the finished job's result, as RQ's Result stores
-- them.
-- INCLUDE: end_event.lua

local function expire_or_persist(key, ttl)
  if ttl == -1 then redis.call('PERSIST', key) else redis.call('EXPIRE', key, ttl) end
end

local function one_of(name, names)  -- names: space-separated
  return string.find(' ' .. names .. ' ', ' ' .. name .. ' ', 1, true) ~= nil
end

-- 1. Finish the last job.
local job, run = string.format(job_key, ended_id), ended_id .. ':' .. ended_execution
local current  -- the ended job's status, worker and dependency_ids, as stored
if outcome ~= '' then
  redis.call('SREM', worker_executions, run)
  -- A job ends once: if it is no longer started by this worker in this execution (its
  -- worker was cut off so long that it was called abandoned and failed; or this is an
  -- outcome sent again after a lost connection, JobWorker._write_again, which the
  -- server may have had all along), the outcome is dropped.
  current = redis.call('HMGET', job, 'status', 'worker_name', 'dependency_ids')
  if current[1] ~= 'started' or current[2] ~= worker_name
    or not redis.call('ZSCORE', string.format(started_key, ended_origin), run) then
    outcome = ''
  end
end
if outcome ~= '' then
  local ended_on, ttl = tonumber(ended_at_seconds), tonumber(ttl)
  local result = string.format(result_key, ended_id)
  local dependents_of_job = string.format(dependents_key, ended_id)
  local dependencies_of_job = string.format(dependencies_key, ended_id)
  -- EXPIRE of a key that does not exist changes nothing: the job's dependents set exists
  -- only while it has some (Redis drops an empty set), and its dependencies set only for
  -- a job RQ saved with dependency_ids (Job.register_dependency). Skipped then.
  local dependents = redis.call('SCARD', dependents_of_job)
  local has_dependencies = current[3] ~= false and current[3] ~= ''
  local function expire_with_sets(seconds)
    redis.call('EXPIRE', job, seconds)
    if dependents > 0 then redis.call('EXPIRE', dependents_of_job, seconds) end
    if has_dependencies then redis.call('EXPIRE', dependencies_of_job, seconds) end
  end
  local finished = string.format(finished_key, ended_origin)
  local executions = string.format(executions_key, ended_id)
  -- A failed job's result and failed-registry entry are what RQ's default exception
  -- handler writes (Job._handle_failure); without it, RQ saves only the status. A
  -- retried try records no failure either (handle_job_failure skips the handler).
  local recorded = outcome == 'finished' or (record_failure ~= '' and retry == '')
  if retry ~= '' then
    -- Job.retry: retries_left down by one, then RQ's job.save() writes the job as it
    -- is in memory: its status, the end of this try, and (queued again) enqueued_at and
    -- the queue's default timeout (Queue._prepare_for_queue); the job's meta as the
    -- worker holds it.
    local left = redis.call('HMGET', job, 'retries_left', 'timeout', 'ttl')
    local fields = {'last_heartbeat', ended_at, 'ended_at', ended_at,
      'retries_left', tonumber(left[1]) - 1}
    if retry == 'at' then
      table.insert(fields, 'status'); table.insert(fields, 'scheduled')
    else
      table.insert(fields, 'status'); table.insert(fields, 'queued')
      table.insert(fields, 'enqueued_at'); table.insert(fields, ended_at)
      if not left[2] then table.insert(fields, 'timeout'); table.insert(fields, default_timeout) end
    end
    if ended_meta ~= '' then table.insert(fields, 'meta'); table.insert(fields, ended_meta) end
    redis.call('HSET', job, unpack(fields))
    local job_ttl = tonumber(left[3] or '')
    if job_ttl and job_ttl > 0 then  -- Job.cleanup(ttl=job.ttl) in Queue._persist_job
      expire_with_sets(job_ttl)
    end
  elseif recorded then
    redis.call('HSET', job, 'last_heartbeat', ended_at, 'status', outcome, 'ended_at', ended_at)
  else
    redis.call('HSET', job, 'last_heartbeat', ended_at, 'status', outcome)
  end
  redis.call('DEL', string.format(execution_key, run))
  redis.call('ZREM', string.format(started_key, ended_origin), run)
  redis.call('ZREM', executions, ended_execution)
  if recorded then redis.call('XADD', result, 'MAXLEN', '~', 10, '*', unpack(ARGV, REST_AT)) end
  if outcome == 'finished' then
    redis.call('HINCRBY', worker, 'successful_job_count', 1)
    expire_or_persist(result, ttl)
    if ttl == -1 then
      redis.call('ZADD', finished, '+inf', ended_id)
    else
      redis.call('ZADD', finished, ttl < 0 and ttl or ended_on + ttl, ended_id)
    end
  else
    redis.call('HINCRBY', worker, 'failed_job_count', 1)
    if recorded then
      if failure_ttl ~= '' then expire_or_persist(result, tonumber(failure_ttl)) end
      redis.call('ZADD', string.format(failed_key, ended_origin),
        ttl < 0 and ttl or ended_on + ttl, ended_id)
    end
  end
  redis.call('HINCRBYFLOAT', worker, 'total_working_time', working_time)
  if recorded and ttl > 0 then expire_with_sets(ttl) end
  -- Kept for 0 seconds (result_ttl=0, failure_ttl=0): RQ deletes the job at once
  -- (Job.cleanup(0) -> Job.delete), its result and executions with it; a failed one stays
  -- named in the failed registry. One that has dependents is deleted once they are moved
  -- on (JobWorker._step), as RQ does.
  if recorded and ttl == 0 and dependents == 0 then
    redis.call('DEL', job, dependents_of_job, dependencies_of_job, result, executions)
    if outcome == 'finished' then redis.call('ZREM', finished, ended_id) end
  end
  if retry == 'at' then  -- Queue.schedule_job
    local queue_of_job = string.format(queue_key, ended_origin)
    redis.call('SADD', all_queues, queue_of_job)
    redis.call('ZADD', string.format(scheduled_key, ended_origin), retry_at, ended_id)
  elseif retry ~= '' then  -- Queue._enqueue_job(at_front=enqueue_at_front_on_retry)
    local queue_of_job = string.format(queue_key, ended_origin)
    redis.call(retry == 'front' and 'LPUSH' or 'RPUSH', queue_of_job, ended_id)
  end
  if event == 'failed attempt' then  -- job_queue's failure callback for a retried try
    redis.call('XADD', ended_events, 'MAXLEN', '~', events_kept, '*', 'job', ended_id,
      'event', event, 'error', detail, 'attempt', attempt)
  elseif event ~= '' then
    append_end_event(ended_events, events_kept, ended_id, event, detail)
  end
  -- A retried job's dependents wait for its last try (handle_job_failure).
  if dependents > 0 and retry == '' then return {'dependents'} end
end

-- 2. Take the next job: the one named, or the next on the queue.
if take == '' then return nil end
-- Idle, unless it runs other jobs still (a worker of several jobs at a time).
local function idle_unless_busy()
  if redis.call('SCARD', worker_executions) == 0 then
    redis.call('HSET', worker, 'state', 'idle')
  end
end
local id = take_id
if redis.call('EXISTS', paused) == 1 then
  if take == 'id' then  -- popped by the worker's wait: back to the head of the queue
    redis.call('LREM', intermediate, 1, id)
    redis.call('LPUSH', queue, id)
  end
  idle_unless_busy()
  return {'paused'}
end
-- A worker of one queue pops into the intermediate list (RQ's dequeue), from which the
-- step takes a job it starts. Inside one script no one sees the list meanwhile: the job
-- is popped, and pushed there (as LMOVE would) only if it is left to RQ's code.
if take == 'pop' then id = redis.call('LPOP', queue) end
if not id then
  idle_unless_busy()
  return nil
end
job = string.format(job_key, id)
local f = redis.call('HMGET', job, 'status', 'dependency_ids', 'retries_left', 'repeats_left',
  'rate_limit_key', 'group_id', 'webhooks', 'success_callback_name', 'failure_callback_name',
  'stopped_callback_name', 'timeout')
if not f[1] then  -- deleted meanwhile: RQ skips it too
  if take == 'id' then redis.call('LREM', intermediate, 1, id) end
  return {'gone'}
end
-- A job with retries left (f[3]) is covered: a failed try is queued or scheduled again
-- above, as RQ's Job.retry does.
local covered = fast_path ~= '' and f[1] == 'queued' and not f[2] and not f[4]
  and (f[5] or '') == '' and (f[6] or '') == '' and not f[7]
  and (f[8] == '' or one_of(f[8], success_callbacks))
  and (f[9] == '' or one_of(f[9], failure_callbacks)) and (f[10] or '') == ''
  and redis.call('SCARD', string.format(dependents_key, id)) == 0
if not covered then
  if take == 'pop' and one_queue ~= '' then redis.call('RPUSH', intermediate, id) end
  return {'rq', id, redis.call('HGETALL', job)}
end

-- The execution is alive until the heartbeat thread's first renewal, or the job's
-- timeout if that comes first, plus the margin (RQ's get_heartbeat_ttl: min(timeout,
-- job_monitoring_interval) + 60); the thread renews it while the job runs
-- (job_queue.JobWorker): a dead worker's job is found abandoned that much sooner. The
-- worker itself stays registered for the job's timeout, as RQ's SimpleWorker (a job
-- without one, -1: RQ's SimpleWorker's TTL).
local timeout = tonumber(f[11] or default_timeout)
local margin, interval = tonumber(heartbeat_margin), tonumber(monitoring_interval)
local worker_ttl = timeout == -1 and tonumber(no_timeout_ttl) or timeout + margin
local ttl = (timeout == -1 and interval or math.min(timeout, interval)) + margin
run = id .. ':' .. execution
local execution_record = string.format(execution_key, run)
local executions = string.format(executions_key, id)
redis.call('HSET', execution_record, 'id', execution, 'job_id', id,
  'created_at', now, 'last_heartbeat', now, 'worker_name', worker_name)
redis.call('EXPIRE', execution_record, ttl)
redis.call('ZADD', executions, math.floor(tonumber(now)) + ttl + 60, execution)
redis.call('EXPIRE', executions, ttl + 60)
redis.call('ZADD', string.format(started_key, queue_name), math.floor(tonumber(now)) + ttl, run)
redis.call('SADD', worker_executions, run)
redis.call('HSET', worker, 'state', 'busy', 'last_heartbeat', started_at)
redis.call('EXPIRE', worker, worker_ttl)
redis.call('EXPIRE', worker_executions, worker_ttl)
redis.call('HSET', job, 'last_heartbeat', started_at, 'status', 'started',
  'started_at', started_at, 'worker_name', worker_name)
redis.call('PERSIST', job)
if take == 'id' then redis.call('LREM', intermediate, 1, id) end
if f[8] and f[8] ~= '' then  -- a job_queue job: its creator may hear it start (Kue's `start`)
  redis.call('XADD', taken_events, 'MAXLEN', '~', events_kept, '*', 'job', id, 'event', 'start')
end
return {'fast', id, redis.call('HGETALL', job)}
