"""AIS sentences decoded per second by offsite, as a ratio to a bare pyais loop over the same
recorded file in the same run: the decoder alone (checksums, reassembly, reasons, report
fields) and the whole decode stage (JSON in, validation, decoding, JSON out, dead letters).

    python -m bench.ais [REPEAT]
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sys
import timeit
from collections.abc import Callable
from pathlib import Path

from pyais.stream import IterMessages

from events.stage import Incoming
from events.water import AisRaw
from ingest.ais import AisDecoder, AisDecodeStage

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "tests" / "data" / "ais" / "pyais" / "nmea_data_sample.txt"
T0 = dt.datetime(2026, 11, 22, 8, 0, tzinfo=dt.UTC)


def timed(fn: Callable[[], object], repeat: int = 3) -> float:
    """The best of ``repeat`` runs: the first pays for page faults and lazy imports."""
    return min(timeit.repeat(fn, number=1, repeat=repeat))


def main(repeat: int) -> None:
    lines = [x for x in SAMPLE.read_bytes().splitlines() if x.strip()] * repeat
    n = len(lines)

    def bare() -> int:
        ok = 0
        for msg in IterMessages(lines):
            try:
                msg.decode()
                ok += 1
            except Exception:  # the bare loop counts what pyais decodes, and goes on
                pass
        return ok

    raws = [AisRaw(receiver_id="R1", ts=T0, sentence=x.decode()) for x in lines]

    def decoder() -> int:
        d, ok = AisDecoder(), 0
        for raw in raws:
            report, _ = d.feed(raw)
            ok += report is not None
        d.flush()
        return ok

    batch = [Incoming("water.ais.raw", 0, k, b"R1", r.to_json()) for k, r in enumerate(raws)]

    def stage() -> int:
        s = AisDecodeStage()
        result = asyncio.run(s.process(batch))
        asyncio.run(s.idle())
        return len(result.out)

    t_bare, t_dec, t_stage = timed(bare), timed(decoder), timed(stage)
    print(f"{n:,} sentences ({SAMPLE.name} × {repeat}); pyais decodes {bare():,} messages, "
          f"offsite reports {decoder():,} (the rest are dead letters with reasons)")  # fmt: skip
    print(f"bare pyais IterMessages + decode  {n / t_bare:10,.0f} sentences/s")
    print(f"offsite AisDecoder.feed           {n / t_dec:10,.0f} sentences/s   "
          f"ratio {t_bare / t_dec:5.2f}×")  # fmt: skip
    print(f"offsite AisDecodeStage.process    {n / t_stage:10,.0f} sentences/s   "
          f"ratio {t_bare / t_stage:5.2f}×")  # fmt: skip


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
