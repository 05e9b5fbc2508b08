-- KEYS: job, events
-- ARGV: events_kept, job_id, status, event, detail, final_statuses
-- A job's end, written once: its status and its end event in one step, unless it has
-- ended already (its status is one of final_statuses, space-separated, or it is gone).
-- job: the job's hash; events: its queue's events stream; detail: the error of a failed
-- job, the result (JSON, or '') of a completed one.
-- INCLUDE: end_event.lua

local current = redis.call('HGET', job, 'status')
if not current or string.find(' ' .. final_statuses .. ' ', ' ' .. current .. ' ', 1, true) then
  return 0
end
redis.call('HSET', job, 'status', status)
append_end_event(events, events_kept, job_id, event, detail)
return 1
