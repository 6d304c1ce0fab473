"""The runner across a rebalance, on a scripted stand-in for aiokafka's consumer: no broker.

aiokafka sets a new assignment, and hands out its records from the committed offsets, before
the rebalance listener has read those offsets; a stage that took them would see records twice
(the WIM–ANPR matcher: a capture twice is an ambiguous match, a pass decided again after its
capture was let go has none, a plate_missing lead that a single worker never raises)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, NamedTuple

import pytest
from aiokafka import TopicPartition

from events.stage import BaseStage, Incoming, StageResult
from offsite import kafka

TP = TopicPartition("in", 0)
RECORDS = 10


class _Record(NamedTuple):
    offset: int
    key: bytes | None
    value: bytes
    timestamp: int


class _Committed(NamedTuple):
    offset: int
    metadata: str


COMMITTED: dict[TopicPartition, _Committed] = {}


class _Admin:
    """The listener's admin client: reads what the fake consumer committed."""

    def __init__(self, **_: object) -> None:
        pass

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def list_consumer_group_offsets(
        self, group: str, partitions: list[TopicPartition]
    ) -> dict[TopicPartition, _Committed]:
        return {tp: COMMITTED[tp] for tp in partitions if tp in COMMITTED}


Step = Callable[["_Consumer"], Awaitable[dict[TopicPartition, list[_Record]]]]


class _Consumer:
    """Each poll of the runner runs the next step of ``script``."""

    script: ClassVar[list[Step]] = []

    def __init__(self, **_: object) -> None:
        self.assigned: set[TopicPartition] = set()
        self.positions: dict[TopicPartition, int] = {}
        self.listener: Any = None

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    def subscribe(self, topics: tuple[str, ...], listener: Any) -> None:
        self.listener = listener

    def assignment(self) -> set[TopicPartition]:
        return set(self.assigned)

    async def getmany(
        self, *tps: TopicPartition, timeout_ms: int = 0, max_records: int | None = None
    ) -> dict[TopicPartition, list[_Record]]:
        if tps:  # the runner's extra poll of a partition: everything came in the first
            return {}
        return await self.script.pop(0)(self)

    def highwater(self, tp: TopicPartition) -> int | None:
        return None

    async def position(self, tp: TopicPartition) -> int:
        return self.positions[tp]

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.positions[tp] = offset

    async def seek_to_beginning(self, *tps: TopicPartition) -> None:
        for tp in tps:
            self.positions[tp] = 0

    async def commit(self, offsets: dict[TopicPartition, tuple[int, str]]) -> None:
        COMMITTED.update({tp: _Committed(*at) for tp, at in offsets.items()})

    def read(self, n: int) -> dict[TopicPartition, list[_Record]]:
        """The next ``n`` records of the partition from where this consumer is."""
        at = self.positions[TP]
        got = [_Record(o, b"k", str(o).encode(), 0) for o in range(at, min(at + n, RECORDS))]
        self.positions[TP] = at + len(got)
        return {TP: got} if got else {}


class _Stage(BaseStage):
    """Keeps its first two records as context (a matcher's window), so the committed offset
    stays behind what it has read."""

    name = "fake"
    inputs = ("in",)

    def __init__(self) -> None:
        self.seen: list[int] = []

    async def process(self, batch: list[Incoming]) -> StageResult:
        self.seen += [m.offset for m in batch]
        return StageResult()

    def held(self) -> dict[tuple[str, int], int]:  # type: ignore[override]
        return {("in", 0): 2}


async def test_records_handed_out_before_the_new_assignment_is_applied_are_not_taken(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    COMMITTED.clear()
    stop = asyncio.Event()

    async def join(c: _Consumer) -> dict[TopicPartition, list[_Record]]:
        await c.listener.on_partitions_revoked(set())
        c.assigned, c.positions[TP] = {TP}, 0
        await c.listener.on_partitions_assigned({TP})
        return {}

    async def read_five(c: _Consumer) -> dict[TopicPartition, list[_Record]]:
        return c.read(5)

    async def rebalance_before_the_listener_answers(
        c: _Consumer,
    ) -> dict[TopicPartition, list[_Record]]:
        await c.listener.on_partitions_revoked({TP})
        assert COMMITTED[TP].offset == 2  # held back: the stage keeps records 0 and 1
        c.positions[TP] = COMMITTED[TP].offset  # aiokafka reads from the committed offset
        return c.read(5)  # the listener is still asking for the committed offsets

    async def listener_answers(c: _Consumer) -> dict[TopicPartition, list[_Record]]:
        await c.listener.on_partitions_assigned({TP})  # the same partition, kept
        return {}

    async def done(c: _Consumer) -> dict[TopicPartition, list[_Record]]:
        stop.set()
        return {}

    _Consumer.script = [join, read_five, rebalance_before_the_listener_answers,
                        listener_answers, read_five, done]  # fmt: skip
    monkeypatch.setattr(kafka, "AIOKafkaConsumer", _Consumer)
    monkeypatch.setattr(kafka, "AIOKafkaAdminClient", _Admin)
    stage = _Stage()
    runner = kafka.StageRunner(stage, "fake:9092", "g", None, idle_flush_s=3600)  # type: ignore[arg-type]
    await asyncio.wait_for(runner.run(stop), 10)
    assert stage.seen == list(range(RECORDS))  # each record once, in order
