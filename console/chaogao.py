"""抄告 on the console (issue #26 must-have 5): the 抄告函 rendered like the other documents,
the record made when a case closes (chained after the 电子案卷), and ``/legal/chaogao`` for the
legal department and the admin: every record with its deadline (7 working days), the overdue
ones marked, the held ones with their reason, the last error, and "retry now" / naming the
region of a held record. The rules are ``cases.chaogao``; the transports ``sinks.outbound``."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from cases.chaogao import (
    NONCONFORMING_KINDS,
    POLICE_BASIS,
    POLICE_COLUMNS,
    SEND_WITHIN,
    Render,
    flag_nonconforming,
    make_record,
    records,
    registration_mismatches,
    release,
    retry_now,
    send_due,
)
from sinks.accounts import ADMIN, LEGAL_REVIEWER, Session
from sinks.outbound import Outbound

from .casefile import form
from .notice import Page, render_pdf
from .pages import Console, render, repeating

log = logging.getLogger("offsite.console")
TITLE = "超限运输违法案件抄告函"


def chaogao_html(record: dict[str, Any]) -> str:
    """The 抄告函 of one record (its Art. 44 fields in the order of the article)."""
    r, v, d, o = record, record["vehicle"], record["decision"], record["other"]
    to = r["recipient"]["agency"] if r["recipient"] else "（车籍所在地待确定）"
    return form(TITLE, agency=r["sender"], case_id=r["case_id"], archive_no="", fields=[
        ("抄告对象", to), ("号牌号码", f"{v['plate']}（{v['plate_color']}牌）"),
        ("车型", v["vehicle_type"]), ("轴数", v["axles"]),
        ("车辆所有人", f"{v['owner']}（{v['owner_kind']}）"), ("车辆所属企业", v["company"]),
        ("道路运输证号", v["road_transport_certificate"]),
        ("驾驶人姓名", r["driver"]["name"]), ("驾驶人从业资格证编号", r["driver"]["qualification_no"]),
        ("驾驶人所属企业", r["driver"]["company"]),
        ("货运源头单位", r["load"]["source_unit"]), ("装载地", r["load"]["loading_place"]),
        ("货物装载单", r["load"]["waybill"]),
        ("行政处罚决定书文号", d["number"]), ("决定日期", d["date"]),
        ("处罚内容", f"罚款{d['amount_cny']}元" if d["amount_cny"] else "警告"),
        ("处罚依据", d["basis"]), ("违法时间、地点", f"{o['passed_at']}，{o['site']}"),
        ("检测情况", f"车货总质量{o['measured_kg']}千克，限值{o['limit_kg']}千克，"
                     f"超限{o['overload_kg']}千克"),
        ("结案日期", r["closed_on"]), ("抄告期限", r["due"])],
        paragraphs=[f"根据{r['basis']}，现将本机关已处理完毕的违法超限运输案件信息抄告贵单位。",
                    "注：本案为非现场执法，驾驶人及货物装载信息未取得的，标注为“未知”。"])  # fmt: skip


def renderer(c: Console) -> Render:
    """The 抄告函 of a record as a PDF, sealed like the console's other documents."""

    async def pdf(record: dict[str, Any]) -> bytes:
        return await asyncio.to_thread(render_pdf, chaogao_html(record), c.sealer)

    return pdf


async def record_closed_case(c: Console, case_id: str) -> str | None:
    """The 抄告 record of a case just closed (None: not closed with a penalty); its first
    attempt is made at once when a transport is configured."""
    tz = c.lifecycle.policy.tz
    vehicles = c.registry.vehicles if c.registry is not None else []
    cid = await make_record(
        c.pool, case_id, tz=tz, due_of=lambda day: c.lifecycle.policy.due(day, SEND_WITHIN).due,
        now=c.now(), render=renderer(c), licences={v.plate: v.licence_no for v in vehicles if v.licence_no})  # fmt: skip
    if cid is not None and c.outbound is not None:
        await send_due(c.pool, c.outbound, c.now(), only=cid)
    return cid


async def police_pdf(
    c: Console, agency: str, rows: list[dict[str, str]], first: dt.date, last: dt.date
) -> bytes:
    """Art. 45's list of a period as a document (the same rows as the CSV)."""
    html = form("违法超限运输车辆不符合标准情况抄告表", agency=agency, case_id="",
                archive_no="", fields=[("统计期间", f"{first} 至 {last}"),
                                       ("车辆数", f"{len(rows)} 辆")],
                table=[POLICE_COLUMNS, *[tuple(r[k] for k in POLICE_COLUMNS) for r in rows]],
                paragraphs=[f"根据{POLICE_BASIS}，现将本期间发现的不符合《汽车、挂车及汽车列车外廓"
                            "尺寸、轴荷及质量限值》（GB 1589）或与行驶证记载的登记内容不符的车辆"
                            "抄告贵单位，请依法处理。"])  # fmt: skip
    return await asyncio.to_thread(render_pdf, html, c.sealer)


def chaogao_on_close(c: Console, outbound: Outbound | None) -> None:
    """After whatever ``c.on_closed`` does (the 电子案卷), make the closed case's 抄告 record.
    A failure leaves the case closed and is logged: `offsite chaogao send` makes it later."""
    before = c.on_closed
    c.outbound = outbound

    async def on_closed(case_id: str) -> None:
        if before is not None:
            await before(case_id)
        try:
            await record_closed_case(c, case_id)
        except Exception:  # any failure here must not undo the closing
            log.exception("case %s closed but its 抄告 record was not made", case_id)

    c.on_closed = on_closed


def sending(c: Console) -> contextlib.AbstractAsyncContextManager[None]:
    """While the console serves: every ``c.sweep_s`` seconds, each 抄告 record whose next
    attempt is due is sent (its back-off is in the store, so a restart keeps it). Several
    consoles on one database take turns (``send_due``'s lock)."""
    outbound = c.outbound

    async def round_() -> str | None:
        if outbound is None:
            return None
        done = await send_due(c.pool, outbound, c.now())
        ok = sum(a.ok for a in done)
        return f"{ok} sent, {len(done) - ok} failed" if done else None

    return repeating("抄告", c.sweep_s if outbound is not None else None, round_)


def chaogao_routes(c: Console, page: Page) -> list[Route]:
    today = lambda: c.now().astimezone(c.lifecycle.policy.tz).date()  # noqa: E731

    async def listing(request: Request, session: Session, error: str = "") -> Response:
        rows = await records(c.pool)
        for r in rows:
            r["overdue"] = r["status"] != "sent" and today() > r["due"]
        vehicles = c.registry.vehicles if c.registry is not None else []
        candidates = await registration_mismatches(
            c.pool, {v.plate: v.body for v in vehicles if v.body})  # fmt: skip
        flagged = await c.pool.fetch(
            "SELECT f.*, c.plate FROM chaogao_nonconforming f JOIN cases c USING (case_id)"
            " ORDER BY f.flagged_at DESC LIMIT 100")  # fmt: skip
        return render("chaogao.html", 400 if error else 200, session=session, title="抄告",
                      rows=rows, error=error, transport=c.outbound.name if c.outbound else None,
                      candidates=candidates, flagged=flagged, kinds=NONCONFORMING_KINDS)  # fmt: skip

    async def flag(request: Request, session: Session) -> Response:
        """Art. 45: an officer records a non-conforming vehicle (a candidate confirmed, or any
        case by its id)."""
        f = await request.form()
        try:
            await flag_nonconforming(c.pool, str(f.get("case_id") or "").strip(),
                                     str(f.get("kind") or ""), str(f.get("reason") or "")[:500],
                                     session.actor, c.now())  # fmt: skip
        except LookupError:
            return await listing(request, session, "没有该案件")
        except ValueError as exc:
            return await listing(request, session, str(exc))
        return RedirectResponse("/legal/chaogao", 303)

    async def act(request: Request, session: Session) -> Response:
        form_ = await request.form()
        cid = request.path_params["chaogao_id"]
        try:
            if form_.get("region"):
                await release(c.pool, cid, str(form_["region"]), session.actor, renderer(c))
            elif c.outbound is None:
                return await listing(request, session, "未配置抄告的发送方式（chaogao.transport）")
            else:
                await retry_now(c.pool, c.outbound, cid, c.now())
        except LookupError:
            return await listing(request, session, "该抄告记录不存在或已不处于可操作状态")
        except ValueError as exc:
            return await listing(request, session, str(exc))
        return RedirectResponse("/legal/chaogao", 303)

    roles = {LEGAL_REVIEWER, ADMIN}
    return [Route("/legal/chaogao", page(roles, listing)),
            Route("/legal/chaogao/nonconforming", page(roles, flag), methods=["POST"]),
            Route("/legal/chaogao/{chaogao_id}", page(roles, act), methods=["POST"])]  # fmt: skip
