"""Issue #30 item 8: every console page and document a person reads, rendered for cases in many
states (road and waterway, with a notice, a rejection, a transfer, a statement), shows no internal
code, Python value or unnamed code in its visible text."""

from __future__ import annotations

import datetime as dt
import html
import io
import re

import httpx
import pypdf

from console import Console
from console.names import UNNAMED, Names, name
from console.notice import notice_document
from evidence import Signer
from evidence.water_bag import build_water_package
from sinks import BlobStore, case_id
from sinks.accounts import Accounts
from sinks.dispatch import Dispatch
from tests.unit.test_stages import REGISTRY
from tests.unit.test_water_detect import REG
from tests.unit.test_water_evidence import dark_vessel

from .test_console import PASSWORD, client_of, csrf_of, log_in
from .test_dispatch import SQUADS, STAFF, lead
from .test_lifecycle import AGENCY, WANG, World, qualify
from .test_party import find

# what must never reach a person's eyes: violation codes, Python values and dicts, and a code
# the names table lacks
INTERNAL = re.compile(
    r"road\.|water\.|\bTrue\b|\bFalse\b|\bNone\b|\{'|"
    + UNNAMED
    # ids that are not the point: a decision's id, a baseline's or a tier's id
    + r"|\bvio-[0-9a-f]|\bart\d+-|\b(?:cn|example)-[a-z]+-"
)
# a registry's place ids (road sites, waterway checkpoints and reaches): a page names the place
# and its stake instead (device codes stay: the code on the device is how it is found)
PLACES = sorted({s.id for s in REGISTRY.sites} | {p.id for group in (
    REG.checkpoints, REG.sections, REG.controlled_sections, REG.no_dredging_zones) for p in group})  # fmt: skip
PLACE_ID = re.compile(r"(?<![\w-])(?:" + "|".join(map(re.escape, PLACES)) + r")(?![\w-])")
HIDDEN = re.compile(r"<(script|style|title)\b.*?</\1>", re.S | re.I)
TAG = re.compile(r"<[^>]+>")


def visible_text(page: str) -> str:
    """The text a browser shows: without tags, attributes, scripts and styles."""
    return html.unescape(TAG.sub(" ", HIDDEN.sub(" ", page)))


def leaks(page: str) -> list[str]:
    text = visible_text(page)
    found = [*INTERNAL.finditer(text), *PLACE_ID.finditer(text)]
    return [text[max(0, m.start() - 40) : m.end() + 40] for m in found]


async def demo_cases(w: World) -> dict[str, str]:
    """The world's cases in several states, and a waterway case; name → case id."""
    console = Console(w.store.pool, w.lifecycle, w.settings.evidence.dir)
    await w.act("small", "confirm", WANG, reason="图像清晰")
    doc = await notice_document(console, w.cases["small"])
    await w.act("small", "issue_notice", WANG, payload={"document": doc})
    await w.act("other", "reject", WANG, reason_code="plate_misread")
    await w.act("unread", "transfer", WANG, reason="无牌车辆，移送公安")
    blobs = BlobStore(w.settings.var_dir / "blobs")
    v = dark_vessel(blobs)
    await (await w.store.begin_batch([v])).commit()
    signer = Signer.load(w.settings.evidence.key)
    build_water_package(v, REG, blobs, w.settings.evidence.dir, signer, AGENCY,
                        created_at=w.clock.now - dt.timedelta(seconds=1))  # fmt: skip
    # leads: one dispatched and done (it became the small case), one open, one waiting
    at = w.clock.now - dt.timedelta(hours=1)
    leads = [lead(n, kind, "G312-K1035-E", at, blobs, plate) for n, kind, plate in (
        (1, "cloned_plate", "湘A12345"), (2, "illegal_operation", "湘A55555"),
        (3, "plate_missing", "湘A66666"))]  # fmt: skip
    await w.store.write_leads([(x, x.to_json().decode()) for x in leads])
    d = Dispatch(w.store.pool, SQUADS, w.clock)
    done = await d.create("lead", "lead-0001", None, "zhou", priority="high")
    await d.finish(done, "sun", "case_opened", "查获", [], 28.2, 112.9, w.cases["small"])
    await d.create("lead", "lead-0002", None, "zhou", hours=1)
    await d.create("device", "WIM-G312-1035", "ZD-NORTH", "zhou")
    await d.create("case", w.cases["other"], None, "zhou")  # to the squad of the case's site
    w.clock.now += dt.timedelta(hours=2)  # the open lead task is overdue now
    accounts = Accounts(w.store.pool)
    for user, roles in STAFF.items():
        await accounts.create(user, roles, PASSWORD, display_name=f"{user}警官")
    await qualify(w.store.pool, "zhao")  # 法律职业资格 (Art. 58)
    return {**w.cases, "water": case_id(v), "task": done}


def pdf_words(data: bytes) -> str:
    """A PDF document's text, its words apart (a code must not run into its neighbours)."""
    assert data[:5] == b"%PDF-"
    return "\n".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(data)).pages)


async def pages_of(client: httpx.AsyncClient, paths: list[str]) -> dict[str, str]:
    out = {}
    for path in paths:
        r = await client.get(path)
        assert r.status_code == 200, (path, r.status_code)
        out[path] = r.text
    return out


async def every_page(w: World, console: Console) -> dict[str, str]:
    cases = await demo_cases(w)
    rendered: dict[str, str] = {}
    async with client_of(console) as client:
        await log_in(client, "chen")  # officer and legal reviewer
        queues = ["/cases"] + [f"/cases?status={s}" for s in (
            "statement_received", "sent_back", "confirmed", "approved", "notice_issued")]  # fmt: skip
        rendered |= await pages_of(
            client, [*queues, "/legal", "/legal/casefiles", "/legal/publicity", "/legal/chaogao"]
        )
        rendered |= await pages_of(
            client, [f"/cases/{cid}" for n, cid in cases.items() if n != "task"]
        )
        rendered |= await pages_of(client, [f"/cases/{cases['small']}/notice"])
        pdf = await client.get(f"/cases/{cases['small']}/notice.pdf")
        rendered["notice.pdf"] = pdf_words(pdf.content)
        page = await client.get(f"/cases/{cases['small']}")
        assert csrf_of(page)
    async with client_of(console) as client:
        await log_in(client, "zhou")
        rendered |= await pages_of(client, ["/command", "/dispatch", "/map", "/analysis",
                                            "/stats?from=2026-11-01&to=2026-11-30"])  # fmt: skip
    async with client_of(console) as client:
        await log_in(client, "liu")
        rendered |= await pages_of(client, ["/tasks"])
    async with client_of(console) as client:
        await log_in(client, "sun")
        field = await client.get("/field")
        ids = re.findall(r'href="(/field/tasks/[^"]+)"', field.text)
        assert len(ids) == 3
        rendered |= {"/field": field.text} | await pages_of(
            client, [*ids, f"/field/tasks/{cases['task']}"]
        )
    async with client_of(console) as client:  # the party, with the notice's plate and code
        rendered |= await pages_of(client, ["/login", "/public/decisions"])
        code = await w.store.pool.fetchval(
            "SELECT lookup_code FROM violation_notices WHERE case_id = $1", cases["small"]
        )
        assert (await find(client, "湘A12345", code)).status_code == 303
        rendered |= await pages_of(client, ["/party/case", "/party/notice"])
        rendered["party notice.pdf"] = pdf_words((await client.get("/party/notice.pdf")).content)
    async with client_of(console) as client:
        await log_in(client, "root")
        rendered |= await pages_of(client, ["/admin"])
    return rendered


async def test_no_page_shows_an_internal_code_or_a_python_value(world: World) -> None:
    console = Console(world.store.pool, world.lifecycle, world.settings.evidence.dir,
                      registry=REGISTRY, waterways=REG,
                      blobs=BlobStore(world.settings.var_dir / "blobs"), squads=SQUADS)  # fmt: skip
    rendered = await every_page(world, console)
    assert len(rendered) >= 20
    found = {path: leaks(text) for path, text in rendered.items()}
    bad = {p: f for p, f in found.items() if f}
    assert not bad, "\n".join(f"{p}: {f!r}" for p, f in bad.items())
    # the pages do name what they show, in Chinese
    case_pages = "".join(t for p, t in rendered.items() if p.startswith("/cases/"))
    for shown in (
        "车货总质量超限",
        "已识别",
        "检定证书编号",
        "通过当日在有效期内",
        "车牌识别错误",
        "由套牌车辆线索转立",
    ):
        assert shown in visible_text(case_pages), shown
    assert "车货总质量超限" in "".join(rendered["notice.pdf"].split())


def test_a_code_without_a_name_is_readable_and_caught() -> None:
    states = Names({"closed": "已结案"})
    assert states["closed"] == "已结案"
    # a state another part of the system adds later, before it has a name
    assert states["head_review"] == f"{UNNAMED}（head_review）"
    assert states.get("head_review") == f"{UNNAMED}（head_review）"
    assert leaks(f"<td>{states['head_review']}</td>") != []
    assert name("violation", "road.overload.gross") == "车货总质量超限"
    assert name("state", None) == "—"
    assert leaks("<td>True</td><td>{'a': 1}</td>") and not leaks("<td>是</td>")
    assert leaks("<li>G312-K1035-E 湘A12345</li>") and not leaks("<td>WIM-G312-1035</td>")
