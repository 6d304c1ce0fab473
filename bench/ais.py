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
from offsite.pipeline import tune_gc

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "tests" / "data" / "ais" / "pyais" / "nmea_data_sample.txt"
T0 = dt.datetime(2026, 11, 22, 8, 0, tzinfo=dt.UTC)


def best_of(fns: list[Callable[[], object]], rounds: int = 15) -> list[float]:
    """Each function's best time over ``rounds`` rounds that run them in turn: the first run
    pays for page faults and lazy imports, and a shared machine's slow spells fall on all of
    them rather than on whichever ran during one."""
    best = [float("inf")] * len(fns)
    for _ in range(rounds):
        for k, fn in enumerate(fns):
            best[k] = min(best[k], timeit.timeit(fn, number=1))
    return best


def main(repeat: int) -> None:
    tune_gc()  # as `offsite run` does, for both sides
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

    lines_in = [(raw, None) for raw in raws]

    def decoder() -> int:  # the file as one batch, as the stage hands the decoder its batches
        d = AisDecoder()
        reports, _ = d.feed_many(lines_in)
        d.flush()
        return len(reports)

    batch = [Incoming("water.ais.raw", 0, k, b"R1", r.to_json()) for k, r in enumerate(raws)]

    # one event loop for every run, as the runner has: asyncio.run per call would also pay for
    # Python 3.11 restoring its SIGINT handler, which formats the finished task's whole result
    loop = asyncio.new_event_loop()

    def stage() -> int:
        s = AisDecodeStage()
        result = loop.run_until_complete(s.process(batch))
        loop.run_until_complete(s.idle())
        return len(result.out)

    t_bare, t_dec, t_stage = best_of([bare, decoder, stage])
    print(f"{n:,} sentences ({SAMPLE.name} × {repeat}); pyais decodes {bare():,} messages, "
          f"offsite reports {decoder():,} (the rest are dead letters with reasons)")  # fmt: skip
    print(f"bare pyais IterMessages + decode  {n / t_bare:10,.0f} sentences/s")
    print(f"offsite AisDecoder.feed_many      {n / t_dec:10,.0f} sentences/s   "
          f"ratio {t_bare / t_dec:5.2f}×")  # fmt: skip
    print(f"offsite AisDecodeStage.process    {n / t_stage:10,.0f} sentences/s   "
          f"ratio {t_bare / t_stage:5.2f}×")  # fmt: skip


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
