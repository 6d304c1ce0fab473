"""The ingest gateway on the real broker and database: what it accepts reaches its raw topic once
with its images in the blob store, what it refuses leaves no message, and a gateway killed
between storing an image and producing loses nothing when the station retries."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import random
import shutil
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from PIL import Image

from events import ROAD_ANPR, ROAD_WIM, AnprCapture, WimRecord
from offsite import services
from offsite.config import Settings, registry_of
from offsite.gateway import post_message, post_traffic, running_gateway
from offsite.kafka import OffsetProbe, read_to_end
from offsite.pipeline import run
from offsite.testing import settings_env
from sim import SimulationConfig, simulate
from sim.truth import expected_cases
from sinks import BlobStore
from tests.integration.test_pipeline import cases_of

ROOT = Path(__file__).resolve().parents[2]


async def raw(settings: Settings, topic: str) -> list[dict[str, Any]]:
    bootstrap, name = services.endpoints(settings).bootstrap, settings.pipeline.topic_prefix + topic
    # read_to_end on an empty topic can stop its consumer before aiokafka's own task started
    # (a CancelledError): look at the end offsets first
    async with OffsetProbe(bootstrap) as probe:
        if not any((await probe.ends([name])).values()):
            return []
    return [json.loads(value) for _, _, _, value in await read_to_end(bootstrap, name)]


async def count(settings: Settings) -> int:
    """How many messages the raw topics hold (read, not end offsets: the embedded broker
    reports a batch of records as one offset)."""
    return len(await raw(settings, ROAD_WIM)) + len(await raw(settings, ROAD_ANPR))


async def accepted_rows(settings: Settings) -> int:
    conn = await asyncpg.connect(services.endpoints(settings).database_url)
    try:
        n: int = await conn.fetchval("SELECT count(*) FROM ingest_accepted")
    finally:
        await conn.close()
    return n


def as_sent(msg: WimRecord | AnprCapture) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(msg.to_json())
    return doc


def unique_jpeg(side: int = 48) -> bytes:
    """A JPEG no other test stored: noise from a fresh seed."""
    noise = random.Random(uuid.uuid4().int).randbytes(side * side * 3)
    buf = io.BytesIO()
    Image.frombytes("RGB", (side, side), noise).save(buf, "JPEG")
    return buf.getvalue()


def station(settings: Settings, tmp_path: Path, vehicles: int, seed: int) -> tuple[list, BlobStore]:
    """Simulated passes whose JPEGs are in the station's own folder, not yet in offsite's."""
    images = BlobStore(tmp_path / "station")
    cfg = SimulationConfig(vehicles=vehicles, seed=seed, images=True)
    return simulate(registry_of(settings), cfg, put_blob=images.put), images


def multipart(capture: AnprCapture, *images: tuple[str, bytes]) -> dict[str, Any]:
    doc = capture.model_dump(mode="json", exclude={"images"})
    files: list[Any] = [("capture", (None, json.dumps(doc), "application/json"))]
    files += [(role, (f"{role}.jpg", data, "image/jpeg")) for role, data in images]
    return {"files": files}


async def test_traffic_through_the_gateway_becomes_cases_once(
    plain_settings: Settings, tmp_path: Path
) -> None:
    settings = plain_settings  # no OCR second read: expected_cases(verified=False)
    ep = services.endpoints(settings)
    passes, images = station(settings, tmp_path, vehicles=60, seed=5)
    captures = [p.capture for p in passes if p.capture is not None]
    expected = expected_cases(
        passes, registry_of(settings), settings.pipeline.clock()(), verified=False
    )
    assert expected and captures

    sent = await post_traffic(settings, ep, passes, images=images)
    assert sent == len(passes) + len(captures)
    wim, anpr = await raw(settings, ROAD_WIM), await raw(settings, ROAD_ANPR)
    assert sorted(m["record_id"] for m in wim) == sorted(p.wim.record_id for p in passes)
    assert {m["record_id"]: m for m in wim} == {p.wim.record_id: as_sent(p.wim) for p in passes}
    # the same image refs too: the gateway computed what the simulator did
    assert {m["capture_id"]: m for m in anpr} == {c.capture_id: as_sent(c) for c in captures}
    blobs = BlobStore(settings.var_dir / "blobs")
    for c in captures:
        for i in c.images:
            assert blobs.path(i.uri).read_bytes() == images.path(i.uri).read_bytes()

    # the stations send it all again (a retry after a lost answer): nothing new
    assert await post_traffic(settings, ep, passes, images=images) == sent
    assert await count(settings) == sent
    assert await accepted_rows(settings) == sent

    await run(settings, ep, until_done=True)
    cases = await cases_of(settings)
    assert sorted(c["record_id"] for c in cases) == sorted(expected)


async def test_each_bad_request_gets_its_status_and_no_message(settings: Settings) -> None:
    reg = registry_of(settings)
    (p,) = [p for p in simulate(reg, SimulationConfig(vehicles=20, seed=9, images=False))
            if p.capture is not None][:1]  # fmt: skip
    wim, cap = p.wim, p.capture
    assert cap is not None
    other_site = next(s.id for s in reg.sites if s.id != wim.site_id)
    jpeg = unique_jpeg()
    limits = settings.gateway.model_copy(update={"key_cache_s": 0, "max_body_bytes": 256 * 1024,
                                                 "max_images": 2})  # fmt: skip
    async with (
        running_gateway(settings, limits=limits) as (url, gw),
        httpx.AsyncClient(base_url=url) as client,
    ):
        _, wim_key = await gw.keys.create(wim.device_id)
        _, cam_key = await gw.keys.create(cap.camera_id)
        revoked_id, revoked = await gw.keys.create(wim.device_id)
        assert await gw.keys.revoke(wim.device_id, revoked_id) == 1
        as_wim = {"Authorization": f"Bearer {wim_key}", "Content-Type": "application/json"}
        as_cam = {"X-API-Key": cam_key}
        good = await client.post("/v1/anpr", headers=as_cam, **multipart(cap, ("plate", jpeg)))
        assert good.status_code == 202, good.text

        def wim_doc(**changes: Any) -> bytes:
            return json.dumps({**wim.model_dump(mode="json"), **changes}).encode()

        bad: list[tuple[str, dict[str, Any], int, str]] = [
            ("/v1/wim", {"content": wim.to_json(),
                         "headers": {"Content-Type": "application/json"}}, 401, ""),
            ("/v1/wim", {"content": wim.to_json(),
                         "headers": {**as_wim, "Authorization": f"Bearer {revoked}"}}, 401, ""),
            ("/v1/wim", {"content": wim_doc(device_id=cap.camera_id)}, 403, "device_id"),
            ("/v1/wim", {"content": wim_doc(site_id=other_site)}, 403, "site_id"),
            ("/v1/wim", {"content": wim_doc(axle_count=1)}, 422, "axle_count"),
            ("/v1/wim", {"content": wim_doc(ts="yesterday")}, 422, "ts"),
            ("/v1/wim", {"content": b" " * 300_000}, 413, ""),
            ("/v1/wim", {"content": wim.to_json(),
                         "headers": {**as_wim, "Content-Type": "text/csv"}}, 415, ""),
            ("/v1/anpr", {"headers": as_cam,
                          **multipart(cap, ("plate", b"GIF89a" + bytes(64)))}, 415, "plate"),
            ("/v1/anpr", {"headers": as_cam, **multipart(cap, *[("side", jpeg)] * 3)}, 413, ""),
            ("/v1/anpr", {"headers": as_cam,
                          **multipart(cap.model_copy(update={"confidence": 2.0}))}, 422,
             "confidence"),
            # issue #28 rows 1, 2 and 7: what no device can send, refused with the reason
            ("/v1/wim", {"content": wim_doc(axle_weights_kg=[10**30] * wim.axle_count,
                                            gross_weight_kg=wim.axle_count * 10**30)}, 422,
             "axle_weights_kg.0"),
            ("/v1/wim", {"content": wim_doc(ts="0001-01-01T00:00:00+08:00")}, 422, "ts"),
            ("/v1/wim", {"content": wim_doc(ts="9999-12-31T23:59:59-08:00")}, 422, "ts"),
            ("/v1/wim", {"content": wim_doc(ts="9999-12-31T23:59:59+08:00")}, 422, "ts"),
            ("/v1/wim", {"content": wim_doc(lane=99)}, 422, "lane"),
            ("/v1/wim", {"content": wim_doc(lane=reg.site(wim.site_id).lanes + 1)}, 422, "lane"),  # type: ignore[union-attr]
            ("/v1/wim", {"content": wim_doc(axle_weights_kg=[10**12] * wim.axle_count,
                                            gross_weight_kg=wim.axle_count * 10**12)}, 422,
             "gross_weight_kg"),
            ("/v1/wim", {"content": wim_doc(speed_kmh=float("nan"))}, 422, "speed_kmh"),
            ("/v1/wim", {"content": wim_doc(vendor_x=float("nan"))}, 422, ""),
            ("/v1/anpr", {"headers": as_cam,
                          **multipart(cap.model_copy(update={"plate": "湘A\x001234"}))}, 422,
             "plate"),
            ("/v1/anpr", {"headers": as_cam,
                          **multipart(cap.model_copy(update={"plate": "湘" * 2_700}))}, 422,
             "plate"),
            # the accepted capture's id again with another plate: not the same capture
            ("/v1/anpr", {"headers": as_cam,
                          **multipart(cap.model_copy(update={"plate": "湘A00000"}),
                                      ("plate", jpeg))}, 409, "capture_id"),
        ]  # fmt: skip
        for path, request, status, field in bad:
            request.setdefault("headers", as_wim)
            res = await client.post(path, **request)
            assert res.status_code == status, (path, res.text)
            body = res.json()
            assert body["status"] == "refused" and body["message"]
            if field:
                assert field in {p["field"] for p in body["problems"]}, body
    assert await count(settings) == 1
    assert await accepted_rows(settings) == 1
    (produced,) = await raw(settings, ROAD_ANPR)
    assert produced["capture_id"] == cap.capture_id and produced["plate"] == cap.plate


async def test_twins_sent_to_two_instances_at_once_produce_one_message(
    settings: Settings,
) -> None:
    """Two gateways behind a load balancer share the database and the blob store: a station
    that retries on the other one while the first is still working gets one message."""
    passes = simulate(registry_of(settings), SimulationConfig(vehicles=12, seed=4, images=False))
    records = [p.wim for p in passes]
    # a station's whole backlog in flight at once: beyond a device's share, on purpose
    g = settings.gateway.model_copy(update={"max_in_flight_per_device": 64})
    async with running_gateway(settings, limits=g) as (url_a, gw), \
            running_gateway(settings, limits=g) as (url_b, _):  # fmt: skip
        keys = {d: (await gw.keys.create(d))[1] for d in {r.device_id for r in records}}
        async with httpx.AsyncClient() as client:

            async def send(url: str, r: WimRecord) -> httpx.Response:
                return await client.post(f"{url}/v1/wim", content=r.to_json(), headers={
                    "Authorization": f"Bearer {keys[r.device_id]}",
                    "Content-Type": "application/json"})  # fmt: skip

            answers = await asyncio.gather(
                *(send(url, r) for r in records for url in (url_a, url_b, url_a, url_b))
            )
    assert [a.status_code for a in answers] == [202] * len(answers)
    for i, r in enumerate(records):
        mine = answers[4 * i : 4 * i + 4]
        assert len({a.text for a in mine}) == 1
        assert sum("idempotent-replayed" not in a.headers for a in mine) == 1, r.record_id
    produced = await raw(settings, ROAD_WIM)
    assert sorted(m["record_id"] for m in produced) == sorted(r.record_id for r in records)


# A gateway whose broker never acknowledges: the test kills it there, after the images were
# stored and while the message is being produced.
STALLED_GATEWAY = """
import asyncio
import offsite.gateway as gw
from offsite.config import load_settings

async def stall(self, messages):
    print("producing", flush=True)
    await asyncio.Event().wait()

gw.KafkaProducer.send_and_wait = stall
asyncio.run(gw.serve(load_settings(), "127.0.0.1", 0))
"""


async def _line(stream: asyncio.StreamReader, starts: str) -> str:
    while True:
        line = (await stream.readline()).decode()
        assert line, f"the gateway exited before printing {starts!r}"
        if line.startswith(starts):
            return line


async def test_gateway_killed_between_storing_the_image_and_producing_loses_nothing(
    settings: Settings,
) -> None:
    (cap,) = [p.capture for p in simulate(registry_of(settings), SimulationConfig(
        vehicles=10, seed=8, images=False)) if p.capture is not None][:1]  # fmt: skip
    jpeg = unique_jpeg()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", STALLED_GATEWAY, env=settings_env(settings), cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    try:
        async with asyncio.timeout(120):  # a cap for a process that never gets there
            url = (await _line(proc.stderr, "gateway on ")).split()[2]
        async with running_gateway(settings) as (good_url, gw):
            _, key = await gw.keys.create(cap.camera_id)
            async with httpx.AsyncClient() as client:
                post = asyncio.create_task(client.post(
                    f"{url}/v1/anpr", headers={"X-API-Key": key}, **multipart(cap, ("plate", jpeg))
                ))  # fmt: skip
                async with asyncio.timeout(120):
                    await _line(proc.stdout, "producing")
                proc.send_signal(signal.SIGKILL)
                await proc.wait()
                try:
                    answer = await post
                except httpx.TransportError:
                    pass  # what a station sees: the connection dropped, no answer
                else:
                    raise AssertionError(f"a killed gateway answered {answer.status_code}")
                uri = f"blob://sha256/{hashlib.sha256(jpeg).hexdigest()}.jpg"
                stored = BlobStore(settings.var_dir / "blobs").path(uri)
                assert stored.read_bytes() == jpeg  # stored before the kill
                assert await count(settings) == 0  # and no message
                # the station retries, on another instance: accepted as new, produced once
                retry = await client.post(f"{good_url}/v1/anpr", headers={"X-API-Key": key},
                                          **multipart(cap, ("plate", jpeg)))  # fmt: skip
                assert retry.status_code == 202, retry.text
                assert "idempotent-replayed" not in retry.headers
                assert retry.json()["images"][0]["uri"] == uri
                again = await client.post(f"{good_url}/v1/anpr", headers={"X-API-Key": key},
                                          **multipart(cap, ("plate", jpeg)))  # fmt: skip
                assert again.headers["idempotent-replayed"] == "true"
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    (produced,) = await raw(settings, ROAD_ANPR)
    assert {**produced, "images": []} == as_sent(cap)
    assert [i["uri"] for i in produced["images"]] == [uri]


async def test_metrics_and_readiness_are_served_on_a_port_of_their_own(
    settings: Settings,
) -> None:
    """`offsite ingest serve`: /metrics and /readyz on gateway.metrics_port, not on the port
    the devices post to (issue #28, row 11)."""
    with socket.socket() as s:  # a free port for the metrics listener
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**settings_env(settings), "OFFSITE_GATEWAY__METRICS_PORT": str(port)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "offsite.cli", "ingest", "serve", "--port", "0", env=env, cwd=ROOT,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stderr is not None
    try:
        async with asyncio.timeout(120):  # a cap for a process that never gets there
            url = (await _line(proc.stderr, "gateway on ")).split()[2]
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200
            metrics = await client.get(f"http://127.0.0.1:{port}/metrics")
            assert metrics.status_code == 200 and "offsite_stage_ready" in metrics.text
            for path in ("/metrics", "/readyz"):
                assert (await client.get(f"{url}{path}")).status_code == 404
            assert "server" not in (await client.get(f"{url}/healthz")).headers
    finally:
        proc.send_signal(signal.SIGTERM)
        await proc.wait()


def _offsite(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    # the test's files are complete when written: no need to see them unchanged for a while
    env = {**settings_env(settings), "OFFSITE_GATEWAY__WATCH_SETTLE_S": "0"}
    return subprocess.run([sys.executable, "-m", "offsite.cli", *args], cwd=ROOT, text=True,
                          env=env, capture_output=True)  # fmt: skip


async def test_keys_from_the_command_line_and_a_watched_folder(
    settings: Settings, tmp_path: Path
) -> None:
    passes, images = station(settings, tmp_path, vehicles=6, seed=12)
    p = next(p for p in passes if p.capture is not None)
    assert p.capture is not None
    created = await asyncio.to_thread(_offsite, settings, "devices", "key", "create",
                                      p.wim.device_id)  # fmt: skip
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    limits = settings.gateway.model_copy(update={"key_cache_s": 0})
    async with (
        running_gateway(settings, limits=limits) as (url, _),
        httpx.AsyncClient(base_url=url) as client,
    ):
        res = await post_message(client, key, "/v1/wim", p.wim, images)
        assert res.status_code == 202
        revoked = await asyncio.to_thread(_offsite, settings, "devices", "key", "revoke",
                                          p.wim.device_id)  # fmt: skip
        assert revoked.returncode == 0, revoked.stderr
        res = await client.post("/v1/wim", content=p.wim.to_json(),
                                headers={"Authorization": f"Bearer {key}",
                                         "Content-Type": "application/json"})  # fmt: skip
        assert res.status_code == 401

    # a camera's FTP folder: its capture as JSON naming its JPEG files, and a broken set
    drop = tmp_path / "ftp"
    drop.mkdir()
    doc = p.capture.model_dump(mode="json", exclude={"images"})
    doc["images"] = [{"role": i.role, "file": f"{i.role}.jpg"} for i in p.capture.images]
    for i in p.capture.images:
        shutil.copy(images.path(i.uri), drop / f"{i.role}.jpg")
    (drop / "cap.json").write_text(json.dumps(doc))
    (drop / "bad.json").write_text(json.dumps({**doc, "images": [], "lane": "one"}))
    out = await asyncio.to_thread(_offsite, settings, "ingest", "watch", str(drop), "--once")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "rejected  bad.json: 422 invalid: lane: Input should be a valid integer",
        "done      cap.json",
    ]
    assert (drop / "rejected" / "bad.reason.txt").read_text().startswith("422 invalid")
    assert sorted(f.name for f in (drop / "done").iterdir()) == sorted(
        ["cap.json", *(f"{i.role}.jpg" for i in p.capture.images)]
    )
    # the camera uploads the same set again (it never saw it move): not sent twice
    for f in (drop / "done").iterdir():
        shutil.copy(f, drop / f.name)
    out = await asyncio.to_thread(_offsite, settings, "ingest", "watch", str(drop), "--once")
    assert out.stdout.splitlines() == ["done      cap.json  (accepted before: not sent again)"]
    assert [m["record_id"] for m in await raw(settings, ROAD_WIM)] == [p.wim.record_id]
    (produced,) = await raw(settings, ROAD_ANPR)
    assert produced == as_sent(p.capture)
