"""Issue #12 item 7: the party's page (Art. 41), public and without an account, over the real
case store, evidence packages and blob store (httpx on the ASGI app)."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
from pathlib import Path

import cv2
import httpx
import numpy as np
import pypdf

from cases.casefile import MANIFEST
from console import Console
from console.casefile import export_casefile
from evidence import Signer
from evidence.custody import read_log
from sinks import BlobStore

from .test_console import client_of, csrf_of, log_in
from .test_lifecycle import CHEN, WANG, World
from .test_notice import issue, pdf_text


def console_of(w: World) -> Console:
    return Console(w.store.pool, w.lifecycle, w.settings.evidence.dir,
                   blobs=BlobStore(w.settings.var_dir / "blobs"))  # fmt: skip


async def find(client: httpx.AsyncClient, plate: str, code: str) -> httpx.Response:
    form = await client.get("/party")
    assert form.status_code == 200
    return await client.post("/party", data={"plate": plate, "code": code,
                                             "csrf": csrf_of(form)})  # fmt: skip


def jpeg(seed: int = 1) -> bytes:
    rng = np.random.default_rng(seed)
    ok, data = cv2.imencode(".jpg", rng.integers(0, 255, (90, 120, 3), dtype=np.uint8))
    assert ok
    return data.tobytes()


async def statement(
    client: httpx.AsyncClient, body: str, files: list[tuple[str, bytes, str]], csrf: str | None
) -> httpx.Response:
    data = {"body": body} | ({"csrf": csrf} if csrf is not None else {})
    return await client.post("/party/statement", data=data,
                             files=[("images", f) for f in files])  # fmt: skip


async def test_the_party_finds_the_case_with_the_plate_and_lookup_code(world: World) -> None:
    w = world
    c = console_of(w)
    code = await issue(w, c, "small")
    async with client_of(c) as client:
        form = await client.get("/party")
        assert "号牌号码" in form.text and "查询码" in form.text
        assert "samesite=strict" in form.headers["set-cookie"].lower()
        # typed loosely: lower case, spaces
        r = await find(client, " 湘a 12345 ", code.lower())
        assert r.status_code == 303 and r.headers["location"] == "/party/case"
        cookie = r.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "path=/party" in cookie
        page = await client.get("/party/case")
        assert page.status_code == 200
        assert "湘A12345" in page.text and "罚款 2,500 元" in page.text
        assert "陈述、申辩期限" in page.text and 'id="statement-form"' in page.text
        assert 'src="/party/images/composite.jpg"' in page.text
        img = await client.get("/party/images/composite.jpg")
        assert img.status_code == 200 and img.content[:2] == b"\xff\xd8"
        # the party's notice, as HTML and PDF
        assert code in (await client.get("/party/notice")).text
        pdf = await client.get("/party/notice.pdf")
        assert pdf.status_code == 200 and pdf.content[:5] == b"%PDF-"
        # the party's views are in the package's custody log, one entry for the session's
        # day, not one per page, image or PDF (issue #28, row 10); the code never is
        log = read_log(w.package("small"))
        assert [(e["event"], e["detail"]) for e in log if e["actor"] == "party"] == [
            ("viewed", "party session")]  # fmt: skip
        assert all(code not in e["detail"] for e in log)
        await find(client, "湘A12345", code)  # a new session: an entry of its own
        assert (await client.get("/party/notice.pdf")).status_code == 200
        assert (await client.get("/party/case")).status_code == 200
    log = read_log(w.package("small"))
    assert [e["detail"] for e in log if e["actor"] == "party"] == ["party session"] * 2


async def test_wrong_pairs_say_nothing_and_the_sixth_quick_failure_is_throttled(
    world: World,
) -> None:
    w = world
    c = console_of(w)
    code = await issue(w, c, "small")
    other = await issue(w, c, "other")  # 湘B23456: a plate that exists, with its own code
    async with client_of(c) as client:
        wrong = [
            await find(client, "湘A12345", "ABCDEFGHJK"),  # the right plate, a wrong code
            await find(client, "湘B23456", code),  # a right code, another existing plate
            await find(client, "湘Z99999", code),  # a right code, a plate that does not exist
            await find(client, "湘Z99999", "ABCDEFGHJK"),
            await find(client, "湘A12345", other),  # another case's code
        ]
        assert {r.status_code for r in wrong} == {401}
        assert len({r.content for r in wrong}) == 1  # byte-identical
        assert "号牌号码或查询码不正确" in wrong[0].text
        assert all("/party/case" not in r.headers.get("location", "") for r in wrong)
        # the sixth quick failure from this address is held back, even with the right pair
        r = await find(client, "湘A12345", code)
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
        assert "/party/case" not in r.headers.get("location", "")
    async with client_of(c) as client:  # a form without its token is refused
        r = await client.post("/party", data={"plate": "湘A12345", "code": code})
        assert r.status_code == 403


async def test_a_statement_with_text_and_a_jpeg_lands_on_the_case_and_in_the_queue(
    world: World,
) -> None:
    w = world
    c = console_of(w)
    cid = w.cases["small"]
    code = await issue(w, c, "small")
    photo = jpeg()
    async with client_of(c) as client:
        await find(client, "湘A12345", code)
        page = await client.get("/party/case")
        r = await statement(client, "当日车辆装载的是不可解体物品，已办理许可。",
                            [("permit.jpg", photo, "image/jpeg")], csrf_of(page))  # fmt: skip
        assert r.status_code == 303 and r.headers["location"] == "/party/case?sent=1"
        page = await client.get("/party/case?sent=1")
        assert "已提交" in page.text and "不可解体物品" in page.text
    assert await w.status("small") == "statement_received"
    rows = await w.store.pool.fetch("SELECT * FROM statements WHERE case_id = $1", cid)
    assert len(rows) == 1 and rows[0]["body"].startswith("当日车辆")
    images = json.loads(rows[0]["images"])
    digest = hashlib.sha256(photo).hexdigest()
    assert [(i["sha256"], i["type"], i["size"]) for i in images] == [
        (digest, "image/jpeg", len(photo))]  # fmt: skip
    assert c.blobs is not None and c.blobs.path(images[0]["uri"]).read_bytes() == photo
    # the transition is the party's, and its custody entry names the image by its hash
    assert (await w.transitions("small"))[-1] == (
        "submit_statement", "notice_issued", "statement_received", "party")  # fmt: skip
    entry = [e for e in read_log(w.package("small")) if e["event"] == "transition"][-1]
    assert entry["actor"] == "party"
    assert digest in entry["detail"]
    # the officer sees it in the queue and on the case page, with the image
    async with client_of(c) as client:
        await log_in(client, "wang")
        assert cid not in (await client.get("/cases")).text  # not pending review any more
        queue = await client.get("/cases", params={"status": "statement_received"})
        assert cid in queue.text
        case = await client.get(f"/cases/{cid}")
        name = images[0]["uri"].rsplit("/", 1)[-1]
        assert "不可解体物品" in case.text and f"/cases/{cid}/statement-images/{name}" in case.text
        img = await client.get(f"/cases/{cid}/statement-images/{name}")
        assert img.status_code == 200 and img.content == photo
        assert img.headers["content-type"] == "image/jpeg"
        # only names of the case's statements: not another case's, not a path
        other = w.cases["other"]
        assert (await client.get(f"/cases/{other}/statement-images/{name}")).status_code == 404
        bad = "..%2F..%2Fcustody.jsonl"
        assert (await client.get(f"/cases/{cid}/statement-images/{bad}")).status_code == 404


async def test_bad_statements_are_refused_and_change_nothing(world: World) -> None:
    w = world
    c = console_of(w)
    code = await issue(w, c, "small")
    ok, png = cv2.imencode(".png", np.zeros((40, 40, 3), np.uint8))
    assert ok
    async with client_of(c) as client:
        await find(client, "湘A12345", code)
        csrf = csrf_of(await client.get("/party/case"))
        refused = [
            ("文字", [("photo.jpg", b"GIF89a not a jpeg at all", "image/jpeg")], csrf, "不是有效"),
            ("文字", [("photo.jpg", b"\xff\xd8\xff\xe0" + b"\x00" * 200, "image/jpeg")], csrf,
             "不是有效"),
            ("文字", [(f"p{i}.jpg", jpeg(i), "image/jpeg") for i in range(4)], csrf, "最多上传 3 张"),
            ("文字", [("big.jpg", b"\xff\xd8\xff" + b"\x00" * (2 * 1024 * 1024), "image/jpeg")],
             csrf, "超过 2 MB"),
            ("", [], csrf, "请填写"),
            ("长" * 4001, [], csrf, "最多 4000 字"),
        ]  # fmt: skip
        for body, files, token, message in refused:
            r = await statement(client, body, files, token)
            assert r.status_code == 400 and message in r.text, message
        r = await statement(client, "没有令牌", [], None)  # CSRF missing
        assert r.status_code == 403
        # a PNG is accepted: 3 images are the most
        r = await statement(client, "补充材料", [("a.png", png.tobytes(), "image/png"),
                                                ("b.jpg", jpeg(7), "image/jpeg"),
                                                ("c.jpg", jpeg(8), "image/jpeg")], csrf)  # fmt: skip
        assert r.status_code == 303
    rows = await w.store.pool.fetch("SELECT body, images FROM statements")
    assert [(r["body"], len(json.loads(r["images"]))) for r in rows] == [("补充材料", 3)]


async def test_the_party_sees_only_its_own_case_and_not_after_the_deadline(world: World) -> None:
    w = world
    c = console_of(w)
    code = await issue(w, c, "small")
    await issue(w, c, "other")
    other = w.cases["other"]
    async with client_of(c) as client:
        # no session: back to the form
        for path in ("/party/case", "/party/images/composite.jpg", "/party/notice.pdf"):
            r = await client.get(path)
            assert r.status_code == 303 and r.headers["location"] == "/party", path
        await find(client, "湘A12345", code)
        token = client.cookies["offsite_party"]
        page = await client.get("/party/case")
        assert "湘B23456" not in page.text and other not in page.text
        for bad in ("..%2F..%2Fbag-info.txt", "custody.jsonl", "x.jpg", f"..%2F..%2F{other}"):
            assert (await client.get(f"/party/images/{bad}")).status_code == 404
        # the party's session opens none of the officers' pages, nor another case's images
        client.cookies.set("offsite_session", token)
        for path in (f"/cases/{other}", f"/cases/{other}/images/composite.jpg",
                     f"/cases/{other}/notice.pdf", "/cases"):  # fmt: skip
            r = await client.get(path)
            assert r.status_code == 303 and r.headers["location"].startswith("/login"), path
        # after the deadline the form is gone and a statement is refused by the lifecycle
        w.clock.now += dt.timedelta(days=20)
        assert (await client.get("/party/case")).status_code == 303  # the session is short
        client.cookies.delete("offsite_session")
        await find(client, "湘A12345", code)
        page = await client.get("/party/case")
        assert 'id="statement-form"' not in page.text and "不能在线提交" in page.text
        r = await statement(client, "迟到的陈述", [], csrf_of(page))
        assert r.status_code == 409 and "期限已于" in r.text
    assert await w.status("small") == "notice_issued"


def blank_pdf(pages: int = 1) -> bytes:
    """A real PDF (pypdf's writer), as a scanned permit would be one."""
    writer = pypdf.PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=595, height=842)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


async def test_b7_statements_carry_scans_and_pdfs_checked_by_their_bytes_into_the_file(
    world: World, tmp_path: Path
) -> None:
    # review B7: "A permit or contract PDF cannot be submitted at all" and the officer's form for
    # a statement received by post took text only; each statement's 复核意见 is in the file
    w = world
    c = console_of(w)
    cid = w.cases["small"]
    code = await issue(w, c, "small")
    pdf = blank_pdf()
    async with client_of(c) as party:
        await find(party, "湘A12345", code)
        csrf = csrf_of(await party.get("/party/case"))
        for name, data in (("permit.pdf", b"GIF89a a picture named .pdf"),  # the name proves nothing
                           ("permit.pdf", pdf[: len(pdf) // 2])):  # a PDF cut short  # fmt: skip
            r = await statement(party, "许可证", [(name, data, "application/pdf")], csrf)
            assert r.status_code == 400 and "不是有效的 JPEG、PNG 图片或 PDF 文件" in r.text
        r = await statement(party, "附超限运输许可证扫描件", [("x.bin", pdf, "text/plain")], csrf)
        assert r.status_code == 303
    async with client_of(c) as officer:
        await log_in(officer, "wang")
        page = await officer.get(f"/cases/{cid}")
        assert f'action="/cases/{cid}/statement" enctype="multipart/form-data"' in page.text
        files = [("images", ("contract.pdf", pdf, "application/pdf")),
                 ("images", ("scan.jpg", jpeg(3), "image/jpeg"))]  # fmt: skip
        r = await officer.post(f"/cases/{cid}/statement", files=files,
                               data={"csrf": csrf_of(page), "body": "邮寄：附运输合同和磅单"})  # fmt: skip
        assert r.status_code == 303
        r = await officer.post(f"/cases/{cid}/statement", files=[
            ("images", ("scan.pdf", b"%PDF-1.7 no end", "application/pdf"))],
            data={"csrf": csrf_of(page), "body": "再次邮寄"})  # fmt: skip
        assert r.status_code == 400 and "不是有效" in r.text
        rows = await w.store.pool.fetch(
            "SELECT statement_id, channel, images FROM statements WHERE case_id = $1"
            " ORDER BY statement_id", cid)  # fmt: skip
        kinds = [(r["channel"], [(i["type"], i["sha256"]) for i in json.loads(r["images"])])
                 for r in rows]  # fmt: skip
        digest = hashlib.sha256(pdf).hexdigest()
        assert kinds == [("online", [("application/pdf", digest)]),
                         ("offline", [("application/pdf", digest),
                                      ("image/jpeg", hashlib.sha256(jpeg(3)).hexdigest())])]  # fmt: skip
        page = await officer.get(f"/cases/{cid}")
        assert "PDF 附件 1" in page.text
        name = json.loads(rows[1]["images"])[0]["uri"].rsplit("/", 1)[-1]
        got = await officer.get(f"/cases/{cid}/statement-images/{name}")
        assert got.headers["content-type"] == "application/pdf" and got.content == pdf
    await w.act("small", "reply_statement", WANG, payload={
        "statement_id": str(rows[0]["statement_id"]), "adopted": "adopted",
        "opinion": "许可证在有效期内，车货与许可一致"})  # fmt: skip
    await w.act("small", "withdraw", CHEN, reason_code="valid_permit")
    folder = await export_casefile(c, cid, tmp_path, Signer.load(w.settings.evidence.key))
    manifest = json.loads((folder / MANIFEST).read_bytes())
    (doc,) = [d for d in manifest["documents"] if d["kind"] == "statements"]
    text = pdf_text((folder / doc["path"]).read_bytes()).replace("\n", "")
    assert text.count(digest) == 2 and "JPEG" in text
    assert "采纳。许可证在有效期内" in text and "（未复核）" in text
