"""Dispatch in the console (issue #30): the command center hands leads, alerts, device faults and
cases to squads (``/dispatch``), each squad's queue (``/tasks``), the field officers' phone page
(``/field``), the figures (leads raised, dispatched, done in time, the share of cases from leads),
and the live feed of task changes (``/dispatch/events``). Tasks change only through
:class:`sinks.dispatch.Dispatch`; the pages render.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from pydantic import ValidationError
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from sinks.accounts import ADMIN, COMMAND_CENTER, FIELD_OFFICER, SQUAD_LEADER, Session
from sinks.dispatch import Dispatch, DispatchError, Squad, Squads, as_photos, figures

from .command import Page, _place_names, _water_places, listen
from .names import PRIORITIES, SOURCE_KINDS, TASK_RESULTS, UNNAMED, name
from .pages import Console, _env, render, repeating
from .party import KINDS, MAX_IMAGE_BYTES, read_attachments

COMMANDERS = frozenset({COMMAND_CENTER, ADMIN})
LEADERS = frozenset({SQUAD_LEADER, COMMAND_CENTER, ADMIN})
FIELD = frozenset({FIELD_OFFICER, SQUAD_LEADER})
log = logging.getLogger("offsite.console")
MAX_PHOTOS = 4
MAX_FIELD_REQUEST = MAX_PHOTOS * MAX_IMAGE_BYTES + 64 * 1024
TASK_COLUMNS = (
    "t.*, l.plate, l.score, coalesce(l.lead->'reasons', '[]'::jsonb) AS reasons,"
    " (t.status = 'open' AND t.due_at < $1) AS overdue"
)


def dispatch_of(c: Console) -> Dispatch:
    if c.dispatch is None:
        c.dispatch = Dispatch(c.pool, c.squads or Squads(squads=[]), c.now)
    return c.dispatch


def sweeping(c: Console) -> contextlib.AbstractAsyncContextManager[None]:
    """The console's background job while it serves: the rules' dispatch and the escalation of
    overdue tasks every ``c.sweep_s`` seconds, whether or not a page is open (None: no job).
    Several consoles on one database each run it; the sweep's lock makes one round at a time."""
    d = dispatch_of(c)

    async def sweep() -> str | None:
        done = await d.sweep()
        if done and (done[0] or done[1]):
            return f"{len(done[0])} tasks by the rules, {len(done[1])} escalated"
        return None

    return repeating("dispatch", c.sweep_s, sweep)


def _squads(c: Console) -> Squads:
    return c.squads or Squads(squads=[])


async def _tasks(c: Console, where: str, *args: Any) -> list[Any]:
    return list(await c.pool.fetch(
        f"SELECT {TASK_COLUMNS} FROM tasks t LEFT JOIN leads l ON t.source_kind = 'lead'"
        f" AND l.lead_id = t.source_id WHERE {where}"
        " ORDER BY (t.status = 'open') DESC, t.due_at, t.task_id LIMIT 500", c.now(), *args))  # fmt: skip


def _period(q: Any, c: Console) -> tuple[dt.date, dt.date]:
    """The figures' period from ``start``/``end`` (local dates, end inclusive): default, this
    month to today."""
    today = c.now().astimezone(_squads(c).tz).date()
    try:
        start = dt.date.fromisoformat(str(q.get("start") or ""))
    except ValueError:
        start = today.replace(day=1)
    try:
        end = dt.date.fromisoformat(str(q.get("end") or ""))
    except ValueError:
        end = today
    return start, max(start, end)


def dispatch_routes(c: Console, page: Page) -> list[Route]:
    d = dispatch_of(c)
    tz = c.lifecycle.policy.tz

    def squad_name(squad_id: str) -> str:
        squad = d.squads.squad(squad_id)  # as the last request read them (Dispatch.roster)
        return squad.name if squad else f"{UNNAMED}（{squad_id}）"

    places = _place_names(c)
    _env.globals.update(TASK_RESULTS=TASK_RESULTS, SOURCE_KINDS=SOURCE_KINDS,
                        PRIORITIES=PRIORITIES, squad_name=squad_name,
                        place_name=lambda p: places.get(p, p))  # fmt: skip
    _env.filters["isolocal"] = lambda s: _local(dt.datetime.fromisoformat(s), tz)

    async def board(
        request: Request, session: Session, error: str = "", status: int = 200
    ) -> Response:
        await d.sweep()
        squads = d.squads
        q = request.query_params
        leads = await c.pool.fetch(
            "SELECT lead_id, kind, plate, site_id, ts, score, lead->'reasons' AS reasons FROM leads"
            " WHERE status = 'pending_review' ORDER BY ts DESC, lead_id LIMIT 200")  # fmt: skip
        alerts = await c.pool.fetch(
            "SELECT c.case_id, c.ts, c.site_id, c.plate, c.violation_code FROM cases c WHERE"
            " NOT EXISTS (SELECT 1 FROM tasks t WHERE t.source_kind IN ('alert', 'case') AND"
            " t.source_id = c.case_id AND t.status <> 'cancelled')"
            " ORDER BY c.created_at DESC, c.case_id LIMIT 20")  # fmt: skip
        faults = [(r["device_id"], json.loads(r["active"])) for r in await c.pool.fetch(
            "SELECT device_id, active FROM device_health WHERE active::text <> '{}'"
            " ORDER BY device_id")]  # fmt: skip
        start, end = _period(q, c)
        rows, cases = await figures(c.pool, squads, *_bounds(start, end, squads.tz))
        return render("dispatch.html", status, session=session, leads=leads, alerts=alerts,
                      faults=faults, tasks=await _tasks(c, "true"), squads=squads,
                      names=places, figures=rows, cases=cases, start=start, end=end,
                      error=error, title="任务派发")  # fmt: skip

    async def board_page(request: Request, session: Session) -> Response:
        return await board(request, session)

    async def new_task(request: Request, session: Session) -> Response:
        form = await request.form()
        try:
            hours = float(str(form.get("hours") or d.base.default_hours))
            if not 0 < hours <= 24 * 90:
                raise ValueError(hours)
        except ValueError:
            return await board(request, session, "期限无效：请填写 0 到 2160 之间的小时数。", 400)
        try:
            await d.create(
                str(form.get("source_kind") or ""), str(form.get("source_id") or "")[:200],
                str(form.get("squad_id") or "") or None, session.actor,
                priority=str(form.get("priority") or "normal"), hours=hours,  # type: ignore[arg-type]
                working=bool(form.get("working")), instructions=str(form.get("instructions") or ""),
            )  # fmt: skip
        except DispatchError as exc:
            return await board(request, session, exc.message, 409)
        return RedirectResponse("/dispatch", 303)

    async def squad_queue(request: Request, session: Session) -> Response:
        await d.sweep()
        squads = d.squads
        mine = [s.id for s in squads.squads_of(session.actor)]
        if session.roles & COMMANDERS:
            mine = [s.id for s in squads.squads]
        tasks = await _tasks(c, "t.squad_id = ANY($2)", mine)
        return render("tasks.html", session=session, tasks=tasks, squads=squads,
                      names=places, title="中队任务")  # fmt: skip

    async def field_list(request: Request, session: Session) -> Response:
        squads = await d.roster()
        mine = [s.id for s in squads.squads_of(session.actor)]
        tasks = await _tasks(c, "t.squad_id = ANY($2) AND t.status = 'open'", mine)
        return render("field.html", session=session, tasks=tasks, squads=squads,
                      names=places, title="外勤任务")  # fmt: skip

    async def field_task(
        request: Request, session: Session, error: str = "", status: int = 200
    ) -> Response:
        task = await _task_for(request, session)
        if task is None:
            return render("error.html", 404, session=session, title="没有这个任务",
                          message="任务不存在，或不属于您的中队。")  # fmt: skip
        lead = None
        if task["source_kind"] == "lead":
            raw = await c.pool.fetchval(
                "SELECT lead FROM leads WHERE lead_id = $1", task["source_id"]
            )
            lead = json.loads(raw) if raw else None
        site = c.registry.site(task["site_id"]) if c.registry and task["site_id"] else None
        return render("field_task.html", status, session=session, task=task, lead=lead, site=site,
                      names=places, squads=d.squads, error=error,
                      photos=as_photos(task["result_photos"]), title="任务详情")  # fmt: skip

    async def field_task_page(request: Request, session: Session) -> Response:
        return await field_task(request, session)

    async def _task_for(request: Request, session: Session) -> Any:
        mine = [s.id for s in (await d.roster()).squads_of(session.actor)]
        return await c.pool.fetchrow(
            f"SELECT {TASK_COLUMNS} FROM tasks t LEFT JOIN leads l ON t.source_kind = 'lead'"
            " AND l.lead_id = t.source_id WHERE t.task_id = $2 AND t.squad_id = ANY($3)",
            c.now(), request.path_params["task_id"], mine)  # fmt: skip

    async def field_result(request: Request, session: Session) -> Response:
        try:
            length = int(request.headers.get("content-length") or "")
        except ValueError:
            return await field_task(request, session, "请求无效。", 411)
        if length > MAX_FIELD_REQUEST:
            return await field_task(request, session, f"照片过大：最多 {MAX_PHOTOS} 张，每张不超过"
                                    f" {MAX_IMAGE_BYTES // 2**20} MB。", 413)  # fmt: skip
        try:
            form = await request.form(
                max_files=MAX_PHOTOS + 2, max_fields=20, max_part_size=64 * 1024
            )
        except HTTPException:
            return await field_task(request, session, "提交的内容无法识别。", 400)
        try:
            return await record(request, session, form)
        finally:
            await form.close()

    async def record(request: Request, session: Session, form: FormData) -> Response:
        task = await _task_for(request, session)
        if task is None:
            return await field_task(request, session)
        photos, problem = await _photos(form)
        lat, lon = _coordinate(form.get("lat"), 90), _coordinate(form.get("lon"), 180)
        if problem:
            return await field_task(request, session, problem, 400)
        stored = []
        for data, kind in photos:
            if c.blobs is None:
                return await field_task(request, session, "本系统暂不能接收照片。", 503)
            media_type, suffix = KINDS[kind]
            uri, digest = await asyncio.to_thread(c.blobs.put, data, suffix)
            stored.append({"uri": uri, "sha256": digest, "type": media_type})
        try:
            await d.finish(task["task_id"], session.actor, str(form.get("result") or ""),
                           str(form.get("text") or ""), stored, lat, lon,
                           str(form.get("case_id") or "").strip()[:80] or None)  # fmt: skip
        except DispatchError as exc:
            return await field_task(request, session, exc.message, 409)
        return RedirectResponse("/field?done=1", 303)

    async def task_photo(request: Request, session: Session) -> Response:
        return await _blob_of(c, "SELECT result_photos AS images FROM tasks WHERE task_id = $1",
                              request.path_params["task_id"], request.path_params["name"])  # fmt: skip

    async def lead_image(request: Request, session: Session) -> Response:
        row = await c.pool.fetchval("SELECT lead FROM leads WHERE lead_id = $1",
                                    request.path_params["lead_id"])  # fmt: skip
        images = [i for s in (json.loads(row)["sightings"] if row else []) for i in s["images"]]
        return _serve(c, images, request.path_params["name"])

    async def events(request: Request, session: Session) -> Response:
        return StreamingResponse(task_events(c, d, request), media_type="text/event-stream",
                                 headers={"x-accel-buffering": "no"})  # fmt: skip

    async def admin(
        request: Request, session: Session, error: str = "", status: int = 200
    ) -> Response:
        """The accounts, and the squads with their areas and people (edited here)."""
        accounts = await c.accounts.all()
        staff = {r: [a for a in accounts if a.active and r in a.roles]
                 for r in (SQUAD_LEADER, FIELD_OFFICER)}  # fmt: skip
        changes = await c.pool.fetch(
            "SELECT squad_id, changed_by, changed_at, before IS NULL AS created FROM squad_changes"
            " ORDER BY change_id DESC LIMIT 20")  # fmt: skip
        return render("admin.html", status, session=session, accounts=accounts,
                      squads_config=await d.roster(), sites=_choices(c, "road"),
                      reaches=_choices(c, "water"), changes=changes, error=error,
                      leaders=staff[SQUAD_LEADER], officers=staff[FIELD_OFFICER],
                      people={a.username: a.display_name for a in accounts},
                      title="账户管理")  # fmt: skip

    async def admin_page(request: Request, session: Session) -> Response:
        return await admin(request, session)

    async def save_squad(request: Request, session: Session) -> Response:
        form = await request.form()
        accounts = {a.username: a.roles for a in await c.accounts.all() if a.active}
        fields = {f: [str(v) for v in form.getlist(f)] for f in ("sites", "reaches", "leaders",
                                                                "officers")}  # fmt: skip
        for f, role in (("leaders", SQUAD_LEADER), ("officers", FIELD_OFFICER)):
            if any(role not in accounts.get(u, ()) for u in fields[f]):
                return await admin(
                    request, session, f"所选人员须为启用的“{name('role', role)}”账户。", 400
                )
        try:
            squad = Squad(id=str(form.get("squad_id") or "").strip(),
                          name=str(form.get("name") or "").strip(),
                          level=str(form.get("level") or "squad"),  # type: ignore[arg-type]
                          parent=str(form.get("parent") or "") or None, **fields)  # fmt: skip
        except ValidationError:
            return await admin(request, session, "请填写队伍编号（字母、数字、点、横线）和名称，"
                               "并选择层级。", 400)  # fmt: skip
        known = frozenset(p for p, _ in (*_choices(c, "road"), *_choices(c, "water")))
        try:
            await d.save_squad(squad, session.actor, known, new=bool(form.get("new")))
        except DispatchError as exc:
            return await admin(request, session, exc.message, 409)
        return RedirectResponse("/admin#squads", 303)

    return [
        Route("/admin", page({ADMIN}, admin_page)),
        Route("/admin/squads", page({ADMIN}, save_squad), methods=["POST"]),
        Route("/dispatch", page(COMMANDERS, board_page)),
        Route("/dispatch/new", page(COMMANDERS, new_task), methods=["POST"]),
        Route("/dispatch/events", page(LEADERS, events)),
        Route("/tasks", page(LEADERS, squad_queue)),
        Route("/tasks/{task_id}/photos/{name}", page(LEADERS | FIELD, task_photo)),
        Route("/leads/{lead_id}/images/{name}", page(LEADERS | FIELD, lead_image)),
        Route("/field", page(FIELD, field_list)),
        Route("/field/tasks/{task_id}", page(FIELD, field_task_page)),
        Route("/field/tasks/{task_id}/result", page(FIELD, field_result), methods=["POST"]),
    ]


async def _photos(form: FormData) -> tuple[list[tuple[bytes, str]], str]:
    """The photos of a field result, checked as the party page's images are."""
    return await read_attachments(form, "photos", MAX_PHOTOS, pdf=False, noun="照片")


def _choices(c: Console, domain: str) -> list[tuple[str, str]]:
    """The places a squad's area is chosen from, (id, name): the road sites, or the waterways'
    places."""
    if domain == "water":
        return _water_places(c)
    names = _place_names(c)
    return [(s.id, names[s.id]) for s in c.registry.sites] if c.registry else []


def _local(t: dt.datetime, tz: dt.tzinfo) -> str:
    return t.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")


def _bounds(start: dt.date, end: dt.date, tz: dt.tzinfo) -> tuple[dt.datetime, dt.datetime]:
    """The instants from ``start``'s first moment to the end of ``end`` (local dates)."""
    return (dt.datetime.combine(start, dt.time(), tz),
            dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), tz))  # fmt: skip


def _coordinate(value: Any, limit: float) -> float | None:
    try:
        x = float(str(value or ""))
    except ValueError:
        return None
    return x if -limit <= x <= limit else None


async def _blob_of(c: Console, sql: str, key: str, name: str) -> Response:
    raw = await c.pool.fetchval(sql, key)
    return _serve(c, as_photos(raw), name)


def _serve(c: Console, images: list[Any], name: str) -> Response:
    """The image of ``images`` whose blob name is ``name`` (only those: no path from the URL)."""
    for img in images:
        uri = str(img.get("uri") or "")
        if uri.rsplit("/", 1)[-1] == name and c.blobs is not None:
            try:
                path = c.blobs.path(uri)
            except ValueError:
                break
            if path.is_file():
                return FileResponse(path, media_type=str(img.get("type") or "image/jpeg"))
    return Response("没有这张图片", 404)


async def task_events(c: Console, d: Dispatch, request: Request) -> AsyncIterator[bytes]:
    """Server-sent events: one ``task`` event per change of a task (``NOTIFY offsite_tasks``,
    migration 070). While someone watches, the rules' dispatch and the escalation of overdue
    tasks run on every quiet spell."""

    async def to_events(payload: str) -> AsyncIterator[bytes]:
        note = json.loads(payload)
        row = await c.pool.fetchrow(
            "SELECT task_id, status, result, escalated_at IS NOT NULL AS escalated, done_by,"
            " (status = 'open' AND due_at < $2) AS overdue FROM tasks WHERE task_id = $1",
            note["task_id"], c.now())  # fmt: skip
        if row is not None:
            data = json.dumps(
                {**dict(row), "status_name": _task_status_name(row)}, ensure_ascii=False
            )
            yield f"event: task\nid: {row['task_id']}\ndata: {data}\n\n".encode()

    async for chunk in listen(c, request, "offsite_tasks", to_events, idle=d.sweep):
        yield chunk


def _task_status_name(row: Any) -> str:
    if row["status"] == "done":
        return f"{name('task_state', 'done')}（{name('task_result', row['result'])}）"
    return name("task_state", row["status"]) + ("（已超期）" if row["overdue"] else "")
