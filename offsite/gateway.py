"""The ingest gateway and folder watcher wired to the real services, and their commands.

Composition: the aiokafka producer of offsite.kafka (acks=all), the blob store under
``var/blobs``, device keys and the acceptance log in PostgreSQL (sinks.devicekeys). Also
:func:`post_traffic`, which sends simulated traffic through an in-process gateway over HTTP,
as the stations would.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import secrets
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaProducer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response

from events import AnprCapture, BrokerError, OffsiteError, UsageError, WimRecord
from events.stage import Outgoing
from ingest import Pass
from ingest.gateway import create_app, openapi
from ingest.intake import GatewaySettings, Intake
from ingest.watch import FolderWatcher, SetOutcome
from sinks import BlobStore, CaseStore
from sinks.blobs import SCHEME
from sinks.devicekeys import AcceptanceLog, DeviceKeyStore, key_hash

from .config import Settings, load_registry
from .kafka import ensure_offsite_topics, producer, send_all
from .services import Endpoints, endpoints

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("offsite.gateway")


class KafkaProducer:
    """``ingest.intake.Producer`` over the shared aiokafka producer (acks=all)."""

    def __init__(self, prod: AIOKafkaProducer, timeout_s: float) -> None:
        self.prod, self.timeout_s = prod, timeout_s

    async def send_and_wait(self, messages: Sequence[Outgoing]) -> None:
        try:
            async with asyncio.timeout(self.timeout_s):
                await send_all(self.prod, list(messages))
        except TimeoutError as exc:
            raise BrokerError(f"no acknowledgement within {self.timeout_s:g} s") from exc


class DurableBlobs:
    """``ingest.intake.BlobWriter`` over the blob store: a file is fsynced under a name of its
    own, then renamed into place, so instances writing the same image at once never see each
    other's half and a message is never produced before its image is on disk."""

    def __init__(self, store: BlobStore) -> None:
        self.store = store

    def uri(self, sha256: str) -> str:
        return f"{SCHEME}{sha256}.jpg"

    def put(self, data: bytes, sha256: str) -> None:
        path = self.store.path(self.uri(sha256))
        if path.exists():
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.part")
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)  # the rename itself survives a power cut
        finally:
            os.close(fd)

    def get(self, sha256: str) -> bytes | None:
        try:
            return self.store.path(self.uri(sha256)).read_bytes()
        except FileNotFoundError:
            return None


class CachedKeys:
    """``ingest.intake.DeviceKeys`` with a short per-instance cache (by the key's hash), so a
    request does not always wait on the database; a revoked key stops working within
    ``ttl_s``."""

    def __init__(self, store: DeviceKeyStore, ttl_s: float, *, size: int = 10_000) -> None:
        self.store, self.ttl_s, self.size = store, ttl_s, size
        self._seen: dict[str, tuple[str | None, float]] = {}

    async def device_of(self, key: str) -> str | None:
        if self.ttl_s <= 0:
            return await self.store.device_of(key)
        digest, now = key_hash(key), time.monotonic()
        hit = self._seen.get(digest)
        if hit is not None and now - hit[1] < self.ttl_s:
            return hit[0]
        device = await self.store.device_of(key)
        if len(self._seen) >= self.size:  # unknown keys sent in a flood cannot grow it forever
            self._seen.clear()
        self._seen[digest] = (device, now)
        return device


@dataclass
class Gateway:
    app: Starlette
    intake: Intake
    keys: DeviceKeyStore


@contextlib.asynccontextmanager
async def open_gateway(
    settings: Settings, ep: Endpoints | None = None, *, limits: GatewaySettings | None = None
) -> AsyncIterator[Gateway]:
    """The gateway app and its intake on the configured services (topics created, schema
    migrated); ``limits`` replaces ``settings.gateway``."""
    ep = ep or endpoints(settings)
    g = limits or settings.gateway
    registry = load_registry(settings.registry)
    prefix = settings.pipeline.topic_prefix
    await ensure_offsite_topics(ep.bootstrap, prefix, settings.kafka)
    store = await DeviceKeyStore.connect(ep.database_url, size=min(g.max_in_flight, 16))
    try:
        await CaseStore(store.pool).migrate()
        async with producer(ep.bootstrap) as prod:
            intake = Intake(registry, KafkaProducer(prod, g.produce_timeout_s),
                            DurableBlobs(BlobStore(settings.var_dir / "blobs")),
                            AcceptanceLog(store.pool), g, topic_prefix=prefix)  # fmt: skip
            app = create_app(intake, CachedKeys(store, g.key_cache_s), g)
            # for Prometheus and Kubernetes, as every offsite process: ready once the broker
            # and the database answered (they did, to get here)
            app.add_route("/metrics", _metrics, methods=["GET"])
            app.add_route("/readyz", _ready, methods=["GET"])
            yield Gateway(app, intake, store)
    finally:
        await store.close()


async def _metrics(request: Request) -> Response:
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


async def _ready(request: Request) -> Response:
    return Response("ready\n", media_type="text/plain")


def _listen(host: str, port: int) -> socket.socket:
    try:
        return socket.create_server((host, port), backlog=1024)
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc


def _server(app: Starlette, *, own_signals: bool) -> Any:
    import uvicorn

    config = uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False,
                            server_header=False)  # fmt: skip

    class Embedded(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:  # the host process keeps its signals
            yield

    return uvicorn.Server(config) if own_signals else Embedded(config)


async def serve(settings: Settings, host: str, port: int) -> None:
    """``offsite ingest serve``: until SIGINT/SIGTERM, then finish the requests in flight."""
    sock = _listen(host, port)
    async with open_gateway(settings) as gw:
        bound = sock.getsockname()
        print(f"gateway on http://{bound[0]}:{bound[1]}  (API: /v1/openapi.json)", file=sys.stderr)
        await _server(gw.app, own_signals=True).serve(sockets=[sock])


@contextlib.asynccontextmanager
async def running_gateway(
    settings: Settings, ep: Endpoints | None = None, *, limits: GatewaySettings | None = None
) -> AsyncIterator[tuple[str, Gateway]]:
    """A gateway served over HTTP in this process on a free port: (base URL, gateway)."""
    sock = _listen("127.0.0.1", 0)  # listening before the server runs: no start-up race
    async with open_gateway(settings, ep, limits=limits) as gw:
        server = _server(gw.app, own_signals=False)
        task = asyncio.create_task(server.serve(sockets=[sock]))
        try:
            yield f"http://127.0.0.1:{sock.getsockname()[1]}", gw
        finally:
            server.should_exit = True
            await task


async def post_traffic(
    settings: Settings,
    ep: Endpoints,
    passes: Sequence[Pass],
    extra: Sequence[AnprCapture] = (),
    *,
    window: int = 16,
    images: BlobStore | None = None,
) -> int:
    """Send simulated traffic through a gateway over HTTP, as the stations would: each device
    with a key of its own, each capture as multipart with its JPEGs (read from ``images``, the
    store the simulator wrote them to; by default the gateway's own). Messages go out in time
    order, ``window`` in flight at once: the devices of a site send as the vehicles pass, so a
    WIM record and its capture arrive close together, as the matcher expects. Returns once
    every message was answered 202; the keys are revoked after. Rate limits are off: simulated
    traffic packs hours into seconds."""
    items: list[tuple[str, str, WimRecord | AnprCapture]] = [
        ("/v1/wim", p.wim.device_id, p.wim) for p in passes
    ]
    captures = [p.capture for p in passes if p.capture is not None] + list(extra)
    items += [("/v1/anpr", c.camera_id, c) for c in captures]
    items.sort(key=lambda i: (i[2].ts, i[0]))
    import httpx  # the demo's stations; not needed to run a gateway

    blobs = images or BlobStore(settings.var_dir / "blobs")
    unlimited = settings.gateway.model_copy(update={"rate_per_s": 1e9, "burst": 10**9})
    async with running_gateway(settings, ep, limits=unlimited) as (url, gw):
        keys = {dev: await gw.keys.create(dev) for dev in sorted({i[1] for i in items})}
        slots = asyncio.Semaphore(window)

        async def one(client: httpx.AsyncClient, path: str, dev: str, msg: Any) -> None:
            try:
                await post_message(client, keys[dev][1], path, msg, blobs)
            finally:
                slots.release()

        try:
            async with httpx.AsyncClient(base_url=url, timeout=120) as client, \
                    asyncio.TaskGroup() as tasks:  # fmt: skip
                for path, dev, msg in items:
                    await slots.acquire()  # the next one leaves once one is answered
                    tasks.create_task(one(client, path, dev, msg))
        except ExceptionGroup as group:  # the first refusal says what went wrong
            raise group.exceptions[0] from None
        finally:
            for dev, (key_id, _) in keys.items():
                await gw.keys.revoke(dev, key_id)
    return len(items)


async def post_message(
    client: httpx.AsyncClient,
    key: str,
    path: str,
    msg: WimRecord | AnprCapture,
    blobs: BlobStore,
    attempts: int = 30,
) -> httpx.Response:
    """Post one message as a station does: a capture's JPEGs as parts of a multipart request;
    after 429 or 503 (or a broken connection), wait as told and send it again."""
    import httpx

    headers = {"Authorization": f"Bearer {key}"}
    if isinstance(msg, AnprCapture) and msg.images:
        datas = await asyncio.to_thread(
            lambda: [blobs.path(i.uri).read_bytes() for i in msg.images]
        )
        doc = msg.model_dump(mode="json", exclude={"images"})
        files: list[Any] = [("capture", (None, json.dumps(doc, ensure_ascii=False),
                                         "application/json"))]  # fmt: skip
        files += [
            (i.role, (f"{i.role}.jpg", d, "image/jpeg"))
            for i, d in zip(msg.images, datas, strict=True)
        ]
        send: dict[str, Any] = {"files": files}
    else:
        send = {
            "content": msg.to_json(),
            "headers": {**headers, "Content-Type": "application/json"},
        }
    send.setdefault("headers", headers)
    for _ in range(attempts):
        try:
            res = await client.post(path, **send)
        except httpx.TransportError:
            await asyncio.sleep(1)
            continue
        if res.status_code == 202:
            return res
        if res.status_code in (429, 503):
            await asyncio.sleep(float(res.headers.get("retry-after", "1")))
            continue
        raise OffsiteError(f"the gateway refused {path}: {res.status_code} {res.text}")
    raise OffsiteError(f"the gateway did not accept {path} after {attempts} attempts")


async def watch(
    settings: Settings, directory: Path, device: str | None, once: bool
) -> list[SetOutcome]:
    """``offsite ingest watch DIR``: until SIGINT/SIGTERM (or, ``once``, one pass)."""
    if not directory.is_dir():
        raise UsageError(f"no such folder: {directory}")
    if device is not None and load_registry(settings.registry).device(device) is None:
        raise UsageError(f"no device {device!r} in {settings.registry}")
    g = settings.gateway
    async with open_gateway(settings) as gw:
        watcher = FolderWatcher(directory, gw.intake, device=device, settle_s=g.watch_settle_s,
                                give_up_s=g.watch_give_up_s)  # fmt: skip
        if once:
            outcomes = await watcher.scan()
            for o in outcomes:
                _print_outcome(o)
            return outcomes
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        print(f"watching {directory} (done/ and rejected/ beside the sets)", file=sys.stderr)
        await watcher.run(stop, g.watch_interval_s, _print_outcome)
        return []


def _print_outcome(o: SetOutcome) -> None:
    if o.accepted:
        print(f"done      {o.name}" + ("  (accepted before: not sent again)" if o.replayed else ""))
    else:
        print(f"rejected  {o.name}: {o.reason}")
    sys.stdout.flush()


async def create_key(settings: Settings, device_id: str) -> tuple[str, str]:
    """(key id, key) for a registered WIM or ANPR device."""
    device = load_registry(settings.registry).device(device_id)
    if device is None:
        raise UsageError(f"no device {device_id!r} in {settings.registry}")
    if device.type not in ("wim", "anpr"):
        raise UsageError(f"device {device_id} is a {device.type}: the gateway takes WIM records "
                         "and ANPR captures")  # fmt: skip
    store = await DeviceKeyStore.connect(endpoints(settings).database_url, size=1)
    try:
        await CaseStore(store.pool).migrate()
        return await store.create(device_id)
    finally:
        await store.close()


async def revoke_keys(settings: Settings, device_id: str, key_id: str | None) -> int:
    store = await DeviceKeyStore.connect(endpoints(settings).database_url, size=1)
    try:
        await CaseStore(store.pool).migrate()
        return await store.revoke(device_id, key_id)
    finally:
        await store.close()


def command(args: argparse.Namespace, settings: Settings) -> int:
    """``offsite ingest …`` and ``offsite devices key …``."""
    if args.verb == "devices":
        if args.op == "create":
            key_id, key = asyncio.run(create_key(settings, args.device_id))
            print(key)  # alone on stdout, for a script to take; shown this once
            print(f"key {key_id} for device {args.device_id}: shown once, put it in the "
                  "device's configuration; offsite keeps only its SHA-256", file=sys.stderr)  # fmt: skip
            return 0
        n = asyncio.run(revoke_keys(settings, args.device_id, args.key_id))
        if not n:
            which = f"key {args.key_id}" if args.key_id else "key"
            raise UsageError(f"device {args.device_id} has no active {which}")
        print(f"revoked {n} key{'s' if n != 1 else ''} of {args.device_id}; gateways refuse "
              f"{'them' if n != 1 else 'it'} within {settings.gateway.key_cache_s:g} s")  # fmt: skip
        return 0
    if args.action == "serve":
        host = args.host or settings.gateway.host
        port = settings.gateway.port if args.port is None else args.port
        if not 0 <= port <= 65535:
            raise UsageError(f"--port must be between 0 and 65535: {port}")
        asyncio.run(serve(settings, host, port))
        return 0
    if args.action == "watch":
        asyncio.run(watch(settings, args.dir, args.device, args.once))
        return 0
    if args.action == "openapi":
        text = json.dumps(openapi(), indent=2, ensure_ascii=False, sort_keys=True) + "\n"
        if args.out is None:
            sys.stdout.write(text)
        else:
            args.out.write_text(text, encoding="utf-8")
            print(args.out)
        return 0
    raise UsageError(f"unknown action {args.action}")  # pragma: no cover
