"""The PostgreSQL case store: migrations and idempotent batch writes.

asyncpg errors become DatabaseError here and nowhere else.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from importlib import resources
from typing import Any

import asyncpg

from events import Alert, DatabaseError, Lead, Sighting, Violation, derive_id

COLUMNS = (
    "case_id", "violation_id", "detection_id", "violation_code", "record_id", "site_id", "ts",
    "plate", "plate_color", "outcome", "fine_cny", "measured_kg", "tolerance_kg", "limit_kg",
    "overload_kg", "tier", "legal_basis", "penalty_basis", "violation",
)  # fmt: skip
_COLS = ", ".join(COLUMNS)


def case_id(v: Violation) -> str:
    return derive_id("case", v.violation_id)


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

    async def begin_batch(
        self, violations: Sequence[Violation], documents: Sequence[str] | None = None
    ) -> PendingWrite:
        """Write the cases of ``violations`` in an open transaction and return it with the
        alerts of the cases that are new. ``documents`` are the violations' JSON as received
        (stored as is; serialised here when absent).

        The caller publishes the alerts, then commits: a crash before the commit rolls the
        cases back and the replayed batch writes them (and alerts them) again, so every case
        gets at least one alert, with a deterministic alert id. Raising means nothing was
        written and offsets must not be committed."""
        docs = documents if documents is not None else [v.model_dump_json() for v in violations]
        rows = [_row(v, d) for v, d in zip(violations, docs, strict=True)]
        conn = await self.pool.acquire()
        tx = conn.transaction()
        try:
            await tx.start()
            new = await self._insert(conn, rows)
        except asyncpg.PostgresError as exc:
            await tx.rollback()
            await self.pool.release(conn)
            raise DatabaseError(f"writing {len(rows)} cases failed: {exc}") from exc
        alerts = [_alert(v) for v in violations if case_id(v) in new]
        return PendingWrite(conn, tx, alerts, self.pool.release)

    async def _insert(self, conn: Any, rows: list[tuple[Any, ...]]) -> set[str]:
        """Insert and return the ids of the rows that were new. Fresh batches (the usual case)
        go straight in with COPY; a batch that meets an existing case (a replay) takes the
        slower path through a staging table and ON CONFLICT DO NOTHING."""
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
        return {r[0] for r in inserted}

    async def prior_offences(
        self, passes: Sequence[tuple[str, dt.datetime]], lookback_days: int
    ) -> list[int]:
        """For each (plate, ts): cases of the plate confirmed by an officer (or approved after
        legal review) with a pass in [ts − lookback_days, ts) — the history a baseline's first
        offence and repeat tiers look at."""
        if not passes:
            return []
        try:
            rows = await self.pool.fetch(
                "SELECT p.i, count(c.case_id) AS n"
                " FROM unnest($1::text[], $2::timestamptz[]) WITH ORDINALITY AS p(plate, ts, i)"
                " LEFT JOIN cases c ON c.plate = p.plate"
                "  AND c.status IN ('confirmed', 'approved')"
                "  AND c.ts >= p.ts - make_interval(days => $3) AND c.ts < p.ts"
                " GROUP BY p.i ORDER BY p.i",
                [p for p, _ in passes],
                [t for _, t in passes],
                lookback_days,
            )
        except asyncpg.PostgresError as exc:
            raise DatabaseError(f"reading case history failed: {exc}") from exc
        return [int(r["n"]) for r in rows]

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
        except asyncpg.PostgresError as exc:
            raise DatabaseError(f"writing {len(leads)} leads failed: {exc}") from exc
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
        except asyncpg.PostgresError as exc:
            raise DatabaseError(f"writing {len(rows)} sightings failed: {exc}") from exc

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


def _alert(v: Violation) -> Alert:
    cid = case_id(v)
    return Alert(
        alert_id=derive_id("alert", cid), kind="case.created", case_id=cid, site_id=v.site_id,
        ts=v.ts, plate=v.plate, violation_code=v.violation_code, outcome=v.outcome,
        fine_cny=v.fine_cny, overload_kg=v.overload_kg,
    )  # fmt: skip


def _row(v: Violation, document: str) -> tuple[Any, ...]:
    return (
        case_id(v), v.violation_id, v.detection_id, v.violation_code, v.record_id, v.site_id,
        v.ts.astimezone(dt.UTC), v.plate, v.plate_color, v.outcome, v.fine_cny, v.measured_kg,
        v.tolerance_kg, v.limit_kg, v.overload_kg, v.tier, v.legal_basis, v.penalty_basis,
        document,
    )  # fmt: skip
