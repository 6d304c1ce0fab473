"""Browser tests: Debian's Chromium, driven by Playwright, on the real console served by uvicorn
over a World of cases (tests/integration/test_lifecycle.py) on the embedded broker and PostgreSQL
(the fixtures of tests/conftest.py). Screenshots go to tests/artifacts/ (not committed)."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

from console import Console, create_app
from sinks import BlobStore
from tests.integration.test_console import PASSWORD
from tests.integration.test_lifecycle import World
from tests.unit.test_stages import REGISTRY

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
WAIT_MS = 30_000  # generous: the machine may be starved; the tests wait for conditions, not time

expect.set_options(timeout=WAIT_MS)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: `make install` installs Debian's chromium")
    async with async_playwright() as pw:
        # no sandbox: containers (and root) often cannot give Chromium its namespaces; the
        # browser only ever opens the console on 127.0.0.1
        b = await pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield b
        await b.close()


@dataclass
class Live:
    """The console served on 127.0.0.1 over ``world``, and the browser's contexts opened on it."""

    world: World
    url: str
    browser: Browser
    shots: str  # screenshot file names start with this (the test's name)
    contexts: list[BrowserContext] = field(default_factory=list)

    async def page(self, **options: Any) -> Page:
        """A fresh browser context (no cookies): a new person at a new browser; ``options`` for
        Playwright's new_context (a phone's viewport, touch, position)."""
        context = await self.browser.new_context(**{
            "base_url": self.url, "viewport": {"width": 1400, "height": 1000}, "locale": "zh-CN",
            "accept_downloads": True, **options,
        })  # fmt: skip
        context.set_default_timeout(WAIT_MS)
        self.contexts.append(context)
        return await context.new_page()

    async def log_in(self, user: str, **options: Any) -> Page:
        page = await self.page(**options)
        await page.goto("/login")
        await page.fill("input[name=username]", user)
        await page.fill("input[name=password]", PASSWORD)
        submit = page.locator("form.login button[type=submit]")
        await (submit.tap() if options.get("has_touch") else submit.click())
        await expect(page).not_to_have_url(re.compile(r"/login"))
        return page

    async def shot(self, page: Page, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{self.shots}-{name}.png"
        await page.screenshot(path=path, full_page=True)
        return path


@pytest.fixture
async def live(
    world: World, browser: Browser, request: pytest.FixtureRequest
) -> AsyncIterator[Live]:
    console = Console(world.store.pool, world.lifecycle, world.settings.evidence.dir,
                      registry=REGISTRY, blobs=BlobStore(world.settings.var_dir / "blobs"))  # fmt: skip
    async with serving(console, world, browser, request) as live:
        yield live


@contextlib.asynccontextmanager
async def serving(
    console: Console, world: World, browser: Browser, request: pytest.FixtureRequest
) -> AsyncIterator[Live]:
    """``console`` served by uvicorn on 127.0.0.1, for the browser; its contexts closed after."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    # the live feed never ends by itself: the server gives open streams a second at shutdown
    config = uvicorn.Config(create_app(console), log_level="warning", timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    name = request.node.name.removeprefix("test_")
    try:
        await until(lambda: server.started, "the console server to start")
        live = Live(world, f"http://127.0.0.1:{port}", browser, name)
        try:
            yield live
        finally:
            for context in live.contexts:
                await context.close()
    finally:
        server.should_exit = True
        await task
        sock.close()


async def until(
    check: Callable[[], bool | Awaitable[bool]], what: str, timeout: float = WAIT_MS / 1000
) -> None:
    """Wait for ``check`` to hold (a condition, polled), failing after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if await result if isinstance(result, Awaitable) else result:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)
