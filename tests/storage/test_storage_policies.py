"""The Storage policies in docs/production.md, run on a real Postgres dressed as Supabase Storage.

The database gets what a Supabase project has before the pasted SQL runs: the `authenticated`
role, `auth.uid()` read from the request's JWT claims, and the parts of the `storage` schema the
policies use (`buckets`, `objects` with RLS on, and `storage.foldername` as Supabase defines
it). Then the SQL block of the doc runs twice (it must be re-runnable), and requests are played
as PostgREST and Storage play them: one transaction, `set local role authenticated`, the claims.
The rule they must match is the worker's: the first folder is exactly the user's id.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import psycopg
import pytest
from psycopg import errors

DOC = Path(__file__).resolve().parents[2] / "docs" / "production.md"
U = "6f1c2a9e-3b7d-4c55-9e0a-1d2b3c4d5e6f"
V = "0b0b0b0b-0000-4000-8000-000000000000"

CREATE_ROLE = """
do $$ begin
    create role authenticated nologin noinherit;
exception when duplicate_object or unique_violation then null;
end $$
"""

SUPABASE_STORAGE = """
create schema auth;
grant usage on schema auth to authenticated;
create function auth.uid() returns uuid language sql stable as $$
    select (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')::uuid
$$;
create schema storage;
grant usage on schema storage to authenticated;
create table storage.buckets (id text primary key, name text not null, public boolean);
create table storage.objects (
    id uuid primary key default gen_random_uuid(),
    bucket_id text references storage.buckets (id),
    name text not null,
    owner uuid,
    unique (bucket_id, name)
);
alter table storage.objects enable row level security;
grant select, insert, update, delete on storage.objects to authenticated;
create function storage.foldername(name text) returns text[] language plpgsql as $$
declare
    _parts text[];
begin
    select string_to_array(name, '/') into _parts;
    return _parts[1:array_length(_parts, 1) - 1];
end
$$;
grant execute on function storage.foldername(text) to authenticated;
"""


# The output bucket, as docs/production.md creates it before the policies ("Storage: where the
# videos go").
OUTPUT_BUCKET = """
insert into storage.buckets (id, name, public)
values ('generated-videos', 'generated-videos', false)
"""


def policies_sql() -> str:
    text = DOC.read_text()
    found = re.search(
        r"<!-- storage-policies:begin -->\s*```sql\n(.*?)```\s*<!-- storage-policies:end -->",
        text,
        re.S,
    )
    assert found, "docs/production.md lost its storage-policies block"
    return found.group(1)


@pytest.fixture
def conn(db_url: str):
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(CREATE_ROLE)
        conn.execute(SUPABASE_STORAGE)
        conn.execute(OUTPUT_BUCKET)
        conn.execute(policies_sql())
        conn.execute(policies_sql())  # pasted twice: nothing breaks, nothing doubles
        conn.execute(
            "insert into storage.objects (bucket_id, name) values "
            "('uploads', %(v)s || '/clip.mp4'), ('uploads', %(u)s || '/clip.mp4'), "
            "('generated-videos', %(v)s || '/out.mp4'), ('generated-videos', %(u)s || '/out.mp4')",
            {"u": U, "v": V},
        )
        yield conn


def as_user(conn: psycopg.Connection, statement: str, params: dict | None = None) -> list:
    """One request as user U, the way PostgREST and Storage make it; rolled back after."""
    with conn.transaction(force_rollback=True):
        conn.execute("set local role authenticated")
        claims = json.dumps({"sub": U, "role": "authenticated"})
        conn.execute("select set_config('request.jwt.claims', %s, true)", [claims])
        cur = conn.execute(statement, params or {})
        return cur.fetchall() if cur.description else [cur.rowcount]


def test_the_block_pastes_twice_without_doubling_a_policy(conn):
    (count,) = conn.execute(
        "select count(*) from pg_policies where schemaname = 'storage' and tablename = 'objects'"
    ).fetchone()
    assert count == 5
    buckets = conn.execute("select id, public from storage.buckets order by id").fetchall()
    assert buckets == [("generated-videos", False), ("uploads", False)]  # uploads made once


def test_a_user_sees_only_their_own_folder(conn):
    rows = as_user(conn, "select bucket_id, name from storage.objects order by bucket_id")
    assert rows == [("generated-videos", f"{U}/out.mp4"), ("uploads", f"{U}/clip.mp4")]


def test_a_user_uploads_into_their_own_folder_and_nowhere_else(conn):
    """One database for all cases (each request is rolled back): a fresh one costs a second."""
    insert = "insert into storage.objects (bucket_id, name) values (%(b)s, %(n)s) returning name"
    for name in (f"{U}/new.mp4", f"{U}/deep/er/new.mp4"):
        assert as_user(conn, insert, {"b": "uploads", "n": name}) == [(name,)]
    for bucket, name in [
        ("uploads", f"{V}/new.mp4"),  # another user's folder
        ("uploads", f"{U}x/new.mp4"),  # the id as a prefix of another folder
        ("uploads", f"{U.upper()}/new.mp4"),  # another spelling
        ("uploads", f"x/{U}/new.mp4"),  # the id, but not first
        ("uploads", U),  # no folder at all
        ("uploads", f"{U}.mp4"),
        ("generated-videos", f"{U}/new.mp4"),  # only the worker writes outputs
    ]:
        with pytest.raises(errors.InsufficientPrivilege, match="row-level security"):
            as_user(conn, insert, {"b": bucket, "n": name})


def test_a_user_cannot_move_replace_or_remove_another_users_objects(conn):
    theirs = {"v": f"{V}/%"}
    update = "update storage.objects set owner = null where name like %(v)s"
    assert as_user(conn, update, theirs) == [0]
    assert as_user(conn, "delete from storage.objects where name like %(v)s", theirs) == [0]
    move = "update storage.objects set name = %(to)s where bucket_id = 'uploads' and name = %(n)s"
    with pytest.raises(errors.InsufficientPrivilege, match="row-level security"):
        as_user(conn, move, {"to": f"{V}/mine-now.mp4", "n": f"{U}/clip.mp4"})
    remove = "delete from storage.objects where bucket_id = %(b)s and name = %(n)s"
    assert as_user(conn, remove, {"b": "uploads", "n": f"{U}/clip.mp4"}) == [1]
    assert as_user(conn, remove, {"b": "generated-videos", "n": f"{U}/out.mp4"}) == [0]
