"""The operator page (GET /) in a real headless Chromium, against a real runner on a real database.

Chromium is Debian's `chromium` (/usr/bin/chromium), driven by Playwright's Python package with
`executable_path`: Playwright never downloads a browser of its own here. Without Chromium (or
without Playwright) these tests skip, so the README's test command still works on a machine with
only Python and pip; .ci/run installs Chromium so that CI runs them.

Every wait polls the page's DOM with a deadline; the page itself refreshes from `stats` every 2 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest

from tests.handlers import scripted
from tests.queue.helpers import running, status_is, wait_for
from worker.http.server import bound_port, create_app, serve
from worker.queue.runner import Runner

playwright_api = pytest.importorskip(
    "playwright.async_api", reason="the browser tests need Playwright (pip install -e '.[test]')"
)

CHROMIUM = (
    os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
)
if not CHROMIUM:
    pytest.skip(
        "Chromium is not installed (Debian: apt-get install chromium); the dashboard's "
        "browser tests need a real headless Chromium",
        allow_module_level=True,
    )

# The flags that work on this machine's closed network (see the machine doc): no background
# connections, no component updates, no sync, no GPU; --no-sandbox because CI runs as root.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PAGE_DEADLINE_MS = 15_000  # the page refreshes every 2 s; a few refreshes' worth, and then some


@dataclass
class Watched:
    """What went wrong in the page while the test looked at it."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        return (
            [f"console error: {m}" for m in self.console_errors]
            + [f"uncaught exception: {m}" for m in self.page_errors]
            + [f"failed request: {m}" for m in self.failed_requests]
            + [f"dialog opened: {m}" for m in self.dialogs]
        )


@pytest.fixture
async def browser():
    async with playwright_api.async_playwright() as pw:
        chromium = await pw.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield chromium
        finally:
            await chromium.close()


@contextlib.asynccontextmanager
async def dashboard(browser, runner: Runner) -> AsyncIterator[tuple[object, Watched]]:
    """Serve the runner's app on 127.0.0.1:0 and open / in a fresh page that records problems."""
    site = await serve(create_app(runner.status), 0, host="127.0.0.1")
    context = await browser.new_context(viewport={"width": 1100, "height": 800})
    page = await context.new_page()
    seen = Watched()
    page.on(
        "console",
        lambda m: m.type == "error" and seen.console_errors.append(f"{m.text} at {m.location}"),
    )
    page.on("pageerror", lambda exc: seen.page_errors.append(str(exc)))
    page.on(
        "requestfailed", lambda r: seen.failed_requests.append(f"{r.method} {r.url}: {r.failure}")
    )
    page.on(
        "response",
        lambda r: (
            r.status >= 400
            and seen.failed_requests.append(f"{r.request.method} {r.url}: HTTP {r.status}")
        ),
    )

    async def on_dialog(dialog) -> None:
        seen.dialogs.append(f"{dialog.type}: {dialog.message}")
        await dialog.dismiss()

    page.on("dialog", on_dialog)
    try:
        response = await page.goto(f"http://127.0.0.1:{bound_port(site)}/")
        assert response is not None and response.status == 200
        yield page, seen
    finally:
        await context.close()  # before the server goes, so the page's refreshes stop first
        await site.cleanup()


async def until(page, script: str, arg: object = None, what: str = "") -> None:
    """Poll `script` (a JS function of `arg`) in the page until it is truthy, with a deadline."""
    try:
        await page.wait_for_function(script, arg=arg, polling=100, timeout=PAGE_DEADLINE_MS)
    except playwright_api.TimeoutError:
        text = await page.inner_text("body")
        raise AssertionError(
            f"the page never showed {what or script!r}; it shows:\n{text}"
        ) from None


# Small readers of the page's DOM, shared by the waits below.
CARDS = """() => Object.fromEntries([...document.querySelectorAll('#queue .card')].map(
    c => [c.querySelector('span').textContent, c.querySelector('b').textContent]))"""
INFLIGHT_ROW = """(id) => {
  const row = [...document.querySelectorAll('#inflight tr')].find(
      tr => tr.querySelector('code')?.textContent === id);
  if (!row) return null;
  const cells = [...row.children];
  return {bar: row.querySelector('.bar > div')?.style.width,
          label: cells[1].innerText.trim(), stage: cells[2].textContent,
          message: cells[3].textContent, running: cells[4].textContent};
}"""


async def test_dashboard_shows_a_job_in_flight_then_done(store, browser, tmp_path: Path):
    blocker = asyncio.Event()

    async def handler(job, ctx):
        await ctx.report(42, "processing", "encoding")
        await blocker.wait()

    first, _ = await store.enqueue({}, priority=10)
    second, _ = await store.enqueue({})  # waits behind the first: concurrency is 1
    async with (
        running(store, handler, concurrency=1) as runner,
        dashboard(browser, runner) as (page, seen),
    ):
        await wait_for(
            lambda: asyncio.sleep(
                0, result=any(j["progress"] == 42 for j in runner.in_flight_view())
            )
        )
        [flight] = runner.in_flight_view()
        assert flight["id"] == str(first)

        await until(
            page,
            f"(id) => {{ const r = ({INFLIGHT_ROW})(id); "
            "return r && r.bar === '42%' && r.label === '42%'; }",
            str(first),
            what=f"job {first} in flight at 42 %",
        )
        row = await page.evaluate(INFLIGHT_ROW, str(first))
        assert (row["stage"], row["message"]) == ("processing", "encoding")
        assert row["running"].endswith(" s")
        await until(
            page,
            f"() => {{ const c = ({CARDS})(); return c.processing === '1' && c.pending === '1'; }}",
            what="the queue cards: 1 processing, 1 pending",
        )
        cards = await page.evaluate(CARDS)
        assert cards == {
            "pending": "1",
            "processing": "1",
            "completed": "0",
            "failed": "0",
            "cancelled": "0",
        }
        assert await page.text_content("#worker") == "test-worker"
        state = await page.inner_text("#state")
        # this process's counters and the database's counts are told apart
        assert "database up" in state and "this replica since start: processed 0" in state
        assert "every replica" in (await page.text_content("h2") or "")
        assert await page.inner_text("#failures") == "none"

        shot = Path(os.environ.get("DASHBOARD_SCREENSHOT") or tmp_path / "dashboard.png")
        await page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 0

        blocker.set()
        await status_is(store, first, "completed")
        await status_is(store, second, "completed")
        await until(
            page,
            f"() => {{ const c = ({CARDS})(); "
            "return c.completed === '2' && c.processing === '0' "
            "&& c.pending === '0'; }",
            what="the queue cards: 2 completed, none pending or processing",
        )
        await until(
            page,
            "() => document.getElementById('state').textContent.includes('processed 2')",
            what="processed 2",
        )
        await until(
            page,
            "() => document.getElementById('inflight').innerText.trim() === 'none'",
            what="nothing in flight",
        )
        assert await page.evaluate(INFLIGHT_ROW, str(first)) is None
        assert seen.problems() == []


async def test_recent_failures_show_the_error_as_text(store, browser):
    error = "<script>alert(1)</script><img src=x onerror=alert(2)> & bad payload"
    job_id, _ = await store.enqueue({"script": [{"fail": error}]})
    async with running(store, scripted) as runner, dashboard(browser, runner) as (page, seen):
        await status_is(store, job_id, "failed")
        await until(
            page,
            "(id) => [...document.querySelectorAll('#failures code')]"
            ".some(c => c.textContent === id)",
            str(job_id),
            what=f"job {job_id} under Recent failures",
        )
        row = await page.evaluate(
            """(id) => {
            const tr = [...document.querySelectorAll('#failures tr')].find(
                r => r.querySelector('code')?.textContent === id);
            return {cells: [...tr.children].map(td => td.textContent),
                    title: tr.children[1].querySelector('span')?.title,
                    elements: tr.querySelectorAll('script, img').length};
        }""",
            str(job_id),
        )
        _id, when, attempts, shown = row["cells"]
        assert error in shown  # the literal text, markup and all
        assert row["elements"] == 0  # nothing in it became an element
        assert attempts == "1"
        # local time and age, the exact time on hover
        finished = (await store.get(job_id) or {})["completed_at"]
        assert row["title"] and datetime.fromisoformat(row["title"]) == finished
        assert re.fullmatch(r".+ \(\d+ s ago\)", when), when
        assert await page.locator("#failures").get_by_text(error, exact=False).is_visible()
        await until(page, f"() => ({CARDS})().failed === '1'", what="the failed card at 1")
        await until(
            page,
            "() => document.getElementById('state').textContent.includes('failed 1')",
            what="failed 1",
        )
        assert seen.dialogs == []
        assert seen.problems() == []


STATE = """() => ({login: !document.getElementById('login').hidden,
                  board: !document.getElementById('board').hidden,
                  problem: document.getElementById('login-problem').textContent,
                  stored: sessionStorage.getItem('video-worker.stats-token'),
                  local: localStorage.length, cookie: document.cookie})"""
FAILED_ROW = (
    "(id) => [...document.querySelectorAll('#failures code')].some(c => c.textContent === id)"
)


async def test_with_a_stats_token_the_page_asks_for_it_then_works(store, browser, tmp_path: Path):
    token = "dash-T0ken-0123456789abcdef"
    job_id, _ = await store.enqueue({"script": [{"fail": "clips[0]: the URL returned 404"}]})
    async with (
        running(store, scripted, stats_token=token) as runner,
        dashboard(browser, runner) as (page, seen),
    ):
        await status_is(store, job_id, "failed")
        # it asks first, shows no board, and has fetched nothing (no 401 was needed to know)
        await until(page, f"() => ({STATE})().login", what="the token form")
        state = await page.evaluate(STATE)
        assert (state["board"], state["stored"]) == (False, None)
        assert await page.locator("#token").get_attribute("type") == "password"
        shot = Path(os.environ.get("DASHBOARD_LOGIN_SCREENSHOT") or tmp_path / "login.png")
        await page.screenshot(path=str(shot), full_page=True)
        assert seen.problems() == []

        # a wrong token: refused, forgotten, asked again
        await page.fill("#token", "not-the-token")
        await page.click("#login button[type=submit]")
        await until(page, f"() => ({STATE})().problem.includes('refused')", what="refused")
        state = await page.evaluate(STATE)
        assert (state["login"], state["board"], state["stored"]) == (True, False, None)
        [refused] = seen.failed_requests
        assert refused.endswith("/stats: HTTP 401")
        seen.failed_requests.clear()
        seen.console_errors.clear()  # Chromium logs the 401 it was just shown

        # not something a header can carry: refused in the page, nothing sent
        await page.fill("#token", "tök en")
        await page.click("#login button[type=submit]")
        await until(page, f"() => ({STATE})().problem.includes('ASCII')", what="the ASCII hint")

        # the right token: the board fills in, and the token lives in this tab only
        await page.fill("#token", token)
        await page.click("#login button[type=submit]")
        await until(page, FAILED_ROW, str(job_id), what=f"job {job_id} under Recent failures")
        await until(page, f"() => ({CARDS})().failed === '1'", what="the failed card at 1")
        state = await page.evaluate(STATE)
        assert (state["login"], state["board"], state["stored"]) == (False, True, token)
        assert (state["local"], state["cookie"]) == (0, "")
        assert token not in page.url

        # a reload in the same tab keeps it; "Forget the token" asks again
        await page.reload()
        await until(page, FAILED_ROW, str(job_id), what="the board after a reload")
        # a refresh in flight when the page reloaded is aborted by the browser: not a problem
        seen.failed_requests[:] = [r for r in seen.failed_requests if "ERR_ABORTED" not in r]
        await page.click("#forget")
        await until(page, f"() => ({STATE})().login", what="the token form again")
        assert (await page.evaluate(STATE))["stored"] is None

        # another tab (a fresh browsing context) has no token and asks
        other = await page.context.browser.new_context()
        try:
            fresh = await other.new_page()
            await fresh.goto(page.url)
            await until(fresh, f"() => ({STATE})().login", what="the form in a new tab")
        finally:
            await other.close()
        assert seen.problems() == []
