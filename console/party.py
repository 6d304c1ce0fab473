"""The party's own page (《行政处罚法》 Art. 41): public, no account.

With the plate and the notice's lookup code the party opens a short server-side session bound to
that one case: the violation as notified, its evidence images, the proposed penalty and the
deadline, and a form to state their case (陈述、申辩: text and up to three JPEG or PNG images,
kept in the blob store). The statement goes through the lifecycle (``submit_statement``, as
the party) and so lands on the case, in the officer's queue and in the custody log, as does
every view of the page.

No enumeration: a wrong pair is one query whichever part is wrong, answered with the same
status and bytes, and failures are throttled per address (successes do not reset it: one's own
valid code must not buy more guesses).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import warnings
from typing import Any

from PIL import Image
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from events.images import jpeg_is_whole, png_is_whole
from sinks.accounts import OFFICER, PARTY, Session, Throttle, same_token
from sinks.blobs import SCHEME
from sinks.lifecycle import Actor, CustodyError, LifecycleError
from sinks.lifecycle import Request as Action

from .names import STATES
from .notice import (
    Notice,
    Page,
    checked_images,
    load_notice,
    notice_response,
    view,
)
from .pages import CASE_VIEWERS, Console, _token, render
from .procedure import (
    SERVICE_METHODS,
    case_procedure,
    document_response,
    hearing_notice_view,
)

PARTY_COOKIE = "offsite_party"  # the party's session; sent to /party only
FORM_COOKIE = "offsite_party_form"  # the look-up form's CSRF token (double submit: no session)
WRONG = "号牌号码或查询码不正确，请核对违法行为通知书后重试。"
MAX_TEXT = 4000
MAX_IMAGES = 3  # attachments to one statement: images or PDFs
MAX_IMAGE_BYTES = 2 * 1024 * 1024
MAX_PDF_BYTES = 5 * 1024 * 1024  # a scanned permit or contract of a few pages (review B7)
# a small file that decodes to gigabytes is refused before decoding: 24 MP (a phone's photo)
# is 72 MB decoded; a 6,000 × 6,000 image is not taken
MAX_PIXELS = 24_000_000
MAX_REQUEST = MAX_IMAGES * MAX_PDF_BYTES + 256 * 1024
KINDS = {"jpeg": ("image/jpeg", ".jpg"), "png": ("image/png", ".png"),
         "pdf": ("application/pdf", ".pdf")}  # fmt: skip
PARTY_ACTOR = Actor(PARTY, frozenset({PARTY}))


def image_kind(data: bytes) -> str | None:
    """``jpeg`` or ``png`` when ``data`` is an image of that kind that decodes, else None: the
    bytes decide, never a file name or a content type. Blocking (decodes)."""
    if data.startswith(b"\xff\xd8\xff"):
        kind = "jpeg"
    elif data.startswith(b"\x89PNG\r\n\x1a\n"):
        kind = "png"
    else:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as im:  # reads the header only
                if im.format != kind.upper() or im.width * im.height > MAX_PIXELS:
                    return None
                if not (jpeg_is_whole(data) if kind == "jpeg" else png_is_whole(data)):
                    return None  # a header alone, or a file cut short
                im.load()  # and its data decodes
        except (OSError, ValueError, Image.DecompressionBombError, Image.DecompressionBombWarning):
            return None
    return kind


def attachment_kind(data: bytes) -> str | None:
    """``jpeg``, ``png`` (as :func:`image_kind`) or ``pdf`` when ``data`` is a whole file of
    that kind, else None: by its bytes, never its name. A PDF starts with its header and ends
    with its end-of-file marker (a file cut short has none). Blocking."""
    if data.startswith(b"%PDF-") and b"%%EOF" in data[-1024:]:
        return "pdf"
    return image_kind(data)


async def read_attachments(
    form: FormData, field: str, most: int = MAX_IMAGES, pdf: bool = True, noun: str = "文件"
) -> tuple[list[tuple[bytes, str]], str]:
    """The files uploaded as ``field`` as (bytes, kind), or why they are refused (Chinese;
    then nothing is kept): at most ``most``, JPEG or PNG up to 2 MB, and (``pdf``) PDF up to
    5 MB; ``noun``: what the person uploads (文件, 照片)."""
    files = [f for f in form.getlist(field)
             if isinstance(f, UploadFile) and (f.filename or f.size)]  # fmt: skip
    kinds = "JPEG、PNG 图片或 PDF 文件" if pdf else f"JPEG 或 PNG {noun}"
    if len(files) > most:
        return [], f"最多上传 {most} 张{'图片或 PDF 文件' if pdf else noun}。"
    out = []
    for f in files:
        data = await f.read(MAX_PDF_BYTES + 1)
        limit = MAX_PDF_BYTES if pdf and data.startswith(b"%PDF-") else MAX_IMAGE_BYTES
        if len(data) > limit:
            return [], f"{noun}“{f.filename}”超过 {limit // 2**20} MB。"
        kind = await asyncio.to_thread(attachment_kind if pdf else image_kind, data)
        if kind is None:
            return [], f"“{f.filename}”不是有效的 {kinds}。"
        out.append((data, kind))
    return out, ""


async def store_attachments(c: Console, items: list[tuple[bytes, str]]) -> list[dict[str, Any]]:
    """The attachments in the blob store, as the statement lists them."""
    stored = []
    for data, kind in items:
        media_type, suffix = KINDS[kind]
        uri, digest = await asyncio.to_thread(c.blobs.put, data, suffix)  # type: ignore[union-attr]
        stored.append({"uri": uri, "sha256": digest, "type": media_type, "size": len(data)})
    return stored


def _normal(text: Any, limit: int) -> str:
    """A plate or a lookup code as typed: no spaces, upper case, bounded."""
    return "".join(str(text or "").split()).upper()[:limit]


def party_routes(c: Console, page: Page) -> list[Route]:
    """The party's routes under ``/party``, and the officers' view of statement images."""
    policy = c.lifecycle.policy

    def address(request: Request) -> str:
        return request.client.host if request.client else "unknown"

    def cookie(resp: Response, name: str, value: str) -> None:
        resp.set_cookie(name, value, httponly=True, samesite="strict", secure=c.secure_cookies,
                        path="/party")  # fmt: skip

    async def party_session(request: Request) -> Session | None:
        s = await c.sessions.get(request.cookies.get(PARTY_COOKIE), c.now())
        return s if s is not None and s.account is None and s.party_case_id else None

    async def opened(request: Request) -> tuple[Session, Notice] | Response:
        """The party's live session and the notice of its one case; else where to go: the
        look-up form, or 429 when the case's pages are asked for faster than anyone reads."""
        session = await party_session(request)
        if session is None or session.party_case_id is None:
            return to_form()
        key = f"case:{session.party_case_id}"
        if c.party_views.blocked(key):
            return too_fast(c.party_views, key)
        c.party_views.failed(key)  # counted as a view
        notice = await load_notice(c, session.party_case_id)
        return to_form() if notice is None else (session, notice)

    def too_fast(throttle: Throttle, key: str) -> Response:
        wait = int(throttle.retry_after(key)) + 1
        resp = render("error.html", 429, session=None, title="请求过于频繁",
                      message=f"请 {wait} 秒后再试。")  # fmt: skip
        resp.headers["retry-after"] = str(wait)
        return resp

    async def viewed(session: Session, notice: Notice) -> None:
        """One custody entry for the party's views of a session and day (whatever pages,
        images and PDFs): the first view of the day records it."""
        today = c.now().astimezone(policy.tz).date()
        first = await c.pool.fetchval(
            "UPDATE sessions SET custody_day = $2 WHERE token_hash = $1"
            " AND custody_day IS DISTINCT FROM $2 RETURNING true", session.token_hash, today,
        )  # fmt: skip
        if not first:
            return
        try:
            await c.lifecycle.record(notice.case_id, "viewed", PARTY, "party session")
        except CustodyError:
            await c.pool.execute("UPDATE sessions SET custody_day = NULL WHERE token_hash = $1",
                                 session.token_hash)  # fmt: skip
            raise

    def to_form() -> Response:
        return RedirectResponse("/party", 303)

    # --- finding the case ---------------------------------------------------------------------

    async def lookup_form(request: Request, error: str = "", status: int = 200) -> Response:
        token = request.cookies.get(FORM_COOKIE) or _token()
        resp = render("party.html", status, session=None, csrf=token, error=error,
                      title="违法行为查询与陈述申辩")  # fmt: skip
        cookie(resp, FORM_COOKIE, token)
        return resp

    async def lookup(request: Request) -> Response:
        if request.method == "GET":
            return await lookup_form(request)
        form = await request.form()
        if not same_token(str(form.get("csrf") or ""), request.cookies.get(FORM_COOKIE)):
            return await lookup_form(request, "页面已过期，请重新输入。", 403)
        key = f"party:{address(request)}"
        if c.throttle.blocked(key):
            wait = int(c.throttle.retry_after(key)) + 1
            resp = await lookup_form(request, f"查询失败次数过多，请 {wait} 秒后再试。", 429)
            resp.headers["retry-after"] = str(wait)
            return resp
        plate, code = _normal(form.get("plate"), 16), _normal(form.get("code"), 32)
        if not (plate + code).isprintable():  # no notice has one: a failure all the same
            c.throttle.failed(key)
            return await lookup_form(request, WRONG, 400)
        # both parts in one query: a wrong plate and a wrong code take the same path; the code
        # of any of the case's notices (an amended proposal's, or the first one the party kept);
        # a vessel's notice is found by the vessel's name as the notice prints it (review B11)
        cid = await c.pool.fetchval(
            "SELECT case_id FROM notices WHERE lookup_code = $1 AND coalesce(plate,"
            " upper(replace(document->>'vessel', ' ', ''))) = $2",
            code, plate,
        )  # fmt: skip
        if cid is None:
            c.throttle.failed(key)
            return await lookup_form(request, WRONG, 401)
        token, _ = await c.sessions.start(c.now(), party_case_id=cid, address=address(request))
        resp = RedirectResponse("/party/case", 303)
        cookie(resp, PARTY_COOKIE, token)
        resp.delete_cookie(FORM_COOKIE, path="/party")
        return resp

    async def leave(request: Request) -> Response:
        session = await party_session(request)
        if session is not None:
            form = await request.form()
            if same_token(str(form.get("csrf") or ""), session.csrf_token):
                await c.sessions.end(session)
        resp = to_form()
        resp.delete_cookie(PARTY_COOKIE, path="/party")
        return resp

    # --- the case -----------------------------------------------------------------------------

    async def case_response(
        request: Request, session: Session, notice: Notice, error: str = "", status: int = 200
    ) -> Response:
        cid = notice.case_id
        case_status = await c.pool.fetchval("SELECT status FROM cases WHERE case_id = $1", cid)
        statements = await c.pool.fetch(
            "SELECT statement_id, body, images, submitted_at FROM statements WHERE case_id = $1"
            " ORDER BY statement_id", cid,
        )  # fmt: skip
        found = await asyncio.to_thread(checked_images, c, notice)
        today = c.now().astimezone(policy.tz).date()
        sources = {s for t in c.lifecycle.transitions if t.action == "submit_statement"
                   for s in t.sources}  # fmt: skip
        due = notice.statement_due  # None: not served yet, the period has not begun to run
        open_for_statement = case_status in sources and (due is None or today <= due)
        # issue #25: the hearing the party may ask for, the agency's decision and what to pay
        hearing_open = case_status in ("notice_issued", "statement_received") and (
            notice.hearing_due is not None and today <= notice.hearing_due)  # fmt: skip
        procedure = await case_procedure(c, cid)
        # 延期/分期 (Art. 66 (2)): while the fine is owed and no application is open or approved
        plan_open = case_status == "decided" and bool(procedure["owed_fen"]) and not any(
            p["status"] != "refused" for p in procedure["plans"])  # fmt: skip
        # must-have 10: how each document reached the party (送达), and the 听证通知书
        served = {s["document"]: (SERVICE_METHODS[s["method"]], s["served_on"])
                  for s in procedure["services"]}  # fmt: skip
        h = procedure["hearing"]
        hearing_notice = hearing_notice_view(h, policy.tz) if h is not None else None
        return render(
            "party_case.html", status, session=None, n=view(notice, policy.tz),
            status_name=STATES[case_status],
            images=[(name, f"/party/images/{name}" if data else None) for name, data in found],
            statements=[(s["submitted_at"], s["body"], len(json.loads(s["images"])),
                         procedure["replies"].get(s["statement_id"])) for s in statements],
            open_for_statement=open_for_statement, csrf=session.csrf_token, error=error,
            sent=request.query_params.get("sent") == "1", max_text=MAX_TEXT,
            max_images=MAX_IMAGES, max_mib=MAX_IMAGE_BYTES // (1024 * 1024),
            max_pdf_mib=MAX_PDF_BYTES // 2**20,
            hearing_open=hearing_open, procedure=procedure, plan_open=plan_open,
            served=served, hearing_notice=hearing_notice, title="违法行为查询与陈述申辩",
        )  # fmt: skip

    async def case_page(request: Request) -> Response:
        got = await opened(request)
        if isinstance(got, Response):
            return got
        session, notice = got
        # the party is still told of the case when the log refuses: their right does not wait
        with contextlib.suppress(CustodyError):
            await viewed(session, notice)
        return await case_response(request, session, notice)

    async def party_image(request: Request) -> Response:
        got = await opened(request)
        if isinstance(got, Response):
            return got
        notice = got[1]
        name = request.path_params["name"]
        found = dict(await asyncio.to_thread(checked_images, c, notice))
        data = found.get(name)  # only the names this case's notice lists
        if data is None:
            return Response("没有这张图片", 404)
        return Response(data, media_type="image/jpeg")

    async def party_notice(request: Request) -> Response:
        got = await opened(request)
        if isinstance(got, Response):
            return got
        session, notice = got
        try:
            await viewed(session, notice)
            return await notice_response(
                c, request, notice, PARTY, pdf=request.url.path.endswith(".pdf"),
                image_url=lambda name: f"/party/images/{name}",
                links={"pdf": "/party/notice.pdf", "back": "/party/case"}, record=False,
            )  # fmt: skip
        except CustodyError as exc:
            return render("error.html", 409, session=None, title="暂时无法查看",
                          message=exc.message)  # fmt: skip

    async def party_hearing_notice(request: Request) -> Response:
        """The case's 听证通知书, once made, as HTML or PDF: the party's own copy."""
        got = await opened(request)
        if isinstance(got, Response):
            return got
        session, notice = got
        cid = notice.case_id
        h = await c.pool.fetchrow("SELECT * FROM hearing_notices WHERE case_id = $1", cid)
        if h is None:
            return render("error.html", 404, session=None, title="没有听证通知书",
                          message="本案尚未制作听证通知书。")  # fmt: skip
        try:
            await viewed(session, notice)
        except CustodyError as exc:
            return render("error.html", 409, session=None, title="暂时无法查看",
                          message=exc.message)  # fmt: skip
        return await document_response("hearing_notice.html", f"hearing-notice-{cid}",
                                       request.url.path.endswith(".pdf"), c.sealer,
                                       h=hearing_notice_view(h, policy.tz))  # fmt: skip

    # --- the statement ------------------------------------------------------------------------

    async def statement(request: Request) -> Response:
        got = await opened(request)
        if isinstance(got, Response):
            return got
        session, notice = got
        key = f"case:{notice.case_id}"
        if c.party_statements.blocked(key):
            return too_fast(c.party_statements, key)
        try:
            length = int(request.headers.get("content-length") or "")
        except ValueError:
            return await case_response(request, session, notice, "请求无效。", 411)
        if length > MAX_REQUEST:
            return await case_response(
                request, session, notice,
                f"提交的内容过大：最多 {MAX_IMAGES} 个附件，图片每张不超过"
                f" {MAX_IMAGE_BYTES // 2**20} MB，PDF 每份不超过 {MAX_PDF_BYTES // 2**20} MB。", 413,
            )  # fmt: skip
        try:
            form = await request.form(max_files=MAX_IMAGES + 5, max_fields=20,
                                      max_part_size=64 * 1024)  # fmt: skip
        except HTTPException as exc:
            if "Too many files" in str(exc.detail):  # the limit, not a riddle
                return await case_response(request, session, notice,
                                           f"最多上传 {MAX_IMAGES} 张图片或 PDF 文件。", 400)  # fmt: skip
            return await case_response(request, session, notice, "提交的内容无法识别。", 400)
        try:
            return await submit(request, session, notice, form)
        finally:
            await form.close()  # the uploads' temporary files

    async def submit(
        request: Request, session: Session, notice: Notice, form: FormData
    ) -> Response:
        if not same_token(str(form.get("csrf") or ""), session.csrf_token):
            return render("error.html", 403, session=None, title="请求无效",
                          message="表单已过期或来源不明（CSRF），请返回后重试。")  # fmt: skip
        body = str(form.get("body") or "").strip()
        problem = ""
        if not body:
            problem = "请填写陈述、申辩的内容。"
        elif len(body) > MAX_TEXT:
            problem = f"陈述、申辩的内容最多 {MAX_TEXT} 字。"
        images, problem = (await read_attachments(form, "images")) if not problem else ([], problem)
        if problem:
            return await case_response(request, session, notice, problem, 400)
        if images and c.blobs is None:
            return await case_response(request, session, notice, "本系统暂不能接收附件。", 503)
        stored = await store_attachments(c, images)
        try:
            await c.lifecycle.apply(notice.case_id, Action(
                "submit_statement", PARTY_ACTOR,
                payload={"body": body, "images": stored, "address": address(request)}))  # fmt: skip
        except LifecycleError as exc:
            return await case_response(request, session, notice, exc.message, 409)
        c.party_statements.failed(f"case:{notice.case_id}")  # counted as a statement
        return RedirectResponse("/party/case?sent=1", 303)

    async def party_action(request: Request, action: str, fields: tuple[str, ...]) -> Response:
        """One of the party's procedure actions, its payload the form's ``fields``; the
        lifecycle checks periods and contents."""
        got = await opened(request)
        if isinstance(got, Response):
            return got
        session, notice = got
        form = await request.form(max_files=0, max_fields=5)
        if not same_token(str(form.get("csrf") or ""), session.csrf_token):
            return render("error.html", 403, session=None, title="请求无效",
                          message="表单已过期或来源不明（CSRF），请返回后重试。")  # fmt: skip
        payload = {k: str(form.get(k) or "").strip()[:4000] for k in fields}
        try:
            await c.lifecycle.apply(notice.case_id, Action(action, PARTY_ACTOR, payload=payload))
        except LifecycleError as exc:
            return await case_response(request, session, notice, exc.message, 409)
        return RedirectResponse("/party/case", 303)

    async def hearing(request: Request) -> Response:
        """The party asks for a hearing (Art. 64 (1))."""
        return await party_action(request, "request_hearing", ())

    async def payment_plan(request: Request) -> Response:
        """The party applies to pay later or in instalments (Art. 66 (2); cases/plans.py)."""
        return await party_action(request, "apply_payment_plan", ("kind", "instalments", "grounds"))

    # --- the officers' side: the statements' images -------------------------------------------

    async def statement_image(request: Request, session: Session) -> Response:
        cid, name = request.path_params["case_id"], request.path_params["name"]
        rows = await c.pool.fetch("SELECT images FROM statements WHERE case_id = $1", cid)
        for r in rows:  # only names in the case's stored statements: no path from the URL
            for img in json.loads(r["images"]):
                uri = str(img.get("uri") or "")
                if uri.startswith(SCHEME) and uri.removeprefix(SCHEME) == name and c.blobs:
                    path = c.blobs.path(uri)
                    if path.is_file():
                        return Response(await asyncio.to_thread(path.read_bytes),
                                        media_type=str(img.get("type") or "image/jpeg"))  # fmt: skip
        return Response("没有这张图片", 404)

    async def record_statement(request: Request, session: Session) -> Response:
        """An officer records a statement received offline (by post, in person) with its scans
        and PDFs (review B7), checked by their bytes as the party's are."""
        cid = request.path_params["case_id"]

        def refused(status: int, message: str) -> Response:
            return render("error.html", status, session=session, title="不能登记陈述、申辩",
                          message=message)  # fmt: skip

        if int(request.headers.get("content-length") or 0) > MAX_REQUEST:
            return refused(413, f"提交的内容过大：最多 {MAX_IMAGES} 个附件。")
        form = await request.form()  # the CSRF token was checked (page)
        try:
            items, problem = await read_attachments(form, "images")
            if problem:
                return refused(400, problem)
            if items and c.blobs is None:
                return refused(503, "本系统暂不能接收附件。")
            payload = {"body": str(form.get("body") or "").strip()[:20_000],
                       "images": await store_attachments(c, items)}  # fmt: skip
            actor = Actor(session.actor, session.roles)
            await c.lifecycle.apply(cid, Action("record_statement", actor, payload=payload))
        except LifecycleError as exc:
            return refused(409, exc.message)
        finally:
            await form.close()
        return RedirectResponse(f"/cases/{cid}", 303)

    return [
        Route("/party", lookup, methods=["GET", "POST"]),
        Route("/party/case", case_page),
        Route("/party/images/{name}", party_image),
        Route("/party/notice", party_notice),
        Route("/party/notice.pdf", party_notice),
        Route("/party/hearing-notice", party_hearing_notice),
        Route("/party/hearing-notice.pdf", party_hearing_notice),
        Route("/party/statement", statement, methods=["POST"]),
        Route("/party/hearing", hearing, methods=["POST"]),
        Route("/party/payment-plan", payment_plan, methods=["POST"]),
        Route("/party/logout", leave, methods=["POST"]),
        Route("/cases/{case_id}/statement-images/{name}", page(CASE_VIEWERS, statement_image)),
        Route("/cases/{case_id}/statement", page({OFFICER}, record_statement), methods=["POST"]),
    ]
