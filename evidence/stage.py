"""The evidence stage: violations → one signed evidence package per case, under evidence_dir.

Road violations (``violations``) get a road pass's package (evidence.bag), waterway ones
(``water.violations``) a vessel's (evidence.water_bag): the same signed bag, so every case in
the one queue has a package that ``offsite evidence verify`` checks alike."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path

from events import VIOLATIONS, Registry, Violation
from events.clock import Clock, wall_clock
from events.stage import BaseStage, Incoming, StageResult, decode_batch
from events.water import WATER_VIOLATIONS, WaterRegistry, WaterViolation

from .bag import BlobSource, build_package, remove_unfinished
from .signing import Signer
from .water_bag import build_water_package

log = logging.getLogger("offsite.evidence")


class EvidenceStage(BaseStage):
    """Packages are built in a worker thread (images, hashing, signing) and are idempotent:
    a replayed violation finds its package in place and leaves it alone. ``waterways``: the
    waterway registry, whose extract (vessel, checkpoint or zone, receivers) a waterway
    package holds (None: the extract says not in the registry)."""

    name = "evidence"
    isolable = True  # a package built before is left as it is

    def __init__(
        self,
        registry: Registry,
        blobs: BlobSource,
        signer: Signer,
        out_dir: Path,
        agency: str,
        baseline_files: Sequence[Path],
        *,
        waterways: WaterRegistry | None = None,
        topic_prefix: str = "",
        clock: Clock = wall_clock,
    ) -> None:
        self.registry, self.blobs, self.signer = registry, blobs, signer
        self.out_dir, self.agency, self.baseline_files = out_dir, agency, list(baseline_files)
        self.waterways, self.clock = waterways, clock  # the packages' creation time
        self.water_topic = topic_prefix + WATER_VIOLATIONS
        self.inputs: tuple[str, ...] = (topic_prefix + VIOLATIONS, self.water_topic)

    async def start(self) -> None:
        """Before the first write: what a crash left half-written is removed (its violation was
        not committed, so it is read again and its package written whole)."""
        for tmp in await asyncio.to_thread(remove_unfinished, self.out_dir):
            log.warning("removed a package left half-written", extra={"path": str(tmp)})

    async def process(self, batch: list[Incoming]) -> StageResult:
        road, dead = decode_batch(Violation, [m for m in batch if m.topic != self.water_topic],
                                  self.name)  # fmt: skip
        water, water_dead = decode_batch(
            WaterViolation, [m for m in batch if m.topic == self.water_topic], self.name
        )
        todo = [(v, msg.value) for v, msg in road if v.outcome != "none"]
        water_todo = [(v, msg.value) for v, msg in water]
        if todo or water_todo:
            await asyncio.to_thread(self._build, todo, water_todo)
        return StageResult(dead=dead + water_dead)

    def _build(
        self, todo: list[tuple[Violation, bytes]], water: list[tuple[WaterViolation, bytes]]
    ) -> None:
        for v, document in todo:
            build_package(
                v, self.registry, self.blobs, self.out_dir, self.signer, self.agency,
                baseline_files=self.baseline_files, document=document, created_at=self.clock(),
            )  # fmt: skip
        for w, document in water:
            build_water_package(
                w, self.waterways, self.blobs, self.out_dir, self.signer, self.agency,
                document=document, created_at=self.clock(),
            )  # fmt: skip
