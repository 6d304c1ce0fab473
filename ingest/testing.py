"""In-memory doubles of what the intake needs: a gateway or watcher test needs no broker."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Sequence

from events import BrokerError
from events.stage import Outgoing

from .intake import Outcome


class ListProducer:
    """Keeps what it is sent; ``fail`` makes the next sends raise BrokerError."""

    def __init__(self) -> None:
        self.sent: list[Outgoing] = []
        self.fail = False

    async def send_and_wait(self, messages: Sequence[Outgoing]) -> None:
        if self.fail:
            raise BrokerError("the broker is down (test double)")
        self.sent.extend(messages)


class MemoryBlobs:
    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}

    def uri(self, sha256: str) -> str:
        return f"blob://sha256/{sha256}.jpg"

    def put(self, data: bytes, sha256: str) -> None:
        assert hashlib.sha256(data).hexdigest() == sha256
        self.blobs[sha256] = data

    def get(self, sha256: str) -> bytes | None:
        return self.blobs.get(sha256)


class MemoryKeys:
    """API key → device."""

    def __init__(self, keys: dict[str, str] | None = None) -> None:
        self.keys = dict(keys or {})

    async def device_of(self, key: str) -> str | None:
        return self.keys.get(key)


class MemoryAcceptances:
    """The acceptance log in a dict; a twin in flight waits on the first one's lock, as a
    second INSERT waits on the first one's row in PostgreSQL."""

    def __init__(self) -> None:
        self.accepted: dict[tuple[str, str, str], str] = {}
        self._locks: dict[tuple[str, str, str], asyncio.Lock] = {}

    async def once(
        self,
        kind: str,
        device_id: str,
        message_id: str,
        digest: str,
        produce: Callable[[], Awaitable[None]],
    ) -> Outcome:
        key = (kind, device_id, message_id)
        async with self._locks.setdefault(key, asyncio.Lock()):
            before = self.accepted.get(key)
            if before is not None:
                return "again" if before == digest else "conflict"
            await produce()
            self.accepted[key] = digest
            return "new"
