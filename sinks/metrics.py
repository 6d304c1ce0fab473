"""Prometheus metrics, updated once per batch; labels are stage and topic, never ids or plates."""

from __future__ import annotations

from collections import Counter as Tally
from typing import TYPE_CHECKING

from prometheus_client import Counter, Histogram

if TYPE_CHECKING:
    from events.stage import Incoming, StageResult

MESSAGES_IN = Counter("offsite_messages_in_total", "Messages consumed", ["stage", "topic"])
MESSAGES_OUT = Counter("offsite_messages_out_total", "Messages produced", ["stage", "topic"])
DEAD_LETTERS = Counter("offsite_dead_letters_total", "Messages sent to a DLQ", ["stage", "topic"])
BATCH_SECONDS = Histogram(
    "offsite_batch_seconds",
    "Time to process one batch",
    ["stage"],
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)


def observe_batch(stage: str, batch: list[Incoming], result: StageResult, seconds: float) -> None:
    for topic, n in Tally(m.topic for m in batch).items():
        MESSAGES_IN.labels(stage, topic).inc(n)
    for topic, n in Tally(o.topic for o in result.out).items():
        MESSAGES_OUT.labels(stage, topic).inc(n)
    for topic, n in Tally(o.topic for o in result.dead).items():
        DEAD_LETTERS.labels(stage, topic).inc(n)
    BATCH_SECONDS.labels(stage).observe(seconds)
