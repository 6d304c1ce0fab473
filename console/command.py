"""The command center (指挥中心): live alerts, today's cases, cases per day by violation, each
site's confirmation rate over time, the devices and their certificates, and a map of the sites.

Each panel is one query over the case store (indexes in migration 018). The charts and the map
are inline SVG laid out here on the server: nothing is loaded from elsewhere and no script is
needed; ``static/console.js`` only adds the live alerts.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
import asyncpg
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from events import CalibrationCertificate
from events.water import CHANNEL
from sinks.accounts import ADMIN, COMMAND_CENTER, Session

from .names import CERT_STATES, DEVICE_TYPES, VIOLATIONS
from .pages import OUTCOMES, Console, Handler, render

PALETTE = ("#0b5cad", "#d9822b", "#2e8540", "#a4161a", "#6f42c1", "#0f8b8d", "#8a6d3b", "#5a6675")
REVIEW_ACTIONS = ["confirm", "reject", "transfer"]  # a case's first of these is its review
DAYS = 14  # the chart's days, by default
WEEKS = 8  # the confirmation rates' weeks
EXPIRING_DAYS = 30  # a certificate this close to its end is shown amber
MIN_REVIEWED = 10  # fewer reviews than this are never flagged: too few to tell
ROLES = frozenset({COMMAND_CENTER, ADMIN})

Page = Callable[[Iterable[str], Handler], Callable[[Request], Awaitable[Response]]]


def violation_name(code: str) -> str:
    return VIOLATIONS[code]


# --- geometry ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Projection:
    """Equirectangular map projection fitted to a bounding box: x = lon·cos(φ₀), y = lat, scaled
    alike on both axes (shapes are kept) and centred in ``width`` × ``height`` less ``pad``."""

    width: float
    height: float
    kx: float  # cos(φ₀): a degree of longitude is this many degrees of latitude long
    cx: float  # the box's centre, projected
    cy: float
    scale: float  # pixels per projected degree

    @classmethod
    def fit(
        cls, points: Sequence[tuple[float, float]], width: float, height: float, pad: float
    ) -> Projection:
        """Fitted to ``points`` as (lat, lon); one point (or none) lands in the centre."""
        lats = [p[0] for p in points] or [0.0]
        kx = math.cos(math.radians((min(lats) + max(lats)) / 2))
        xs = [p[1] * kx for p in points] or [0.0]
        span_x, span_y = max(xs) - min(xs), max(lats) - min(lats)
        fits = [(width - 2 * pad) / span_x if span_x else math.inf,
                (height - 2 * pad) / span_y if span_y else math.inf]  # fmt: skip
        scale = min(fits) if min(fits) < math.inf else 1.0
        return cls(width, height, kx, (min(xs) + max(xs)) / 2, (min(lats) + max(lats)) / 2, scale)

    def __call__(self, lat: float, lon: float) -> tuple[float, float]:
        x = self.width / 2 + (lon * self.kx - self.cx) * self.scale
        y = self.height / 2 - (lat - self.cy) * self.scale  # north is up
        return round(x, 1), round(y, 1)


def axis_step(top: int, ticks: int = 4) -> int:
    """A round step (1, 2, 5 × 10ⁿ) that divides ``0..top`` into at most ``ticks`` parts."""
    raw = max(top, 1) / ticks
    power = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    return next(int(m * power) for m in (1, 2, 5, 10) if m * power >= raw)


@dataclass(frozen=True)
class Segment:
    code: str
    n: int
    y: float
    h: float
    color: str


@dataclass(frozen=True)
class Bar:
    day: dt.date
    x: float  # left edge
    w: float
    total: int
    segments: list[Segment]


@dataclass(frozen=True)
class Chart:
    """A stacked bar chart: one bar a day, one segment per violation code, bottom up."""

    width: int
    height: int
    left: float
    base: float  # the y of zero
    right: float
    bars: list[Bar]
    ticks: list[tuple[int, float]]  # (value, y)
    legend: list[tuple[str, str, str]]  # (code, name, colour)


def stacked_bars(
    days: Sequence[dt.date],
    counts: Mapping[tuple[dt.date, str], int],
    codes: Sequence[str],
    width: int = 720,
    height: int = 240,
) -> Chart:
    left, right, top, bottom = 36.0, width - 8.0, 12.0, height - 28.0
    totals = [sum(counts.get((d, c), 0) for c in codes) for d in days]
    step = axis_step(max(totals, default=0))
    ymax = step * max(1, math.ceil(max(totals, default=0) / step))
    per = (bottom - top) / ymax
    colors = {c: PALETTE[i % len(PALETTE)] for i, c in enumerate(codes)}
    slot = (right - left) / max(len(days), 1)
    bars = []
    for i, (day, total) in enumerate(zip(days, totals, strict=True)):
        y, segments = bottom, []
        for c in codes:
            n = counts.get((day, c), 0)
            if n:
                y -= n * per
                segments.append(Segment(c, n, round(y, 1), round(n * per, 1), colors[c]))
        bars.append(Bar(day, round(left + i * slot + slot * 0.15, 1), round(slot * 0.7, 1),
                        total, segments))  # fmt: skip
    ticks = [(v, round(bottom - v * per, 1)) for v in range(0, ymax + 1, step)]
    legend = [(c, violation_name(c), colors[c]) for c in codes]
    return Chart(width, height, left, bottom, right, bars, ticks, legend)


# --- confirmation rates ------------------------------------------------------------------------


@dataclass(frozen=True)
class Rate:
    confirmed: int = 0
    reviewed: int = 0

    @property
    def value(self) -> float | None:
        return self.confirmed / self.reviewed if self.reviewed else None

    def __add__(self, other: Rate) -> Rate:
        return Rate(self.confirmed + other.confirmed, self.reviewed + other.reviewed)


def wilson_upper(k: int, n: int, z: float = 1.96) -> float:
    """The upper end of the Wilson score interval (95 %) of a rate of ``k`` in ``n``."""
    if n == 0:
        return 1.0
    p = k / n
    centre = p + z * z / (2 * n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return min(1.0, (centre + half) / (1 + z * z / n))


def low_sites(totals: Mapping[str, Rate]) -> set[str]:
    """The sites whose confirmation rate is well below the other sites' together: even the top
    of its 95 % interval is under theirs. A site with fewer than ``MIN_REVIEWED`` reviews, or
    with no other site to compare to, is never flagged."""
    everyone = sum(totals.values(), Rate())
    out = set()
    for site, r in totals.items():
        others = Rate(everyone.confirmed - r.confirmed, everyone.reviewed - r.reviewed)
        if r.reviewed < MIN_REVIEWED or others.value is None:
            continue
        if wilson_upper(r.confirmed, r.reviewed) < others.value:
            out.add(site)
    return out


@dataclass(frozen=True)
class RateBar:
    week: dt.date
    rate: Rate
    x: float
    w: float
    y: float
    h: float


@dataclass
class SiteRates:
    site_id: str
    name: str
    total: Rate
    others: Rate
    flagged: bool
    bars: list[RateBar] = field(default_factory=list)
    others_y: float | None = None  # the others' rate as a line across the small chart


RATE_W, RATE_H, RATE_TOP, RATE_BASE = 260, 96, 8.0, 72.0


def rate_bars(weeks: Sequence[dt.date], rates: Mapping[dt.date, Rate]) -> list[RateBar]:
    """One bar a week, its height the rate (0–100 %); a week without reviews has no bar."""
    slot = (RATE_W - 8) / max(len(weeks), 1)
    out = []
    for i, week in enumerate(weeks):
        r = rates.get(week, Rate())
        h = (r.value or 0.0) * (RATE_BASE - RATE_TOP)
        out.append(RateBar(week, r, round(4 + i * slot + slot * 0.15, 1), round(slot * 0.7, 1),
                           round(RATE_BASE - h, 1), round(h, 1)))  # fmt: skip
    return out


# --- devices and the map -----------------------------------------------------------------------


@dataclass(frozen=True)
class DeviceRow:
    device_id: str
    type: str  # Chinese
    site_id: str
    site_name: str
    received: dt.datetime | None
    skew_s: float | None
    active: dict[str, str]
    certificate: CalibrationCertificate | None
    days_left: int | None  # of its certificate, from today (negative: expired)
    cert_state: str  # a key of CERT_STATES

    @property
    def trouble(self) -> bool:
        return bool(self.active) or self.cert_state in ("expired", "not_yet")


def certificate_state(
    cert: CalibrationCertificate | None, today: dt.date
) -> tuple[str, int | None]:
    if cert is None:
        return "none", None
    left = (cert.valid_until - today).days
    if left < 0:
        return "expired", left
    if cert.valid_from > today:
        return "not_yet", left
    return ("expiring" if left <= EXPIRING_DAYS else "valid"), left


@dataclass(frozen=True)
class Marker:
    id: str
    name: str
    kind: str  # site | checkpoint
    lat: float
    lon: float
    x: float
    y: float
    r: float
    cases_today: int
    level: str  # none | some | many: how many cases today
    trouble: bool  # a device of it has a condition or no valid certificate


MAP_W, MAP_H, MAP_PAD = 640, 420, 48


def markers(
    places: Sequence[tuple[str, str, str, float, float]],
    today: Mapping[str, int],
    trouble: set[str],
    extra: Sequence[tuple[float, float]] = (),
) -> tuple[list[Marker], Projection]:
    """``places`` as (id, name, kind, lat, lon), placed on a map fitted to them and ``extra``
    points (lat, lon); a marker grows with the place's cases today."""
    proj = Projection.fit([(p[3], p[4]) for p in places] + list(extra), MAP_W, MAP_H, MAP_PAD)
    out = []
    for pid, name, kind, lat, lon in places:
        n = today.get(pid, 0)
        x, y = proj(lat, lon)
        level = "none" if n == 0 else "some" if n < 10 else "many"
        out.append(Marker(pid, name, kind, lat, lon, x, y, round(7 + min(9.0, 2 * math.sqrt(n)), 1),
                          n, level, pid in trouble))  # fmt: skip
    return out, proj


# --- the page ----------------------------------------------------------------------------------


def _days_param(q: Any) -> int:
    try:
        return max(1, min(int(q.get("days") or DAYS), 92))
    except ValueError:
        return DAYS


def _order(codes: Iterable[str]) -> list[str]:
    known = list(VIOLATIONS)
    return sorted(set(codes), key=lambda c: (known.index(c) if c in known else len(known), c))


async def command_page(c: Console, request: Request, session: Session) -> Response:
    tz = c.lifecycle.policy.tz
    offset = tz.utcoffset(None)
    today = c.now().astimezone(tz).date()
    midnight = dt.datetime.combine(today, dt.time(), tz)
    ndays = _days_param(request.query_params)
    days = [today - dt.timedelta(days=ndays - 1 - i) for i in range(ndays)]
    first = dt.datetime.combine(days[0], dt.time(), tz)
    monday = today - dt.timedelta(days=today.weekday())
    weeks = [monday - dt.timedelta(weeks=WEEKS - 1 - i) for i in range(WEEKS)]
    since = dt.datetime.combine(weeks[0], dt.time(), tz)
    pool = c.pool

    by_day = await pool.fetch(
        "SELECT (ts AT TIME ZONE $3::interval)::date AS day, violation_code, site_id,"
        " count(*) AS n FROM cases WHERE ts >= $1 AND ts < $2 GROUP BY 1, 2, 3",
        first, midnight + dt.timedelta(days=1), offset,
    )  # fmt: skip
    # a case's review is its first confirm, reject or transfer (a reopened case keeps it)
    reviews = await pool.fetch(
        "SELECT c.site_id, date_trunc('week', t.at AT TIME ZONE $2::interval)::date AS week,"
        " count(*) AS reviewed, count(*) FILTER (WHERE t.action = 'confirm') AS confirmed"
        " FROM case_transitions t JOIN cases c USING (case_id)"
        " WHERE t.action = ANY($3) AND t.at >= $1 AND NOT EXISTS (SELECT 1 FROM case_transitions e"
        "  WHERE e.case_id = t.case_id AND e.action = ANY($3) AND e.transition_id < t.transition_id)"
        " GROUP BY 1, 2",
        since, offset, REVIEW_ACTIONS,
    )  # fmt: skip
    recent = await pool.fetch(
        "SELECT case_id, ts, site_id, plate, violation_code, outcome, fine_cny FROM cases"
        " ORDER BY created_at DESC, case_id LIMIT 20"
    )
    health = {r["device_id"]: r for r in await pool.fetch("SELECT * FROM device_health")}

    # 1. today, and the chart of the days before
    counts: dict[tuple[dt.date, str], int] = {}
    today_rows: dict[tuple[str, str], int] = {}
    for r in by_day:
        key = (r["day"], r["violation_code"])
        counts[key] = counts.get(key, 0) + r["n"]
        if r["day"] == today:
            today_rows[(r["site_id"], r["violation_code"])] = r["n"]
    today_by_site: dict[str, int] = {}
    today_by_code: dict[str, int] = {}
    for (site, code), n in today_rows.items():
        today_by_site[site] = today_by_site.get(site, 0) + n
        today_by_code[code] = today_by_code.get(code, 0) + n
    chart = stacked_bars(days, counts, _order(code for _, code in counts))

    # 2. the devices, the registry's first, then any other that has sent a message
    names = _place_names(c)
    devices = _devices(c, health, today)
    trouble = {d.site_id for d in devices if d.trouble}

    # 3. confirmation rates by site and week
    weekly: dict[str, dict[dt.date, Rate]] = {}
    for r in reviews:
        weekly.setdefault(r["site_id"], {})[r["week"]] = Rate(r["confirmed"], r["reviewed"])
    totals = {s: sum(w.values(), Rate()) for s, w in weekly.items()}
    flagged = low_sites(totals)
    everyone = sum(totals.values(), Rate())
    rates = []
    for site in sorted(weekly):
        others = Rate(everyone.confirmed - totals[site].confirmed,
                      everyone.reviewed - totals[site].reviewed)  # fmt: skip
        ov = others.value
        rates.append(SiteRates(site, names.get(site, site), totals[site], others, site in flagged,
                               rate_bars(weeks, weekly[site]),
                               None if ov is None else round(RATE_BASE - ov * (RATE_BASE - RATE_TOP), 1)))  # fmt: skip

    # 4. the map
    places: list[tuple[str, str, str, float, float]] = []
    channel: list[tuple[float, float]] = []
    if c.registry is not None:
        places += [(s.id, s.name, "site", s.lat, s.lon) for s in c.registry.sites]
    if c.waterways is not None:
        places += [(p.id, p.name, "checkpoint", p.lat, p.lon) for p in c.waterways.checkpoints]
        channel = [(lat, lon) for lon, lat in c.waterways.channel]
    marks, proj = markers(places, today_by_site, trouble, channel)
    channel_path = " ".join("{},{}".format(*proj(lat, lon)) for lat, lon in channel)

    return render(
        "command.html", session=session, recent=recent, today=today, days=ndays,
        today_rows=sorted(today_rows.items()), today_by_site=sorted(today_by_site.items()),
        today_by_code=[(c_, today_by_code[c_]) for c_ in _order(today_by_code)],
        chart=chart, counts=counts, rates=rates, weeks=weeks, devices=devices, markers=marks,
        channel=channel_path, names=names, VIOLATIONS=VIOLATIONS, CERT_STATES=CERT_STATES,
        violation_name=violation_name, MAP=(MAP_W, MAP_H), RATE=(RATE_W, RATE_H, RATE_BASE),
        MIN_REVIEWED=MIN_REVIEWED, title="指挥中心",
    )  # fmt: skip


def _place_names(c: Console) -> dict[str, str]:
    """Every registered place by its Chinese name, a road site with its stake (桩号) unless its
    name gives it: what a page shows instead of the id."""
    names = {s.id: _with_stake(s.name, s.km) for s in c.registry.sites} if c.registry else {}
    names.update(_water_places(c))
    if c.waterways is not None:  # a finding along the whole channel, at no one place
        names[CHANNEL] = c.waterways.channel_name
    return names


def _water_places(c: Console) -> list[tuple[str, str]]:
    """The waterways' checkpoints, monitored and controlled sections and no-dredging zones,
    (id, name)."""
    w = c.waterways
    if w is None:
        return []
    groups: tuple[Sequence[Any], ...] = (w.checkpoints, w.sections, w.controlled_sections,
                                         w.no_dredging_zones)  # fmt: skip
    return [(p.id, p.name) for g in groups for p in g]


def _with_stake(name: str, km: float | None) -> str:
    if km is None:
        return name
    stake = f"K{int(km)}+{round((km - int(km)) * 1000):03d}"
    return name if f"K{int(km)}" in name else f"{name}（{stake}）"


def _devices(c: Console, health: Mapping[str, Any], today: dt.date) -> list[DeviceRow]:
    listed: list[tuple[str, str, str, CalibrationCertificate | None]] = []  # id, type, site, cert
    if c.registry is not None:
        site_of = {d: s.id for s in c.registry.sites for d in s.devices}
        listed += [(d.id, d.type, site_of.get(d.id, ""), d.certificate) for d in c.registry.devices]
    if c.waterways is not None:
        listed += [(p.camera_id, "vessel_camera", p.id, None) for p in c.waterways.checkpoints]
        listed += [(r.id, "ais_receiver", "", None) for r in c.waterways.receivers]
    seen = {d[0] for d in listed}
    listed += [(d, "", "", None) for d in sorted(health) if d not in seen]
    names = _place_names(c)
    out = []
    for device_id, kind, site, cert in listed:
        h = health.get(device_id)
        state, left = certificate_state(cert, today)
        out.append(DeviceRow(
            device_id, DEVICE_TYPES[kind] if kind else "—", site, names.get(site, site),
            h["received"] if h else None, h["skew_s"] if h else None,
            json.loads(h["active"]) if h else {}, cert, left, state,
        ))  # fmt: skip
    return out


async def command_events(c: Console, request: Request, session: Session) -> Response:
    return StreamingResponse(alerts(c, request), media_type="text/event-stream",
                             headers={"x-accel-buffering": "no"})  # fmt: skip


async def alerts(c: Console, request: Request) -> AsyncIterator[bytes]:
    """Server-sent events: one ``case`` event per new case, as the store announces it
    (``NOTIFY offsite_cases``, migration 017)."""

    names = _place_names(c)

    async def to_events(payload: str) -> AsyncIterator[bytes]:
        note = json.loads(payload)
        rows = await c.pool.fetch(
            "SELECT case_id, ts, site_id, plate, violation_code, outcome, fine_cny"
            " FROM cases WHERE case_id = ANY($1) ORDER BY ts, case_id",
            note["case_ids"],
        )
        for r in rows:
            alert = {"case_id": r["case_id"], "ts": r["ts"].isoformat(),
                     "site_id": r["site_id"], "site": names.get(r["site_id"], r["site_id"]),
                     "plate": r["plate"],
                     "violation_code": r["violation_code"],
                     "violation": violation_name(r["violation_code"]),
                     "outcome": OUTCOMES.get(r["outcome"], r["outcome"]),
                     "fine_cny": r["fine_cny"]}  # fmt: skip
            data = json.dumps(alert, ensure_ascii=False)
            yield f"event: case\nid: {r['case_id']}\ndata: {data}\n\n".encode()

    async for chunk in listen(c, request, "offsite_cases", to_events):
        yield chunk


async def listen(
    c: Console,
    request: Request,
    channel: str,
    to_events: Callable[[str], AsyncIterator[bytes]],
    idle: Callable[[], Awaitable[object]] | None = None,
) -> AsyncIterator[bytes]:
    """Server-sent events from the store's notifications on ``channel``, each payload turned
    into events by ``to_events``; a comment every 15 s keeps proxies open, and ``idle`` runs
    then (and once at the start)."""
    queue: asyncio.Queue[str] = asyncio.Queue(maxsize=1000)

    def heard(_conn: Any, _pid: int, _channel: str, payload: str) -> None:
        if not queue.full():
            queue.put_nowait(payload)

    conn: asyncpg.Connection = await c.pool.acquire()
    try:
        await conn.add_listener(channel, heard)
        yield b"retry: 2000\n: listening\n\n"
        if idle is not None:
            await idle()
        while not await request.is_disconnected():
            try:
                payload = await asyncio.wait_for(queue.get(), timeout=15)
            except TimeoutError:
                yield b": keep-alive\n\n"
                if idle is not None:
                    await idle()
                continue
            async for chunk in to_events(payload):
                yield chunk
    finally:
        # the client left (the response is cancelled, and anyio cancels every await in it):
        # the connection goes back to the pool all the same
        with anyio.CancelScope(shield=True):
            await conn.remove_listener(channel, heard)
            await c.pool.release(conn)


def command_routes(c: Console, page: Page) -> list[Route]:
    """``/command`` and its live feed ``/command/events``, for the command center and admins."""

    async def page_handler(request: Request, session: Session) -> Response:
        return await command_page(c, request, session)

    async def events_handler(request: Request, session: Session) -> Response:
        return await command_events(c, request, session)

    return [Route("/command", page(ROLES, page_handler)),
            Route("/command/events", page(ROLES, events_handler))]  # fmt: skip
