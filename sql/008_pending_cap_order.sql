-- The pending cap, once per statement instead of once per row, so that inserts for several
-- users cannot deadlock each other.
--
-- 007 counted in a BEFORE INSERT row trigger, taking each user's advisory lock in the order of
-- the rows. Two statements inserting rows for the same users in opposite orders (a backend
-- enqueueing for user A then B while another enqueues for B then A) could each hold one lock and
-- wait for the other: Postgres then aborted one with a deadlock error. Now one AFTER INSERT
-- statement trigger reads the statement's inserted rows (a transition table), takes every
-- user's lock in one order (the lock's key, then the user), and counts each user's pending rows,
-- this statement's included. The rules are 007's: rows without user_id are not limited; an
-- insert ON CONFLICT DO NOTHING whose idempotency_key exists inserts nothing and is not counted;
-- SQLSTATE VJ001 with the same message, naming the jobs that were waiting before the statement.
-- Separate statements of one transaction still take their locks in the order they run: a
-- backend inserting for many users in one transaction should insert them in one statement.
-- Same function name, so 007's and sql/supabase/102's revokes still apply. Idempotent.

create or replace function public.video_jobs_pending_cap() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_cap int;
    v_key int;
    v_user uuid;
    v_added bigint;
    v_pending bigint;
begin
    for v_key, v_user, v_added in
        select hashtext(a.user_id::text), a.user_id, count(*)
        from added as a
        where a.user_id is not null and a.status = 'pending'
        group by a.user_id
        order by 1, 2
    loop
        if v_cap is null then
            select s.max_pending_per_user into v_cap from public.video_jobs_settings as s
            where s.id;
            v_cap := coalesce(v_cap, 100);
        end if;
        perform pg_advisory_xact_lock(72385611, v_key);
        select count(*) into v_pending
        from public.video_jobs as j
        where j.user_id = v_user and j.status = 'pending';
        if v_pending > v_cap then
            raise exception 'you have % videos waiting: wait until one of them starts before adding another', v_pending - v_added
                using errcode = 'VJ001',
                      detail = format('At most %s jobs of one user may be pending '
                                      '(MAX_PENDING_PER_USER).', v_cap),
                      hint = 'Try again once one of your videos has started rendering.';
        end if;
    end loop;
    return null;
end;
$$;

drop trigger if exists video_jobs_pending_cap on public.video_jobs;
create trigger video_jobs_pending_cap
    after insert on public.video_jobs
    referencing new table as added
    for each statement
    execute function public.video_jobs_pending_cap();
