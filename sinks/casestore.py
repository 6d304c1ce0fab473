"""The PostgreSQL case store: migrations, idempotent batch writes, the alert outbox.

asyncpg errors become DatabaseError here and nowhere else.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from importlib import resources
from typing import Any

import asyncpg

from events import Alert, DatabaseError, Violation, derive_id

COLUMNS = (
    "case_id", "violation_id", "detection_id", "violation_code", "record_id", "site_id", "ts",
    "plate", "plate_color", "outcome", "fine_cny", "measured_kg", "tolerance_kg", "limit_kg",
    "overload_kg", "tier", "legal_basis", "penalty_basis", "violation",
)  # fmt: skip


def case_id(v: Violation) -> str:
    return derive_id("case", v.violation_id)


def migrations() -> list[tuple[int, str, str]]:
    """(version, name, sql) of every migration shipped in sinks/migrations, in order."""
    out = []
    for f in resources.files("sinks").joinpath("migrations").iterdir():
        if f.name.endswith(".sql"):
            out.append((int(f.name.split("_", 1)[0]), f.name, f.read_text(encoding="utf-8")))
    return sorted(out)


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

    async def write_batch(self, violations: Sequence[Violation]) -> list[Alert]:
        """Insert the cases of ``violations`` in one transaction (COPY, then ON CONFLICT DO
        NOTHING) and return the alerts still owed for them, new or left from a crash.
        Raising means nothing was written and offsets must not be committed."""
        rows = [_row(v) for v in violations]
        ids = [r[0] for r in rows]
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                await conn.execute(
                    "CREATE TEMP TABLE IF NOT EXISTS incoming_cases"
                    " (LIKE cases INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
                )
                await conn.copy_records_to_table("incoming_cases", records=rows, columns=COLUMNS)
                cols = ", ".join(COLUMNS)
                await conn.execute(
                    f"INSERT INTO cases ({cols}) SELECT {cols} FROM incoming_cases"
                    " ON CONFLICT DO NOTHING"
                )
                owed = await conn.fetch(
                    "SELECT case_id, site_id, ts, plate, violation_code, outcome, fine_cny,"
                    " overload_kg FROM cases WHERE case_id = ANY($1) AND alerted_at IS NULL"
                    " ORDER BY ts, case_id",
                    ids,
                )
        except asyncpg.PostgresError as exc:
            raise DatabaseError(f"writing {len(rows)} cases failed: {exc}") from exc
        return [
            Alert(alert_id=derive_id("alert", r["case_id"]), kind="case.created", **dict(r))
            for r in owed
        ]

    async def mark_alerted(self, case_ids: Sequence[str]) -> None:
        if not case_ids:
            return
        try:
            await self.pool.execute(
                "UPDATE cases SET alerted_at = now() WHERE case_id = ANY($1)", list(case_ids)
            )
        except asyncpg.PostgresError as exc:
            raise DatabaseError(f"marking alerts sent failed: {exc}") from exc

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


def _row(v: Violation) -> tuple[Any, ...]:
    return (
        case_id(v), v.violation_id, v.detection_id, v.violation_code, v.record_id, v.site_id,
        v.ts.astimezone(dt.UTC), v.plate, v.plate_color, v.outcome, v.fine_cny, v.measured_kg,
        v.tolerance_kg, v.limit_kg, v.overload_kg, v.tier, v.legal_basis, v.penalty_basis,
        v.model_dump_json(),
    )  # fmt: skip
