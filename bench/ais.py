"""AIS sentences decoded per second by offsite, as a ratio to a bare pyais loop over the same
recorded file in the same run: the decoder alone (checksums, reassembly, reasons, report
fields) and the whole decode stage (JSON in, validation, decoding, JSON out, dead letters).

    python -m bench.ais [REPEAT]
"""

from __future__ import annotations

import asyncio
import datetime as dt
import statistics
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


def rounds_of(fns: list[Callable[[], object]], rounds: int = 15) -> list[list[float]]:
    """Each function's time in each of ``rounds`` rounds that run them back to back. This
    machine's speed drifts by ±15 % within a minute: a round's sides share its spell, so the
    ratio of two sides is taken within each round, and the median of those is reported."""
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(rounds):
        for k, fn in enumerate(fns):
            times[k].append(timeit.timeit(fn, number=1))
    return times


def ratio(base: list[float], side: list[float]) -> float:
    """The median over rounds of base time / side time (> 1: the side is faster)."""
    return statistics.median(b / s for b, s in zip(base, side, strict=True))


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

    t_bare, t_dec, t_stage = rounds_of([bare, decoder, stage])
    print(f"{n:,} sentences ({SAMPLE.name} × {repeat}); pyais decodes {bare():,} messages, "
          f"offsite reports {decoder():,} (the rest are dead letters with reasons)")  # fmt: skip
    print(f"{len(t_bare)} rounds; sentences/s in the best round, ratio the median of the rounds'")
    print(f"bare pyais IterMessages + decode  {n / min(t_bare):10,.0f} sentences/s")
    print(f"offsite AisDecoder.feed_many      {n / min(t_dec):10,.0f} sentences/s   "
          f"ratio {ratio(t_bare, t_dec):5.2f}×")  # fmt: skip
    print(f"offsite AisDecodeStage.process    {n / min(t_stage):10,.0f} sentences/s   "
          f"ratio {ratio(t_bare, t_stage):5.2f}×")  # fmt: skip


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
