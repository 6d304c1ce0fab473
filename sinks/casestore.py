"""The PostgreSQL case store: migrations and idempotent batch writes.

asyncpg errors become DatabaseError here and nowhere else.
"""

from __future__ import annotations

import datetime as dt
import json
import traceback
from collections.abc import Awaitable, Callable, Sequence
from importlib import resources
from typing import Any, Literal

import asyncpg
from asyncpg.exceptions._base import DataError as ArgumentError  # asyncpg's own, client-side

from events import Alert, DatabaseError, Lead, Sighting, Violation, WimRecord, derive_id
from events import case_id as pass_case_id
from events.stage import AWAY_SQLSTATES
from events.water import ControlSignal, WaterViolation

# a road violation or a waterway one: the case store keeps both in the one case queue
AnyViolation = Violation | WaterViolation

COLUMNS = (
    "case_id", "violation_id", "detection_id", "violation_code", "record_id", "site_id",
    "device_id", "ts", "plate", "plate_color", "outcome", "fine_cny", "measured_kg",
    "tolerance_kg", "limit_kg", "overload_kg", "tier", "legal_basis", "penalty_basis", "notices",
    "violation",
)  # fmt: skip
_COLS = ", ".join(COLUMNS)
# what a re-decision replaces on a case still pending review
_DECIDED = [c for c in COLUMNS if c not in ("case_id", "site_id", "device_id", "record_id",
                                            "violation_code", "ts")]  # fmt: skip
# a pass the same-trip rule has seen: case_id, plate, colour, ts, primary case (None: undecided)
Trip = tuple[str, str, str | None, dt.datetime, str | None]
# a case an officer has confirmed, and every state after it: its history counts
# (not a withdrawn or unpunished one: issue #25, review A4)
CONFIRMED = ("confirmed", "legal_review", "approved", "notice_issued", "statement_received",
             "decided", "closed", "hearing_requested", "heard", "amended")  # fmt: skip


# what a record makes PostgreSQL refuse, not a failure of the database: a value it cannot
# store (SQLSTATE class 22, e.g. U+0000 in text or jsonb), a limit a value passes (class 54, an
# index row too large), a check or not-null constraint, or a value asyncpg cannot send as its
# column's type (an integer past int8).
_REFUSED = (
    asyncpg.DataError, asyncpg.ProgramLimitExceededError, asyncpg.CheckViolationError,
    asyncpg.NotNullViolationError, ArgumentError,
)  # fmt: skip


def _failed(what: str, exc: asyncpg.PostgresError | ArgumentError) -> DatabaseError:
    return DatabaseError(f"{what}: {exc}", retriable=not isinstance(exc, _REFUSED))


def case_id(v: AnyViolation) -> str:
    """The case of a violation: its pass and code (``events.case_id``)."""
    return pass_case_id(v.site_id, v.detection.device_id, v.record_id, v.violation_code)


def migrations() -> list[tuple[int, str, str]]:
    """(version, name, sql) of every migration shipped in sinks/migrations, in order."""
    out = []
    for f in resources.files("sinks").joinpath("migrations").iterdir():
        if f.name.endswith(".sql"):
            out.append((int(f.name.split("_", 1)[0]), f.name, f.read_text(encoding="utf-8")))
    return sorted(out)


class PendingWrite:
    """A case batch written but not yet committed: commit after its alerts are acknowledged."""

    def __init__(self, conn: Any, tx: Any, alerts: list[Alert], release: Any) -> None:
        self.conn, self.tx, self.alerts, self._release = conn, tx, alerts, release

    async def commit(self) -> None:
        try:
            await self.tx.commit()
        except asyncpg.PostgresError as exc:
            raise DatabaseError(f"committing cases failed: {exc}") from exc
        finally:
            await self._release(self.conn)

    async def rollback(self) -> None:
        try:
            await self.tx.rollback()
        finally:
            await self._release(self.conn)


class CaseStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @classmethod
    async def connect(cls, url: str, *, size: int = 4) -> CaseStore:
        try:
            pool = await asyncpg.create_pool(url, min_size=1, max_size=size)
        except (OSError, asyncpg.PostgresError) as exc:
            raise DatabaseError(f"cannot connect to PostgreSQL: {exc}") from exc
        return cls(pool)

    async def close(self) -> None:
        await self.pool.close()

    async def migrate(self) -> list[str]:
        """Apply the migrations not yet applied; returns their names. Safe to run concurrently."""
        applied = []
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(7061636)")
                await conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations ("
                    " version integer PRIMARY KEY, name text NOT NULL,"
                    " applied_at timestamptz NOT NULL DEFAULT now())"
                )
                done = {r[0] for r in await conn.fetch("SELECT version FROM schema_migrations")}
                for version, name, sql in migrations():
                    if version not in done:
                        await conn.execute(sql)
                        await conn.execute(
                            "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                            version,
                            name,
                        )
                        applied.append(name)
        except asyncpg.PostgresError as exc:
            raise DatabaseError(f"migration failed: {exc}") from exc
        return applied

    async def record_seen(self, seen: Sequence[tuple[str, dt.datetime, float]]) -> None:
        """Device health: (device_id, received, skew_s) of each device's latest message."""
        if not seen:
            return
        try:
            await self.pool.execute(
                "INSERT INTO device_health AS h (device_id, received, skew_s)"
                " SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::float8[])"
                " ON CONFLICT (device_id) DO UPDATE SET received = excluded.received,"
                "  skew_s = excluded.skew_s, updated_at = now()"
                " WHERE h.received IS NULL OR h.received <= excluded.received",
                *zip(*seen, strict=True),
            )
        except (asyncpg.PostgresError, ArgumentError) as exc:
            raise _failed("recording device health failed", exc) from exc

    async def device_states(
        self,
    ) -> dict[str, tuple[dt.datetime | None, float | None, dict[str, str]]]:
        """Device health: device_id → (received, skew_s, active conditions)."""
        try:
            rows = await self.pool.fetch(
                "SELECT device_id, received, skew_s, active FROM device_health"
            )
        except asyncpg.PostgresError as exc:
            raise DatabaseError(f"reading device health failed: {exc}") from exc
        return {r[0]: (r[1], r[2], json.loads(r[3])) for r in rows}

    async def drift_states(self) -> dict[tuple[str, int], dict[str, Any]]:
        """The drift watch's state: (device_id, lane) → DriftState.dump()."""
        try:
            rows = await self.pool.fetch("SELECT device_id, lane, state FROM drift_states")
        except asyncpg.PostgresError as exc:
            raise DatabaseError(f"reading drift states failed: {exc}") from exc
        return {(r[0], r[1]): json.loads(r[2]) for r in rows}

    async def write_drift_states(self, states: dict[tuple[str, int], dict[str, Any]]) -> None:
        if not states:
            return
        try:
            await self.pool.execute(
                "INSERT INTO drift_states (device_id, lane, state) SELECT * FROM"
                " unnest($1::text[], $2::int[], $3::jsonb[]) ON CONFLICT (device_id, lane)"
                " DO UPDATE SET state = EXCLUDED.state, updated_at = now()",
                [k[0] for k in states], [k[1] for k in states],
                [json.dumps(v) for v in states.values()],
            )  # fmt: skip
        except asyncpg.PostgresError as exc:
            raise DatabaseError(f"writing drift states failed: {exc}") from exc

    async def write_weighings(
        self, rows: Sequence[tuple[str, str, str, dt.datetime, bool]]
    ) -> None:
        """The detection stage's weighings, (device_id, record_id, site_id, ts, overloaded):
        each once, however often its batch is written (migration 086)."""
        if not rows:
            return
        try:
            await self.pool.execute(
                "INSERT INTO weighings (device_id, record_id, site_id, ts, overloaded) SELECT *"
                " FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::bool[])"
                " ON CONFLICT DO NOTHING",
                *zip(*rows, strict=True),
            )
        except asyncpg.PostgresError as exc:
            raise DatabaseError(f"writing weighings failed: {exc}") from exc

    async def reweigh_weighings(self) -> list[tuple[str, WimRecord]]:
        """The detection stage's weighings for static reweighs (detectors.drift.DriftStore)."""
        try:
            rows = await self.pool.fetch(
                "SELECT plate, record_id, site_id, ts, device_id, lane, gross_weight_kg"
                " FROM reweigh_weighings ORDER BY site_id, ts, record_id"
            )
        except asyncpg.PostgresError as exc:
            raise DatabaseError(f"reading the weighings kept for reweighs failed: {exc}") from exc
        # trusted rows this store wrote, with the fields the reweigh match reads
        return [(r[0], WimRecord.model_construct(
            record_id=r[1], site_id=r[2], ts=r[3], device_id=r[4], lane=r[5],
            gross_weight_kg=r[6])) for r in rows]  # fmt: skip

    async def keep_reweigh_weighings(
        self, weighings: list[tuple[str, WimRecord]], since: dict[str, dt.datetime]
    ) -> None:
        rs = [r for _, r in weighings]
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                if weighings:
                    await conn.execute(
                        "INSERT INTO reweigh_weighings (record_id, site_id, plate, ts, device_id, lane,"
                        " gross_weight_kg) SELECT * FROM unnest($1::text[],"
                        " $2::text[], $3::text[], $4::timestamptz[], $5::text[], $6::int[],"
                        " $7::int[]) ON CONFLICT (record_id) DO NOTHING",
                        [r.record_id for r in rs], [r.site_id for r in rs],
                        [p for p, _ in weighings], [r.ts for r in rs],
                        [r.device_id for r in rs], [r.lane for r in rs],
                        [r.gross_weight_kg for r in rs],
                    )  # fmt: skip
                if since:
                    await conn.execute(
                        "DELETE FROM reweigh_weighings w USING unnest($1::text[],"
                        " $2::timestamptz[]) AS c(site_id, since)"
                        " WHERE w.site_id = c.site_id AND w.ts < c.since",
                        list(since),
                        list(since.values()),
                    )
        except asyncpg.PostgresError as exc:
            raise DatabaseError(f"writing the weighings kept for reweighs failed: {exc}") from exc

    async def change_active(
        self, device_id: str, before: dict[str, str], after: dict[str, str]
    ) -> bool:
        try:
            await self.pool.execute(
                "INSERT INTO device_health (device_id) VALUES ($1) ON CONFLICT DO NOTHING",
                device_id,
            )
            done = await self.pool.fetchval(
                "UPDATE device_health SET active = $3::jsonb, updated_at = now()"
                " WHERE device_id = $1 AND active = $2::jsonb RETURNING true",
                device_id, json.dumps(before), json.dumps(after),
            )  # fmt: skip
        except asyncpg.PostgresError as exc:
            raise DatabaseError(f"changing device health failed: {exc}") from exc
        return bool(done)

    async def replay_once(
        self,
        dlq_topic: str,
        entries: Sequence[tuple[int, int]],
        send: Callable[[set[tuple[int, int]]], Awaitable[None]],
    ) -> set[tuple[int, int]]:
        """Of the dead letters ``entries`` ((partition, offset) of ``dlq_topic``), those never
        replayed before: ``send`` re-injects them and they are recorded, in one transaction. A
        send that fails records nothing; a crash after the send and before the commit can
        re-inject them once more, which the pipeline's case identity absorbs."""
        if not entries:
            return set()
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                rows = await conn.fetch(
                    'INSERT INTO dlq_replays (dlq_topic, partition, "offset") SELECT $1, p, o'
                    " FROM unnest($2::int[], $3::bigint[]) AS e(p, o) ON CONFLICT DO NOTHING"
                    ' RETURNING partition, "offset"',
                    dlq_topic, [p for p, _ in entries], [o for _, o in entries],
                )  # fmt: skip
                new = {(r[0], r[1]) for r in rows}
                await send(new)
        except asyncpg.PostgresError as exc:
            raise DatabaseError(f"recording replayed dead letters failed: {exc}") from exc
        return new

    async def begin_batch(
        self, violations: Sequence[AnyViolation], documents: Sequence[str] | None = None
    ) -> PendingWrite:
        """Write the cases of ``violations`` in an open transaction and return it with the
        alerts of the cases that are new. ``documents`` are the violations' JSON as received
        (stored as is; serialised here when absent). A violation ``attached_to`` a case (the
        same trip) is stored as that case's evidence, not as a case.

        A violation for a pass that already has a case is a re-decision (another detector or
        baseline version): it updates the case while it is pending review, and only sets
        ``review_reason`` once an officer has confirmed it; either way it joins the case's
        decision trail. A decision already in the trail (a replay) changes nothing.

        The caller publishes the alerts, then commits: a crash before the commit rolls the
        cases back and the replayed batch writes them (and alerts them) again, so every case
        gets at least one alert, with a deterministic alert id. Raising means nothing was
        written and offsets must not be committed."""
        docs = documents if documents is not None else [v.model_dump_json() for v in violations]
        cases = [(v, d) for v, d in zip(violations, docs, strict=True) if v.attached_to is None]
        attached = [(v, d) for v, d in zip(violations, docs, strict=True) if v.attached_to]
        rows = [_row(v, d) for v, d in cases]
        conn = await self.pool.acquire()
        tx = conn.transaction()
        try:
            await tx.start()
            new = await self._insert(conn, rows)
            await self._redecide(conn, [(v, d) for v, d in cases if case_id(v) not in new])
            await self._trail(conn, [(v, d) for v, d in cases if case_id(v) in new], applied=True)
            if attached:
                await conn.executemany(
                    "INSERT INTO case_attachments (violation_id, case_id, site_id, device_id,"
                    " record_id, ts, violation) VALUES ($1, $2, $3, $4, $5, $6, $7)"
                    " ON CONFLICT DO NOTHING",
                    [(v.violation_id, v.attached_to, v.site_id, v.detection.device_id,
                      v.record_id, v.ts, d) for v, d in attached],
                )  # fmt: skip
        except (asyncpg.PostgresError, ArgumentError) as exc:
            await tx.rollback()
            await self.pool.release(conn)
            raise _failed(f"writing {len(rows)} cases failed", exc) from exc
        alerts = [_alert(v) for v, _ in cases if case_id(v) in new]
        return PendingWrite(conn, tx, alerts, self.pool.release)

    async def _insert(self, conn: Any, rows: list[tuple[Any, ...]]) -> set[str]:
        """Insert and return the ids of the rows that were new. Fresh batches (the usual case)
        go straight in with COPY; a batch that meets an existing case (a replay or a
        re-decision) takes the slower path through a staging table and ON CONFLICT DO
        NOTHING."""
        if not rows:
            return set()
        try:
            async with conn.transaction():  # a savepoint
                await conn.copy_records_to_table("cases", records=rows, columns=COLUMNS)
            return {r[0] for r in rows}
        except asyncpg.UniqueViolationError:
            pass
        await conn.execute(
            "CREATE TEMP TABLE IF NOT EXISTS incoming_cases"
            " (LIKE cases INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
        await conn.copy_records_to_table("incoming_cases", records=rows, columns=COLUMNS)
        inserted = await conn.fetch(
            f"INSERT INTO cases ({_COLS}) SELECT {_COLS} FROM incoming_cases"
            " ON CONFLICT DO NOTHING RETURNING case_id"
        )
        await conn.execute("TRUNCATE incoming_cases")
        return {r[0] for r in inserted}

    async def _redecide(self, conn: Any, later: list[tuple[AnyViolation, str]]) -> None:
        """Violations for passes that already have a case: new decisions update it (pending)
        or mark it for another look (confirmed), and join its trail."""
        if not later:
            return
        rows = await conn.fetch(
            "SELECT c.case_id, c.status, c.site_id, c.device_id, c.record_id, c.violation_code,"
            " d.violation_id IS NOT NULL AS known FROM unnest($1::text[], $2::text[], $3::text[],"
            " $4::text[], $5::text[]) AS p(site_id, device_id, record_id, code, violation_id)"
            " JOIN cases c ON (c.site_id, c.device_id, c.record_id, c.violation_code)"
            "  = (p.site_id, p.device_id, p.record_id, p.code)"
            " LEFT JOIN case_decisions d ON d.case_id = c.case_id"
            "  AND d.violation_id = p.violation_id",
            *zip(*[(v.site_id, v.detection.device_id, v.record_id, v.violation_code,
                    v.violation_id) for v, _ in later], strict=True),
        )  # fmt: skip
        found = {(r["site_id"], r["device_id"], r["record_id"], r["violation_code"]): r
                 for r in rows}  # fmt: skip
        pending: list[tuple[str, AnyViolation, str]] = []
        confirmed: list[tuple[str, AnyViolation, str]] = []
        for v, doc in later:
            r = found.get((v.site_id, v.detection.device_id, v.record_id, v.violation_code))
            if r is None or r["known"]:
                continue  # a replay of a decision the case already has
            (pending if r["status"] == "pending_review" else confirmed).append(
                (r["case_id"], v, doc)
            )
        sets = ", ".join(f"{c} = ${i + 2}" for i, c in enumerate(_DECIDED))
        await conn.executemany(
            f"UPDATE cases SET {sets} WHERE case_id = $1",
            [(cid, *_decided(v, doc)) for cid, v, doc in pending],
        )
        await conn.executemany(
            "UPDATE cases SET review_reason = $2 WHERE case_id = $1",
            [(cid, f"decided again after an officer confirmed it: {v.rule} v{v.rule_version} "
              f"(detector {v.detection.detector} {v.detection.detector_version}) proposes "
              f"{v.outcome}" + (f" {v.fine_cny} CNY" if v.fine_cny is not None else "")
              + "; the confirmed decision stands until an officer looks again")
             for cid, v, _ in confirmed],
        )  # fmt: skip
        await self._trail(conn, [(v, d) for _, v, d in pending], applied=True,
                          ids=[c for c, _, _ in pending])  # fmt: skip
        await self._trail(conn, [(v, d) for _, v, d in confirmed], applied=False,
                          ids=[c for c, _, _ in confirmed])  # fmt: skip

    async def _trail(
        self,
        conn: Any,
        decided: list[tuple[AnyViolation, str]],
        *,
        applied: bool,
        ids: list[str] | None = None,
    ) -> None:
        if not decided:
            return
        cids = ids or [case_id(v) for v, _ in decided]
        await conn.executemany(
            "INSERT INTO case_decisions (case_id, violation_id, outcome, fine_cny, rule,"
            " rule_version, applied, violation) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
            " ON CONFLICT DO NOTHING",
            [(cid, v.violation_id, v.outcome, v.fine_cny, v.rule, v.rule_version, applied, d)
             for cid, (v, d) in zip(cids, decided, strict=True)],
        )  # fmt: skip

    async def prior_offences(
        self, passes: Sequence[tuple[str, str | None, dt.datetime]], lookback_days: int
    ) -> list[int]:
        """For each (plate, colour, ts): cases of that vehicle — the normalised plate and its
        colour — confirmed by an officer (and any state after) with a pass in
        [ts − lookback_days, ts): the history a baseline's first offence and repeat tiers, and
        Art. 46's threshold, look at."""
        if not passes:
            return []
        try:
            rows = await self.pool.fetch(
                "SELECT p.i, count(c.case_id) AS n FROM unnest($1::text[], $2::text[],"
                " $3::timestamptz[]) WITH ORDINALITY AS p(plate, color, ts, i)"
                " LEFT JOIN cases c ON c.plate = p.plate"
                "  AND c.plate_color IS NOT DISTINCT FROM p.color"
                "  AND c.status = ANY($5::text[]) AND c.violation_code LIKE 'road.overload.%'"
                "  AND c.ts >= p.ts - make_interval(days => $4) AND c.ts < p.ts"
                " GROUP BY p.i ORDER BY p.i",
                [p for p, _, _ in passes], [c for _, c, _ in passes], [t for _, _, t in passes],
                lookback_days, list(CONFIRMED),
            )  # fmt: skip
        except asyncpg.PostgresError as exc:
            raise DatabaseError(f"reading case history failed: {exc}") from exc
        return [int(r["n"]) for r in rows]

    async def remember_trips(self, passes: Sequence[Trip]) -> None:
        """Store (case_id, plate, colour, ts, primary) passes; a stored one is left as it is,
        unless its vehicle changed (an officer corrected the plate): then it is that vehicle's
        pass, undecided again."""
        try:
            await self.pool.execute(
                "INSERT INTO trips (case_id, plate, plate_color, ts) SELECT * FROM"
                " unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[])"
                " ON CONFLICT (case_id) DO UPDATE SET plate = excluded.plate,"
                " plate_color = excluded.plate_color, primary_case = NULL"
                " WHERE (trips.plate, trips.plate_color)"
                " IS DISTINCT FROM (excluded.plate, excluded.plate_color)",
                [p[0] for p in passes], [p[1] for p in passes],
                [p[2] for p in passes], [p[3] for p in passes],
            )  # fmt: skip
        except (asyncpg.PostgresError, ArgumentError) as exc:
            raise _failed("writing trips failed", exc) from exc

    async def recall_trips(
        self, vehicles: Sequence[tuple[str, str | None]], since: dt.datetime, until: dt.datetime
    ) -> list[Trip]:
        try:
            rows = await self.pool.fetch(
                "SELECT t.* FROM trips t JOIN unnest($1::text[], $2::text[]) AS v(plate, color)"
                " ON t.plate = v.plate AND t.plate_color IS NOT DISTINCT FROM v.color"
                " WHERE t.ts BETWEEN $3 AND $4",
                [p for p, _ in vehicles], [c for _, c in vehicles], since, until,
            )  # fmt: skip
        except asyncpg.PostgresError as exc:
            raise DatabaseError(f"reading trips failed: {exc}") from exc
        return [(r["case_id"], r["plate"], r["plate_color"], r["ts"], r["primary_case"])
                for r in rows]  # fmt: skip

    async def resolve_trips(self, resolved: Sequence[tuple[str, str]]) -> None:
        try:
            await self.pool.execute(
                "UPDATE trips t SET primary_case = r.primary_case FROM unnest($1::text[],"
                " $2::text[]) AS r(case_id, primary_case)"
                " WHERE t.case_id = r.case_id AND t.primary_case IS NULL",
                [c for c, _ in resolved], [p for _, p in resolved],
            )  # fmt: skip
        except (asyncpg.PostgresError, ArgumentError) as exc:
            raise _failed("writing trips failed", exc) from exc

    async def write_signals(self, signals: Sequence[ControlSignal]) -> int:
        """Store control-station signal changes, idempotently; returns how many were new."""
        try:
            rows = await self.pool.fetch(
                "INSERT INTO control_signals (section_id, direction, ts, shown, station)"
                " SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[],"
                " $5::text[]) ON CONFLICT DO NOTHING RETURNING ts",
                [s.section_id for s in signals], [s.direction for s in signals],
                [s.ts for s in signals], [s.shown for s in signals], [s.station for s in signals],
            )  # fmt: skip
        except asyncpg.PostgresError as exc:
            raise DatabaseError(f"writing {len(signals)} signals failed: {exc}") from exc
        return len(rows)

    async def signals_shown(
        self, asks: Sequence[tuple[str, str, dt.datetime]]
    ) -> list[Literal["go", "stop"] | None]:
        """For each (section, direction, ts): the last signal change at or before ts."""
        try:
            rows = await self.pool.fetch(
                "SELECT a.n, (SELECT s.shown FROM control_signals s WHERE s.section_id = a.sec"
                " AND s.direction = a.dir AND s.ts <= a.ts ORDER BY s.ts DESC LIMIT 1) AS shown"
                " FROM unnest($1::text[], $2::text[], $3::timestamptz[])"
                " WITH ORDINALITY AS a(sec, dir, ts, n) ORDER BY a.n",
                [a[0] for a in asks], [a[1] for a in asks], [a[2] for a in asks],
            )  # fmt: skip
        except asyncpg.PostgresError as exc:
            raise DatabaseError(f"reading signals failed: {exc}") from exc
        return [r["shown"] for r in rows]

    async def write_leads(self, leads: Sequence[tuple[Lead, str]]) -> int:
        """Store leads (with their JSON as received), idempotently; returns how many were new."""
        if not leads:
            return 0
        try:
            rows = await self.pool.fetch(
                "INSERT INTO leads (lead_id, kind, plate, site_id, ts, score, lead)"
                " SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[],"
                " $5::timestamptz[], $6::real[], $7::jsonb[])"
                " ON CONFLICT DO NOTHING RETURNING lead_id",
                [x.lead_id for x, _ in leads], [x.kind for x, _ in leads],
                [x.plate for x, _ in leads], [x.site_id for x, _ in leads],
                [x.ts for x, _ in leads], [x.score for x, _ in leads], [d for _, d in leads],
            )  # fmt: skip
        except (asyncpg.PostgresError, ArgumentError) as exc:
            raise _failed(f"writing {len(leads)} leads failed", exc) from exc
        return len(rows)

    async def remember_sightings(self, rows: Sequence[tuple[Sighting, dt.datetime]]) -> None:
        """Store (sighting, keep until) pairs, idempotently: a replayed batch changes nothing."""
        if not rows:
            return
        try:
            await self.pool.execute(
                "INSERT INTO sightings (capture_id, plate, site_id, ts, keep_until, sighting)"
                " SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[],"
                " $5::timestamptz[], $6::json[]) ON CONFLICT DO NOTHING",
                [x.capture_id for x, _ in rows], [x.plate for x, _ in rows],
                [x.site_id for x, _ in rows], [x.ts for x, _ in rows], [k for _, k in rows],
                [x.model_dump_json() for x, _ in rows],
            )  # fmt: skip
        except (asyncpg.PostgresError, ArgumentError) as exc:
            raise _failed(f"writing {len(rows)} sightings failed", exc) from exc

    async def recall_sightings(
        self, plates: Sequence[str], since: dt.datetime, until: dt.datetime
    ) -> list[Sighting]:
        """The stored sightings of ``plates`` with since ≤ ts ≤ until, by time (then id)."""
        if not plates:
            return []
        try:
            rows = await self.pool.fetch(
                "SELECT sighting FROM sightings WHERE plate = ANY($1::text[])"
                " AND ts BETWEEN $2 AND $3 ORDER BY ts, capture_id",
                list(plates), since, until,
            )  # fmt: skip
        except asyncpg.PostgresError as exc:
            raise DatabaseError(f"reading sightings failed: {exc}") from exc
        return [Sighting.model_validate_json(r["sighting"]) for r in rows]

    async def forget_sightings(self, before: dt.datetime) -> int:
        """Drop the sightings no later one can need any more (keep_until < ``before``)."""
        try:
            done = await self.pool.execute("DELETE FROM sightings WHERE keep_until < $1", before)
        except asyncpg.PostgresError as exc:
            raise DatabaseError(f"forgetting sightings failed: {exc}") from exc
        return int(done.split()[-1])

    async def leads(self) -> list[dict[str, Any]]:
        try:
            rows = await self.pool.fetch(
                "SELECT lead_id, kind, plate, site_id, ts, score, status,"
                " lead->>'record_id' AS record_id,"
                " ARRAY(SELECT s->>'capture_id' FROM jsonb_array_elements(lead->'sightings') s)"
                "  AS captures"
                " FROM leads ORDER BY ts, lead_id"
            )
        except asyncpg.PostgresError as exc:
            raise DatabaseError(f"reading leads failed: {exc}") from exc
        return [dict(r) for r in rows]

    async def cases(self, where: str = "TRUE", *args: Any) -> list[dict[str, Any]]:
        """Read side for the CLI and tests: case rows without the stored violation document."""
        cols = ", ".join(c for c in (*COLUMNS, "status", "created_at") if c != "violation")
        try:
            rows = await self.pool.fetch(
                f"SELECT {cols} FROM cases WHERE {where} ORDER BY ts, case_id", *args
            )
        except asyncpg.PostgresError as exc:
            raise DatabaseError(f"reading cases failed: {exc}") from exc
        return [dict(r) for r in rows]


def _alert(v: AnyViolation) -> Alert:
    cid = case_id(v)
    return Alert(
        alert_id=derive_id("alert", cid), kind="case.created", case_id=cid, site_id=v.site_id,
        ts=v.ts, plate=v.plate, violation_code=v.violation_code, outcome=v.outcome,
        fine_cny=v.fine_cny, overload_kg=v.overload_kg,
    )  # fmt: skip


def _row(v: AnyViolation, document: str) -> tuple[Any, ...]:
    return (
        case_id(v), v.violation_id, v.detection_id, v.violation_code, v.record_id, v.site_id,
        v.detection.device_id, v.ts.astimezone(dt.UTC), v.plate, v.plate_color, v.outcome,
        v.fine_cny, v.measured_kg, v.tolerance_kg, v.limit_kg, v.overload_kg, v.tier,
        v.legal_basis, v.penalty_basis, json.dumps(v.notices, ensure_ascii=False), document,
    )  # fmt: skip


def _decided(v: AnyViolation, document: str) -> tuple[Any, ...]:
    """The values of ``_DECIDED`` for ``v``, in that order."""
    return tuple(x for c, x in zip(COLUMNS, _row(v, document), strict=True) if c in _DECIDED)


def database_away(exc: BaseException) -> bool:
    """Whether ``exc`` (a DatabaseError, or a driver error that escaped a query) says the
    database is away for now, a restart or failover worth waiting for, rather than a statement
    that is wrong."""
    if isinstance(exc, DatabaseError):
        return exc.__cause__ is not None and database_away(exc.__cause__)
    # "connection is closed"; a connection that died in a query, reset when it goes back to
    # the pool ("cannot switch to state …; another operation is in progress")
    if isinstance(exc, (asyncpg.InterfaceError, asyncpg.InternalClientError)):
        return True
    if isinstance(exc, asyncpg.PostgresError):
        # the SQLSTATE classes that also stop a stage's batch (events.stage)
        return str(getattr(exc, "sqlstate", "") or "")[:2] in AWAY_SQLSTATES
    # a socket error, only where asyncpg raised it (a refused or vanished connection)
    return isinstance(exc, OSError) and any(
        "asyncpg" in frame.filename for frame in traceback.extract_tb(exc.__traceback__)
    )
