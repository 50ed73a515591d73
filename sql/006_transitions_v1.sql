-- Each queue transition written once, as a function the worker's statements and the hot path
-- both call.
--
-- Until now `claim` and `complete` existed twice: as statements in worker/queue/queries.sql and
-- again inside video_jobs_complete_and_claim (003, then 004), held together by a test comparing
-- the rows they left. Here every transition a job goes through is one PL/pgSQL function:
--
--   video_jobs_claim_v1            pending -> processing (fresh lease), up to p_limit jobs
--   video_jobs_complete_v1         processing -> completed (fenced on the lease token)
--   video_jobs_fail_v1             processing -> pending again after a backoff, or failed
--   video_jobs_cancel_v1           processing -> cancelled (the handler stopped on request)
--   video_jobs_release_v1          processing -> pending (shutdown hands the job back)
--   video_jobs_rescue_v1           processing with an expired lease -> pending, failed or
--                                  cancelled (the replica holding it died)
--   video_jobs_cancel_pending_v1   pending with a cancel request -> cancelled (never started)
--
-- and the hot path, video_jobs_complete_and_claim_v1, is complete_v1 then claim_v1 of one job.
-- complete_v1 returns one row, not a set, so the hot path calls it as a plain PL/pgSQL
-- expression (no query around the call), and claim_v1 updates each row it picks by primary
-- key (an index probe, where one update for all of them had the planner scan a bitmap): the
-- composition then costs little more than 004's inline copy of both.
-- PL/pgSQL keeps each statement's plan for the life of the backend (the reason for 003), so
-- the single statements now skip parsing and planning too, behind a transaction pooler as well.
--
-- The names carry a version, as Procrastinate's do: a change to a function's arguments or
-- results becomes `_v2` in a later file, and workers of the previous version keep calling
-- `_v1` until they are replaced.
--
-- Every function takes the clock as its last argument, p_now, null meaning the database's own
-- (`coalesce(p_now, now())`, as River does). The worker passes null; tests pass a time to
-- move the queue's clock without editing rows.
--
-- All run with the caller's rights (no SECURITY DEFINER), so a role's table privileges still
-- bound what it can do through them (docs/production.md), and `set search_path = ''` so that
-- no object of the caller's can stand in for one named here.

create or replace function public.video_jobs_claim_v1(
    p_worker_id text,
    p_limit int,
    p_max_payload_bytes bigint,
    p_now timestamptz default null
)
returns table (
    id uuid,
    payload text,
    payload_bytes int,
    attempts int,
    max_attempts int,
    lease_token uuid,
    user_id uuid,
    priority int,
    webhook_url text,
    created_at timestamptz
)
language plpgsql
set search_path = ''
-- One plan for every call, kept for the life of the backend. Left to choose, PostgreSQL would
-- plan this statement again on every call: a plan for an unknown `limit p_limit` looks dearer
-- than one for `limit 1`, so the generic plan never wins and each claim pays for planning (as
-- much as the claim itself costs to run). The generic plan walks the claim index all the same
-- (tests/queue/test_store.py checks it as the table grows), and ANALYZE replaces it.
set plan_cache_mode = force_generic_plan
as $$
#variable_conflict use_column
declare
    v_now timestamptz := coalesce(p_now, now());
    v_id uuid;
begin
    -- Pick ready rows (skipping rows other replicas hold) and mark each ours with a fresh lease
    -- token, one update by primary key per row: whatever the planner guesses `limit p_limit`
    -- to be, each update is an index probe (as one statement for all of them, a guess of
    -- dozens of rows made it scan a bitmap, or hash the whole table, to update one). The
    -- payload comes back as text, for each job to parse its own (a payload no parser accepts
    -- must not fail the decoding of the whole claim), and not at all when it is over
    -- p_max_payload_bytes: `payload_bytes` then tells the job how big it was.
    for v_id in
        select id
        from public.video_jobs
        where status = 'pending' and run_at <= v_now and cancel_requested_at is null
        order by priority desc, run_at, seq
        limit p_limit
        for update skip locked
    loop
        update public.video_jobs as j
        set status = 'processing',
            attempts = j.attempts + 1,
            worker_id = p_worker_id,
            lease_token = gen_random_uuid(),
            heartbeat_at = v_now,
            started_at = coalesce(j.started_at, v_now),
            progress = 0,
            stage = 'starting',
            message = 'Job claimed',
            error = null,
            updated_at = v_now
        where j.id = v_id
        returning j.id, j.payload::text, j.attempts, j.max_attempts, j.lease_token, j.user_id,
                  j.priority, j.webhook_url, j.created_at
        into id, payload, attempts, max_attempts, lease_token, user_id, priority, webhook_url,
             created_at;
        payload_bytes := octet_length(payload);
        if payload_bytes > p_max_payload_bytes then
            payload := null;
        end if;
        return next;
    end loop;
end;
$$;

-- Finished: the job's outputs on the row, the lease gone. One row back, its id null when the
-- lease was not this token's any more (the caller then writes nothing else). A single row, not
-- a set, so that the hot path calls it as a plain expression, without a query around it.
create or replace function public.video_jobs_complete_v1(
    p_id uuid,
    p_token uuid,
    p_video_url text,
    p_thumbnail_url text,
    p_result jsonb,
    p_now timestamptz default null,
    out id uuid,
    out webhook_url text
)
language plpgsql
set search_path = ''
as $$
#variable_conflict use_column
declare
    v_now timestamptz := coalesce(p_now, now());
begin
    update public.video_jobs as j
    set status = 'completed', progress = 100, stage = 'completed', message = 'Done',
        video_url = p_video_url, thumbnail_url = p_thumbnail_url, result = p_result,
        error = null, completed_at = v_now, lease_token = null, heartbeat_at = null,
        updated_at = v_now
    where j.id = p_id and j.lease_token = p_token and j.status = 'processing'
    returning j.id, j.webhook_url into id, webhook_url;
end;
$$;

-- A failed attempt: back to pending after a backoff while attempts remain (and the error is
-- retryable), otherwise failed for good. Every attempt's error is kept in `errors`. A job
-- waiting for its next attempt has done none of it yet (progress 0); a failed one keeps where
-- it stopped.
create or replace function public.video_jobs_fail_v1(
    p_id uuid,
    p_token uuid,
    p_error text,
    p_retry boolean,
    p_backoff_seconds float8,
    p_now timestamptz default null
)
returns table (id uuid, status text, webhook_url text)
language plpgsql
set search_path = ''
as $$
#variable_conflict use_column
declare
    v_now timestamptz := coalesce(p_now, now());
begin
    return query
    with failed as (
        update public.video_jobs as j
        set status = case when p_retry and j.attempts < j.max_attempts
                          then 'pending' else 'failed' end,
            run_at = case when p_retry and j.attempts < j.max_attempts
                          then v_now + make_interval(secs => p_backoff_seconds)
                          else j.run_at end,
            completed_at = case when p_retry and j.attempts < j.max_attempts
                                then null else v_now end,
            progress = case when p_retry and j.attempts < j.max_attempts then 0 else j.progress end,
            stage = case when p_retry and j.attempts < j.max_attempts
                         then 'retrying' else 'failed' end,
            message = case when p_retry and j.attempts < j.max_attempts
                           then 'Attempt ' || j.attempts || ' failed; will retry'
                           else 'Failed' end,
            error = p_error,
            errors = j.errors || jsonb_build_array(jsonb_build_object(
                'attempt', j.attempts, 'at', v_now, 'error', p_error, 'worker_id', j.worker_id)),
            lease_token = null, heartbeat_at = null, worker_id = null,
            updated_at = v_now
        where j.id = p_id and j.lease_token = p_token and j.status = 'processing'
        returning j.id, j.status, j.webhook_url
    )
    select f.id, f.status, f.webhook_url from failed as f;
end;
$$;

-- The handler stopped because cancellation was requested.
create or replace function public.video_jobs_cancel_v1(
    p_id uuid,
    p_token uuid,
    p_now timestamptz default null
)
returns table (id uuid, webhook_url text)
language plpgsql
set search_path = ''
as $$
#variable_conflict use_column
declare
    v_now timestamptz := coalesce(p_now, now());
begin
    return query
    with cancelled as (
        update public.video_jobs as j
        set status = 'cancelled', stage = 'cancelled', message = 'Cancelled',
            completed_at = v_now, lease_token = null, heartbeat_at = null, updated_at = v_now
        where j.id = p_id and j.lease_token = p_token and j.status = 'processing'
        returning j.id, j.webhook_url
    )
    select c.id, c.webhook_url from cancelled as c;
end;
$$;

-- Shutdown: hand an unfinished job back so another replica starts it at once. The attempt
-- does not count against max_attempts: the job did nothing wrong.
create or replace function public.video_jobs_release_v1(
    p_id uuid,
    p_token uuid,
    p_now timestamptz default null
)
returns table (id uuid)
language plpgsql
set search_path = ''
as $$
#variable_conflict use_column
declare
    v_now timestamptz := coalesce(p_now, now());
begin
    return query
    with released as (
        update public.video_jobs as j
        set status = 'pending', run_at = v_now, attempts = greatest(j.attempts - 1, 0),
            progress = 0, stage = 'queued',
            message = 'Handed back by a replica that was shutting down',
            lease_token = null, heartbeat_at = null, worker_id = null, updated_at = v_now
        where j.id = p_id and j.lease_token = p_token and j.status = 'processing'
        returning j.id
    )
    select r.id from released as r;
end;
$$;

-- Leases whose heartbeat is older than the lease: the replica died. Back to pending, or failed
-- when attempts are used up (a job that kills its worker every time must end), or cancelled
-- when that was requested. The caller runs it one replica at a time (the `maintain`
-- statement's advisory lock).
create or replace function public.video_jobs_rescue_v1(
    p_lease_seconds float8,
    p_now timestamptz default null
)
returns table (id uuid, status text, webhook_url text)
language plpgsql
set search_path = ''
as $$
#variable_conflict use_column
declare
    v_now timestamptz := coalesce(p_now, now());
begin
    return query
    with rescued as (
        update public.video_jobs as j
        set status = case when j.cancel_requested_at is not null then 'cancelled'
                          when j.attempts >= j.max_attempts then 'failed' else 'pending' end,
            run_at = v_now,
            completed_at = case when j.cancel_requested_at is not null
                                     or j.attempts >= j.max_attempts
                                then v_now else null end,
            progress = case when j.cancel_requested_at is not null
                                 or j.attempts >= j.max_attempts
                            then j.progress else 0 end,
            stage = case when j.cancel_requested_at is not null then 'cancelled'
                         when j.attempts >= j.max_attempts then 'failed' else 'queued' end,
            error = case when j.cancel_requested_at is not null then j.error
                         else 'The worker running this job stopped responding (attempt '
                              || j.attempts || ' of ' || j.max_attempts || ')' end,
            errors = case when j.cancel_requested_at is not null then j.errors
                          else j.errors || jsonb_build_array(jsonb_build_object(
                              'attempt', j.attempts, 'at', v_now, 'worker_id', j.worker_id,
                              'error', 'lease expired: the worker stopped responding')) end,
            lease_token = null, heartbeat_at = null, worker_id = null, updated_at = v_now
        where j.status = 'processing'
          and j.heartbeat_at < v_now - make_interval(secs => p_lease_seconds)
        returning j.id, j.status, j.webhook_url
    )
    select r.id, r.status, r.webhook_url from rescued as r;
end;
$$;

-- A pending job whose cancellation was requested never starts.
create or replace function public.video_jobs_cancel_pending_v1(p_now timestamptz default null)
returns table (id uuid, webhook_url text)
language plpgsql
set search_path = ''
as $$
#variable_conflict use_column
declare
    v_now timestamptz := coalesce(p_now, now());
begin
    return query
    with cancelled as (
        update public.video_jobs as j
        set status = 'cancelled', stage = 'cancelled', message = 'Cancelled before it started',
            completed_at = v_now, updated_at = v_now
        where j.status = 'pending' and j.cancel_requested_at is not null
        returning j.id, j.webhook_url
    )
    select c.id, c.webhook_url from cancelled as c;
end;
$$;

-- The busy worker's hot path: complete one job and claim the next for the same worker, in one
-- round trip and one commit. One row back: done_id is null when the lease was gone; id is
-- null when nothing was ready.
create or replace function public.video_jobs_complete_and_claim_v1(
    p_id uuid,
    p_token uuid,
    p_video_url text,
    p_thumbnail_url text,
    p_result jsonb,
    p_worker_id text,
    p_max_payload_bytes bigint,
    p_now timestamptz default null
)
returns table (
    done_id uuid,
    done_webhook_url text,
    id uuid,
    payload text,
    payload_bytes int,
    attempts int,
    max_attempts int,
    lease_token uuid,
    user_id uuid,
    priority int,
    webhook_url text,
    created_at timestamptz
)
language plpgsql
set search_path = ''
as $$
declare
    v_done record;
begin
    -- complete_v1 returns one row, so it runs as a plain expression: no query, no plan.
    v_done := public.video_jobs_complete_v1(p_id, p_token, p_video_url, p_thumbnail_url,
                                            p_result, p_now);
    done_id := v_done.id;
    done_webhook_url := v_done.webhook_url;
    select n.id, n.payload, n.payload_bytes, n.attempts, n.max_attempts, n.lease_token,
           n.user_id, n.priority, n.webhook_url, n.created_at
    into id, payload, payload_bytes, attempts, max_attempts, lease_token, user_id, priority,
         webhook_url, created_at
    from public.video_jobs_claim_v1(p_worker_id, 1, p_max_payload_bytes, p_now) as n;
    return next;
end;
$$;

-- Workers of the previous version call the unversioned function of 004. It stays, as the same
-- composition, so that they keep their hot path until they are replaced.
create or replace function public.video_jobs_complete_and_claim(
    p_id uuid,
    p_token uuid,
    p_video_url text,
    p_thumbnail_url text,
    p_result jsonb,
    p_worker_id text,
    p_max_payload_bytes bigint
)
returns table (
    done_id uuid,
    done_webhook_url text,
    id uuid,
    payload text,
    payload_bytes int,
    attempts int,
    max_attempts int,
    lease_token uuid,
    user_id uuid,
    priority int,
    webhook_url text,
    created_at timestamptz
)
language sql
set search_path = ''
as $$
    select * from public.video_jobs_complete_and_claim_v1(
        p_id, p_token, p_video_url, p_thumbnail_url, p_result, p_worker_id, p_max_payload_bytes)
$$;

-- The worker calls them as the table owner, a BYPASSRLS role, or the role of
-- docs/production.md (which grants them by name). On Supabase, where new functions in `public`
-- are granted to the API roles by default, those roles and PUBLIC lose them: no browser claims
-- or finishes jobs (sql/supabase/100_supabase.sql does the same for the functions before these).
do $$
declare
    fn regprocedure;
    api_roles text := 'public, anon';
begin
    if not exists (select 1 from pg_roles where rolname = 'anon') then
        return;
    end if;
    if exists (select 1 from pg_roles where rolname = 'authenticated') then
        api_roles := api_roles || ', authenticated';
    end if;
    for fn in select p.oid::regprocedure from pg_proc as p
              where p.pronamespace = 'public'::regnamespace
                and p.proname in ('video_jobs_claim_v1', 'video_jobs_complete_v1',
                                  'video_jobs_fail_v1', 'video_jobs_cancel_v1',
                                  'video_jobs_release_v1', 'video_jobs_rescue_v1',
                                  'video_jobs_cancel_pending_v1',
                                  'video_jobs_complete_and_claim_v1') loop
        execute format('revoke execute on function %s from %s', fn, api_roles);
    end loop;
end
$$;
