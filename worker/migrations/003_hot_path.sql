-- The busy worker's hot path, made cheaper for the database.
--
-- 1. Finishing a job and claiming the next one is a PL/pgSQL function. PL/pgSQL keeps each of
--    its statements' plans for the life of the backend, so a busy worker stops paying for
--    parsing and planning a long statement on every job (bench/bench_queue.py: about half the
--    server's CPU per no-op job). Unlike client-side prepared statements, this keeps working
--    behind a transaction pooler (Supavisor, PgBouncer): nothing is kept per session.
-- 2. The triggers fire only when they have something to do, so claiming and finishing a job no
--    longer calls a PL/pgSQL trigger function for each row it changes.

-- Complete one job (fenced on its lease token, exactly like the worker's `complete` statement)
-- and claim the next ready job for the same worker (exactly like its `claim` statement with a
-- limit of one). One row back: done_id is null when the lease was gone; id is
-- null when nothing was ready. tests/queue/test_store.py checks that the rows this leaves are
-- the ones the two statements leave.
create or replace function public.video_jobs_complete_and_claim(
    p_id uuid,
    p_token uuid,
    p_video_url text,
    p_thumbnail_url text,
    p_result jsonb,
    p_worker_id text
)
returns table (
    done_id uuid,
    done_webhook_url text,
    id uuid,
    payload jsonb,
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
#variable_conflict use_column
declare
    next_id uuid;
begin
    update public.video_jobs as v
    set status = 'completed', progress = 100, stage = 'completed', message = 'Done',
        video_url = p_video_url, thumbnail_url = p_thumbnail_url, result = p_result,
        error = null, completed_at = now(), lease_token = null, heartbeat_at = null,
        updated_at = now()
    where v.id = p_id and v.lease_token = p_token and v.status = 'processing'
    returning v.id, v.webhook_url into done_id, done_webhook_url;

    select v.id into next_id
    from public.video_jobs as v
    where v.status = 'pending' and v.run_at <= now() and v.cancel_requested_at is null
    order by v.priority desc, v.run_at, v.seq
    limit 1
    for update skip locked;

    if next_id is not null then
        update public.video_jobs as j
        set status = 'processing',
            attempts = j.attempts + 1,
            worker_id = p_worker_id,
            lease_token = gen_random_uuid(),
            heartbeat_at = now(),
            started_at = coalesce(j.started_at, now()),
            progress = 0,
            stage = 'starting',
            message = 'Job claimed',
            error = null,
            updated_at = now()
        where j.id = next_id
        returning j.id, j.payload, j.attempts, j.max_attempts, j.lease_token, j.user_id,
                  j.priority, j.webhook_url, j.created_at
        into id, payload, attempts, max_attempts, lease_token, user_id, priority, webhook_url,
             created_at;
    end if;
    return next;
end;
$$;

-- The worker calls it as the table owner or a BYPASSRLS role. On Supabase, where new functions
-- in `public` are granted to the API roles by default, they lose it: no browser claims jobs.
do $$
begin
    if exists (select 1 from pg_roles where rolname = 'anon') then
        revoke execute on function public.video_jobs_complete_and_claim(
            uuid, uuid, text, text, jsonb, text) from anon;
    end if;
    if exists (select 1 from pg_roles where rolname = 'authenticated') then
        revoke execute on function public.video_jobs_complete_and_claim(
            uuid, uuid, text, text, jsonb, text) from authenticated;
    end if;
end
$$;

-- updated_at: set by the trigger unless the statement set it itself (the hot path does).
drop trigger if exists video_jobs_touch on public.video_jobs;
create trigger video_jobs_touch
    before update on public.video_jobs
    for each row
    when (old.updated_at is not distinct from new.updated_at)
    execute function public.video_jobs_touch();

-- NOTIFY: only for a row that becomes ready or gets a cancellation request (the function
-- itself is unchanged and still checks the same conditions).
drop trigger if exists video_jobs_notify on public.video_jobs;
create trigger video_jobs_notify
    after insert on public.video_jobs
    for each row
    when (new.status = 'pending' or new.cancel_requested_at is not null)
    execute function public.video_jobs_notify();

drop trigger if exists video_jobs_notify_update on public.video_jobs;
create trigger video_jobs_notify_update
    after update of status, cancel_requested_at on public.video_jobs
    for each row
    when ((new.status = 'pending' and old.status is distinct from 'pending')
          or (new.cancel_requested_at is not null and old.cancel_requested_at is null))
    execute function public.video_jobs_notify();
