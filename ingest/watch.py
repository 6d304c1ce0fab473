"""The folder watcher: JSON + JPEG sets that cameras upload (FTP) into a folder, sent once complete.

A set is one JSON file — a WIM record (``record_id``) or an ANPR capture (``capture_id``) — and
the JPEGs its ``images`` list names by file, in the same folder::

    {"capture_id": "CAM-G312-1035-00000001", …, "images": [{"role": "plate", "file": "0001p.jpg"}]}

A set is taken only when it is complete: the JSON parses, every JPEG it names is there and ends
with the JPEG end-of-image marker, and no file of it changed for ``settle_s`` (an upload in
progress keeps touching its file). Names an FTP client uses while uploading (``.part``,
``.tmp``, ``.filepart``, leading dot) are not looked at. A set still incomplete after
``give_up_s`` is rejected.

Each set goes through the same :class:`Intake` as the HTTP gateway, then to ``done/``, or to
``rejected/`` with ``<stem>.reason.txt``. The moves are journalled (``.moving/``) so a restart
finishes a move cut short; a set sent but not yet moved is sent again on restart and the
acceptance log answers that it was accepted before: no second message.

With a station ``format`` (ingest.formats), every file of the folder is one body in that format
(e.g. the 卡口 JSON a camera uploads), taken through :class:`ingest.stations.Stations` once it
has settled: to ``done/`` when each of its messages was accepted, else to ``rejected/`` with the
reasons (a record that cannot be mapped is in the dead letters too); an image server that
failed leaves the file for the next pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from events import ServiceError

from .intake import ANPR, WIM, Intake, Refused, Upload
from .stations import Stations

log = logging.getLogger("offsite.watch")

DONE, REJECTED, JOURNAL = "done", "rejected", ".moving"
UPLOADING = (".part", ".tmp", ".filepart", ".partial", ".crdownload", ".uploading")


@dataclass(frozen=True)
class SetOutcome:
    """What became of one set: ``accepted`` (``replayed``: accepted before), or the reason."""

    name: str
    accepted: bool
    reason: str | None = None
    replayed: bool = False


class _Wait(Exception):
    """The set is not complete yet; ``why`` says what is missing."""

    def __init__(self, why: str) -> None:
        self.why = why


class FolderWatcher:
    def __init__(
        self,
        root: Path,
        intake: Intake,
        *,
        device: str | None = None,
        settle_s: float = 2.0,
        give_up_s: float = 600.0,
        clock: Callable[[], float] = time.time,
        stations: Stations | None = None,
        format: str | None = None,
    ) -> None:
        """``device``: the folder belongs to this device (its FTP account), and its sets may
        only be that device's; None: any registered device, checked against the registry."""
        self.root, self.intake, self.device = root, intake, device
        self.settle_s, self.give_up_s, self.clock = settle_s, give_up_s, clock
        self.stations, self.format = stations, format
        for sub in (DONE, REJECTED, JOURNAL):
            (root / sub).mkdir(parents=True, exist_ok=True)

    async def scan(self) -> list[SetOutcome]:
        """One pass: finish journalled moves, then send every complete set. A broker or
        database failure leaves its set where it is for the next pass."""
        await asyncio.to_thread(self._finish_moves)
        files = await asyncio.to_thread(self._listing)
        outcomes = []
        for name in sorted(n for n in files if n.endswith(".json") or self.format):
            try:
                if self.format:
                    outcome = await self._take_format(name, files)
                else:
                    outcome = await self._take(name, files)
            except ServiceError as exc:
                log.warning("%s: not sent, will retry: %s", name, exc)
                continue
            if outcome is not None:
                outcomes.append(outcome)
        return outcomes

    async def run(
        self,
        stop: asyncio.Event,
        interval_s: float = 1.0,
        report: Callable[[SetOutcome], None] | None = None,
    ) -> None:
        while not stop.is_set():
            for outcome in await self.scan():
                if report is not None:
                    report(outcome)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval_s)

    async def _take(self, name: str, files: dict[str, float]) -> SetOutcome | None:
        age = self.clock() - files[name]
        try:
            loaded = await asyncio.to_thread(self._load, name, files)
        except _Wait as wait:
            if age < self.give_up_s:
                return None
            return await self._reject(name, [], Refused(422, "incomplete", wait.why))
        except Refused as exc:
            return await self._reject(name, [], exc)
        doc, uploads, images = loaded
        kind = WIM if "record_id" in doc else ANPR
        try:
            accepted = await self.intake.accept(kind, self.device, doc, uploads)
        except Refused as exc:
            return await self._reject(name, images, exc)
        await asyncio.to_thread(self._move, [*images, name], DONE)
        return SetOutcome(name, True, replayed=accepted.replayed)

    async def _take_format(self, name: str, files: dict[str, float]) -> SetOutcome | None:
        """One file in the station format, once it has settled."""
        assert self.stations is not None and self.format is not None
        if self.clock() - files[name] < self.settle_s:
            return None
        body = await asyncio.to_thread((self.root / name).read_bytes)
        results = await self.stations.take(self.format, self.device, body)
        if any(r.http >= 500 for r in results):
            return None  # an image server failed: the next pass tries again
        bad = [r.detail for r in results if r.status != "accepted"]
        if bad:
            problems = [(d.get("field", ""), d.get("reason") or d.get("message", "")) for d in bad]
            why = "; ".join(r for _, r in problems)
            return await self._reject(name, [], Refused(422, "invalid", why, problems))
        await asyncio.to_thread(self._move, [name], DONE)
        return SetOutcome(name, True)

    async def _reject(self, name: str, images: list[str], exc: Refused) -> SetOutcome:
        lines = [f"{exc.status} {exc.code}: {exc.message}"]
        lines += [f"{f or '(message)'}: {r}" for f, r in exc.problems]
        reason = self.root / REJECTED / (Path(name).stem + ".reason.txt")
        await asyncio.to_thread(_write_atomically, reason, ("\n".join(lines) + "\n").encode())
        await asyncio.to_thread(self._move, [*images, name], REJECTED)
        return SetOutcome(name, False, reason=lines[0])

    # -- blocking work, in worker threads --

    def _listing(self) -> dict[str, float]:
        """Plain files of the folder that are not being uploaded: name → mtime."""
        out = {}
        with os.scandir(self.root) as entries:
            for e in entries:
                if e.name.startswith((".", "~")) or e.name.lower().endswith(UPLOADING):
                    continue
                if e.is_file(follow_symlinks=False):
                    out[e.name] = e.stat().st_mtime
        return out

    def _load(
        self, name: str, files: dict[str, float]
    ) -> tuple[dict[str, Any], list[Upload], list[str]]:
        """The set's JSON without its file names, its images, and their file names; _Wait if
        it is not complete, Refused if it can never be."""
        now = self.clock()
        if now - files[name] < self.settle_s:
            raise _Wait("the JSON file is still being written")
        try:
            doc = json.loads((self.root / name).read_bytes())
        except (ValueError, RecursionError) as exc:  # half-written, or never valid
            raise _Wait(f"not valid JSON: {exc}") from exc
        if not isinstance(doc, dict):
            raise Refused(422, "invalid", "the JSON file holds no object")
        if "record_id" not in doc and "capture_id" not in doc:
            raise Refused(422, "invalid", "neither a WIM record (record_id) nor an ANPR "
                          "capture (capture_id)")  # fmt: skip
        entries = doc.get("images", [])
        if not isinstance(entries, list):
            raise Refused(422, "invalid", "images: must be a list", [("images", "not a list")])
        uploads, images, claims = [], [], []
        for i, entry in enumerate(entries):
            file = entry.get("file") if isinstance(entry, dict) else None
            if file is None:
                claims.append(entry)  # named by SHA-256: the intake looks it up
                continue
            where = f"images.{i}.file"
            if not isinstance(file, str) or not file or Path(file).name != file or \
                    file.startswith("."):  # fmt: skip
                raise Refused(422, "invalid", f"{where}: a file name in the same folder",
                              [(where, "not a plain file name")])  # fmt: skip
            if file not in files:
                raise _Wait(f"{where}: {file} has not arrived")
            if now - files[file] < self.settle_s:
                raise _Wait(f"{where}: {file} is still being written")
            data = (self.root / file).read_bytes()
            # an upload cut short lacks the end-of-image marker (some cameras pad with zeros)
            if not data.rstrip(b"\x00").endswith(b"\xff\xd9"):
                raise _Wait(f"{where}: {file} is not a complete JPEG")
            uploads.append(Upload(str(entry.get("role")), data, where))
            images.append(file)
        message = {k: v for k, v in doc.items() if k != "images"}
        if claims or "capture_id" in doc:
            message["images"] = claims
        return message, uploads, images

    def _move(self, names: list[str], to: str) -> None:
        """Move a set into ``to``: journalled first, so a crash mid-way is finished later."""
        entry = self.root / JOURNAL / f"{uuid.uuid4().hex}.json"
        _write_atomically(entry, json.dumps({"to": to, "files": names}).encode())
        self._replay(entry)

    def _finish_moves(self) -> None:
        for entry in sorted((self.root / JOURNAL).glob("*.json")):
            self._replay(entry)

    def _replay(self, entry: Path) -> None:
        plan = json.loads(entry.read_bytes())
        for name in plan["files"]:
            src = self.root / name
            if src.exists():
                os.replace(src, self.root / plan["to"] / name)
        entry.unlink()


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
