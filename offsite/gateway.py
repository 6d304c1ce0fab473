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
from typing import TYPE_CHECKING, Any, cast

from aiokafka import AIOKafkaProducer
from aiokafka.errors import MessageSizeTooLargeError
from starlette.applications import Starlette

from events import AnprCapture, BrokerError, OffsiteError, UsageError, WimRecord
from events.stage import Outgoing
from ingest.fetch import Fetcher
from ingest.gateway import create_app, openapi
from ingest.intake import GatewaySettings, Intake, Refused
from ingest.stations import Stations
from ingest.watch import FolderWatcher, SetOutcome
from sim import Pass
from sinks import BlobStore, CaseStore
from sinks.blobs import SCHEME
from sinks.devicekeys import AcceptanceLog, DeviceKeyStore, key_hash
from sinks.metrics import READY
from sinks.metrics import serve as serve_metrics

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
        except BrokerError as exc:  # no retry makes a message smaller: 413, not 503
            if isinstance(exc.__cause__, MessageSizeTooLargeError):
                raise Refused(413, "too_large", "the broker does not take a message this large",
                              [("", "message too large")]) from exc  # fmt: skip
            raise


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
    stations: Stations


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
            stations = Stations(intake, registry, Fetcher(g.fetch_allow, g.max_image_bytes))
            app = create_app(intake, CachedKeys(store, g.key_cache_s), g, stations=stations)
            # ready once the broker and the database answered (they did, to get here); the
            # metrics listener (gateway.metrics_port) says so, not the devices' port
            READY.labels("gateway").set(1)
            try:
                yield Gateway(app, intake, store, stations)
            finally:
                READY.remove("gateway")
    finally:
        await store.close()


def _listen(host: str, port: int) -> socket.socket:
    try:
        return socket.create_server((host, port), backlog=1024)
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc


LINGER_S = 2.0  # how long a closing connection's late data is read and dropped


class _Lingering:
    """A transport whose ``close`` is a lingering close: it sends what is buffered and a FIN,
    then reads and drops what the client still sends until it closes too, or for ``linger_s``.
    Closing at once with the client's bytes unread makes the kernel send a reset, and the client
    loses the answer (the 408 or 401) it had not read yet."""

    def __init__(self, transport: asyncio.Transport, linger_s: float) -> None:
        self._transport = transport
        self._linger_s = linger_s
        self._closing = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

    def is_closing(self) -> bool:
        return self._closing or self._transport.is_closing()

    def close(self) -> None:
        if self._closing or self._transport.is_closing() or not self._transport.can_write_eof():
            self._transport.close()
            return
        self._closing = True
        self._transport.write_eof()
        if not self._transport.is_reading():  # paused by flow control: drain all the same
            self._transport.resume_reading()
        asyncio.get_running_loop().call_later(self._linger_s, self._transport.close)


def _server(app: Starlette, limits: GatewaySettings, *, own_signals: bool) -> Any:
    import uvicorn
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class SlowClientsEnd(H11Protocol):
        """uvicorn's h11 protocol, with a deadline whenever no request is being answered: a
        connection that has not sent a request's headers within ``header_timeout_s`` of
        connecting or of its previous answer is closed, key or no key, and so is one that
        keeps sending the body of a request already answered (refused before it was read)."""

        deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            linger = min(LINGER_S, limits.header_timeout_s)
            super().connection_made(cast(asyncio.Transport, _Lingering(transport, linger)))
            self._arm()

        def data_received(self, data: bytes) -> None:
            if self.transport.is_closing():
                return  # answered and closing: what the client still sends is dropped
            super().data_received(data)
            if self._answering() and self.deadline is not None:
                self.deadline.cancel()  # the headers are in: the body has deadlines of its own
                self.deadline = None

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            if self.deadline is not None:
                self.deadline.cancel()
            super().connection_lost(exc)

        def _answering(self) -> bool:
            return self.cycle is not None and not self.cycle.response_complete

        def _arm(self) -> None:
            if self.deadline is not None:
                self.deadline.cancel()
            self.deadline = self.loop.call_later(limits.header_timeout_s, self._expire)

        def _expire(self) -> None:
            if not self._answering() and not self.transport.is_closing():
                self.transport.close()

    config = uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False,
                            server_header=False, http=SlowClientsEnd)  # fmt: skip

    class Embedded(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:  # the host process keeps its signals
            yield

    return uvicorn.Server(config) if own_signals else Embedded(config)


async def serve(settings: Settings, host: str, port: int) -> None:
    """``offsite ingest serve``: until SIGINT/SIGTERM, then finish the requests in flight.
    /metrics, /healthz and /readyz are on ``gateway.metrics_port`` (0: not served)."""
    g = settings.gateway
    sock = _listen(host, port)
    async with open_gateway(settings) as gw:
        metrics = None
        if g.metrics_port:
            try:
                metrics = await serve_metrics(g.metrics_host, g.metrics_port)
            except OSError as exc:
                raise UsageError(f"cannot listen on {g.metrics_host}:{g.metrics_port} "
                                 f"(gateway.metrics_port): {exc.strerror}") from exc  # fmt: skip
        bound = sock.getsockname()
        print(f"gateway on http://{bound[0]}:{bound[1]}  (API: /v1/openapi.json)", file=sys.stderr)
        try:
            await _server(gw.app, g, own_signals=True).serve(sockets=[sock])
        finally:
            if metrics is not None:
                metrics.close()


@contextlib.asynccontextmanager
async def running_gateway(
    settings: Settings, ep: Endpoints | None = None, *, limits: GatewaySettings | None = None
) -> AsyncIterator[tuple[str, Gateway]]:
    """A gateway served over HTTP in this process on a free port: (base URL, gateway)."""
    sock = _listen("127.0.0.1", 0)  # listening before the server runs: no start-up race
    async with open_gateway(settings, ep, limits=limits) as gw:
        server = _server(gw.app, limits or settings.gateway, own_signals=False)
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
    every message was answered 202; the keys are revoked after. Rate limits are off (and a device
    may have the whole window in flight): simulated traffic packs hours into seconds."""
    items: list[tuple[str, str, WimRecord | AnprCapture]] = [
        ("/v1/wim", p.wim.device_id, p.wim) for p in passes
    ]
    captures = [p.capture for p in passes if p.capture is not None] + list(extra)
    items += [("/v1/anpr", c.camera_id, c) for c in captures]
    items.sort(key=lambda i: (i[2].ts, i[0]))
    import httpx  # the demo's stations; not needed to run a gateway

    blobs = images or BlobStore(settings.var_dir / "blobs")
    unlimited = settings.gateway.model_copy(
        update={"rate_per_s": 1e9, "burst": 10**9, "max_in_flight_per_device": window}
    )
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
    settings: Settings, directory: Path, device: str | None, once: bool, fmt: str | None = None
) -> list[SetOutcome]:
    """``offsite ingest watch DIR``: until SIGINT/SIGTERM (or, ``once``, one pass)."""
    if not directory.is_dir():
        raise UsageError(f"no such folder: {directory}")
    if device is not None and load_registry(settings.registry).device(device) is None:
        raise UsageError(f"no device {device!r} in {settings.registry}")
    g = settings.gateway
    async with open_gateway(settings) as gw:
        watcher = FolderWatcher(directory, gw.intake, device=device, settle_s=g.watch_settle_s,
                                give_up_s=g.watch_give_up_s, stations=gw.stations, format=fmt)  # fmt: skip
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


async def import_files(settings: Settings, fmt: str, files: Sequence[Path]) -> int:
    """``offsite ingest import --format F FILE…`` (and ``replay --format``): each file through
    the format's adapter and the intake, as the gateway would take it from a trusted device;
    records that cannot be mapped go to the dead letters. Prints a line per message; 0 when
    every one was accepted."""
    bodies = []
    for path in files:
        try:
            bodies.append((path, path.read_bytes()))
        except OSError as exc:
            raise UsageError(f"cannot read {path}: {exc.strerror}") from exc
    failed = 0
    # a recorded file is taken whatever its age (a station's archive, a published sample): the
    # window around the gateway's clock is for live devices; the contract's 2000–2099 still holds
    # and the rules decide an old pass as old (Art. 36)
    archive = settings.gateway.model_copy(update={"max_age_days": 36_525.0})
    async with open_gateway(settings, limits=archive) as gw:
        for path, body in bodies:
            for r in await gw.stations.take(fmt, None, body):
                d = r.detail
                if r.status == "accepted":
                    ident = d.get("record_id") or d.get("capture_id")
                    print(f"accepted     {d['topic']}  {ident}")
                else:
                    failed += 1
                    why = d.get("reason") or d.get("message")
                    print(f"{r.status:<12} {path}: {why}")
    return 1 if failed else 0


def list_formats() -> str:
    """``offsite ingest formats``: each station format, what it becomes, where it is posted."""
    from ingest.formats import FORMATS

    return "\n".join(f"{f.name:<8} → {f.sends:<20} POST /v1/formats/{f.name}\n         {f.title}"
                     for f in FORMATS.values())  # fmt: skip


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
        asyncio.run(watch(settings, args.dir, args.device, args.once, args.format))
        return 0
    if args.action == "formats":
        print(list_formats())
        return 0
    if args.action == "import":
        return asyncio.run(import_files(settings, args.format, args.files))
    if args.action == "openapi":
        text = json.dumps(openapi(), indent=2, ensure_ascii=False, sort_keys=True) + "\n"
        if args.out is None:
            sys.stdout.write(text)
        else:
            args.out.write_text(text, encoding="utf-8")
            print(args.out)
        return 0
    raise UsageError(f"unknown action {args.action}")  # pragma: no cover
