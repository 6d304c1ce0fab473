"""Accepting a WIM record or an ANPR capture from a device: validate, authorize, store images, produce once.

The HTTP gateway (ingest.gateway) and the folder watcher (ingest.watch) both hand what a device
sent to :class:`Intake`, which needs four small things given to it (composition in
offsite.gateway; in-memory doubles in ingest.testing):

- a :class:`Producer` that sends to the broker and returns only once it acknowledged (acks=all),
- a :class:`BlobWriter`, the content-addressed image store,
- a :class:`DeviceKeys` lookup (the gateway's credentials),
- an :class:`Acceptances` log that makes a re-sent record produce nothing.

What is not accepted raises :class:`Refused`, which carries the HTTP status, a short code, a
one-line message and the (field, reason) problems. A broker or database failure raises
``events.ServiceError``: nothing was recorded, the device should retry.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import io
import ipaddress
import json
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Protocol

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from events import ROAD_ANPR, ROAD_WIM, AnprCapture, ImageRef, OffsiteError, WimRecord
from events.images import jpeg_is_whole
from events.models import TS_WINDOW, ImageRole
from events.registry import Registry
from events.stage import Outgoing, validation_reason

MiB = 1024 * 1024
ROLES: tuple[str, ...] = ImageRole.__args__  # type: ignore[attr-defined]
MAX_ID_CHARS = 128  # a record_id or capture_id
IMAGE_REF_BYTES = 512  # what the gateway adds to a capture per image (role, uri, sha256, size)


_HOST = re.compile(
    r"(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z]([a-z0-9-]{0,61}[a-z0-9])?"
)


def _fetch_entry(entry: str) -> str:
    """A host name or an IP network: a typo (a URL, ``10.20.0.0/33``) stops start-up."""
    try:
        ipaddress.ip_network(entry, strict=False)
    except ValueError:
        if not _HOST.fullmatch(entry.lower()):
            raise ValueError(f"{entry!r} is neither a host name nor an IP network") from None
    return entry


class GatewaySettings(BaseModel):
    """The ``gateway`` section of the settings: where it listens, and what it takes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=8090, ge=0, le=65535)
    max_body_bytes: int = Field(default=6 * MiB, ge=1024)
    # a message as produced (a JSON body, a capture's JSON part): far below the producer's
    # max_request_size (offsite.kafka, 4 MiB) and a broker's default message.max.bytes (1 MiB),
    # so a body the broker would refuse is refused 413 up front, never 503 after
    max_message_bytes: int = Field(default=256 * 1024, ge=1024, le=MiB)
    max_image_bytes: int = Field(default=2 * MiB, ge=1024)
    max_images: int = Field(default=6, ge=1, le=64)  # per capture, uploaded and referenced
    max_image_side_px: int = Field(default=12_000, ge=16)
    # checked in the header, before anything decodes: 32 MP is 96 MB as BGR in OCR
    max_image_pixels: int = Field(default=32_000_000, ge=256)
    # per device and gateway instance; a lane sees a vehicle a second at most, a station that
    # was offline catches up inside the burst
    rate_per_s: float = Field(default=50.0, gt=0)
    burst: int = Field(default=500, ge=1)
    # requests being worked on at once per instance: beyond it, 503 and Retry-After (memory
    # stays below max_in_flight × max_body_bytes)
    max_in_flight: int = Field(default=64, ge=1)
    # of which one device's key may hold this many: a slow or stuck station cannot fill them
    max_in_flight_per_device: int = Field(default=8, ge=1)
    # a client that is slow to send does not hold a connection: the request's headers must be
    # in within header_timeout_s (of connecting, or of the previous answer); each read of the
    # body waits at most body_idle_s, and the whole body may take body_timeout_s plus its size
    # at min_body_rate (bytes/s)
    header_timeout_s: float = Field(default=10.0, gt=0)
    body_idle_s: float = Field(default=10.0, gt=0)
    body_timeout_s: float = Field(default=30.0, gt=0)
    min_body_rate: float = Field(default=8192.0, gt=0)
    # /metrics (Prometheus), /healthz and /readyz: on a listener of their own, never on the
    # devices' port; port 0: none
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(default=9109, ge=0, le=65535)
    produce_timeout_s: float = Field(default=15.0, gt=0)
    key_cache_s: float = Field(default=5.0, ge=0)  # a revoked key stops working within this
    watch_interval_s: float = Field(default=1.0, gt=0)
    # a file of a set must be this old (unchanged) before it is taken: an upload in progress
    # keeps touching it
    watch_settle_s: float = Field(default=2.0, ge=0)
    watch_give_up_s: float = Field(default=600.0, ge=0)  # an incomplete set is rejected after
    # where images a station's record names by URL may be fetched from (ingest.fetch): host
    # names and IP networks; empty: none
    fetch_allow: tuple[Annotated[str, AfterValidator(_fetch_entry)], ...] = ()
    # a record dated outside [now − max_age_days, now + max_ahead_s] is refused (issue #28): no
    # device sends a pass from beyond the limitation period (行政处罚法 Art. 36: two years, five
    # at most) twice over, nor one a day ahead of the gateway's clock
    max_age_days: float = Field(default=3653.0, gt=0)
    max_ahead_s: float = Field(default=86_400.0, gt=0)


class Refused(OffsiteError):
    """A request the gateway does not accept: answered with ``status`` (4xx, or 503 when busy),
    ``code``, the one-line ``message`` and ``problems`` as (field, reason) pairs."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        problems: Sequence[tuple[str, str]] = (),
        retry_after: int | None = None,
    ) -> None:
        self.status, self.code, self.message = status, code, message
        self.problems, self.retry_after = list(problems), retry_after
        super().__init__(f"{status} {code}: {message}")

    def document(self) -> dict[str, Any]:
        return {
            "status": "refused",
            "error": self.code,
            "message": self.message,
            "problems": [{"field": f, "reason": r} for f, r in self.problems],
        }


class Producer(Protocol):
    async def send_and_wait(self, messages: Sequence[Outgoing]) -> None:
        """Called once per accepted message, inside the acceptance log's step; returns once the
        broker acknowledged every message (acks=all). Raising ServiceError means it may not
        have: the acceptance is not recorded and the device is told to retry."""
        ...


class BlobWriter(Protocol):
    """The content-addressed image store. Its methods block: they are called in a worker
    thread."""

    def uri(self, sha256: str) -> str:
        """The URI of the JPEG with this SHA-256, whether stored yet or not."""
        ...

    def put(self, data: bytes, sha256: str) -> None:
        """Store ``data`` durably before returning (idempotent: the same bytes, the same
        place). Raising means the message is not produced."""
        ...

    def get(self, sha256: str) -> bytes | None:
        """The stored JPEG with this SHA-256, or None."""
        ...


class DeviceKeys(Protocol):
    async def device_of(self, key: str) -> str | None:
        """The device an API key belongs to, None when the key is unknown or revoked. Called
        before each request is read; raising ServiceError answers 503."""
        ...


Outcome = Literal["new", "again", "conflict"]


class Acceptances(Protocol):
    async def once(
        self,
        kind: str,
        device_id: str,
        message_id: str,
        digest: str,
        produce: Callable[[], Awaitable[None]],
    ) -> Outcome:
        """Call ``produce`` unless (kind, device, id) was accepted before, and record it as
        accepted only if ``produce`` returned. ``new``: produced and recorded; ``again``: it was
        accepted before with this digest, nothing produced; ``conflict``: accepted before with
        other content. A twin in flight elsewhere is waited for. Raising means nothing was
        recorded (``produce`` may have run: the broker may hold the message)."""
        ...


@dataclass(frozen=True)
class Kind:
    """What a device may send: its topic, model, id field and which device field names it."""

    name: str
    topic: str
    model: type[WimRecord] | type[AnprCapture]
    id_field: str
    device_field: str
    device_type: str
    takes_images: bool


WIM = Kind("wim", ROAD_WIM, WimRecord, "record_id", "device_id", "wim", False)
ANPR = Kind("anpr", ROAD_ANPR, AnprCapture, "capture_id", "camera_id", "anpr", True)


@dataclass(frozen=True)
class Upload:
    """An image as a device sent it: its role, its bytes, and where it came from (a multipart
    part or a file name) for error messages."""

    role: str
    data: bytes
    source: str


@dataclass(frozen=True)
class Accepted:
    kind: Kind
    message_id: str
    site_id: str
    images: list[ImageRef] = field(default_factory=list)
    replayed: bool = False  # accepted before: nothing was produced this time

    def document(self) -> dict[str, Any]:
        """The 202 answer; the same for a re-send (``replayed`` is not in it)."""
        return {
            "status": "accepted",
            "topic": self.kind.topic,
            self.kind.id_field: self.message_id,
            "site_id": self.site_id,
            "images": [i.model_dump() for i in self.images],
        }


class _ImageClaim(BaseModel):
    """An image a capture names by the SHA-256 of a JPEG uploaded before."""

    model_config = ConfigDict(extra="ignore", strict=True)

    role: ImageRole
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Jpeg:
    sha256: str
    width: int
    height: int


def inspect_jpeg(data: bytes, source: str, limits: GatewaySettings) -> Jpeg:
    """Size, magic, header and wholeness of one image (blocking: Pillow reads it)."""
    if len(data) > limits.max_image_bytes:
        raise Refused(413, "too_large", f"{source}: image of {len(data)} bytes, the limit is "
                      f"{limits.max_image_bytes}", [(source, "image too large")])  # fmt: skip
    if not data.startswith(b"\xff\xd8\xff"):
        raise Refused(415, "unsupported_media_type", f"{source}: not a JPEG image",
                      [(source, "not a JPEG image (no JPEG start marker)")])  # fmt: skip
    from PIL import JpegImagePlugin

    try:
        # the plugin class parses the header only; Image.open would add a decompression-bomb
        # warning that the limits below make moot
        with JpegImagePlugin.JpegImageFile(io.BytesIO(data)) as img:
            width, height = img.size
            side, pixels = limits.max_image_side_px, limits.max_image_pixels
            if not (0 < width <= side and 0 < height <= side and width * height <= pixels):
                raise Refused(413, "too_large", f"{source}: {width}×{height} pixels, the limit is "
                              f"{side} a side and {pixels} in all", [(source, "image too large")])  # fmt: skip
            # whole: its segments reach the end of the scans, and they decode, at 1/8 scale
            # (the DCT's own scaling: 1/64 of the memory), so a header alone or a file cut
            # short is refused here, not in OCR
            if not jpeg_is_whole(data):
                raise ValueError("no end of image after the scan")
            img.draft("L", (max(1, width // 8), max(1, height // 8)))
            img.load()
    except Refused:
        raise
    except Exception as exc:  # any failure to read it means it is not a usable JPEG
        raise Refused(415, "unsupported_media_type", f"{source}: not a readable JPEG, or one cut "
                      f"short: {exc}", [(source, "JPEG cannot be read or is cut short")]) from exc  # fmt: skip
    return Jpeg(hashlib.sha256(data).hexdigest(), width, height)


class Intake:
    """What the gateway and the watcher do with one message, in this order: images checked,
    message validated with its topic's model, device authorized for its site and id, images
    stored, message produced once (acks=all) — only then is it accepted."""

    def __init__(
        self,
        registry: Registry,
        producer: Producer,
        blobs: BlobWriter,
        acceptances: Acceptances,
        settings: GatewaySettings,
        *,
        topic_prefix: str = "",
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        """``clock``: now, for the window a record's date must fall in (the wall clock)."""
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self.registry, self.producer, self.blobs = registry, producer, blobs
        self.acceptances, self.settings, self.topic_prefix = acceptances, settings, topic_prefix
        self._sites: dict[str, set[str]] = {}
        for site in registry.sites:
            for dev in site.devices:
                self._sites.setdefault(dev, set()).add(site.id)

    async def accept(
        self,
        kind: Kind,
        device: str | None,
        message: bytes | Mapping[str, Any],
        uploads: Sequence[Upload] = (),
    ) -> Accepted:
        """Accept one message from ``device`` (None: a trusted folder, the message's own device
        is checked against the registry), or raise Refused or ServiceError."""
        if uploads and not kind.takes_images:
            raise Refused(422, "invalid", f"a {kind.topic} message carries no images",
                          [("images", "not part of the contract")])  # fmt: skip
        stored: list[tuple[Jpeg, bytes]] = []
        if kind.takes_images:
            doc = _json_object(message, kind)
            refs, stored = await asyncio.to_thread(self._images, doc, uploads)
            raw = json.dumps({**doc, "images": [r.model_dump() for r in refs]}).encode()
        elif isinstance(message, bytes):
            raw = message
        else:
            raw = json.dumps(dict(message)).encode()
        s = self.settings
        window = (
            self.clock(),
            dt.timedelta(days=s.max_age_days),
            dt.timedelta(seconds=s.max_ahead_s),
        )
        record = _validate(kind, raw, {TS_WINDOW: window})
        device_id = self._authorize(kind, device, record)
        message_id, site_id = getattr(record, kind.id_field), record.site_id
        _check_id(kind, message_id)
        value = record.to_json()
        limit = self.settings.max_message_bytes + IMAGE_REF_BYTES * self.settings.max_images
        if len(value) > limit:
            raise Refused(413, "too_large", f"the message is {len(value)} bytes as produced, "
                          f"the limit is {limit}", [("", "message too large")])  # fmt: skip
        if stored:
            await asyncio.to_thread(self._store, stored)
        out = Outgoing(self.topic_prefix + kind.topic, site_id.encode(), value)
        outcome = await self.acceptances.once(
            kind.name, device_id, message_id, hashlib.sha256(value).hexdigest(),
            lambda: self.producer.send_and_wait([out]),
        )  # fmt: skip
        if outcome == "conflict":
            raise Refused(409, "conflict", f"{kind.id_field} {message_id} was accepted before "
                          "with other content; a new message needs a new id",
                          [(kind.id_field, "accepted before with other content")])  # fmt: skip
        # a WIM record may carry an extra field named images: it is kept, but it is not ours
        images = list(record.images) if isinstance(record, AnprCapture) else []
        return Accepted(kind, message_id, site_id, images, replayed=outcome == "again")

    async def upload(self, data: bytes) -> dict[str, Any]:
        """Store one JPEG sent on its own, for a capture to name later by its SHA-256."""
        jpeg = await asyncio.to_thread(self._inspect, data, "image")
        await asyncio.to_thread(self._store, [(jpeg, data)])
        return {"sha256": jpeg.sha256, "uri": self.blobs.uri(jpeg.sha256),
                "width": jpeg.width, "height": jpeg.height}  # fmt: skip

    # -- blocking work, in worker threads --

    def _inspect(self, data: bytes, source: str) -> Jpeg:
        return inspect_jpeg(data, source, self.settings)

    def _images(
        self, doc: dict[str, Any], uploads: Sequence[Upload]
    ) -> tuple[list[ImageRef], list[tuple[Jpeg, bytes]]]:
        """The capture's ImageRefs, filled by the gateway: those it names by SHA-256 (looked up
        in the blob store) first, then the uploaded ones; and the uploads to store."""
        claims = doc.get("images", [])
        if not isinstance(claims, list):
            raise Refused(422, "invalid", "images: must be a list",
                          [("images", "must be a list of {role, sha256}")])  # fmt: skip
        if len(claims) + len(uploads) > self.settings.max_images:
            raise Refused(413, "too_large", f"{len(claims) + len(uploads)} images, the limit is "
                          f"{self.settings.max_images}", [("images", "too many images")])  # fmt: skip
        refs: list[ImageRef] = []
        for i, item in enumerate(claims):
            try:
                claim = _ImageClaim.model_validate(item)
            except ValidationError as exc:
                problems = [(".".join(map(str, ("images", i, *e["loc"]))), e["msg"])
                            for e in exc.errors()]  # fmt: skip
                raise Refused(422, "invalid", "; ".join(f"{f}: {r}" for f, r in problems),
                              problems) from exc  # fmt: skip
            data = self.blobs.get(claim.sha256)
            if data is None:
                where = f"images.{i}.sha256"
                raise Refused(422, "invalid", f"{where}: no uploaded image has this SHA-256 "
                              "(POST it to /v1/images first)",
                              [(where, "no uploaded image has this SHA-256")])  # fmt: skip
            jpeg = self._inspect(data, f"images.{i}")
            refs.append(self._ref(claim.role, jpeg))
        stored = []
        for up in uploads:
            if up.role not in ROLES:
                raise Refused(422, "invalid", f"{up.source}: {up.role!r} is not an image role "
                              f"({', '.join(ROLES)})", [(up.source, "not an image role")])  # fmt: skip
            jpeg = self._inspect(up.data, up.source)
            refs.append(self._ref(up.role, jpeg))
            stored.append((jpeg, up.data))
        return refs, stored

    def _ref(self, role: str, jpeg: Jpeg) -> ImageRef:
        return ImageRef(role=role, uri=self.blobs.uri(jpeg.sha256), sha256=jpeg.sha256,  # type: ignore[arg-type]
                        width=jpeg.width, height=jpeg.height)  # fmt: skip

    def _store(self, images: list[tuple[Jpeg, bytes]]) -> None:
        for jpeg, data in images:
            self.blobs.put(data, jpeg.sha256)

    def _authorize(self, kind: Kind, device: str | None, record: WimRecord | AnprCapture) -> str:
        """The device the message is from, if it may send it: its own id, a site it is
        registered at, a message of its type."""
        claimed: str = getattr(record, kind.device_field)
        site = record.site_id
        if device is not None and claimed != device:
            raise Refused(403, "forbidden", f"{kind.device_field} is {claimed!r} but the key "
                          f"belongs to {device!r}: a device sends only its own records",
                          [(kind.device_field, "not the device of this key")])  # fmt: skip
        registered = self.registry.device(claimed)
        if registered is None:
            raise Refused(403, "forbidden", f"device {claimed!r} is not in the registry",
                          [(kind.device_field, "not a registered device")])  # fmt: skip
        if registered.type != kind.device_type:
            raise Refused(403, "forbidden", f"device {claimed!r} is a {registered.type} device: "
                          f"it does not send {kind.topic}",
                          [(kind.device_field, f"not a {kind.device_type} device")])  # fmt: skip
        if site not in self._sites.get(claimed, set()):
            raise Refused(403, "forbidden", f"device {claimed!r} is not registered at site "
                          f"{site!r}", [("site_id", "not a site of this device")])  # fmt: skip
        registered_site = self.registry.site(site)
        if registered_site is not None and record.lane > registered_site.lanes:
            why = f"site {site} has {registered_site.lanes} lanes, got lane {record.lane}"
            raise Refused(422, "invalid", f"lane: {why}", [("lane", why)])
        return claimed


def _check_id(kind: Kind, message_id: str) -> None:
    """A message id goes into the acceptance log and every id derived from it: printable and
    no longer than any device's (a NUL or a 30,000-character id is no one's, and no retry
    makes it one)."""
    if len(message_id) > MAX_ID_CHARS or not message_id.isprintable():
        reason = (f"at most {MAX_ID_CHARS} characters" if len(message_id) > MAX_ID_CHARS
                  else "control characters are not allowed")  # fmt: skip
        raise Refused(422, "invalid", f"{kind.id_field}: {reason}", [(kind.id_field, reason)])


def _json_object(message: bytes | Mapping[str, Any], kind: Kind) -> dict[str, Any]:
    if not isinstance(message, bytes):
        return dict(message)
    try:
        doc = json.loads(message)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        reason = (
            f"invalid JSON: {exc}"
            if isinstance(exc, ValueError)
            else "invalid JSON: nested too deep"
        )
        raise Refused(422, "invalid", reason, [("", reason)]) from exc
    if not isinstance(doc, dict):
        raise Refused(422, "invalid", f"a {kind.topic} message is a JSON object",
                      [("", "must be a JSON object")])  # fmt: skip
    return doc


def _validate(kind: Kind, raw: bytes, context: dict[str, Any]) -> WimRecord | AnprCapture:
    """The message under its topic's model: the rules a stage applies to the topic, and those
    of the ``context`` (the date window around now)."""
    try:
        return kind.model.model_validate_json(raw, context=context)
    except ValidationError as exc:
        problems = [(".".join(str(p) for p in e["loc"]), e["msg"]) for e in exc.errors()]
        raise Refused(422, "invalid", validation_reason(exc), problems) from exc
