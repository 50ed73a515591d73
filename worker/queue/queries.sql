-- The queue's statements, one named block each (-- name --), loaded once by queries.py.
-- Values are always parameters. Time is always the database's clock (now()), never a replica's.

-- claim --
-- One short autocommit statement: pick ready rows (skipping rows other replicas hold), mark them
-- ours with a fresh lease token. MATERIALIZED keeps the planner from re-running the CTE per row.
-- The payload comes back as text, for each job to parse its own (a payload no parser accepts
-- must not fail the decoding of the whole claim), and not at all when it is over
-- MAX_PAYLOAD_BYTES: `payload_bytes` then tells the job how big it was.
with ready as materialized (
    select id
    from public.video_jobs
    where status = 'pending' and run_at <= now() and cancel_requested_at is null
    order by priority desc, run_at, seq
    limit %(limit)s
    for update skip locked
),
claimed as (
    update public.video_jobs j
    set status = 'processing',
        attempts = j.attempts + 1,
        worker_id = %(worker_id)s,
        lease_token = gen_random_uuid(),
        heartbeat_at = now(),
        started_at = coalesce(j.started_at, now()),
        progress = 0,
        stage = 'starting',
        message = 'Job claimed',
        error = null
    from ready
    where j.id = ready.id
    returning j.id, j.payload::text as payload, j.attempts, j.max_attempts, j.lease_token,
              j.user_id, j.priority, j.webhook_url, j.created_at
)
select id, case when octet_length(payload) <= %(max_payload_bytes)s then payload end as payload,
       octet_length(payload) as payload_bytes, attempts, max_attempts, lease_token, user_id,
       priority, webhook_url, created_at
from claimed;

-- heartbeat --
-- Renew the leases this replica holds. A job missing from the result has lost its lease.
update public.video_jobs j
set heartbeat_at = now()
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
update public.video_jobs
set status = 'completed', progress = 100, stage = 'completed', message = 'Done',
    video_url = %(video_url)s, thumbnail_url = %(thumbnail_url)s, result = %(result)s,
    error = null, completed_at = now(), lease_token = null, heartbeat_at = null
where id = %(id)s and lease_token = %(token)s and status = 'processing'
returning id, webhook_url;

-- fail --
-- A failed attempt: back to pending after a backoff while attempts remain (and the error is
-- retryable), otherwise failed for good. Every attempt's error is kept in `errors`.
update public.video_jobs
set status = case when %(retry)s and attempts < max_attempts then 'pending' else 'failed' end,
    run_at = case when %(retry)s and attempts < max_attempts
                  then now() + make_interval(secs => %(backoff)s) else run_at end,
    completed_at = case when %(retry)s and attempts < max_attempts then null else now() end,
    -- a job waiting for its next attempt has done none of it yet (a failed one keeps where
    -- it stopped)
    progress = case when %(retry)s and attempts < max_attempts then 0 else progress end,
    stage = case when %(retry)s and attempts < max_attempts then 'retrying' else 'failed' end,
    message = case when %(retry)s and attempts < max_attempts
                   then 'Attempt ' || attempts || ' failed; will retry' else 'Failed' end,
    error = %(error)s,
    errors = errors || jsonb_build_array(jsonb_build_object(
        'attempt', attempts, 'at', now(), 'error', %(error)s::text, 'worker_id', worker_id)),
    lease_token = null, heartbeat_at = null, worker_id = null
where id = %(id)s and lease_token = %(token)s and status = 'processing'
returning id, status, webhook_url;

-- cancelled --
-- The handler stopped because cancellation was requested.
update public.video_jobs
set status = 'cancelled', stage = 'cancelled', message = 'Cancelled', completed_at = now(),
    lease_token = null, heartbeat_at = null
where id = %(id)s and lease_token = %(token)s and status = 'processing'
returning id, webhook_url;

-- release --
-- Shutdown: hand an unfinished job back so another replica starts it at once. The attempt
-- does not count against max_attempts: the job did nothing wrong.
update public.video_jobs
set status = 'pending', run_at = now(), attempts = greatest(attempts - 1, 0), progress = 0,
    stage = 'queued', message = 'Handed back by a replica that was shutting down',
    lease_token = null, heartbeat_at = null, worker_id = null
where id = %(id)s and lease_token = %(token)s and status = 'processing'
returning id;

-- maintain --
-- One replica at a time rescues expired leases and ends cancelled pending jobs, in one
-- autocommit statement. The advisory lock is a transaction lock (safe behind poolers) that
-- lives only as long as this statement: a replica frozen between round trips (SIGSTOP, a VM
-- pause, a partition that keeps its socket open) can never sit on it while the others wait,
-- as it could when lock, rescue and cancel were three statements of one transaction.
-- The first row says whether this replica got the lock; the others are the jobs it ended.
with lock as materialized (
    select pg_try_advisory_xact_lock(7238561029384756) as locked
),
-- Leases whose heartbeat is older than the lease: the replica died. Back to pending, or failed
-- when attempts are used up (a job that kills its worker every time must end), or cancelled.
rescued as (
    update public.video_jobs
    set status = case when cancel_requested_at is not null then 'cancelled'
                      when attempts >= max_attempts then 'failed' else 'pending' end,
        run_at = now(),
        completed_at = case when cancel_requested_at is not null or attempts >= max_attempts
                            then now() else null end,
        progress = case when cancel_requested_at is not null or attempts >= max_attempts
                        then progress else 0 end,
        stage = case when cancel_requested_at is not null then 'cancelled'
                     when attempts >= max_attempts then 'failed' else 'queued' end,
        error = case when cancel_requested_at is not null then error
                     else 'The worker running this job stopped responding (attempt '
                          || attempts || ' of ' || max_attempts || ')' end,
        errors = case when cancel_requested_at is not null then errors
                      else errors || jsonb_build_array(jsonb_build_object(
                          'attempt', attempts, 'at', now(), 'worker_id', worker_id,
                          'error', 'lease expired: the worker stopped responding')) end,
        lease_token = null, heartbeat_at = null, worker_id = null
    where (select locked from lock)
      and status = 'processing'
      and heartbeat_at < now() - make_interval(secs => %(lease_seconds)s)
    returning id, status, webhook_url
),
-- A pending job whose cancellation was requested never starts.
cancelled as (
    update public.video_jobs
    set status = 'cancelled', stage = 'cancelled', message = 'Cancelled before it started',
        completed_at = now()
    where (select locked from lock) and status = 'pending' and cancel_requested_at is not null
    returning id, webhook_url
)
select 'lock' as kind, null::uuid as id, null::text as status, null::text as webhook_url,
       (select locked from lock) as locked
union all
select 'rescued', id, status, webhook_url, true from rescued
union all
select 'cancelled', id, 'cancelled', webhook_url, true from cancelled;

-- analyze_lock --
select pg_try_advisory_xact_lock(7238561029384757) as locked;

-- counts --
-- Jobs by status; finished statuses estimated on a large table (sql/005_operator_reads.sql).
select status, n, estimated from public.video_jobs_status_counts(%(exact_below)s);

-- oldest_pending --
select extract(epoch from now() - min(run_at))::float8 as seconds
from public.video_jobs where status = 'pending' and run_at <= now();

-- cleanup --
select public.cleanup_old_video_jobs(make_interval(days => %(days)s)) as removed;

-- enqueue --
insert into public.video_jobs (payload, user_id, priority, run_at, max_attempts, idempotency_key,
                               webhook_url)
values (%(payload)s, %(user_id)s, %(priority)s, coalesce(%(run_at)s, now()), %(max_attempts)s,
        %(idempotency_key)s, %(webhook_url)s)
on conflict (idempotency_key) do nothing
returning id;

-- job_by_idempotency_key --
select id from public.video_jobs where idempotency_key = %(idempotency_key)s;

-- get_job --
-- The payload as text: JobStore.get parses it within the job's limits, so that a row whose
-- payload no parser should take can still be shown.
select id, user_id, payload::text as payload, status, priority, run_at, attempts, max_attempts, idempotency_key,
       webhook_url, progress, stage, message, worker_id, heartbeat_at, cancel_requested_at,
       video_url, thumbnail_url, result, error, errors, created_at, started_at, completed_at,
       updated_at
from public.video_jobs where id = %(id)s;

-- request_cancel --
update public.video_jobs set cancel_requested_at = coalesce(cancel_requested_at, now())
where id = %(id)s and status in ('pending', 'processing')
returning id;

-- recent_failures --
select id, error, completed_at, attempts from public.video_jobs
where status = 'failed' order by completed_at desc nulls last limit %(limit)s;

-- complete_and_claim --
-- The hot path: finish one job and claim the next in one round trip and one commit, through
-- a PL/pgSQL function whose plans the server keeps (sql/003_hot_path.sql). The completion is
-- fenced like `complete`; the claim is `claim` with a limit of one, payload as text included
-- (sql/004_payload_text.sql).
select done_id, done_webhook_url, id, payload, payload_bytes, attempts, max_attempts,
       lease_token, user_id, priority, webhook_url, created_at
from public.video_jobs_complete_and_claim(%(id)s, %(token)s, %(video_url)s, %(thumbnail_url)s,
                                          %(result)s, %(worker_id)s, %(max_payload_bytes)s);

-- stats_stale --
-- The claim's plan depends on fresh statistics: on a table that grew by thousands of rows since
-- its last ANALYZE (or was never analyzed) the planner expects a handful of pending rows and
-- sorts them all on every claim instead of walking the claim index. Autovacuum gets there within
-- a minute or so; this check closes that window after a burst of inserts. Row counts reach
-- pg_stat up to a few seconds late, so a never-analyzed table with rows (reltuples < 0 since
-- PostgreSQL 14) counts as stale on its own. Only a role that may ANALYZE the table (its owner,
-- or one with MAINTAIN since PostgreSQL 17) does it: for any other, such as the least-privilege
-- role of docs/worker-role.md, ANALYZE only warns and skips, and autovacuum is left to it.
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
    cross join lateral (values (j.result->>'storage_path'), (j.result->>'thumbnail_path')) as v(key)
    where v.key = any(%(keys)s::text[])
)
select distinct key from used where id <> all(%(ids)s::uuid[]);

-- job_statuses --
-- The status of each job in a list (a job that is gone is missing from the answer): the sweep
-- of scratch folders a killed worker left asks which of their jobs still run.
select id, status from public.video_jobs where id = any(%(ids)s::uuid[]);
