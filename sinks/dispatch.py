"""Dispatch (任务派发): squads (执法大队/中队) and their areas from ``configs/squads.yaml``, tasks
handed to a squad from a lead, an alert, a device fault or a case, their deadlines (in working
hours where the agency says so), escalation of overdue tasks, the field result that closes a
lead, and the figures the command center reports (leads raised, dispatched, done in time, the
share of cases that came from leads).

Every change of a task is one SQL statement; the table announces it (``NOTIFY offsite_tasks``,
migration 070) and the console's pages follow it live.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

import asyncpg
from pydantic import BaseModel, ConfigDict, Field

from events import DatabaseError, OffsiteError, derive_id

Priority = Literal["urgent", "high", "normal", "low"]
Result = Literal["found", "not_found", "case_opened", "transferred"]
SOURCES = ("lead", "alert", "device", "case")
# what a task's result makes of its lead (migration 070's lead states)
LEAD_AFTER = {"found": "confirmed", "case_opened": "confirmed", "not_found": "dismissed",
              "transferred": "transferred"}  # fmt: skip


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WorkingHours(_Strict):
    """The agency's working day: a deadline in working hours counts only these hours."""

    start: dt.time = dt.time(8, 30)
    end: dt.time = dt.time(17, 30)
    weekdays: frozenset[int] = frozenset({1, 2, 3, 4, 5})  # ISO: 1 = Monday
    holidays: frozenset[dt.date] = frozenset()


class AutoRule(_Strict):
    """How the rules dispatch a lead kind: to the squad of its site, unless ``enabled`` is off."""

    enabled: bool = True
    priority: Priority = "normal"
    hours: float = Field(default=24, gt=0)
    working_hours: bool = False  # count ``hours`` in working hours
    instructions: str = ""


class Squad(_Strict):
    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9._-]+$")
    name: str = Field(min_length=1)
    level: Literal["brigade", "squad"] = "squad"
    parent: str | None = None  # the brigade a squad belongs to
    sites: list[str] = []  # road sites (configs/sites.yaml)
    reaches: list[str] = []  # checkpoints, sections, zones (configs/waterways.yaml)
    leaders: list[str] = []  # usernames of its squad leaders (中队长)
    officers: list[str] = []  # usernames of its field officers


class Squads(_Strict):
    """``configs/squads.yaml``."""

    timezone_offset_hours: float = 8
    working_hours: WorkingHours = WorkingHours()
    squads: list[Squad]
    auto_dispatch: dict[str, AutoRule] = {}  # lead kind → rule; a kind not named: by hand
    default_hours: float = Field(default=24, gt=0)  # a task dispatched by hand, unless told

    @property
    def tz(self) -> dt.timezone:
        return dt.timezone(dt.timedelta(hours=self.timezone_offset_hours))

    def squad(self, squad_id: str) -> Squad | None:
        return next((s for s in self.squads if s.id == squad_id), None)

    def squad_of_place(self, place: str | None) -> Squad | None:
        """The squad whose area holds ``place`` (a site, checkpoint or reach id)."""
        return next((s for s in self.squads if place in s.sites or place in s.reaches), None)

    def squads_of(self, username: str) -> list[Squad]:
        return [s for s in self.squads if username in s.officers or username in s.leaders]


def problems(
    cfg: Squads, places: frozenset[str] | None = None, lead_kinds: Sequence[str] = ()
) -> list[tuple[tuple[str | int, ...], str]]:
    """What the schema cannot see: duplicate ids, a parent that is no brigade, a place in two
    squads' areas or (with ``places``) in no registry, an auto rule for no lead kind."""
    out: list[tuple[tuple[str | int, ...], str]] = []
    ids = [s.id for s in cfg.squads]
    owner: dict[str, str] = {}
    for i, s in enumerate(cfg.squads):
        if ids.index(s.id) != i:
            out.append((("squads", i, "id"), f"{s.id} is listed twice"))
        if s.parent is not None:
            parent = cfg.squad(s.parent)
            if parent is None or parent.level != "brigade":
                out.append((("squads", i, "parent"), f"{s.parent} is no brigade of this file"))
        for field in ("sites", "reaches"):
            for j, place in enumerate(getattr(s, field)):
                if place in owner:
                    out.append((("squads", i, field, j), f"{place} is already {owner[place]}'s"))
                owner[place] = s.id
                if places is not None and place not in places:
                    out.append((("squads", i, field, j), f"{place} is in no registry"))
    for kind in cfg.auto_dispatch:
        if lead_kinds and kind not in lead_kinds:
            out.append((("auto_dispatch", kind), f"{kind} is no lead kind"))
    return out


def add_working_hours(
    start: dt.datetime, hours: float, wh: WorkingHours, tz: dt.tzinfo
) -> dt.datetime:
    """``start`` plus ``hours`` counted only inside the working day ``wh`` (local time ``tz``):
    a task given at 16:30 on a Friday with 2 working hours is due at 09:30 on Monday."""
    left = dt.timedelta(hours=hours)
    t = start.astimezone(tz)
    for _ in range(3660):  # ten years of days: a bound, not a limit anyone reaches
        day = t.date()
        opens = dt.datetime.combine(day, wh.start, tz)
        closes = dt.datetime.combine(day, wh.end, tz)
        if day.isoweekday() in wh.weekdays and day not in wh.holidays and t < closes:
            t = max(t, opens)
            if t + left <= closes:
                return t + left
            left -= closes - t
        t = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tz)
    raise ValueError("no working day within ten years: check working_hours")


class DispatchError(OffsiteError):
    """A task cannot be created or finished; ``message`` is shown to the user as it is."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Source:
    kind: str  # lead kind, violation code or device_fault
    site_id: str | None


SQUAD_FIELDS = ("name", "level", "parent", "sites", "reaches", "leaders", "officers")
SEED = "configs/squads.yaml"  # the author of the squads the file seeded (squad_changes)


class Dispatch:
    """Tasks over the case store. ``clock``: the lifecycle's (tests fix it). ``squads``: the
    file's working hours and rules; its squads seed the ``squads`` table of a fresh install
    (migration 071), which from then on holds the squads, as the admin page edits them."""

    def __init__(
        self, pool: asyncpg.Pool, squads: Squads, clock: Callable[[], dt.datetime]
    ) -> None:
        self.pool, self.base, self.squads, self.clock = pool, squads, squads, clock

    async def roster(self) -> Squads:
        """The squads as the database holds them now (seeded from the file if it holds none),
        with the file's working hours and rules; also kept as ``self.squads``."""
        try:
            rows = await self.pool.fetch("SELECT * FROM squads ORDER BY seq")
            if not rows and self.base.squads:
                async with self.pool.acquire() as conn, conn.transaction():
                    # several consoles may start at once: one seeds, the others find it done
                    rows = await _locked_squads(conn)
                    for s in self.base.squads if not rows else ():
                        await _save(conn, s, None, SEED, self.clock())
                rows = await self.pool.fetch("SELECT * FROM squads ORDER BY seq")
        except asyncpg.PostgresError as exc:
            raise DatabaseError(f"reading the squads failed: {exc}") from exc
        self.squads = self._of(rows)
        return self.squads

    def _of(self, rows: Sequence[Any]) -> Squads:
        squads = [Squad(id=r["squad_id"], **{f: r[f] for f in SQUAD_FIELDS}) for r in rows]
        return self.base.model_copy(update={"squads": squads})

    async def save_squad(self, squad: Squad, by: str, places: frozenset[str], new: bool) -> None:
        """Create (``new``) or change ``squad`` (the admin page), audited in squad_changes;
        refused (DispatchError, in Chinese) if its area takes a place of another squad or one
        in no registry, or its parent is no brigade."""
        await self.roster()  # a fresh install is seeded first
        async with self.pool.acquire() as conn, conn.transaction():
            current = self._of(await _locked_squads(conn))
            before = await conn.fetchrow("SELECT * FROM squads WHERE squad_id = $1", squad.id)
            if (before is not None) == new:
                raise DispatchError("队伍编号已被使用。" if new else "没有这个队伍。")
            if squad.parent == squad.id:
                raise DispatchError("上级不能是本队伍。")
            others = [s for s in current.squads if s.id != squad.id]
            edited = current.model_copy(update={"squads": [*others, squad]})
            # this squad's findings (another's area may name a place of a registry not loaded)
            found = [p for p in problems(edited, places) if p[0][:2] == ("squads", len(others))]
            if found:
                raise DispatchError(_problem_zh(found[0][1], current))
            await _save(conn, squad, before, by, self.clock())
        await self.roster()

    def due(self, start: dt.datetime, hours: float, working: bool) -> dt.datetime:
        if working:
            return add_working_hours(start, hours, self.squads.working_hours, self.squads.tz)
        return start + dt.timedelta(hours=hours)

    async def source(self, source_kind: str, source_id: str) -> Source:
        """What a task is about: a lead, a case (an alert is a new case) or a device."""
        if source_kind == "lead":
            row = await self.pool.fetchrow("SELECT kind, site_id FROM leads WHERE lead_id = $1",
                                           source_id)  # fmt: skip
        elif source_kind in ("case", "alert"):
            row = await self.pool.fetchrow(
                "SELECT violation_code AS kind, site_id FROM cases WHERE case_id = $1", source_id
            )
        elif source_kind == "device":
            return Source("device_fault", None)
        else:
            raise DispatchError("任务来源无效")
        if row is None:
            raise DispatchError("任务来源不存在")
        return Source(row["kind"], row["site_id"])

    async def create(
        self, source_kind: str, source_id: str, squad_id: str | None, by: str, *,
        priority: Priority = "normal", hours: float | None = None, working: bool = False,
        instructions: str = "", site_id: str | None = None,
    ) -> str:  # fmt: skip
        """A task for ``squad_id`` (None: the squad of the source's site); returns its id. A
        source with a live task already keeps it (its id is returned)."""
        src = await self.source(source_kind, source_id)
        site = site_id or src.site_id
        await self.roster()
        squad = self.squads.squad(squad_id) if squad_id else self.squads.squad_of_place(site)
        if squad is None:
            raise DispatchError("请选择承办中队（该地点不在任何中队的辖区内）")
        if priority not in ("urgent", "high", "normal", "low"):
            raise DispatchError("优先级无效")
        now = self.clock()
        due = self.due(now, hours if hours is not None else self.squads.default_hours, working)
        task_id = derive_id("task", source_kind, source_id, now.isoformat())
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                made = await conn.fetchval(
                    "INSERT INTO tasks (task_id, source_kind, source_id, kind, site_id, squad_id,"
                    " priority, instructions, created_by, created_at, due_at)"
                    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
                    " ON CONFLICT DO NOTHING RETURNING task_id",
                    task_id, source_kind, source_id, src.kind, site, squad.id, priority,
                    instructions.strip()[:2000], by, now, due,
                )  # fmt: skip
                if made is None:
                    return str(await conn.fetchval(
                        "SELECT task_id FROM tasks WHERE source_kind = $1 AND source_id = $2"
                        " AND status <> 'cancelled'", source_kind, source_id))  # fmt: skip
                if source_kind == "lead":
                    await conn.execute("UPDATE leads SET status = 'dispatched' WHERE lead_id = $1"
                                       " AND status = 'pending_review'", source_id)  # fmt: skip
        except asyncpg.PostgresError as exc:
            raise DatabaseError(f"creating a task failed: {exc}") from exc
        return task_id

    async def auto(self) -> list[str]:
        """Dispatch every pending lead of a kind the rules dispatch, to its site's squad; a lead
        whose site is in no squad's area waits for the command center."""
        rules = {k: r for k, r in self.squads.auto_dispatch.items() if r.enabled}
        if not rules:
            return []
        rows = await self.pool.fetch(
            "SELECT l.lead_id, l.kind, l.site_id FROM leads l WHERE l.status = 'pending_review'"
            " AND l.kind = ANY($1) AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.source_kind ="
            " 'lead' AND t.source_id = l.lead_id AND t.status <> 'cancelled') ORDER BY l.ts, l.lead_id",
            sorted(rules),
        )  # fmt: skip
        made = []
        await self.roster()
        for r in rows:
            rule = rules[r["kind"]]
            if self.squads.squad_of_place(r["site_id"]) is None:
                continue
            made.append(await self.create("lead", r["lead_id"], None, "auto", priority=rule.priority,
                                          hours=rule.hours, working=rule.working_hours,
                                          instructions=rule.instructions))  # fmt: skip
        return made

    async def escalate(self) -> list[str]:
        """Mark the open tasks past their deadline as escalated (to the squad leader and the
        command center), once each; returns their ids."""
        rows = await self.pool.fetch(
            "UPDATE tasks SET escalated_at = $1 WHERE status = 'open' AND due_at < $1"
            " AND escalated_at IS NULL RETURNING task_id", self.clock())  # fmt: skip
        return sorted(r["task_id"] for r in rows)

    async def sweep(self) -> tuple[list[str], list[str]] | None:
        """What runs on its own, one round: the rules' dispatch and the escalation of overdue
        tasks (the tasks made, those escalated). One process at a time across every console
        (a PostgreSQL advisory lock): while another runs it, None and nothing is done."""
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                if not await conn.fetchval(
                    "SELECT pg_try_advisory_xact_lock(hashtext('offsite_dispatch_sweep'))"
                ):
                    return None
                # on the connection that holds the lock: a sweep never waits for a second one
                # (open live feeds hold the others)
                held = Dispatch(cast(asyncpg.Pool, _Held(conn)), self.base, self.clock)
                done = await held.auto(), await held.escalate()
                self.squads = held.squads
                return done
        except asyncpg.PostgresError as exc:
            raise DatabaseError(f"the dispatch sweep failed: {exc}") from exc

    async def finish(
        self, task_id: str, by: str, result: str, text: str, photos: list[dict[str, str]],
        lat: float | None, lon: float | None, case_id: str | None,
    ) -> None:  # fmt: skip
        """The field result: the task is done, and its lead takes the result's state (and the
        case it became)."""
        if result not in LEAD_AFTER:
            raise DispatchError("请选择处理结果")
        if result == "case_opened" and not case_id:
            raise DispatchError("“已立案”须填写案件编号")
        async with self.pool.acquire() as conn, conn.transaction():
            task = await conn.fetchrow("SELECT * FROM tasks WHERE task_id = $1 FOR UPDATE", task_id)
            if task is None or task["status"] != "open":
                raise DispatchError("该任务不存在或已办结")
            if case_id and not await conn.fetchval(
                "SELECT 1 FROM cases WHERE case_id = $1", case_id
            ):
                raise DispatchError(f"案件编号 {case_id} 不存在")
            await conn.execute(
                "UPDATE tasks SET status = 'done', result = $2, result_text = $3,"
                " result_photos = $4, result_lat = $5, result_lon = $6, case_id = $7,"
                " done_by = $8, done_at = $9 WHERE task_id = $1",
                task_id, result, text.strip()[:4000], json.dumps(photos), lat, lon,
                case_id or None, by, self.clock(),
            )  # fmt: skip
            if task["source_kind"] == "lead":
                await conn.execute(
                    "UPDATE leads SET status = $2, case_id = coalesce($3, case_id)"
                    " WHERE lead_id = $1", task["source_id"], LEAD_AFTER[result], case_id or None)  # fmt: skip


class _Held:
    """One connection in the place of a pool: ``acquire`` gives it (a transaction inside is a
    savepoint of the caller's)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[asyncpg.Connection]:
        yield self._conn


async def _locked_squads(conn: asyncpg.Connection) -> list[Any]:
    """The squads' rows, read under a lock held to the end of the transaction: one writer at a
    time (a seed, an edit)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('offsite_squads'))")
    return list(await conn.fetch("SELECT * FROM squads ORDER BY seq"))


async def _save(
    conn: asyncpg.Connection, squad: Squad, before: Any, by: str, at: dt.datetime
) -> None:
    """Write ``squad`` and its audit entry (``before``: its row until now, None if new)."""
    values = [getattr(squad, f) for f in SQUAD_FIELDS]
    await conn.execute(
        "INSERT INTO squads (squad_id, name, level, parent, sites, reaches, leaders, officers)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (squad_id) DO UPDATE SET"
        " name = $2, level = $3, parent = $4, sites = $5, reaches = $6, leaders = $7,"
        " officers = $8", squad.id, *values)  # fmt: skip
    old = None if before is None else json.dumps({f: before[f] for f in SQUAD_FIELDS})
    await conn.execute(
        "INSERT INTO squad_changes (squad_id, changed_by, changed_at, before, after)"
        " VALUES ($1, $2, $3, $4, $5)", squad.id, by, at, old,
        json.dumps(dict(zip(SQUAD_FIELDS, values, strict=True))))  # fmt: skip


def _problem_zh(problem: str, squads: Squads) -> str:
    """A :func:`problems` finding as the admin page shows it."""
    rest = problem.partition(" ")[2]
    if rest.startswith("is already "):
        owner = squads.squad(rest.removeprefix("is already ").removesuffix("'s"))
        return (
            f"所选地点已属于{owner.name if owner else '其他队伍'}的辖区：一个地点只能属于一个队伍。"
        )
    if rest == "is in no registry":
        return "所选地点未在站点或水域登记表中登记。"
    if rest == "is listed twice":
        return "队伍编号已被使用。"
    return "上级须为大队。"


@dataclass(frozen=True)
class Figure:
    """One row of the command center's report: a squad's (or all squads') leads of a kind."""

    squad: str  # a squad id, or "" for leads in no squad's area
    kind: str
    raised: int
    dispatched: int
    done: int
    in_time: int


async def figures(
    pool: asyncpg.Pool, squads: Squads, start: dt.datetime, end: dt.datetime
) -> tuple[list[Figure], dict[str, tuple[int, int]]]:
    """Leads raised in ``[start, end)`` per squad (by the lead's site) and kind: how many, how
    many were dispatched, done, done by their deadline; and per squad the cases of the period,
    (all, those that came from a lead through its ``case_id``) — the share agencies report.
    A place in no squad's area counts under ``""``."""
    leads = await pool.fetch(
        "SELECT l.kind, l.site_id, t.squad_id, t.status AS task_status, t.done_at <= t.due_at"
        " AS in_time FROM leads l LEFT JOIN tasks t ON t.source_kind = 'lead' AND"
        " t.source_id = l.lead_id AND t.status <> 'cancelled' WHERE l.ts >= $1 AND l.ts < $2",
        start, end,
    )  # fmt: skip
    rows: dict[tuple[str, str], list[int]] = {}
    for r in leads:
        squad = r["squad_id"] or _squad_id(squads, r["site_id"])
        n = rows.setdefault((squad, r["kind"]), [0, 0, 0, 0])
        n[0] += 1
        n[1] += r["task_status"] is not None
        n[2] += r["task_status"] == "done"
        n[3] += bool(r["in_time"])
    per_site = await pool.fetch(
        "SELECT c.site_id, count(*) AS n, count(*) FILTER (WHERE EXISTS (SELECT 1 FROM leads l"
        " WHERE l.case_id = c.case_id)) AS from_leads FROM cases c WHERE c.ts >= $1 AND c.ts < $2"
        " GROUP BY 1",
        start, end,
    )  # fmt: skip
    cases: dict[str, tuple[int, int]] = {}
    for r in per_site:
        squad = _squad_id(squads, r["site_id"])
        total, from_leads = cases.get(squad, (0, 0))
        cases[squad] = (total + r["n"], from_leads + r["from_leads"])
    return [Figure(s, k, *n) for (s, k), n in sorted(rows.items())], cases


def _squad_id(squads: Squads, place: str | None) -> str:
    squad = squads.squad_of_place(place)
    return squad.id if squad else ""


def as_photos(stored: Any) -> list[dict[str, str]]:
    return json.loads(stored) if isinstance(stored, str) else list(stored or [])
