-- The queue's statements, one named block each (-- name --), loaded once by queries.py.
-- Values are always parameters. Time is the database's clock, never a replica's: every statement
-- of the runner's that reads the time (the transitions, heartbeat, enqueue, cancel, the operator
-- reads) takes `%(now)s` and reads `coalesce(%(now)s, now())` (as River does), so that tests can
-- pass a time instead of editing rows; the worker always passes null. The commands' own reads
-- (cleanup, `enqueue --wait`'s liveness check) and the statistics check read `now()` itself.
-- Each transition of a job (claim, complete, fail, cancel, release, rescue) is a function of
-- sql/006_transitions_v1.sql, called here and by the hot path alike; the claim is _v2, of
-- sql/007_fair_share.sql (users take turns, and each has a cap on running jobs).

-- claim --
-- One short autocommit statement: up to `limit` ready jobs, marked ours with a fresh lease
-- token, payload as text (and withheld when over MAX_PAYLOAD_BYTES). Users take turns, and
-- none gets past MAX_RUNNING_PER_USER (sql/007_fair_share.sql).
select id, payload, payload_bytes, attempts, max_attempts, lease_token, user_id, priority,
       webhook_url, created_at
from public.video_jobs_claim_v2(%(worker_id)s::text, %(limit)s::int,
                                %(max_payload_bytes)s::bigint, %(now)s::timestamptz);

-- heartbeat --
-- Renew the leases this replica holds. A job missing from the result has lost its lease.
update public.video_jobs j
set heartbeat_at = coalesce(%(now)s::timestamptz, now())
from unnest(%(ids)s::uuid[], %(tokens)s::uuid[]) as held(id, token)
where j.id = held.id and j.lease_token = held.token and j.status = 'processing'
returning j.id, j.cancel_requested_at is not null as cancel_requested;

-- progress --
update public.video_jobs
set progress = greatest(progress, %(progress)s),
    stage = coalesce(%(stage)s, stage),
    message = coalesce(%(message)s, message)
where id = %(id)s and lease_token = %(token)s and status = 'processing'
returning id;

-- complete --
-- No row when the lease was not this token's any more (the function's one row has a null id).
select id, webhook_url
from public.video_jobs_complete_v1(%(id)s::uuid, %(token)s::uuid, %(video_url)s::text,
                                   %(thumbnail_url)s::text, %(result)s::jsonb,
                                   %(now)s::timestamptz)
where id is not null;

-- fail --
-- A failed attempt: pending again after `backoff` seconds while attempts remain and `retry`
-- says the error may pass, otherwise failed for good.
select id, status, webhook_url
from public.video_jobs_fail_v1(%(id)s::uuid, %(token)s::uuid, %(error)s::text,
                               %(retry)s::boolean, %(backoff)s::float8, %(now)s::timestamptz);

-- cancelled --
-- The handler stopped because cancellation was requested.
select id, webhook_url
from public.video_jobs_cancel_v1(%(id)s::uuid, %(token)s::uuid, %(now)s::timestamptz);

-- release --
-- Shutdown: hand an unfinished job back, without using up an attempt.
select id from public.video_jobs_release_v1(%(id)s::uuid, %(token)s::uuid, %(now)s::timestamptz);

-- maintain --
-- One replica at a time rescues expired leases and ends cancelled pending jobs, in one
-- autocommit statement. The advisory lock (`lock`: MAINTENANCE_LOCK in postgres.py) is a
-- transaction lock (safe behind poolers) that lives only as long as this statement: a replica
-- frozen between round trips (SIGSTOP, a VM pause, a partition that keeps its socket open) can
-- never sit on it while the others wait, as it could when lock, rescue and cancel were three
-- statements of one transaction. `where (select locked from lock)` is decided once, before
-- either function runs: without the lock neither is called.
-- Under the same lock, pending jobs of users at the running cap are marked as held back (their
-- `message`), written only when it changes (video_jobs_mark_held_v1).
-- The first row says whether this replica got the lock and how many messages it changed; the
-- others are the jobs it ended.
with lock as materialized (
    select pg_try_advisory_xact_lock(%(lock)s::bigint) as locked
),
rescued as materialized (
    select r.id, r.status, r.webhook_url
    from public.video_jobs_rescue_v1(%(lease_seconds)s::float8, %(now)s::timestamptz) as r
    where (select locked from lock)
),
cancelled as materialized (
    select c.id, c.webhook_url
    from public.video_jobs_cancel_pending_v1(%(now)s::timestamptz) as c
    where (select locked from lock)
),
held as materialized (
    select public.video_jobs_mark_held_v1(%(now)s::timestamptz) as marked
    where (select locked from lock)
)
select 'lock' as kind, null::uuid as id, null::text as status, null::text as webhook_url,
       (select locked from lock) as locked, coalesce((select marked from held), 0) as marked
union all
select 'rescued', id, status, webhook_url, true, null from rescued
union all
select 'cancelled', id, 'cancelled', webhook_url, true, null from cancelled;

-- analyze_lock --
-- `lock`: ANALYZE_LOCK in postgres.py.
select pg_try_advisory_xact_lock(%(lock)s::bigint) as locked;

-- counts --
-- Jobs by status; finished statuses estimated on a large table (sql/005_operator_reads.sql).
select status, n, estimated from public.video_jobs_status_counts(%(exact_below)s);

-- user_backlogs --
-- The users with the most jobs pending (ids and counts only), with how many they have running.
-- Rows without user_id are left out: they are the backend's, not a user's. Walks pending rows
-- with a user (at most MAX_PENDING_PER_USER each) in video_jobs_user_claim_idx.
select b.user_id, b.pending,
       (select count(*) from public.video_jobs as r
        where r.status = 'processing' and r.user_id = b.user_id) as running
from (select user_id, count(*) as pending
      from public.video_jobs
      where status = 'pending' and user_id is not null
      group by user_id
      order by count(*) desc, user_id
      limit %(limit)s) as b
order by b.pending desc, b.user_id;

-- users_waiting --
-- How many users have a job ready and waiting for its turn; the rows without user_id count as
-- one user, as they do in the claim's turns.
select count(*) as users from (
    select distinct user_id
    from public.video_jobs
    where status = 'pending' and run_at <= coalesce(%(now)s::timestamptz, now())
      and cancel_requested_at is null
) as waiting;

-- write_limits --
-- The worker's MAX_RUNNING_PER_USER and MAX_PENDING_PER_USER, where the claim and the pending
-- cap's trigger read them (sql/007_fair_share.sql); written when it migrates and when it starts.
insert into public.video_jobs_settings (id, max_running_per_user, max_pending_per_user)
values (true, %(max_running)s, %(max_pending)s)
on conflict (id) do update
set max_running_per_user = excluded.max_running_per_user,
    max_pending_per_user = excluded.max_pending_per_user,
    updated_at = now()
where (video_jobs_settings.max_running_per_user, video_jobs_settings.max_pending_per_user)
      is distinct from (excluded.max_running_per_user, excluded.max_pending_per_user);

-- oldest_pending --
select extract(epoch from coalesce(%(now)s::timestamptz, now()) - min(run_at))::float8 as seconds
from public.video_jobs
where status = 'pending' and run_at <= coalesce(%(now)s::timestamptz, now());

-- cleanup --
select public.cleanup_old_video_jobs(make_interval(days => %(days)s)) as removed;

-- enqueue --
insert into public.video_jobs (payload, user_id, priority, run_at, max_attempts, idempotency_key,
                               webhook_url)
values (%(payload)s, %(user_id)s, %(priority)s,
        coalesce(%(run_at)s, %(now)s::timestamptz, now()), %(max_attempts)s,
        %(idempotency_key)s, %(webhook_url)s)
on conflict (idempotency_key) do nothing
returning id;

-- job_by_idempotency_key --
select id from public.video_jobs where idempotency_key = %(idempotency_key)s;

-- get_job --
-- The payload as text: PostgresJobStore.get parses it within the job's limits, so that a row
-- whose payload no parser should take can still be shown.
select id, user_id, payload::text as payload, status, priority, run_at, attempts, max_attempts, idempotency_key,
       webhook_url, progress, stage, message, worker_id, heartbeat_at, cancel_requested_at,
       video_url, thumbnail_url, result, error, errors, created_at, started_at, completed_at,
       updated_at
from public.video_jobs where id = %(id)s;

-- request_cancel --
update public.video_jobs
set cancel_requested_at = coalesce(cancel_requested_at, %(now)s::timestamptz, now())
where id = %(id)s and status in ('pending', 'processing')
returning id;

-- recent_failures --
select id, error, completed_at, attempts from public.video_jobs
where status = 'failed' order by completed_at desc nulls last limit %(limit)s;

-- complete_and_claim --
-- The hot path: `complete`, then `claim` of one job, in one round trip and one commit
-- (video_jobs_complete_and_claim_v2 calls the same two functions).
select done_id, done_webhook_url, id, payload, payload_bytes, attempts, max_attempts,
       lease_token, user_id, priority, webhook_url, created_at
from public.video_jobs_complete_and_claim_v2(
    %(id)s::uuid, %(token)s::uuid, %(video_url)s::text, %(thumbnail_url)s::text,
    %(result)s::jsonb, %(worker_id)s::text, %(max_payload_bytes)s::bigint, %(now)s::timestamptz);

-- stats_stale --
-- The claim's plan depends on fresh statistics: on a table that grew by thousands of rows since
-- its last ANALYZE (or was never analyzed) the planner expects a handful of pending rows and
-- sorts them all on every claim instead of walking the claim index. Autovacuum gets there within
-- a minute or so; this check closes that window after a burst of inserts. Row counts reach
-- pg_stat up to a few seconds late, so a never-analyzed table with rows (reltuples < 0 since
-- PostgreSQL 14) counts as stale on its own. Only a role that may ANALYZE the table (its owner,
-- or one with MAINTAIN since PostgreSQL 17) does it: for any other, such as the least-privilege
-- role of docs/production.md, ANALYZE only warns and skips, and autovacuum is left to it.
select ((c.reltuples < 0 and exists (select 1 from public.video_jobs))
        or (coalesce(s.n_mod_since_analyze > greatest(500, 0.1 * s.n_live_tup), false)
            and coalesce(greatest(s.last_analyze, s.last_autoanalyze)
                         < now() - interval '10 seconds', true)))
       and (pg_has_role(c.relowner, 'USAGE')
            or case when current_setting('server_version_num')::int >= 170000
                    then has_table_privilege(c.oid, 'MAINTAIN') else false end) as stale
from pg_class as c
left join pg_stat_user_tables as s on s.relid = c.oid
where c.oid = 'public.video_jobs'::regclass;

-- worker_seen --
-- Signs that some replica works on this queue: a claim or heartbeat on a running job (both
-- set heartbeat_at), or a job that ended, within the window. Both use existing indexes
-- (status, finished). An idle replica leaves no trace, but it would claim a ready job at
-- once, so a ready job that nobody takes while nothing else happens means nobody is there.
select exists (
           select 1 from public.video_jobs
           where status = 'processing'
             and heartbeat_at > now() - make_interval(secs => %(seconds)s))
       or exists (
           select 1 from public.video_jobs
           where status in ('completed', 'failed', 'cancelled')
             and completed_at > now() - make_interval(secs => %(seconds)s)) as seen;

-- job_scheduled_later --
select run_at > now() as later from public.video_jobs where id = %(id)s;

-- cleanup_candidates --
-- Finished jobs older than the retention, oldest first, with what they stored. Rows are
-- deleted only after their files (cleanup_delete), so a failed delete leaves the row to retry.
select id, result, video_url from public.video_jobs
where status in ('completed', 'failed', 'cancelled')
  and completed_at < now() - make_interval(days => %(days)s)
order by completed_at
limit %(limit)s;

-- cleanup_delete --
delete from public.video_jobs
where id = any(%(ids)s::uuid[]) and status in ('completed', 'failed', 'cancelled')
returning id;

-- cleanup_keys_in_use --
-- Of these stored keys, those that a job outside the batch also records: a later job that
-- wrote the same output.path owns the object now, and deleting it would break that job's
-- video. One scan of the table per batch (no index holds result keys); the bucket is not
-- compared, which can only keep an object, never delete one in use.
with used as (
    select j.id, v.key
    from public.video_jobs j
    cross join lateral (values (j.result->>'storage_path'), (j.result->>'thumbnail_path'),
                               (j.result->>'captions_path')) as v(key)
    where v.key = any(%(keys)s::text[])
)
select distinct key from used where id <> all(%(ids)s::uuid[]);

-- job_statuses --
-- The status of each job in a list (a job that is gone is missing from the answer): the sweep
-- of scratch folders a killed worker left asks which of their jobs still run.
select id, status from public.video_jobs where id = any(%(ids)s::uuid[]);
