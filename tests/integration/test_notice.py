"""Issue #12 item 6: the 违法行为通知书 as HTML and PDF, rendered from the notice as issued,
over the real case store and evidence packages (httpx on the ASGI app; the PDF read back with
pypdf)."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator

import pypdf
import pytest

from console import Console
from console.notice import load_notice, notice_document, notice_html, render_pdf
from evidence.custody import read_log
from offsite.config import Settings
from sinks.accounts import Accounts
from sinks.lifecycle import Policy

from .test_console import PASSWORD, USERS, app_of, client_of, log_in
from .test_lifecycle import WANG, ZHAO, World, make_world, qualify

# the province's 较大数额: from 10,000 yuan the party may ask for a hearing (听证)
POLICY = Policy(hearing_fine_cny_at_least=10_000)


@pytest.fixture
async def world(plain_settings: Settings) -> AsyncIterator[World]:
    w = await make_world(plain_settings, POLICY)
    accounts = Accounts(w.store.pool)
    for name, roles in USERS.items():
        await accounts.create(name, roles, PASSWORD, display_name=f"{name}警官")
    await qualify(w.store.pool, "zhao")  # 法律职业资格 (Art. 58)
    yield w
    await w.store.close()


async def issue(w: World, console: Console, name: str) -> str:
    """Confirm (and for a major decision, approve) the case and issue its notice; returns the
    lookup code."""
    cid = w.cases[name]
    if await w.act(name, "confirm", WANG) == ["confirmed", "legal_review"]:
        await w.act(name, "approve", ZHAO)
    doc = await notice_document(console, cid)
    assert await w.act(name, "issue_notice", WANG, payload={"document": doc}) == ["notice_issued"]
    today = w.clock.now.astimezone(POLICY.tz).date().isoformat()  # served in person, today
    served = {"method": "direct", "served_on": today, "served_by": "王警官、李警官",
              "recipient": "当事人本人"}  # fmt: skip
    assert await w.act(name, "serve_notice", WANG, payload=served) == ["notice_issued"]
    code = await w.store.pool.fetchval(
        "SELECT lookup_code FROM violation_notices WHERE case_id = $1", cid
    )
    return str(code)


def pdf_text(data: bytes) -> str:
    """The PDF's text without white space (the title is letter-spaced)."""
    return "".join(
        "".join(p.extract_text().split()) for p in pypdf.PdfReader(io.BytesIO(data)).pages
    )


async def test_the_notice_downloads_as_a_pdf_with_the_plate_fine_and_lookup_code(
    world: World,
) -> None:
    w = world
    console = app_of(w)
    cid = w.cases["small"]
    async with client_of(console) as client:
        await log_in(client, "wang")
        # no notice before it is issued
        assert (await client.get(f"/cases/{cid}/notice")).status_code == 404
        assert 'id="notice-pdf"' not in (await client.get(f"/cases/{cid}")).text
        code = await issue(w, console, "small")
        # the facts as issued, not as the case has them later
        await w.store.pool.execute("UPDATE cases SET fine_cny = 9999 WHERE case_id = $1", cid)
        page = await client.get(f"/cases/{cid}")
        assert f'href="/cases/{cid}/notice.pdf"' in page.text
        r = await client.get(f"/cases/{cid}/notice.pdf")
        assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
        assert "attachment" in r.headers["content-disposition"]
        reader = pypdf.PdfReader(io.BytesIO(r.content))
        text = pdf_text(r.content)
        assert "违法行为通知书" in text and "湘A12345" in text and code in text
        # review D.10: the fine in figures and in capitals (《正确填写票据和结算凭证的基本规定》)
        assert "罚款人民币2500元（贰仟伍佰元整）" in text.replace(" ", "").replace("\n", "")
        assert "9,999" not in text
        assert "http://127.0.0.1:8080/party" in text and "陈述" in text  # the console's own
        assert "湖南省交通运输综合行政执法局" in text  # the agency, from the signed package
        assert "听证" not in text  # 2,500 yuan is below the hearing threshold
        # review B8/B9 (must-have 11): the party by name, the 行政法规 beside the 规章 (《公路安全
        # 保护条例》 Art. 33 and 64), and the order to correct (行政处罚法 Art. 28)
        flat = text.replace(" ", "").replace("\n", "")
        assert "湖南示例物流有限公司" in flat and "91430100MA4L00000F" in flat
        assert "《公路安全保护条例》第三十三条第一款" in flat and "第六十四条" in flat
        assert "责令你（单位）立即改正违法行为" in flat
        # the composite is embedded, and the Chinese is set in the CJK font (not tofu)
        assert sum(len(p.images) for p in reader.pages) >= 1
        fonts = {str(f.get_object()["/BaseFont"]) for p in reader.pages
                 for f in p["/Resources"]["/Font"].values()}  # fmt: skip
        assert any("WenQuanYi" in f for f in fonts), fonts
    # both views are in the package's custody log, with the user; the code is not
    log = read_log(w.package("small"))
    notices = [(e["event"], e["actor"]) for e in log if e["detail"].startswith("notice")]
    assert notices == [("exported", "wang")]
    assert all(code not in e["detail"] for e in log)


async def test_the_html_notice_has_the_rights_and_a_hearing_only_when_the_amount_calls_for_it(
    world: World,
) -> None:
    w = world
    console = app_of(w)
    small, major = w.cases["small"], w.cases["major"]
    await issue(w, console, "small")
    await issue(w, console, "major")  # 24,500 yuan: a major decision, and a hearing right
    async with client_of(console) as client:
        await log_in(client, "zhao")  # a legal reviewer may read it too
        r = await client.get(f"/cases/{small}/notice")
        assert r.status_code == 200
        assert 'id="rights"' in r.text and "陈述和申辩" in r.text and 'id="statement-due"' in r.text
        assert "听证" not in r.text and 'id="hearing"' not in r.text
        assert '<img src="/cases/' in r.text and "composite.jpg" in r.text
        # review D.12: the caption says what the image is, not its file name
        assert "<figcaption>证据合成图（抓拍图像、车牌特写与称重数据）</figcaption>" in r.text
        assert "<figcaption>composite.jpg" not in r.text and 'alt="composite.jpg"' not in r.text
        r = await client.get(f"/cases/{major}/notice")
        assert r.status_code == 200 and 'id="hearing"' in r.text and "要求举行听证" in r.text
        assert "24500元（贰万肆仟伍佰元整）" in r.text and "湘C34567" in r.text
        # the party's address is the agency's, never the one a request claims (issue #28,
        # row 9: the Host header printed evil.example on the notice)
        console.public_url = "https://zf.example.gov.cn/"
        r = await client.get(f"/cases/{major}/notice", headers={"Host": "evil.example"})
        assert "https://zf.example.gov.cn/party" in r.text and "evil.example" not in r.text
        hearing_due = await w.store.pool.fetchval(
            "SELECT hearing_due FROM violation_notices WHERE case_id = $1", major
        )
        assert hearing_due is not None
        assert f"{hearing_due.year}年{hearing_due.month}月{hearing_due.day}日" in r.text
    log = read_log(w.package("major"))
    assert [(e["event"], e["actor"]) for e in log if e["detail"] == "notice"] == [
        ("viewed", "zhao"), ("viewed", "zhao")
    ]  # fmt: skip
    # the command center does not read notices; no session goes to the log-in
    async with client_of(console) as client:
        r = await client.get(f"/cases/{small}/notice.pdf")
        assert r.status_code == 303 and r.headers["location"].startswith("/login")
        await log_in(client, "zhou")
        assert (await client.get(f"/cases/{small}/notice")).status_code == 403


async def test_the_notice_names_the_vehicle_its_single_item_of_art3_the_contact_and_a_number(
    plain_settings: Settings,
) -> None:
    """Review B8/B9 and D (must-have 11), item by item, read back from the PDF."""
    policy = Policy(hearing_fine_cny_at_least=10_000, notice_prefix="湘交执超通",
                    agency_contact="长沙市芙蓉区示例路1号，电话0731-00000000")  # fmt: skip
    w = await make_world(plain_settings, policy)
    try:
        console = app_of(w)
        await issue(w, console, "small")
        await issue(w, console, "major")
        year = w.clock.now.astimezone(policy.tz).year
        numbers = await w.store.pool.fetch(
            "SELECT notice_no FROM violation_notices ORDER BY issued_at, notice_no"
        )
        # D.11: the agency's code, the year, and a number that starts at 1 each year
        assert [r["notice_no"] for r in numbers] == [f"湘交执超通〔{year}〕1号",
                                                     f"湘交执超通〔{year}〕2号"]  # fmt: skip
        notice = await load_notice(console, w.cases["small"])
        assert notice is not None
        html = notice_html(console, notice, "http://x/party", [], pdf=True)
        text = pdf_text(await asyncio.to_thread(render_pdf, html))
        # B8, D.13: the vehicle type and axle count (a 6-axle road train: 49,000 kg)
        assert "六轴及六轴以上汽车列车（6轴）" in text
        # B8/B9, D.4: the single item of Art. 3 para 1 that applies, in full-width brackets
        assert "《超限运输车辆行驶公路管理规定》第三条第一款第（八）项" in text
        assert "至第" not in text and "第(" not in text  # no range, no half-width items
        # D.2, D.3: the place ends with 处, and no "违法…的违法行为"
        assert "处，经公路超限检测设备" in text and "的违法行为" not in text
        # D.5: the national baseline is the Ministry's 规章 in tiers, not "本机关" 裁量基准
        assert (
            "本机关行政处罚裁量基准" not in text
            and "（裁量档次：“超过限定标准1000千克以上”）" in text
        )
        # D.7: where the party turns for 陈述、申辩 and 听证
        assert "本机关联系方式：长沙市芙蓉区示例路1号，电话0731-00000000" in text
    finally:
        await w.store.close()
