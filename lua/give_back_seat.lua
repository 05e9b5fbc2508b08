-- KEYS: seats, claims, job
-- ARGV: job_id
-- 100_seat.py: a job that ended failed holding a seat (its worker died after taking it)
-- gives it back. Only a failed one: its status is written with its end, in one step
-- (queuing/job_queue/end_once.lua). Returns 1 if a seat was given back, else 0.

if redis.call('HGET', job, 'status') ~= 'failed' then return 0 end
if redis.call('SREM', claims, job_id) == 0 then return 0 end
redis.call('INCR', seats)
return 1
