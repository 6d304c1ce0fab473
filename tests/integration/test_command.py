"""Issue #12 item 8: the command center page over the real case store — cases per day by
violation, each site's confirmation rate, the devices and their certificates, the map."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path

import pytest

from console import Console
from events import Registry
from offsite.config import Settings, load_registry, load_waterways
from sinks.accounts import Accounts

from .test_console import PASSWORD, client_of, log_in
from .test_lifecycle import WANG, World, make_world

ROOT = Path(__file__).resolve().parents[2]
TZ = dt.timezone(dt.timedelta(hours=8))
NOW = dt.datetime(2027, 3, 10, 10, 0, tzinfo=TZ)  # a Wednesday; after the packages were made
TODAY = NOW.date()


@pytest.fixture
async def world(plain_settings: Settings) -> AsyncIterator[World]:
    w = await make_world(plain_settings)
    w.clock.now = NOW
    await Accounts(w.store.pool).create("zhou", ["command_center"], PASSWORD)
    yield w
    await w.store.close()


def registry(today: dt.date) -> Registry:
    """configs/sites.yaml with certificates set around ``today``: one expiring, one expired."""
    data = load_registry(ROOT / "configs" / "sites.yaml").model_dump()
    until = {"WIM-G107-1520": 10, "WIM-G312-1035": 200, "WIM-S207-45": -3}
    for d in data["devices"]:
        if d["id"] in until:
            d["certificate"]["valid_from"] = today - dt.timedelta(days=300)
            d["certificate"]["valid_until"] = today + dt.timedelta(days=until[d["id"]])
    return Registry.model_validate(data)


def console_of(w: World, waterways: bool = False) -> Console:
    water = load_waterways(ROOT / "configs" / "waterways.yaml") if waterways else None
    return Console(w.store.pool, w.lifecycle, w.settings.evidence.dir,
                   registry=registry(TODAY), waterways=water)  # fmt: skip


async def add_case(w: World, name: str, site: str, code: str, ts: dt.datetime) -> str:
    """A case row as the case sink writes it (only what the command center reads matters)."""
    cid = f"case-{name}"
    await w.store.pool.execute(
        "INSERT INTO cases (case_id, violation_id, detection_id, violation_code, record_id,"
        " site_id, device_id, ts, plate, outcome, fine_cny, measured_kg, tolerance_kg, limit_kg,"
        " overload_kg, tier, legal_basis, penalty_basis, violation)"
        " VALUES ($1, $1, $1, $2, $1, $3, 'WIM-X', $4, '湘A00001', 'fine', 500, 50000, 0, 49000,"
        " 1000, 't1', '', '', '{}')",
        cid, code, site, ts,
    )  # fmt: skip
    return cid


async def add_review(w: World, cid: str, action: str, at: dt.datetime) -> None:
    to = {"confirm": "confirmed", "reject": "rejected", "transfer": "transferred"}[action]
    await w.store.pool.execute(
        "INSERT INTO case_transitions (case_id, action, from_status, to_status, actor,"
        " actor_role, at, custody_seq, custody_hash) VALUES ($1, $2, 'pending_review', $3,"
        " 'wang', 'officer', $4, 2, 'x')",
        cid, action, to, at,
    )  # fmt: skip


class Elements(HTMLParser):
    """Every start tag of a page as (tag, attributes), and the text of the page."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str]]] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, {k: v or "" for k, v in attrs}))

    def having(self, tag: str, **attrs: str) -> list[dict[str, str]]:
        want = {k.replace("_", "-"): v for k, v in attrs.items()}
        return [a for t, a in self.found
                if t == tag and all(a.get(k) == v for k, v in want.items())]  # fmt: skip

    def classed(self, tag: str, name: str) -> list[dict[str, str]]:
        return [a for t, a in self.found if t == tag and name in a.get("class", "").split()]


async def test_the_chart_counts_cases_per_local_day_and_violation(world: World) -> None:
    w = world
    day = dt.timedelta(days=1)
    at = dt.datetime.combine(TODAY, dt.time(9), TZ)
    await add_case(w, "a", "G107-K1520-S", "road.overload.gross", at - 2 * day)
    await add_case(w, "b", "G107-K1520-S", "road.overload.gross", at - 2 * day)
    await add_case(w, "c", "S207-K45-N", "road.overload.axle", at - 2 * day)
    # 00:30 in Beijing is the day before in UTC: it counts on the local day
    await add_case(w, "d", "G107-K1520-S", "road.overload.gross",
                   dt.datetime.combine(TODAY, dt.time(0, 30), TZ))  # fmt: skip
    await add_case(w, "e", "G107-K1520-S", "road.overload.gross", at - 14 * day)  # before
    await add_case(w, "f", "G107-K1520-S", "road.overload.gross", at + day)  # tomorrow
    async with client_of(console_of(w)) as client:
        await log_in(client, "zhou")
        r = await client.get("/command")
        assert r.status_code == 200
        page = Elements(r.text)
        assert page.having("svg", id="per-day-chart")
        days = page.classed("g", "day")
        assert [d["data-day"] for d in days] == [
            (TODAY - dt.timedelta(days=13 - i)).isoformat() for i in range(14)
        ]
        totals = {d["data-day"]: int(d["data-total"]) for d in days}
        assert totals[(TODAY - 2 * day).isoformat()] == 3 and totals[TODAY.isoformat()] == 1
        assert sum(totals.values()) == 4
        segments = {(a["data-code"], int(a["data-n"])) for a in page.having("rect")
                    if "data-code" in a}  # fmt: skip
        assert segments == {("road.overload.gross", 2), ("road.overload.axle", 1),
                            ("road.overload.gross", 1)}  # fmt: skip
        # the legend names the violations in Chinese, and the table says the same numbers
        assert "车货总质量超限" in r.text and "轴荷超限" in r.text
        row = r.text.split(f'<tr data-day="{(TODAY - 2 * day).isoformat()}">')[1].split("</tr>")[0]
        assert row.count("<td>") == 4 and "<td>2</td><td>1</td><td>3</td>" in row
        # today's counts, by violation and by site
        today = r.text.split('id="today-by-site"')[1].split("</table>")[0]
        # (the site by its name and stake, never its id: issue #30 must-have 8)
        assert "国道107线K1520 超限检测点(南向)</td><td>1</td>" in today
        assert "S207" not in today and "G107-K1520-S" not in today
        # a longer window on request
        r = await client.get("/command", params={"days": "30"})
        assert len(Elements(r.text).classed("g", "day")) == 30
        assert sum(int(d["data-total"]) for d in Elements(r.text).classed("g", "day")) == 5


async def test_a_sites_rate_is_its_first_reviews_and_a_low_one_is_flagged(world: World) -> None:
    w = world
    # G312: three confirmed, one rejected, through the lifecycle (a plate correction is no review)
    for name in ("small", "major", "other"):
        await w.act(name, "confirm", WANG)
    await w.act("unread", "correct_plate", WANG, reason="人工识读",
                payload={"plate": "湘D45678", "plate_color": "yellow"})  # fmt: skip
    await w.act("unread", "reject", WANG, reason_code="plate_misread")
    # S207: 2 confirmed in 12, one of them rejected later (its first review counts)
    last_week = NOW - dt.timedelta(days=8)
    for i in range(12):
        cid = await add_case(w, f"s{i}", "S207-K45-N", "road.overload.gross", last_week)
        await add_review(w, cid, "confirm" if i < 2 else "reject", last_week)
    await add_review(w, "case-s0", "reject", NOW)
    # reviewed before the 8 weeks shown: not counted
    old = await add_case(w, "old", "S207-K45-N", "road.overload.gross", NOW - dt.timedelta(weeks=9))
    await add_review(w, old, "confirm", NOW - dt.timedelta(weeks=9))
    async with client_of(console_of(w)) as client:
        await log_in(client, "zhou")
        r = await client.get("/command")
    page = Elements(r.text)
    sites = {a["data-site"]: a for a in page.classed("figure", "site-rate")}
    assert set(sites) == {"G312-K1035-E", "S207-K45-N"}
    g312, s207 = sites["G312-K1035-E"], sites["S207-K45-N"]
    assert (g312["data-confirmed"], g312["data-reviewed"]) == ("3", "4")
    assert (s207["data-confirmed"], s207["data-reviewed"]) == ("2", "12")
    g312_text = r.text.split('data-site="G312-K1035-E"')[1].split("</figure>")[0]
    assert "75 %</span>（3/4）" in g312_text
    # S207 confirms far less than the others: flagged; G312 has too few reviews to tell
    assert "flagged" in s207["class"] and "flagged" not in g312["class"]
    assert "确认率明显偏低" in r.text.split('data-site="S207-K45-N"')[1].split("</figure>")[0]
    # one bar per week with reviews: S207's last week, G312's this week
    monday = TODAY - dt.timedelta(days=TODAY.weekday())
    weeks = [a["data-week"] for a in page.having("rect") if "data-week" in a]
    assert weeks == [monday.isoformat(), (monday - dt.timedelta(weeks=1)).isoformat()]


async def test_devices_show_last_message_and_certificate_expiry(world: World) -> None:
    w = world
    await w.store.pool.execute(
        "INSERT INTO device_health (device_id, received, skew_s, active) VALUES"
        " ('CAM-G312-1035', $1, 2.0, $2)",
        NOW - dt.timedelta(minutes=5), json.dumps({"silent": "超过 10 分钟无消息"}),
    )  # fmt: skip
    async with client_of(console_of(w)) as client:
        await log_in(client, "zhou")
        r = await client.get("/command")
    page = Elements(r.text)
    rows = {a["data-device"]: a["class"] for a in page.classed("tr", "device")}
    assert set(rows) >= {"WIM-G107-1520", "WIM-G312-1035", "WIM-S207-45", "CAM-G312-1035"}
    assert "cert-expired" in rows["WIM-S207-45"]
    assert "cert-expiring" in rows["WIM-G107-1520"]
    assert "cert-valid" in rows["WIM-G312-1035"]
    assert "cert-none" in rows["CAM-G312-1035"]

    def row(device: str) -> str:
        return r.text.split(f'data-device="{device}"')[1].split("</tr>")[0]

    assert "湘计检(2025)WIM-2207" in row("WIM-S207-45") and "已过期（已过 3 天）" in row(
        "WIM-S207-45"
    )
    assert "即将到期（剩 10 天）" in row("WIM-G107-1520")
    assert "有效（剩 200 天）" in row("WIM-G312-1035")
    assert "2027-03-10 09:55:00" in row("CAM-G312-1035") and "长时间无数据" in row("CAM-G312-1035")
    assert "尚无消息" in row("WIM-G107-1520") and "国道107线K1520" in row("WIM-G107-1520")


async def test_the_map_has_one_marker_per_site_placed_by_its_coordinates(world: World) -> None:
    w = world
    c = console_of(w, waterways=True)
    assert c.registry is not None and c.waterways is not None
    await add_case(w, "m", "S207-K45-N", "road.overload.gross", NOW - dt.timedelta(hours=1))
    async with client_of(c) as client:
        await log_in(client, "zhou")
        r = await client.get("/command")
    page = Elements(r.text)
    sites = {a["data-site"]: a for a in page.classed("g", "site-marker")}
    assert len(page.classed("g", "site-marker")) == len(c.registry.sites) == len(sites)
    for s in c.registry.sites:
        m = sites[s.id]
        assert (float(m["data-lat"]), float(m["data-lon"])) == (s.lat, s.lon)
        assert 0 < float(m["data-x"]) < 640 and 0 < float(m["data-y"]) < 420
    checkpoints = page.classed("g", "checkpoint-marker")
    assert len(checkpoints) == len(c.waterways.checkpoints)
    # north is up, east is right
    north = max(c.registry.sites, key=lambda s: s.lat)
    assert min(float(m["data-y"]) for m in sites.values()) == float(sites[north.id]["data-y"])
    east = max(c.registry.sites, key=lambda s: s.lon)
    assert max(float(m["data-x"]) for m in sites.values()) == float(sites[east.id]["data-x"])
    # coloured by today's cases and by device state (S207's WIM certificate has expired)
    assert sites["S207-K45-N"]["data-cases"] == "1" and "level-some" in sites["S207-K45-N"]["class"]
    assert "trouble" in sites["S207-K45-N"]["class"]
    assert "level-none" in sites["HUB-ZZZ"]["class"] and "trouble" not in sites["HUB-ZZZ"]["class"]
    assert "polyline" in r.text  # the fairway
