"""Gateway credentials (API keys, kept only as SHA-256) and the log of accepted messages, in PostgreSQL.

Both live in the database so that every gateway instance agrees on them. asyncpg errors become
DatabaseError here and nowhere else.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

import asyncpg

from events import DatabaseError

KEY_PREFIX = "osk_"

# Errors of the connection rather than of a statement: the database went away mid-request.
_LOST = (OSError, asyncpg.InterfaceError)


def key_hash(key: str) -> str:
    """What is stored of a key. A key carries 256 random bits, so a plain SHA-256 cannot be
    searched backwards; a slow password hash would only slow every request down."""
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class DeviceKey:
    key_id: str
    device_id: str
    created_at: dt.datetime
    revoked_at: dt.datetime | None


class DeviceKeyStore:
    """Device API keys. Created keys are returned once and never stored in clear."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @classmethod
    async def connect(cls, url: str, *, size: int = 8) -> DeviceKeyStore:
        try:
            pool = await asyncpg.create_pool(
                url,
                min_size=1,
                max_size=size,
                server_settings={
                    # a twin request waits this long for the first one's row, then is told to
                    # retry; a gateway host that vanished mid-request (no FIN) stops holding
                    # its row after the idle limit
                    "lock_timeout": "10s",
                    "idle_in_transaction_session_timeout": "60s",
                },
            )
        except (OSError, asyncpg.PostgresError) as exc:
            raise DatabaseError(f"cannot connect to PostgreSQL: {exc}") from exc
        return cls(pool)

    async def close(self) -> None:
        await self.pool.close()

    async def create(self, device_id: str) -> tuple[str, str]:
        """A new key for ``device_id``: (key id, key). The key is not kept: show it once."""
        key_id = secrets.token_hex(4)
        key = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
        try:
            await self.pool.execute(
                "INSERT INTO device_keys (key_id, device_id, key_sha256) VALUES ($1, $2, $3)",
                key_id, device_id, key_hash(key),
            )  # fmt: skip
        except (asyncpg.PostgresError, *_LOST) as exc:
            raise DatabaseError(f"cannot store a key for {device_id}: {exc}") from exc
        return key_id, key

    async def revoke(self, device_id: str, key_id: str | None = None) -> int:
        """Revoke the device's active keys (or only ``key_id``); how many were revoked."""
        try:
            rows = await self.pool.fetch(
                "UPDATE device_keys SET revoked_at = now() WHERE device_id = $1"
                " AND revoked_at IS NULL AND ($2::text IS NULL OR key_id = $2) RETURNING key_id",
                device_id, key_id,
            )  # fmt: skip
        except (asyncpg.PostgresError, *_LOST) as exc:
            raise DatabaseError(f"cannot revoke the keys of {device_id}: {exc}") from exc
        return len(rows)

    async def keys(self, device_id: str) -> list[DeviceKey]:
        try:
            rows = await self.pool.fetch(
                "SELECT key_id, device_id, created_at, revoked_at FROM device_keys"
                " WHERE device_id = $1 ORDER BY created_at",
                device_id,
            )
        except (asyncpg.PostgresError, *_LOST) as exc:
            raise DatabaseError(f"cannot read the keys of {device_id}: {exc}") from exc
        return [DeviceKey(**dict(r)) for r in rows]

    async def device_of(self, key: str) -> str | None:
        """The device of an active key, or None."""
        if not key.startswith(KEY_PREFIX) or len(key) > 200:
            return None
        try:
            device: str | None = await self.pool.fetchval(
                "SELECT device_id FROM device_keys WHERE key_sha256 = $1 AND revoked_at IS NULL",
                key_hash(key),
            )
        except (asyncpg.PostgresError, *_LOST) as exc:
            raise DatabaseError(f"cannot look up a key: {exc}") from exc
        return device


class AcceptanceLog:
    """The ids the gateway and the watcher got acknowledged by the broker (``ingest.intake
    .Acceptances``)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def once(
        self,
        kind: str,
        device_id: str,
        message_id: str,
        digest: str,
        produce: Callable[[], Awaitable[None]],
    ) -> Literal["new", "again", "conflict"]:
        """The row is inserted in a transaction that stays open while ``produce`` waits for the
        broker, and commits after it: a twin request's INSERT waits on the uncommitted row, then
        finds it (``again``) — or, if this one failed or its process died and the transaction
        rolled back, inserts it and produces itself. The one window for a second message: the
        broker acknowledged, and the commit then failed or never happened."""
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                fresh = await conn.fetchval(
                    "INSERT INTO ingest_accepted (kind, device_id, message_id, digest)"
                    " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING true",
                    kind, device_id, message_id, digest,
                )  # fmt: skip
                if not fresh:
                    before = await conn.fetchval(
                        "SELECT digest FROM ingest_accepted"
                        " WHERE kind = $1 AND device_id = $2 AND message_id = $3",
                        kind, device_id, message_id,
                    )  # fmt: skip
                    return "again" if before == digest else "conflict"
                await produce()  # raising rolls the row back: nothing is recorded
        except (asyncpg.PostgresError, *_LOST) as exc:
            raise DatabaseError(f"cannot record {kind} {message_id}: {exc}") from exc
        return "new"
