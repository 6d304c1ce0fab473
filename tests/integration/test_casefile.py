"""Issue #26 must-have 1 over the real case store: a closed case's electronic file (电子案卷)
holds every document in the order of a paper file with its evidence package, an 8-digit
archive number and a signed manifest, and `offsite casefile verify` finds a changed byte."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pypdf

from cases.casefile import MANIFEST, verify_casefile
from cases.payments import Payment, import_payments
from cases.review import review_file, sample
from console.casefile import export_casefile, file_on_close
from console.notice import notice_document
from evidence import Signer, load_keyring
from offsite.cli import _casefile_verify
from sinks.accounts import Accounts
from sinks.blobs import BlobStore

from .test_console import PASSWORD, app_of, client_of, csrf_of, log_in
from .test_lifecycle import CHEN, PARTY_ACTOR, WANG, World
from .test_notice import pdf_text
from .test_party import jpeg
from .test_procedure import local, ready_to_decide, serve
from .test_procedure import world as world  # the fixture


async def closed(w: World) -> str:
    """The small case through the procedure, its notice as the console issues it, to closed."""
    await paid(w)
    assert await w.act("small", "close", WANG) == ["closed"]
    return w.cases["small"]


async def paid(w: World) -> None:
    """The small case decided, served and paid: ready to close."""
    await ready_to_decide(w, await notice_document(app_of(w), w.cases["small"]))
    await w.act("small", "decide", CHEN, reason="事实清楚")
    await w.act("small", "serve_decision", WANG, payload=serve(local(w)))
    number = await w.store.pool.fetchval(
        "SELECT decision_no FROM penalty_decisions WHERE case_id = $1", w.cases["small"])  # fmt: skip
    await import_payments(w.store.pool, [Payment("B-1", number, 2_500_00, local(w))], "f",
                          w.clock.now)  # fmt: skip


async def test_a_closed_case_s_file_holds_every_document_in_order_and_verifies(
    world: World, tmp_path: Path
) -> None:
    w = world
    cid = await closed(w)
    signer = Signer.load(w.settings.evidence.key)
    folder = await export_casefile(app_of(w), cid, tmp_path, signer)
    year = w.clock.now.year
    assert folder.name == f"{year}0001-{cid}" and folder.with_suffix(".zip").is_file()
    manifest = json.loads((folder / MANIFEST).read_bytes())
    assert manifest["archive_no"] == f"{year}0001" and manifest["case_id"] == cid
    assert [d["kind"] for d in manifest["documents"]] == [
        "contents", "filing", "decision", "decision_receipt", "notice", "notice_receipt",
        "evidence", "review_log", "closing", "note"]  # fmt: skip
    pdfs = {d["kind"]: pdf_text((folder / d["path"]).read_bytes())
            for d in manifest["documents"] if d["kind"] != "evidence"}  # fmt: skip
    number = await w.store.pool.fetchval(
        "SELECT decision_no FROM penalty_decisions WHERE case_id = $1", cid)  # fmt: skip
    assert "行政处罚决定书" in pdfs["decision"] and number in pdfs["decision"]
    assert "送达回证" in pdfs["decision_receipt"] and "送达回证" in pdfs["notice_receipt"]
    assert "违法行为通知书" in pdfs["notice"] and "结案报告" in pdfs["closing"]
    assert "立案登记表" in pdfs["filing"] and "备考表" in pdfs["note"]
    # the 目录 lists the documents in their order
    contents = pdfs["contents"]
    titles = ["立案登记表", "行政处罚决定书", "违法行为通知书", "证据材料", "审核记录", "结案报告"]
    assert [contents.index(t) for t in titles] == sorted(contents.index(t) for t in titles)
    keyring = load_keyring(w.settings.evidence.keyring)
    assert verify_casefile(folder, keyring if keyring.keys else None) == []
    assert _casefile_verify(folder, w.settings.evidence.keyring) == 0  # offsite casefile verify
    # a changed byte of the decision fails
    decision = next(folder / d["path"] for d in manifest["documents"] if d["kind"] == "decision")
    data = bytearray(decision.read_bytes())
    data[100] ^= 1
    decision.write_bytes(bytes(data))
    assert f"{decision.relative_to(folder).as_posix()}: checksum mismatch" in verify_casefile(
        folder
    )
    assert _casefile_verify(folder, w.settings.evidence.keyring) == 1


async def test_closing_a_case_on_the_console_files_it(world: World, tmp_path: Path) -> None:
    w = world
    await paid(w)
    console = app_of(w)
    file_on_close(console, tmp_path, Signer.load(w.settings.evidence.key))
    cid = w.cases["small"]
    await Accounts(w.store.pool).create("wang", ["officer"], PASSWORD)
    async with client_of(console) as client:
        await log_in(client, "wang")
        page = await client.get(f"/cases/{cid}")
        assert not list(tmp_path.glob("*"))  # not closed: no file
        r = await client.post(f"/cases/{cid}/act", data={"action": "close",
                                                         "csrf": csrf_of(page)})  # fmt: skip
        assert r.status_code == 303
    assert await w.status("small") == "closed"
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert folder.name.endswith(cid) and verify_casefile(folder) == []


async def test_a_withdrawn_case_is_filed_with_the_statement_its_reply_and_its_attachment(
    world: World, tmp_path: Path
) -> None:
    """Every case that ends gets its file (issue #26 must-have 1), not only a closed one: the
    负责人 withdraws a case (撤销立案) on the case page and its file is written at once; its
    陈述申辩材料 hold the party's statement, the agency's 复核意见 and the attached photo."""
    w = world
    console = app_of(w)
    console.blobs = BlobStore(tmp_path / "blobs")
    out = tmp_path / "casefiles"
    file_on_close(console, out, Signer.load(w.settings.evidence.key))
    cid = w.cases["small"]
    await w.act("small", "confirm", WANG)
    document = await notice_document(console, cid)
    await w.act("small", "issue_notice", WANG, payload={"document": document})
    await w.act("small", "serve_notice", WANG, payload=serve(local(w)))
    photo = jpeg()
    uri, digest = console.blobs.put(photo, ".jpg")
    image = {"uri": uri, "sha256": digest, "type": "image/jpeg", "size": len(photo)}
    await w.act("small", "submit_statement", PARTY_ACTOR,
                payload={"body": "当日车牌被套用，附行驶证照片", "images": [image]})  # fmt: skip
    sid = await w.store.pool.fetchval("SELECT statement_id FROM statements WHERE case_id = $1", cid)
    await w.act("small", "reply_statement", WANG,
                payload={"statement_id": str(sid), "adopted": "adopted",
                         "opinion": "经核实车牌识别有误，予以采纳"})  # fmt: skip
    await Accounts(w.store.pool).create("chen", ["head"], PASSWORD)
    async with client_of(console) as client:
        await log_in(client, "chen")
        page = await client.get(f"/cases/{cid}")
        r = await client.post(f"/cases/{cid}/act", data={
            "action": "withdraw", "reason_code": "plate_misread", "csrf": csrf_of(page)})  # fmt: skip
        assert r.status_code == 303
    assert await w.status("small") == "withdrawn"
    (folder,) = [p for p in out.iterdir() if p.is_dir()]
    assert folder.name.endswith(cid) and verify_casefile(folder) == []
    manifest = json.loads((folder / MANIFEST).read_bytes())
    (doc,) = [d for d in manifest["documents"] if d["kind"] == "statements"]
    data = (folder / doc["path"]).read_bytes()
    text = pdf_text(data)
    assert "当日车牌被套用" in text and "经核实车牌识别有误，予以采纳" in text
    assert digest in text  # the attachment named by its hash, and embedded
    assert sum(len(p.images) for p in pypdf.PdfReader(io.BytesIO(data)).pages) == 1
    # the 评查 does not ask a case that ended before its decision for one (nor for its 90 days)
    failed = {i.code for i in review_file(folder).failed}
    assert not failed & {"P2", "P3", "P4", "P5", "D2", "Q1"}, failed


async def test_a_closed_case_whose_decision_is_revoked_is_filed_again(
    world: World, tmp_path: Path
) -> None:
    """撤销行政处罚决定 on the case page (the 负责人, a coded reason): the closed case's file is
    written again at once under its archive number, its 审核记录 and 备考表 saying so."""
    w = world
    cid = await closed(w)
    console = app_of(w)
    file_on_close(console, tmp_path, Signer.load(w.settings.evidence.key))
    await Accounts(w.store.pool).create("liu", ["head"], PASSWORD)
    async with client_of(console) as client:
        await log_in(client, "liu")
        page = await client.get(f"/cases/{cid}")
        assert 'id="act-revoke_decision"' in page.text
        r = await client.post(f"/cases/{cid}/act", data={
            "action": "revoke_decision", "reason_code": "litigation",
            "reason": "人民法院判决撤销", "csrf": csrf_of(page)})  # fmt: skip
        assert r.status_code == 303
    assert await w.status("small") == "revoked"
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert folder.name == f"{w.clock.now.year}0001-{cid}" and verify_casefile(folder) == []
    manifest = json.loads((folder / MANIFEST).read_bytes())
    text = {d["kind"]: pdf_text((folder / d["path"]).read_bytes())
            for d in manifest["documents"] if d["kind"] != "evidence"}  # fmt: skip
    assert "撤销行政处罚决定" in text["review_log"] and "人民法院判决撤销" in text["review_log"]
    assert "已撤销行政处罚决定" in text["note"] and manifest["facts"]["status"] == "revoked"
    # its 结案报告 says the decision was revoked after the fine was paid (it said 已缴清)
    assert "处罚决定已撤销（撤销前已缴纳罚款" in text["closing"]
    assert "已缴清" not in text["closing"]


async def test_the_legal_department_reviews_a_seeded_sample_and_sees_the_defects(
    world: World, tmp_path: Path
) -> None:
    w = world
    cid = await closed(w)
    console = app_of(w)
    file_on_close(console, tmp_path, Signer.load(w.settings.evidence.key))
    folder = await export_casefile(console, cid, tmp_path, Signer.load(w.settings.evidence.key))
    assert review_file(folder).score == 100, review_file(folder).failed
    copies = [folder, *(Path(shutil.copytree(folder, tmp_path / f"{n:08d}-copy"))
                        for n in range(2, 13))]  # fmt: skip
    chosen = sample(copies, seed=7)
    assert len(chosen) == 10
    receipt = next(chosen[0].glob("正卷/*-行政处罚决定书送达回证.pdf"))
    receipt.unlink()  # a file without the decision's 送达回证
    await Accounts(w.store.pool).create("zhao", ["legal_reviewer"], PASSWORD)
    async with client_of(console) as client:
        await log_in(client, "zhao")
        page = await client.get("/legal/casefiles?seed=7")
    assert page.status_code == 200
    table = page.text.split('id="casefile-reviews"')[1].split("</table>")[0]
    assert table.count("<tr class=") == 10 and "共有案卷 12 卷，抽取 10 卷" in page.text
    rows = table.split("<tr class=")[1:]
    defective = [r for r in rows if r.startswith('"defects"')]
    assert len(defective) == 1 and 'data-item="P5"' in defective[0]  # and E1: a file is gone
    assert "决定书有送达回证" in defective[0]
    assert sum(r.startswith('"clean"') for r in rows) == 9
