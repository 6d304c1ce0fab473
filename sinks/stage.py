"""The case stage: violations → cases in PostgreSQL, then one alert per new case."""

from __future__ import annotations

from pydantic import ValidationError

from events import ALERTS, VIOLATIONS, Violation
from events.stage import Incoming, Outgoing, StageResult, dead_letter, validation_reason

from .casestore import CaseStore


class CaseStage:
    name = "cases"

    def __init__(self, store: CaseStore, *, topic_prefix: str = "") -> None:
        self.store = store
        self.inputs: tuple[str, ...] = (topic_prefix + VIOLATIONS,)
        self.alert_topic = topic_prefix + ALERTS
        self._owed: list[str] = []

    async def process(self, batch: list[Incoming]) -> StageResult:
        result = StageResult()
        violations = []
        for msg in batch:
            try:
                v = Violation.model_validate_json(msg.value)
            except ValidationError as exc:
                result.dead.append(dead_letter(msg, validation_reason(exc), self.name))
                continue
            if v.outcome != "none":
                violations.append(v)
        alerts = await self.store.write_batch(violations) if violations else []
        self._owed = [a.case_id for a in alerts]
        result.out = [Outgoing(self.alert_topic, a.site_id.encode(), a.to_json()) for a in alerts]
        return result

    async def idle(self) -> StageResult:
        return StageResult()

    def held(self) -> dict[tuple[str, int], int]:
        return {}

    async def acknowledged(self, result: StageResult) -> None:
        await self.store.mark_alerted(self._owed)
        self._owed = []
