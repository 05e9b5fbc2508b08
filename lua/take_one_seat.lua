-- KEYS: seats, claims, job
-- ARGV: job_id
-- 100_seat.py: job `job_id` takes one seat, in one step (reading the seats and writing
-- them back in two steps, as the course did, lets two jobs both take the last seat), and
-- is recorded as holding it, so that the job run again does not take a second one.
-- seats: the seats left; claims: the ids of the jobs holding one; job: the job's hash.
-- A job that is not started any more (its worker stalled so long that it was called
-- abandoned, and failed) takes none: its end has been told already.
-- Returns the seats left, -1 when there was none, -2 for a job not started.

if redis.call('HGET', job, 'status') ~= 'started' then return -2 end
local left = tonumber(redis.call('GET', seats) or '0')
if redis.call('SISMEMBER', claims, job_id) == 1 then return left end
if left < 1 then return -1 end
redis.call('SADD', claims, job_id)
return redis.call('DECR', seats)
