"""The statistics (issue #26 must-have 7) on a fixed, small data set in the real case store,
against a hand count: the weighings as the detection stage writes them (once, also after a
restart reads them again), cases, 立案 and 结案, decisions and payments, 抄告, leads, transfers
to the police and the 评查 of the closed cases' files; the page, its XLSX and `offsite stats`
show the same figures; a pass at 00:10 Beijing time on the first day counts in that day."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import re
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from cases.casefile import VOLUMES, Document, archive_number, write_casefile
from cases.statistics import WEIGHINGS_YEARS, Statistics, statistics
from console import Console
from console.notice import render_pdf
from console.stats import pruning
from detectors import DetectionStage
from events.water import CHANNEL
from offsite.cli import _stats
from offsite.config import ConsoleSettings, Settings, load_waterways
from tests.unit.test_casefile import good_facts
from tests.unit.test_stages import REGISTRY, incoming, record

from .test_command import add_case
from .test_console import client_of, log_in
from .test_credit import until
from .test_lifecycle import World

TZ = dt.timezone(dt.timedelta(hours=8))
G312, S207 = "G312-K1035-E", "S207-K45-N"
HUB = "HUB-ZZZ"  # a camera at a hub: leads, no weighing
DEC = dt.date(2026, 12, 1), dt.date(2026, 12, 31)


def at(month: int, day: int, hour: int = 10, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, minute, tzinfo=TZ)


def weighings() -> list[Any]:
    """6-axle combinations (limit 49,000 kg). G312's device is class 2 (tolerance 2 %), S207's
    class 10 (10 %; its certificate ended 2026-11-30: still weighed, no longer enforceable)."""
    s207 = {"site_id": S207, "device_id": "WIM-S207-45"}
    return [
        record("g1", 60_000, ts=at(11, 30, 23, 59)),  # over, but November
        record("g2", 60_000, ts=at(12, 1, 0, 10)),  # 60,000 − 1,200 > 49,000: over, Dec 1
        record("g3", 40_000, ts=at(12, 1, 9)),
        # gross within, tandem 20,200 kg over its 18,000 after the 404 kg margin: over
        record(
            "g4", 40_000, ts=at(12, 2), axle_weights_kg=[6_500, 10_000, 10_200, 4_400, 4_400, 4_500]
        ),
        # 49,500 − 990 = 48,510: within the tolerance; tandem 18,300 − 366 ≤ 18,000, tridem
        # 24,200 − 484 ≤ 24,000: within
        record(
            "g5",
            49_500,
            ts=at(12, 2, 11),
            axle_weights_kg=[7_000, 9_150, 9_150, 8_100, 8_000, 8_100],
        ),
        record("s1", 60_000, ts=at(12, 3), **s207),  # 60,000 − 6,000 = 54,000: over
        record("s2", 30_000, ts=at(12, 3, 11), **s207),
        record("s3", 30_000, ts=at(12, 4), **s207),
    ]


async def transition(w: World, cid: str, action: str, to: str, when: dt.datetime,
                     reason_code: str | None = None) -> None:  # fmt: skip
    await w.store.pool.execute(
        "INSERT INTO case_transitions (case_id, action, from_status, to_status, actor,"
        " actor_role, reason_code, at, custody_seq, custody_hash) VALUES ($1, $2, 'x', $3,"
        " 'wang', 'officer', $4, $5, 2, 'x')",
        cid, action, to, reason_code, when,
    )  # fmt: skip
    await w.store.pool.execute("UPDATE cases SET status = $2 WHERE case_id = $1", cid, to)


async def seed(w: World) -> dict[str, str]:
    pool = w.store.pool
    # the weighings, through the real detection stage; then a restart reads them all again
    # (its offsets were not committed) and the device sends g2 twice: still counted once each
    for _ in range(2):
        stage = DetectionStage(REGISTRY, weighings=w.store)
        await stage.process(incoming([*weighings(), record("g2", 60_000, ts=at(12, 1, 0, 10))]))
        await stage.idle()
    ids = {}
    for name, site, code, when in (
        ("c0", G312, "road.overload.gross", at(11, 30, 23, 50)),
        ("c1", G312, "road.overload.gross", at(12, 1, 0, 10)),  # 00:10 Beijing: December
        ("c2", G312, "road.overload.axle", at(12, 2)),
        ("c3", S207, "road.overload.gross", at(12, 3)),
        ("c4", S207, "road.overload.gross", at(12, 5)),
        ("c5", S207, "road.overload.gross", at(12, 6)),
    ):
        ids[name] = await add_case(w, name, site, code, when)
    for name, filed in (("c0", at(12, 1, 9)), ("c1", at(12, 1, 11)), ("c2", at(12, 2, 11)),
                        ("c3", at(12, 3, 12)), ("c5", at(12, 6, 12))):  # fmt: skip
        await pool.execute(
            "INSERT INTO case_files (case_id, filed_at, filed_by, decision_due) VALUES ($1, $2,"
            " 'wang', $3)", ids[name], filed, filed.date() + dt.timedelta(days=90),
        )  # fmt: skip
    await transition(w, ids["c0"], "confirm", "confirmed", at(12, 1, 9))
    await transition(w, ids["c2"], "transfer_agency", "transferred", at(12, 2, 12), "police")
    await transition(w, ids["c3"], "decide", "decided", at(12, 20))
    await transition(w, ids["c4"], "transfer", "transferred", at(12, 5, 12))
    await transition(w, ids["c1"], "close", "closed", at(12, 15))
    await transition(w, ids["c5"], "close", "closed", at(12, 31, 23, 50))
    for name, no, fine, decided in (("c1", "D-1", 2_000, at(12, 5, 9)),
                                    ("c3", "D-3", 5_000, at(12, 20)),
                                    ("c5", "D-5", 1_000, at(11, 30, 23))):  # fmt: skip
        await pool.execute(
            "INSERT INTO penalty_decisions (case_id, decision_no, kind, fine_cny, decided_at,"
            " decided_by, document) VALUES ($1, $2, 'penalty', $3, $4, 'chen', '{}')",
            ids[name], no, fine, decided,
        )  # fmt: skip
    for ref, no, fen, day in (("B1", "D-1", 200_000, dt.date(2026, 12, 10)),
                              ("B3", "D-3", 250_000, dt.date(2026, 12, 31)),
                              ("B4", "D-3", 250_000, dt.date(2027, 1, 1)),
                              ("B5", "D-5", 100_000, dt.date(2026, 11, 30))):  # fmt: skip
        await pool.execute(
            "INSERT INTO payments (bank_ref, decision_no, amount_fen, paid_on, source,"
            " imported_at) VALUES ($1, $2, $3, $4, 'bank.csv', now())", ref, no, fen, day,
        )  # fmt: skip
    for lid, site, when, case in (("l1", G312, at(12, 1, 8), ids["c1"]), ("l2", G312, at(12, 2), None),
                                  ("l3", S207, at(12, 4), None),
                                  ("l5", HUB, at(12, 7), None), ("l4", G312, at(11, 30, 23), None)):  # fmt: skip
        await pool.execute(
            "INSERT INTO leads (lead_id, kind, site_id, ts, score, lead, case_id) VALUES ($1,"
            " 'cloned_plate', $2, $3, 0.9, '{}', $4)", lid, site, when, case,
        )  # fmt: skip
    await pool.execute(
        "INSERT INTO tasks (task_id, source_kind, source_id, kind, site_id, squad_id, priority,"
        " created_by, created_at, due_at, status, result, done_by, done_at) VALUES ('t2', 'lead',"
        " 'l2', 'cloned_plate', $1, 'ZD-NORTH', 'high', 'zhou', $2, $3, 'done', 'transferred',"
        " 'sun', $3)", G312, at(12, 2, 11), at(12, 2, 15),
    )  # fmt: skip
    # the closed cases' 电子案卷, without their evidence package (E1 10, E2 5, E3 5 points lost:
    # 80); c5's also without 立案登记表 (P1 5) and both 送达回证 (P3 10, P5 10): 55
    pdf = await asyncio.to_thread(render_pdf, "<h1>文书</h1>")
    every = [k for k, _, _ in VOLUMES if k not in ("evidence", "hearing", "discussion")]
    for n, (name, missing) in enumerate(
        (("c1", set()), ("c5", {"filing", "notice_receipt", "decision_receipt"})), start=1
    ):
        docs = [Document(k, pdf) for k in every if k not in missing]
        await asyncio.to_thread(
            write_casefile, w.settings.var_dir / "casefiles", archive_no=archive_number(2026, n), case_id=ids[name],
            agency="某市交通运输综合行政执法支队", closed_on=dt.date(2026, 12, 15), documents=docs,
            package=None, signer=_signer(w), facts=good_facts(dt.date(2026, 12, 1)),
        )  # fmt: skip
    return ids


def _signer(w: World) -> Any:
    from evidence import Signer

    return Signer.load(w.settings.evidence.key)


def kept_forever(settings: Settings) -> Settings:
    """The settings with every weighing kept: `offsite stats` runs on the wall clock, and the
    fixed December 2026 must not fall before the years kept when the calendar moves on."""
    console = settings.console.model_copy(update={"weighings_keep_years": None})
    return settings.model_copy(update={"console": console})


async def december(w: World, site: str | None = None) -> Statistics:
    return await statistics(w.store.pool, *DEC, TZ, site=site,
                            casefile_dir=w.settings.var_dir / "casefiles")  # fmt: skip


async def test_the_figures_of_a_month_match_a_hand_count(world: World) -> None:
    w = world
    ids = await seed(w)
    s = await december(w)
    g, t = s.places[G312], s.places[S207]
    # Weighed in December (g1 is November 23:59): G312 g2 g3 g4 g5 = 4, over g2 g4 = 2 (50 %);
    # S207 s1 s2 s3 = 3, over s1 = 1 (33.33 %); all 7, 3 over: 3 / 7 = 42.86 %.
    assert (g.weighed, g.overloaded, t.weighed, t.overloaded) == (4, 2, 3, 1)
    assert (s.total.weighed, s.total.overloaded) == (7, 3)
    assert s.total.overload_rate == pytest.approx(3 / 7)
    # Cases dated in December (c0 is November 23:50): G312 c1 c2, S207 c3 c4 c5. By state now:
    # c1 closed, c2 transferred, c3 decided, c4 transferred, c5 closed.
    assert g.cases == {"road.overload.gross": 1, "road.overload.axle": 1}
    assert t.cases == {"road.overload.gross": 3}
    assert s.total.states == {"closed": 2, "transferred": 2, "decided": 1}
    # 立案 in December: G312 c0 c1 c2 (c0's case is November's, its 立案 December's), of them
    # ended: c1 closed, c2 transferred → 2 / 3; S207 c3 (decided: open) and c5 (closed) → 1 / 2;
    # all 3 / 5 = 60 %.
    assert (g.filed, g.concluded, t.filed, t.concluded) == (3, 2, 2, 1)
    assert s.total.closing_rate == pytest.approx(0.6)
    # Penalty decisions made in December: c1 2,000 (G312), c3 5,000 (S207); c5's was made in
    # November. Paid in December: D-1 2,000.00 (G312), D-3 2,500.00 on 12-31 (S207; the other
    # half on 2027-01-01 is January's, D-5's on 11-30 November's): 4,500.00 in all.
    assert (g.decided, g.fines_decided_cny, t.decided, t.fines_decided_cny) == (1, 2_000, 1, 5_000)
    assert (g.collected_fen, t.collected_fen, s.total.collected_fen) == (200_000, 250_000, 450_000)
    # Leads in December: G312 l1 (became c1) and l2, S207 l3, HUB l5 (l4 is November): 1 / 4
    # became a case; of the 5 cases, 1 came from a lead (20 %).
    assert (g.leads, g.leads_to_cases, t.leads, t.leads_to_cases) == (2, 1, 1, 0)
    assert (s.places[HUB].leads, s.places[HUB].weighed) == (1, 0)
    assert (s.total.lead_rate, s.total.lead_share) == (0.25, pytest.approx(0.2))
    # To the police: c2 (transfer_agency, police) at G312, c4 (transfer) at S207; lead l2
    # transferred by its squad's task at G312.
    assert (g.police_cases, t.police_cases, g.police_leads, t.police_leads) == (1, 1, 1, 0)
    # 评查 of the files closed in December: c1 80 (G312), c5 55 (S207, under 60): mean 67.5
    assert (g.scores, t.scores) == ([80], [55])
    assert (s.total.mean_score, s.total.below_pass) == (67.5, 1)
    # a pass at 00:10 Beijing time on the first day counts in that day
    day, weighed, over, cases = s.series[0]
    # 2026-12-01 00:10 Beijing is 2026-11-30 16:10 UTC: g2 and c1 are December 1st's
    assert (day, weighed, over, sum(cases.values())) == (dt.date(2026, 12, 1), 2, 1, 1)
    assert len(s.series) == 31 and not s.monthly
    nov30 = await statistics(w.store.pool, dt.date(2026, 11, 30), dt.date(2026, 11, 30), TZ)
    # November 30th alone: g1 (23:59) and c0 (23:50), not g2 and c1 ten minutes later
    assert (nov30.total.weighed, sum(nov30.total.cases.values())) == (1, 1)
    one = await statistics(w.store.pool, dt.date(2026, 12, 1), dt.date(2026, 12, 1), TZ)
    assert (one.total.weighed, one.total.overloaded, one.total.cases) == (
        2, 1, {"road.overload.gross": 1})  # fmt: skip
    # one site alone: its figures, and a total that is its own
    alone = await december(w, site=S207)
    assert list(alone.places) == [S207] and alone.total == alone.places[S207] == t
    # 抄告 sent in December: c1's (G312); c3's not yet sent
    for key, sent in (("c1", at(12, 16)), ("c3", None)):
        await w.store.pool.execute(
            "INSERT INTO chaogao (chaogao_id, case_id, status, record, pdf, closed_on, due,"
            " created_at, sent_at) VALUES ($1, $2, $3, '{}', '', $4, $4, $5, $6)",
            f"cg-{key}", ids[key], "sent" if sent else "pending", dt.date(2026, 12, 16),
            at(12, 16), sent)  # fmt: skip
    s = await december(w)
    assert (s.places[G312].chaogao, s.places[S207].chaogao) == (1, 0)


ROW = re.compile(r'<tr data-key="([^"]+)"><th scope="row">([^<]+)</th>(.*?)</tr>')


def page_table(html: str) -> dict[str, list[float | None]]:
    return {label: [_num(v or None) for v in re.findall(r'data-value="([^"]*)"', cells)]
            for _, label, cells in ROW.findall(html)}  # fmt: skip


def _num(v: Any) -> float | None:
    """A figure as both sides compare it: "—" and an empty value are None."""
    return None if v is None or v == "—" else round(float(v), 9)


def xlsx_table(data: bytes) -> dict[str, list[float | None]]:
    ws = openpyxl.load_workbook(io.BytesIO(data))["统计"]
    rows = list(ws.iter_rows(min_row=3, values_only=True))
    return {r[0]: [_num(v) for v in r[1:-1]] for r in rows}


async def test_the_page_and_its_xlsx_show_the_same_figures(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    w = world
    await seed(w)
    console = Console(w.store.pool, w.lifecycle, w.settings.evidence.dir, registry=REGISTRY)
    console.casefile_dir = w.settings.var_dir / "casefiles"
    query = {"from": "2026-12-01", "to": "2026-12-31"}
    async with client_of(console) as client:
        await log_in(client, "zhou")
        page = await client.get("/stats", params=query)
        assert page.status_code == 200
        book = await client.get("/stats.xlsx", params=query)
        assert book.headers["content-type"].startswith("application/vnd.openxmlformats")
        bad = await client.get("/stats", params={"from": "2026-12-31", "to": "2026-12-01"})
        assert bad.status_code == 400 and "统计期间有误" in bad.text
    shown, filed = page_table(page.text), xlsx_table(book.content)
    assert shown == filed and len(shown) > 20
    # columns: the total, G312, HUB (weighs nothing: "—"), S207 — counted by hand above
    assert shown["检测车辆数（辆次）"] == [7, 4, None, 3]
    assert shown["超限率"] == [round(3 / 7, 9), 0.5, None, round(1 / 3, 9)]
    assert shown["实缴罚没款（元）"] == [4_500, 2_000, 0, 2_500]
    assert shown["评查低于60分的案卷数"] == [1, 0, 0, 1]
    assert "42.86 %" in page.text and "4,500.00" in page.text and 'id="cases-chart"' in page.text
    assert shown["抄告数"] == [0, 0, 0, 0]  # none in this store: counted, not "—"
    # `offsite stats` prints the same, and writes the same workbook
    out = tmp_path / "stats.xlsx"
    assert await _stats(kept_forever(w.settings), *DEC, None, out) == 0
    printed = capsys.readouterr().out
    assert "超限率: 合计 42.86 %" in printed and "评查低于60分的案卷数: 合计 1" in printed
    assert xlsx_table(out.read_bytes()) == filed


async def test_a_waterway_place_is_shown_by_its_name(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    # before: a finding along the whole channel was a column headed by its raw id "channel" on
    # the page, in the workbook and in `offsite stats` (the command center's lookup had no name)
    w = world
    await add_case(w, "w1", CHANNEL, "water.identity", at(12, 3))
    await add_case(w, "w2", "CP-XJ-01", "water.overdraught", at(12, 4))
    waterways = load_waterways(w.settings.waterways)
    assert waterways.channel_name == "湘江长沙段航道"  # configs/waterways.yaml
    console = Console(w.store.pool, w.lifecycle, w.settings.evidence.dir, registry=REGISTRY,
                      waterways=waterways)  # fmt: skip
    query = {"from": "2026-12-01", "to": "2026-12-31"}
    async with client_of(console) as client:
        await log_in(client, "zhou")
        page = await client.get("/stats", params=query)
        book = await client.get("/stats.xlsx", params=query)
    heads = re.findall(r'<th data-place="([^"]*)">([^<]*)</th>', page.text)
    assert (CHANNEL, "湘江长沙段航道") in heads and ("CP-XJ-01", "橘子洲过境检查点") in heads
    header = next(openpyxl.load_workbook(io.BytesIO(book.content))["统计"].iter_rows(
        min_row=2, max_row=2, values_only=True))  # fmt: skip
    assert "湘江长沙段航道" in header and CHANNEL not in header
    assert await _stats(w.settings, *DEC, None, None) == 0
    printed = capsys.readouterr().out
    assert "湘江长沙段航道 1" in printed and f"{CHANNEL} " not in printed


async def test_the_running_console_deletes_the_weighings_older_than_the_years_kept(
    world: World,
) -> None:
    # before: the weighings (one row per judged weighing, migration 086) were never deleted.
    # Kept by default: this year and the two before it (cases.statistics.WEIGHINGS_YEARS)
    w = world
    assert ConsoleSettings().weighings_keep_years == WEIGHINGS_YEARS == 3
    w.clock.now = dt.datetime(2026, 12, 7, 9, tzinfo=TZ)
    for rid, ts in (("old", dt.datetime(2023, 12, 31, 23, 50, tzinfo=TZ)),
                    # 2023-12-31 16:10 UTC: the years are Beijing's
                    ("kept", dt.datetime(2024, 1, 1, 0, 10, tzinfo=TZ)),
                    ("now", at(12, 3))):  # fmt: skip
        await w.store.pool.execute(
            "INSERT INTO weighings (device_id, record_id, site_id, ts, overloaded)"
            " VALUES ('WIM-S207-45', $1, $2, $3, false)", rid, S207, ts)  # fmt: skip
    console = Console(w.store.pool, w.lifecycle, w.settings.evidence.dir, sweep_s=3600)
    left = lambda: w.store.pool.fetch("SELECT record_id FROM weighings ORDER BY ts")  # noqa: E731
    console.weighings_years = WEIGHINGS_YEARS
    async with pruning(console):  # as `offsite console` runs it, no page open

        async def pruned() -> bool:
            return len(await left()) == 2

        await until(pruned, "the old weighing deleted")
    assert [r["record_id"] for r in await left()] == ["kept", "now"]
    assert (await december(w)).total.weighed == 1
