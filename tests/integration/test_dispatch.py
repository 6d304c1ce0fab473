"""Issue #30 items 1, 2, 4 and 5: squads from configs/squads.yaml, tasks dispatched from a lead by
the command center (and by the rules for a kind set to automatic), the squad's queue, the field
result that closes the lead and links the case, escalation of an overdue task on a fixed clock,
and the figures checked against a hand count — on the real case store, through HTTP."""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from console import Console
from events import ImageRef, Lead, Sighting
from offsite.config import Settings, load_squads, load_waterways
from sinks import BlobStore
from sinks.accounts import Accounts
from sinks.dispatch import Dispatch, Squads, figures
from tests.unit.test_stages import REGISTRY

from .test_console import PASSWORD, USERS, client_of, csrf_of, log_in
from .test_lifecycle import World, make_world

ROOT = Path(__file__).resolve().parents[2]
SQUADS = load_squads(ROOT / "configs" / "squads.yaml", REGISTRY,
                     load_waterways(ROOT / "configs" / "waterways.yaml"))  # fmt: skip
STAFF = {"liu": ["squad_leader"], "he": ["squad_leader"], "sun": ["field_officer"],
         "gao": ["field_officer"]}  # fmt: skip
TZ = dt.timezone(dt.timedelta(hours=8))


def jpeg(seed: int = 1) -> bytes:
    rng = np.random.default_rng(seed)
    ok, data = cv2.imencode(".jpg", rng.integers(0, 255, (90, 120, 3), dtype=np.uint8))
    assert ok
    return data.tobytes()


def lead(n: int, kind: str, site: str, ts: dt.datetime, blobs: BlobStore, plate: str) -> Lead:
    uri, digest = blobs.put(jpeg(n))
    images = [ImageRef(role="plate", uri=uri, sha256=digest, width=120, height=90)]
    sightings = [Sighting(capture_id=f"cap-{n}-{i}", site_id=s, ts=ts - dt.timedelta(minutes=30 * i),
                          plate=plate, images=images if i == 0 else [])
                 for i, s in enumerate((site, "G107-K1520-S"))]  # fmt: skip
    return Lead(lead_id=f"lead-{n:04d}", kind=kind, detector="clones", detector_version="1",  # type: ignore[arg-type]
                plate=plate, site_id=site, ts=ts, score=0.9,
                reasons=["同一号牌30分钟内出现在相距80公里的两个站点"], sightings=sightings)  # fmt: skip


@dataclass
class Desk:
    world: World
    console: Console
    leads: list[Lead]

    async def lead_row(self, lead_id: str) -> dict[str, object]:
        row = await self.world.store.pool.fetchrow(
            "SELECT * FROM leads WHERE lead_id = $1", lead_id
        )
        assert row is not None
        return dict(row)


async def make_desk(settings: Settings, squads: Squads = SQUADS) -> Desk:
    w = await make_world(settings)
    accounts = Accounts(w.store.pool)
    for name, roles in {**USERS, **STAFF}.items():
        await accounts.create(name, roles, PASSWORD, display_name=f"{name}警官")
    blobs = BlobStore(settings.var_dir / "blobs")
    at = dt.datetime(2026, 11, 20, 10, 0, tzinfo=TZ)
    leads = [lead(1, "cloned_plate", "G312-K1035-E", at, blobs, "湘A12345"),
             lead(2, "cloned_plate", "S207-K45-N", at, blobs, "湘B88888"),
             lead(3, "restricted_hours", "G312-K1035-E", at, blobs, "湘A00001")]  # fmt: skip
    await w.store.write_leads([(x, x.to_json().decode()) for x in leads])
    console = Console(w.store.pool, w.lifecycle, settings.evidence.dir, registry=REGISTRY,
                      blobs=blobs, squads=squads)  # fmt: skip
    return Desk(w, console, leads)


async def test_a_cloned_plate_lead_goes_to_a_squad_and_its_result_opens_a_case(desk: Desk) -> None:
    w, cid = desk.world, desk.world.cases["small"]
    async with client_of(desk.console) as command:
        await log_in(command, "zhou")
        board = await command.get("/dispatch")
        assert board.status_code == 200 and "套牌车辆" in board.text and "lead-0001" in board.text
        r = await command.post("/dispatch/new", data={
            "csrf": csrf_of(board), "source_kind": "lead", "source_id": "lead-0001",
            "squad_id": "ZD-NORTH", "priority": "high", "hours": "4",
            "instructions": "到G312站点核查车辆行驶证"})  # fmt: skip
        assert r.status_code == 303
        # the same lead dispatched again makes no second task
        await command.post("/dispatch/new", data={"csrf": csrf_of(board), "source_kind": "lead",
                                                  "source_id": "lead-0001", "squad_id": "ZD-NORTH"})  # fmt: skip
    # (the board dispatched lead 3 by the rules: restricted hours are automatic)
    tasks = await w.store.pool.fetch("SELECT * FROM tasks WHERE source_id = 'lead-0001'")
    assert len(tasks) == 1 and tasks[0]["squad_id"] == "ZD-NORTH" and tasks[0]["priority"] == "high"
    assert tasks[0]["due_at"] - tasks[0]["created_at"] == dt.timedelta(hours=4)
    assert (await desk.lead_row("lead-0001"))["status"] == "dispatched"
    task_id = tasks[0]["task_id"]
    # the squad leader sees it in the squad's queue; another squad's officer cannot open it
    async with client_of(desk.console) as leader:
        await log_in(leader, "liu")
        queue = await leader.get("/tasks")
        assert task_id in queue.text and "直属大队第一中队" in queue.text
    async with client_of(desk.console) as other:
        await log_in(other, "gao")
        assert (await other.get(f"/field/tasks/{task_id}")).status_code == 404
    async with client_of(desk.console) as field:
        await log_in(field, "sun")
        mine = await field.get("/field")
        assert task_id in mine.text
        page = await field.get(f"/field/tasks/{task_id}")
        assert (
            "湘A12345" in page.text and "G312 K1035" in page.text and "到G312站点核查" in page.text
        )
        img = re.search(r'src="(/leads/lead-0001/images/[^"]+)"', page.text)
        assert img is not None
        served = await field.get(img.group(1))
        assert served.status_code == 200 and served.content[:2] == b"\xff\xd8"
        # a photo that is no image is refused and changes nothing
        bad = await field.post(f"/field/tasks/{task_id}/result", data={
            "csrf": csrf_of(page), "result": "case_opened", "case_id": cid},
            files=[("photos", ("a.jpg", b"not an image", "image/jpeg"))])  # fmt: skip
        assert bad.status_code == 400 and "不是有效的" in bad.text
        r = await field.post(f"/field/tasks/{task_id}/result", data={
            "csrf": csrf_of(page), "result": "case_opened", "case_id": cid, "text": "现场查获套牌车",
            "lat": "28.2281", "lon": "112.9390"}, files=[("photos", ("p.jpg", jpeg(7), "image/jpeg"))])  # fmt: skip
        assert r.status_code == 303
    task = await w.store.pool.fetchrow("SELECT * FROM tasks WHERE task_id = $1", task_id)
    assert task["status"] == "done" and task["result"] == "case_opened" and task["case_id"] == cid
    assert (
        task["result_lat"] == pytest.approx(28.2281) and len(json.loads(task["result_photos"])) == 1
    )
    row = await desk.lead_row("lead-0001")
    assert row["status"] == "confirmed" and row["case_id"] == cid
    # the case shows where it came from
    async with client_of(desk.console) as officer:
        await log_in(officer, "wang")
        case = await officer.get(f"/cases/{cid}")
        assert (
            'id="origin"' in case.text and "由套牌车辆线索转立" in case.text and "sun" in case.text
        )


async def test_any_case_is_dispatched_by_its_number_to_the_squad_of_its_site(desk: Desk) -> None:
    w, cid = desk.world, desk.world.cases["other"]
    async with client_of(desk.console) as command:
        await log_in(command, "zhou")
        board = await command.get("/dispatch")
        form = re.search(r'<section id="case-to-dispatch">.*?</section>', board.text, re.S)
        assert form is not None and 'name="source_id" placeholder="案件编号"' in form.group(0)
        data = {"csrf": csrf_of(board), "source_kind": "case", "squad_id": "", "hours": "8",
                "instructions": "调取现场视频"}  # fmt: skip
        unknown = await command.post("/dispatch/new", data={**data, "source_id": "case-nope"})
        assert unknown.status_code == 409 and "任务来源不存在" in unknown.text
        r = await command.post("/dispatch/new", data={**data, "source_id": cid})
        assert r.status_code == 303
    rows = await w.store.pool.fetch(
        "SELECT source_kind, source_id, squad_id FROM tasks WHERE source_kind <> 'lead'"
    )  # (the board's rules dispatched lead 3 too: restricted hours are automatic)
    # the world's cases are at G312-K1035-E, in ZD-NORTH's area (configs/squads.yaml)
    assert [tuple(r) for r in rows] == [("case", cid, "ZD-NORTH")]


async def test_an_overdue_task_escalates_once_and_stands_out(desk: Desk) -> None:
    w = desk.world
    d = Dispatch(w.store.pool, SQUADS, w.clock)
    task_id = await d.create("lead", "lead-0002", None, "zhou", hours=2)
    assert (await w.store.pool.fetchval("SELECT squad_id FROM tasks")) == "ZD-SOUTH"  # by area
    assert await d.escalate() == []  # not yet due
    w.clock.now += dt.timedelta(hours=2, minutes=1)
    assert await d.escalate() == [task_id]
    assert await d.escalate() == []  # once
    async with client_of(desk.console) as command:
        await log_in(command, "zhou")
        board = await command.get("/dispatch")
        row = re.search(rf'<tr class="([^"]*)" data-task="{task_id}"', board.text)
        assert row is not None and "overdue" in row.group(1) and "escalated" in row.group(1)
        assert "已上报中队长和指挥中心" in board.text


async def test_the_rules_dispatch_a_kind_set_to_automatic_by_area(desk: Desk) -> None:
    w = desk.world
    d = Dispatch(w.store.pool, SQUADS, w.clock)
    made = await d.auto()  # restricted_hours is automatic in configs/squads.yaml, cloned_plate not
    rows = await w.store.pool.fetch("SELECT source_id, squad_id, created_by, due_at FROM tasks")
    assert made and [(r["source_id"], r["squad_id"], r["created_by"]) for r in rows] == [
        ("lead-0003", "ZD-NORTH", "auto")]  # fmt: skip
    # 8 working hours (08:30-17:30 on weekdays) from the clock's moment
    assert rows[0]["due_at"] == d.due(w.clock.now, 8, True)
    assert await d.auto() == []


async def test_the_figures_match_a_hand_count(desk: Desk) -> None:
    w = desk.world
    d = Dispatch(w.store.pool, SQUADS, w.clock)
    t1 = await d.create("lead", "lead-0001", None, "zhou", hours=4)
    await d.create("lead", "lead-0002", None, "zhou", hours=4)
    await d.finish(t1, "sun", "case_opened", "", [], None, None, w.cases["small"])  # in time
    start = dt.datetime(2026, 11, 1, tzinfo=TZ)
    rows, cases = await figures(w.store.pool, SQUADS, start, start + dt.timedelta(days=30))
    # by hand: ZD-NORTH has lead 1 (cloned, dispatched, done in time) and lead 3 (restricted
    # hours, not dispatched); ZD-SOUTH has lead 2 (cloned, dispatched, open). The world's four
    # cases are all at G312-K1035-E (ZD-NORTH), one of them from lead 1: 1 in 4, 25 %.
    assert [(f.squad, f.kind, f.raised, f.dispatched, f.done, f.in_time) for f in rows] == [
        ("ZD-NORTH", "cloned_plate", 1, 1, 1, 1),
        ("ZD-NORTH", "restricted_hours", 1, 0, 0, 0),
        ("ZD-SOUTH", "cloned_plate", 1, 1, 0, 0),
    ]  # fmt: skip
    assert cases == {"ZD-NORTH": (4, 1)}
    async with client_of(desk.console) as command:
        await log_in(command, "zhou")
        board = await command.get("/dispatch", params={"start": "2026-11-01", "end": "2026-11-30"})
        assert 'id="share-total" data-cases="4" data-from-leads="1"' in board.text
        assert "25.00 %" in board.text


async def test_the_share_of_cases_from_leads_per_period_matches_a_hand_count(desk: Desk) -> None:
    """Fixed data over two months (local dates, UTC+8), counted by hand below."""
    from .test_command import add_case

    w, pool = desk.world, desk.world.store.pool
    blobs = desk.console.blobs
    assert blobs is not None
    more = [lead(4, "illegal_operation", "HUB-ZZZ", dt.datetime(2026, 12, 2, 9, tzinfo=TZ),
                 blobs, "湘B40004"),
            # the last minutes of November, local time (still November)
            lead(5, "cloned_plate", "G107-K1520-S", dt.datetime(2026, 11, 30, 23, 30, tzinfo=TZ),
                 blobs, "湘A50005")]  # fmt: skip
    await w.store.write_leads([(x, x.to_json().decode()) for x in more])
    s1 = await add_case(w, "s1", "S207-K45-N", "road.overload.gross",
                        dt.datetime(2026, 11, 25, 10, tzinfo=TZ))  # fmt: skip
    await add_case(w, "s2", "S207-K45-N", "road.overload.gross",
                   dt.datetime(2026, 11, 26, 10, tzinfo=TZ))  # fmt: skip
    h1 = await add_case(w, "h1", "HUB-ZZZ", "road.overload.gross",
                        dt.datetime(2026, 12, 3, 10, tzinfo=TZ))  # fmt: skip
    # 2026-11-30 16:10 UTC is 2026-12-01 00:10 in Beijing: a December case
    await add_case(w, "x", "G312-K1035-E", "road.overload.gross",
                   dt.datetime(2026, 12, 1, 0, 10, tzinfo=TZ))  # fmt: skip
    d = Dispatch(pool, SQUADS, w.clock)
    t1 = await d.create("lead", "lead-0001", None, "zhou", hours=4)
    t2 = await d.create("lead", "lead-0002", None, "zhou", hours=1)
    t4 = await d.create("lead", "lead-0004", None, "zhou", hours=4)
    await d.finish(t1, "sun", "case_opened", "", [], None, None, w.cases["small"])  # in time
    await d.finish(t4, "gao", "case_opened", "", [], None, None, h1)  # in time
    w.clock.now += dt.timedelta(hours=2)
    await d.finish(t2, "gao", "case_opened", "", [], None, None, s1)  # an hour late
    # By hand, November 2026 (leads and cases dated 11-01 00:00 to 11-30 24:00, Beijing):
    #   ZD-NORTH (G312, G107): cloned plates lead 1 (dispatched, done in time) and lead 5 (not
    #     dispatched) → raised 2, dispatched 1, done 1, in time 1; restricted hours lead 3 →
    #     1, 0, 0, 0. Cases: the world's 4 at G312, 1 of them (small) from lead 1 → 4, 1.
    #   ZD-SOUTH (S207, HUB-ZZZ): cloned plate lead 2 (done an hour late) → 1, 1, 1, 0. Cases:
    #     s1 (from lead 2) and s2 → 2, 1.
    #   All: 4 + 2 = 6 cases, 1 + 1 = 2 from leads: 2 / 6 = 33.33 %.
    # December 2026: ZD-SOUTH illegal operation lead 4 → 1, 1, 1, 1; cases: x at G312
    #   (ZD-NORTH, none from a lead) → 1, 0, and h1 (from lead 4) → 1, 1. All: 1 / 2 = 50.00 %.
    nov = dt.datetime(2026, 11, 1, tzinfo=TZ), dt.datetime(2026, 12, 1, tzinfo=TZ)
    dec = dt.datetime(2026, 12, 1, tzinfo=TZ), dt.datetime(2027, 1, 1, tzinfo=TZ)
    rows, cases = await figures(pool, SQUADS, *nov)
    assert [(f.squad, f.kind, f.raised, f.dispatched, f.done, f.in_time) for f in rows] == [
        ("ZD-NORTH", "cloned_plate", 2, 1, 1, 1),
        ("ZD-NORTH", "restricted_hours", 1, 0, 0, 0),
        ("ZD-SOUTH", "cloned_plate", 1, 1, 1, 0),
    ]  # fmt: skip
    assert cases == {"ZD-NORTH": (4, 1), "ZD-SOUTH": (2, 1)}
    rows, cases = await figures(pool, SQUADS, *dec)
    assert [(f.squad, f.kind, f.raised, f.dispatched, f.done, f.in_time) for f in rows] == [
        ("ZD-SOUTH", "illegal_operation", 1, 1, 1, 1)]  # fmt: skip
    assert cases == {"ZD-NORTH": (1, 0), "ZD-SOUTH": (1, 1)}
    async with client_of(desk.console) as command:
        await log_in(command, "zhou")
        for (start, end), total, share in ((("2026-11-01", "2026-11-30"), 'data-cases="6" '
                                            'data-from-leads="2"', "33.33 %"),
                                           (("2026-12-01", "2026-12-31"), 'data-cases="2" '
                                            'data-from-leads="1"', "50.00 %")):  # fmt: skip
            board = await command.get("/dispatch", params={"start": start, "end": end})
            assert f'id="share-total" {total}' in board.text and share in board.text
