"""The electronic case file of a closed case (电子案卷, issue #26 must-have 1): its documents
rendered as PDFs from the case store with the console's own renderers (notice, decision,
送达回证, 结案报告) and a plain form for the rest (目录, 立案登记表, statements, hearing,
review log, 法制审核意见, 集体讨论, 备考表); ``cases.casefile`` orders, signs and checks them."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import logging
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cases.casefile import KINDS, VOLUMES, Document, Signs, archive_number, write_casefile
from cases.review import casefiles, review_file, sample
from sinks.accounts import LEGAL_REVIEWER, Session
from sinks.blobs import SCHEME
from sinks.lifecycle import FINAL_STATES, STATES, case_facts

from .notice import (
    PARTY_PATH,
    Page,
    checked_images,
    data_uris,
    load_notice,
    load_notices,
    notice_html,
    render_pdf,
    view,
)
from .pages import Console, _env, render
from .procedure import closing_values, decision_view, receipt_view, reply_text

log = logging.getLogger("offsite.console")
CLOSED = sorted(FINAL_STATES - {"rejected"})  # a rejected lead was never a case to file
CHANNELS = {"online": "网上提交", "offline": "书面（登记）"}
LEGAL_ACTIONS = ("approve", "send_back", "review_after_hearing")  # 法制审核's own steps


class NotClosed(Exception):
    """The case does not exist or is not closed: it has no file yet."""


def form(title: str, **values: Any) -> str:
    return _env.get_template("casefile_doc.html").render(d={
        "title": title, "fields": [], "table": [], "paragraphs": [], "images": [],
        **values})  # fmt: skip


def _blob(c: Console, uri: str) -> bytes | None:
    """A statement's attachment from the blob store (None: not there any more)."""
    if c.blobs is None or not uri.startswith(SCHEME):
        return None
    path = c.blobs.path(uri)
    return path.read_bytes() if path.is_file() else None


async def archive_serial(c: Console, case_id: str) -> tuple[int, int, dt.datetime]:
    """(year, serial, closing time): the case's rank among the cases closed in its (local)
    year, by closing time then case id; the same store gives the same number."""
    rows = await c.pool.fetch(
        "SELECT DISTINCT ON (t.case_id) t.case_id, t.at FROM case_transitions t"
        " JOIN cases USING (case_id) WHERE cases.status = ANY($1) AND t.to_status = ANY($1)"
        " AND t.from_status <> ALL($1)"  # the step that closed it, not one after
        " ORDER BY t.case_id, t.transition_id DESC", CLOSED)  # fmt: skip
    tz = c.lifecycle.policy.tz
    at = {r["case_id"]: r["at"] for r in rows}
    if case_id not in at:
        raise NotClosed(case_id)
    year = at[case_id].astimezone(tz).year
    same = sorted((t, cid) for cid, t in at.items() if t.astimezone(tz).year == year)
    return year, same.index((at[case_id], case_id)) + 1, at[case_id]


async def casefile_documents(c: Console, case_id: str, archive_no: str) -> list[Document]:
    """Every document of the closed case, as HTML first (rendered to PDF in a thread)."""
    pool, tz = c.pool, c.lifecycle.policy.tz
    case = await pool.fetchrow("SELECT * FROM cases WHERE case_id = $1", case_id)
    if case is None or case["status"] not in CLOSED:
        raise NotClosed(case_id)
    notice = await load_notice(c, case_id)
    agency = str(notice.document.get("agency") or "") if notice else ""
    party = await pool.fetchrow("SELECT * FROM case_parties WHERE case_id = $1", case_id)
    filed = await pool.fetchrow("SELECT * FROM case_files WHERE case_id = $1", case_id)
    decision = await pool.fetchrow("SELECT * FROM penalty_decisions WHERE case_id = $1", case_id)
    services = await pool.fetch(
        "SELECT * FROM service_records WHERE case_id = $1 ORDER BY service_id", case_id)  # fmt: skip
    statements = await pool.fetch(
        "SELECT * FROM statements WHERE case_id = $1 ORDER BY statement_id", case_id)  # fmt: skip
    hearing = await pool.fetchrow("SELECT * FROM hearings WHERE case_id = $1", case_id)
    talks = await pool.fetch(
        "SELECT * FROM case_discussions WHERE case_id = $1 ORDER BY discussion_id", case_id)  # fmt: skip
    steps = await pool.fetch(
        "SELECT * FROM case_transitions WHERE case_id = $1 ORDER BY transition_id", case_id)  # fmt: skip
    labels = c.lifecycle.labels()
    base = {"agency": agency, "case_id": case_id, "archive_no": archive_no}

    def when(t: dt.datetime) -> str:
        return t.astimezone(tz).strftime("%Y-%m-%d %H:%M")

    html: dict[str, str | list[str]] = {}
    v = json.loads(case["violation"])
    html["filing"] = form(KINDS["filing"][1], **base, fields=[
        ("案由", v.get("reasoning", "")[:60] or case["violation_code"]),
        ("违法时间", when(case["ts"])), ("违法地点", case["site_id"]),
        ("号牌号码", case["plate"] or ""), ("当事人", party["name"] if party else ""),
        ("立案时间", when(filed["filed_at"]) if filed else ""),
        ("立案人", filed["filed_by"] if filed else ""),
        ("办案期限", f"{filed['decision_due']} 前作出决定" if filed else "")])  # fmt: skip
    if decision is not None and notice is not None:
        html["decision"] = _env.get_template("decision.html").render(
            pdf=True, d=decision_view(decision, party, tz), n=view(notice, tz)
        )
    receipt = _env.get_template("receipt.html")
    for kind, doc in (("decision_receipt", "decision"), ("notice_receipt", "notice")):
        served = [s for s in services if s["document"] == doc]
        # the decision's service that counted (the last one recorded); every notice's (an
        # amended proposal's notice beside the one it replaced: review A3)
        kept = served[-1:] if doc == "decision" else served
        if kept:
            html[kind] = [receipt.render(pdf=True, r=receipt_view(s, party, agency)) for s in kept]
    notices = []
    for each in await load_notices(c, case_id):
        found = await asyncio.to_thread(checked_images, c, each)
        notices.append(notice_html(c, each, c.public_url.rstrip("/") + PARTY_PATH,
                                   data_uris(found), pdf=True))  # fmt: skip
    if notices:
        html["notice"] = notices
    if statements:  # each with its attachments (by SHA-256) and its 复核意见 (review B7)
        rows, images = [("提交时间", "方式", "陈述、申辩内容", "附件", "复核意见")], []
        for s in statements:
            attached = json.loads(s["images"] or "[]")
            rows.append((when(s["submitted_at"]), CHANNELS.get(s["channel"], s["channel"]),
                         s["body"], attachments(s["images"]),
                         f"{reply_text(s)}（{when(s['reviewed_at'])}）" if s["reviewed_at"]
                         else "（未复核）"))  # fmt: skip
            for n, img in enumerate(attached, start=1):
                if not str(img.get("type") or "image/jpeg").startswith("image/"):
                    continue  # a PDF is listed with its SHA-256 above, not drawn
                data = await asyncio.to_thread(_blob, c, str(img.get("uri") or ""))
                images.append((f"{when(s['submitted_at'])} 陈述申辩附件{n}（SHA-256 {img['sha256']}）",
                               None if data is None else f"data:{img.get('type') or 'image/jpeg'};"
                               f"base64,{base64.b64encode(data).decode()}"))  # fmt: skip
        html["statements"] = form(KINDS["statements"][1], **base, table=rows, images=images)
    if hearing is not None:
        html["hearing"] = form(KINDS["hearing"][1], **base, fields=[
            ("听证通知日期", str(hearing["notified_on"])), ("举行日期", str(hearing["held_on"])),
            ("主持人", hearing["host"]), ("记录人", hearing["recorded_by"])],
            paragraphs=[hearing["minutes"]])  # fmt: skip
    log = [(when(s["at"]), labels.get(s["action"], s["action"]), s["actor"],
            s["reason"] or "") for s in steps]  # fmt: skip
    html["review_log"] = form(KINDS["review_log"][1], **base,
                              table=[("时间", "环节", "经办人", "意见"), *log])  # fmt: skip
    # the reviewer with the 法律职业资格 the opinion was given under (Art. 58 para 2; review B5)
    legal = [(at, step, _reviewer(who, s["detail"]), opinion)
             for (at, step, who, opinion), s in zip(log, steps, strict=True)
             if s["action"] in LEGAL_ACTIONS]  # fmt: skip
    if legal:
        html["legal_review"] = form(KINDS["legal_review"][1], **base,
                                    table=[("时间", "审核结论", "审核人", "审核意见"), *legal])  # fmt: skip
    if talks:
        html["discussion"] = form(KINDS["discussion"][1], **base, table=[
            ("时间", "参加人", "讨论记录"),
            *[(when(t["recorded_at"]), "、".join(t["participants"]), t["minutes"])
              for t in talks]])  # fmt: skip
    closing = await closing_values(c, case_id)
    if closing is not None:
        html["closing"] = _env.get_template("closing.html").render(pdf=True, **closing)
    present = [(n, KINDS[k][0], KINDS[k][1]) for n, (k, _, _) in enumerate(VOLUMES, start=1)
               if k in html or k in ("contents", "note")
               or (k == "evidence" and (c.evidence_dir / case_id).is_dir())]  # fmt: skip
    html["note"] = form(KINDS["note"][1], **base, fields=[
        ("本卷件数", f"{len(present)} 件（含证据包）"), ("结案状态", STATES[case["status"]]),
        ("说明", "本卷为电子案卷，每件文书的SHA-256及签名见 manifest.json")])  # fmt: skip
    html["contents"] = form(KINDS["contents"][1], **base, table=[
        ("序号", "卷别", "文书名称"), *[(f"{n:02d}", vol, title) for n, vol, title in present]])  # fmt: skip
    pdfs = await asyncio.gather(
        *(asyncio.to_thread(render_pdf, h, c.sealer) for h in html.values())
    )
    return [Document(kind, pdf) for kind, pdf in zip(html, pdfs, strict=True)]


def attachments(images: object) -> str:
    """A statement's attachments as the file lists them: kind, size and SHA-256 (the blob)."""
    kinds = {"application/pdf": "PDF", "image/jpeg": "JPEG 图片", "image/png": "PNG 图片"}
    return (
        "；".join(
            f"{n}. {kinds.get(str(a.get('type')), '文件')} {int(a.get('size') or 0) // 1024} KB"
            f" SHA-256 {a.get('sha256')}"
            for n, a in enumerate(json.loads(str(images or "[]")), 1)
        )
        or "无"
    )


def _reviewer(name: str, detail: object) -> str:
    cert = json.loads(str(detail or "{}")).get("legal_cert_no")
    return f"{name}（法律职业资格证书编号 {cert}）" if cert else name


async def export_casefile(c: Console, case_id: str, out: Path, signer: Signs) -> Path:
    """Write the closed case's file under ``out``; its folder (the zip beside it)."""
    year, serial, closed_at = await archive_serial(c, case_id)
    archive_no = archive_number(year, serial)
    docs = await casefile_documents(c, case_id, archive_no)
    notice = await load_notice(c, case_id)
    agency = str(notice.document.get("agency") or "") if notice else ""
    package = c.evidence_dir / case_id
    closed_on = closed_at.astimezone(c.lifecycle.policy.tz).date()
    facts = await review_facts(c, case_id)
    return await asyncio.to_thread(
        write_casefile, out, archive_no=archive_no, case_id=case_id, agency=agency,
        closed_on=closed_on, documents=docs, package=package if package.is_dir() else None,
        signer=signer, facts={**facts, "closed_on": closed_on.isoformat()})  # fmt: skip


async def review_facts(c: Console, case_id: str) -> dict[str, object]:
    """The dates and findings the 评查 (cases.review) checks, as the case store has them."""
    pool, tz = c.pool, c.lifecycle.policy.tz
    case = await pool.fetchrow(  # the columns the lifecycle reads a case with (case_facts)
        "SELECT c.*, n.statement_due, n.hearing_due, n.served_on FROM cases c"
        " LEFT JOIN violation_notices n USING (case_id) WHERE c.case_id = $1", case_id)  # fmt: skip
    filed = await pool.fetchrow("SELECT * FROM case_files WHERE case_id = $1", case_id)
    notice = await pool.fetchrow("SELECT * FROM violation_notices WHERE case_id = $1", case_id)
    decision = await pool.fetchrow("SELECT * FROM penalty_decisions WHERE case_id = $1", case_id)

    def iso(day: object) -> str | None:
        return day.isoformat() if isinstance(day, dt.date) else None

    return {
        "pass_on": iso(case["ts"].astimezone(tz).date()),
        "filed_on": iso(filed["filed_at"].astimezone(tz).date()) if filed else None,
        "decision_due": iso(filed["decision_due"]) if filed else None,
        "notice_served_on": iso(notice["served_on"]) if notice else None,
        "statement_due": iso(notice["statement_due"]) if notice else None,
        "decided_on": iso(decision["decided_at"].astimezone(tz).date()) if decision else None,
        "decision_served_on": iso(decision["served_on"]) if decision else None,
        "decision_kind": decision["kind"] if decision else None,
        "legal_basis": case["legal_basis"], "penalty_basis": case["penalty_basis"],
        "major": c.lifecycle.policy.is_major(case_facts(case)),
        "status": case["status"],  # how the case ended: the 评查 checks a decided one's decision
    }  # fmt: skip


def file_on_close(c: Console, out: Path, signer: Signs) -> None:
    """Every case an action ends (closed, not punished, withdrawn, transferred, its decision
    revoked: :data:`CLOSED`) gets its file under ``out`` at once. A file that cannot be
    written leaves the case closed (the closing is the legal fact) and is logged with its
    case id: `offsite casefile export` writes it again."""

    async def on_closed(case_id: str) -> None:
        try:
            folder = await export_casefile(c, case_id, out, signer)
        except Exception:  # any failure to file must not undo the closing
            log.exception("case %s closed but its file was not written", case_id)
            return
        log.info("case %s filed at %s", case_id, folder)

    c.on_closed, c.casefile_dir = on_closed, out


def casefile_routes(c: Console, page: Page) -> list[Route]:
    """``/legal/casefiles``: the legal department's 案卷评查 of a random sample of the files
    (``?seed=N``; by default the current year, so a year's sample stays the same)."""

    async def reviews(request: Request, session: Session) -> Response:
        try:
            seed = int(request.query_params.get("seed") or c.now().astimezone(
                c.lifecycle.policy.tz).year)  # fmt: skip
        except ValueError:
            return render("error.html", 400, session=session, title="抽样种子有误",
                          message="抽样种子须为整数。")  # fmt: skip
        files = casefiles(c.casefile_dir) if c.casefile_dir is not None else []
        found = await asyncio.to_thread(lambda: [review_file(f) for f in sample(files, seed)])
        average = round(sum(r.score for r in found) / len(found), 1) if found else None
        return render("casefile_review.html", session=session, title="案卷评查", seed=seed,
                      total=len(files), reviews=found, average=average)  # fmt: skip

    return [Route("/legal/casefiles", page({LEGAL_REVIEWER}, reviews))]
