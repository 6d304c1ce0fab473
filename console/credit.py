"""The legal department's credit page (issue #26 must-have 6): ``/legal/credit`` lists the
entries held for a person, the drafts in their objection period, the objections, the list and
the 信用修复 applications; ``/legal/credit/{entry_id}`` shows an entry's documents and history
and records its steps. The workflow is :class:`cases.credit.Credit`; the console also runs its
sweep in the background (``crediting``), one process at a time under its advisory lock."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from cases.credit import ACTION_ZH, ACTOR_ZH, KIND_ZH, STATUS_ZH, Credit, CreditError
from sinks.accounts import LEGAL_REVIEWER, Session

from .notice import Page, render_pdf
from .pages import Console, _env, render, repeating

log = logging.getLogger(__name__)


def crediting(c: Console) -> contextlib.AbstractAsyncContextManager[None]:
    """The credit sweep as of each local day, every ``c.credit_sweep_s`` seconds while the
    console serves (None: no job); a failed round is logged and the next one tries again."""
    credit = c.credit

    async def step() -> str | None:
        assert credit is not None
        done = await credit.sweep(c.now().astimezone(credit.tz).date())
        if done and (done.drafted or done.held or done.listed or done.removed):
            return (f"{len(done.drafted)} drafted, {len(done.held)} held, "
                    f"{len(done.listed)} listed, {len(done.removed)} removed")  # fmt: skip
        return None

    return repeating("credit sweep", c.credit_sweep_s if credit is not None else None, step)


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def credit_routes(c: Console, page: Page) -> list[Route]:
    def off(session: Session) -> Response:
        return render("error.html", 404, session=session, title="信用管理未启用",
                      message="本控制台未配置信用管理。")  # fmt: skip

    async def overview(request: Request, session: Session) -> Response:
        if c.credit is None:
            return off(session)
        entries = await c.credit.entries()
        repairs = {r["entry_id"]: r for r in await c.credit.repairs() if r["status"] == "applied"}
        groups = {s: [e for e in entries if e["status"] == s] for s in STATUS_ZH}
        return render("credit.html", session=session, title="信用管理（严重失信名单）",
                      groups=groups, repairs=repairs, KIND_ZH=KIND_ZH, STATUS_ZH=STATUS_ZH)  # fmt: skip

    async def found(credit: Credit, eid: str) -> tuple[dict[str, Any], list[Any], list[Any]]:
        """The entry, its repair applications and its documents in the order they were made."""
        e = await credit.entry(eid)
        if e is None:
            raise LookupError(eid)
        docs = [d for d in (_json(e["document"]), _json(e["objection_document"])) if d]
        repairs = [r for r in await credit.repairs() if r["entry_id"] == eid]
        for r in repairs:
            docs += [d for d in (_json(r["commitment"]), _json(r["decision"])) if d]
        return e, repairs, docs

    def missing(session: Session, eid: str) -> Response:
        return render("error.html", 404, session=session, title="没有该信用记录",
                      message=f"没有信用记录 {eid}。")  # fmt: skip

    async def entry(request: Request, session: Session) -> Response:
        if c.credit is None:
            return off(session)
        eid = request.path_params["entry_id"]
        try:
            e, repairs, docs = await found(c.credit, eid)
        except LookupError:
            return missing(session, eid)
        events = [{**ev, "at": ev["at"].astimezone(c.credit.tz).strftime("%Y-%m-%d %H:%M"),
                   "action": ACTION_ZH.get(ev["action"], ev["action"]),
                   "by_user": ACTOR_ZH.get(ev["by_user"], ev["by_user"]),
                   "detail": "；".join(str(v) for v in _json(ev["detail"]).values() if v)}
                  for ev in await c.credit.events(eid)]  # fmt: skip
        return render("credit_entry.html", session=session, title="信用记录", e=e,
                      cases=_json(e["cases"]), objection=_json(e["objection"]), docs=docs,
                      repairs=repairs, events=events, KIND_ZH=KIND_ZH, STATUS_ZH=STATUS_ZH)  # fmt: skip

    async def document(request: Request, session: Session) -> Response:
        """A document of the entry as a PDF, sealed with the agency's key when it has one."""
        if c.credit is None:
            return off(session)
        eid, n = request.path_params["entry_id"], request.path_params["n"]
        try:
            _, _, docs = await found(c.credit, eid)
        except LookupError:
            return missing(session, eid)
        if n >= len(docs):
            return missing(session, f"{eid} 的第{n + 1}份文书")
        html = _env.get_template("credit_doc.html").render(d=docs[n], entry_id=eid)
        pdf = await asyncio.to_thread(render_pdf, html, c.sealer if docs[n].get("agency") else None)
        return Response(pdf, media_type="application/pdf")

    async def act(request: Request, session: Session) -> Response:
        if c.credit is None:
            return off(session)
        eid, by = request.path_params["entry_id"], session.actor
        form = await request.form()
        action, text = str(form.get("action") or ""), str(form.get("text") or "").strip()
        yes = form.get("result") == "yes"
        try:
            if action == "object":
                await c.credit.object(eid, by, text)
            elif action == "decide_objection":
                await c.credit.decide_objection(eid, by, yes, text)
            elif action == "decide_held":
                fleet = str(form.get("fleet") or "").strip()
                if fleet and not fleet.isdigit():
                    raise CreditError("车辆总数须为正整数")
                await c.credit.decide_held(eid, by, int(fleet) if fleet else None, text,
                                          form.get("suspended") == "yes")  # fmt: skip
            elif action == "apply_repair":
                await c.credit.apply_repair(eid, by, text)
            elif action == "decide_repair":
                await c.credit.decide_repair(eid, by, yes, text)
            else:
                raise CreditError(f"未知的操作：{action}")
        except CreditError as exc:
            return render("error.html", 400, session=session, title="无法办理", message=str(exc))
        return RedirectResponse(f"/legal/credit/{eid}", 303)

    roles = {LEGAL_REVIEWER}
    return [
        Route("/legal/credit", page(roles, overview)),
        Route("/legal/credit/{entry_id}", page(roles, entry)),
        Route("/legal/credit/{entry_id}/doc/{n:int}.pdf", page(roles, document)),
        Route("/legal/credit/{entry_id}/act", page(roles, act), methods=["POST"]),
    ]
