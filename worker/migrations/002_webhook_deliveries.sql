-- Webhook delivery state, kept on the job's row (an outbox without a second table): a delivery
-- that fails is retried later by any replica, even after the one that finished the job is gone.

alter table public.video_jobs
    add column if not exists webhook_attempts int not null default 0,
    add column if not exists webhook_next_at timestamptz,
    add column if not exists webhook_delivered_at timestamptz,
    add column if not exists webhook_error text;

create index if not exists video_jobs_webhook_due_idx
    on public.video_jobs (webhook_next_at)
    where webhook_url is not null and webhook_delivered_at is null
      and status in ('completed', 'failed', 'cancelled');
