"""The console's ASGI app (Starlette): log-in, the officer's queue and case page, legal review,
the command center with live alerts. Pages are rendered on the server; ``static/console.js``
adds keyboard shortcuts and the live feed, and every page works without it.

Every route names its roles; a request without a live session is sent to the log-in page, one
with a session but not the role gets 403, and a POST without the session's CSRF token gets 403.
A case changes only through :class:`sinks.lifecycle.Lifecycle`, and every view of a case is a
custody entry with the user's name.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import asyncpg
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sinks.accounts import (
    ADMIN,
    COMMAND_CENTER,
    FIELD_OFFICER,
    HEAD,
    LEGAL_REVIEWER,
    OFFICER,
    ROLES,
    SQUAD_LEADER,
    AccountError,
    Session,
    same_token,
)
from sinks.lifecycle import (
    Actor,
    CustodyError,
    LifecycleError,
    case_facts,
    is_water,
)
from sinks.lifecycle import (
    Request as Action,
)

from . import names
from .atlas import atlas_routes
from .casefile import CLOSED as FILED
from .casefile import casefile_routes
from .chaogao import chaogao_routes, sending
from .command import command_routes
from .credit import credit_routes, crediting
from .dispatch import dispatch_routes, sweeping
from .notice import notice_document, notice_routes, vessel_name
from .pages import (
    CASE_VIEWERS,
    DOMAINS,
    QUEUES,
    Console,
    Handler,
    _env,
    _json_file,
    _token,
    render,
)
from .party import party_routes
from .payments import payment_routes
from .procedure import case_procedure, procedure_payload, procedure_routes
from .publicity import publication_routes
from .stats import pruning, stats_routes

HERE = Path(__file__).parent
log = logging.getLogger("offsite.console")
# the days the queue's date filter takes: no case is older, and the far end stays clear of the
# calendar's and the database's limits (year 1 and 9999 end in an overflow)
FIRST_DAY, LAST_DAY = dt.date(2000, 1, 1), dt.date(2199, 12, 31)
SESSION_COOKIE = "offsite_session"
LOGIN_COOKIE = "offsite_login"  # the log-in form's CSRF token (double submit: no session yet)
PAGE_SIZE = 50
ALL_ROLES = frozenset(ROLES)
HOME = {OFFICER: "/cases", LEGAL_REVIEWER: "/legal", COMMAND_CENTER: "/command", ADMIN: "/admin",
        SQUAD_LEADER: "/tasks", FIELD_OFFICER: "/field"}  # fmt: skip
HOME[HEAD] = "/cases"  # issue #25: the 负责人 works from the queue and decides on the case page
# a waterway case's vessel as the queue shows it (NULL for a road case)
VESSEL = (
    "CASE WHEN c.violation_code LIKE 'water.%' THEN coalesce(c.violation->'detection'->>"
    "'vessel_name', c.violation->'detection'->>'ais_name', c.violation->'detection'->>'hull_name',"
    " 'MMSI ' || (c.violation->'detection'->>'mmsi'), '未识别船舶') END AS vessel"
)
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self';"
    " connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)


class BadInput(ValueError):
    """A query or form value no page can take (a control character, a date out of range):
    answered 400 with ``message``, in Chinese."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def checked(value: str, name: str) -> str:
    """``value`` if it has no control characters (a NUL would reach the database)."""
    if not value.isprintable():
        raise BadInput(f"“{name}”含有无效字符。")
    return value


class SecurityHeaders:
    """Headers on every response, an error's too: no framing, no sniffing, nothing from
    elsewhere, and HTTPS only (HSTS) when served over TLS."""

    def __init__(self, app: ASGIApp, *, tls: bool = False) -> None:
        self.app = app
        self.headers = [
            (b"content-security-policy", CSP.encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"same-origin"),
            (b"cache-control", b"no-store"),
        ]
        if tls:
            self.headers.append((b"strict-transport-security", b"max-age=31536000"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def send_with(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message.setdefault("headers", [])
                message["headers"] += self.headers
            await send(message)

        try:
            await self.app(scope, receive, send_with)
        except Exception:
            log.exception("%s %s failed", scope.get("method"), scope.get("path"))
            if started:
                raise
            page = render("error.html", 500, session=None, title="系统错误",
                          message="系统暂时无法处理此请求，请稍后再试。")  # fmt: skip
            await page(scope, receive, send_with)


def create_app(console: Console) -> Starlette:
    c = console
    tz = c.lifecycle.policy.tz
    _env.filters["local"] = lambda t: t.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")

    def address(request: Request) -> str:
        return request.client.host if request.client else "unknown"

    def page(roles: Iterable[str], handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        """``handler`` for a signed-in user holding one of ``roles``; POSTs need the CSRF token."""
        allowed = frozenset(roles)

        async def endpoint(request: Request) -> Response:
            session = await c.sessions.get(request.cookies.get(SESSION_COOKIE), c.now())
            if session is None or session.account is None:
                target = request.url.path if request.method == "GET" else "/"
                return RedirectResponse("/login?" + urlencode({"next": target}), 303)
            if not session.roles & allowed:
                return render("error.html", 403, session=session, title="无权访问",
                              message="您的岗位不能访问此页面。")  # fmt: skip
            if request.method == "POST":
                form = await request.form()
                if not same_token(str(form.get("csrf") or ""), session.csrf_token):
                    return render("error.html", 403, session=session, title="请求无效",
                                  message="表单已过期或来源不明（CSRF），请返回后重试。")  # fmt: skip
            try:
                return await handler(request, session)
            except BadInput as exc:
                return render("error.html", 400, session=session, title="请求无效",
                              message=exc.message)  # fmt: skip

        return endpoint

    # --- log-in -------------------------------------------------------------------------------

    async def login_form(request: Request, error: str = "", status: int = 200) -> Response:
        token = request.cookies.get(LOGIN_COOKIE) or _token()
        resp = render("login.html", status, session=None, csrf=token, error=error, title="登录",
                      next=_safe_next(request.query_params.get("next")))  # fmt: skip
        resp.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="strict",
                        secure=c.secure_cookies, path="/login")  # fmt: skip
        return resp

    async def login(request: Request) -> Response:
        if request.method == "GET":
            return await login_form(request)
        form = await request.form()
        if not same_token(str(form.get("csrf") or ""), request.cookies.get(LOGIN_COOKIE)):
            return await login_form(request, "页面已过期，请重新登录。", 403)
        username = str(form.get("username") or "").strip().lower()[:64]
        password = str(form.get("password") or "")[:1024]
        # failures count per account at this address, and per address: guesses from here are
        # held back, but no one elsewhere can lock an officer out of their own account
        keys = (f"account:{username}@{address(request)}", f"addr:{address(request)}")
        if c.throttle.blocked(*keys):
            wait = int(c.throttle.retry_after(*keys)) + 1
            resp = await login_form(request, f"登录失败次数过多，请 {wait} 秒后再试。", 429)
            resp.headers["retry-after"] = str(wait)
            return resp
        if not (username + password).isprintable():  # no account has one: a failure all the same
            c.throttle.failed(*keys)
            return await login_form(request, "用户名或密码含有无效字符。", 400)
        account = await c.accounts.authenticate(username, password)
        if account is None:
            c.throttle.failed(*keys)
            return await login_form(request, "用户名或密码错误。", 401)
        c.throttle.reset(keys[0])
        token, _ = await c.sessions.start(c.now(), account=account, address=address(request))
        home = next(HOME[r] for r in HOME if r in account.roles)
        resp = RedirectResponse(_safe_next(str(form.get("next") or "")) or home, 303)
        resp.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict",
                        secure=c.secure_cookies, path="/")  # fmt: skip
        resp.delete_cookie(LOGIN_COOKIE, path="/login")
        return resp

    async def logout(request: Request, session: Session) -> Response:
        await c.sessions.end(session)
        resp = RedirectResponse("/login", 303)
        resp.delete_cookie(SESSION_COOKIE, path="/")
        return resp

    async def home(request: Request, session: Session) -> Response:
        return RedirectResponse(next(HOME[r] for r in HOME if r in session.roles), 303)

    # --- the officer's queue ------------------------------------------------------------------

    async def queue(request: Request, session: Session) -> Response:
        q = request.query_params
        status = str(q.get("status") or "")
        status = status if status in QUEUES else "pending_review"
        rows, filters, more, page_no = await _queue(c, q, [status])
        sites, codes = await _distinct(c, "site_id"), await _distinct(c, "violation_code")
        return render("queue.html", session=session, rows=rows, filters=filters, shown=status,
                      sites=sites, codes=codes, more=more, page=page_no,
                      page_url=lambda n: "/cases?" + urlencode({**filters, "status": status,
                                                                 "page": n}),
                      title="案件审核")  # fmt: skip

    async def legal_queue(request: Request, session: Session) -> Response:
        rows, _, more, page_no = await _queue(c, request.query_params, ["legal_review"])
        return render("legal.html", session=session, rows=rows, more=more, page=page_no,
                      page_url=lambda n: f"/legal?page={n}", title="法制审核")  # fmt: skip

    # --- the case page ------------------------------------------------------------------------

    async def case_page(request: Request, session: Session) -> Response:
        return await _case_response(request, session)

    async def _case_response(
        request: Request, session: Session, error: str = "", status: int = 200
    ) -> Response:
        cid = request.path_params["case_id"]
        row = await c.pool.fetchrow(
            "SELECT c.*, n.notice_no, n.statement_due, n.hearing_due, n.issued_at"
            " FROM cases c LEFT JOIN violation_notices n USING (case_id) WHERE c.case_id = $1",
            cid,
        )
        if row is None:
            return render("error.html", 404, session=session, title="没有这个案件",
                          message="案件不存在。")  # fmt: skip
        try:
            await c.lifecycle.record(cid, "viewed", session.actor, "console")
            custody_error = ""
        except CustodyError as exc:
            custody_error = exc.message
        facts = case_facts(row)
        violation = json.loads(row["violation"])
        package = c.evidence_dir / cid
        water = _water_facts(violation, package) if is_water(facts) else None
        hidden = {"submit_statement", "correct_plate"} if water else {"submit_statement"}
        if not water and facts.status == "confirmed":  # a road case is amended after its notice
            hidden.add("amend_proposal")
        offered = [t for t in c.lifecycle.offered(facts, session.roles)
                   if t.action not in hidden]  # fmt: skip
        images = sorted(p.name for p in (package / "data" / "images").glob("*.jpg"))
        images.sort(key=lambda n: n != "composite.jpg")
        cert = _json_file(package / "data" / "device" / "certificate.json")
        transitions = await c.pool.fetch(
            "SELECT * FROM case_transitions WHERE case_id = $1 ORDER BY transition_id", cid
        )
        if water is None:
            history = await c.pool.fetch(
                "SELECT case_id, ts, site_id, violation_code, status, outcome, fine_cny FROM cases"
                " WHERE plate = $1 AND plate_color IS NOT DISTINCT FROM $2 AND case_id <> $3"
                " ORDER BY ts DESC LIMIT 20",
                row["plate"], row["plate_color"], cid,
            )  # fmt: skip
        else:  # the vessel's other cases: by its MMSI (a dark vessel has none to go by)
            history = await c.pool.fetch(
                "SELECT case_id, ts, site_id, violation_code, status, outcome, fine_cny FROM cases"
                " WHERE violation_code LIKE 'water.%' AND case_id <> $2"
                " AND violation->'detection'->>'mmsi' = $1::text ORDER BY ts DESC LIMIT 20",
                str(water["mmsi"]), cid,
            ) if water["mmsi"] is not None else []  # fmt: skip
        statements = await c.pool.fetch(
            "SELECT * FROM statements WHERE case_id = $1 ORDER BY statement_id", cid
        )
        decisions = await c.pool.fetch(
            "SELECT violation_id, outcome, fine_cny, rule, rule_version, applied, decided_at"
            " FROM case_decisions WHERE case_id = $1 ORDER BY decided_at, violation_id", cid
        )  # fmt: skip
        origin = await c.pool.fetch(  # the leads this case came from (console/dispatch.py)
            "SELECT l.lead_id, l.kind, l.ts, l.site_id, t.task_id, t.squad_id, t.done_by, t.done_at"
            " FROM leads l LEFT JOIN tasks t ON t.source_kind = 'lead' AND t.source_id = l.lead_id"
            " AND t.status = 'done' WHERE l.case_id = $1 ORDER BY l.ts", cid)  # fmt: skip
        following = await c.pool.fetchval(
            "SELECT case_id FROM cases WHERE status = $1 AND (ts, case_id) > ($2, $3)"
            " ORDER BY ts, case_id LIMIT 1",
            row["status"], row["ts"], cid,
        )  # fmt: skip
        return render(
            "case.html", status, session=session, case=row, violation=violation, water=water,
            images=images, cert=cert, transitions=transitions, history=history,
            statements=statements, decisions=decisions, offered=offered, error=error,
            custody_error=custody_error, next_case=following, origin=origin,
            procedure=await case_procedure(c, cid),
            major=c.lifecycle.policy.is_major(facts), actions=names.Names(c.lifecycle.labels()),
            title=f"案件 {water['vessel'] if water else row['plate'] or '无牌'}",
        )  # fmt: skip

    async def case_image(request: Request, session: Session) -> Response:
        cid, name = request.path_params["case_id"], request.path_params["name"]
        images = c.evidence_dir / cid / "data" / "images"
        found = {p.name: p for p in images.glob("*.jpg")} if images.is_dir() else {}
        if name not in found:  # only names the package has: no path from the URL
            return Response("没有这张图片", 404)
        return FileResponse(found[name], media_type="image/jpeg")

    async def act(request: Request, session: Session) -> Response:
        cid = request.path_params["case_id"]
        form = await request.form()
        action = str(form.get("action") or "")
        actor = Actor(session.actor, session.roles)
        payload: dict[str, Any] = {}
        if action == "correct_plate":
            payload = {"plate": str(form.get("plate") or "").strip().upper(),
                       "plate_color": str(form.get("plate_color") or "") or None}  # fmt: skip
        if action == "issue_notice":
            payload = {
                "document": await _notice_document(c, cid),
                "officers": str(form.get("officers") or "")[:200],
            }  # Art. 42
        payload = payload or procedure_payload(action, form)  # console/procedure.py
        req = Action(action, actor, reason_code=str(form.get("reason_code") or "") or None,
                     reason=str(form.get("reason") or "").strip()[:4000] or None,
                     payload=payload)  # fmt: skip
        try:
            done = await c.lifecycle.apply(cid, req)
        except LifecycleError as exc:
            return await _case_response(request, session, exc.message, 409)
        if c.on_closed is not None and any(a.to_status in FILED for a in done):
            await c.on_closed(cid)  # every case that ends gets its file (issue #26)
        following = str(form.get("next") or "")
        if following and action in ("confirm", "reject", "transfer", "approve", "send_back"):
            return RedirectResponse(f"/cases/{following}", 303)
        return RedirectResponse(f"/cases/{cid}", 303)

    async def set_number(request: Request, session: Session) -> Response:
        """An account's 执法证号 (Art. 42) or 法律职业资格证书编号 (Art. 58 para 2), set by the
        admin: the form sends the one it edits."""
        form = await request.form()
        user = str(form.get("username") or "")
        try:
            if "legal_cert_no" in form:
                what = "法律职业资格证书编号"
                await c.accounts.set_legal_cert(user, str(form.get("legal_cert_no") or ""))
            else:
                what = "执法证号"
                await c.accounts.set_badge(user, str(form.get("badge_no") or ""))
        except AccountError as exc:
            return render("error.html", 400, session=session, title=f"{what}无效",
                          message=str(exc))  # fmt: skip
        return RedirectResponse("/admin", 303)

    routes = [
        Route("/login", login, methods=["GET", "POST"]),
        Route("/logout", page(ALL_ROLES, logout), methods=["POST"]),
        Route("/", page(ALL_ROLES, home)),
        Route("/cases", page({OFFICER, HEAD}, queue)),
        Route("/cases/{case_id}", page(CASE_VIEWERS, case_page)),
        Route("/cases/{case_id}/images/{name}", page(CASE_VIEWERS, case_image)),
        Route("/cases/{case_id}/act", page({OFFICER, LEGAL_REVIEWER, HEAD}, act), methods=["POST"]),
        Route("/legal", page({LEGAL_REVIEWER}, legal_queue)),
        *casefile_routes(c, page),  # 案卷评查 of the 电子案卷: console/casefile.py
        *publication_routes(c, page),  # 双公示: the public page, the tracker (console/publicity.py)
        *credit_routes(c, page),  # the 严重失信 list and 信用修复: console/credit.py
        *chaogao_routes(c, page),  # 抄告 to the home region: console/chaogao.py
        *command_routes(c, page),  # the command center: console/command.py
        *notice_routes(c, page),  # the 违法行为通知书: console/notice.py
        *party_routes(c, page),  # the party's page: console/party.py
        *dispatch_routes(c, page),  # tasks, the field page, /admin (squads): console/dispatch.py
        *atlas_routes(c, page),  # the map and the 研判 page: console/atlas.py
        *procedure_routes(c, page),  # 立案, party, service: console/procedure.py
        *payment_routes(c, page),  # the bank's payment callback: console/payments.py
        *stats_routes(c, page),  # 统计报表 and its XLSX: console/stats.py
        Route("/admin/badge", page({ADMIN}, set_number), methods=["POST"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(routes=routes, lifespan=lambda _: background(c))
    app.add_middleware(SecurityHeaders, tls=c.secure_cookies)
    return app


@contextlib.asynccontextmanager
async def background(c: Console) -> AsyncIterator[None]:
    """The console's background jobs while it serves: the dispatch sweep, the credit sweep,
    the 抄告 sender and the pruning of old weighings."""
    async with sweeping(c), crediting(c), sending(c), pruning(c):
        yield


def _safe_next(target: str | None) -> str:
    """Only a path of this site: never ``//elsewhere`` or a full URL."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return ""


def _water_facts(violation: dict[str, Any], package: Path) -> dict[str, Any]:
    """What a waterway case page shows instead of a weighing: the vessel as the detection names
    it, and the registry extract its evidence package holds (evidence.water_bag)."""
    det = violation.get("detection") or {}
    return {
        "vessel": vessel_name(det), "mmsi": det.get("mmsi"), "detection": det,
        "site": _json_file(package / "data" / "registry" / "site.json"),
        "registered": _json_file(package / "data" / "registry" / "vessels.json") or [],
    }  # fmt: skip


async def _queue(
    c: Console, q: Any, statuses: list[str]
) -> tuple[list[asyncpg.Record], dict[str, str], bool, int]:
    """A page of cases in ``statuses`` matching the filters of query ``q``: (rows, the filters
    as given, whether there is a next page, the page number)."""
    policy = c.lifecycle.policy
    filters = {k: checked(str(q.get(k) or "").strip()[:40], k)
               for k in ("site", "code", "date", "plate", "uncertain", "major", "domain")}  # fmt: skip
    filters = {k: v for k, v in filters.items() if v and (k != "domain" or v in DOMAINS)}
    # one status is an equality, so that the (status, ts, case_id) index gives the page's order
    where: list[str]
    args: list[Any]
    if len(statuses) == 1:
        where, args = ["c.status = $1"], [statuses[0]]
    else:
        where, args = ["c.status = ANY($1)"], [statuses]

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    if "site" in filters:
        where.append(f"c.site_id = {arg(filters['site'])}")
    if "code" in filters:
        where.append(f"c.violation_code = {arg(filters['code'])}")
    if "plate" in filters:
        where.append(f"strpos(c.plate, {arg(filters['plate'].upper())}) > 0")
    if "date" in filters:
        try:
            day = dt.date.fromisoformat(filters["date"])
        except ValueError:
            raise BadInput("日期格式应为 年-月-日，如 2026-03-01。") from None
        if not FIRST_DAY <= day <= LAST_DAY:
            raise BadInput(f"日期应在 {FIRST_DAY} 至 {LAST_DAY} 之间。")
        start = dt.datetime.combine(day, dt.time(), policy.tz)
        where.append(f"c.ts >= {arg(start)} AND c.ts < {arg(start + dt.timedelta(days=1))}")
    if "domain" in filters:  # a waterway case's code is water.*, every other one is the road's
        negate = "" if filters["domain"] == "water" else "NOT "
        where.append(f"c.violation_code {negate}LIKE 'water.%'")
    if "uncertain" in filters:
        where.append("(c.plate IS NULL OR c.violation->'detection'->>'plate_status' <> 'read')")
    major = (f"(coalesce((c.violation->>'legal_review')::boolean, false)"
             f" OR c.violation_code = ANY({arg(sorted(policy.major_violation_codes))}::text[])"
             f" OR coalesce(c.fine_cny >= {arg(policy.major_fine_cny_at_least)}::int, false))")  # fmt: skip
    if "major" in filters:
        where.append(major)
    try:
        page_no = max(1, min(int(q.get("page") or 1), 10_000))
    except ValueError:
        page_no = 1
    # the page's ids first, then their rows: ``major`` reads the violation document, which
    # would otherwise be read for every row skipped by OFFSET too (bench/console.py)
    # the days left of the 90 after 立案 (Art. 60): a reminder in the queue (console/procedure.py)
    today = arg(c.now().astimezone(policy.tz).date())
    rows = await c.pool.fetch(
        "SELECT c.case_id, c.ts, c.site_id, c.plate, c.plate_color, c.violation_code, c.outcome,"
        f" c.fine_cny, c.overload_kg, c.status, c.review_reason, {major} AS major, {VESSEL},"
        f" (SELECT f.decision_due - {today}::date FROM case_files f"
        "  WHERE f.case_id = c.case_id) AS days_left"
        f" FROM (SELECT c.case_id, c.ts FROM cases c WHERE {' AND '.join(where)}"
        f" ORDER BY c.ts, c.case_id LIMIT {PAGE_SIZE + 1} OFFSET {(page_no - 1) * PAGE_SIZE}) p"
        " JOIN cases c USING (case_id) ORDER BY p.ts, p.case_id",
        *args,
    )
    return rows[:PAGE_SIZE], filters, len(rows) > PAGE_SIZE, page_no


async def _distinct(c: Console, column: str) -> list[str]:
    """The distinct values of an indexed column of ``cases``, one index probe each (a loose
    index scan: ``SELECT DISTINCT`` would read every case)."""
    rows = await c.pool.fetch(
        f"WITH RECURSIVE v AS (SELECT min({column}) AS x FROM cases UNION ALL"
        f" SELECT (SELECT min({column}) FROM cases WHERE {column} > v.x) FROM v"
        " WHERE v.x IS NOT NULL) SELECT x FROM v WHERE x IS NOT NULL"
    )
    return [r[0] for r in rows]


async def _notice_document(c: Console, case_id: str) -> dict[str, Any]:
    """The facts the 违法行为通知书 states, as the case has them now (console/notice.py)."""
    return await notice_document(c, case_id)
