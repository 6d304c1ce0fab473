"""The ingest gateway's accepted messages/s with images, as a ratio to producing the same messages
with a bare aiokafka producer (acks=all) in the same run, and the latency of its 202 answers.

    python -m bench.gateway [VEHICLES] [CLIENTS]

The gateway runs as its own process (`offsite ingest serve`, rate limits off) with a blob store
of its own, so every image is really written and fsynced; this process plays the stations:
CLIENTS connections post the WIM records (JSON) and captures (multipart, two JPEGs each) in time
order. The bare side sends the same message bytes (the captures with their image references)
and waits for every acknowledgement; it writes no images and checks nothing.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer

from events import ROAD_ANPR, ROAD_WIM, AnprCapture, WimRecord
from offsite import services
from offsite.config import registry_of
from offsite.kafka import ensure_topics
from offsite.testing import settings_env
from sim import SimulationConfig, simulate
from sinks import BlobStore
from sinks.devicekeys import DeviceKeyStore

from .common import ROOT, bench_settings

Message = WimRecord | AnprCapture


def requests(messages: list[Message], station: BlobStore) -> list[tuple[str, str, dict[str, Any]]]:
    """(path, device, httpx arguments) per message, the JPEGs read beforehand."""
    out = []
    for m in messages:
        if isinstance(m, WimRecord):
            send = {"content": m.to_json(), "headers": {"Content-Type": "application/json"}}
            out.append(("/v1/wim", m.device_id, send))
            continue
        doc = json.dumps(m.model_dump(mode="json", exclude={"images"})).encode()
        files: list[Any] = [("capture", (None, doc, "application/json"))]
        files += [(i.role, (f"{i.role}.jpg", station.path(i.uri).read_bytes(), "image/jpeg"))
                  for i in m.images]  # fmt: skip
        out.append(("/v1/anpr", m.camera_id, {"files": files, "headers": {}}))
    return out


async def bare(bootstrap: str, prefix: str, messages: list[Message]) -> float:
    prod = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5,
                            max_request_size=4 * 1024 * 1024)  # fmt: skip
    await prod.start()
    try:
        t0 = time.perf_counter()
        futures = []
        for m in messages:
            topic = ROAD_WIM if isinstance(m, WimRecord) else ROAD_ANPR
            futures.append(await prod.send(prefix + topic, m.to_json(), key=m.site_id.encode()))
        await asyncio.gather(*futures)
        return time.perf_counter() - t0
    finally:
        await prod.stop()


async def stations(
    url: str, keys: dict[str, str], todo: list[tuple[str, str, dict[str, Any]]], clients: int
) -> tuple[float, list[float], int]:
    """(seconds, latency of each 202, answers 503/429 that were retried)."""
    latencies: list[float] = []
    retried = 0
    queue = iter(todo)

    async def client_loop(client: httpx.AsyncClient) -> None:
        nonlocal retried
        for path, device, send in queue:  # the clients share one iterator: time order
            headers = {**send["headers"], "Authorization": f"Bearer {keys[device]}"}
            while True:
                t0 = time.perf_counter()
                res = await client.post(path, **{**send, "headers": headers})
                if res.status_code == 202:
                    latencies.append(time.perf_counter() - t0)
                    break
                assert res.status_code in (429, 503), res.text
                retried += 1
                await asyncio.sleep(float(res.headers.get("retry-after", "1")))

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120) as client:
        t0 = time.perf_counter()
        await asyncio.gather(*(client_loop(client) for _ in range(clients)))
        return time.perf_counter() - t0, latencies, retried


async def main(vehicles: int, clients: int) -> None:
    settings = await bench_settings()
    ep = services.endpoints(settings)
    scratch = Path(tempfile.mkdtemp(prefix="gateway-", dir=settings.var_dir))
    station = BlobStore(scratch / "station")
    cfg = SimulationConfig(vehicles=vehicles, seed=3, images=True)
    passes = await asyncio.to_thread(simulate, registry_of(settings), cfg, station.put)
    messages: list[Message] = [p.wim for p in passes]
    messages += [p.capture for p in passes if p.capture is not None]
    messages.sort(key=lambda m: m.ts)
    images = sum(len(m.images) for m in messages if isinstance(m, AnprCapture))
    todo = await asyncio.to_thread(requests, messages, station)
    size = sum(len(f[1][1]) for _, _, s in todo for f in s.get("files", [])[1:])
    print(f"{len(messages)} messages ({len(messages) - len(passes)} captures with {images} JPEGs, "
          f"{size / len(todo) / 1024:.1f} KiB of images per message); broker {ep.bootstrap}")  # fmt: skip

    bare_prefix = settings.pipeline.topic_prefix + "bare."
    await ensure_topics(ep.bootstrap, [bare_prefix + ROAD_WIM, bare_prefix + ROAD_ANPR],
                        settings.kafka.partitions)  # fmt: skip
    bare_s = await bare(ep.bootstrap, bare_prefix, messages)

    env = {**settings_env(settings), "OFFSITE_VAR_DIR": str(scratch / "gateway"),
           "OFFSITE_GATEWAY__RATE_PER_S": "1e9", "OFFSITE_GATEWAY__BURST": "1000000000"}  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "offsite.cli", "ingest", "serve", "--port", "0", env=env, cwd=ROOT,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stderr is not None
    try:
        line = ""
        while not line.startswith("gateway on "):
            line = (await proc.stderr.readline()).decode()
            assert line, "the gateway exited before it listened"
        url = line.split()[2]
        store = await DeviceKeyStore.connect(ep.database_url, size=1)
        try:
            keys = {d: (await store.create(d))[1] for d in {t[1] for t in todo}}
        finally:
            await store.close()
        gw_s, latencies, retried = await stations(url, keys, todo, clients)
    finally:
        proc.terminate()
        await proc.wait()
        shutil.rmtree(scratch, ignore_errors=True)

    n = len(messages)
    latencies.sort()
    p50, p99 = (latencies[int(q * (len(latencies) - 1))] * 1000 for q in (0.5, 0.99))
    print(f"bare aiokafka producer, acks=all : {n / bare_s:9,.0f} messages/s  ({bare_s:.2f} s)")
    print(f"gateway, {clients} clients, with images : {n / gw_s:9,.0f} messages/s  ({gw_s:.2f} s, "
          f"{retried} answers 503/429 retried)")  # fmt: skip
    print(f"ratio gateway / bare             : {bare_s / gw_s:.3f}")
    print(f"latency of a 202                 : p50 {p50:.1f} ms, p99 {p99:.1f} ms")


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    asyncio.run(main(*(args + [1000, 16][len(args) :])))
