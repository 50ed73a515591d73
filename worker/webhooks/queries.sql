-- The webhook outbox's statements (worker/webhooks/store.py), on the webhook_* columns that
-- sql/002_webhook_deliveries.sql adds to video_jobs. Named blocks, as in queue/queries.sql.

-- webhook_claim --
-- Take one job's webhook delivery for `lease` seconds, so one replica at a time delivers it.
update public.video_jobs
set webhook_attempts = webhook_attempts + 1,
    webhook_next_at = now() + make_interval(secs => %(lease)s)
where id = %(id)s and webhook_url is not null and webhook_delivered_at is null
  and status in ('completed', 'failed', 'cancelled')
  and webhook_attempts < %(max_rounds)s
  and (webhook_next_at is null or webhook_next_at <= now())
returning id, status, webhook_url, video_url, thumbnail_url, result, error, completed_at,
          webhook_attempts;

-- webhook_delivered --
update public.video_jobs
set webhook_delivered_at = now(), webhook_next_at = null, webhook_error = null
where id = %(id)s;

-- webhook_failed --
-- A round failed. A final failure (an address the guard refuses, a bad WEBHOOK_SECRET, a 410)
-- uses up the rounds, so no sweep tries it again; otherwise the next round is scheduled.
update public.video_jobs
set webhook_error = %(error)s,
    webhook_attempts = case when %(final)s then greatest(webhook_attempts, %(max_rounds)s)
                            else webhook_attempts end,
    webhook_next_at = case when not %(final)s and webhook_attempts < %(max_rounds)s
                           then now() + make_interval(secs => %(delay)s) end
where id = %(id)s;

-- webhook_due --
-- Deliveries to retry, and ones whose first try never happened (the replica died first).
select id from public.video_jobs
where webhook_url is not null and webhook_delivered_at is null
  and status in ('completed', 'failed', 'cancelled')
  and webhook_attempts < %(max_rounds)s
  and (webhook_next_at <= now()
       or (webhook_next_at is null and completed_at < now() - interval '30 seconds'
           and completed_at > now() - interval '3 days'))
order by webhook_next_at nulls first
limit %(limit)s;
