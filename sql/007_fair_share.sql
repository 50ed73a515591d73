-- Fair share between users (docs/contract.md, "Fair share between users").
--
-- End users insert their own jobs, so one user's backlog must not stall everyone else's:
--
--   1. Turns. Among ready jobs of equal priority the claim serves the user with the fewest jobs
--      running first, then run_at and insertion order. Rows without user_id (a trusted
--      backend) take their turns as one user. Priority still wins across users.
--   2. A cap on running jobs per user (MAX_RUNNING_PER_USER), exact over all replicas: the
--      claim takes a per-user advisory transaction lock (try-lock: it never waits) and counts
--      that user's running jobs under it. The lock is held until the claim's own transaction
--      commits, and a transaction's changes are visible before its locks are released, so the
--      next claim for that user counts this one. Rows without user_id are not capped.
--   3. A cap on pending jobs per user (MAX_PENDING_PER_USER), checked by a trigger on insert,
--      so it holds under RLS, through enqueue_video_job and from a backend, with no worker
--      running. A retry going back to pending is never refused: only inserts are counted.
--
-- Both limits live in the one-row table video_jobs_settings, where the worker writes its
-- configured values when it migrates and when it starts (worker/queue/limits.py); until then
-- the defaults below hold.
--
-- The claim becomes video_jobs_claim_v2 and the hot path video_jobs_complete_and_claim_v2
-- (same arguments and results as _v1, which stay for workers of the previous version; those
-- know neither turns nor the running cap). Every function runs with the caller's rights and
-- `set search_path = ''`, as in 006; the pending-cap trigger is the exception (see there).

create table if not exists public.video_jobs_settings (
    id                   boolean primary key default true check (id),
    max_running_per_user int not null default 2 check (max_running_per_user >= 1),
    max_pending_per_user int not null default 100 check (max_pending_per_user >= 1),
    updated_at           timestamptz not null default now()
);

insert into public.video_jobs_settings (id) values (true) on conflict (id) do nothing;

-- One user's ready jobs in claim order: the head of a user's queue is one index probe (the
-- claim's turns), and a user's pending count (the pending cap) walks only their own entries.
-- `user_id is null` is an index condition too: the rows without a user are one more "user".
create index if not exists video_jobs_user_claim_idx
    on public.video_jobs (user_id, priority desc, run_at, seq)
    where status = 'pending';

-- The claim index without the rows that have no user_id: when the backend's jobs are running
-- (they often are), looking for a user with nothing running must not walk the backend's whole
-- backlog first.
create index if not exists video_jobs_claim_users_idx
    on public.video_jobs (priority desc, run_at, seq)
    where status = 'pending' and user_id is not null;

-- Running jobs by user: the claim counts them on every call. Few rows (the jobs in flight),
-- and no frequently updated column.
create index if not exists video_jobs_running_user_idx
    on public.video_jobs (user_id)
    where status = 'processing';

-- ---------------------------------------------------------------------------------------------
-- The pending cap. SECURITY DEFINER so that it counts every pending row of the user and reads
-- the settings whatever the inserting role may see (under RLS, `authenticated` sees only its
-- own rows and not the settings table at all). It takes a per-user advisory transaction lock,
-- so two inserts of one user at the same moment cannot both pass at 99: the second waits for
-- the first to commit, then counts it. An insert whose idempotency_key already exists is let
-- through: ON CONFLICT then returns the first job instead of the user seeing the cap.
-- SQLSTATE VJ001, for apps to match; the message is written for the end user.
-- ---------------------------------------------------------------------------------------------

create or replace function public.video_jobs_pending_cap() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_cap int;
    v_pending bigint;
begin
    if new.user_id is null or new.status <> 'pending' then
        return new;
    end if;
    if new.idempotency_key is not null and exists (
        select 1 from public.video_jobs as j where j.idempotency_key = new.idempotency_key
    ) then
        return new;
    end if;
    select s.max_pending_per_user into v_cap from public.video_jobs_settings as s where s.id;
    v_cap := coalesce(v_cap, 100);
    perform pg_advisory_xact_lock(72385611, hashtext(new.user_id::text));
    select count(*) into v_pending
    from public.video_jobs as j
    where j.user_id = new.user_id and j.status = 'pending';
    if v_pending >= v_cap then
        raise exception 'you have % videos waiting: wait until one of them starts before adding another', v_pending
            using errcode = 'VJ001',
                  detail = format('At most %s jobs of one user may be pending '
                                  '(MAX_PENDING_PER_USER).', v_cap),
                  hint = 'Try again once one of your videos has started rendering.';
    end if;
    return new;
end;
$$;

drop trigger if exists video_jobs_pending_cap on public.video_jobs;
create trigger video_jobs_pending_cap
    before insert on public.video_jobs
    for each row
    when (new.user_id is not null)
    execute function public.video_jobs_pending_cap();

-- ---------------------------------------------------------------------------------------------
-- The claim, with turns and the running cap. Per job it claims:
--
--   a. one statement: the user_id of every running job (few rows, by a partial index; a
--      user once per job, the backend's as null) and MAX_RUNNING_PER_USER;
--   b. one statement: the first ready job, in claim order, of a user with nothing running,
--      walking past every running user's rows (at most MAX_PENDING_PER_USER each). While the
--      backend has nothing running its rows take part (the claim index); while it has, the
--      index without them is walked, and the backend's first job, fetched beside it in the
--      same statement (video_jobs_user_claim_idx), comes first only at a higher priority.
--      While a user has jobs running, the same statement reads the priority of the first
--      ready job, whoever's it is (the head of the claim index);
--   c. only when someone with jobs running may come first (the head's priority is above b's
--      job's, b found nothing, or b's job is the busy backend's): each such user below the cap
--      gets one probe for their first ready job at that priority or above, and the best by
--      priority, then fewest running, then age, wins;
--   d. for a job with a user_id, the user's advisory lock (try: another replica claiming for
--      that user right now means skip the user this time), then the update, which counts the
--      user's running jobs under the lock and marks the job only below the cap; at the cap,
--      the user is skipped and the pick starts again.
--
-- Its cost is held to 1.5x of claim_v1 (bench/bench_fair_claim.py): in the usual
-- case (one priority, a user with nothing running next) it runs three statements to v1's two
-- and c, the busy users' probes, not at all. What b filters on is computed once, before it: an
-- expression such as `array_remove(..) || ..` in its WHERE clause would run again for every
-- row it walks past.
--
-- b and c lock what they return with SKIP LOCKED, as v1 did. Each statement in a volatile
-- PL/pgSQL function reads a fresh snapshot: the update's count, a statement after the lock was
-- granted, sees every claim committed before, and a claim for the user not yet committed holds
-- the lock, so the count is exact.
-- ---------------------------------------------------------------------------------------------

create or replace function public.video_jobs_claim_v2(
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
-- One generic plan per statement, kept for the backend's life (see claim_v1 in 006).
set plan_cache_mode = force_generic_plan
as $$
#variable_conflict use_column
declare
    v_now timestamptz := coalesce(p_now, now());
    v_claimed int := 0;
    v_skipped uuid[] := '{}';  -- users this call gave up on (lock taken elsewhere, or full)
    v_running uuid[];       -- the user_id of each running job: a user as often as they run
    v_passed uuid[];        -- users b walks past: every one running, and the skipped
    v_backend_n int;        -- running jobs without a user_id
    v_cap int;
    v_busy boolean;         -- whether a user has jobs running
    v_top int;              -- the priority of the first ready job (while a user has jobs running)
    v_id uuid;              -- b's job, then the winner
    v_user uuid;
    v_priority int;
    v_run_at timestamptz;
    v_seq bigint;
    v_c_id uuid;            -- c's job
    v_c_user uuid;
    v_c_priority int;
    v_c_n int;
    v_c_run_at timestamptz;
    v_c_seq bigint;
begin
    while v_claimed < p_limit loop
        -- a.
        select array(select r.user_id from public.video_jobs as r
                     where r.status = 'processing'),
               coalesce((select s.max_running_per_user from public.video_jobs_settings as s
                         where s.id), 2)
        into v_running, v_cap;
        v_passed := array_remove(v_running, null) || v_skipped;
        v_backend_n := cardinality(v_running) - cardinality(array_remove(v_running, null));
        v_busy := cardinality(v_running) > v_backend_n;

        -- b.
        v_id := null;
        if v_backend_n = 0 then
            select j.id, j.user_id, j.priority, j.run_at, j.seq,
                   case when v_busy then (select t.priority from public.video_jobs as t
                                          where t.status = 'pending' and t.run_at <= v_now
                                            and t.cancel_requested_at is null
                                          order by t.priority desc, t.run_at, t.seq
                                          limit 1) end
            into v_id, v_user, v_priority, v_run_at, v_seq, v_top
            from public.video_jobs as j
            where j.status = 'pending' and j.run_at <= v_now and j.cancel_requested_at is null
              and (j.user_id is null or j.user_id <> all(v_passed))
            order by j.priority desc, j.run_at, j.seq
            limit 1
            for update skip locked;
        else
            -- (`order by j.user_id` first: all null, it lets the user index give the order)
            select c.id, c.user_id, c.priority, c.run_at, c.seq,
                   case when v_busy then (select t.priority from public.video_jobs as t
                                          where t.status = 'pending' and t.run_at <= v_now
                                            and t.cancel_requested_at is null
                                          order by t.priority desc, t.run_at, t.seq
                                          limit 1) end
            into v_id, v_user, v_priority, v_run_at, v_seq, v_top
            from (select * from (select j.id, j.user_id, j.priority, j.run_at, j.seq, 0 as busy
                                 from public.video_jobs as j
                                 where j.status = 'pending' and j.user_id is not null
                                   and j.run_at <= v_now and j.cancel_requested_at is null
                                   and j.user_id <> all(v_passed)
                                 order by j.priority desc, j.run_at, j.seq
                                 limit 1
                                 for update skip locked) as u
                  union all
                  select * from (select j.id, j.user_id, j.priority, j.run_at, j.seq, 1
                                 from public.video_jobs as j
                                 where j.user_id is null and j.status = 'pending'
                                   and j.run_at <= v_now and j.cancel_requested_at is null
                                 order by j.user_id, j.priority desc, j.run_at, j.seq
                                 limit 1
                                 for update skip locked) as b) as c
            order by c.priority desc, c.busy
            limit 1;
        end if;

        -- c.
        if v_busy and (v_id is null or v_top > v_priority or (v_user is null and v_backend_n > 0))
        then
            select h.id, h.user_id, h.priority, k.n, h.run_at, h.seq
            into v_c_id, v_c_user, v_c_priority, v_c_n, v_c_run_at, v_c_seq
            from (select r.k, count(*)::int as n
                  from unnest(v_running) as r(k)
                  where r.k is not null and r.k <> all(v_skipped)
                  group by r.k
                  having count(*) < v_cap) as k
            cross join lateral (
                select q.id, q.user_id, q.priority, q.run_at, q.seq
                from public.video_jobs as q
                where q.user_id = k.k and q.status = 'pending'
                  and q.priority >= coalesce(v_priority, -2147483648)
                  and q.run_at <= v_now and q.cancel_requested_at is null
                order by q.priority desc, q.run_at, q.seq
                limit 1
                for update skip locked
            ) as h
            order by h.priority desc, k.n, h.run_at, h.seq
            limit 1;
            -- against a user with nothing running only a higher priority wins; against the
            -- busy backend, the same priority and fewer running (or as many, and older) too
            if found and (v_id is null or v_c_priority > v_priority
                          or (v_user is null and v_backend_n > 0 and v_c_priority = v_priority
                              and (v_c_n < v_backend_n
                                   or (v_c_n = v_backend_n
                                       and (v_c_run_at, v_c_seq) < (v_run_at, v_seq)))))
            then
                v_id := v_c_id;
                v_user := v_c_user;
            end if;
        end if;
        exit when v_id is null;

        -- d.
        if v_user is not null
           and not pg_try_advisory_xact_lock(72385610, hashtext(v_user::text)) then
            v_skipped := v_skipped || v_user;
            continue;
        end if;
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
          and (v_user is null
               or (select count(*) from public.video_jobs as r
                   where r.status = 'processing' and r.user_id = v_user) < v_cap)
        returning j.id, j.payload::text, j.attempts, j.max_attempts, j.lease_token, j.user_id,
                  j.priority, j.webhook_url, j.created_at
        into id, payload, attempts, max_attempts, lease_token, user_id, priority, webhook_url,
             created_at;
        if not found then
            exit when v_user is null;  -- cannot happen: the row is locked by this claim
            v_skipped := v_skipped || v_user;  -- at the cap
            continue;
        end if;
        payload_bytes := octet_length(payload);
        if payload_bytes > p_max_payload_bytes then
            payload := null;
        end if;
        v_claimed := v_claimed + 1;
        return next;
    end loop;
end;
$$;

-- The hot path: complete_v1 then claim_v2 of one job, in one round trip and one commit.
create or replace function public.video_jobs_complete_and_claim_v2(
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
    v_done := public.video_jobs_complete_v1(p_id, p_token, p_video_url, p_thumbnail_url,
                                            p_result, p_now);
    done_id := v_done.id;
    done_webhook_url := v_done.webhook_url;
    select n.id, n.payload, n.payload_bytes, n.attempts, n.max_attempts, n.lease_token,
           n.user_id, n.priority, n.webhook_url, n.created_at
    into id, payload, payload_bytes, attempts, max_attempts, lease_token, user_id, priority,
         webhook_url, created_at
    from public.video_jobs_claim_v2(p_worker_id, 1, p_max_payload_bytes, p_now) as n;
    return next;
end;
$$;

-- ---------------------------------------------------------------------------------------------
-- What a held-back job says. Run by the maintenance pass (one replica at a time, every few
-- seconds), never by the claim: a pending job of a user at the running cap gets the message
-- "waiting: N of your videos are rendering", and a job that says so while its user is no
-- longer at the cap loses it again. Rows are written only when their message changes, so a
-- queue that stays as it is costs no writes. Returns how many rows it changed.
-- ---------------------------------------------------------------------------------------------

create or replace function public.video_jobs_mark_held_v1(p_now timestamptz default null)
returns integer
language plpgsql
set search_path = ''
as $$
declare
    v_now timestamptz := coalesce(p_now, now());
    v_cap int;
    v_changed integer;
begin
    select s.max_running_per_user into v_cap from public.video_jobs_settings as s where s.id;
    v_cap := coalesce(v_cap, 2);
    with running as (
        select j.user_id, count(*)::int as n
        from public.video_jobs as j
        where j.status = 'processing' and j.user_id is not null
        group by j.user_id
    ),
    wanted as (
        select j.id,
               case when r.n >= v_cap
                    then format('waiting: %s of your videos %s rendering', r.n,
                                case when r.n = 1 then 'is' else 'are' end)
               end as message
        from public.video_jobs as j
        left join running as r on r.user_id = j.user_id
        where j.status = 'pending' and j.user_id is not null
          and j.run_at <= v_now and j.cancel_requested_at is null
          and (r.n >= v_cap or j.message like 'waiting: % rendering')
    )
    update public.video_jobs as t
    set message = w.message
    from wanted as w
    where t.id = w.id and t.status = 'pending' and t.message is distinct from w.message;
    get diagnostics v_changed = row_count;
    return v_changed;
end;
$$;

-- Only the worker claims, and only the worker marks held jobs. On Supabase, where new functions
-- in `public` are granted to the API roles by default, those roles and PUBLIC lose them (and
-- the settings table), as in 006; sql/supabase/102_fair_share.sql covers the other order.
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
                and p.proname in ('video_jobs_claim_v2', 'video_jobs_complete_and_claim_v2',
                                  'video_jobs_mark_held_v1', 'video_jobs_pending_cap') loop
        execute format('revoke execute on function %s from %s', fn, api_roles);
    end loop;
    execute format('revoke all on table public.video_jobs_settings from %s', api_roles);
end
$$;

-- The settings are two numbers, no user's data, and only roles granted the table reach them
-- (the API roles are not, above). Row level security is on, as everywhere in `public` on
-- Supabase, with one policy that lets those roles through: a least-privilege worker role
-- without BYPASSRLS (docs/production.md) must still read and write the row.
alter table public.video_jobs_settings enable row level security;
drop policy if exists video_jobs_settings_granted on public.video_jobs_settings;
create policy video_jobs_settings_granted on public.video_jobs_settings
    for all using (true) with check (id);
