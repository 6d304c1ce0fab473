"""The case stage: violations → cases in PostgreSQL, and one alert per new case."""

from __future__ import annotations

from events import ALERTS, CASES, LEADS, VIOLATIONS, Case, DatabaseError, Lead, Violation
from events.stage import (
    POISON,
    BaseStage,
    Incoming,
    Outgoing,
    StageResult,
    decode_batch,
    poison_letter,
)
from events.water import WATER_VIOLATIONS, WaterViolation

from .casestore import AnyViolation, CaseStore, PendingWrite, case_id
from .metrics import NEW_CASES, observe_latency


class CaseStage(BaseStage):
    """Writes each batch's cases in a transaction that commits only after the batch's alerts
    were acknowledged by the broker; input offsets are committed after that. Road violations
    and waterway ones (``water.violations``) go into the same case queue."""

    name = "cases"

    def __init__(self, store: CaseStore, *, topic_prefix: str = "") -> None:
        self.store = store
        self.water_topic = topic_prefix + WATER_VIOLATIONS
        self.inputs: tuple[str, ...] = (topic_prefix + VIOLATIONS, self.water_topic)
        self.alert_topic = topic_prefix + ALERTS
        self.case_topic = topic_prefix + CASES
        self._pending: PendingWrite | None = None

    async def process(self, batch: list[Incoming]) -> StageResult:
        road, dead = decode_batch(
            Violation, [m for m in batch if m.topic != self.water_topic], self.name
        )
        water, water_dead = decode_batch(
            WaterViolation, [m for m in batch if m.topic == self.water_topic], self.name
        )
        good: list[tuple[AnyViolation, Incoming]] = [*road, *water]
        dead += water_dead
        result = StageResult(dead=dead)
        todo = [(v, msg) for v, msg in good if v.outcome != "none"]
        if todo:
            self._pending, todo = await self._begin(todo, result)
            violations = [v for v, _ in todo]
            new = {a.case_id for a in self._pending.alerts}
            result.out = [
                Outgoing(self.alert_topic, a.site_id.encode(), a.to_json())
                for a in self._pending.alerts
            ] + [
                Outgoing(self.case_topic, v.site_id.encode(), _case(v).to_json())
                for v in violations
                if case_id(v) in new
            ]
        return result

    async def _begin(
        self, todo: list[tuple[AnyViolation, Incoming]], result: StageResult
    ) -> tuple[PendingWrite, list[tuple[AnyViolation, Incoming]]]:
        """The batch's cases written in an open transaction, and the violations written. When
        the database refuses a value one of them holds (a DatabaseError that is not
        retriable), each is written alone and rolled back to find which: those it refuses are
        dead letters with its reason (in ``result``), the others are written together — the
        good cases of a batch are never lost to a bad one (issue #28)."""
        try:
            return await self.store.begin_batch(*_columns(todo)), todo
        except DatabaseError as exc:
            if exc.retriable:
                raise
        keep = []
        for v, msg in todo:
            try:
                await (await self.store.begin_batch(*_columns([(v, msg)]))).rollback()
            except DatabaseError as exc:
                if exc.retriable:
                    raise
                result.dead.append(poison_letter(msg, exc, self.name))
                result.observed.append((POISON, (self.name,), 1))
                continue
            keep.append((v, msg))
        return await self.store.begin_batch(*_columns(keep)), keep

    async def acknowledged(self, result: StageResult) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            await pending.commit()
            for a in pending.alerts:
                NEW_CASES.labels(a.violation_code, a.site_id, a.outcome).inc()
            observe_latency("case", [a.ts for a in pending.alerts])

    async def close(self) -> None:
        """Roll back a batch whose alerts never got acknowledged (the runner failed)."""
        if self._pending is not None:
            pending, self._pending = self._pending, None
            await pending.rollback()


def _columns(todo: list[tuple[AnyViolation, Incoming]]) -> tuple[list[AnyViolation], list[str]]:
    """The violations and their documents as received, for CaseStore.begin_batch."""
    return [v for v, _ in todo], [msg.value.decode() for _, msg in todo]


def _case(v: AnyViolation) -> Case:
    return Case(
        case_id=case_id(v), violation_id=v.violation_id, site_id=v.site_id, ts=v.ts,
        plate=v.plate, outcome=v.outcome, fine_cny=v.fine_cny,
    )  # fmt: skip


class LeadSinkStage(BaseStage):
    """leads → the ``leads`` table (idempotent), for officers to follow up."""

    name = "lead-store"
    isolable = True  # leads are stored idempotently

    def __init__(self, store: CaseStore, *, topic_prefix: str = "") -> None:
        self.store = store
        self.inputs: tuple[str, ...] = (topic_prefix + LEADS,)

    async def process(self, batch: list[Incoming]) -> StageResult:
        good, dead = decode_batch(Lead, batch, self.name)
        await self.store.write_leads([(lead, msg.value.decode()) for lead, msg in good])
        return StageResult(dead=dead)
