"""The 违法行为通知书 (notice of the violation), as HTML and as PDF.

The notice states the facts as they were when it was issued: :func:`notice_document` gathers
them from the case and its evidence package when the officer issues it, the lifecycle stores
them in ``violation_notices.document`` with the notice number, deadlines and lookup code, and
every rendering reads that document, never the case's current row. The images are the
package's, checked against the SHA-256 the document recorded; the PDF embeds them as data URIs
and fetches nothing but them and the CJK font (WeasyPrint, Debian's WenQuanYi Zen Hei).
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import json
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route
from weasyprint import CSS, HTML
from weasyprint.urls import URLFetcher, URLFetcherResponse

from cases.calendar import period_zh
from cases.payments import yuan_text
from cases.sealing import Sealer
from cases.vehicles import full_width, single_item, vehicle_type
from sinks.accounts import Session
from sinks.lifecycle import CustodyError

from .command import violation_name
from .pages import CASE_VIEWERS, OUTCOMES, PLATE_COLORS, Console, Handler, _env, _json_file, render

HERE = Path(__file__).parent
FONT_FILE = Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc")
FONT_URL = FONT_FILE.as_uri()
FONT_FACE = (
    f"@font-face {{ font-family: 'WenQuanYi Zen Hei'; src: url('{FONT_URL}'); }}\n"
    "body { font-family: 'WenQuanYi Zen Hei', sans-serif; }\n"
)
PARTY_PATH = "/party"

Page = Callable[[Iterable[str], Handler], Callable[[Request], Awaitable[Response]]]


async def notice_document(c: Console, case_id: str) -> dict[str, Any]:
    """The facts the 违法行为通知书 states, as the case and its package have them now (the
    lifecycle stores them as issued): the pass, the measurement, the decision, the site, the
    issuing agency, and the package's images by name and SHA-256."""
    row = await c.pool.fetchrow("SELECT * FROM cases WHERE case_id = $1", case_id)
    if row is None:
        return {}
    v = json.loads(row["violation"])
    det = v.get("detection") or {}
    package = c.evidence_dir / case_id
    site, agency, images = await asyncio.to_thread(_package_facts, package)
    doc = {"case_id": case_id, "plate": row["plate"], "plate_color": row["plate_color"],
            "fine_cny": row["fine_cny"], "outcome": row["outcome"], "ts": row["ts"].isoformat(),
            "site_id": row["site_id"], "violation_code": row["violation_code"],
            "measured_kg": row["measured_kg"], "limit_kg": row["limit_kg"],
            "overload_kg": row["overload_kg"],
            # the one item of Art. 3 for this vehicle, not the range (review B8/B9)
            "legal_basis": single_item(row["legal_basis"] or "", det.get("configuration")),
            "penalty_basis": full_width(row["penalty_basis"] or ""),
            "vehicle_type": vehicle_type(det.get("configuration")),
            "axle_count": det.get("axle_count"),
            "reasoning": single_item(v.get("reasoning", ""), det.get("configuration")),
            "tolerance_kg": row["tolerance_kg"], "tier_name": v.get("tier_name"),
            "violation_name": violation_name(row["violation_code"]),
            "device_id": row["device_id"], "certificate_number": det.get("certificate_number"),
            "site_name": site.get("name"), "road": site.get("road"), "km": site.get("km"),
            "direction": site.get("direction"), "agency": agency, "images": images}  # fmt: skip
    if row["violation_code"].startswith("water."):  # a vessel, no weighing (review B11)
        where = await asyncio.to_thread(_json_file, package / "data" / "registry" / "site.json")
        doc.update(vessel=vessel_name(det), mmsi=det.get("mmsi"), measured_kg=None,
                   limit_kg=None, overload_kg=None, tolerance_kg=None,
                   site_name=(where or {}).get("name"))  # fmt: skip
    amended = await c.pool.fetchrow(
        "SELECT notice_no, tier_name, facts, reason FROM proposal_amendments WHERE case_id = $1"
        " ORDER BY amendment_id DESC LIMIT 1", case_id)  # fmt: skip
    if amended is not None:  # the officer's proposal (变更拟处罚意见), with the facts adopted
        doc.update(tier_name=amended["tier_name"], reasoning=amended["reason"],
                   amended={"notice_no": amended["notice_no"], "facts": amended["facts"]})  # fmt: skip
    return doc


def vessel_name(detection: Mapping[str, Any]) -> str:
    """A vessel as its waterway detection names it."""
    d = detection
    return (d.get("vessel_name") or d.get("ais_name") or d.get("hull_name")
            or (f"MMSI {d['mmsi']}" if d.get("mmsi") is not None else "未识别船舶"))  # fmt: skip


def _package_facts(package: Path) -> tuple[dict[str, Any], str | None, list[dict[str, str]]]:
    """(the site as the package recorded it, the issuing agency, the images). Blocking."""
    site = _json_file(package / "data" / "site" / "notice.json") or {}
    agency = None
    try:
        for line in (package / "bag-info.txt").read_text(encoding="utf-8").splitlines():
            label, _, value = line.partition(":")
            if label.strip() == "Issuing-Agency":
                agency = value.strip()
    except OSError:
        pass
    images = [{"name": p.name, "sha256": hashlib.sha256(p.read_bytes()).hexdigest()}
              for p in package_images(package)]  # fmt: skip
    return site, agency, images


def package_images(package: Path) -> list[Path]:
    """The package's images, the composite first."""
    found = sorted((package / "data" / "images").glob("*.jpg"))
    return sorted(found, key=lambda p: p.name != "composite.jpg")


@dataclass(frozen=True)
class Notice:
    """A notice as issued: its row of ``violation_notices``."""

    case_id: str
    notice_no: str
    lookup_code: str
    statement_due: dt.date | None  # None until the notice is served (the periods run from then)
    hearing_due: dt.date | None
    issued_at: dt.datetime
    document: dict[str, Any]


async def load_notice(c: Console, case_id: str) -> Notice | None:
    """The case's notice in force (the latest one issued)."""
    r = await c.pool.fetchrow("SELECT * FROM violation_notices WHERE case_id = $1", case_id)
    return None if r is None else _notice(r)


async def load_notices(c: Console, case_id: str) -> list[Notice]:
    """Every notice the case was given, in order: an amended proposal's notice does not
    remove the one it replaced (review A3)."""
    rows = await c.pool.fetch("SELECT * FROM notices WHERE case_id = $1 ORDER BY seq", case_id)
    return [_notice(r) for r in rows]


def _notice(r: Mapping[str, Any]) -> Notice:
    doc = r["document"]
    return Notice(r["case_id"], r["notice_no"], r["lookup_code"], r["statement_due"],
                  r["hearing_due"], r["issued_at"],
                  json.loads(doc) if isinstance(doc, str) else dict(doc))  # fmt: skip


def checked_images(c: Console, notice: Notice) -> list[tuple[str, bytes | None]]:
    """The images the notice names, each with the package's bytes, or None when the package
    no longer has it as issued (a SHA-256 that differs). Blocking."""
    images = c.evidence_dir / notice.case_id / "data" / "images"
    out: list[tuple[str, bytes | None]] = []
    for entry in notice.document.get("images") or []:
        name, digest = str(entry.get("name")), str(entry.get("sha256"))
        path = images / name
        data = None
        if path.parent == images and path.is_file():  # a name, never a path
            data = path.read_bytes()
            if hashlib.sha256(data).hexdigest() != digest:
                data = None
        out.append((name, data))
    return out


def _date(value: Any) -> str:
    if value is None:
        return ""
    day = value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))
    return f"{day.year}年{day.month}月{day.day}日"


def _kg(value: Any) -> str:
    return "" if value is None else f"{int(value):,}"


def view(notice: Notice, tz: dt.tzinfo) -> dict[str, Any]:
    """What the template shows, formatted: dates in Chinese, the pass in local time."""
    d = notice.document
    ts = dt.datetime.fromisoformat(d["ts"]).astimezone(tz)
    # the site's published name says where (road, kilometre, direction); else its parts
    km = f"K{d['km']:g}" if d.get("km") is not None else ""
    place = d.get("site_name") or " ".join(p for p in (d.get("road"), km, d["site_id"]) if p)
    measured, tolerance = d.get("measured_kg"), d.get("tolerance_kg")
    net = measured - tolerance if measured is not None and tolerance is not None else None
    return {
        "notice_no": notice.notice_no,
        "agency": d.get("agency") or "",
        "plate": d.get("plate") or "（未识别）",
        "plate_color": PLATE_COLORS.get(str(d.get("plate_color")), ""),
        "time": f"{ts.year}年{ts.month}月{ts.day}日 {ts:%H时%M分%S秒}",
        "place": place,
        "device_id": d.get("device_id") or "",
        "certificate_number": d.get("certificate_number") or "",
        "violation_name": d.get("violation_name") or d.get("violation_code") or "",
        "measured": _kg(measured),
        "tolerance": _kg(tolerance),
        "net": _kg(net),
        "limit": _kg(d.get("limit_kg")),
        "overload": _kg(d.get("overload_kg")),
        "legal_basis": d.get("legal_basis") or "",
        "penalty_basis": d.get("penalty_basis") or "",
        "tier_name": d.get("tier_name") or "",
        "vehicle_type": d.get("vehicle_type") or "",
        "axle_count": d.get("axle_count"),
        "contact": d.get("contact") or "",
        "officers": d.get("officers") or [],  # Art. 42: two officers and their 执法证号
        "outcome": d.get("outcome"),
        "outcome_name": OUTCOMES.get(str(d.get("outcome")), str(d.get("outcome"))),
        "fine": f"{d['fine_cny']:,}" if d.get("fine_cny") is not None else None,
        # review D.10: in figures and in capitals, 2500元（贰仟伍佰元整）
        "fine_text": yuan_text(d["fine_cny"]) if d.get("fine_cny") is not None else "",
        "reasoning": d.get("reasoning") or "",
        "statement_due": _date(notice.statement_due),
        "hearing_due": _date(notice.hearing_due) if notice.hearing_due else "",
        # the periods as the notice states them: they run from its service (cases.calendar)
        "statement_period": period_zh(int(d.get("statement_days") or 15)),
        "hearing_period": period_zh(int(d["hearing_days"])) if d.get("hearing_days") else "",
        "issued_on": _date(d.get("issued_on") or notice.issued_at.astimezone(tz).date()),
        "lookup_code": notice.lookup_code,
        "case_id": notice.case_id,
        "party": d.get("party"),  # the 当事人 from 立案 (issue #25, review B8), when known
        "vessel": d.get("vessel"),  # a waterway case (review B11)
        "mmsi": d.get("mmsi"),
        # the proposal amended after an earlier notice (review A3): that notice and the facts
        # adopted
        "amended": d.get("amended"),
    }


def notice_html(
    c: Console,
    notice: Notice,
    party_url: str,
    images: list[tuple[str, str | None]],
    *,
    pdf: bool,
    links: Mapping[str, str] | None = None,
) -> str:
    """The notice's HTML. ``images``: (name, src or None when not as issued). ``pdf``: for
    WeasyPrint (its stylesheet is given to it, not linked)."""
    return _env.get_template("notice.html").render(
        n=view(notice, c.lifecycle.policy.tz), party_url=party_url, images=images, pdf=pdf,
        links=links or {},
    )  # fmt: skip


class _LocalOnly(URLFetcher):
    """WeasyPrint fetches the embedded images and the font, nothing else: no network."""

    def fetch(self, url: str, headers: Any = None) -> URLFetcherResponse:
        if url.startswith("data:") or url == FONT_URL:
            return super().fetch(url, headers)
        raise ValueError(f"not fetched: {url[:80]}")


def render_pdf(html: str | Sequence[str], sealer: Sealer | None = None) -> bytes:
    """The PDF of a document's HTML (several: one PDF of their pages, in order), signed by
    ``sealer`` when given. Blocking (layout, fonts, signing): call it in a thread."""
    fetcher = _LocalOnly()
    css = (HERE / "static" / "notice.css").read_text(encoding="utf-8") + FONT_FACE
    sheets = [CSS(string=css, url_fetcher=fetcher)]
    docs = [HTML(string=h, url_fetcher=fetcher).render(stylesheets=sheets)
            for h in ([html] if isinstance(html, str) else html)]  # fmt: skip
    pdf = docs[0].copy([page for d in docs for page in d.pages]).write_pdf()
    assert pdf is not None  # write_pdf without a target returns the bytes
    return sealer.sign(pdf) if sealer is not None else pdf


def data_uris(found: list[tuple[str, bytes | None]]) -> list[tuple[str, str | None]]:
    return [(name, None if data is None else
             "data:image/jpeg;base64," + base64.b64encode(data).decode()) for name, data in found]  # fmt: skip


async def notice_pdf(
    c: Console, notice: Notice, found: list[tuple[str, bytes | None]] | None = None
) -> bytes:
    """The notice's PDF, its images embedded, signed with the agency's key when it has one."""
    if found is None:
        found = await asyncio.to_thread(checked_images, c, notice)
    party_url = c.public_url.rstrip("/") + PARTY_PATH
    html = notice_html(c, notice, party_url, data_uris(found), pdf=True)
    return await asyncio.to_thread(render_pdf, html, c.sealer)


async def notice_response(
    c: Console,
    request: Request,
    notice: Notice,
    actor: str,
    *,
    pdf: bool,
    image_url: Callable[[str], str],
    links: Mapping[str, str] | None = None,
    record: bool = True,
) -> Response:
    """The notice as HTML or PDF, recorded in the case's custody log (viewed, or exported for
    the PDF) by ``actor`` first: a notice whose viewing cannot be recorded is not shown.
    ``record`` False: the caller recorded the view (the party's, once a day)."""
    # the custody log's own words: the PDF leaves the system (exported), the page is a view
    if record:
        await c.lifecycle.record(notice.case_id, "exported" if pdf else "viewed", actor,
                                 "notice pdf" if pdf else "notice")  # fmt: skip
    # the agency's address, never the Host header: a notice is printed and handed out
    party_url = c.public_url.rstrip("/") + PARTY_PATH
    found = await asyncio.to_thread(checked_images, c, notice)
    if not pdf:
        srcs = [(name, image_url(name) if data is not None else None) for name, data in found]
        return HTMLResponse(notice_html(c, notice, party_url, srcs, pdf=False, links=links))
    body = await notice_pdf(c, notice, found)
    return Response(body, media_type="application/pdf", headers={
        "content-disposition": f'attachment; filename="notice-{notice.case_id}.pdf"'})  # fmt: skip


def notice_routes(c: Console, page: Page) -> list[Route]:
    """``/cases/{id}/notice`` and ``/cases/{id}/notice.pdf``, for those who may see the case."""

    async def show(request: Request, session: Session, pdf: bool) -> Response:
        cid = request.path_params["case_id"]
        notice = await load_notice(c, cid)
        if notice is None:
            return render("error.html", 404, session=session, title="没有违法行为通知书",
                          message="本案尚未送达违法行为通知书。")  # fmt: skip
        try:
            return await notice_response(
                c, request, notice, session.actor, pdf=pdf,
                image_url=lambda name: f"/cases/{cid}/images/{name}",
                links={"pdf": f"/cases/{cid}/notice.pdf", "back": f"/cases/{cid}"},
            )  # fmt: skip
        except CustodyError as exc:
            return render("error.html", 409, session=session, title="证据保全异常",
                          message=exc.message)  # fmt: skip

    async def html(request: Request, session: Session) -> Response:
        return await show(request, session, pdf=False)

    async def pdf(request: Request, session: Session) -> Response:
        return await show(request, session, pdf=True)

    return [Route("/cases/{case_id}/notice", page(CASE_VIEWERS, html)),
            Route("/cases/{case_id}/notice.pdf", page(CASE_VIEWERS, pdf))]  # fmt: skip
