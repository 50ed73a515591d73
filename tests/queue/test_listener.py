"""The LISTEN connection: ready on a real server, honest about being down."""

from __future__ import annotations

import asyncio
import uuid

from tests.queue.helpers import wait_for
from worker.queue.listener import Listener, ListenerState


async def test_listener_delivers_wakeups_and_cancel_notices(db_url, store):
    woken, cancelled = asyncio.Event(), []
    listener = Listener(db_url, on_pending=woken.set, on_cancel=cancelled.append)
    task = asyncio.create_task(listener.run())
    try:
        await wait_for(lambda: asyncio.sleep(0, result=listener.state is ListenerState.LISTENING))
        woken.clear()
        job_id, _ = await store.enqueue({})
        await asyncio.wait_for(woken.wait(), 5)
        await store.request_cancel(job_id)
        await wait_for(lambda: asyncio.sleep(0, result=cancelled == [job_id]))
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert listener.state is ListenerState.STOPPED


async def test_listener_reports_reconnecting_when_the_database_is_gone():
    listener = Listener(
        "postgresql://postgres@127.0.0.1:1/none",
        on_pending=lambda: None,
        on_cancel=lambda _id: None,
    )
    task = asyncio.create_task(listener.run())
    try:
        await wait_for(
            lambda: asyncio.sleep(0, result=listener.state is ListenerState.RECONNECTING),
            timeout=15,
        )
        assert listener.last_error and "OperationalError" in listener.last_error
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_stray_notification_is_ignored(db_url):
    calls: list[object] = []
    listener = Listener(db_url, on_pending=lambda: calls.append("p"), on_cancel=calls.append)
    listener._dispatch("cancel:not-a-uuid")
    listener._dispatch("something else")
    listener._dispatch(f"cancel:{uuid.UUID(int=1)}")
    assert calls == [uuid.UUID(int=1)]


async def test_the_pool_replaces_a_connection_the_server_closed(db_url):
    """A connection returned a moment ago skips the ping, yet one the server closed meanwhile
    is noticed by a local read and replaced, so the next statement does not fail."""
    from worker.db.connection import connect, make_pool

    pool = make_pool(db_url, max_size=1)
    await pool.open(wait=True)
    try:
        async with pool.connection() as conn:
            old = (await (await conn.execute("select pg_backend_pid() as pid")).fetchone())["pid"]
        admin = await connect(db_url)
        await admin.execute("select pg_terminate_backend(%s)", (old,))
        await admin.close()

        async def gone() -> bool:
            check = await connect(db_url)
            cur = await check.execute(
                "select count(*) as n from pg_stat_activity where pid = %s", (old,)
            )
            n = (await cur.fetchone())["n"]
            await check.close()
            return n == 0

        await wait_for(gone, timeout=5)
        async with pool.connection() as conn:
            new = (await (await conn.execute("select pg_backend_pid() as pid")).fetchone())["pid"]
        assert new != old
    finally:
        await pool.close()
