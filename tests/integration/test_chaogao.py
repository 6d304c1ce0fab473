"""Issue #26 must-have 5 over the real case store: closing a penalty case on the console makes
its 抄告 record (2016 No. 62 Art. 44) with the article's fields, dropped in the exchange folder;
a platform that fails is tried again after the back-off and then takes the record (a real
local HTTP server checks the signature); a plate of no mainland region is held until an
officer names it; Art. 45: a vehicle the device read otherwise than its record is a candidate,
recorded when an officer confirms it, and the police list of a period holds it."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from cases.chaogao import chaogao_id, flag_nonconforming, send_due
from console.chaogao import chaogao_on_close, record_closed_case, sending
from events.registry import Vehicle
from offsite import chaogao as chaogao_cli
from sinks.accounts import Accounts
from sinks.outbound import FileDrop, HttpPost
from tests.unit.test_stages import REGISTRY

from .test_casefile import closed, paid
from .test_console import PASSWORD, app_of, client_of, csrf_of, log_in
from .test_lifecycle import World
from .test_notice import pdf_text
from .test_procedure import local
from .test_procedure import world as world  # the fixture

SECRET = "test-secret"


async def test_closing_a_penalty_case_on_the_console_makes_its_record_with_the_art_44_fields(
    world: World, tmp_path: Path
) -> None:
    w = world
    await paid(w)
    console = app_of(w)
    chaogao_on_close(console, FileDrop(tmp_path))
    cid = w.cases["small"]
    await Accounts(w.store.pool).create("wang", ["officer"], PASSWORD)
    async with client_of(console) as client:
        await log_in(client, "wang")
        page = await client.get(f"/cases/{cid}")
        assert not await w.store.pool.fetchval("SELECT count(*) FROM chaogao")  # not closed yet
        r = await client.post(f"/cases/{cid}/act", data={"action": "close",
                                                         "csrf": csrf_of(page)})  # fmt: skip
        assert r.status_code == 303
    row = await w.store.pool.fetchrow("SELECT * FROM chaogao WHERE case_id = $1", cid)
    assert row["chaogao_id"] == chaogao_id(cid) and row["status"] == "sent"
    assert row["sent_at"] == w.clock.now and row["region"] == "湘A"
    decision = await w.store.pool.fetchrow(
        "SELECT * FROM penalty_decisions WHERE case_id = $1", cid)  # fmt: skip
    # the deadline: 7 working days from the closing day, on the agency's calendar
    assert row["due"] == console.lifecycle.policy.due(local(w), 7).due
    sent = json.loads((tmp_path / "chaogao" / f"{row['chaogao_id']}.json").read_bytes())
    assert sent == json.loads(row["record"])
    assert sent["recipient"]["agency"] == "湖南省湘A号牌车籍地道路运输管理机构"
    assert (
        sent["vehicle"]["plate"] == "湘A12345"
        and sent["vehicle"]["company"] == "湖南示例物流有限公司"
    )
    assert sent["vehicle"]["vehicle_type"] != "未知" and sent["driver"]["name"] == "未知"
    assert sent["load"]["loading_place"] == "未知"
    assert sent["decision"]["number"] == decision["decision_no"]
    assert sent["decision"]["amount_cny"] == decision["fine_cny"] == 2_500
    pdf = pdf_text((tmp_path / "chaogao" / f"{row['chaogao_id']}.pdf").read_bytes())
    assert "抄告函" in pdf and decision["decision_no"] in pdf and "装载地未知" in pdf
    assert "湘A12345（黄牌）" in pdf
    # made once: the case again is the same record
    assert await record_closed_case(console, cid) == row["chaogao_id"]
    assert await w.store.pool.fetchval("SELECT count(*) FROM chaogao") == 1
    attempts = await w.store.pool.fetch("SELECT * FROM chaogao_attempts")
    assert [(a["transport"], a["ok"]) for a in attempts] == [("file", True)]


class Platform(BaseHTTPRequestHandler):
    """The platform: answers each POST with the next of ``statuses``, keeps what it took."""

    statuses: ClassVar[list[int]] = []
    taken: ClassVar[list[tuple[str, bytes, str]]] = []
    took = threading.Event()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        good = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        status = self.statuses.pop(0) if self.headers["X-Offsite-Signature"] == good else 401
        if status == 200:
            self.taken.append((self.headers["Idempotency-Key"], body, good))
            self.took.set()
        self.send_response(status)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def platform() -> Iterator[str]:
    Platform.statuses.clear()
    Platform.taken.clear()
    Platform.took.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Platform)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1/chaogao"
    server.shutdown()
    server.server_close()


async def test_a_failed_send_is_retried_after_the_back_off_and_shown_overdue_until_sent(
    world: World, platform: str
) -> None:
    w = world
    Platform.statuses.extend([503, 500, 200])
    cid = await closed(w)
    console = app_of(w)
    chaogao_on_close(console, HttpPost(platform, SECRET, timeout_s=5))
    rid = await record_closed_case(console, cid)  # made, and its first attempt: 503
    row = await w.store.pool.fetchrow("SELECT * FROM chaogao WHERE chaogao_id = $1", rid)
    assert (row["status"], row["attempts"], row["last_error"]) == (
        "pending",
        1,
        "平台应答 HTTP 503",
    )
    assert row["next_attempt_at"] == w.clock.now + dt.timedelta(minutes=1)
    assert await send_due(w.store.pool, console.outbound, w.clock.now) == []  # not due yet
    w.clock.now += dt.timedelta(minutes=1)
    (second,) = await send_due(w.store.pool, console.outbound, w.clock.now)
    assert not second.ok and second.detail == "平台应答 HTTP 500"
    # the deadline passes: the legal department sees it overdue, and retries at once
    w.clock.now = dt.datetime.combine(row["due"] + dt.timedelta(days=1), dt.time(2), dt.UTC)
    await Accounts(w.store.pool).create("zhao", ["legal_reviewer"], PASSWORD)
    async with client_of(console) as client:
        await log_in(client, "zhao")
        page = await client.get("/legal/chaogao")
        assert page.status_code == 200 and 'id="overdue-alert"' in page.text
        assert 'href="/legal/chaogao"' in page.text  # in the legal department's menu
        assert "平台应答 HTTP 500" in page.text and "已超期" in page.text
        r = await client.post(f"/legal/chaogao/{rid}", data={"csrf": csrf_of(page)})
        assert r.status_code == 303
        page = await client.get("/legal/chaogao")
        assert 'id="overdue-alert"' not in page.text and 'data-status="sent"' in page.text
    row = await w.store.pool.fetchrow("SELECT * FROM chaogao WHERE chaogao_id = $1", rid)
    assert (row["status"], row["attempts"], row["sent_at"]) == ("sent", 3, w.clock.now)
    attempts = await w.store.pool.fetch(
        "SELECT ok, detail FROM chaogao_attempts ORDER BY attempt_id")  # fmt: skip
    assert [(a["ok"], a["detail"]) for a in attempts] == [
        (False, "平台应答 HTTP 503"), (False, "平台应答 HTTP 500"), (True, "HTTP 200")]  # fmt: skip
    ((key, body, _),) = Platform.taken
    sent = json.loads(body)
    assert key == rid == sent["id"] and sent["record"]["case_id"] == cid
    assert sent["pdf_base64"]


async def test_the_console_sends_a_due_record_on_its_own_with_no_page_open(
    world: World, platform: str
) -> None:
    w = world
    Platform.statuses.extend([503, 200])
    cid = await closed(w)
    console = dataclasses.replace(app_of(w), sweep_s=3600)
    chaogao_on_close(console, HttpPost(platform, SECRET, timeout_s=5))
    rid = await record_closed_case(console, cid)  # its first attempt: 503
    w.clock.now += dt.timedelta(minutes=1)  # the back-off over
    async with sending(console), w.store.pool.acquire() as conn:  # as `offsite console` runs it
        assert await asyncio.to_thread(Platform.took.wait, 60)
        # the round is over when its lock is free: the record is updated by then
        await conn.execute("SELECT pg_advisory_lock(hashtext('offsite_chaogao'))")
        await conn.execute("SELECT pg_advisory_unlock(hashtext('offsite_chaogao'))")
    row = await w.store.pool.fetchrow("SELECT * FROM chaogao WHERE chaogao_id = $1", rid)
    assert (row["status"], row["attempts"], row["sent_at"]) == ("sent", 2, w.clock.now)


async def test_a_plate_of_no_mainland_region_is_held_until_an_officer_names_it(
    world: World, tmp_path: Path
) -> None:
    w = world
    cid = await closed(w)
    await w.store.pool.execute("UPDATE cases SET plate = '粤Z1234港' WHERE case_id = $1", cid)
    console = app_of(w)
    chaogao_on_close(console, FileDrop(tmp_path))
    rid = await record_closed_case(console, cid)
    row = await w.store.pool.fetchrow("SELECT * FROM chaogao WHERE chaogao_id = $1", rid)
    assert row["status"] == "held" and row["region"] is None and "港澳" in row["held_reason"]
    assert json.loads(row["record"])["recipient"] is None
    assert not (tmp_path / "chaogao").exists()  # nothing sent to a guessed region
    await Accounts(w.store.pool).create("zhao", ["legal_reviewer"], PASSWORD)
    async with client_of(console) as client:
        await log_in(client, "zhao")
        page = await client.get("/legal/chaogao")
        assert "待人工确定车籍地" in page.text
        bad = await client.post(f"/legal/chaogao/{rid}", data={"csrf": csrf_of(page),
                                                               "region": "X1"})  # fmt: skip
        assert bad.status_code == 400 and "不是内地号牌的车籍地前缀" in bad.text
        r = await client.post(f"/legal/chaogao/{rid}", data={"csrf": csrf_of(page),
                                                             "region": "粤B"})  # fmt: skip
        assert r.status_code == 303
    row = await w.store.pool.fetchrow("SELECT * FROM chaogao WHERE chaogao_id = $1", rid)
    assert (row["status"], row["region"]) == ("pending", "粤B")
    assert json.loads(row["record"])["recipient"]["named_by"] == "zhao"
    (attempt,) = await send_due(w.store.pool, console.outbound, w.clock.now)  # type: ignore[arg-type]
    assert attempt.ok and (tmp_path / "chaogao" / f"{rid}.json").is_file()
    assert "广东省粤B号牌车籍地道路运输管理机构" in pdf_text(
        (tmp_path / "chaogao" / f"{rid}.pdf").read_bytes()
    )


async def test_the_police_list_of_a_period_holds_the_vehicles_an_officer_recorded(
    world: World, tmp_path: Path
) -> None:
    w = world
    cid = w.cases["small"]
    with pytest.raises(ValueError, match="具体情形"):
        await flag_nonconforming(w.store.pool, cid, "gb1589", " ", "wang", w.clock.now)
    # the weighing device read a road train; the agency's record says a rigid truck
    await w.store.pool.execute(
        "UPDATE cases SET violation = jsonb_set(violation::jsonb, '{detection,wim,vehicle_kind}',"
        " '\"combination\"')::json WHERE case_id = $1", cid)  # fmt: skip
    console = app_of(w)
    truck = Vehicle(plate="湘A12345", kind="truck", licensed=True, body="rigid")
    console.registry = REGISTRY.model_copy(update={"vehicles": [truck]})
    await Accounts(w.store.pool).create("zhao", ["legal_reviewer"], PASSWORD)
    async with client_of(console) as client:
        await log_in(client, "zhao")
        page = await client.get("/legal/chaogao")
        assert (
            "称重设备判别为汽车列车，登记为单体货车" in page.text
        )  # a candidate, not yet recorded
        r = await client.post("/legal/chaogao/nonconforming", data={
            "csrf": csrf_of(page), "case_id": cid, "kind": "registration",
            "reason": "称重设备判别为汽车列车，登记为单体货车；现场核实属实"})  # fmt: skip
        assert r.status_code == 303
        page = await client.get("/legal/chaogao")
        assert 'id="nonconforming-candidates"' not in page.text and "现场核实属实" in page.text
    day = local(w)
    args = argparse.Namespace(action="police", first=day, last=day, out=tmp_path)
    assert await chaogao_cli.run(args, w.settings) == 0
    csv_text = (tmp_path / f"police-{day}-{day}.csv").read_text(encoding="utf-8")
    lines = csv_text.splitlines()
    assert lines[0].startswith("号牌号码,号牌颜色,车籍地") and len(lines) == 2
    assert (
        "湘A12345,黄," in lines[1] and "与行驶证记载的登记内容不符" in lines[1] and cid in lines[1]
    )
    assert "湖南省（湘A）" in lines[1] and "zhao" in lines[1]
    pdf = pdf_text((tmp_path / f"police-{day}-{day}.pdf").read_bytes())
    assert "湘A12345" in pdf and "第四十五条" in pdf
    # the next day's list is empty
    later = day + dt.timedelta(days=1)
    args = argparse.Namespace(action="police", first=later, last=later, out=tmp_path)
    assert await chaogao_cli.run(args, w.settings) == 0
    assert len((tmp_path / f"police-{later}-{later}.csv").read_text().splitlines()) == 1
