"""Replay of recorded JSONL files into the raw topics, optionally at recorded speed."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path

from events import ROAD_ANPR, ROAD_REWEIGH, ROAD_WIM, UsageError
from events.stage import Outgoing
from events.topics import WATER_CAMERA

RAW_TOPICS = (ROAD_WIM, ROAD_ANPR, ROAD_REWEIGH, WATER_CAMERA)
# the field a raw topic's messages are keyed by (SPEC.md)
KEYS = {ROAD_WIM: "site_id", ROAD_ANPR: "site_id", ROAD_REWEIGH: "site_id",
        WATER_CAMERA: "checkpoint_id"}  # fmt: skip


def _topic_of(obj: object, default: str | None) -> str | None:
    if isinstance(obj, dict):
        if "scale_certificate" in obj:  # a static reweigh (精检) has axle weights too
            return ROAD_REWEIGH
        if "axle_weights_kg" in obj or "gross_weight_kg" in obj:
            return ROAD_WIM
        if "checkpoint_id" in obj:
            return WATER_CAMERA
        if "capture_id" in obj or "camera_id" in obj:
            return ROAD_ANPR
    return default


def file_topic(path: Path, explicit: str | None) -> str | None:
    """The topic a file's lines go to: ``--topic``, else a raw topic named by the file."""
    if explicit is not None:
        if explicit not in RAW_TOPICS:
            raise UsageError(f"--topic must be one of {', '.join(RAW_TOPICS)}, not {explicit!r}")
        return explicit
    return next((t for t in RAW_TOPICS if path.name.startswith(t)), None)


def read_records(
    paths: Iterable[Path], topic: str | None = None, prefix: str = ""
) -> Iterator[tuple[Outgoing, dt.datetime | None]]:
    """Each line as a message, byte for byte (the pipeline validates; bad lines reach the DLQ),
    keyed by its site_id (checkpoint_id for ``water.camera``), with its ``ts`` for pacing. A line whose topic cannot be told (no
    --topic, no topic in the file name, no telling fields) is a usage error."""
    for path in paths:
        default = file_topic(path, topic)
        try:
            lines = path.read_bytes().splitlines()
        except OSError as exc:
            raise UsageError(f"cannot read {path}: {exc.strerror}") from exc
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                obj = None
            target = _topic_of(obj, default) if default is None else default
            if target is None:
                raise UsageError(f"{path}:{n}: cannot tell the topic; pass --topic")
            site = obj.get(KEYS[target]) if isinstance(obj, dict) else None
            key = site.encode() if isinstance(site, str) else None
            ts = None
            if isinstance(obj, dict) and isinstance(obj.get("ts"), str):
                try:
                    ts = dt.datetime.fromisoformat(obj["ts"])
                except ValueError:
                    ts = None
            yield Outgoing(prefix + target, key, line), ts


async def paced(
    records: Iterable[tuple[Outgoing, dt.datetime | None]], speed: float | None
) -> AsyncIterator[Outgoing]:
    """Yield records; with ``speed`` (1.0 = recorded speed) sleep the recorded gaps."""
    last: dt.datetime | None = None
    for msg, ts in records:
        if speed and ts is not None and last is not None and ts > last:
            await asyncio.sleep((ts - last).total_seconds() / speed)
        if ts is not None:
            last = ts if last is None else max(last, ts)
        yield msg
