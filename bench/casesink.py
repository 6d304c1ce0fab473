"""The case sink's rows/s as a ratio to a bare asyncpg COPY loop of the same rows, same run.

python -m bench.casesink [ROWS]
"""

from __future__ import annotations

import asyncio
import sys
import time

from events import Violation
from offsite import services
from offsite.config import load_registry
from offsite.testing import violations_in_memory
from sim import SimulationConfig
from sinks import CaseStore
from sinks.casestore import COLUMNS, _row

from .common import bench_settings

BATCH = 2_000


async def violations(n: int) -> list[Violation]:
    """Real violations: simulated overloads through the detection and rules stages in memory."""
    settings = await bench_settings()
    cfg = SimulationConfig(vehicles=int(n * 1.3), seed=2, overload_share=1.0, images=False)
    out = await violations_in_memory(load_registry(settings.registry), settings.baselines, cfg)
    assert len(out) >= n, f"only {len(out)} violations"
    return out[:n]


async def main(n: int) -> None:
    vs = await violations(n)
    settings = await bench_settings()
    assert settings.database.url is not None
    store = await CaseStore.connect(settings.database.url.get_secret_value())
    await store.migrate()
    docs = [v.model_dump_json() for v in vs]  # the sink gets the JSON as it came off Kafka
    rows = [_row(v, d) for v, d in zip(vs, docs, strict=True)]
    async with store.pool.acquire() as conn:
        await conn.execute("CREATE TABLE bare_cases (LIKE cases INCLUDING ALL)")
        t0 = time.perf_counter()
        for i in range(0, n, BATCH):
            await conn.copy_records_to_table(
                "bare_cases", records=rows[i : i + BATCH], columns=COLUMNS
            )
        bare = time.perf_counter() - t0

    t0 = time.perf_counter()
    alerts = 0
    for i in range(0, n, BATCH):
        pending = await store.begin_batch(vs[i : i + BATCH], docs[i : i + BATCH])
        await pending.commit()
        alerts += len(pending.alerts)
    sink = time.perf_counter() - t0
    assert alerts == n
    await store.close()
    print(
        f"{n} cases in batches of {BATCH}, PostgreSQL at {services.endpoints(settings).database_url}"
    )
    print(f"bare COPY, same table shape: {n / bare:9,.0f} rows/s  ({bare:.2f} s)")
    print(f"case sink                  : {n / sink:9,.0f} rows/s  ({sink:.2f} s)")
    print(f"ratio sink / bare          : {bare / sink:.2f}")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000))
