-- video_jobs on Supabase: row level security, the enqueue/cancel RPCs, Realtime, scheduled cleanup.
-- Applied by `video-worker migrate` only where the `auth` schema exists (after sql/*.sql); also
-- pastes into the Supabase SQL editor. Every statement is idempotent: run it again at will.
-- The reasoning behind each choice is in docs/production.md ("Supabase").

-- ---------------------------------------------------------------------------------------------
-- Privileges. Supabase's default privileges give anon, authenticated and service_role ALL on
-- every table, sequence and function created in `public`. Start from nothing and grant back
-- only what each role needs. REVOKE ALL on a table also drops its column-level grants, so
-- re-running this file never accumulates privileges.
-- ---------------------------------------------------------------------------------------------

revoke all on table public.video_jobs from public, anon, authenticated;

-- Reading: every column of the user's own rows (RLS below picks the rows). A column-level
-- SELECT grant would break `select *`, which supabase-js sends by default.
grant select on table public.video_jobs to authenticated;

-- Writing: only the columns the contract says the app writes. Worker columns (status,
-- progress, stage, message, attempts, worker_id, lease_token, heartbeat_at, video_url,
-- thumbnail_url, result, error, errors, timestamps) are out of reach: `permission denied`.
grant insert (user_id, payload, priority, run_at, max_attempts, idempotency_key, webhook_url)
    on table public.video_jobs to authenticated;
grant update (cancel_requested_at) on table public.video_jobs to authenticated;
-- No DELETE for users: history is the worker's and cleanup's to remove.

-- The service role (server-side code holding the service key) bypasses RLS and may do anything
-- the worker does; the worker itself connects as the table owner (postgres).
grant select, insert, update, delete on table public.video_jobs to service_role;

-- The identity sequence behind `seq`: an identity default needs no sequence privilege, so
-- nobody outside the server needs it (and anon must not burn through it with nextval()).
do $$
declare
    seq text := pg_get_serial_sequence('public.video_jobs', 'seq');
begin
    if seq is not null then
        execute format('revoke all on sequence %s from public, anon, authenticated', seq);
    end if;
end
$$;

-- The migrations ledger sits in `public`, so the Data API would expose it too.
do $$
begin
    if to_regclass('public.video_worker_migrations') is not null then
        revoke all on table public.video_worker_migrations from public, anon, authenticated;
        alter table public.video_worker_migrations enable row level security;
    end if;
end
$$;

-- Deleting finished jobs is for the server and pg_cron, never an RPC from the browser.
revoke execute on function public.cleanup_old_video_jobs(interval) from public, anon, authenticated;
-- Trigger functions cannot be called directly anyway, and triggers fire without EXECUTE.
revoke execute on function public.video_jobs_touch() from public, anon, authenticated;
revoke execute on function public.video_jobs_notify() from public, anon, authenticated;
-- The worker's hot path (sql/004_payload_text.sql; sql/003_hot_path.sql before it) claims
-- jobs: never callable from the browser.
do $$
begin
    if to_regprocedure('public.video_jobs_complete_and_claim(uuid,uuid,text,text,jsonb,text)')
       is not null then
        revoke execute on function public.video_jobs_complete_and_claim(
            uuid, uuid, text, text, jsonb, text) from public, anon, authenticated;
    end if;
    if to_regprocedure(
        'public.video_jobs_complete_and_claim(uuid,uuid,text,text,jsonb,text,bigint)'
    ) is not null then
        revoke execute on function public.video_jobs_complete_and_claim(
            uuid, uuid, text, text, jsonb, text, bigint) from public, anon, authenticated;
    end if;
    -- The whole queue's counts (sql/005_operator_reads.sql) are for the worker's pages: a
    -- user would learn every other user's job counts from the statistics behind them.
    if to_regprocedure('public.video_jobs_status_counts(bigint)') is not null then
        revoke execute on function public.video_jobs_status_counts(bigint)
            from public, anon, authenticated;
    end if;
end
$$;

-- ---------------------------------------------------------------------------------------------
-- Row level security. Enabled, not forced: RLS then binds every role except the table owner
-- and BYPASSRLS roles (postgres and service_role on Supabase), which is exactly the worker and
-- the server. FORCE would bind the owner as well; no policy grants it rows, so a worker
-- connected as an owner without BYPASSRLS would silently claim nothing.
-- ---------------------------------------------------------------------------------------------

alter table public.video_jobs enable row level security;

-- `(select auth.uid())` is evaluated once per statement instead of once per row.
drop policy if exists video_jobs_select_own on public.video_jobs;
create policy video_jobs_select_own on public.video_jobs
    for select to authenticated
    using (user_id = (select auth.uid()));

drop policy if exists video_jobs_insert_own on public.video_jobs;
create policy video_jobs_insert_own on public.video_jobs
    for insert to authenticated
    with check (user_id = (select auth.uid()));

-- The only column a user may update is cancel_requested_at (grant above); this policy limits
-- it to their own unfinished jobs, and to setting it, not clearing it.
drop policy if exists video_jobs_cancel_own on public.video_jobs;
create policy video_jobs_cancel_own on public.video_jobs
    for update to authenticated
    using (user_id = (select auth.uid()) and status in ('pending', 'processing'))
    with check (user_id = (select auth.uid()) and cancel_requested_at is not null);

-- No policy for anon (and no privilege either): anon sees and writes nothing.

-- ---------------------------------------------------------------------------------------------
-- Limits for jobs a signed-in user writes directly. Whatever the browser can send, any user can
-- send: without these a user could jump the whole queue (priority 2147483647, or a run_at in
-- 1970, which sorts first among equal priorities) or keep a failing job retrying for days.
-- Higher priorities and more attempts stay available to server-side code (service role).
-- ---------------------------------------------------------------------------------------------

create or replace function public.video_jobs_user_limits() returns trigger
language plpgsql
set search_path = ''
as $$
begin
    if current_user::text not in ('anon', 'authenticated') then
        return new;
    end if;
    if new.priority > 0 then
        raise exception 'video_jobs.priority: must be 0 or less (higher priorities are set by the server)'
            using errcode = 'check_violation';
    end if;
    if new.max_attempts not between 1 and 5 then
        raise exception 'video_jobs.max_attempts: must be between 1 and 5'
            using errcode = 'check_violation';
    end if;
    -- a run_at in the past would sort ahead of older jobs: a user's job is due now at the earliest
    new.run_at := greatest(new.run_at, now());
    return new;
end;
$$;

revoke execute on function public.video_jobs_user_limits() from public, anon, authenticated;

drop trigger if exists video_jobs_user_limits on public.video_jobs;
create trigger video_jobs_user_limits
    before insert on public.video_jobs
    for each row execute function public.video_jobs_user_limits();

-- ---------------------------------------------------------------------------------------------
-- enqueue_video_job: the RPC a web app calls to start a job. SECURITY DEFINER, so it keeps
-- working if an app revokes direct INSERT from authenticated; it applies the same limits as the
-- trigger above itself (the trigger skips the definer). `#variable_conflict use_column` because
-- the parameter names (the RPC's argument names, part of the contract) equal column names.
-- ---------------------------------------------------------------------------------------------

create or replace function public.enqueue_video_job(
    payload jsonb,
    priority int default 0,
    run_at timestamptz default now(),
    idempotency_key text default null,
    webhook_url text default null
) returns uuid
language plpgsql
volatile
security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
    uid uuid := auth.uid();
    new_id uuid;
    owner_id uuid;
begin
    if uid is null then
        raise exception 'enqueue_video_job: sign in first (no user in the request)'
            using errcode = 'insufficient_privilege';
    end if;
    if enqueue_video_job.payload is null or jsonb_typeof(enqueue_video_job.payload) <> 'object' then
        raise exception 'payload: must be a JSON object' using errcode = 'invalid_parameter_value';
    end if;
    if jsonb_typeof(enqueue_video_job.payload -> 'clips') is distinct from 'array'
       or jsonb_array_length(enqueue_video_job.payload -> 'clips') = 0 then
        raise exception 'payload.clips: must be a non-empty array'
            using errcode = 'invalid_parameter_value';
    end if;
    if coalesce(enqueue_video_job.priority, 0) > 0 then
        raise exception 'priority: must be 0 or less (higher priorities are set by the server)'
            using errcode = 'invalid_parameter_value';
    end if;

    insert into public.video_jobs (user_id, payload, priority, run_at, idempotency_key, webhook_url)
    values (uid,
            enqueue_video_job.payload,
            coalesce(enqueue_video_job.priority, 0),
            greatest(coalesce(enqueue_video_job.run_at, now()), now()),
            enqueue_video_job.idempotency_key,
            enqueue_video_job.webhook_url)
    on conflict (idempotency_key) do nothing
    returning id into new_id;

    if new_id is not null then
        return new_id;
    end if;

    -- The key exists: the same request again returns the first job; someone else's key is an
    -- error that reveals nothing about their job.
    select j.id, j.user_id into new_id, owner_id
    from public.video_jobs j
    where j.idempotency_key = enqueue_video_job.idempotency_key;
    if new_id is null then
        raise exception 'idempotency_key: the job with this key was just removed; try again'
            using errcode = 'serialization_failure';
    end if;
    if owner_id is distinct from uid then
        raise exception 'idempotency_key: already used by another job; use a unique key per job'
            using errcode = 'unique_violation';
    end if;
    return new_id;
end;
$$;

revoke execute on function public.enqueue_video_job(jsonb, int, timestamptz, text, text)
    from public, anon;
grant execute on function public.enqueue_video_job(jsonb, int, timestamptz, text, text)
    to authenticated;

-- ---------------------------------------------------------------------------------------------
-- cancel_video_job: the owner asks for cancellation of an unfinished job; the worker finishes
-- it (a pending job never starts, a running one stops within seconds). True when the job is
-- now being cancelled; false for a finished job, or one that is not the caller's (or missing).
-- ---------------------------------------------------------------------------------------------

create or replace function public.cancel_video_job(job_id uuid) returns boolean
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
    uid uuid := auth.uid();
begin
    if uid is null then
        raise exception 'cancel_video_job: sign in first (no user in the request)'
            using errcode = 'insufficient_privilege';
    end if;
    update public.video_jobs j
    set cancel_requested_at = coalesce(j.cancel_requested_at, now())
    where j.id = cancel_video_job.job_id
      and j.user_id = uid
      and j.status in ('pending', 'processing');
    return found;
end;
$$;

revoke execute on function public.cancel_video_job(uuid) from public, anon;
grant execute on function public.cancel_video_job(uuid) to authenticated;

-- ---------------------------------------------------------------------------------------------
-- Realtime: frontends watch their rows through the supabase_realtime publication. Realtime
-- checks the SELECT policy above for each subscriber. The default replica identity (the
-- primary key) is enough for UPDATE events, which carry the whole new row; FULL would only add
-- old values, at the cost of more WAL on a table updated by every heartbeat.
-- ---------------------------------------------------------------------------------------------

do $$
begin
    if exists (select 1 from pg_catalog.pg_publication where pubname = 'supabase_realtime')
       and not exists (select 1 from pg_catalog.pg_publication_tables
                       where pubname = 'supabase_realtime'
                         and schemaname = 'public' and tablename = 'video_jobs') then
        alter publication supabase_realtime add table public.video_jobs;
    end if;
end
$$;

-- ---------------------------------------------------------------------------------------------
-- Cleanup with pg_cron where it is enabled: every day at 03:17, finished jobs older than
-- 7 days (cleanup_old_video_jobs' default). Replaced, never duplicated, on every run.
-- ---------------------------------------------------------------------------------------------

do $$
begin
    if to_regprocedure('cron.schedule(text,text,text)') is not null then
        if exists (select 1 from cron.job where jobname = 'video-jobs-cleanup') then
            perform cron.unschedule('video-jobs-cleanup'::text);
        end if;
        perform cron.schedule('video-jobs-cleanup', '17 3 * * *',
                              $cmd$select public.cleanup_old_video_jobs()$cmd$);
    end if;
end
$$;
