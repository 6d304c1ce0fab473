"""The Kafka adapter: topics, producer, and the runner that drives a Stage with safe commits.

aiokafka errors become BrokerError here and nowhere else.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager, suppress
from typing import Any, NamedTuple

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import (
    CommitFailedError,
    GroupCoordinatorNotAvailableError,
    GroupLoadInProgressError,
    IllegalGenerationError,
    KafkaError,
    NotCoordinatorForGroupError,
    RebalanceInProgressError,
    TopicAlreadyExistsError,
)

from events import ALL_TOPICS, WHOLE_TOPICS, BrokerError, dlq
from events.stage import Incoming, Outgoing, Stage, guarded
from sinks.metrics import READY, observe_batch, observe_lag

from .config import KafkaSettings

log = logging.getLogger("offsite.kafka")
# a group coordinator that is being elected or is loading its offsets (a freshly started Kafka)
COORDINATOR_NOT_READY = (
    GroupCoordinatorNotAvailableError,
    GroupLoadInProgressError,
    NotCoordinatorForGroupError,
)


def broker_away(exc: BaseException) -> bool:
    """Whether ``exc`` is about the broker (away, electing, a coordinator not ready yet): the
    broker is outside the process, so every broker error is worth waiting out."""
    return isinstance(exc, (BrokerError, KafkaError))


def topic_names(prefix: str) -> list[str]:
    names = [prefix + t for t in ALL_TOPICS]
    return names + [dlq(t) for t in names]


def partitions_of(name: str, partitions: int) -> int:
    """How many partitions topic ``name`` (prefixed or not) is created with: one for the
    topics read whole (``WHOLE_TOPICS``), else ``partitions``."""
    whole = any(name == t or name.endswith("." + t) for t in WHOLE_TOPICS)
    return 1 if whole else partitions


async def ensure_topics(
    bootstrap: str, names: Iterable[str], partitions: int, rf: int = 1, min_insync: int = 1
) -> None:
    """Create the topics that are missing, with replication factor ``rf`` and
    ``min.insync.replicas`` ``min_insync``; existing ones are left as they are."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        configs = {"min.insync.replicas": str(min_insync)}
        new = [
            NewTopic(n, partitions_of(n, partitions), rf, topic_configs=configs)
            for n in names
            if n not in existing
        ]
        if new:
            with suppress(TopicAlreadyExistsError):
                await admin.create_topics(new)
            await _until_led(admin, [t.name for t in new])
    except KafkaError as exc:
        raise BrokerError(f"cannot create topics on {bootstrap}: {exc}") from exc
    finally:
        await admin.close()


async def ensure_offsite_topics(bootstrap: str, prefix: str, kafka: KafkaSettings) -> None:
    """Every topic of offsite under ``prefix`` and its DLQ, created as the settings say."""
    await ensure_topics(bootstrap, topic_names(prefix), kafka.partitions,
                        kafka.replication_factor, kafka.min_insync_replicas)  # fmt: skip


async def _until_led(
    admin: AIOKafkaAdminClient, names: list[str], limit_s: float = 60
) -> list[dict[str, Any]]:
    """The metadata of topics ``names`` once every partition has a leader: a broker creates
    topics in the background (Apache Kafka does), and whoever comes too early is refused."""
    deadline = time.monotonic() + limit_s
    while True:
        described = await admin.describe_topics(names)
        if all(
            t.get("error_code", 0) == 0
            and t["partitions"]
            and all(p["leader"] >= 0 for p in t["partitions"])
            for t in described
        ):
            return list(described)
        if time.monotonic() > deadline:
            raise BrokerError(
                f"topics missing or without a leader after {limit_s:g} s: {', '.join(names)}"
            )
        await asyncio.sleep(0.05)


# the largest request the producer sends; the gateway's message limit is far below it
# (ingest.intake.GatewaySettings.max_message_bytes)
MAX_REQUEST_BYTES = 4 * 1024 * 1024


@asynccontextmanager
async def producer(bootstrap: str) -> AsyncIterator[AIOKafkaProducer]:
    prod = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        # a send retried after a broker failover is written once (needs a broker with
        # idempotence: Apache Kafka, the embedded default included)
        enable_idempotence=True,
        linger_ms=5,
        max_batch_size=512 * 1024,
        max_request_size=MAX_REQUEST_BYTES,
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


Partition = tuple[str, int]


class OffsetProbe:
    """Reads where topics end and how far consumer groups have committed, outside any group."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self._consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
        self._admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)

    async def __aenter__(self) -> OffsetProbe:
        try:
            await self._consumer.start()
            await self._admin.start()
        except KafkaError as exc:
            await self.__aexit__()
            raise BrokerError(f"cannot reach the broker at {self.bootstrap}: {exc}") from exc
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._consumer.stop()
        await self._admin.close()

    async def partitions(self, topics: Iterable[str]) -> list[TopicPartition]:
        try:
            described = await _until_led(self._admin, sorted(set(topics)), limit_s=30)
        except KafkaError as exc:
            raise BrokerError(f"cannot read topic metadata: {exc}") from exc
        return sorted(
            TopicPartition(t["topic"], p["partition"]) for t in described for p in t["partitions"]
        )

    async def ends(self, topics: Iterable[str]) -> dict[Partition, int]:
        """The end offset (next offset to be written) of every partition of ``topics``."""
        tps = await self.partitions(topics)
        try:
            ends = await self._consumer.end_offsets(tps)
        except KafkaError as exc:
            raise BrokerError(f"cannot read end offsets: {exc}") from exc
        return {(tp.topic, tp.partition): int(o) for tp, o in ends.items()}

    async def lag(self, group: str, topics: Iterable[str]) -> dict[Partition, int]:
        """Messages of ``topics`` not yet committed by ``group``, per partition that has any (a
        group that never committed starts from each partition's first offset). A stage that
        keeps its last records uncommitted because they wait on later input (the waterway
        stage's last AIS window) says in its commit how far it has read and is done with
        (``settled_to``, see :func:`settled_to`): that far counts as committed."""
        tps = await self.partitions(topics)
        try:
            ends = await self._consumer.end_offsets(tps)
            starts = await self._consumer.beginning_offsets(tps)
            try:
                done = await self._admin.list_consumer_group_offsets(group, partitions=tps)
            except COORDINATOR_NOT_READY:  # a fresh Kafka: the group's offsets cannot be known
                done = {}  # yet, so nothing counts as committed (the caller asks again)
        except KafkaError as exc:
            raise BrokerError(f"cannot read the offsets of group {group}: {exc}") from exc
        out = {}
        for tp in tps:
            meta = done.get(tp)
            at = meta.offset if meta is not None and meta.offset >= 0 else starts[tp]
            if meta is not None:
                at = max(at, settled_to(meta.metadata))
            if ends[tp] > at:
                out[(tp.topic, tp.partition)] = int(ends[tp] - at)
        return out


def settled_to(metadata: str | None) -> int:
    """The offset a commit's checkpoint text says its stage has read and is done with (its
    ``settled_to``), or -1: the end of input, for a stage whose committed offset stays behind
    what it holds waiting on later input (detectors.water_stage)."""
    try:
        return int(json.loads(metadata or "")["settled_to"])
    except (ValueError, TypeError, KeyError):
        return -1


async def wait_drained(bootstrap: str, groups: dict[str, Sequence[str]]) -> None:
    """Wait until each consumer group (→ its input topics) has committed every partition to its
    end, and the ends did not move between two such checks: a fact about offsets, for stages
    that run in other processes."""
    topics = {t for ts in groups.values() for t in ts}
    previous: dict[Partition, int] | None = None
    async with OffsetProbe(bootstrap) as probe:
        while True:
            ends = await probe.ends(topics)
            lagging = [g for g, ts in groups.items() if await probe.lag(g, ts)]
            if not lagging and ends == previous:
                return
            previous = None if lagging else ends
            await asyncio.sleep(0.05)


class Record(NamedTuple):
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp_ms: int  # the broker's record time


async def read_to_end(bootstrap: str, topic: str) -> list[tuple[int, int, bytes | None, bytes]]:
    """Every message of ``topic`` from its first offset to the end it had when called, as
    (partition, offset, key, value), by partition then offset."""
    return [r[:4] for r in await read_records(bootstrap, topic)]


async def read_records(bootstrap: str, topic: str) -> list[Record]:
    """Every record of ``topic`` from its first offset to the end it had when called, by
    partition then offset."""
    async with OffsetProbe(bootstrap) as probe:
        ends = await probe.ends([topic])
    out: list[Record] = []
    tps = [TopicPartition(t, p) for (t, p), end in ends.items() if end > 0]
    if not tps:  # (a consumer stopped before its own task started raises CancelledError)
        return out
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                enable_auto_commit=False)  # fmt: skip
    try:
        await consumer.start()
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)

        async def unread(tps: Iterable[TopicPartition]) -> list[TopicPartition]:
            return [
                tp for tp in tps if await consumer.position(tp) < ends[(tp.topic, tp.partition)]
            ]

        left = await unread(tps)
        while left:
            polled = await consumer.getmany(*left, timeout_ms=500)
            for tp, msgs in polled.items():
                out += [Record(tp.partition, m.offset, m.key, m.value, m.timestamp) for m in msgs]
            left = await unread(left)
    except KafkaError as exc:
        raise BrokerError(f"cannot read {topic}: {exc}") from exc
    finally:
        await consumer.stop()
    return sorted(out, key=lambda m: m[:2])


class StageRunner:
    """Consumes a stage's inputs in a consumer group and commits only what is safe.

    Given a drain target (:meth:`drain_to`: end offsets of its inputs), the runner flushes what
    waits on time as soon as it has consumed up to the target, and reports itself settled for
    that target once it has nothing left to send: done is a fact about offsets, never a pause.
    """

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
        self.batches = self.messages = 0
        self._consumed: dict[tuple[str, int], int] = {}
        self._committed: dict[TopicPartition, tuple[int, str]] = {}
        # (r27b) a new assignment not applied yet: partition → (committed offset, checkpoint)
        self._reassigned: dict[tuple[str, int], tuple[int, str] | None] | None = None
        self._revoked = False
        self.joined = False  # has partitions assigned: it sees everything on its topics
        self.loaded_s: float | None = None  # how long the stage took to load its resources
        self.in_batch_since: float | None = None  # monotonic start of the batch in hand
        self.positions: dict[tuple[str, int], int] = {}  # next offset to read, per partition
        self._target: dict[tuple[str, int], int] = {}
        self._target_round = 0
        self.settled_round = 0  # the last drain round whose target this runner reached

    def drain_to(self, round_: int, target: dict[tuple[str, int], int]) -> None:
        """Aim for ``target`` (end offsets of the inputs) in drain round ``round_``."""
        self._target = {tp: end for tp, end in target.items() if tp[0] in self.stage.inputs}
        self._target_round = round_

    async def _behind(
        self, consumer: AIOKafkaConsumer, batch: list[Incoming]
    ) -> frozenset[tuple[str, int]]:
        """The assigned partitions with records the broker has and this batch did not reach (or
        whose end is not known yet: no fetch has answered for them)."""
        after = {(m.topic, m.partition): m.offset + 1 for m in batch}
        out = set()
        for tp in consumer.assignment():
            end = consumer.highwater(tp)
            key = (tp.topic, tp.partition)
            if end is None:
                out.add(key)
                continue
            position = after[key] if key in after else await consumer.position(tp)
            if position < end:
                out.add(key)
        return frozenset(out)

    def lag(self) -> dict[tuple[str, int], int]:
        """What is left of the drain target, per partition (assigned or not)."""
        return {
            tp: end - self.positions.get(tp, 0)
            for tp, end in sorted(self._target.items())
            if end > self.positions.get(tp, 0)
        }

    async def run(self, stop: asyncio.Event) -> None:
        started_load = time.perf_counter()
        READY.labels(self.stage.name).set(0)
        await self.stage.start()  # models load before the first message is read
        self.loaded_s = time.perf_counter() - started_load
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            # per topic: partition 0 of every input goes to the same process, so a stage that
            # reads topics whole (WHOLE_TOPICS, one partition each) gets all of them in one
            # process and a second one stands by (round robin would split them)
            partition_assignment_strategy=(RangePartitionAssignor,),
            max_partition_fetch_bytes=4 * 1024 * 1024,
            fetch_max_bytes=16 * 1024 * 1024,
            session_timeout_ms=10_000,
            heartbeat_interval_ms=1_000,
            # let the broker gather a batch worth processing rather than a handful of records
            fetch_min_bytes=256 * 1024,
            fetch_max_wait_ms=100,
        )
        try:
            try:
                await consumer.start()
                # (r27b) a listener, so that every rebalance keeps the stage's memory and the
                # positions it is read from in step (see _Rebalance)
                consumer.subscribe(self.stage.inputs, listener=_Rebalance(self))
            except KafkaError as exc:
                raise BrokerError(f"cannot reach the broker at {self.bootstrap}: {exc}") from exc
            last_data = time.monotonic()
            told: frozenset[tuple[str, int]] | None = None
            on_assigned = getattr(self.stage, "assigned", None)
            on_behind = getattr(self.stage, "behind", None)
            while not stop.is_set():
                await self._rebalance(consumer)
                self.joined = bool(consumer.assignment())
                # (r27b) while a rebalance is not applied, the stage keeps what it was told
                if on_assigned is not None and not self._revoked:  # Stage.assigned(partitions)
                    now_assigned = frozenset(
                        (tp.topic, tp.partition) for tp in consumer.assignment()
                    )
                    if now_assigned != told:
                        on_assigned(now_assigned)
                        told = now_assigned
                READY.labels(self.stage.name).set(int(self.joined))
                polled = await consumer.getmany(timeout_ms=200, max_records=self.batch_max)
                # aiokafka hands out one partition's fetched records whole before the next
                # one's: a stage with several inputs would read one topic's backlog (hours of
                # AIS) before another's (the captures of those hours). Every partition with
                # records waiting gives some to each batch.
                for tp in consumer.assignment() if polled else ():
                    if tp not in polled:
                        polled |= await consumer.getmany(tp, max_records=self.batch_max)
                if await self._rebalance(consumer) or self._revoked:
                    # (r27b) read from the committed offsets, or while a new assignment is not
                    # applied yet: aiokafka hands out records of the new assignment from their
                    # committed offsets before the listener has noted it, and a stage that took
                    # them would see records twice (a capture twice is an ambiguous match, a
                    # pass decided again after its capture was let go has none). Dropped; each
                    # partition is then read from where the applied assignment says.
                    continue
                batch = [
                    Incoming(tp.topic, tp.partition, m.offset, m.key, m.value, m.timestamp)
                    for tp, msgs in polled.items()
                    for m in msgs
                ]
                if on_behind is not None:  # the optional Stage.behind(partitions)
                    # (r27b) on an empty poll too: a poll that brought nothing (a broker
                    # restarting, a rebalance) does not mean the broker has nothing more
                    on_behind(await self._behind(consumer, batch))
                started = time.perf_counter()
                if batch:
                    last_data = time.monotonic()
                    self.in_batch_since = last_data
                    result = await guarded(self.stage, batch)  # no record stops it
                else:
                    reached = await self._reached(consumer)
                    if reached is None and time.monotonic() - last_data < self.idle_flush_s:
                        continue
                    last_data = time.monotonic()
                    result = await self.stage.idle()
                    if not (result.out or result.dead):
                        await self._commit(consumer)
                        if reached is not None and self._finished():
                            self.settled_round = reached
                        continue
                    self.in_batch_since = last_data
                await send_all(self.prod, result.out + result.dead)
                await self.stage.acknowledged(result)
                for m in batch:
                    self._consumed[(m.topic, m.partition)] = m.offset + 1
                await self._commit(consumer)
                self.batches += 1
                self.messages += len(batch)
                self.in_batch_since = None
                observe_batch(self.stage.name, batch, result, time.perf_counter() - started)
                for d in result.dead:  # one line per problem
                    letter = json.loads(d.value)
                    log.warning("dead letter", extra={
                        "stage": self.stage.name, "topic": letter["topic"],
                        "partition": letter["partition"], "offset": letter["offset"],
                        "reason": letter["reason"][:300]})  # fmt: skip
                observe_lag(self.stage.name, {
                    (tp.topic, tp.partition): hw - self._consumed[(tp.topic, tp.partition)]
                    for tp in consumer.assignment()
                    if (hw := consumer.highwater(tp)) is not None
                    and (tp.topic, tp.partition) in self._consumed
                })  # fmt: skip
        except KafkaError as exc:
            raise BrokerError(f"stage {self.stage.name}: {exc}") from exc
        finally:
            READY.labels(self.stage.name).set(0)
            await self.stage.close()
            await consumer.stop()

    def _finished(self) -> bool:
        """Whether the stage, having read up to the target and flushed what waits on time, is
        done with what it read: it holds nothing back, or what it holds waits on later input
        (event time), which no pause would bring (the optional ``Stage.waits_on_input``)."""
        if not self.stage.held():
            return True
        waits = getattr(self.stage, "waits_on_input", None)
        return bool(waits is not None and waits())

    async def _reached(self, consumer: AIOKafkaConsumer) -> int | None:
        """The drain round whose target this runner has read up to on every input partition,
        or None (no target yet, partitions not assigned, or not there yet)."""
        round_, target, assigned = self._target_round, self._target, consumer.assignment()
        if not target or not assigned:
            return None
        for tp in assigned:
            self.positions[(tp.topic, tp.partition)] = await consumer.position(tp)
        if all(self.positions.get(tp, 0) >= end for tp, end in target.items()):
            return round_
        return None

    async def _rebalance(self, consumer: AIOKafkaConsumer) -> bool:
        """(r27b) Apply a new assignment (see _Rebalance), if one came: a partition kept goes
        on from where this runner was, in step with what the stage has in memory; one gained
        is read from its committed offset, and the checkpoint committed with it goes to the
        optional ``Stage.restore``; the stage is told what it reads now (``Stage.assigned``),
        so it forgets the partitions it lost."""
        new, self._reassigned = self._reassigned, None
        if new is None:
            return False
        self._revoked = False
        self._consumed = {tp: at for tp, at in self._consumed.items() if tp in new}
        self._committed = {}
        on_assigned = getattr(self.stage, "assigned", None)
        if on_assigned is not None:
            on_assigned(frozenset(new))
        gained = {}
        for tp, committed in new.items():
            if tp in self._consumed:
                consumer.seek(TopicPartition(*tp), self._consumed[tp])
            elif committed is not None:
                consumer.seek(TopicPartition(*tp), committed[0])
                gained[tp] = committed[1]
            else:
                await consumer.seek_to_beginning(TopicPartition(*tp))
        restore = getattr(self.stage, "restore", None)
        if restore is not None and gained:
            restore(gained)
        return True

    async def _commit(self, consumer: AIOKafkaConsumer) -> None:
        if self._revoked or self._reassigned is not None:  # (r27b) the group is changing
            return
        held = self.stage.held()
        assigned = {(tp.topic, tp.partition) for tp in consumer.assignment()}
        # (r27b) the optional Stage.checkpoint(): text committed with each partition's offset,
        # given back to Stage.restore() by whoever reads the partition next
        checkpoint: dict[tuple[str, int], str] = getattr(self.stage, "checkpoint", dict)()
        offsets = {}
        for tp, position in self._consumed.items():
            if tp not in assigned:
                continue
            keep = held.get(tp)
            at = position if keep is None else min(position, keep)
            offsets[TopicPartition(*tp)] = (at, checkpoint.get(tp, ""))
        if offsets and offsets != self._committed:
            try:
                await consumer.commit(offsets)
            except (CommitFailedError, RebalanceInProgressError, IllegalGenerationError):
                # (r27b) the group is changing under this commit: whoever reads the partitions
                # next starts from the last commit and decides the same way; not a failure
                log.info("commit skipped: the group is rebalancing", extra={
                    "stage": self.stage.name})  # fmt: skip
                return
            self._committed = offsets


class _Rebalance(ConsumerRebalanceListener):
    """(r27b) After every rebalance aiokafka reads each assigned partition again from its
    committed offset, which lies behind what the stage has in memory (held records, context):
    read that way, a stage would see records twice (a capture twice is an ambiguous match), and
    one that lost a partition would still decide for it. This listener (it runs in aiokafka's
    own task, maybe while a batch is in hand) only notes the new assignment with the committed
    offsets and checkpoints; the runner applies it between batches (StageRunner._rebalance).
    aiokafka hands out records of the new assignment while this listener still asks for the
    committed offsets: from revocation until the runner has applied the new assignment, the
    runner drops what it polls."""

    def __init__(self, runner: StageRunner) -> None:
        self.runner = runner

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        # no record taken and no commit until the new assignment is applied
        self.runner._revoked = True

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        tps = sorted(assigned)
        got = {}
        while tps:  # the runner takes no record until this is known: asked until answered
            admin = AIOKafkaAdminClient(bootstrap_servers=self.runner.bootstrap)
            try:
                await admin.start()
                got = await admin.list_consumer_group_offsets(self.runner.group_id, partitions=tps)
                break
            except KafkaError as exc:
                log.info("committed offsets not read yet, asking again", extra={
                    "stage": self.runner.stage.name, "error": str(exc)})  # fmt: skip
                await asyncio.sleep(0.2)
            finally:
                await admin.close()
        self.runner._reassigned = {
            (tp.topic, tp.partition): (
                (m.offset, m.metadata or "") if (m := got.get(tp)) and m.offset >= 0 else None
            )
            for tp in tps
        }
