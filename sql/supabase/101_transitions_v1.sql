-- The job transitions of 006_transitions_v1.sql, out of the API roles' reach on Supabase.
-- Applied by `video-worker migrate` only where the `auth` schema exists (after sql/*.sql); also
-- pastes into the Supabase SQL editor, after 100_supabase.sql. Idempotent: run it again at will.
--
-- 006 revokes them itself where the API roles exist when it runs, as on every Supabase
-- project. This file covers the other order: a database migrated before it became a Supabase
-- one, whose `grant all on all routines in schema public` then reached these functions too
-- (as 100_supabase.sql does for the functions that came before them). The worker's own roles
-- (the table owner, service_role, the least-privilege role of docs/production.md) keep them.

do $$
declare
    fn regprocedure;
begin
    for fn in select p.oid::regprocedure from pg_proc as p
              where p.pronamespace = 'public'::regnamespace
                and p.proname in ('video_jobs_claim_v1', 'video_jobs_complete_v1',
                                  'video_jobs_fail_v1', 'video_jobs_cancel_v1',
                                  'video_jobs_release_v1', 'video_jobs_rescue_v1',
                                  'video_jobs_cancel_pending_v1',
                                  'video_jobs_complete_and_claim_v1') loop
        execute format('revoke execute on function %s from public, anon, authenticated', fn);
    end loop;
end
$$;
