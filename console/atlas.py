"""The command center's map and its 研判 page (issue #30 items 6 and 7).

``/map``: the agency's roads and waterways (``configs/map.geojson``) drawn by Leaflet, shipped in
``static/leaflet/`` (nothing is loaded from elsewhere: no tile server), with the sites, the
waterway checkpoints and the open tasks over them. ``/analysis``: the vehicles and operators that
come back — repeat offenders, cloned plates, repeated illegal operation, passes flagged for
evading the weighing, vessels with several cases — each with its history.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sinks.accounts import ADMIN, COMMAND_CENTER, SQUAD_LEADER, Session

from .command import Page, _devices, _place_names
from .pages import Console, render

VIEWERS = frozenset({COMMAND_CENTER, ADMIN, SQUAD_LEADER})
DAYS = 90  # the 研判 page looks back this far, by default
# the device flags and checks that say a vehicle tried to pass the weighing unweighed
# (detectors/stage.py ``_evasion``), as officers name them
EVASION = {
    "flag:straddle": "骑线行驶", "flag:lane_change": "称重时变道", "flag:acceleration": "称重时急加减速",
    "flag:off_scale": "未完全驶上秤台", "flag:tailgating": "跟车过近", "tailgating": "跟车过近",
    "speed": "车速超出设备检定范围",
}  # fmt: skip


def map_data(c: Console, tasks: Iterable[Any]) -> dict[str, Any]:
    """What the map draws: the GeoJSON, the places (sites, checkpoints) and the open tasks at
    their places; coordinates as [lat, lon] for Leaflet."""
    today = c.now().astimezone(c.lifecycle.policy.tz).date()
    trouble = {d.site_id for d in _devices(c, {}, today) if d.trouble}
    places = []
    if c.registry is not None:
        places += [{"id": s.id, "name": s.name, "kind": "site", "at": [s.lat, s.lon],
                    "trouble": s.id in trouble} for s in c.registry.sites]  # fmt: skip
    if c.waterways is not None:
        places += [{"id": p.id, "name": p.name, "kind": "checkpoint", "at": [p.lat, p.lon],
                    "trouble": False} for p in c.waterways.checkpoints]  # fmt: skip
    where = {p["id"]: p for p in places}
    out_tasks = [{"id": t["task_id"], "site": t["site_id"], "at": where[t["site_id"]]["at"],
                  "overdue": bool(t["overdue"]), "kind": t["kind"], "squad": t["squad_id"]}
                 for t in tasks if t["site_id"] in where]  # fmt: skip
    return {"geojson": c.geojson or {"type": "FeatureCollection", "features": []},
            "places": places, "tasks": out_tasks}  # fmt: skip


@dataclass
class Repeat:
    """One vehicle (or vessel) that comes back, and its history, newest first."""

    key: str  # the plate, or the vessel's MMSI
    label: str
    count: int
    last: dt.datetime
    kinds: list[str]  # Chinese
    history: list[Any] = field(default_factory=list)


def _repeats(rows: Iterable[Any], label: Any, kind: Any, least: int) -> list[Repeat]:
    by: dict[str, list[Any]] = {}
    for r in rows:
        by.setdefault(r["key"], []).append(r)
    out = []
    for key, items in by.items():
        if len(items) >= least:
            items.sort(key=lambda r: (r["ts"], r["id"]), reverse=True)
            kinds = list(dict.fromkeys(kind(r) for r in items))
            out.append(Repeat(key, label(items[0]), len(items), items[0]["ts"], kinds, items))
    return sorted(out, key=lambda r: (-r.count, r.key))


def evasion_kinds(reasons: Iterable[str]) -> list[str]:
    """The evasion a detection's reasons name, in Chinese (none: not flagged)."""
    out = []
    for r in reasons:
        head = r.split(":", 2)
        key = ":".join(head[:2]) if r.startswith("flag:") else head[0].split(" ")[0]
        if key in EVASION:
            out.append(EVASION[key])
    return list(dict.fromkeys(out))


def atlas_routes(c: Console, page: Page) -> list[Route]:
    async def map_page(request: Request, session: Session) -> Response:
        tasks = await c.pool.fetch(
            "SELECT task_id, site_id, kind, squad_id, due_at < $1 AS overdue FROM tasks"
            " WHERE status = 'open' ORDER BY due_at, task_id", c.now())  # fmt: skip
        data = map_data(c, tasks)
        return render("map.html", session=session, data=data,
                      places=data["places"], tasks=data["tasks"], title="地图")  # fmt: skip

    async def analysis(request: Request, session: Session) -> Response:
        try:
            days = max(1, min(int(request.query_params.get("days") or DAYS), 3660))
        except ValueError:
            days = DAYS
        since = c.now() - dt.timedelta(days=days)
        names = _place_names(c)
        cases = await c.pool.fetch(
            "SELECT case_id AS id, plate AS key, plate_color, ts, site_id, violation_code, status,"
            " violation->'detection'->'reasons' AS reasons FROM cases WHERE plate IS NOT NULL"
            " AND violation_code NOT LIKE 'water.%' AND ts >= $1", since)  # fmt: skip
        vessels = await c.pool.fetch(
            "SELECT case_id AS id, violation->'detection'->>'mmsi' AS key, ts, site_id,"
            " violation_code, status, coalesce(violation->'detection'->>'vessel_name',"
            " violation->'detection'->>'ais_name') AS vessel FROM cases WHERE violation_code"
            " LIKE 'water.%' AND violation->'detection'->>'mmsi' IS NOT NULL AND ts >= $1", since)  # fmt: skip
        leads = await c.pool.fetch(
            "SELECT lead_id AS id, plate AS key, kind, ts, site_id, status, lead->'sightings'"
            " AS sightings FROM leads WHERE plate IS NOT NULL AND ts >= $1", since)  # fmt: skip
        from .names import name

        flagged = [
            dict(r) | {"evasion": evasion_kinds(json.loads(r["reasons"] or "[]"))} for r in cases
        ]
        return render(
            "analysis.html", session=session, days=days, names=names,
            repeat=_repeats(cases, lambda r: r["key"], lambda r: name("violation", r["violation_code"]), 2),
            cloned=_repeats([r for r in leads if r["kind"] == "cloned_plate"], lambda r: r["key"],
                            lambda r: names.get(r["site_id"], r["site_id"]), 1),
            operators=_repeats([r for r in leads if r["kind"] == "illegal_operation"],
                               lambda r: r["key"], lambda r: names.get(r["site_id"], r["site_id"]), 1),
            evasion=_repeats([r for r in flagged if r["evasion"]], lambda r: r["key"],
                             lambda r: "、".join(r["evasion"]), 1),
            vessels=_repeats(vessels, lambda r: r["vessel"] or f"MMSI {r['key']}",
                             lambda r: name("violation", r["violation_code"]), 2),
            title="研判",
        )  # fmt: skip

    return [Route("/map", page(VIEWERS, map_page)), Route("/analysis", page(VIEWERS, analysis))]
