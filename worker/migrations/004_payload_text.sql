-- The hot path hands each claimed payload over as text, measured and bounded by the database.
--
-- A payload Postgres accepts may still be one no JSON parser should: 3000 arrays deep, or an
-- integer of 5000 digits. Sent as jsonb, psycopg parses it while it decodes the whole claim, and
-- the error fails the claim: every job in it stays `processing` until its lease runs out. Sent
-- as text, each job parses its own payload (worker/queue/models.py), so a poisoned one fails
-- alone. The size is measured here, and a payload over the worker's MAX_PAYLOAD_BYTES is not
-- sent at all: `payload` is null and `payload_bytes` says how big it is. The worker's `claim`
-- statement (worker/queue/queries.sql) does the same.
--
-- The function gains a parameter (the size limit) and changes its result, so the old one goes:
-- a worker of the previous version that calls it falls back to its two statements (and says
-- so in its log) until it is replaced. Pasting the files again in order (003 recreates the old
-- function, this file drops it again) leaves the same functions.

drop function if exists public.video_jobs_complete_and_claim(uuid, uuid, text, text, jsonb, text);

-- Complete one job (fenced on its lease token, exactly like the worker's `complete` statement)
-- and claim the next ready job for the same worker (exactly like its `claim` statement with a
-- limit of one). One row back: done_id is null when the lease was gone; id is null when nothing
-- was ready. tests/queue/test_store.py checks that the rows this leaves are the ones the two
-- statements leave, and that both hand over the same payload text.
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
        returning j.id, j.payload::text, j.attempts, j.max_attempts, j.lease_token, j.user_id,
                  j.priority, j.webhook_url, j.created_at
        into id, payload, attempts, max_attempts, lease_token, user_id, priority, webhook_url,
             created_at;
        payload_bytes := octet_length(payload);
        if payload_bytes > p_max_payload_bytes then
            payload := null;
        end if;
    end if;
    return next;
end;
$$;

-- The worker calls it as the table owner or a BYPASSRLS role. On Supabase, where new functions
-- in `public` are granted to the API roles by default, they lose it: no browser claims jobs.
-- PUBLIC loses it there too (as sql/supabase/100_supabase.sql does; on a project migrated
-- before this file, that file does not run again), or anon would keep it through PUBLIC.
do $$
begin
    if exists (select 1 from pg_roles where rolname = 'anon') then
        revoke execute on function public.video_jobs_complete_and_claim(
            uuid, uuid, text, text, jsonb, text, bigint) from public, anon;
    end if;
    if exists (select 1 from pg_roles where rolname = 'authenticated') then
        revoke execute on function public.video_jobs_complete_and_claim(
            uuid, uuid, text, text, jsonb, text, bigint) from authenticated;
    end if;
end
$$;
