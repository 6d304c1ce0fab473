"""The rules stage: detections → violations."""

from __future__ import annotations

from pydantic import ValidationError

from events import DETECTIONS, VIOLATIONS, Detection
from events.stage import Incoming, Outgoing, StageResult, dead_letter, validation_reason

from .national import decide


class RulesStage:
    name = "rules"

    def __init__(self, *, topic_prefix: str = "") -> None:
        self.inputs: tuple[str, ...] = (topic_prefix + DETECTIONS,)
        self.out_topic = topic_prefix + VIOLATIONS

    async def process(self, batch: list[Incoming]) -> StageResult:
        result = StageResult()
        for msg in batch:
            try:
                det = Detection.model_validate_json(msg.value)
            except ValidationError as exc:
                result.dead.append(dead_letter(msg, validation_reason(exc), self.name))
                continue
            if not det.overloaded:
                continue
            v = decide(det)
            result.out.append(Outgoing(self.out_topic, v.site_id.encode(), v.to_json()))
        return result

    async def idle(self) -> StageResult:
        return StageResult()

    def held(self) -> dict[tuple[str, int], int]:
        return {}

    async def acknowledged(self, result: StageResult) -> None:
        return None

    async def close(self) -> None:
        return None
