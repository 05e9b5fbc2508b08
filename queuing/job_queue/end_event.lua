-- The event that tells a job's creator how the job ended (job_queue's events stream),
-- written here once for every script that ends a job: included by end_once.lua,
-- cancel_unconfirmed.lua and step.lua. detail: the error of a failed job; the result of
-- a completed one, as JSON ('' for none).
local function append_end_event(events, events_kept, job_id, event, detail)
  if event == 'failed' then
    redis.call('XADD', events, 'MAXLEN', '~', events_kept, '*', 'job', job_id, 'event', event,
      'error', detail)
  elseif detail ~= '' then
    redis.call('XADD', events, 'MAXLEN', '~', events_kept, '*', 'job', job_id, 'event', event,
      'result', detail)
  else
    redis.call('XADD', events, 'MAXLEN', '~', events_kept, '*', 'job', job_id, 'event', event)
  end
end
