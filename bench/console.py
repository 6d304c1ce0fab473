"""The console's server time with 10,000 pending cases: the queue, the case page and the command
center, each against a bare asyncpg fetch of the same rows, in the same run.

    python -m bench.console [PENDING] [--reps N] [--explain]

Real cases (simulated overloads through the detection and rules stages in memory, written by
the case sink) are spread over the last 14 days; 2,000 more are reviewed (a confirm or reject
transition each, one site rejecting more than the others) so the command center has rates to
draw. A few pending cases get signed evidence packages, so that opening one appends its signed,
fsynced custody entry as in production. The app runs in-process (httpx ASGITransport); the
time measured is the app's, from the request's arrival to the last byte of the response.
``--explain`` prints PostgreSQL's plan of every query each page made.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import re
import shutil
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from starlette.types import ASGIApp, Receive, Scope, Send

from console import Console, create_app
from events.clock import wall_clock
from evidence import Signer, build_package, generate_key
from offsite.config import ConsoleSettings, load_registry, load_waterways
from offsite.console import PackageCustody
from offsite.testing import violations_in_memory
from sim import SimulationConfig
from sinks import BlobStore, CaseStore, case_id
from sinks.accounts import Accounts
from sinks.lifecycle import Lifecycle

from .common import ROOT, bench_settings

BATCH = 2_000
REVIEWED = 2_000
PACKAGES = 20
DAYS = 14
PASSWORD = "bench password 1"
AIMS = {"queue": 300.0, "case": 100.0}  # ms, issue #12
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
QUEUE_COLUMNS = (
    "case_id, ts, site_id, plate, plate_color, violation_code, outcome, fine_cny, overload_kg,"
    " status, review_reason"
)


class Timed:
    """The app's own time per request: from its call to the end of the response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app, self.last = app, 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        t0 = time.perf_counter()
        await self.app(scope, receive, send)
        self.last = time.perf_counter() - t0


async def cases(store: CaseStore, n: int, tmp: Path) -> list[str]:
    """``n`` pending cases and ``REVIEWED`` reviewed ones, spread over the last ``DAYS`` days
    (local dates, the newest today); returns the ids of the pending cases with a package."""
    registry = load_registry(ROOT / "configs" / "sites.yaml")
    baselines = {"national": ROOT / "configs" / "baselines" / "national.yaml"}
    total = n + REVIEWED
    cfg = SimulationConfig(vehicles=int(total * 1.5), seed=7, overload_share=1.0, images=False)
    vs = await violations_in_memory(registry, baselines, cfg)
    pool = store.pool
    # the sink attaches a later pass of the same trip to its case: write until there are enough
    for i in range(0, len(vs), BATCH):
        await (await store.begin_batch(vs[i : i + BATCH])).commit()
        if await pool.fetchval("SELECT count(*) FROM cases") >= total:
            break
    made = await pool.fetchval("SELECT count(*) FROM cases")
    assert made >= total, f"only {made} cases"
    tz = ConsoleSettings().policy().tz
    newest = await pool.fetchval("SELECT max(ts) FROM cases")
    shift = (dt.datetime.now(tz).date() - newest.astimezone(tz).date()).days
    await pool.execute(
        "UPDATE cases c SET ts = c.ts + ($1 - s.i % $2) * interval '1 day',"
        " created_at = c.ts + ($1 - s.i % $2) * interval '1 day' + interval '2 minutes'"
        " FROM (SELECT case_id, row_number() OVER (ORDER BY case_id) AS i FROM cases) s"
        " WHERE s.case_id = c.case_id",
        shift, DAYS,
    )  # fmt: skip
    # the reviewed ones: S207 rejects 40 %, the others 10 %
    await pool.execute(
        "WITH r AS (SELECT case_id, site_id, ts, row_number() OVER (ORDER BY case_id) AS i"
        "  FROM cases ORDER BY case_id DESC LIMIT $1),"
        " d AS (SELECT case_id, ts, CASE WHEN i % 10 < (CASE WHEN site_id = 'S207-K45-N'"
        "  THEN 4 ELSE 1 END) THEN 'reject' ELSE 'confirm' END AS action FROM r),"
        " u AS (UPDATE cases c SET status = CASE d.action WHEN 'reject' THEN 'rejected'"
        "  ELSE 'confirmed' END FROM d WHERE d.case_id = c.case_id)"
        " INSERT INTO case_transitions (case_id, action, from_status, to_status, actor,"
        "  actor_role, reason_code, at, custody_seq, custody_hash)"
        " SELECT case_id, action, 'pending_review', CASE action WHEN 'reject' THEN 'rejected'"
        "  ELSE 'confirmed' END, 'bench', 'officer', CASE action WHEN 'reject' THEN"
        "  'device_fault' END, ts + interval '3 hours', 2, 'bench' FROM d",
        made - n,
    )  # fmt: skip
    await pool.execute("ANALYZE")
    pending = await pool.fetchval("SELECT count(*) FROM cases WHERE status = 'pending_review'")
    assert pending == n, pending
    # packages for a few pending cases, spread through the queue
    by_id = {case_id(v): v for v in vs}
    ids = [r[0] for r in await pool.fetch(
        "SELECT case_id FROM cases WHERE status = 'pending_review' ORDER BY ts, case_id")]  # fmt: skip
    chosen = ids[:: max(1, len(ids) // PACKAGES)][:PACKAGES]
    signer = Signer.load(tmp / "key.pem")
    blobs = BlobStore(tmp / "blobs")
    for cid in chosen:
        await asyncio.to_thread(build_package, by_id[cid], registry, blobs, tmp / "evidence",
                                signer, "湖南省交通运输综合行政执法局")  # fmt: skip
    return chosen


async def log_in(client: httpx.AsyncClient, user: str) -> None:
    form = await client.get("/login")
    token = CSRF.search(form.text)
    assert token is not None
    r = await client.post("/login", data={"username": user, "password": PASSWORD,
                                          "csrf": token.group(1)})  # fmt: skip
    assert r.status_code == 303, r.text[:300]


def ms(xs: list[float]) -> tuple[float, float]:
    xs = sorted(1000 * x for x in xs)
    return statistics.median(xs), xs[min(len(xs) - 1, round(0.95 * (len(xs) - 1)))]


async def measure(reps: int, call: Callable[[int], Awaitable[float]]) -> list[float]:
    for i in range(5):  # warm-up: plans cached, templates compiled, pages in memory
        await call(i)
    return [await call(i) for i in range(reps)]


async def main(n: int, reps: int, explain: bool, tmp: Path) -> None:
    settings = await bench_settings()
    assert settings.database.url is not None
    url = settings.database.url.get_secret_value()
    generate_key(tmp / "key.pem")
    store = await CaseStore.connect(url)
    await store.migrate()
    t0 = time.perf_counter()
    packaged = await cases(store, n, tmp)
    reviewed = await store.pool.fetchval("SELECT count(*) FROM case_transitions")
    print(f"{n:,} pending + {reviewed:,} reviewed cases over {DAYS} days, {len(packaged)} with"
          f" packages ({time.perf_counter() - t0:.1f} s to make)")  # fmt: skip

    logged: list[Any] | None = None

    def heard(q: Any) -> None:
        if logged is not None:
            logged.append(q)

    async def init(conn: asyncpg.Connection) -> None:
        conn.add_query_logger(heard)

    pool = await asyncpg.create_pool(url, min_size=8, max_size=8, init=init)
    lifecycle = Lifecycle(pool, PackageCustody(tmp / "evidence", Signer.load(tmp / "key.pem")),
                          ConsoleSettings().policy(), clock=wall_clock)  # fmt: skip
    console = Console(pool, lifecycle, tmp / "evidence",
                      registry=load_registry(ROOT / "configs" / "sites.yaml"),
                      waterways=load_waterways(ROOT / "configs" / "waterways.yaml"))  # fmt: skip
    accounts = Accounts(pool)
    await accounts.create("officer", ["officer"], PASSWORD)
    await accounts.create("command", ["command_center"], PASSWORD)
    app = Timed(create_app(console))
    transport = httpx.ASGITransport(app=app)
    officer = httpx.AsyncClient(transport=transport, base_url="http://bench")
    command = httpx.AsyncClient(transport=transport, base_url="http://bench")
    await log_in(officer, "officer")
    await log_in(command, "command")

    plate = await pool.fetchval(
        "SELECT plate FROM cases WHERE status = 'pending_review' AND plate IS NOT NULL"
        " ORDER BY case_id OFFSET $1 LIMIT 1", n // 2,
    )  # fmt: skip
    site = "S207-K45-N"
    tz = lifecycle.policy.tz
    first = dt.datetime.combine(dt.datetime.now(tz).date() - dt.timedelta(days=DAYS - 1),
                                dt.time(), tz)  # fmt: skip
    queue_sql = (f"SELECT {QUEUE_COLUMNS} FROM cases WHERE status = 'pending_review' {{}}"
                 " ORDER BY ts, case_id LIMIT 51")  # fmt: skip
    pages: list[tuple[str, str, httpx.AsyncClient, Callable[[int], str], str, list[Any]]] = [
        ("queue", "queue, first page", officer, lambda i: "/cases",
         queue_sql.format(""), []),
        ("queue", f"queue, plate {plate}", officer, lambda i: f"/cases?plate={plate}",
         queue_sql.format("AND strpos(plate, $1) > 0"), [plate]),
        ("queue", f"queue, site {site}", officer, lambda i: f"/cases?site={site}",
         queue_sql.format("AND site_id = $1"), [site]),
        ("queue", "queue, page 100", officer, lambda i: "/cases?page=100",
         queue_sql.format("") + " OFFSET 4950", []),
        ("case", "case page", officer, lambda i: f"/cases/{packaged[i % len(packaged)]}",
         "SELECT * FROM cases WHERE case_id = $1", [packaged[0]]),
        ("command", "command center", command, lambda i: "/command",
         "SELECT (ts AT TIME ZONE interval '8 hours')::date, violation_code, site_id, count(*)"
         " FROM cases WHERE ts >= $1 GROUP BY 1, 2, 3", [first]),
    ]  # fmt: skip
    print(f"server time over {reps} requests after 5 warm-up ones; bare: asyncpg fetch of the"
          " same rows")  # fmt: skip
    print(f"{'page':28} {'p50 ms':>8} {'p95 ms':>8} {'bare p50':>9} {'ratio':>7} {'aim':>6}")
    for kind, name, client, path, sql, args in pages:

        async def get(i: int, client: httpx.AsyncClient = client,
                      path: Callable[[int], str] = path) -> float:  # fmt: skip
            r = await client.get(path(i))
            assert r.status_code == 200, (r.status_code, r.text[:300])
            return app.last

        async def bare(i: int, sql: str = sql, args: list[Any] = args) -> float:
            t = time.perf_counter()
            await pool.fetch(sql, *args)
            return time.perf_counter() - t

        p50, p95 = ms(await measure(reps, get))
        b50, _ = ms(await measure(reps, bare))
        aim = AIMS.get(kind)
        ok = "" if aim is None else ("ok" if p95 < aim else "MISSED")
        aim_text = f"<{aim:.0f}" if aim else "—"
        print(f"{name:28} {p50:8.1f} {p95:8.1f} {b50:9.2f} {p50 / b50:7.0f} {aim_text:>6} {ok}")
        logged = []
        await client.get(path(0))
        queries, logged = logged, None
        spent = sum(q.elapsed for q in queries)
        print(f"    {len(queries)} queries, {1000 * spent:.1f} ms in PostgreSQL round trips;"
              f" slowest: {1000 * max(q.elapsed for q in queries):.1f} ms"
              f" {_short(max(queries, key=lambda q: q.elapsed).query)}")  # fmt: skip
        if explain:
            for q in queries:
                if q.query.lstrip().upper().startswith(("SELECT", "WITH")) and ";" not in q.query:
                    plan = await pool.fetch("EXPLAIN (ANALYZE, BUFFERS) " + q.query, *q.args)
                    print(f"  -- {1000 * q.elapsed:.2f} ms  {_short(q.query, 200)}")
                    print("\n".join("     " + r[0] for r in plan))
    await officer.aclose()
    await command.aclose()
    await pool.close()
    await store.close()


def _short(sql: str, n: int = 90) -> str:
    sql = " ".join(sql.split())
    return sql if len(sql) <= n else sql[: n - 1] + "…"


async def run(n: int, reps: int, explain: bool) -> None:
    work = ROOT / "var" / "bench"
    work.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="console-", dir=work))  # this run's packages and key
    try:
        await main(n, reps, explain, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("pending", nargs="?", type=int, default=10_000)
    ap.add_argument("--reps", type=int, default=50)
    ap.add_argument("--explain", action="store_true", help="print the plan of every query")
    a = ap.parse_args()
    asyncio.run(run(a.pending, a.reps, a.explain))
