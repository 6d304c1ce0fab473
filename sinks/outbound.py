"""What the agency sends out (抄告 and the like): one interface, :class:`Outbound`, with a file
drop (a folder another system collects from; the demo's) and an HTTP POST to a platform (the
车辆超限管理信息系统 or a provincial exchange), chosen by settings.

An item is a record id, its JSON and its PDF. Sending the same item again is harmless: the
folder is overwritten with the same bytes, and the platform gets the id as ``Idempotency-Key``.
The HTTP body is signed like the bank's inbound callback (``POST /v1/payments``): the header
``X-Offsite-Signature: sha256=<hex>`` is HMAC-SHA256 of the body with the shared secret.

Errors: :class:`OutboundError` (an :class:`~events.OffsiteError`) with the reason in Chinese,
for the attempt log and the console page; the caller retries later.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from events import OffsiteError

SIGNATURE_HEADER = "X-Offsite-Signature"


class OutboundError(OffsiteError):
    """An item was not delivered; the message says why (it is shown to officers)."""


@dataclass(frozen=True)
class Item:
    """One record to send: ``kind`` (e.g. ``chaogao``), its id, its fields and its document."""

    kind: str
    item_id: str
    record: dict[str, Any]
    pdf: bytes


class Outbound(Protocol):
    """Delivers one item. Returns a short receipt (where it went); raises
    :class:`OutboundError` when it was not delivered (the item stays due)."""

    name: str

    async def send(self, item: Item) -> str: ...


def signature(secret: str, body: bytes) -> str:
    """The header value that authenticates ``body`` (the same scheme as console/payments.py)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def http_failure(exc: OSError, who: str, timeout_s: float) -> str:
    """Why a urllib request to ``who`` failed, as officers read it: its status, no answer in
    time, or no connection (an HTTPError is closed here)."""
    if isinstance(exc, urllib.error.HTTPError):
        exc.close()
        return f"{who}应答 HTTP {exc.code}"
    reason = getattr(exc, "reason", exc)
    if isinstance(exc, TimeoutError) or isinstance(reason, TimeoutError):
        return f"{who}在 {timeout_s:g} 秒内未应答"
    return f"{who}无法连接：{reason}"


class FileDrop:
    """Writes ``<dir>/<kind>/<item_id>.json`` and ``.pdf``, each atomically (a temporary file
    renamed), the PDF first: a collector that sees the JSON finds its PDF."""

    name = "file"

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _write(self, item: Item) -> str:
        target = self.folder / item.kind
        body = json.dumps(item.record, ensure_ascii=False, sort_keys=True, indent=1).encode()
        try:
            target.mkdir(parents=True, exist_ok=True)
            for suffix, data in ((".pdf", item.pdf), (".json", body)):
                final = target / f"{item.item_id}{suffix}"
                tmp = final.with_suffix(suffix + ".tmp")
                tmp.write_bytes(data)
                os.replace(tmp, final)
        except OSError as exc:
            raise OutboundError(f"无法写入交换目录 {target}：{exc.strerror or exc}") from None
        return str(target / f"{item.item_id}.json")

    async def send(self, item: Item) -> str:
        return await asyncio.to_thread(self._write, item)


class HttpPost:
    """``POST <url>`` with JSON ``{"kind", "id", "record", "pdf_base64"}``, the headers
    ``Idempotency-Key: <id>`` and ``X-Offsite-Signature``; any 2xx is delivered (the platform
    answers the same for an id it has), anything else, a timeout or no connection is not."""

    name = "http"

    def __init__(self, url: str, secret: str, timeout_s: float = 10.0) -> None:
        self.url, self.secret, self.timeout_s = url, secret, timeout_s

    def body(self, item: Item) -> bytes:
        return json.dumps({"kind": item.kind, "id": item.item_id, "record": item.record,
                           "pdf_base64": base64.b64encode(item.pdf).decode()},
                          ensure_ascii=False, sort_keys=True).encode()  # fmt: skip

    def _post(self, item: Item) -> str:
        body = self.body(item)
        req = urllib.request.Request(self.url, data=body, method="POST", headers={
            "Content-Type": "application/json", "Idempotency-Key": item.item_id,
            SIGNATURE_HEADER: signature(self.secret, body)})  # fmt: skip
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                return f"HTTP {resp.status}"
        except OSError as exc:  # HTTPError, URLError and TimeoutError are OSErrors
            raise OutboundError(http_failure(exc, "平台", self.timeout_s)) from None

    async def send(self, item: Item) -> str:
        return await asyncio.to_thread(self._post, item)
