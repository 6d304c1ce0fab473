"""The ingest gateway and the folder watcher over in-memory doubles: answers, statuses, no message
for what is refused, one message per id, and a fuzz of bodies and multipart uploads."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import json
import random
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from starlette.applications import Starlette

from events import AnprCapture, WimRecord
from events.stage import Outgoing
from ingest.gateway import create_app
from ingest.intake import ANPR, GatewaySettings, Intake, Refused
from ingest.testing import ListProducer, MemoryAcceptances, MemoryBlobs, MemoryKeys
from ingest.watch import FolderWatcher
from offsite.config import load_registry
from offsite.kafka import MAX_REQUEST_BYTES
from sim import SimulationConfig, simulate

ROOT = Path(__file__).resolve().parents[2]
REGISTRY = load_registry(ROOT / "configs" / "sites.yaml")
PASSES = simulate(REGISTRY, SimulationConfig(vehicles=40, seed=11, images=False))
WIM = PASSES[0].wim
CAPTURE = next(p.capture for p in PASSES if p.capture is not None)
KEYS = {"k-wim": WIM.device_id, "k-cam": CAPTURE.camera_id}
WIM_KEY = {"Authorization": "Bearer k-wim"}
CAM_KEY = {"X-API-Key": "k-cam"}


def _jpeg(width: int = 64, height: int = 32, color: str = "orange") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buf, "JPEG")
    return buf.getvalue()


def _noise_jpeg(side: int = 200) -> bytes:
    """A JPEG that does not compress: larger than the test limits."""
    buf = io.BytesIO()
    Image.frombytes("RGB", (side, side), random.Random(1).randbytes(side * side * 3)).save(
        buf, "JPEG", quality=95
    )
    return buf.getvalue()


def _claiming(data: bytes, width: int, height: int) -> bytes:
    """``data`` with its frame header (SOF0) claiming ``width``×``height`` pixels: a small file
    that would decode to a huge image."""
    at = data.index(b"\xff\xc0") + 5
    return data[:at] + height.to_bytes(2, "big") + width.to_bytes(2, "big") + data[at + 4 :]


JPEG = _jpeg()
JPEG2 = _jpeg(96, 48, "navy")
LIMITS = GatewaySettings(max_body_bytes=64 * 1024, max_image_bytes=16 * 1024, max_images=3)


@dataclass
class Rig:
    client: httpx.AsyncClient
    producer: ListProducer
    blobs: MemoryBlobs
    acceptances: MemoryAcceptances
    intake: Intake


def _intake(producer: ListProducer | None = None, limits: GatewaySettings = LIMITS) -> Intake:
    return Intake(REGISTRY, producer or ListProducer(), MemoryBlobs(), MemoryAcceptances(),
                  limits, topic_prefix="t.")  # fmt: skip


def _client(app: Starlette) -> httpx.AsyncClient:
    # starlette's TestClient wants httpx2 (a deprecation warning with httpx): the same ASGI
    # calls through httpx's own transport
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw")


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    intake = _intake()
    async with _client(create_app(intake, MemoryKeys(KEYS), LIMITS)) as client:
        yield Rig(client, intake.producer, intake.blobs, intake.acceptances, intake)  # type: ignore[arg-type]


def _doc(msg: WimRecord | AnprCapture, **changes: Any) -> dict[str, Any]:
    doc = json.loads(msg.to_json())
    doc.update(changes)
    return {k: v for k, v in doc.items() if v is not DROP}


DROP = object()


def _multipart(capture: dict[str, Any] | bytes, *images: tuple[str, bytes]) -> dict[str, Any]:
    raw = capture if isinstance(capture, bytes) else json.dumps(capture).encode()
    files: list[tuple[str, tuple[str | None, bytes, str]]] = [
        ("capture", (None, raw, "application/json"))
    ]
    files += [(role, (f"{role}.jpg", data, "image/jpeg")) for role, data in images]
    return {"files": files}


async def test_wim_record_answered_202_after_it_was_produced(rig: Rig) -> None:
    res = await rig.client.post("/v1/wim", content=WIM.to_json(),
                          headers={**WIM_KEY, "Content-Type": "application/json"})  # fmt: skip
    assert res.status_code == 202, res.text
    assert res.json() == {"status": "accepted", "topic": "road.wim", "record_id": WIM.record_id,
                          "site_id": WIM.site_id, "images": []}  # fmt: skip
    assert rig.producer.sent == [Outgoing("t.road.wim", WIM.site_id.encode(), WIM.to_json())]


async def test_capture_with_jpeg_parts_stores_them_and_fills_the_image_refs(rig: Rig) -> None:
    doc = _doc(CAPTURE, images=DROP)
    res = await rig.client.post("/v1/anpr", headers=CAM_KEY,
                          **_multipart(doc, ("plate", JPEG), ("overview", JPEG2)))  # fmt: skip
    assert res.status_code == 202, res.text
    images = res.json()["images"]
    assert [(i["role"], i["width"], i["height"]) for i in images] == [
        ("plate", 64, 32), ("overview", 96, 48)
    ]  # fmt: skip
    assert {i["sha256"] for i in images} == set(rig.blobs.blobs)
    assert rig.blobs.blobs[images[0]["sha256"]] == JPEG
    (sent,) = rig.producer.sent
    produced = AnprCapture.model_validate_json(sent.value)
    assert [i.model_dump() for i in produced.images] == images
    assert produced.model_dump(exclude={"images"}) == CAPTURE.model_dump(exclude={"images"})


async def test_capture_naming_an_image_uploaded_before(rig: Rig) -> None:
    up = await rig.client.post("/v1/images", content=JPEG,
                         headers={**CAM_KEY, "Content-Type": "image/jpeg"})  # fmt: skip
    assert up.status_code == 201, up.text
    sha = up.json()["sha256"]
    doc = _doc(CAPTURE, images=[{"role": "plate", "sha256": sha, "uri": "x://ignored"}])
    res = await rig.client.post("/v1/anpr", json=doc, headers=CAM_KEY)
    assert res.status_code == 202, res.text
    assert res.json()["images"] == [{"role": "plate", "uri": up.json()["uri"], "sha256": sha,
                                     "width": 64, "height": 32}]  # fmt: skip
    unknown = _doc(CAPTURE, capture_id="other", images=[{"role": "plate", "sha256": "a" * 64}])
    res = await rig.client.post("/v1/anpr", json=unknown, headers=CAM_KEY)
    assert res.status_code == 422
    assert res.json()["problems"][0]["field"] == "images.0.sha256"
    assert len(rig.producer.sent) == 1


async def test_a_resend_gets_the_same_answer_and_produces_nothing(rig: Rig) -> None:
    doc = _doc(CAPTURE, images=DROP)
    first = await rig.client.post("/v1/anpr", headers=CAM_KEY, **_multipart(doc, ("plate", JPEG)))
    again = await rig.client.post("/v1/anpr", headers=CAM_KEY, **_multipart(doc, ("plate", JPEG)))
    assert first.status_code == again.status_code == 202
    assert first.json() == again.json()
    assert "idempotent-replayed" not in first.headers
    assert again.headers["idempotent-replayed"] == "true"
    assert len(rig.producer.sent) == 1
    # the same id with other content is not the same record
    changed = await rig.client.post("/v1/anpr", headers=CAM_KEY,
                              **_multipart({**doc, "plate": "湘A00000"}, ("plate", JPEG)))  # fmt: skip
    assert changed.status_code == 409
    assert changed.json()["problems"] == [{"field": "capture_id",
                                           "reason": "accepted before with other content"}]  # fmt: skip
    assert len(rig.producer.sent) == 1


OTHER_WIM = next(p.wim for p in PASSES if p.wim.device_id != WIM.device_id)
OTHER_SITE = next(s.id for s in REGISTRY.sites if s.id != WIM.site_id)
JSON_WIM = {**WIM_KEY, "Content-Type": "application/json"}


def _bad_requests() -> list[tuple[str, dict[str, Any], int, str]]:
    wim = WIM.to_json()
    cap = _doc(CAPTURE, images=DROP)
    big = _noise_jpeg()
    big_cut = _noise_jpeg(60)[:-600]  # within the size limit, its last rows missing
    many = [("plate", JPEG), ("overview", JPEG2), ("side", _jpeg(8, 8)), ("rear", _jpeg(9, 9))]
    boundary = "b0undary"
    return [
        ("/v1/wim", {"content": wim, "headers": {"Content-Type": "application/json"}}, 401,
         "no API key"),
        ("/v1/wim", {"content": wim, "headers": {**JSON_WIM, "Authorization": "Bearer nope"}},
         401, "unknown or revoked"),
        ("/v1/wim", {"content": OTHER_WIM.to_json(), "headers": JSON_WIM}, 403,
         "the key belongs to"),
        ("/v1/wim", {"json": _doc(WIM, site_id=OTHER_SITE), "headers": WIM_KEY}, 403,
         "not registered at site"),
        ("/v1/wim", {"json": _doc(WIM, device_id=CAPTURE.camera_id),
                     "headers": {**CAM_KEY, "Content-Type": "application/json"}}, 403,
         "is a anpr device"),
        ("/v1/wim", {"json": _doc(WIM, lane=0), "headers": WIM_KEY}, 422, "lane: Input should"),
        ("/v1/wim", {"json": _doc(WIM, axle_spacings_mm=[1]), "headers": WIM_KEY}, 422,
         "axle_spacings_mm needs"),
        ("/v1/wim", {"content": b"{not json", "headers": JSON_WIM}, 422, "invalid JSON"),
        ("/v1/wim", {"content": wim, "headers": {**WIM_KEY, "Content-Type": "text/plain"}}, 415,
         "not text/plain"),
        ("/v1/wim", {"content": b"x" * 70_000, "headers": JSON_WIM}, 413, "limit is 65536"),
        ("/v1/wim", {"files": [("record", (None, wim, "application/json"))],
                     "headers": WIM_KEY}, 415, "sent as application/json"),
        ("/v1/anpr", {"headers": CAM_KEY, **_multipart(cap, ("plate", big))}, 413,
         "is larger than"),
        ("/v1/anpr", {"headers": CAM_KEY, **_multipart(cap, *many)}, 413, "more than 4 parts"),
        ("/v1/anpr", {"headers": CAM_KEY, **_multipart(cap, ("plate", b"GIF89a" + b"0" * 40))},
         415, "plate: not a JPEG"),
        ("/v1/anpr", {"headers": CAM_KEY, **_multipart(cap, ("plate", b"\xff\xd8\xff" + b"0" * 9))},
         415, "not a readable JPEG"),
        ("/v1/anpr", {"headers": CAM_KEY, **_multipart(cap, ("selfie", JPEG))}, 422,
         "not an image role"),
        ("/v1/anpr", {"headers": CAM_KEY, "files": [("plate", ("p.jpg", JPEG, "image/jpeg"))]},
         422, "exactly one part named 'capture'"),
        ("/v1/anpr", {"headers": {**CAM_KEY, "Content-Type": f"multipart/form-data; boundary={boundary}"},
                      "content": f"--{boundary}\r\nContent-Disposition: form-data; name=\"capture\""
                                 f"\r\n\r\n{{}}".encode()}, 400, "closing boundary"),
        ("/v1/anpr", {"headers": {**CAM_KEY, "Content-Type": "multipart/form-data"},
                      "content": b"--x\r\n"}, 400, "without a boundary"),
        ("/v1/anpr", {"json": _doc(CAPTURE, confidence=1.5), "headers": CAM_KEY}, 422,
         "confidence: Input should be less than or equal to 1"),
        ("/v1/anpr", {"json": [1, 2], "headers": CAM_KEY}, 422, "is a JSON object"),
        ("/v1/anpr", {"json": _doc(CAPTURE, images="plate.jpg"), "headers": CAM_KEY}, 422,
         "images: must be a list"),
        ("/v1/images", {"content": b"GIF89a", "headers": {**CAM_KEY, "Content-Type": "image/jpeg"}},
         415, "not a JPEG"),
        ("/v1/images", {"content": JPEG, "headers": {**CAM_KEY, "Content-Type": "image/png"}}, 415,
         "image/jpeg"),
        ("/v1/images", {"content": big, "headers": {**CAM_KEY, "Content-Type": "image/jpeg"}}, 413,
         "limit"),
        # issue #28 row 4: a header alone, or a file cut short, is not an image
        ("/v1/images", {"content": JPEG[:JPEG.index(b"\xff\xda")],
                        "headers": {**CAM_KEY, "Content-Type": "image/jpeg"}}, 415, "cut short"),
        ("/v1/anpr", {"headers": CAM_KEY, **_multipart(cap, ("plate", big_cut))}, 415, "cut short"),
        # 12,000 × 12,000 is within the side limit, but 144 MP decodes to 432 MB: refused on
        # its header, before anything decodes it
        ("/v1/images", {"content": _claiming(JPEG, 12_000, 12_000),
                        "headers": {**CAM_KEY, "Content-Type": "image/jpeg"}}, 413, "pixels"),
        # issue #28 row 5: no retry makes these acceptable, so they are never 503 (the
        # gateway's id check, or the model's where it refuses them first)
        ("/v1/wim", {"json": _doc(WIM, record_id="wim-\x001"), "headers": WIM_KEY}, 422,
         "record_id"),
        ("/v1/wim", {"json": _doc(WIM, record_id="w" * 30_000), "headers": WIM_KEY}, 422,
         "record_id"),
    ]  # fmt: skip


@pytest.mark.parametrize(("path", "request_", "status", "phrase"), _bad_requests())
async def test_each_bad_request_gets_its_status_and_no_message(
    rig: Rig, path: str, request_: dict[str, Any], status: int, phrase: str
) -> None:
    res = await rig.client.post(path, **request_)
    assert res.status_code == status, res.text
    body = res.json()
    assert body["status"] == "refused" and phrase in body["message"], body
    assert rig.producer.sent == []
    assert rig.acceptances.accepted == {}


async def test_validation_errors_name_each_field(rig: Rig) -> None:
    res = await rig.client.post("/v1/wim", json=_doc(WIM, lane=0, speed_kmh=-1, ts=DROP),
                          headers=WIM_KEY)  # fmt: skip
    assert res.status_code == 422
    fields = {p["field"]: p["reason"] for p in res.json()["problems"]}
    assert fields == {"lane": "Input should be greater than or equal to 1",
                      "speed_kmh": "Input should be greater than or equal to 0",
                      "ts": "Field required"}  # fmt: skip


# issue #28 rows 1, 2 and 7: what no device can send was answered 202 and dead-lettered later,
# or killed a stage; each is refused now, with the reason
_IMPOSSIBLE = [
    ("/v1/wim", _doc(WIM, lane=99), "lane: Input should be less than or equal to 16"),
    ("/v1/wim", _doc(WIM, lane=3), "lane: site G312-K1035-E has 2 lanes, got lane 3"),
    ("/v1/wim", _doc(WIM, axle_count=2, axle_weights_kg=[10**12, 12 * 10**11],
                     axle_spacings_mm=[3000], gross_weight_kg=22 * 10**11),
     "gross_weight_kg: Input should be less than or equal to 2000000"),
    ("/v1/wim", _doc(WIM, speed_kmh=float("nan")), "speed_kmh: Input should be a finite number"),
    ("/v1/wim", _doc(WIM, vendor_x=float("nan")), "vendor_x: nan is not a number JSON can carry"),
    ("/v1/wim", _doc(WIM, ts="9999-12-31T23:59:59+08:00"), "is outside 2000–2099"),
    ("/v1/anpr", _doc(CAPTURE, plate="湘A\u00001234"), "plate: String should match pattern"),
    ("/v1/anpr", _doc(CAPTURE, plate="湘" * 2_700), "plate: String should have at most 16"),
]  # fmt: skip


@pytest.mark.parametrize(("path", "doc", "phrase"), _IMPOSSIBLE)
async def test_what_no_device_can_send_is_refused_with_the_reason(
    rig: Rig, path: str, doc: dict[str, Any], phrase: str
) -> None:
    headers = {**(WIM_KEY if path == "/v1/wim" else CAM_KEY), "Content-Type": "application/json"}
    res = await rig.client.post(path, content=json.dumps(doc).encode(), headers=headers)
    assert res.status_code == 422, res.text
    assert phrase in res.json()["message"] and rig.producer.sent == []


@pytest.mark.parametrize(("days", "status"), [(-3654, 422), (-3652, 202), (0.9, 202), (1.1, 422)])
async def test_a_record_dated_outside_the_window_around_now_is_refused(
    days: float, status: int
) -> None:
    now = WIM.ts - dt.timedelta(days=days)  # the record is dated ``days`` after now
    intake = Intake(REGISTRY, ListProducer(), MemoryBlobs(), MemoryAcceptances(), LIMITS,
                    clock=lambda: now)  # fmt: skip
    async with _client(create_app(intake, MemoryKeys(KEYS), LIMITS)) as client:
        res = await client.post("/v1/wim", json=_doc(WIM), headers=WIM_KEY)
    assert res.status_code == status, res.text
    if status == 422:
        assert res.json()["problems"][0]["field"] == "ts"


async def test_rate_limit_answers_429_with_retry_after_then_lets_through() -> None:
    now = [1000.0]
    intake = _intake()
    limits = LIMITS.model_copy(update={"rate_per_s": 2.0, "burst": 2})
    app = create_app(intake, MemoryKeys(KEYS), limits, clock=lambda: now[0])
    records = [p.wim for p in PASSES if p.wim.device_id == WIM.device_id][:4]
    async with _client(app) as client:
        codes = [await client.post("/v1/wim", content=r.to_json(), headers=JSON_WIM)
                 for r in records[:3]]  # fmt: skip
        assert [r.status_code for r in codes] == [202, 202, 429]
        assert codes[2].headers["retry-after"] == "1"
        now[0] += 0.5  # one token back
        again = await client.post("/v1/wim", content=records[2].to_json(), headers=JSON_WIM)
        assert again.status_code == 202
    assert len(intake.producer.sent) == 3  # type: ignore[attr-defined]


async def test_broker_down_answers_503_and_records_nothing(rig: Rig) -> None:
    rig.producer.fail = True
    res = await rig.client.post("/v1/wim", content=WIM.to_json(), headers=JSON_WIM)
    assert res.status_code == 503 and res.headers["retry-after"] == "2"
    assert rig.acceptances.accepted == {}
    rig.producer.fail = False
    res = await rig.client.post("/v1/wim", content=WIM.to_json(), headers=JSON_WIM)
    assert res.status_code == 202 and "idempotent-replayed" not in res.headers
    assert len(rig.producer.sent) == 1


class HeldProducer(ListProducer):
    """Holds every send until ``release`` is set: a broker that is slow to acknowledge."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()
        self.waiting = 0

    async def send_and_wait(self, messages: Any) -> None:
        self.waiting += 1
        await self.release.wait()
        await super().send_and_wait(messages)


async def _until(condition: Any) -> None:
    while not condition():
        await asyncio.sleep(0)


async def test_at_capacity_answers_503_with_retry_after_instead_of_queueing() -> None:
    producer = HeldProducer()
    limits = LIMITS.model_copy(update={"max_in_flight": 1})
    app = create_app(_intake(producer, limits), MemoryKeys(KEYS), limits)
    async with _client(app) as client:
        first = asyncio.create_task(client.post("/v1/wim", content=WIM.to_json(), headers=JSON_WIM))
        await _until(lambda: producer.waiting == 1)
        busy = await client.post("/v1/wim", content=OTHER_WIM.to_json(), headers=JSON_WIM)
        assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
        producer.release.set()
        assert (await first).status_code == 202
    assert len(producer.sent) == 1


async def test_twins_in_flight_at_once_produce_one_message() -> None:
    producer = HeldProducer()
    app = create_app(_intake(producer), MemoryKeys(KEYS), LIMITS)
    async with _client(app) as client:
        posts = [asyncio.create_task(client.post("/v1/wim", content=WIM.to_json(),
                                                 headers=JSON_WIM)) for _ in range(5)]  # fmt: skip
        await _until(lambda: producer.waiting == 1)
        producer.release.set()
        answers = await asyncio.gather(*posts)
    assert {a.status_code for a in answers} == {202}
    assert len({a.text for a in answers}) == 1
    assert sum(a.headers.get("idempotent-replayed") == "true" for a in answers) == 4
    assert len(producer.sent) == 1


async def test_openapi_is_served_and_the_shipped_copy_is_current(rig: Rig) -> None:
    served = (await rig.client.get("/v1/openapi.json")).json()
    # the stations' contract (README, "ingest gateway"): records, captures and images by POST
    assert served["openapi"].startswith("3.")
    assert {p for p, ops in served["paths"].items() if "post" in ops} >= {
        "/v1/wim", "/v1/anpr", "/v1/images"}  # fmt: skip
    shipped = json.loads((ROOT / "configs" / "schemas" / "gateway.openapi.json").read_text())
    assert shipped == served, (
        "regenerate: offsite ingest openapi --out configs/schemas/gateway.openapi.json"
    )
    assert set(served["paths"]) == {"/v1/wim", "/v1/anpr", "/v1/images", "/v1/openapi.json",
                                    "/v1/formats/{name}", "/healthz"}  # fmt: skip
    wim = served["components"]["schemas"]["WimRecord"]
    assert (
        wim["properties"]["axle_count"] == WimRecord.model_json_schema()["properties"]["axle_count"]
    )
    assert (await rig.client.get("/healthz")).status_code == 200


# -- fuzz: whatever the body, the gateway answers, never crashes, never sends what it refused --

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=10), kids, max_size=4),
    max_leaves=12,
)  # fmt: skip
WIM_DOC, CAP_DOC = _doc(WIM), _doc(CAPTURE, images=DROP)


@st.composite
def mutated(draw: st.DrawFn, base: dict[str, Any]) -> dict[str, Any]:
    doc = dict(base)
    for key in draw(st.lists(st.sampled_from([*base, "images", "extra"]), max_size=4)):
        if draw(st.booleans()):
            doc.pop(key, None)
        else:
            doc[key] = draw(JSON_VALUES)
    return doc


def _bytes_of(value: Any) -> bytes:
    return value if isinstance(value, bytes) else json.dumps(value).encode()


PART_DATA = st.one_of(
    st.just(JPEG), st.just(JPEG2), st.binary(max_size=200),
    st.builds(lambda n: JPEG[:n], st.integers(0, len(JPEG))),
    st.builds(lambda n, b: JPEG[:n] + b + JPEG[n:], st.integers(0, len(JPEG)), st.binary(max_size=8)),
    st.just(json.dumps(CAP_DOC).encode()), mutated(CAP_DOC).map(_bytes_of),
)  # fmt: skip
PART_NAME = st.sampled_from(["capture", "plate", "overview", "side", "composite", "x", "", "é"])


IMAGE_PARTS = st.tuples(st.sampled_from(["plate", "overview", "side", "composite"]), PART_DATA)


@st.composite
def multipart_body(draw: st.DrawFn) -> tuple[bytes, str]:
    """Mostly the shape a camera sends (the capture's JSON, then images), sometimes anything."""
    boundary = draw(st.sampled_from(["b", "----fuzz", "x" * 70]))
    capture = draw(st.one_of(st.just(json.dumps(CAP_DOC).encode()),
                             mutated(CAP_DOC).map(_bytes_of)))  # fmt: skip
    parts = [("capture", capture)] if draw(st.integers(0, 4)) else []
    parts += draw(st.lists(st.one_of(IMAGE_PARTS, st.tuples(PART_NAME, PART_DATA)), max_size=5))
    chunks = []
    for name, data in parts:
        disposition = f'form-data; name="{name}"' + draw(
            st.sampled_from(["", '; filename="a.jpg"'])
        )
        ctype = draw(st.sampled_from(["", "image/jpeg", "application/json", "text/plain"]))
        head = f"Content-Disposition: {disposition}\r\n" + (
            f"Content-Type: {ctype}\r\n" if ctype else ""
        )
        chunks.append(f"--{boundary}\r\n{head}\r\n".encode() + data + b"\r\n")
    body = b"".join(chunks) + f"--{boundary}--\r\n".encode()
    if not draw(st.integers(0, 4)):
        cut = draw(st.integers(0, len(body)))
        body = body[:cut] + draw(st.binary(max_size=16))
    return body, f"multipart/form-data; boundary={boundary}"


REQUESTS = st.one_of(
    st.tuples(st.just("/v1/wim"), mutated(WIM_DOC).map(_bytes_of), st.just("application/json")),
    st.tuples(st.just("/v1/anpr"), mutated(_doc(CAPTURE)).map(_bytes_of), st.just("application/json")),
    st.tuples(st.just("/v1/wim"), st.binary(max_size=300), st.just("application/json")),
    st.builds(lambda m: ("/v1/anpr", *m), multipart_body()),
    st.tuples(st.just("/v1/images"), PART_DATA, st.just("image/jpeg")),
    st.tuples(st.sampled_from(["/v1/wim", "/v1/anpr"]), st.binary(max_size=100),
              st.text(max_size=40)),
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(requests=st.lists(REQUESTS, min_size=1, max_size=3))
def test_fuzzed_bodies_and_uploads_never_crash_the_gateway(
    requests: list[tuple[str, bytes, str]],
) -> None:
    loop = asyncio.new_event_loop()  # of its own, leaving the suite's loop as it is
    try:
        loop.run_until_complete(_fuzz(requests))
    finally:
        loop.close()


async def _fuzz(requests: list[tuple[str, bytes, str]]) -> None:
    intake = _intake()
    async with _client(create_app(intake, MemoryKeys(KEYS), LIMITS)) as client:
        rig = Rig(client, intake.producer, intake.blobs, intake.acceptances, intake)  # type: ignore[arg-type]
        await _send_all(rig, requests)


async def _send_all(rig: Rig, requests: list[tuple[str, bytes, str]]) -> None:
    for path, body, content_type in requests:
        key = WIM_KEY if path == "/v1/wim" else CAM_KEY
        try:
            headers = {**key, "Content-Type": content_type}
            request = rig.client.build_request("POST", path, content=body, headers=headers)
        except (UnicodeEncodeError, ValueError, httpx.InvalidURL):
            continue  # a header httpx itself will not send
        # outside the try: whatever the app raises (ASGITransport re-raises it) fails the test
        res = await rig.client.send(request)
        assert res.status_code in {201, 202, 400, 403, 409, 413, 415, 422}, res.text
        if res.status_code >= 400:
            assert res.json()["status"] == "refused"
    # every id accepted was produced exactly once
    ids = [json.loads(o.value).get("record_id") or json.loads(o.value)["capture_id"]
           for o in rig.producer.sent]  # fmt: skip
    assert len(ids) == len(set(ids)) == len(rig.acceptances.accepted)


# -- the folder watcher --


def _write(path: Path, data: bytes | dict[str, Any]) -> None:
    path.write_bytes(data if isinstance(data, bytes) else json.dumps(data).encode())


def _capture_set(root: Path, stem: str, **changes: Any) -> dict[str, Any]:
    doc = _doc(CAPTURE, capture_id=f"{CAPTURE.capture_id}-{stem}", images=[
        {"role": "plate", "file": f"{stem}.plate.jpg"},
        {"role": "overview", "file": f"{stem}.overview.jpg"},
    ], **changes)  # fmt: skip
    _write(root / f"{stem}.plate.jpg", JPEG)
    _write(root / f"{stem}.overview.jpg", JPEG2)
    _write(root / f"{stem}.json", doc)
    return doc


def _watcher(root: Path, intake: Intake, **kw: Any) -> FolderWatcher:
    # the files' ages on the file system's clock (the folder changed last when a file was
    # written), not the process's: under `make test-future` the two differ by years
    kw.setdefault("clock", lambda: root.stat().st_mtime)
    return FolderWatcher(root, intake, settle_s=0, **kw)


async def test_watcher_sends_complete_sets_and_moves_them_to_done(tmp_path: Path) -> None:
    intake = _intake()
    _capture_set(tmp_path, "a")
    _write(tmp_path / "w.json", _doc(WIM))
    outcomes = await _watcher(tmp_path, intake).scan()
    assert [(o.name, o.accepted) for o in outcomes] == [("a.json", True), ("w.json", True)]
    assert sorted(p.name for p in (tmp_path / "done").iterdir()) == [
        "a.json", "a.overview.jpg", "a.plate.jpg", "w.json"
    ]  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == []
    sent = [json.loads(o.value) for o in intake.producer.sent]  # type: ignore[attr-defined]
    assert [i["role"] for i in sent[0]["images"]] == ["plate", "overview"]
    assert sent[1]["record_id"] == WIM.record_id


async def test_watcher_waits_for_half_written_sets(tmp_path: Path) -> None:
    intake = _intake()
    watcher = _watcher(tmp_path, intake)
    doc = _capture_set(tmp_path, "a")
    full = (tmp_path / "a.json").read_bytes()
    _write(tmp_path / "a.json", full[: len(full) // 2])  # the JSON still uploading
    _write(tmp_path / "a.plate.jpg", JPEG[:-40])  # a JPEG cut short: no end-of-image marker
    (tmp_path / "a.overview.jpg").rename(tmp_path / "a.overview.jpg.part")  # FTP temp name
    assert await watcher.scan() == []
    _write(tmp_path / "a.json", doc)
    assert await watcher.scan() == []
    _write(tmp_path / "a.plate.jpg", JPEG)
    assert await watcher.scan() == []
    (tmp_path / "a.overview.jpg.part").rename(tmp_path / "a.overview.jpg")
    assert [o.accepted for o in await watcher.scan()] == [True]
    assert len(intake.producer.sent) == 1  # type: ignore[attr-defined]


async def test_watcher_waits_until_files_settle(tmp_path: Path) -> None:
    now = [0.0]
    intake = _intake()
    _capture_set(tmp_path, "a")
    mtime = (tmp_path / "a.json").stat().st_mtime
    watcher = FolderWatcher(tmp_path, intake, settle_s=5, clock=lambda: now[0])
    now[0] = mtime + 1
    assert await watcher.scan() == []
    now[0] = mtime + 6
    assert [o.accepted for o in await watcher.scan()] == [True]


async def test_watcher_rejects_with_a_reason_file(tmp_path: Path) -> None:
    intake = _intake()
    _capture_set(tmp_path, "bad", confidence=7)
    _write(tmp_path / "nodevice.json", {"record_id": "x"})
    _write(tmp_path / "foreign.json", _doc(WIM, site_id=OTHER_SITE))
    outcomes = await _watcher(tmp_path, intake).scan()
    assert [(o.name, o.accepted) for o in outcomes] == [
        ("bad.json", False), ("foreign.json", False), ("nodevice.json", False)
    ]  # fmt: skip
    rejected = tmp_path / "rejected"
    assert {p.name for p in rejected.iterdir()} >= {"bad.json", "bad.plate.jpg",
                                                     "bad.overview.jpg", "bad.reason.txt"}  # fmt: skip
    assert (rejected / "bad.reason.txt").read_text().splitlines() == [
        "422 invalid: confidence: Input should be less than or equal to 1",
        "confidence: Input should be less than or equal to 1",
    ]
    assert (rejected / "foreign.reason.txt").read_text().startswith("403 forbidden")
    assert intake.producer.sent == []  # type: ignore[attr-defined]


async def test_watcher_gives_up_on_a_set_that_never_completes(tmp_path: Path) -> None:
    now = [0.0]
    intake = _intake()
    _capture_set(tmp_path, "a")
    (tmp_path / "a.overview.jpg").unlink()
    mtime = (tmp_path / "a.json").stat().st_mtime
    watcher = FolderWatcher(tmp_path, intake, settle_s=0, give_up_s=60, clock=lambda: now[0])
    now[0] = mtime + 30
    assert await watcher.scan() == []
    now[0] = mtime + 61
    (outcome,) = await watcher.scan()
    assert not outcome.accepted and "a.overview.jpg has not arrived" in (outcome.reason or "")


async def test_watcher_restarted_sends_no_set_twice(tmp_path: Path) -> None:
    intake = _intake()
    _capture_set(tmp_path, "a")
    _capture_set(tmp_path, "b")
    # a first run sent both sets but died before moving them: one set not moved at all, the
    # other's move journalled and cut short after its first file
    for name in ("a.json", "b.json"):
        doc = json.loads((tmp_path / name).read_bytes())
        files = [i["file"] for i in doc.pop("images")]
        uploads = [_upload(tmp_path, f) for f in files]
        await intake.accept(ANPR, None, {**doc, "images": []}, uploads)
    (tmp_path / ".moving").mkdir()
    _write(tmp_path / ".moving" / "cut.json", {"to": "done", "files": ["b.plate.jpg",
                                                                       "b.overview.jpg", "b.json"]})  # fmt: skip
    (tmp_path / "done").mkdir()
    (tmp_path / "b.plate.jpg").rename(tmp_path / "done" / "b.plate.jpg")
    outcomes = await _watcher(tmp_path, intake).scan()
    assert [(o.name, o.accepted, o.replayed) for o in outcomes] == [("a.json", True, True)]
    assert sorted(p.name for p in (tmp_path / "done").iterdir()) == [
        "a.json", "a.overview.jpg", "a.plate.jpg", "b.json", "b.overview.jpg", "b.plate.jpg"
    ]  # fmt: skip
    assert len(intake.producer.sent) == 2  # type: ignore[attr-defined]
    assert list((tmp_path / ".moving").iterdir()) == []


def _upload(root: Path, name: str) -> Any:
    from ingest.intake import Upload

    return Upload(name.split(".")[1], (root / name).read_bytes(), name)


async def test_watcher_leaves_a_set_for_later_when_the_broker_is_down(tmp_path: Path) -> None:
    producer = ListProducer()
    producer.fail = True
    intake = _intake(producer)
    _capture_set(tmp_path, "a")
    watcher = _watcher(tmp_path, intake)
    assert await watcher.scan() == []
    assert (tmp_path / "a.json").exists()
    producer.fail = False
    assert [o.accepted for o in await watcher.scan()] == [True]


async def test_watcher_for_one_device_takes_only_its_records(tmp_path: Path) -> None:
    intake = _intake()
    _write(tmp_path / "mine.json", _doc(WIM))
    _write(tmp_path / "theirs.json", _doc(OTHER_WIM))
    outcomes = await _watcher(tmp_path, intake, device=WIM.device_id).scan()
    assert [(o.name, o.accepted) for o in outcomes] == [("mine.json", True), ("theirs.json", False)]


def test_refused_carries_its_data() -> None:
    exc = Refused(422, "invalid", "lane: too small", [("lane", "too small")])
    assert exc.status == 422 and exc.problems == [("lane", "too small")]
    assert exc.document()["problems"] == [{"field": "lane", "reason": "too small"}]


# -- command line --


@pytest.mark.parametrize(
    ("args", "phrase"),
    [
        (["ingest", "serve", "--port", "70000"], "--port must be between 0 and 65535"),
        (["ingest", "serve", "--port", "http"], "invalid int value: 'http'"),
        (["ingest", "watch", "/nonexistent"], "no such folder: /nonexistent"),
        (["ingest", "sideways"], "invalid choice: 'sideways'"),
        (["devices", "key", "create", "NO-SUCH-DEVICE"], "no device 'NO-SUCH-DEVICE'"),
        (["devices", "key", "rotate", "X"], "invalid choice: 'rotate'"),
    ],
)
def test_bad_arguments_exit_with_one_line(args: list[str], phrase: str) -> None:
    res = subprocess.run([sys.executable, "-m", "offsite.cli", *args], cwd=ROOT,
                         capture_output=True, text=True)  # fmt: skip
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and phrase in lines[0], res.stderr


async def test_a_body_the_broker_would_refuse_is_refused_413_up_front() -> None:
    """Issue #28 row 5: a valid record with a 5 MB extra field was under the gateway's 6 MiB but
    over the producer's 4 MiB, and answered 503 (retry) for ever; the message limit is below
    the producer's and a broker's, so it is 413 before anything is read or produced."""
    limits = GatewaySettings()  # the shipped limits
    producer = ListProducer()
    app = create_app(_intake(producer, limits), MemoryKeys(KEYS), limits)
    body = json.dumps({**_doc(WIM), "note": "x" * 5_000_000}).encode()
    async with _client(app) as client:
        res = await client.post("/v1/wim", content=body, headers=JSON_WIM)
    assert res.status_code == 413, res.text
    assert f"limit is {limits.max_message_bytes}" in res.json()["message"]
    assert limits.max_message_bytes < MAX_REQUEST_BYTES // 4  # and far below the producer's
    assert producer.sent == []


async def test_a_message_the_broker_refuses_as_too_large_is_413_not_503() -> None:
    """A permanent producer error is the device's to fix, not to retry."""
    from aiokafka.errors import MessageSizeTooLargeError

    from offsite.gateway import KafkaProducer

    class TooLarge:
        async def send(self, *args: Any, **kwargs: Any) -> Any:
            raise MessageSizeTooLargeError()

    intake = Intake(REGISTRY, KafkaProducer(TooLarge(), 5.0), MemoryBlobs(),  # type: ignore[arg-type]
                    MemoryAcceptances(), LIMITS)  # fmt: skip
    async with _client(create_app(intake, MemoryKeys(KEYS), LIMITS)) as client:
        res = await client.post("/v1/wim", content=WIM.to_json(), headers=JSON_WIM)
    assert res.status_code == 413, res.text
    assert "broker does not take" in res.json()["message"]
    assert intake.acceptances.accepted == {}  # type: ignore[attr-defined]
