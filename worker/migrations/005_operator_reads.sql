-- What operators read (/stats, /metrics, the dashboard) costs the same at a million rows.

-- Recent failures are read newest first, ten at a time: an index of failed rows only, in that
-- order, makes that ten index entries instead of a walk over every finished row.
create index if not exists video_jobs_failed_idx
    on public.video_jobs (completed_at desc nulls last)
    where status = 'failed';

-- Jobs by status, at a cost that does not grow with history. Pending and processing rows are
-- counted exactly, through the status index: they are the jobs in play, few whatever the table
-- holds. Finished rows are counted exactly while the table is small (the planner's row estimate
-- under `exact_below`, or no estimate yet); past that they are estimated from the statistics
-- ANALYZE keeps (the table's row estimate times each status's share of its sample), and
-- `estimated` says so. PL/pgSQL keeps the plans (pg_stats is a costly view to plan) and runs
-- only the branch it needs.
create or replace function public.video_jobs_status_counts(exact_below bigint default 10000)
returns table (status text, n bigint, estimated boolean)
language plpgsql
stable
set search_path = ''
as $$
#variable_conflict use_column
declare
    table_rows float8;
begin
    return query
        select j.status, count(*)::bigint, false
        from public.video_jobs as j
        where j.status in ('pending', 'processing')
        group by j.status;
    select c.reltuples into table_rows
    from pg_catalog.pg_class as c where c.oid = 'public.video_jobs'::regclass;
    if table_rows < exact_below then
        return query
            select j.status, count(*)::bigint, false
            from public.video_jobs as j
            where j.status in ('completed', 'failed', 'cancelled')
            group by j.status;
    else
        return query
            select mcv.status, round(mcv.share * table_rows)::bigint, true
            from pg_catalog.pg_stats as s
            cross join lateral unnest(s.most_common_vals::text::text[], s.most_common_freqs)
                as mcv(status, share)
            where s.schemaname = 'public' and s.tablename = 'video_jobs'
              and s.attname = 'status' and mcv.status in ('completed', 'failed', 'cancelled');
    end if;
end;
$$;

-- Only the worker reads the whole queue. On Supabase, where new functions in `public` are
-- granted to the API roles by default, they lose it.
do $$
begin
    if exists (select 1 from pg_roles where rolname = 'anon') then
        revoke execute on function public.video_jobs_status_counts(bigint) from anon;
    end if;
    if exists (select 1 from pg_roles where rolname = 'authenticated') then
        revoke execute on function public.video_jobs_status_counts(bigint) from authenticated;
    end if;
end
$$;
