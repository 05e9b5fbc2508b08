-- KEYS: job, events
-- ARGV: meta, events_kept
-- From inside a running job (report_progress, log_line): save its meta (what RQ's
-- job.save_meta() writes) and, if given, an event for its creator, unless the job is
-- gone (removed while it ran: its meta alone must not bring a hash back).
-- ARGV from REST_AT on: the event's fields and values, flat ('' for no event).
-- Returns 1 if saved, 0 if the job is gone.

if redis.call('EXISTS', job) == 0 then return 0 end
redis.call('HSET', job, 'meta', meta)
if #ARGV >= REST_AT + 1 then
  redis.call('XADD', events, 'MAXLEN', '~', events_kept, '*', unpack(ARGV, REST_AT))
end
return 1
