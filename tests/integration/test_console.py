"""Issue #12 items 1, 3–5, 8 and the security acceptance: the console app over the real case
store and packages, driven through HTTP (httpx on the ASGI app; uvicorn for the live feed)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import re
import socket

import httpx
import uvicorn

from console import Console, create_app
from tests.unit.test_no_wrong_fine import AT, decide, one, passing

from .test_lifecycle import LI, WANG, World

PASSWORD = "correct horse battery"
USERS = {"wang": ["officer"], "li": ["officer"], "zhao": ["legal_reviewer"],
         "chen": ["officer", "legal_reviewer"], "zhou": ["command_center"], "root": ["admin"]}  # fmt: skip
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def app_of(w: World) -> Console:
    return Console(w.store.pool, w.lifecycle, w.settings.evidence.dir)


def client_of(console: Console) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(console))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def log_in(client: httpx.AsyncClient, user: str, password: str = PASSWORD) -> httpx.Response:
    form = await client.get("/login")
    token = CSRF.search(form.text)
    assert token is not None
    return await client.post("/login", data={"username": user, "password": password,
                                             "csrf": token.group(1)})  # fmt: skip


def csrf_of(page: httpx.Response) -> str:
    found = CSRF.search(page.text)
    assert found is not None, page.text[:400]
    return found.group(1)


async def test_every_route_without_a_session_goes_to_the_log_in(world: World) -> None:
    cid = world.cases["small"]
    async with client_of(app_of(world)) as client:
        for path in ("/", "/cases", f"/cases/{cid}", f"/cases/{cid}/images/composite.jpg",
                     "/legal", "/command", "/command/events", "/admin"):  # fmt: skip
            r = await client.get(path)
            assert r.status_code == 303 and r.headers["location"].startswith("/login"), path
        r = await client.post(f"/cases/{cid}/act", data={"action": "confirm"})
        assert r.status_code == 303 and r.headers["location"].startswith("/login")
        r = await client.get("/login")
        assert r.status_code == 200 and "登录" in r.text
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert await world.status("small") == "pending_review"


async def test_log_in_sets_a_strict_session_cookie_and_log_out_ends_it(world: World) -> None:
    async with client_of(app_of(world)) as client:
        r = await log_in(client, "wang")
        assert r.status_code == 303 and r.headers["location"] == "/cases"
        cookie = r.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie
        page = await client.get("/cases")
        assert page.status_code == 200 and "wang警官" in page.text
        token = client.cookies["offsite_session"]
        await client.post("/logout", data={"csrf": csrf_of(page)})
        client.cookies.set("offsite_session", token)  # the old cookie opens nothing any more
        assert (await client.get("/cases")).status_code == 303
        # a log-in form without its token is refused
        r = await client.post("/login", data={"username": "wang", "password": PASSWORD})
        assert r.status_code == 403


async def test_the_sixth_quick_failed_log_in_is_throttled(world: World) -> None:
    async with client_of(app_of(world)) as client:
        for _ in range(5):
            assert (await log_in(client, "wang", "wrong password!")).status_code == 401
        r = await log_in(client, "wang")  # even the right password, for now
        assert r.status_code == 429 and "retry-after" in r.headers
        # another account from the same address is held back too (per address)
        assert (await log_in(client, "li")).status_code == 429


async def test_a_wrong_role_gets_403(world: World) -> None:
    cid = world.cases["small"]
    async with client_of(app_of(world)) as client:
        await log_in(client, "zhou")  # command center
        for path in ("/cases", f"/cases/{cid}", "/legal", "/admin"):
            assert (await client.get(path)).status_code == 403, path
        assert (await client.get("/command")).status_code == 200
    async with client_of(app_of(world)) as client:
        await log_in(client, "wang")
        for path in ("/legal", "/command", "/admin"):
            assert (await client.get(path)).status_code == 403, path


async def test_an_officer_filters_opens_and_confirms_a_case(world: World) -> None:
    w = world
    cid = w.cases["small"]
    async with client_of(app_of(w)) as client:
        await log_in(client, "wang")
        queue = await client.get("/cases")
        assert all(w.cases[n] in queue.text for n in ("small", "major", "unread", "other"))
        only = await client.get("/cases", params={"plate": "A123"})
        assert cid in only.text and w.cases["major"] not in only.text
        uncertain = await client.get("/cases", params={"uncertain": "1"})
        assert w.cases["unread"] in uncertain.text and cid not in uncertain.text
        major = await client.get("/cases", params={"major": "1"})
        assert w.cases["major"] in major.text and cid not in major.text
        page = await client.get(f"/cases/{cid}")
        assert page.status_code == 200
        assert "湘A12345" in page.text and "2500" in page.text and "说理" in page.text
        assert "不是有效" not in page.text and 'id="act-confirm"' in page.text
        # the view is in the package's custody log, with the user
        log = (w.package("small") / "custody.jsonl").read_text().splitlines()
        assert '"event": "viewed"' in log[-1] and '"actor": "wang"' in log[-1]
        # a form without the CSRF token is refused, and changes nothing
        r = await client.post(f"/cases/{cid}/act", data={"action": "confirm"})
        assert r.status_code == 403 and await w.status("small") == "pending_review"
        r = await client.post(f"/cases/{cid}/act", data={"action": "confirm",
                                                         "csrf": csrf_of(page)})  # fmt: skip
        assert r.status_code == 303 and await w.status("small") == "confirmed"
        # a refusal is shown on the case page, in Chinese
        r = await client.post(f"/cases/{cid}/act", data={"action": "confirm",
                                                         "csrf": csrf_of(page)})  # fmt: skip
        assert r.status_code == 409 and "不能执行“确认”" in r.text
        # reject with a coded reason; "other" without text is refused
        other = w.cases["other"]
        r = await client.post(f"/cases/{other}/act", data={
            "action": "reject", "reason_code": "other", "csrf": csrf_of(page)})  # fmt: skip
        assert r.status_code == 409 and "须说明理由" in r.text
        r = await client.post(f"/cases/{other}/act", data={
            "action": "reject", "reason_code": "device_fault", "csrf": csrf_of(page)})  # fmt: skip
        assert r.status_code == 303 and await w.status("other") == "rejected"
        # correct the plate of the unread case, then transfer is still possible
        unread = w.cases["unread"]
        r = await client.post(f"/cases/{unread}/act", data={
            "action": "correct_plate", "plate": "湘d45678", "plate_color": "yellow",
            "reason": "人工识读", "csrf": csrf_of(page)})  # fmt: skip
        assert r.status_code == 303
        assert "湘D45678" in (await client.get(f"/cases/{unread}")).text
        # the notice for the confirmed case
        r = await client.post(f"/cases/{cid}/act", data={"action": "issue_notice",
                                                         "officers": "team.liu,team.ma",
                                                         "csrf": csrf_of(page)})  # fmt: skip
        assert r.status_code == 303 and await w.status("small") == "notice_issued"
        assert "超限〔" in (await client.get(f"/cases/{cid}")).text


async def test_plate_searches_with_injection_strings_are_safe(world: World) -> None:
    async with client_of(app_of(world)) as client:
        await log_in(client, "wang")
        for text in ("' OR '1'='1", "'; DROP TABLE cases; --", "<script>alert(1)</script>",
                     "%", "_"):  # fmt: skip
            r = await client.get("/cases", params={"plate": text})
            assert r.status_code == 200 and "没有符合条件的案件" in r.text, text
            assert "<script>alert(1)</script>" not in r.text
            if text.startswith("<"):  # echoed in the filter form, escaped
                assert 'value="&lt;script&gt;alert(1)&lt;/script&gt;"' in r.text
        assert await world.store.pool.fetchval("SELECT count(*) FROM cases") == 4


async def test_legal_review_and_the_separation_of_duties(world: World) -> None:
    w = world
    cid = w.cases["major"]
    async with client_of(app_of(w)) as client:
        await log_in(client, "chen")  # officer and legal reviewer
        page = await client.get(f"/cases/{cid}")
        r = await client.post(f"/cases/{cid}/act", data={"action": "confirm",
                                                         "csrf": csrf_of(page)})  # fmt: skip
        assert r.status_code == 303 and await w.status("major") == "legal_review"
        legal = await client.get("/legal")
        assert cid in legal.text
        r = await client.post(f"/cases/{cid}/act", data={"action": "approve",
                                                         "reason": "事实清楚，依据正确",
                                                         "csrf": csrf_of(page)})  # fmt: skip
        assert r.status_code == 409 and "审核分离" in r.text
    async with client_of(app_of(w)) as client:
        await log_in(client, "zhao")
        page = await client.get(f"/cases/{cid}")
        assert 'id="act-approve"' in page.text and 'id="act-confirm"' not in page.text
        assert "法制审核意见（必填" in page.text  # B5: the opinion is written
        # a legal reviewer cannot confirm (role), and approves
        r = await client.post(f"/cases/{w.cases['small']}/act", data={
            "action": "confirm", "csrf": csrf_of(page)})  # fmt: skip
        assert r.status_code == 409 and "岗位" in r.text
        r = await client.post(f"/cases/{cid}/act", data={"action": "approve",
                                                         "reason": "事实清楚，依据正确",
                                                         "csrf": csrf_of(page)})  # fmt: skip
        assert r.status_code == 303 and await w.status("major") == "approved"


async def test_images_are_served_only_by_their_names_in_the_package(world: World) -> None:
    w = world
    cid = w.cases["small"]
    async with client_of(app_of(w)) as client:
        await log_in(client, "wang")
        names = [p.name for p in (w.package("small") / "data" / "images").glob("*.jpg")]
        for name in names:
            r = await client.get(f"/cases/{cid}/images/{name}")
            assert r.status_code == 200 and r.content[:2] == b"\xff\xd8"
        for bad in ("..%2F..%2Fbag-info.txt", "custody.jsonl", "x.jpg"):
            assert (await client.get(f"/cases/{cid}/images/{bad}")).status_code == 404


async def test_every_case_of_a_large_batch_is_announced_to_the_feed(world: World) -> None:
    """A batch of 250 new cases is one COPY: each of them is named to the live feed's channel,
    100 ids to a notification at most (migration 019; before it, 150 of them were lost)."""
    w = world
    vs = await decide([x for i in range(250) for x in passing(
        f"r-many-{i}", 60_000, ts=AT + dt.timedelta(minutes=i), plate=f"湘E{i:05d}")])  # fmt: skip
    assert len(vs) == 250
    notes: list[list[str]] = []
    heard = asyncio.Event()

    def listener(_conn: object, _pid: int, _channel: str, payload: str) -> None:
        notes.append(json.loads(payload)["case_ids"])
        heard.set()

    before = {r[0] for r in await w.store.pool.fetch("SELECT case_id FROM cases")}
    conn = await w.store.pool.acquire()
    await conn.add_listener("offsite_cases", listener)
    try:
        await (await w.store.begin_batch(vs)).commit()
        new = {r[0] for r in await w.store.pool.fetch("SELECT case_id FROM cases")} - before
        with contextlib.suppress(TimeoutError):  # a bound for a failure: they come at commit
            async with asyncio.timeout(30):
                while sum(map(len, notes)) < len(new):
                    heard.clear()
                    await heard.wait()
    finally:
        await conn.remove_listener("offsite_cases", listener)
        await w.store.pool.release(conn)
    assert len(new) == 250
    assert sorted(map(len, notes)) == [50, 100, 100]
    assert {cid for ids in notes for cid in ids} == new


async def test_a_new_case_appears_on_the_command_center_feed(world: World) -> None:
    """Served by uvicorn: server-sent events are a stream, which httpx's ASGI transport is not."""
    w = world
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(app_of(w)), log_level="warning", timeout_graceful_shutdown=1
    )  # the feed never ends by itself
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(20):
            while not server.started:
                await asyncio.sleep(0.01)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                await log_in(client, "zhou")
                async with client.stream("GET", "/command/events") as events:
                    lines = events.aiter_lines()
                    async for line in lines:
                        if line == ": listening":
                            break
                    v = one(await decide(passing("r-live", 60_000, plate="湘E56789")))
                    await (await w.store.begin_batch([v])).commit()
                    seen = None
                    async for line in lines:
                        if line.startswith("data:"):
                            seen = line
                            break
                    assert seen is not None, "the feed ended before announcing the case"
                    assert "湘E56789" in seen and "罚款" in seen
    finally:
        server.should_exit = True
        await task


def submitted_colour(page: httpx.Response) -> str:
    """The plate colour a browser submits when the officer leaves the select as it is: the
    selected option, else the first."""
    select = re.search(r'<select name="plate_color">(.*?)</select>', page.text, re.S)
    assert select is not None
    chosen = re.search(r'<option value="([^"]*)" selected>', select.group(1))
    return (chosen or re.search(r'<option value="([^"]*)"', select.group(1))).group(1)  # type: ignore[union-attr]


async def test_a_yellow_green_plate_stays_yellow_green_and_is_printed(world: World) -> None:
    """Review A2: the console offers every colour the registry knows, defaults to the case's
    own, and the notice prints it. The officer reads 湘D45678 on a yellow-green (黄绿) plate,
    then fixes a typo without touching the colour: the vehicle stays (湘D45679, yellow_green)
    — history and the same-trip rule key on plate and colour (Art. 29)."""
    w = world
    cid = w.cases["unread"]
    await w.act("unread", "correct_plate", WANG, reason="人工识读",
                payload={"plate": "湘D45678", "plate_color": "yellow_green"})  # fmt: skip
    async with client_of(app_of(w)) as client:
        await log_in(client, "wang")
        page = await client.get(f"/cases/{cid}")
        assert '<option value="yellow_green" selected>黄绿</option>' in page.text
        r = await client.post(f"/cases/{cid}/act", data={
            "action": "correct_plate", "plate": "湘D45679", "plate_color": submitted_colour(page),
            "reason": "更正笔误", "csrf": csrf_of(page)})  # fmt: skip
        assert r.status_code == 303
        row = await w.store.pool.fetchrow(
            "SELECT plate, plate_color FROM cases WHERE case_id = $1", cid)  # fmt: skip
        assert tuple(row) == ("湘D45679", "yellow_green")
        await w.act("unread", "confirm", LI)
        # the owner of 湘D45679 is in no registry: the officer records the party (issue #25)
        party = {"kind": "citizen", "name": "赵示例", "id_number": "43060219850315002X",
                 "address": "湖南省岳阳市示例区示例巷3号"}  # fmt: skip
        await w.act("unread", "correct_party", WANG, reason="车主为个人", payload=party)
        r = await client.post(f"/cases/{cid}/act", data={"action": "issue_notice",
                                                         "officers": "team.liu,team.ma",
                                                         "csrf": csrf_of(page)})  # fmt: skip
        assert r.status_code == 303
        notice = await client.get(f"/cases/{cid}/notice")
        assert "（黄绿色号牌）" in notice.text
