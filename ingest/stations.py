"""Records in a station's own format through the intake: decode (ingest.formats), check who
sent them, fetch the images they name by URL, accept each message as the gateway accepts
offsite's own — or, for a record the adapter cannot map, send its dead letter.

The gateway (``POST /v1/formats/{name}``), the folder watcher and ``offsite ingest import``
all call :meth:`Stations.take`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from events.registry import Registry

from .fetch import Fetcher
from .formats import Item, Unmapped, dead_letter, decode
from .intake import ANPR, WIM, Intake, Refused, Upload


@dataclass(frozen=True)
class Result:
    """What became of one message of a station's body."""

    status: str  # accepted, dead_letter, refused
    detail: dict[str, Any]
    http: int = 202  # its status, had it been sent alone

    def document(self) -> dict[str, Any]:
        return {"status": self.status, **self.detail}


class Stations:
    def __init__(self, intake: Intake, registry: Registry, fetcher: Fetcher) -> None:
        self.intake, self.registry, self.fetcher = intake, registry, fetcher

    async def take(self, fmt: str, device: str | None, body: bytes) -> list[Result]:
        """Each message of ``body`` (format ``fmt``) from ``device`` (None: a trusted folder or
        file). A Refused of one message is its result; a ServiceError stops the rest (nothing
        after it was accepted: the sender retries the whole body, the accepted ones are
        accepted again without being produced twice)."""
        out = []
        for x in decode(fmt, body, self.registry):
            if isinstance(x, Unmapped):
                letter = dead_letter(x, self.intake.topic_prefix)
                await self.intake.producer.send_and_wait([letter])
                out.append(Result("dead_letter", {"field": x.field, "reason": str(x)}, 422))
                continue
            try:
                out.append(await self._accept(x, device))
            except Refused as exc:
                out.append(Result("refused", exc.document(), exc.status))
        return out

    async def _accept(self, item: Item, device: str | None) -> Result:
        if device is not None and device != item.sender:
            raise Refused(403, "forbidden", f"the record is of device {item.sender} (by its "
                          f"code), but the key belongs to {device!r}",
                          [("", "not the device of this key")])  # fmt: skip
        uploads: list[Upload] = []
        for image in item.images:
            data = image.data
            if data is None:
                assert image.url is not None
                data = await asyncio.to_thread(self.fetcher.fetch, image.url, image.source)
            uploads.append(Upload(image.role, data, image.source))
        kind = WIM if item.kind == "wim" else ANPR
        accepted = await self.intake.accept(kind, None, item.doc, uploads)
        return Result("accepted", accepted.document())


def status_of(results: Sequence[Result]) -> int:
    """202 when every message was accepted (or there was none); else the highest status of
    the others (a 5xx: retry the body; a 4xx: the record is wrong, or in the dead letters)."""
    return max((r.http for r in results if r.status != "accepted"), default=202)
