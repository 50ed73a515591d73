"""sql/schema.sql, the current schema in one file, is what the numbered migrations build.

Two fresh databases: one gets sql/schema.sql, the other `migrate` (every numbered file, in
order). Their catalogs must agree object by object: tables and columns (types, nullability,
defaults), constraints, indexes, functions, triggers, views, sequences, policies, privileges and
comments, and the rows the schema seeds. The migrations' own ledger, video_worker_migrations, is
left out: schema.sql does not keep one. Then `migrate` runs over the schema.sql database, as it
does when a worker starts on a project set up from the file, and must change nothing but that
ledger. The same again on a database dressed up as Supabase (tests/test_supabase.py), with the
files of sql/supabase/ pasted after schema.sql, as its header says.
"""

from __future__ import annotations

import difflib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import psycopg
import pytest

from tests.pg import Databases, url_for_uri
from tests.test_supabase import FAKE_PG_CRON, SUPABASE_BOOTSTRAP, create_roles
from worker.db.connection import connect
from worker.db.migrate import SQL_DIR, migrate, migrations

Conn = psycopg.AsyncConnection[Any]
LEDGER = "video_worker_migrations"

# One query per kind of object in `public`; each row's first column names the object, the rest
# is what must agree. Privileges are sorted: the order grants were made in does not matter.
_ACL = "(select array_agg(a::text order by a::text) from unnest({}) as a)"
CATALOG = {
    "relations": f"""
        select c.relname as object, c.relkind as kind, c.relpersistence as persistence,
               c.reloptions as options, c.relrowsecurity as rls,
               c.relforcerowsecurity as force_rls, c.relreplident as replica_identity,
               pg_get_userbyid(c.relowner) as owner, {_ACL.format("c.relacl")} as acl,
               obj_description(c.oid, 'pg_class') as comment
        from pg_class as c
        where c.relnamespace = 'public'::regnamespace and c.relname not like '{LEDGER}%'
        """,
    "columns": f"""
        select c.relname || '.' || a.attname as object,
               row_number() over (partition by c.oid order by a.attnum) as position,
               format_type(a.atttypid, a.atttypmod) as type, a.attnotnull as not_null,
               pg_get_expr(d.adbin, d.adrelid) as default, a.attidentity as identity,
               a.attgenerated as generated, a.attcollation::regcollation::text as collation,
               {_ACL.format("a.attacl")} as acl, col_description(c.oid, a.attnum) as comment
        from pg_attribute as a
        join pg_class as c on c.oid = a.attrelid
        left join pg_attrdef as d on d.adrelid = a.attrelid and d.adnum = a.attnum
        where c.relnamespace = 'public'::regnamespace and c.relname not like '{LEDGER}%'
          and c.relkind in ('r', 'p', 'v', 'm', 'f', 'c') and a.attnum > 0
          and not a.attisdropped
        """,
    "constraints": f"""
        select coalesce(c.relname, t.typname) || '.' || k.conname as object,
               k.contype as type, pg_get_constraintdef(k.oid) as definition,
               k.condeferrable as deferrable, k.condeferred as deferred,
               k.convalidated as validated, obj_description(k.oid, 'pg_constraint') as comment
        from pg_constraint as k
        left join pg_class as c on c.oid = k.conrelid
        left join pg_type as t on t.oid = k.contypid
        where k.connamespace = 'public'::regnamespace
          and coalesce(c.relname, '') not like '{LEDGER}%'
        """,
    "indexes": f"""
        select i.relname as object, pg_get_indexdef(x.indexrelid) as definition,
               x.indisclustered as clustered, x.indisreplident as replica_identity
        from pg_index as x
        join pg_class as i on i.oid = x.indexrelid
        join pg_class as t on t.oid = x.indrelid
        where t.relnamespace = 'public'::regnamespace and t.relname not like '{LEDGER}%'
        """,
    "functions": f"""
        select p.oid::regprocedure::text as object, pg_get_functiondef(p.oid) as definition,
               pg_get_userbyid(p.proowner) as owner, {_ACL.format("p.proacl")} as acl,
               obj_description(p.oid, 'pg_proc') as comment
        from pg_proc as p
        where p.pronamespace = 'public'::regnamespace and p.prokind in ('f', 'p')
        """,
    "aggregates": """
        select p.oid::regprocedure::text as object, p.prokind as kind
        from pg_proc as p
        where p.pronamespace = 'public'::regnamespace and p.prokind not in ('f', 'p')
        """,
    "triggers": """
        select c.relname || '.' || g.tgname as object,
               pg_get_triggerdef(g.oid) as definition, g.tgenabled as enabled,
               obj_description(g.oid, 'pg_trigger') as comment
        from pg_trigger as g
        join pg_class as c on c.oid = g.tgrelid
        where c.relnamespace = 'public'::regnamespace and not g.tgisinternal
        """,
    "views": """
        select c.relname as object, pg_get_viewdef(c.oid) as definition
        from pg_class as c
        where c.relnamespace = 'public'::regnamespace and c.relkind in ('v', 'm')
        """,
    "sequences": """
        select s.seqrelid::regclass::text as object, format_type(s.seqtypid, null) as type,
               s.seqstart as start, s.seqincrement as increment, s.seqmin as min,
               s.seqmax as max, s.seqcache as cache, s.seqcycle as cycle,
               (select d.refobjid::regclass::text || '.' || a.attname || ' ' || d.deptype::text
                from pg_depend as d
                join pg_attribute as a on a.attrelid = d.refobjid and a.attnum = d.refobjsubid
                where d.classid = 'pg_class'::regclass and d.objid = s.seqrelid
                  and d.refclassid = 'pg_class'::regclass) as owned_by
        from pg_sequence as s
        join pg_class as c on c.oid = s.seqrelid
        where c.relnamespace = 'public'::regnamespace
        """,
    "types": """
        select t.typname as object, t.typtype as type,
               format_type(nullif(t.typbasetype, 0), null) as base,
               (select array_agg(e.enumlabel order by e.enumsortorder)
                from pg_enum as e where e.enumtypid = t.oid) as labels,
               obj_description(t.oid, 'pg_type') as comment
        from pg_type as t
        where t.typnamespace = 'public'::regnamespace and t.typtype in ('d', 'e', 'r', 'm')
        """,
    "policies": f"""
        select p.tablename || '.' || p.policyname as object, p.permissive, p.roles, p.cmd,
               p.qual, p.with_check
        from pg_policies as p
        where p.schemaname = 'public' and p.tablename not like '{LEDGER}%'
        """,
    "rules": """
        select r.tablename || '.' || r.rulename as object, r.definition
        from pg_rules as r where r.schemaname = 'public'
        """,
    "publications": f"""
        select p.pubname || ' ' || p.tablename as object
        from pg_publication_tables as p
        where p.schemaname = 'public' and p.tablename not like '{LEDGER}%'
        """,
    "schema": f"""
        select n.nspname as object, pg_get_userbyid(n.nspowner) as owner,
               {_ACL.format("n.nspacl")} as acl,
               obj_description(n.oid, 'pg_namespace') as comment
        from pg_namespace as n where n.nspname = 'public'
        """,
    "default privileges": f"""
        select pg_get_userbyid(d.defaclrole) || ' ' || d.defaclobjtype::text as object,
               d.defaclnamespace::regnamespace::text as schema,
               {_ACL.format("d.defaclacl")} as acl
        from pg_default_acl as d
        """,
    "extensions": """
        select e.extname as object, e.extversion as version from pg_extension as e
        """,
    # the one row of settings the schema seeds (its updated_at is the moment it was written)
    "rows": """
        select 'video_jobs_settings' as object, s.id, s.max_running_per_user,
               s.max_pending_per_user
        from public.video_jobs_settings as s
        union all
        select 'video_jobs', null, count(*), null from public.video_jobs
        """,
}


async def catalog(conn: Conn) -> dict[str, dict[str, str]]:
    """Each kind of object in `public`: its objects by name, each described in a few lines."""
    found: dict[str, dict[str, str]] = {}
    for kind, query in CATALOG.items():
        cur = await conn.execute(query.encode())
        rows = await cur.fetchall()
        found[kind] = {str(row["object"]): _described(row) for row in rows}
        assert len(found[kind]) == len(rows), f"two {kind} of one name: {rows}"
    return found


def _described(row: dict[str, Any]) -> str:
    return "".join(
        f"{key}: {value}\n" if isinstance(value, str) and "\n" in value else f"{key}: {value!r}\n"
        for key, value in row.items()
        if key != "object"
    )


def differences(
    migrated: dict[str, dict[str, str]], pasted: dict[str, dict[str, str]]
) -> list[str]:
    """What one database has and the other lacks, or has otherwise, kind by kind."""
    said: list[str] = []
    for kind in CATALOG:
        before, after = migrated[kind], pasted[kind]
        said += [f"{kind}: {name} only after the migrations" for name in before.keys() - after]
        said += [f"{kind}: {name} only after schema.sql" for name in after.keys() - before]
        for name in sorted(before.keys() & after.keys()):
            if before[name] != after[name]:
                diff = difflib.unified_diff(
                    before[name].splitlines(), after[name].splitlines(),
                    "the migrations", "schema.sql", n=1, lineterm="",
                )  # fmt: skip
                said.append(f"{kind}: {name} differs\n" + "\n".join(diff))
    return said


def schema_sql() -> str:
    return (SQL_DIR / "schema.sql").read_text()


def supabase_files() -> list[str]:
    return [m.sql for m in migrations() if m.supabase_only]


Prepare = Callable[[Conn], Awaitable[None]]


@pytest.fixture
async def two_databases(databases: Databases) -> AsyncIterator[Callable[[], Awaitable[Conn]]]:
    """Fresh, empty databases (not the migrated template), dropped afterwards."""
    names: list[str] = []
    conns: list[Conn] = []

    async def fresh() -> Conn:
        name = f"vw_schema_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(databases.admin_url, autocommit=True) as admin:
            admin.execute(f'create database "{name}"'.encode())
        names.append(name)
        conns.append(await connect(url_for_uri(databases.admin_url, name)))
        return conns[-1]

    try:
        yield fresh
    finally:
        for conn in conns:
            await conn.close()
        with psycopg.connect(databases.admin_url, autocommit=True) as admin:
            for name in names:
                admin.execute(f'drop database if exists "{name}" with (force)'.encode())


async def no_supabase(conn: Conn) -> None:
    return None


async def dressed_as_supabase(conn: Conn) -> None:
    await create_roles(conn)
    await conn.execute(SUPABASE_BOOTSTRAP.encode())
    await conn.execute(FAKE_PG_CRON.encode())


@pytest.mark.parametrize("prepare", [no_supabase, dressed_as_supabase])
async def test_schema_sql_is_what_the_migrations_build(two_databases, prepare: Prepare):
    migrated, pasted = await two_databases(), await two_databases()
    await prepare(migrated)
    await prepare(pasted)
    assert await migrate(migrated)

    await pasted.execute(schema_sql().encode())
    if prepare is dressed_as_supabase:  # the header says: then sql/supabase/, in order
        for text in supabase_files():
            await pasted.execute(text.encode())
    expected = await catalog(migrated)
    assert expected["functions"] and expected["triggers"] and expected["indexes"]
    said = differences(expected, await catalog(pasted))
    assert not said, "sql/schema.sql and the migrations differ:\n" + "\n".join(said)

    # A worker started on a database set up from schema.sql migrates it: the numbered files
    # run over it (each is idempotent) and leave it as it was, plus the ledger.
    assert await migrate(pasted)
    said = differences(expected, await catalog(pasted))
    assert not said, "the migrations changed a database set up from schema.sql:\n" + "\n".join(said)


def test_migrate_applies_every_numbered_file_and_never_schema_sql():
    """Every .sql file of sql/ is a numbered migration but schema.sql: a file named otherwise
    would be left out of `migrate` without a word."""
    names = {m.name for m in migrations()}
    files = {p.relative_to(SQL_DIR).as_posix() for p in SQL_DIR.rglob("*.sql")}
    assert files - names == {"schema.sql"}


def test_the_schema_file_pastes_into_an_sql_editor():
    """No psql meta-commands: it must run as plain SQL in Supabase's editor."""
    for line in schema_sql().splitlines():
        assert not line.lstrip().startswith("\\"), line
