"""Issue #25 must-have 8: the bank's payment callback (POST /v1/payments) on the console served
by uvicorn on a local port, over the real case store: signed with HMAC-SHA256 or refused, matched
like a row of `offsite payments import`, idempotent, and what matches nothing is answered 422
and kept for an officer (/payments)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

import httpx
import pytest
import uvicorn

from console import Console, create_app
from console.payments import SIGNATURE_HEADER, signature
from offsite.config import Settings
from sinks.accounts import Accounts

from .test_console import PASSWORD, log_in
from .test_console_limits import TICK_S
from .test_lifecycle import CHEN, WANG, World, make_world
from .test_party import console_of
from .test_procedure import POLICY, local, ready_to_decide, serve

SECRET = "bank-shared-secret"


@pytest.fixture
async def world(plain_settings: Settings) -> AsyncIterator[World]:
    w = await make_world(plain_settings, POLICY)  # as test_procedure's: no hearing at 2,500
    yield w
    await w.store.close()


@asynccontextmanager
async def served(console: Console) -> AsyncIterator[str]:
    """The console's app under uvicorn on a free local port; yields its base URL."""
    server = uvicorn.Server(uvicorn.Config(create_app(console), host="127.0.0.1", port=0,
                                           log_level="warning", lifespan="off"))  # fmt: skip
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(60):  # a cap for a server that never starts
            while not server.started:
                assert not task.done()
                await asyncio.sleep(TICK_S)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def post(client: httpx.AsyncClient, body: dict[str, str], key: str | None = SECRET,
               ) -> httpx.Response:  # fmt: skip
    raw = json.dumps(body, ensure_ascii=False).encode()
    headers = {SIGNATURE_HEADER: signature(key, raw)} if key else {}
    return await client.post("/v1/payments", content=raw,
                             headers={"Content-Type": "application/json", **headers})  # fmt: skip


async def test_the_banks_signed_callback_pays_the_decision_once(world: World) -> None:
    w = world
    await ready_to_decide(w)
    await w.act("small", "decide", CHEN, reason="事实清楚")
    await w.act("small", "serve_decision", WANG, payload=serve(local(w)))
    number = await w.store.pool.fetchval(
        "SELECT decision_no FROM penalty_decisions WHERE case_id = $1", w.cases["small"])  # fmt: skip
    paid = {"bank_ref": "CB-1", "decision_no": number, "amount": "2500.00",
            "paid_on": local(w).isoformat()}  # fmt: skip
    stray = {**paid, "bank_ref": "CB-2", "decision_no": "超限罚〔2000〕999999号"}
    console = replace(console_of(w), payment_secret=SECRET)
    async with served(console) as url, httpx.AsyncClient(base_url=url) as client:
        # no signature, a wrong key, a body changed after signing: refused, nothing stored
        assert (await post(client, paid, key=None)).status_code == 401
        assert (await post(client, paid, key="guessed")).status_code == 401
        raw = json.dumps(paid).encode()
        forged = await client.post("/v1/payments", content=raw.replace(b"2500.00", b"1.00"),
                                   headers={SIGNATURE_HEADER: signature(SECRET, raw)})  # fmt: skip
        assert forged.status_code == 401
        assert await w.store.pool.fetchval("SELECT count(*) FROM payments") == 0
        # malformed: the reason, as for a row of a file
        bad = await post(client, {**paid, "amount": "-3"})
        assert bad.status_code == 422 and "amount" in bad.json()["error"]
        # matched and stored once
        first = await post(client, paid)
        assert (first.status_code, first.json()["status"]) == (201, "imported")
        again = await post(client, paid)
        assert (again.status_code, again.json()["status"]) == (200, "already imported")
        assert await w.store.pool.fetchval("SELECT count(*) FROM payments") == 1
        # no such decision: reported and kept for an officer
        lost = await post(client, stray)
        assert lost.status_code == 422 and lost.json()["status"] == "unmatched"
        assert "超限罚〔2000〕999999号" in lost.json()["error"]
        await Accounts(w.store.pool).create("wang", ["officer"], PASSWORD)
        await log_in(client, "wang")
        page = await client.get("/payments")
        assert page.status_code == 200 and "CB-2" in page.text and "CB-1" not in page.text
    assert await w.act("small", "close", WANG) == ["closed"]  # paid in full by the callback


async def test_without_the_secret_the_callback_is_off(world: World) -> None:
    async with served(console_of(world)) as url, httpx.AsyncClient(base_url=url) as client:
        r = await post(client, {"bank_ref": "CB-9"})
        assert r.status_code == 503
