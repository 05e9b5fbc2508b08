-- KEYS: registry
-- ARGV: count, job_key, result_key, executions_key, dependents_key, dependencies_key
-- Keep the last `count` jobs of RQ's registry of finished (or failed) jobs of a queue,
-- `registry`, as BullMQ's removeOnComplete {count} keeps them: those before them (the
-- lowest scores: RQ scores an entry by when it expires) are deleted with their keys, as
-- RQ's Job.delete deletes a job that ended: its hash, results and executions, its
-- dependents' and dependencies' sets. The *_key arguments: RQ's keys, format strings of
-- a job's id. Returns how many were deleted.

local excess = redis.call('ZCARD', registry) - tonumber(count)
if excess <= 0 then return 0 end
local ids = redis.call('ZRANGE', registry, 0, excess - 1)
for _, id in ipairs(ids) do
  redis.call('DEL', string.format(job_key, id), string.format(result_key, id),
    string.format(executions_key, id), string.format(dependents_key, id),
    string.format(dependencies_key, id))
  redis.call('ZREM', registry, id)
end
return #ids
