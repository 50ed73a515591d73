-- Fair share (sql/007_fair_share.sql) on Supabase: its functions and its settings table out of
-- the API roles' reach. Applied by `video-worker migrate` only where the `auth` schema exists
-- (after sql/*.sql); also pastes into the Supabase SQL editor, after 101. Idempotent.
--
-- 007 does this itself where the API roles exist when it runs, as on every Supabase project;
-- this file covers a database migrated before it became a Supabase one (as 101 does for 006).
-- The pending cap's trigger needs no grant: triggers fire without EXECUTE, and its function is
-- SECURITY DEFINER, so an insert under RLS (or through enqueue_video_job) is counted against
-- every pending row of its user, whatever the inserting role may see.

do $$
declare
    fn regprocedure;
begin
    for fn in select p.oid::regprocedure from pg_proc as p
              where p.pronamespace = 'public'::regnamespace
                and p.proname in ('video_jobs_claim_v2', 'video_jobs_complete_and_claim_v2',
                                  'video_jobs_mark_held_v1', 'video_jobs_pending_cap') loop
        execute format('revoke execute on function %s from public, anon, authenticated', fn);
    end loop;
end
$$;

revoke all on table public.video_jobs_settings from public, anon, authenticated;
