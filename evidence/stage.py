"""The evidence stage: violations → one signed evidence package per case, under evidence_dir."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path

from events import VIOLATIONS, Registry, Violation
from events.stage import BaseStage, Incoming, StageResult, decode_batch
from events.water import WATER_VIOLATIONS, WaterViolation

from .bag import BlobSource, build_package
from .signing import Signer

log = logging.getLogger("offsite.evidence")

# Why a waterway case gets no package yet: the bag's layout (evidence.bag) is a road pass's.
WATER_NOT_PACKAGED = (
    "waterway case: the evidence package holds a road pass (WIM measurement, device "
    "certificate, discretion baseline, road composite) and has no layout yet for AIS reports "
    "and vessel captures; no package is built, the case is reviewed from its stored decision"
)


class EvidenceStage(BaseStage):
    """Packages are built in a worker thread (images, hashing, signing) and are idempotent:
    a replayed violation finds its package in place and leaves it alone."""

    name = "evidence"

    def __init__(
        self,
        registry: Registry,
        blobs: BlobSource,
        signer: Signer,
        out_dir: Path,
        agency: str,
        baseline_files: Sequence[Path],
        *,
        topic_prefix: str = "",
    ) -> None:
        self.registry, self.blobs, self.signer = registry, blobs, signer
        self.out_dir, self.agency, self.baseline_files = out_dir, agency, list(baseline_files)
        self.water_topic = topic_prefix + WATER_VIOLATIONS
        self.inputs: tuple[str, ...] = (topic_prefix + VIOLATIONS, self.water_topic)

    async def process(self, batch: list[Incoming]) -> StageResult:
        water = [m for m in batch if m.topic == self.water_topic]
        if water:
            batch = [m for m in batch if m.topic != self.water_topic]
        good, dead = decode_batch(Violation, batch, self.name)
        todo = [(v, msg.value) for v, msg in good if v.outcome != "none"]
        if todo:
            await asyncio.to_thread(self._build, todo)
        if not water:
            return StageResult(dead=dead)
        skipped, water_dead = decode_batch(WaterViolation, water, self.name)
        for v, _ in skipped:
            log.warning("no evidence package", extra={
                "violation_id": v.violation_id, "violation_code": v.violation_code,
                "site_id": v.site_id, "reason": WATER_NOT_PACKAGED})  # fmt: skip
        observed: list[tuple[str, tuple[str, ...], float]] = [
            ("evidence_skipped", (v.violation_code,), 1.0) for v, _ in skipped
        ]
        return StageResult(dead=dead + water_dead, observed=observed)

    def _build(self, todo: list[tuple[Violation, bytes]]) -> None:
        for v, document in todo:
            build_package(
                v, self.registry, self.blobs, self.out_dir, self.signer, self.agency,
                baseline_files=self.baseline_files, document=document,
            )  # fmt: skip
