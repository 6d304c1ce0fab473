"""Slow and stuck clients against a real gateway (uvicorn on 127.0.0.1, real sockets, the real
broker and database): one key's trickling uploads do not stop another key's posts, a body that
stops short or comes too slowly is answered 408 and frees its slot, and connections that never
finish their headers are closed, key or no key (issue #28, row 3)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx

from events import WimRecord
from ingest.intake import GatewaySettings
from offsite.config import Settings, registry_of
from offsite.gateway import running_gateway
from sim import SimulationConfig, simulate

TRICKLE_S = 0.05  # the slow client's pace: one byte per interval (its behaviour, not a wait)
BOUND_S = 120  # a cap for a test that never gets there, not a duration anything waits for


def records(settings: Settings) -> tuple[list[WimRecord], list[WimRecord]]:
    """Records of two WIM devices: (the first device's, the second's)."""
    passes = simulate(registry_of(settings), SimulationConfig(vehicles=40, seed=28, images=False))
    first = passes[0].wim.device_id
    other = next(p.wim.device_id for p in passes if p.wim.device_id != first)
    return ([p.wim for p in passes if p.wim.device_id == first],
            [p.wim for p in passes if p.wim.device_id == other])  # fmt: skip


def limits(settings: Settings, **changes: object) -> GatewaySettings:
    # nothing here depends on a timeout unless the test sets it small
    held = {"header_timeout_s": 600.0, "body_idle_s": 600.0, "body_timeout_s": 600.0}
    return settings.gateway.model_copy(update={**held, **changes})


def head(key: str | None, length: int) -> bytes:
    auth = f"Authorization: Bearer {key}\r\n" if key else ""
    return (f"POST /v1/wim HTTP/1.1\r\nHost: gw\r\n{auth}Content-Type: application/json\r\n"
            f"Content-Length: {length}\r\n\r\n").encode()  # fmt: skip


async def status_of(reader: asyncio.StreamReader) -> int:
    """The status of the answer on this connection (0: closed without one)."""
    line = await reader.readline()
    return int(line.split()[1]) if line else 0


@contextlib.asynccontextmanager
async def trickling(writers: list[asyncio.StreamWriter], data: bytes = b" ") -> AsyncIterator[None]:
    """Each writer sends ``data`` every TRICKLE_S while inside (a slow client)."""
    stop = asyncio.Event()

    async def trickle() -> None:
        stopped = asyncio.ensure_future(stop.wait())
        while not stopped.done():
            for w in writers:
                if not w.is_closing():
                    w.write(data)
            await asyncio.wait([stopped], timeout=TRICKLE_S)

    task = asyncio.create_task(trickle())
    try:
        yield
    finally:
        stop.set()
        await task


async def test_a_trickling_key_does_not_stop_another_keys_posts(settings: Settings) -> None:
    mine, others = records(settings)
    g = limits(settings)
    async with running_gateway(settings, limits=g) as (url, gw):
        gate = gw.app.state.gate
        (_, slow_key), (_, good_key) = (await gw.keys.create(mine[0].device_id),
                                        await gw.keys.create(others[0].device_id))  # fmt: skip
        port = int(url.rsplit(":", 1)[1])
        conns = [await asyncio.open_connection("127.0.0.1", port) for _ in range(100)]
        writers = [w for _, w in conns]
        async with asyncio.timeout(BOUND_S):
            for w in writers:  # 100 uploads of one key, each announcing 200 kB and sending 1 byte
                w.write(head(slow_key, 200_000) + b"{")
            async with trickling(writers):
                answers = [asyncio.create_task(status_of(r)) for r, _ in conns]
                held = g.max_in_flight_per_device
                done: set[asyncio.Task[int]] = set()
                while len(done) < len(conns) - held:  # the others are answered at once
                    finished, _ = await asyncio.wait(set(answers) - done,
                                                     return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
                    done |= finished
                assert sorted(t.result() for t in done) == [429] * (len(conns) - held)
                assert gate.held(mine[0].device_id) == held  # held, and no more
                assert gate.in_flight == held < g.max_in_flight
                async with httpx.AsyncClient(base_url=url) as client:
                    posted = [await client.post("/v1/wim", content=r.to_json(), headers={
                        "Authorization": f"Bearer {good_key}",
                        "Content-Type": "application/json"}) for r in others[:20]]  # fmt: skip
                    assert [p.status_code for p in posted] == [202] * len(posted)
                    again = await client.post("/v1/wim", content=mine[0].to_json(), headers={
                        "Authorization": f"Bearer {slow_key}", "Content-Type": "application/json"})  # fmt: skip
                    assert again.status_code == 429, again.text
                    assert again.json()["error"] == "too_many_in_flight"
                    # the devices' port serves the devices only (row 11)
                    for path in ("/metrics", "/readyz"):
                        assert (await client.get(path)).status_code == 404
            for task in answers:
                task.cancel()
        for w in writers:
            w.close()


async def test_a_body_that_stops_short_or_crawls_gets_408_and_frees_its_slot(
    settings: Settings,
) -> None:
    mine, _ = records(settings)
    g = limits(settings, max_in_flight_per_device=1, body_idle_s=0.3, body_timeout_s=0.3,
               min_body_rate=1000.0)  # fmt: skip
    async with running_gateway(settings, limits=g) as (url, gw):
        _, key = await gw.keys.create(mine[0].device_id)
        port = int(url.rsplit(":", 1)[1])
        async with asyncio.timeout(BOUND_S), httpx.AsyncClient(base_url=url) as client:
            for crawl in (False, True):
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(head(key, 10_000) + b'{"record_id": ')
                async with trickling([writer] if crawl else []):
                    assert await status_of(reader) == 408
                    rest = await reader.read()  # the gateway closes the connection after
                    assert b"the body came slower" in rest, rest
                writer.close()
                ok = await client.post("/v1/wim", content=mine[int(crawl)].to_json(), headers={
                    "Authorization": f"Bearer {key}", "Content-Type": "application/json"})  # fmt: skip
                assert ok.status_code == 202, ok.text  # the slot is free again
        assert gw.app.state.gate.in_flight == 0


async def test_connections_that_never_finish_their_headers_are_closed(settings: Settings) -> None:
    g = limits(settings, header_timeout_s=0.3)
    async with running_gateway(settings, limits=g) as (url, _):
        port = int(url.rsplit(":", 1)[1])
        conns = [await asyncio.open_connection("127.0.0.1", port) for _ in range(50)]
        async with asyncio.timeout(BOUND_S):
            for _, w in conns:
                w.write(b"POST /v1/wim HTTP/1.1\r\nHost: gw\r\n")
            async with trickling([w for _, w in conns], b"X"):  # a header that never ends
                ends = await asyncio.gather(*(r.read() for r, _ in conns))
            assert ends == [b""] * len(conns)  # closed by the gateway, without an answer
        # refused before its body was read (no key), and sending that body for ever
        refused = [await asyncio.open_connection("127.0.0.1", port) for _ in range(20)]
        async with asyncio.timeout(BOUND_S):
            for _, w in refused:
                w.write(head(None, 100_000) + b"{")
            async with trickling([w for _, w in refused]):
                assert [await status_of(r) for r, _ in refused] == [401] * len(refused)
                await asyncio.gather(*(r.read() for r, _ in refused))  # until the gateway closes
            async with httpx.AsyncClient(base_url=url) as client:
                assert (await client.get("/healthz")).status_code == 200
        for _, w in conns + refused:
            w.close()
