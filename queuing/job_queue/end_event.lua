-- The event that tells a job's creator how the job ended (job_queue's events stream),
-- written here once for every script that ends a job: included by end_once.lua,
-- cancel_unconfirmed.lua and step.lua.
local function append_end_event(events, events_kept, job_id, event, error)
  if event == 'failed' then
    redis.call('XADD', events, 'MAXLEN', '~', events_kept, '*', 'job', job_id, 'event', event,
      'error', error)
  else
    redis.call('XADD', events, 'MAXLEN', '~', events_kept, '*', 'job', job_id, 'event', event)
  end
end
