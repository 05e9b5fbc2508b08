-- KEYS: worker, worker_executions, execution, wip, executions, job
-- ARGV: run, execution_id, now, last_heartbeat, ttl, worker_ttl
-- RQ's maintain_heartbeats (rq/worker/base.py), for a job that runs long: renew what says
-- the job's execution and its worker are alive. In one step, and only while that
-- execution is still there: the worker's step may have ended the job meanwhile, and
-- renewing then would bring its execution back.

if redis.call('EXISTS', execution) == 0 then return 0 end
local at, ttl = math.floor(tonumber(now)), tonumber(ttl)
redis.call('HSET', worker, 'last_heartbeat', last_heartbeat)
redis.call('EXPIRE', worker, worker_ttl)
redis.call('EXPIRE', worker_executions, worker_ttl)
redis.call('HSET', execution, 'last_heartbeat', now)
redis.call('EXPIRE', execution, ttl)
redis.call('ZADD', wip, 'XX', at + ttl, run)
redis.call('ZADD', executions, 'XX', at + ttl + 60, execution_id)
redis.call('EXPIRE', executions, ttl + 60)
if redis.call('EXISTS', job) == 1 then redis.call('HSET', job, 'last_heartbeat', last_heartbeat) end
return 1
