"""Issue #12 acceptance, in Debian's Chromium: officers, legal reviewers, the party and the
command center at work on the console, as a person would use it (clicks, keys, forms, files)."""

from __future__ import annotations

import io
import re
import time
from pathlib import Path

import cv2
import numpy as np
from playwright.async_api import Page, expect
from pypdf import PdfReader

from tests.integration.test_lifecycle import WANG, World
from tests.unit.test_no_wrong_fine import decide, one, passing

from .conftest import WAIT_MS, Live, until

ALERT_LIMIT_S = 2.0  # the issue's limit: a new case is on the command center within 2 s


async def images_load(page: Page, selector: str) -> int:
    """Scroll to every image under ``selector`` (they load lazily) and wait until each has
    decoded to a picture; the number of images."""
    images = page.locator(selector)
    n = await images.count()
    for i in range(n):
        img = images.nth(i)
        await img.scroll_into_view_if_needed()
        await page.wait_for_function(
            "img => img.complete && img.naturalWidth > 0", arg=await img.element_handle()
        )
    return n


async def issue_notice(live: Live, name: str) -> Page:
    """The officer confirms the case ``name`` and issues its notice in the browser; the page on
    the case."""
    w = live.world
    await w.act(name, "confirm", WANG)
    page = await live.log_in("wang")
    await page.goto(f"/cases/{w.cases[name]}")
    # two officers with their 执法证号 (Art. 42): the world's team (tests/integration)
    await page.fill("#act-issue_notice input[name=officers]", "team.liu,team.ma")
    await page.click("#act-issue_notice button[type=submit]")
    await expect(page.locator("#notice-pdf")).to_be_visible()
    assert await w.status(name) == "notice_issued"
    return page


async def test_an_officer_filters_the_queue_opens_a_case_and_confirms_it(live: Live) -> None:
    w = live.world
    cid = w.cases["small"]
    page = await live.log_in("wang")
    await expect(page).to_have_url(re.compile(r"/cases$"))
    rows = page.locator("#queue tbody tr")
    await expect(rows).to_have_count(4)
    await live.shot(page, "queue")
    # by site (every case here is at one site), then by a part of the plate
    site = w.violations["small"].detection.site_id
    await page.select_option("#filters select[name=site]", site)
    await page.fill("#filters input[name=plate]", "a12345")
    await page.click("#filters button[type=submit]")
    await expect(page).to_have_url(re.compile(r"plate=a12345"))
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("湘A12345")
    await live.shot(page, "queue-filtered")
    # major decisions only: the other case
    await page.fill("#filters input[name=plate]", "")
    await page.check("#filters input[name=major]")
    await page.click("#filters button[type=submit]")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("湘C34567")
    await page.go_back()  # to the plate's filter
    await expect(rows).to_have_count(1)
    await page.click("#queue a.case-link")
    await expect(page).to_have_url(re.compile(f"/cases/{cid}$"))
    await expect(page.locator("h1")).to_contain_text("湘A12345")
    assert await images_load(page, "section.images img") >= 1
    await expect(page.locator("section.images img").first).to_have_attribute(
        "src", f"/cases/{cid}/images/composite.jpg"
    )
    await live.shot(page, "case")
    # the keyboard shortcut C confirms (the page then opens the next pending case)
    await page.locator("h1").click()  # the focus on the page, not in a field
    await page.keyboard.press("c")
    await expect(page).not_to_have_url(re.compile(f"/cases/{cid}$"))
    await until(lambda: _is(w, "small", "confirmed"), "the case to be confirmed")
    assert await w.transitions("small") == [("confirm", "pending_review", "confirmed", "wang")]
    await page.goto(f"/cases/{cid}")
    await expect(page.locator("h1 .status")).to_have_text("已确认")
    await expect(page.locator("#transitions")).to_contain_text("wang")
    await live.shot(page, "case-confirmed")


async def _is(w: World, name: str, status: str) -> bool:
    return await w.status(name) == status


async def test_a_legal_reviewer_approves_a_major_case(live: Live) -> None:
    w = live.world
    cid = w.cases["major"]
    assert (await w.act("major", "confirm", WANG))[-1] == "legal_review"
    page = await live.log_in("zhao")
    await expect(page).to_have_url(re.compile(r"/legal$"))
    rows = page.locator("#queue tbody tr")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("湘C34567")
    await live.shot(page, "legal-queue")
    await page.click("#queue a.case-link")
    await expect(page.locator("h1")).to_contain_text("重大执法决定")
    await expect(page.locator("#act-approve")).to_be_visible()
    await expect(page.locator("#act-confirm")).to_have_count(0)
    assert await images_load(page, "section.images img") >= 1
    await live.shot(page, "case")
    await page.fill("#act-approve [name=reason]", "事实清楚，证据确凿，程序合法")
    await page.click("#act-approve button[type=submit]")
    await expect(page.locator("h1 .status")).to_have_text("法制审核通过")
    assert await w.status("major") == "approved"
    assert (await w.transitions("major"))[-1] == ("approve", "legal_review", "approved", "zhao")
    assert cid in page.url
    await live.shot(page, "case-approved")


async def test_who_confirmed_a_case_cannot_approve_it(live: Live) -> None:
    w = live.world
    cid = w.cases["major"]
    page = await live.log_in("chen")  # an officer and a legal reviewer
    await page.goto(f"/cases/{cid}")
    await page.click("#act-confirm button[type=submit]")
    await until(lambda: _is(w, "major", "legal_review"), "the case to go to legal review")
    await page.goto("/legal")
    await expect(page.locator("#queue tbody tr")).to_contain_text("湘C34567")
    await page.click("#queue a.case-link")
    await page.fill("#act-approve [name=reason]", "事实清楚，证据确凿，程序合法")
    await page.click("#act-approve button[type=submit]")
    await expect(page.locator("#error")).to_contain_text("审核分离")
    await live.shot(page, "refused")
    assert await w.status("major") == "legal_review"
    assert all(t[0] != "approve" for t in await w.transitions("major"))


async def test_the_notice_pdf_downloads_with_the_plate_and_the_fine(live: Live) -> None:
    w = live.world
    cid = w.cases["small"]
    page = await issue_notice(live, "small")
    await live.shot(page, "case")
    await page.click("#notice-html")
    await expect(page).to_have_url(re.compile(f"/cases/{cid}/notice$"))
    await expect(page.locator("#notice")).to_contain_text("湘A12345")
    await images_load(page, "#notice img")
    await live.shot(page, "notice")
    async with page.expect_download(timeout=WAIT_MS) as info:
        await page.click("#notice-pdf")
    download = await info.value
    path = await download.path()
    data = Path(path).read_bytes()
    assert data.startswith(b"%PDF-")
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(data)).pages)
    text = re.sub(r"\s+", "", text)
    assert "湘A12345" in text
    # 56,000 − ⌈1,120⌉ − 49,000 = 5,880 kg over → 5 full tonnes × 500 (2016 No. 62 Art. 43 (2))
    assert re.search(r"2,?500元", text), text[:2000]


def statement_photo(folder: Path) -> Path:
    """A JPEG the party attaches: a weighing slip, drawn."""
    img = np.full((240, 320, 3), 235, np.uint8)
    cv2.rectangle(img, (20, 20), (300, 220), (40, 40, 40), 2)
    cv2.putText(img, "WEIGHT 48,900 kg", (36, 130), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (0, 0, 0), 2)
    path = folder / "slip.jpg"
    assert cv2.imwrite(str(path), img)
    return path


async def test_the_party_finds_the_case_and_states_their_case(live: Live, tmp_path: Path) -> None:
    w = live.world
    cid = w.cases["small"]
    await issue_notice(live, "small")
    code = await w.store.pool.fetchval(
        "SELECT lookup_code FROM violation_notices WHERE case_id = $1", cid
    )
    party = await live.page()  # no account
    await party.goto("/party")
    await live.shot(party, "party-lookup")
    await party.fill("#lookup input[name=plate]", "湘a12345")
    await party.fill("#lookup input[name=code]", code.lower())
    await party.click("#lookup button[type=submit]")
    await expect(party).to_have_url(re.compile(r"/party/case$"))
    await expect(party.locator(".meta .plate")).to_have_text("湘A12345")
    await expect(party.locator("#penalty")).to_contain_text(re.compile(r"罚款\s*2,?500\s*元"))
    assert await images_load(party, "section.images img") >= 1
    await live.shot(party, "party-case")
    body = "当日车辆所载为不可解体物品，已办理超限运输许可，请求复核。"
    await party.fill("#statement-form textarea[name=body]", body)
    await party.set_input_files("#statement-form input[name=images]", statement_photo(tmp_path))
    await party.click("#statement-form button[type=submit]")
    await expect(party.locator("#sent")).to_be_visible()
    await expect(party.locator("#statements")).to_contain_text(body)
    await live.shot(party, "party-sent")
    assert await w.status("small") == "statement_received"
    # the statement is in the officer's queue, on the case
    officer = await live.log_in("li")
    await officer.select_option("#filters select[name=status]", "statement_received")
    await officer.click("#filters button[type=submit]")
    rows = officer.locator("#queue tbody tr")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("湘A12345")
    await live.shot(officer, "queue-statements")
    await officer.click("#queue a.case-link")
    await expect(officer.locator("#statements")).to_contain_text(body)
    assert await images_load(officer, "#statements img") == 1
    await live.shot(officer, "case-statement")


async def test_a_new_case_is_on_the_command_center_within_two_seconds(live: Live) -> None:
    w = live.world
    page = await live.log_in("zhou")
    await expect(page).to_have_url(re.compile(r"/command$"))
    await expect(page.locator("#alerts")).to_be_attached()

    async def listening() -> bool:  # the page's live feed is open: its LISTEN is in place
        n = await w.store.pool.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND state = 'idle' AND query LIKE 'LISTEN %offsite_cases%'"
        )
        return bool(n)

    await until(listening, "the command center's live feed")
    await live.shot(page, "command")
    v = one(await decide(passing("r-live", 60_000, plate="湘E56789")))
    start = time.monotonic()
    await (await w.store.begin_batch([v])).commit()
    left_ms = max(0.0, ALERT_LIMIT_S - (time.monotonic() - start)) * 1000
    alert = page.locator("#alerts li.new", has_text="湘E56789")
    await expect(alert).to_be_visible(timeout=left_ms)
    took = time.monotonic() - start
    assert took < ALERT_LIMIT_S, took
    await expect(alert).to_contain_text("罚款")
    await live.shot(page, "command-alert")
