"""The HTTP gateway stations and cameras post to: an ASGI app (Starlette) over :class:`Intake`.

    POST /v1/wim       a WIM record, application/json
    POST /v1/anpr      an ANPR capture: application/json (images named by SHA-256), or
                       multipart/form-data with a part ``capture`` (the JSON) and one JPEG part
                       per image, named by its role (plate, front, side, rear, overview)
    POST /v1/images    one JPEG (image/jpeg), for a capture to name by SHA-256 later
    GET  /v1/openapi.json, GET /healthz

Every POST carries the device's key (``Authorization: Bearer <key>`` or ``X-API-Key``). A
``202`` comes only after the images are stored and the broker acknowledged the message
(acks=all); a re-sent record gets the same answer and produces nothing. The app keeps no state
that another instance needs — keys and accepted ids are in the stores it is given — only its
per-device rate limits are its own.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic.json_schema import models_json_schema
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from events import AnprCapture, ServiceError, WimRecord

from .formats import FORMATS
from .formats.kakou import SOAP_TYPES, soap_answer
from .intake import ANPR, ROLES, WIM, DeviceKeys, GatewaySettings, Intake, Kind, Refused, Upload
from .stations import Stations, status_of

log = logging.getLogger("offsite.gateway")

API_VERSION = "1"


@dataclass
class _Bucket:
    tokens: float
    at: float


@dataclass
class Gate:
    """Who may come in, and how many at once: the key, the device's rate, the device's share
    of the instance's capacity, the instance's capacity. Checked before the body is read."""

    keys: DeviceKeys
    settings: GatewaySettings
    clock: Callable[[], float] = time.monotonic
    in_flight: int = 0
    _buckets: dict[str, _Bucket] = field(default_factory=dict)
    _held: dict[str, int] = field(default_factory=dict)  # device → its requests in flight

    async def admit(self, request: Request) -> str:
        key = _presented_key(request)
        if not key:
            raise Refused(401, "unauthenticated", "no API key: send Authorization: Bearer <key>")
        device = await self.keys.device_of(key)
        if device is None:
            raise Refused(401, "unauthenticated", "unknown or revoked API key")
        wait = self._take(device)
        if wait > 0:
            raise Refused(429, "rate_limited", f"device {device} sends faster than "
                          f"{self.settings.rate_per_s:g} messages/s", retry_after=math.ceil(wait))  # fmt: skip
        held = self._held.get(device, 0)
        if held >= self.settings.max_in_flight_per_device:
            # one station's slow or stuck uploads must not take the others' capacity
            raise Refused(429, "too_many_in_flight", f"device {device} has {held} requests in "
                          "flight, the limit; send the next when one is answered", retry_after=1)  # fmt: skip
        if self.in_flight >= self.settings.max_in_flight:
            # the broker or database is not keeping up: refuse rather than queue in memory
            raise Refused(503, "busy", "the gateway is at capacity; retry", retry_after=1)
        self.in_flight += 1
        self._held[device] = held + 1
        return device

    def held(self, device: str) -> int:
        """The requests of ``device`` in flight."""
        return self._held.get(device, 0)

    def release(self, device: str) -> None:
        self.in_flight -= 1
        self._held[device] -= 1
        if not self._held[device]:
            del self._held[device]

    def _take(self, device: str) -> float:
        """0 if a token was taken, else the seconds until one is there."""
        s, now = self.settings, self.clock()
        b = self._buckets.get(device)
        if b is None:
            b = self._buckets[device] = _Bucket(float(s.burst), now)
        b.tokens = min(float(s.burst), b.tokens + (now - b.at) * s.rate_per_s)
        b.at = now
        if b.tokens >= 1:
            b.tokens -= 1
            return 0.0
        return (1 - b.tokens) / s.rate_per_s


def _presented_key(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.headers.get("x-api-key") or None


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


async def _body(request: Request, limit: int, s: GatewaySettings) -> bytes:
    """The body, refused with 413 as soon as it is larger than ``limit``, and with 408 when a
    read waits longer than ``s.body_idle_s`` or the whole takes longer than
    ``s.body_timeout_s`` plus its size at ``s.min_body_rate``: a client that trickles or stops
    short does not hold its slot."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise Refused(400, "bad_request", "Content-Length is not a number")
        if int(declared) > limit:
            raise Refused(413, "too_large", f"body of {declared} bytes, the limit is {limit}")
    clock = asyncio.get_running_loop().time
    chunks, size, start = [], 0, clock()
    stream = request.stream()
    while True:
        budget = start + s.body_timeout_s + size / s.min_body_rate - clock()
        try:
            async with asyncio.timeout(max(0.0, min(s.body_idle_s, budget))):
                chunk = await anext(stream)
        except StopAsyncIteration:
            break
        except ClientDisconnect:  # no one to answer; the slot is freed all the same
            raise Refused(400, "bad_request", "the client closed the connection") from None
        except TimeoutError:
            raise Refused(408, "timeout", f"the body came slower than the gateway waits for: "
                          f"{size} bytes in {clock() - start:.1f} s (each read within "
                          f"{s.body_idle_s:g} s, all within {s.body_timeout_s:g} s plus "
                          f"{s.min_body_rate:g} bytes/s)") from None  # fmt: skip
        size += len(chunk)
        if size > limit:
            raise Refused(413, "too_large", f"body larger than the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


@dataclass
class _Part:
    name: str = ""
    headers: dict[bytes, bytes] = field(default_factory=dict)
    data: bytearray = field(default_factory=bytearray)


def parse_multipart(
    body: bytes, content_type: str, max_parts: int, max_part_bytes: int
) -> list[_Part]:
    """The parts of a multipart/form-data body (already bounded in size), each with its name;
    too many or too large parts are refused with 413, a malformed body with 400."""
    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        raise Refused(400, "bad_request", "multipart body without a boundary")
    parts: list[_Part] = []
    header: list[bytes] = [b"", b""]
    ended: list[bool] = []

    def begin() -> None:
        if len(parts) >= max_parts:
            raise Refused(413, "too_large", f"more than {max_parts} parts")
        parts.append(_Part())

    def data(buf: bytes, start: int, end: int) -> None:
        part = parts[-1]
        if len(part.data) + end - start > max_part_bytes:
            raise Refused(413, "too_large", f"part {part.name!r} is larger than "
                          f"{max_part_bytes} bytes", [(part.name, "image too large")])  # fmt: skip
        part.data += buf[start:end]

    def field_(buf: bytes, start: int, end: int) -> None:
        header[0] += buf[start:end]

    def value(buf: bytes, start: int, end: int) -> None:
        header[1] += buf[start:end]

    def header_end() -> None:
        parts[-1].headers[header[0].strip().lower()] = header[1].strip()
        header[0] = header[1] = b""

    def headers_done() -> None:
        part = parts[-1]
        _, options = parse_options_header(part.headers.get(b"content-disposition", b""))
        part.name = options.get(b"name", b"").decode("utf-8", "replace")
        if not part.name:
            raise Refused(400, "bad_request", "a multipart part has no name")

    callbacks: Any = {
        "on_part_begin": begin, "on_part_data": data, "on_header_field": field_,
        "on_header_value": value, "on_header_end": header_end,
        "on_headers_finished": headers_done, "on_end": lambda: ended.append(True),
    }  # fmt: skip
    try:
        parser = MultipartParser(boundary, callbacks, max_header_count=8, max_header_size=2048)
        parser.write(body)
        parser.finalize()
    except ValueError as exc:  # python-multipart's parse errors are ValueErrors
        raise Refused(400, "bad_request", f"malformed multipart body: {exc}") from exc
    if not ended:
        raise Refused(400, "bad_request", "multipart body ends before its closing boundary")
    return parts


def _refusal(exc: Refused) -> JSONResponse:
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else {}
    if exc.status == 408:  # a client too slow to send keeps no connection either
        headers["Connection"] = "close"
    return JSONResponse(exc.document(), status_code=exc.status, headers=headers)


def create_app(
    intake: Intake,
    keys: DeviceKeys,
    settings: GatewaySettings,
    *,
    clock: Callable[[], float] = time.monotonic,
    stations: Stations | None = None,
) -> Starlette:
    """The gateway app over ``intake``; keys are looked up in ``keys``; ``stations`` takes the
    stations' own formats (``POST /v1/formats/{name}``)."""
    gate = Gate(keys, settings, clock)
    limits = settings
    # a malformed body is answered 400 with the parser's reason; its warnings would only let
    # any client write to the log
    logging.getLogger("python_multipart").setLevel(logging.ERROR)

    async def admitted(request: Request, work: Callable[[str], Any]) -> Response:
        try:
            device = await gate.admit(request)
        except Refused as exc:
            return _refusal(exc)
        except ServiceError as exc:
            log.warning("key lookup failed: %s", exc)
            return _refusal(Refused(503, "unavailable", "credentials cannot be checked now",
                                    retry_after=5))  # fmt: skip
        try:
            return await work(device)
        except Refused as exc:
            if exc.status >= 500 or exc.status in (401, 403):
                log.info("refused %s from %s: %s", request.url.path, device, exc.message)
            return _refusal(exc)
        except ServiceError as exc:
            log.warning("%s from %s not accepted: %s", request.url.path, device, exc)
            return _refusal(Refused(503, "unavailable", "the message could not be stored; "
                                    "nothing was accepted, retry", retry_after=2))  # fmt: skip
        finally:
            gate.release(device)

    async def message(request: Request, kind: Kind, device: str) -> Response:
        media = _media_type(request)
        uploads: list[Upload] = []
        if media == "application/json":
            body = await _body(
                request, min(limits.max_message_bytes, limits.max_body_bytes), limits
            )
        elif media == "multipart/form-data" and kind.takes_images:
            raw = await _body(request, limits.max_body_bytes, limits)
            parts = parse_multipart(raw, request.headers["content-type"],
                                    limits.max_images + 1, limits.max_image_bytes)  # fmt: skip
            found = [p for p in parts if p.name == "capture"]
            if len(found) != 1:
                raise Refused(422, "invalid", "a multipart capture has exactly one part named "
                              "'capture' with its JSON", [("capture", "missing or repeated")])  # fmt: skip
            body = bytes(found[0].data)
            if len(body) > limits.max_message_bytes:
                raise Refused(413, "too_large", f"the capture part is {len(body)} bytes, the "
                              f"limit is {limits.max_message_bytes}", [("capture", "too large")])  # fmt: skip
            uploads = [Upload(p.name, bytes(p.data), p.name) for p in parts if p.name != "capture"]
        else:
            allowed = "application/json or multipart/form-data" if kind.takes_images else \
                "application/json"  # fmt: skip
            raise Refused(415, "unsupported_media_type",
                          f"{kind.topic} is sent as {allowed}, not {media or 'no content type'}")  # fmt: skip
        accepted = await intake.accept(kind, device, body, uploads)
        headers = {"Idempotent-Replayed": "true"} if accepted.replayed else None
        return JSONResponse(accepted.document(), status_code=202, headers=headers)

    async def post_wim(request: Request) -> Response:
        return await admitted(request, lambda device: message(request, WIM, device))

    async def post_anpr(request: Request) -> Response:
        return await admitted(request, lambda device: message(request, ANPR, device))

    async def post_image(request: Request) -> Response:
        async def work(device: str) -> Response:
            if _media_type(request) != "image/jpeg":
                raise Refused(415, "unsupported_media_type", "an image is sent as image/jpeg")
            data = await _body(request, limits.max_image_bytes, limits)
            return JSONResponse(await intake.upload(data), status_code=201)

        return await admitted(request, work)

    async def post_format(request: Request) -> Response:
        """A station's record(s) in its own format (ingest.formats)."""
        name = request.path_params["name"]

        async def work(device: str) -> Response:
            if stations is None or name not in FORMATS:
                raise Refused(404, "not_found", f"no station format {name!r} here "
                              f"({', '.join(FORMATS) if stations else 'none'})")  # fmt: skip
            body = await _body(request, limits.max_body_bytes, limits)
            results = await stations.take(name, device, body)
            status = status_of(results)
            if name == "kakou" and _media_type(request) in SOAP_TYPES:
                reasons = "; ".join(r.detail.get("reason") or r.detail.get("message", "")
                                    for r in results if r.status != "accepted")  # fmt: skip
                answer = soap_answer(status == 202, reasons, retry=status >= 500)
                return Response(answer, 200 if status == 202 else 500,
                                media_type="text/xml; charset=utf-8")  # fmt: skip
            done = "accepted" if status == 202 else "not all accepted"
            return JSONResponse({"status": done, "results": [r.document() for r in results]},
                                status_code=status)  # fmt: skip

        return await admitted(request, work)

    document = openapi()

    async def get_openapi(request: Request) -> Response:
        return JSONResponse(document)

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "in_flight": gate.in_flight})

    routes = [
        Route("/v1/wim", post_wim, methods=["POST"]),
        Route("/v1/anpr", post_anpr, methods=["POST"]),
        Route("/v1/images", post_image, methods=["POST"]),
        Route("/v1/formats/{name}", post_format, methods=["POST"]),
        Route("/v1/openapi.json", get_openapi, methods=["GET"]),
        Route("/healthz", health, methods=["GET"]),
    ]
    app = Starlette(routes=routes)
    app.state.gate = gate
    return app


def _error_responses() -> dict[str, Any]:
    ref = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Refusal"}}}}
    why = {
        "400": "malformed body (multipart without boundary, bad Content-Length)",
        "408": "the body came too slowly or stopped short (the connection is closed)",
        "401": "no API key, or an unknown or revoked one",
        "403": "the key's device may not send this: another device id, a site it is not "
               "registered at, or a message of another device type",
        "409": "the id was accepted before with other content",
        "413": "body, message, image (bytes or pixels) or number of parts over the limit",
        "415": "content type not accepted, or an image that is not a whole, readable JPEG",
        "422": "the message breaks its topic's contract: each problem names its field",
        "429": "the device sends faster than its rate limit, or has as many requests in flight "
               "as it may (Retry-After)",
        "503": "the gateway is at capacity or the broker or database is unavailable; nothing "
               "was accepted (Retry-After)",
    }  # fmt: skip
    return {code: {"description": text, **ref} for code, text in why.items()}


def openapi() -> dict[str, Any]:
    """The OpenAPI 3.1 document of the gateway; the schemas are the topics' models."""
    _, defs = models_json_schema(
        [(WimRecord, "validation"), (AnprCapture, "validation")],
        ref_template="#/components/schemas/{model}",
    )
    schemas: dict[str, Any] = dict(defs["$defs"])
    capture_in = copy.deepcopy(schemas["AnprCapture"])
    capture_in["title"] = "AnprCaptureRequest"
    capture_in["description"] = (
        "An ANPR capture as a camera sends it: each image is named by role and SHA-256 (of a "
        "JPEG posted to /v1/images, or of a JPEG part of the same multipart request); the "
        "gateway fills in uri, width and height."
    )
    capture_in["properties"]["images"] = {
        "type": "array",
        "items": {"$ref": "#/components/schemas/ImageClaim"},
        "default": [],
    }
    schemas["AnprCaptureRequest"] = capture_in
    schemas["ImageClaim"] = {
        "type": "object",
        "required": ["role", "sha256"],
        "properties": {
            "role": {"enum": list(ROLES)},
            "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        },
    }
    schemas["Refusal"] = {
        "type": "object",
        "required": ["status", "error", "message", "problems"],
        "properties": {
            "status": {"const": "refused"},
            "error": {"type": "string", "description": "short code, e.g. invalid, forbidden"},
            "message": {"type": "string"},
            "problems": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "field": {"type": "string", "description": "dotted path; '' = the "
                                  "whole message"},
                        "reason": {"type": "string"},
                    },
                },
            },
        },
    }  # fmt: skip
    for name, id_field in (("AcceptedWim", "record_id"), ("AcceptedCapture", "capture_id")):
        schemas[name] = {
            "type": "object",
            "required": ["status", "topic", id_field, "site_id", "images"],
            "properties": {
                "status": {"const": "accepted"},
                "topic": {"type": "string"},
                id_field: {"type": "string"},
                "site_id": {"type": "string"},
                "images": {"type": "array", "items": {"$ref": "#/components/schemas/ImageRef"}},
            },
        }
    schemas["StoredImage"] = {
        "type": "object",
        "required": ["sha256", "uri", "width", "height"],
        "properties": {
            "sha256": {"type": "string"},
            "uri": {"type": "string"},
            "width": {"type": "integer"},
            "height": {"type": "integer"},
        },
    }

    def accepted(schema: str, what: str) -> dict[str, Any]:
        return {
            "description": f"{what} stored and acknowledged by the broker (acks=all); a re-send "
            "of the same id gets the same answer (header Idempotent-Replayed: true) and "
            "produces nothing",
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
        }

    multipart = {
        "schema": {
            "type": "object",
            "required": ["capture"],
            "properties": {
                "capture": {"$ref": "#/components/schemas/AnprCaptureRequest"},
                **{
                    role: {
                        "type": "string",
                        "contentMediaType": "image/jpeg",
                        "description": f"the {role} image (JPEG)",
                    }
                    for role in ROLES
                },
            },
        },
        "encoding": {"capture": {"contentType": "application/json"}},
    }
    errors = _error_responses()
    secured: list[dict[str, list[str]]] = [{"apiKey": []}, {"bearer": []}]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "offsite ingest gateway",
            "version": API_VERSION,
            "description": "Weigh stations and ANPR cameras post their records and images "
            "here. Each device uses its own API key (offsite devices key create ID) and may "
            "send only for its own device id and its registered sites.",
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
        },
        "paths": {
            "/v1/wim": {"post": {
                "summary": "one WIM pass (road.wim)", "security": secured,
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/WimRecord"}}}},
                "responses": {"202": accepted("AcceptedWim", "the record"), **errors},
            }},
            "/v1/anpr": {"post": {
                "summary": "one ANPR capture with its images (road.anpr)", "security": secured,
                "requestBody": {"required": True, "content": {
                    "application/json": {
                        "schema": {"$ref": "#/components/schemas/AnprCaptureRequest"}},
                    "multipart/form-data": multipart}},
                "responses": {"202": accepted("AcceptedCapture", "the capture and its images"),
                              **errors},
            }},
            "/v1/images": {"post": {
                "summary": "one JPEG, stored by its SHA-256 for a capture to name",
                "security": secured,
                "requestBody": {"required": True, "content": {"image/jpeg": {
                    "schema": {"type": "string", "contentMediaType": "image/jpeg"}}}},
                "responses": {"201": {"description": "stored", "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/StoredImage"}}}}, **errors},
            }},
            "/v1/formats/{name}": {"post": {
                "summary": "records in a station's own format (offsite ingest formats): 治超 "
                           "pass records, 卡口 WriteVehicleInfo (SOAP or JSON), TMG W lines; "
                           "the device is found by the code its records carry",
                "security": secured,
                "parameters": [{"name": "name", "in": "path", "required": True,
                                "schema": {"enum": list(FORMATS)}}],
                "requestBody": {"required": True, "content": {
                    "application/json": {}, "text/xml": {}, "text/plain": {}}},
                "responses": {"202": {"description": "every message accepted: results, one a "
                                      "message"}, **errors},
            }},
            "/v1/openapi.json": {"get": {"summary": "this document",
                                         "responses": {"200": {"description": "OpenAPI 3.1"}}}},
            "/healthz": {"get": {"summary": "the instance answers (for a load balancer)",
                                 "responses": {"200": {"description": "up"}}}},
        },
    }  # fmt: skip
