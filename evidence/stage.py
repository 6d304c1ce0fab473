"""The evidence stage: violations → one signed evidence package per case, under evidence_dir."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from events import VIOLATIONS, Registry, Violation
from events.stage import BaseStage, Incoming, StageResult, decode_batch

from .bag import BlobSource, build_package
from .signing import Signer


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
        self.inputs: tuple[str, ...] = (topic_prefix + VIOLATIONS,)

    async def process(self, batch: list[Incoming]) -> StageResult:
        good, dead = decode_batch(Violation, batch, self.name)
        todo = [(v, msg.value) for v, msg in good if v.outcome != "none"]
        if todo:
            await asyncio.to_thread(self._build, todo)
        return StageResult(dead=dead)

    def _build(self, todo: list[tuple[Violation, bytes]]) -> None:
        for v, document in todo:
            build_package(
                v, self.registry, self.blobs, self.out_dir, self.signer, self.agency,
                baseline_files=self.baseline_files, document=document,
            )  # fmt: skip
