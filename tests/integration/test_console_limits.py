"""Issue #28, rows 6, 8, 10 and 11: the console and the party page against hostile users, over
the real case store and packages (httpx on the ASGI app; the real `offsite console` for its
banner)."""

from __future__ import annotations

import asyncio
import io
import socket
import sys
from pathlib import Path

import asyncpg
import httpx
from PIL import Image

from console import Console, create_app
from offsite import services
from offsite.testing import settings_env
from sinks.accounts import Throttle

from .test_console import PASSWORD, csrf_of, log_in
from .test_lifecycle import World
from .test_notice import issue, world  # noqa: F401  (the fixture: accounts and cases)
from .test_party import console_of, find, jpeg, statement

ROOT = Path(__file__).resolve().parents[2]
HEADERS = ("content-security-policy", "x-content-type-options")
TICK_S = 0.05  # between tries to connect to a server that is starting (a condition, not a wait)


def client_from(console: Console, address: str = "127.0.0.1") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(console), client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def test_failed_log_ins_from_one_address_do_not_lock_the_officer_out_elsewhere(
    world: World,  # noqa: F811
) -> None:
    c = console_of(world)
    async with client_from(c, "127.0.0.1") as attacker:
        for _ in range(5):
            assert (await log_in(attacker, "wang", "wrong password!")).status_code == 401
        assert (await log_in(attacker, "wang")).status_code == 429  # held back here
    async with client_from(c, "127.0.0.2") as officer:  # was 429 from every address
        r = await log_in(officer, "wang")
        assert r.status_code == 303 and r.headers["location"] == "/cases"


async def test_inputs_that_would_break_a_parse_are_400_and_still_throttled(
    world: World,  # noqa: F811
) -> None:
    c = console_of(world)
    code = await issue(world, c, "small")
    async with client_from(c) as client:
        await log_in(client, "wang")
        for query in ({"date": "0001-01-01"}, {"date": "9999-12-31"}, {"date": "someday"},
                      {"plate": "湘A\x001234"}, {"site": "S\x00"}, {"code": "\x00"}):  # fmt: skip
            r = await client.get("/cases", params=query)
            assert r.status_code == 400, (query, r.status_code)
            assert all(h in r.headers for h in HEADERS), query
        assert (await client.get("/cases", params={"date": "2026-11-22"})).status_code == 200
    async with client_from(c, "127.0.0.3") as client:  # the log-in name
        for _ in range(5):
            assert (await log_in(client, "wa\x00ng")).status_code == 400
        assert (await log_in(client, "wang")).status_code == 429  # counted as failures
    async with client_from(c, "127.0.0.4") as client:  # the party's code
        for _ in range(5):
            assert (await find(client, "湘A12345", code[:3] + "\x00")).status_code == 400
        assert (await find(client, "湘A12345", code)).status_code == 429


async def test_an_error_page_has_the_security_headers(world: World) -> None:  # noqa: F811
    pool = await asyncpg.create_pool(services.endpoints(world.settings).database_url,
                                     min_size=1, max_size=1)  # fmt: skip
    await pool.close()  # every query fails: a 500
    c = Console(pool, world.lifecycle, world.settings.evidence.dir)
    async with client_from(c) as client:
        client.cookies.set("offsite_session", "x")
        r = await client.get("/cases")
    assert r.status_code == 500 and "系统暂时无法处理" in r.text
    assert all(h in r.headers for h in HEADERS)


async def test_the_party_is_throttled_after_log_in_too(world: World) -> None:  # noqa: F811
    c = console_of(world)
    c.party_views = Throttle(limit=4, window_s=600)
    code = await issue(world, c, "small")
    async with client_from(c) as client:
        await find(client, "湘A12345", code)
        page = await client.get("/party/case")
        for path in ("/party/images/composite.jpg", "/party/notice", "/party/case"):
            assert (await client.get(path)).status_code == 200
        r = await client.get("/party/notice.pdf")  # the fifth view within the window
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
        c.party_views = Throttle()
        csrf = csrf_of(page)
        for i in range(5):
            assert (await statement(client, f"陈述 {i}", [], csrf)).status_code == 303
        r = await statement(client, "第六份", [], csrf)
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    bodies = await world.store.pool.fetch("SELECT body FROM statements ORDER BY statement_id")
    assert [b["body"] for b in bodies] == [f"陈述 {i}" for i in range(5)]


async def test_statement_images_are_whole_small_enough_and_ten_are_told_the_limit(
    world: World,  # noqa: F811
) -> None:
    c = console_of(world)
    code = await issue(world, c, "small")
    big = io.BytesIO()
    Image.new("L", (6000, 6000)).save(big, "PNG")  # 36 MP: a small file, 108 MB as BGR
    async with client_from(c) as client:
        await find(client, "湘A12345", code)
        csrf = csrf_of(await client.get("/party/case"))
        for files, message in (
            ([("big.png", big.getvalue(), "image/png")], "不是有效"),
            ([("cut.jpg", jpeg(3)[:-300], "image/jpeg")], "不是有效"),
            ([(f"p{i}.jpg", jpeg(i), "image/jpeg") for i in range(10)], "最多上传 3 张"),
        ):
            r = await statement(client, "文字", files, csrf)
            assert r.status_code == 400 and message in r.text, message
    assert await world.store.pool.fetchval("SELECT count(*) FROM statements") == 0


async def test_secure_cookies_and_hsts_over_tls(world: World) -> None:  # noqa: F811
    c = console_of(world)
    c.secure_cookies = True
    async with client_from(c) as client:
        r = await log_in(client, "wang", PASSWORD)
        assert "secure" in r.headers["set-cookie"].lower()
        assert r.headers["strict-transport-security"].startswith("max-age=")
    async with client_from(console_of(world)) as client:  # plain HTTP on localhost: neither
        r = await client.get("/login")
        assert "strict-transport-security" not in r.headers
        assert "secure" not in r.headers["set-cookie"].lower()


async def test_offsite_console_sends_no_server_banner(world: World) -> None:  # noqa: F811
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "offsite.cli", "console", "--port", str(port),
        env=settings_env(world.settings), cwd=ROOT,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stderr is not None
    try:
        async with asyncio.timeout(120):  # a cap for a process that never gets there
            while b"console at" not in await proc.stderr.readline():
                assert proc.returncode is None
            async with httpx.AsyncClient() as client:
                while True:  # uvicorn prints before it listens: until it answers
                    try:
                        r = await client.get(f"http://127.0.0.1:{port}/login")
                        break
                    except httpx.ConnectError:
                        await asyncio.sleep(TICK_S)
        assert r.status_code == 200 and "server" not in r.headers
    finally:
        proc.terminate()
        await proc.wait()
