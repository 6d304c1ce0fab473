"""The waterway detection stage: water.ais + water.camera → water.detections.

The detectors (water_detect) decide over a span of time, so the stage keeps what it has read
and decides on AIS time, never on the clock: a capture at t is decided once AIS reports dated
after t + ``margin`` have come (the association window and a crossing step, or half the
receiver-health window, beyond it), so that a track crossing the line just after the capture,
and the receivers' health around it, are known before a vessel is called dark. Findings that
need no capture (gaps, two places at once, static data, 冲关, night dredging) are decided on the
same horizon: each batch of decisions takes those dated in (previous horizon, new horizon], so
every finding is sent once, however the spans overlap. An identity clash is found again at
every report while it lasts; its findings of one local day are one episode with one id
(water_detect.CLASH_KINDS), so the lead it makes does not depend on which of its reports a
batch, a partition or a restart happened to show first. After a restart, a finding of the
reports read again that was decided before (dated up to the restored horizon) marks its
episode as sent, so a clash that spans the crash is not sent again.

What is kept between batches: the reports of the last ``keep`` of AIS time, and for older ones
the last position and the last static report of each MMSI (for ``memory_s``), so that a gap
longer than the window (a vessel silent for hours inside a section) still has its first end.
:meth:`held` keeps the offsets of undecided captures and of the reports in the window
uncommitted; the older per-MMSI reports are not held back (a crash loses only the findings that
span it, never makes one up: without history, receivers count as degraded and a capture is not
called dark).

The stage needs the whole reach: a vessel is dark only when no receiver heard it. So it reads
``water.ais`` and ``water.camera`` whole, each one partition (``events.WHOLE_TOPICS``, with the
raw lines they come from), in one process; a second process in the group gets no partition and
stands by. AIS time is a
watermark: the latest receive time read, per partition; over several partitions (a topic made
before they were one) the lowest of them over every partition the stage is assigned
(``assigned``, told by the runner), so a partition read ahead of the others never decides a
capture whose reports are still in another — and one that gets no report holds it back. A
process assigned captures but no AIS decides nothing. Reports dated further ahead of their
broker time than ``max_clock_ahead_s`` do not move it (a receiver's clock fault must not decide
captures early). It is one time for the whole reach: a receiver whose feed lags far behind the
others can make a capture look dark, and then also counts as degraded. A capture that comes
after the AIS around it was let go (``keep_ms`` before the decided time) is a dead letter with
that reason: decided on what is left, a missing crossing would make its vessel look dark.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from pydantic import ValidationError

from events.stage import (
    POISON,
    BaseStage,
    Incoming,
    Outgoing,
    StageResult,
    dead_letter,
    poison_letter,
    stops_batch,
    validation_reason,
)
from events.water import (
    WATER_AIS,
    WATER_CAMERA,
    WATER_DETECTIONS,
    AisReport,
    VesselCapture,
    WaterDetection,
    WaterRegistry,
)

from .hull import HullReader
from .water_detect import POSITION_TYPES, STATIC_TYPES, WaterDetector, WaterSettings

log = logging.getLogger("offsite.water")

Pos = tuple[str, int, int]  # topic, partition, offset


@dataclass(frozen=True, slots=True)
class _Kept:
    ms: int
    report: AisReport
    pos: Pos


def _ms(item: AisReport | VesselCapture | WaterDetection) -> int:
    return round(item.ts.timestamp() * 1000)


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat()


class WaterDetectionStage(BaseStage):
    name = "water.detect"

    def __init__(
        self,
        registry: WaterRegistry,
        settings: WaterSettings | None = None,
        *,
        topic_prefix: str = "",
        max_clock_ahead_s: float = 300.0,
        memory_s: float = 86_400.0,
        hull_reader: HullReader | None = None,
        load_image: Callable[[str], bytes] | None = None,
        min_hull_confidence: float = 0.8,
    ) -> None:
        """With ``hull_reader`` (and ``load_image`` to fetch a blob), a capture with images but
        no ``hull_text`` has its hull name read by OCR from its first image (the side view if
        it has one); a read below ``min_hull_confidence``, or none, leaves it without a name."""
        self.reg = registry
        self.hull_reader, self.load_image = hull_reader, load_image
        self.min_hull_confidence = min_hull_confidence
        self.unread: list[str] = []  # captures accepted in this batch, to read the hull of
        self.detector = WaterDetector(registry, settings)
        s = self.detector.s
        # a capture at t needs the crossings within the window (each with the report after
        # it, a step later at most) and the receivers' health over [t − window, t + window]
        # (counted over half the health window beyond each end)
        self.margin_ms = round(
            (s.window_s + max(s.crossing_max_step_s, s.health_window_s / 2)) * 1000
        )
        longest = [sec.max_gap_s for sec in registry.sections]
        longest += [z.min_dwell_s + s.loiter_max_step_s for z in registry.no_dredging_zones]
        self.keep_ms = 2 * self.margin_ms + round(max(longest, default=0.0) * 1000)
        self.memory_ms = round(memory_s * 1000)
        self.max_ahead_ms = round(max_clock_ahead_s * 1000)
        self.ais_topic = topic_prefix + WATER_AIS
        self.camera_topic = topic_prefix + WATER_CAMERA
        self.out_topic = topic_prefix + WATER_DETECTIONS
        self.inputs: tuple[str, ...] = (self.ais_topic, self.camera_topic)
        self.window: list[_Kept] = []  # reports of the last keep_ms of AIS time
        self.last_position: dict[int, _Kept] = {}  # older than the window, per MMSI
        self.last_static: dict[int, _Kept] = {}
        self.captures: dict[str, tuple[VesselCapture, Pos]] = {}  # undecided, by capture id
        self.partition_ms: dict[tuple[str, int], int] = {}  # latest trusted time per partition
        self.ais_partitions: frozenset[tuple[str, int]] | None = None  # assigned (None: unknown)
        self.horizon_ms: int | None = None  # everything up to here has been decided
        # detection id → its time: an identity clash is found again at every report of its
        # episode (one id, water_detect.CLASH_KINDS), sent with the first
        self.sent: dict[str, int] = {}
        self.sent_ms = max(round(memory_s * 1000), round(s.same_clash_s * 1000))
        # captures the broker has and this stage has not read yet (told by the runner), and
        # the latest capture time read: while there are some, AIS time decides no later than
        # that, or AIS read ahead would be pruned before the captures it explains come
        self.camera_behind = False
        self.camera_ms: int | None = None
        self.poisoned = 0  # messages dead-lettered for an exception, not yet in the metrics
        self.read_to: dict[tuple[str, int], int] = {}  # next offset to read, per partition
        self.replayed: dict[tuple[str, int], int] = {}  # read before a restart, up to here
        self.settled = False  # the last idle decided nothing: all read is done with

    # --- input ---------------------------------------------------------------------------

    async def start(self) -> None:
        if self.hull_reader is not None:
            await asyncio.to_thread(self.hull_reader.load)

    async def process(self, batch: list[Incoming]) -> StageResult:
        self.settled = False
        dead = [d for msg in batch if (d := self._accept(msg)) is not None]
        for msg in batch:
            self.read_to[(msg.topic, msg.partition)] = msg.offset + 1
        await self._read_hulls()
        return self._result(self._decide(), dead)

    async def idle(self) -> StageResult:
        """Nothing more to read for now: decide what AIS time allows (the runner has said no
        capture is left unread). One that decides nothing leaves the stage settled: what it
        holds waits on later AIS time (:meth:`checkpoint`)."""
        found = self._decide()
        self.settled = not found
        return self._result(found, [])

    def _result(self, found: list[WaterDetection], dead: list[Outgoing]) -> StageResult:
        out = [Outgoing(self.out_topic, d.site_id.encode(), d.to_json()) for d in found]
        observed: list[tuple[str, tuple[str, ...], float]] = [
            ("detections", (d.detector, d.site_id), 1.0) for d in found
        ]
        if self.poisoned:
            observed.append((POISON, (self.name,), self.poisoned))
            self.poisoned = 0
        return StageResult(out=out, dead=dead, observed=observed)

    def _accept(self, msg: Incoming) -> Outgoing | None:
        """:meth:`_take` of one message; one it raises on is a dead letter with the exception
        (issue #28): the stage keeps tracks, so it never sees a message twice
        (events.stage.guarded)."""
        try:
            return self._take(msg)
        except Exception as exc:
            if stops_batch(exc):
                raise
            self.poisoned += 1
            return poison_letter(msg, exc, self.name)

    def _take(self, msg: Incoming) -> Outgoing | None:
        pos = (msg.topic, msg.partition, msg.offset)
        try:
            if msg.topic == self.ais_topic:
                report = AisReport.model_validate_json(msg.value)
                ms = _ms(report)
                self.window.append(_Kept(ms, report, pos))
                broker = msg.timestamp_ms
                if broker is None or ms <= broker + self.max_ahead_ms:
                    tp = (msg.topic, msg.partition)
                    self.partition_ms[tp] = max(self.partition_ms.get(tp, ms), ms)
                return None
            capture = VesselCapture.model_validate_json(msg.value)
        except ValidationError as exc:
            return dead_letter(msg, validation_reason(exc), self.name)
        cp = self.reg.checkpoint(capture.checkpoint_id)
        if cp is None:
            why = (
                f"checkpoint_id: unknown checkpoint {capture.checkpoint_id!r} (not in the registry)"
            )
            return dead_letter(msg, why, self.name)
        if capture.camera_id != cp.camera_id:
            why = f"camera_id: {capture.camera_id!r} is not the camera of checkpoint {cp.id}"
            return dead_letter(msg, why, self.name)
        ms = _ms(capture)
        self.camera_ms = ms if self.camera_ms is None else max(self.camera_ms, ms)
        horizon = self.horizon_ms
        if horizon is not None and ms <= horizon and msg.offset < self.replayed.get(pos[:2], 0):
            return None  # decided before a restart (restore): read again only as it was held
        if horizon is not None and ms - self.margin_ms < horizon - self.keep_ms:
            # the AIS around it is no longer all here: a crossing could be missing from what
            # is left, and the vessel taken for dark; it is decided by no part of that
            why = (f"capture at {capture.ts.isoformat()} came after the AIS time around it was "
                   f"let go (AIS is decided up to {_iso(horizon)}, and kept "
                   f"{self.keep_ms / 1000:g} s before that): it cannot be tied to a track")  # fmt: skip
            return dead_letter(msg, why, self.name)
        if capture.capture_id not in self.captures:
            self.captures[capture.capture_id] = (capture, pos)
            if capture.images and capture.hull_text is None:
                self.unread.append(capture.capture_id)
        return None

    async def _read_hulls(self) -> None:
        """The hull names of the captures just accepted, read by OCR in a worker thread."""
        todo = [self.captures[cid] for cid in self.unread]
        self.unread = []
        if self.hull_reader is None or self.load_image is None or not todo:
            return
        read = await asyncio.to_thread(lambda: [self._read_hull(cap) for cap, _ in todo])
        for cap, (_, pos) in zip(read, todo, strict=True):
            self.captures[cap.capture_id] = (cap, pos)

    def _read_hull(self, cap: VesselCapture) -> VesselCapture:
        assert self.hull_reader is not None and self.load_image is not None
        image = next((i for i in cap.images if i.role == "side"), cap.images[0])
        try:
            data = self.load_image(image.uri)
        except (OSError, ValueError) as exc:  # no name is read: never a mismatch
            why = f"capture {cap.capture_id}: {image.uri}: {exc}"
            log.warning("hull image unreadable", extra={"stage": self.name, "reason": why})
            return cap
        try:
            got = self.hull_reader.read(data)
        except Exception as exc:  # an image the reader cannot take: no name is read, as above
            why = f"capture {cap.capture_id}: {image.uri}: {type(exc).__name__}: {exc}"
            log.warning("hull image unreadable", extra={"stage": self.name, "reason": why})
            return cap
        if got.name is None or got.confidence < self.min_hull_confidence:
            what = "no vessel name" if got.name is None else f"low confidence {got.confidence}"
            why = f"capture {cap.capture_id}: {what} in {got.raw or 'nothing'}"
            log.info("no hull name read", extra={"stage": self.name, "reason": why})
            return cap
        return cap.model_copy(update={"hull_text": got.name, "hull_confidence": got.confidence})

    # --- deciding on AIS time ------------------------------------------------------------

    def behind(self, partitions: Iterable[tuple[str, int]]) -> None:
        """The partitions with records still to read (from the runner, before each batch)."""
        self.camera_behind = any(topic == self.camera_topic for topic, _ in partitions)

    def assigned(self, partitions: Iterable[tuple[str, int]]) -> None:
        """The partitions this stage reads (from the runner): AIS time waits on all of them."""
        self.ais_partitions = frozenset(tp for tp in partitions if tp[0] == self.ais_topic)

    def ais_time(self) -> int | None:
        """The watermark: the lowest latest time over the assigned partitions of water.ais
        (over those read from, when the assignment is not known), or None."""
        # a runner that has told the assignment: exactly those partitions, and none while it
        # has none (before the group is joined: deciding on the partitions read so far would
        # run ahead of the others); no runner (tests, offline): the partitions read.
        wanted = self.partition_ms.keys() if self.ais_partitions is None else self.ais_partitions
        if not wanted or any(tp not in self.partition_ms for tp in wanted):
            return None
        return min(self.partition_ms[tp] for tp in wanted)

    def _decide(self) -> list[WaterDetection]:
        """The findings AIS time now allows, each once; the horizon moves up to it."""
        ais_ms = self.ais_time()
        if ais_ms is None:
            return []
        cut = ais_ms - self.margin_ms
        if self.camera_behind:
            if self.camera_ms is None:
                return []
            cut = min(cut, self.camera_ms)
        if self.horizon_ms is not None and cut <= self.horizon_ms:
            return []
        ready = [c for c, _ in self.captures.values() if _ms(c) <= cut]
        found = self.detector.detect(self._reports(), ready)
        low = self.horizon_ms
        decided = {c.capture_id for c in ready}
        if self.replayed and low is not None:  # decided before a restart: its episode was sent
            earlier = [d for d in found.detections if d.capture_id is None and _ms(d) <= low]
            read_at = self._positions() if earlier else {}
            for det in earlier:
                pos = [read_at.get(i) for i in det.report_ids]
                if pos and all(p is not None and p[2] < self.replayed.get(p[:2], 0) for p in pos):
                    self.sent.setdefault(det.detection_id, _ms(det))
        out = []
        for det in found.detections:
            ms = _ms(det)
            if det.capture_id is not None:
                if det.capture_id not in decided:
                    continue
            elif ms > cut or (low is not None and ms <= low):
                continue
            if det.detection_id in self.sent:
                continue
            self.sent[det.detection_id] = ms
            out.append(det)
        for what, why in found.suppressed:
            if what in decided:  # a capture not called dark, and why (track ones repeat)
                log.info("capture not called dark", extra={"capture_id": what, "reason": why})
        for cid in decided:
            del self.captures[cid]
        self.horizon_ms = cut
        self._prune(cut)
        return out

    def _positions(self) -> dict[str, Pos]:
        """Where each report kept was read, by report id (to tell the reports read again after
        a restart: :meth:`restore`)."""
        known: dict[str, Pos] = {k.report.report_id: k.pos for k in self.window}
        known |= {k.report.report_id: k.pos for k in self.last_position.values()}
        known |= {k.report.report_id: k.pos for k in self.last_static.values()}
        return known

    def _reports(self) -> list[AisReport]:
        older = {id(k): k for k in (*self.last_position.values(), *self.last_static.values())}
        return [k.report for k in sorted(older.values(), key=lambda k: k.ms)] + [
            k.report for k in self.window
        ]

    def _prune(self, cut: int) -> None:
        edge = cut - self.keep_ms
        if self.window and min(k.ms for k in self.window) < edge:
            for k in (k for k in self.window if k.ms < edge):
                self._remember(k)
            self.window = [k for k in self.window if k.ms >= edge]
        forget = cut - self.memory_ms
        for kept in (self.last_position, self.last_static):
            for m in [m for m, k in kept.items() if k.ms < forget]:
                del kept[m]
        self.sent = {i: ms for i, ms in self.sent.items() if ms >= cut - self.sent_ms}

    def _remember(self, k: _Kept) -> None:
        r = k.report
        for types, kept in ((POSITION_TYPES, self.last_position), (STATIC_TYPES, self.last_static)):
            if r.msg_type in types and (r.mmsi not in kept or kept[r.mmsi].ms <= k.ms):
                kept[r.mmsi] = k

    # --- the runner's view ---------------------------------------------------------------

    def held(self) -> dict[tuple[str, int], int]:
        low: dict[tuple[str, int], int] = {}
        positions: Iterable[Pos] = [p for _, p in self.captures.values()]
        for topic, partition, offset in [*positions, *(k.pos for k in self.window)]:
            tp = (topic, partition)
            low[tp] = min(low.get(tp, offset), offset)
        return low

    def checkpoint(self) -> dict[tuple[str, int], str]:
        """Text committed with each partition's offset (which stays behind what is held): how
        far it was read (``to``), up to when everything was decided (``horizon``), and, once
        settled, ``settled_to``: read to there and done with it, what is held waiting on later
        AIS time — the end of input, seen by the offset probe as no lag (kafka.OffsetProbe)."""
        out = {}
        for tp, to in sorted(self.read_to.items()):
            mark: dict[str, int | None] = {"to": to, "horizon": self.horizon_ms}
            if self.settled:
                mark["settled_to"] = to
            out[tp] = json.dumps(mark, separators=(",", ":"))
        return out

    def restore(self, checkpoints: dict[tuple[str, int], str]) -> None:
        """The partitions in ``checkpoints`` are read again from their committed offsets (the
        oldest record held): the horizon comes back, so what was decided before is not decided
        (and sent) again; its captures, read again, are left out."""
        for tp, text in checkpoints.items():
            try:
                got = json.loads(text)
                to, horizon = int(got["to"]), got["horizon"]
            except (ValueError, TypeError, KeyError):
                continue  # committed without a checkpoint: decided again
            self.replayed[tp] = to
            if horizon is not None:
                self.horizon_ms = max(self.horizon_ms or int(horizon), int(horizon))

    def waits_on_input(self) -> bool:
        """What this stage holds waits on later AIS time, not on the clock: having read its
        inputs to the end, it has done all it can (a capture is decided only once AIS time
        has passed it by the margin)."""
        return True
