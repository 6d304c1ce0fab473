"""The Kafka adapter: topics, producer, and the runner that drives a Stage with safe commits.

aiokafka errors become BrokerError here and nowhere else.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager, suppress

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from events import ALL_TOPICS, BrokerError, dlq
from events.stage import Incoming, Outgoing, Stage
from sinks.metrics import observe_batch

log = logging.getLogger("offsite.kafka")


def topic_names(prefix: str) -> list[str]:
    names = [prefix + t for t in ALL_TOPICS]
    return names + [dlq(t) for t in names]


async def ensure_topics(bootstrap: str, names: Iterable[str], partitions: int, rf: int = 1) -> None:
    """Create the topics that are missing; existing ones are left as they are."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        new = [NewTopic(n, partitions, rf) for n in names if n not in existing]
        if new:
            with suppress(TopicAlreadyExistsError):
                await admin.create_topics(new)
    except KafkaError as exc:
        raise BrokerError(f"cannot create topics on {bootstrap}: {exc}") from exc
    finally:
        await admin.close()


@asynccontextmanager
async def producer(bootstrap: str) -> AsyncIterator[AIOKafkaProducer]:
    prod = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        linger_ms=5,
        max_batch_size=512 * 1024,
        max_request_size=4 * 1024 * 1024,
    )
    try:
        await prod.start()
    except KafkaError as exc:
        raise BrokerError(f"cannot reach the broker at {bootstrap}: {exc}") from exc
    try:
        yield prod
    finally:
        await prod.stop()


async def send_all(prod: AIOKafkaProducer, items: list[Outgoing]) -> None:
    """Send and wait until the broker acknowledged every item (acks=all)."""
    try:
        futures = [await prod.send(o.topic, o.value, key=o.key) for o in items]
        if futures:
            await asyncio.gather(*futures)
    except KafkaError as exc:
        raise BrokerError(f"produce failed: {exc}") from exc


class StageRunner:
    """Consumes a stage's inputs in a consumer group and commits only what is safe."""

    def __init__(
        self,
        stage: Stage,
        bootstrap: str,
        group_id: str,
        prod: AIOKafkaProducer,
        *,
        batch_max: int = 2000,
        idle_flush_s: float = 1.0,
    ) -> None:
        self.stage, self.bootstrap, self.group_id, self.prod = stage, bootstrap, group_id, prod
        self.batch_max, self.idle_flush_s = batch_max, idle_flush_s
        self.batches = 0
        self._consumed: dict[tuple[str, int], int] = {}
        self.last_activity = time.monotonic()  # last time a batch moved data
        self.joined = False  # has partitions assigned: it sees everything on its topics

    async def run(self, stop: asyncio.Event) -> None:
        consumer = AIOKafkaConsumer(
            *self.stage.inputs,
            bootstrap_servers=self.bootstrap,
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=4 * 1024 * 1024,
            fetch_max_bytes=16 * 1024 * 1024,
            session_timeout_ms=10_000,
            heartbeat_interval_ms=1_000,
            # let the broker gather a batch worth processing rather than a handful of records
            fetch_min_bytes=256 * 1024,
            fetch_max_wait_ms=100,
        )
        try:
            await consumer.start()
        except KafkaError as exc:
            raise BrokerError(f"cannot reach the broker at {self.bootstrap}: {exc}") from exc
        try:
            last_data = time.monotonic()
            while not stop.is_set():
                if not self.joined and consumer.assignment():
                    self.joined, self.last_activity = True, time.monotonic()
                polled = await consumer.getmany(timeout_ms=200, max_records=self.batch_max)
                batch = [
                    Incoming(tp.topic, tp.partition, m.offset, m.key, m.value)
                    for tp, msgs in polled.items()
                    for m in msgs
                ]
                if batch:
                    last_data = time.monotonic()
                    started = time.perf_counter()
                    result = await self.stage.process(batch)
                elif time.monotonic() - last_data >= self.idle_flush_s:
                    last_data = time.monotonic()
                    result = await self.stage.idle()
                    started = time.perf_counter()
                    if not (result.out or result.dead):
                        await self._commit(consumer)
                        continue
                else:
                    continue
                self.last_activity = time.monotonic()
                await send_all(self.prod, result.out + result.dead)
                await self.stage.acknowledged(result)
                for m in batch:
                    self._consumed[(m.topic, m.partition)] = m.offset + 1
                await self._commit(consumer)
                self.batches += 1
                observe_batch(self.stage.name, batch, result, time.perf_counter() - started)
        except KafkaError as exc:
            raise BrokerError(f"stage {self.stage.name}: {exc}") from exc
        finally:
            await self.stage.close()
            await consumer.stop()

    async def _commit(self, consumer: AIOKafkaConsumer) -> None:
        held = self.stage.held()
        assigned = {(tp.topic, tp.partition) for tp in consumer.assignment()}
        offsets = {}
        for tp, position in self._consumed.items():
            if tp not in assigned:
                continue
            keep = held.get(tp)
            offsets[TopicPartition(*tp)] = position if keep is None else min(position, keep)
        if offsets:
            await consumer.commit(offsets)
