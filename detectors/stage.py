"""The detection stage: road.wim + road.anpr → detections (one per overloaded pass, or per
pass the device did not weigh whole)."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from pydantic import ValidationError

from events import (
    ALERTS,
    DETECTIONS,
    GOODS_VEHICLE_TYPES,
    HARMLESS_FLAGS,
    HEAVY_PLATE_COLORS,
    LEADS,
    MAX_AXLES,
    ROAD_ANPR,
    ROAD_REWEIGH,
    ROAD_WIM,
    UNENFORCEABLE_FLAGS,
    AnprCapture,
    Detection,
    Device,
    DeviceAlert,
    Lead,
    Registry,
    Reweigh,
    Sighting,
    WimRecord,
    derive_id,
)
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

from . import axles, decode, overload
from .drift import DriftState, DriftStore, DriftWatch, match_reweighs
from .limits import CONFIGURATIONS, readings
from .match import Match, Matcher
from .plates import PlateReader, agree, normalise

HEAVY_KG = 12_000
SMALL_VEHICLE_KG = 4_500  # the most a small vehicle (小型汽车, blue plate) may weigh (GB 7258)


class WeighingStore(Protocol):
    async def write_weighings(self, rows: list[tuple[str, str, str, dt.datetime, bool]]) -> None:
        """(device_id, record_id, site_id, ts, overloaded) of every weighing judged; a row
        written before is left as it is (a batch read again counts once)."""


class DetectionStage(BaseStage):
    """A record this stage raises on never stops it (issue #28), and is never seen twice: the
    matcher keeps state, so the stage isolates records itself rather than be called again on
    them (events.stage.guarded). A message that raises while it is taken in is a dead letter
    with the exception; a batch of matches whose assessment raises is assessed again one match
    at a time — the matcher has let them go, so none is matched twice, and a detection's id
    derives from its record, so the good ones come out as in the batch — and a match that
    raises alone is a dead letter of its WIM record (as validated) with the exception.

    The columnar path is kept from raising on figures by the contract: events.models bounds
    every weight, spacing, count and date (an axle ≤ 100 t, 64 axles, 2000–2099), so no sum
    leaves int64 and no date arithmetic leaves the calendar; the fallback above is for the rest
    (a plate image the second read cannot take, a bug)."""

    name = "detect"

    def __init__(
        self,
        registry: Registry,
        *,
        window_s: float = 1.0,
        min_plate_confidence: float = 0.9,
        min_gap_s: float = 1.0,
        topic_prefix: str = "",
        plate_reader: PlateReader | None = None,
        load_image: Callable[[str], bytes] | None = None,
        max_clock_ahead_s: float = 300.0,
        drift_store: DriftStore | None = None,
        weighings: WeighingStore | None = None,
    ) -> None:
        """With ``plate_reader`` (and ``load_image`` to fetch a blob), every enforceable
        overload's plate is read a second time from its plate image; a plate the second read
        does not confirm is "uncertain" and goes to review. A pass dated more than
        ``max_clock_ahead_s`` after the broker received it has a device clock fault. With
        ``weighings``, every pass judged is written there (the statistics' vehicles weighed and
        overloaded) before its batch's detections are sent."""
        self.registry = registry
        self.observed: list[tuple[str, tuple[str, ...], float]] = []  # for the metrics
        self.observe = True  # False: report nothing for the metrics (bench.metrics)
        self.max_clock_ahead_ms = round(max_clock_ahead_s * 1000)
        self.min_plate_confidence = min_plate_confidence
        self.min_gap_ms = round(min_gap_s * 1000)
        self.plate_reader, self.load_image = plate_reader, load_image
        self.wim_topic, self.anpr_topic = topic_prefix + ROAD_WIM, topic_prefix + ROAD_ANPR
        self.out_topic = topic_prefix + DETECTIONS
        self.lead_topic = topic_prefix + LEADS
        self.alert_topic = topic_prefix + ALERTS
        self.drift, self.drift_store = DriftWatch(registry), drift_store
        self.weighings = weighings
        # static reweighs (精检) waiting for the site's weighings to pass their time, and the
        # site's recent weighings with a plate read, for the drift watch's second statistic
        self.reweigh_topic = topic_prefix + ROAD_REWEIGH
        self.reweighs: list[Reweigh] = []
        self.reweigh_pos: dict[str, tuple[str, int, int]] = {}  # where each waiting one was read
        self.weighed: dict[str, list[tuple[str, WimRecord]]] = {}
        self.unsaved: list[tuple[str, WimRecord]] = []  # weighed, not yet in the drift store
        self.partitions: frozenset[tuple[str, int]] = frozenset()  # assigned (runner)
        self.reload = False  # a partition came from another worker: read the weighings again
        self.latest: dict[str, dt.datetime] = {}  # the latest weighing of each site
        self.inputs: tuple[str, ...] = (self.wim_topic, self.anpr_topic, self.reweigh_topic)
        self.matcher = Matcher(window_s)
        self.poisoned = 0  # messages dead-lettered for an exception, not yet in the metrics
        self._checked: dict[tuple[str, str, str], tuple[int, str | None]] = {}

    async def start(self) -> None:
        if self.drift_store is not None:  # the watch continues where it stopped
            await self._load_kept()
        if self.plate_reader is not None:
            await asyncio.to_thread(self.plate_reader.load)

    async def _load_kept(self) -> None:
        """The drift watch's states and the weighings a reweigh read from now on may be of, as
        the drift store has them (another worker's too: after a restart or a rebalance, the
        lanes and sites it read before are read here)."""
        self.reload = False
        if self.drift_store is None:
            return
        saved = await self.drift_store.drift_states()
        self.drift.states = {k: DriftState.load(v) for k, v in saved.items()}
        known = {r.record_id for site in self.weighed.values() for _, r in site}
        for plate, r in await self.drift_store.reweigh_weighings():
            if r.record_id not in known:
                self.weighed.setdefault(r.site_id, []).append((plate, r))
                self.latest[r.site_id] = max(self.latest.get(r.site_id, r.ts), r.ts)

    async def process(self, batch: list[Incoming]) -> StageResult:
        if self.reload:
            await self._load_kept()
        dead = [d for msg in batch if (d := self._accept(msg)) is not None]
        return await self._result(self.matcher.ready(), dead)

    async def idle(self) -> StageResult:
        """Nothing came for a while: match everything if the broker has nothing more for this
        reader, else only what the windows allow (a pause in a backlog decides nothing)."""
        if self.reload:
            await self._load_kept()
        return await self._result(self.matcher.ready(flush=not self.matcher.waiting))

    def behind(self, partitions: frozenset[tuple[str, int]]) -> None:
        """The partitions the broker has more records of (from the runner, before each poll's
        work): their topics are not silent, however long they have been quiet."""
        kinds = {self.wim_topic: "wim", self.anpr_topic: "anpr"}
        self.matcher.waiting = frozenset(kinds[t] for t, _ in partitions if t in kinds)

    def assigned(self, partitions: frozenset[tuple[str, int]]) -> None:
        self.matcher.keep_only(partitions)
        self.reload |= not partitions <= self.partitions  # what another worker kept
        self.partitions = partitions

    def checkpoint(self) -> dict[tuple[str, int], str]:
        return self.matcher.checkpoint()

    def restore(self, checkpoints: dict[tuple[str, int], str]) -> None:
        self.matcher.restore(checkpoints)

    async def _result(
        self, matches: list[Match], dead: list[Outgoing] | None = None
    ) -> StageResult:
        self.observed = []
        out, poisoned = await self._assess_guarded(matches)
        dead = (dead or []) + poisoned
        if not self.observe:
            return StageResult(out=out, dead=dead)
        if self.poisoned:
            self.observed.append((POISON, (self.name,), self.poisoned))
            self.poisoned = 0
        passes = Counter((m.record.site_id, "yes" if m.capture else "no") for m in matches)
        self.observed += [("wim_passes", labels, n) for labels, n in sorted(passes.items())]
        return StageResult(out=out, dead=dead, observed=self.observed)

    async def _assess_guarded(self, matches: list[Match]) -> tuple[list[Outgoing], list[Outgoing]]:
        """:meth:`assess` of the matches, and dead letters of those it raises on alone."""
        mark = len(self.observed)
        try:
            return await self.assess(matches), []
        except Exception as exc:
            if stops_batch(exc):
                raise
        del self.observed[mark:]  # what the failed batch reported is reported again below
        out, dead = [], []
        for m in matches:
            mark = len(self.observed)
            try:
                out += await self.assess([m])
            except Exception as exc:
                if stops_batch(exc):
                    raise
                del self.observed[mark:]
                topic, partition, offset = m.position
                value = m.record.to_json()
                msg = Incoming(topic, partition, offset, m.record.site_id.encode(), value)
                dead.append(poison_letter(msg, exc, self.name))
                self.poisoned += 1
        return out, dead

    def held(self) -> dict[tuple[str, int], int]:
        """The matcher's lowest buffered offsets, and those of the reweighs still waiting for
        their site's weighings: a crash reads them again instead of losing them."""
        low = self.matcher.held()
        for topic, part, off in self.reweigh_pos.values():
            low[(topic, part)] = min(low.get((topic, part), off), off)
        return low

    def _accept(self, msg: Incoming) -> Outgoing | None:
        """Validate one message into the matcher; a dead letter if it cannot be used."""
        pos = (msg.topic, msg.partition, msg.offset)
        try:
            if msg.topic == self.wim_topic:
                record = decode.wim_record(msg.value)
                problem = self.check_registry(record.site_id, record.device_id, "wim", record.lane)
                if problem is None:
                    self.matcher.add_wim(record, pos, msg.timestamp_ms)
            elif msg.topic == self.reweigh_topic:
                rw = Reweigh.model_validate_json(msg.value)
                problem = _reweigh_problem(self.registry, rw)
                if problem is None:
                    self.reweighs.append(rw)
                    self.reweigh_pos[rw.record_id] = pos
            else:
                capture = AnprCapture.model_validate_json(msg.value)
                problem = self.check_registry(
                    capture.site_id, capture.camera_id, "anpr", capture.lane
                )
                if problem is None:
                    self.matcher.add_capture(capture, pos)
        except ValidationError as exc:
            problem = validation_reason(exc)
        except Exception as exc:
            if stops_batch(exc):
                raise
            self.poisoned += 1
            return poison_letter(msg, exc, self.name)
        return None if problem is None else dead_letter(msg, problem, self.name)

    def check_registry(self, site_id: str, device_id: str, kind: str, lane: int) -> str | None:
        key = (site_id, device_id, kind)
        if key not in self._checked:  # the registry is fixed for the stage's life
            self._checked[key] = self._site_device(*key)
        lanes, problem = self._checked[key]
        if problem is None and lane > lanes:
            return f"lane: site {site_id} has {lanes} lanes, got lane {lane}"
        return problem

    def _site_device(self, site_id: str, device_id: str, kind: str) -> tuple[int, str | None]:
        """(lanes of the site, why the site or device cannot be used or None)."""
        site = self.registry.site(site_id)
        if site is None:
            return 0, f"site_id: unknown site {site_id!r} (not in the registry)"
        device = self.registry.device(device_id)
        if device is None or device_id not in site.devices or device.type != kind:
            return 0, f"device: {device_id!r} is not a {kind} device of site {site_id}"
        return site.lanes, None

    def _assess(self, m: Match) -> _Pass:
        """Everything about one pass that makes its figures a fact or a doubt."""
        r, cap = m.record, m.capture
        site, device = self.registry.site(r.site_id), self.registry.device(r.device_id)
        assert site is not None and device is not None and device.accuracy_class is not None
        day = site.local(r.ts).date()
        axle_sum = sum(r.axle_weights_kg)
        plate_status, plate_why = self._plate_status(m, min(r.gross_weight_kg, axle_sum))
        known = self.registry.vehicle(normalise(cap.plate), cap.plate_color) if cap else None
        kind = r.vehicle_kind or (known.body if known and plate_status == "read" else None)
        config, other = readings(r.axle_count, kind, r.drive_axles)
        evasion = self._evasion(m, device)
        cert = device.certificate
        certified = cert is not None and cert.valid_on(day)
        if m.received_ms is not None and _ms(r.ts) - m.received_ms > self.max_clock_ahead_ms:
            received = dt.datetime.fromtimestamp(m.received_ms / 1000, dt.UTC)
            evasion.append(f"clock_ahead: the pass is dated {r.ts.isoformat()}, after it was "
                          f"received ({received.isoformat(timespec='seconds')}): a device clock fault")  # fmt: skip
        incomplete = []
        if 0 in r.axle_weights_kg:  # rare: the comprehension only then
            incomplete = [f"axle {k + 1} weighed 0 kg: the device did not weigh the vehicle "
                          "whole" for k, w in enumerate(r.axle_weights_kg) if w == 0]  # fmt: skip
        if r.axle_count > MAX_AXLES:
            incomplete.append(f"{r.axle_count} axles: more than {MAX_AXLES} is a large-cargo "
                              "transport (大件运输) that needs a permit")  # fmt: skip
        return _Pass(config, other, min(r.gross_weight_kg, axle_sum), axle_sum, evasion,
                     certified, plate_status, plate_why, incomplete)  # fmt: skip

    def _evasion(self, m: Match, device: Device) -> list[str]:
        """Why the pass was not a steady, single, centred weighing: any flag the device set
        (but the harmless ones), a vehicle too close behind another, or a speed outside the
        device's verified range."""
        r = m.record
        out = [f"flag:{f}" if f in UNENFORCEABLE_FLAGS else f"flag:{f} (unknown to offsite)"
               for f in sorted(set(r.flags) - HARMLESS_FLAGS)] if r.flags else []  # fmt: skip
        if m.gap_ms is not None and m.gap_ms < self.min_gap_ms and "flag:tailgating" not in out:
            out.append(f"tailgating: {m.gap_ms / 1000:.2f} s behind the vehicle before it")
        low, high = device.speed_range_kmh or (0.0, float("inf"))
        if not low <= r.speed_kmh <= high:
            out.append(f"speed {r.speed_kmh:g} km/h outside the device's {low:g}–{high:g} km/h")
        return out

    def _plate_status(self, m: Match, measured_kg: int) -> tuple[str, str | None]:
        """How far the capture's plate can be trusted to be this vehicle's, and why not."""
        cap = m.capture
        if cap is None:
            return "no_capture", None
        if m.ambiguous:
            return "ambiguous", None
        if cap.plate is None:
            return "unreadable", None
        if cap.confidence < self.min_plate_confidence:
            return "low_confidence", None
        if normalise(cap.plate) is None:
            return "invalid", f"camera read {cap.plate!r} is not a valid plate"
        if measured_kg > SMALL_VEHICLE_KG and cap.plate_color is None:
            # a plate is a vehicle only with its colour (a yellow and a blue 湘A12345 are two)
            return "not_this_vehicle", "the camera did not report the plate colour"
        if measured_kg > SMALL_VEHICLE_KG and cap.plate_color not in HEAVY_PLATE_COLORS:
            return "not_this_vehicle", (
                f"a {cap.plate_color} plate cannot be a goods vehicle's of {measured_kg:,} kg"
            )
        if cap.vehicle_type is not None and cap.vehicle_type not in GOODS_VEHICLE_TYPES:
            return "not_this_vehicle", f"the camera saw a {cap.vehicle_type!r}, not a goods vehicle"
        return "read", None

    async def assess(self, matches: list[Match]) -> list[Outgoing]:
        """Detections (and police leads) of matched passes: the one place that decides what a
        pass's figures are worth, also for `offsite rules evaluate`."""
        if not matches:
            return []
        passes = [self._assess(m) for m in matches]
        raised = self.drift.observe(m.record for m in matches)
        by_reweigh, reweighed = self._reweighed(matches, passes)
        raised += by_reweigh
        alerts = [self._drift_alert(r, state) for r, state in raised]
        if self.drift_store is not None:  # kept per device lane, for a restart
            # the lanes of this batch's weighings, and of the earlier ones reweighed now
            seen = {(r.device_id, r.lane) for r in [m.record for m in matches] + reweighed}
            await self.drift_store.write_drift_states(
                {k: s.dump() for k, s in self.drift.states.items() if k in seen}
            )
            if self.unsaved:  # and the weighings kept for reweighs, for a restart
                window = dt.timedelta(seconds=self.drift.rules.reweigh_window_s)
                sites = sorted({r.site_id for _, r in self.unsaved})
                since = {site: self.latest[site] - window for site in sites}
                await self.drift_store.keep_reweigh_weighings(self.unsaved, since)
        self.unsaved = []
        for m, p in zip(matches, passes, strict=True):
            if (why := self.drift.blocked(m.record)) is not None:
                p.evasion.append(why)  # not enforceable: review, with the drift figure
        cols = overload.WimColumns(
            np.array([p.measured_kg for p in passes], np.int64),
            np.array([overload.CONFIG_INDEX[p.config] for p in passes], np.int64),
            np.array([self._permille(m) for m in matches], np.int64),
            np.array([not p.evasion for p in passes], bool),
            np.array([p.certified for p in passes], bool),
            np.array([p.plate_status == "read" for p in passes], bool),
        )
        res = overload.detect(cols)
        other = np.array([overload.CONFIG_INDEX[p.other or p.config] for p in passes], np.int64)
        over_other = cols.gross_kg - res.tolerance_kg - overload.LIMITS[other]
        whole = np.array([not p.incomplete for p in passes], bool)
        groups = axles.detect(_axle_columns(matches))
        worst, net = axles.worst_after_margin(groups, cols.class_permille)
        gross_over = res.overloaded | (over_other > 0)
        # an axle group over its limit decides unless the gross is over under the reading most
        # favourable to the party (the limit the rules decide at, issue #29 must-have 3)
        axle_over = (net > 0) & ~res.overloaded
        out = alerts + self._missing_plates(matches, cols, passes)
        rows = [int(i) for i in np.flatnonzero(gross_over | axle_over | ~whole)]
        clean = [matches[i] for i in rows
                 if whole[i] and cols.steady[i] and cols.certified[i] and cols.plate_ok[i]]  # fmt: skip
        doubts = await self._verify_plates(clean)
        now = dt.datetime.now(dt.UTC)
        for i in rows:
            group = _group(groups, i, int(worst[i])) if axle_over[i] else None
            doubt = doubts.get(matches[i].record.record_id)
            det = self._detection(matches[i], passes[i], res, i, int(cols.class_permille[i]),
                                  doubt, group)  # fmt: skip
            if self.observe:
                self.observed.append(("detections", (det.detector, det.site_id), 1))
                self.observed.append(("latency", ("detection",), (now - det.ts).total_seconds()))
            out.append(Outgoing(self.out_topic, det.site_id.encode(), det.to_json()))
        if self.weighings is not None:
            # over a limit under the reading most favourable to the party, as the rules decide
            over = res.overloaded | (net > 0)
            await self.weighings.write_weighings(
                [
                    (m.record.device_id, m.record.record_id, m.record.site_id, m.record.ts, bool(o))
                    for m, o in zip(matches, over, strict=True)
                ]
            )
        return out

    def _reweighed(
        self, matches: list[Match], passes: list[_Pass]
    ) -> tuple[list[tuple[WimRecord, DriftState]], list[WimRecord]]:
        """Static reweighs into the drift watch: a reweigh is matched once a weighing of its
        site after it has been assessed (so the choice among the weighings before it is final,
        and this batch's later weighings are already judged with its alarm)."""
        window = dt.timedelta(seconds=self.drift.rules.reweigh_window_s)
        touched = set()
        for m, p in zip(matches, passes, strict=True):
            if p.plate_status == "read" and m.capture and (plate := normalise(m.capture.plate)):
                site, ts = m.record.site_id, m.record.ts
                self.weighed.setdefault(site, []).append((plate, m.record))
                self.unsaved.append((plate, m.record))
                self.latest[site] = max(self.latest.get(site, ts), ts)
                touched.add(site)
        ready = [rw for rw in self.reweighs if rw.ts < self.latest.get(rw.site_id, rw.ts)]
        sites = {rw.site_id for rw in ready}
        pairs = match_reweighs(ready, [w for site in sites for w in self.weighed[site]],
                               self.drift.rules.reweigh_window_s)  # fmt: skip
        done = {rw.record_id for rw in ready}
        self.reweighs = [rw for rw in self.reweighs if rw.record_id not in done]
        for record_id in done:
            self.reweigh_pos.pop(record_id, None)
        for site in touched:  # no reweigh still to come needs older ones; one read again once
            cutoff = self.latest[site] - window
            kept = {r.record_id: (p, r) for p, r in self.weighed[site] if r.ts >= cutoff}
            self.weighed[site] = list(kept.values())
        return self.drift.reweighed(pairs), [r for _, r in pairs]

    def _drift_alert(self, r: WimRecord, state: DriftState) -> Outgoing:
        """The command center's alert: the device lane's weighings are no longer enforced."""
        since = state.since()
        assert since is not None
        alert = DeviceAlert(
            alert_id=derive_id("dal", r.device_id, "drift", str(r.lane), since.isoformat()),
            kind="device.raised", device_id=r.device_id, site_id=r.site_id, condition="drift",
            ts=since, reason=f"lane {r.lane}: {state.reason()}",
        )  # fmt: skip
        return Outgoing(self.alert_topic, r.device_id.encode(), alert.to_json())

    def _permille(self, m: Match) -> int:
        device = self.registry.device(m.record.device_id)
        assert device is not None and device.accuracy_class is not None
        return round(device.accuracy_class * 10)

    def _missing_plates(
        self, matches: list[Match], cols: overload.WimColumns, passes: list[_Pass]
    ) -> list[Outgoing]:
        """Heavy vehicles (measured gross ≥ 12 t, GB 7258's heavy class) with no readable plate:
        leads for transfer to the police (移送公安), with the capture's images when there is one.
        An unreadable plate the camera saw scores higher than a capture that never came (the
        camera may have failed)."""
        out = []
        for i in np.flatnonzero(cols.gross_kg >= HEAVY_KG):
            m, status = matches[int(i)], passes[int(i)].plate_status
            if status not in ("no_capture", "unreadable", "invalid"):
                continue
            r, cap = m.record, m.capture
            sightings = [] if cap is None else [Sighting(
                capture_id=cap.capture_id, site_id=cap.site_id, ts=cap.ts, plate=None,
                images=list(cap.images))]  # fmt: skip
            lead = Lead(
                lead_id=derive_id("lead", "plate_missing", r.site_id, r.device_id, r.record_id),
                kind="plate_missing", detector="plate.missing", detector_version=overload.VERSION,
                plate=None, site_id=r.site_id, ts=r.ts, score=0.9 if cap else 0.5,
                reasons=[f"{r.axle_count}-axle vehicle, {r.gross_weight_kg} kg, plate {status}"],
                sightings=sightings, record_id=r.record_id,
            )  # fmt: skip
            out.append(Outgoing(self.lead_topic, r.site_id.encode(), lead.to_json()))
        return out

    async def _verify_plates(self, matches: list[Match]) -> dict[str, str]:
        """record_id → why its plate is uncertain, for the matches a second read does not
        confirm. The OCR runs in a worker thread, once per batch."""
        if self.plate_reader is None or self.load_image is None or not matches:
            return {}
        reader, load = self.plate_reader, self.load_image

        def second_reads() -> dict[str, str]:
            doubts = {}
            for m in matches:
                assert m.capture is not None
                image = next((i for i in m.capture.images if i.role == "plate"), None)
                if image is None:
                    doubts[m.record.record_id] = "no plate image for a second read"
                    continue
                why = agree(
                    m.capture.plate, reader.read(load(image.uri)), self.min_plate_confidence
                )
                if why is not None:
                    doubts[m.record.record_id] = why
                agreed = "no" if why is not None else "yes"
                self.observed.append(("second_reads", (m.record.site_id, agreed), 1))
            return doubts

        return await asyncio.to_thread(second_reads)

    def _detection(
        self,
        m: Match,
        p: _Pass,
        res: overload.OverloadColumns,
        i: int,
        permille: int,
        doubt: str | None,
        group: dict[str, int] | None,
    ) -> Detection:
        """The detection of row ``i``: gross overload (or a vehicle not weighed whole), or
        (``group``) an axle group over its limit on a vehicle whose gross is within it."""
        r, cap = m.record, m.capture
        status = "uncertain" if doubt else p.plate_status
        reasons = list(p.evasion)
        if not p.certified:
            reasons.append("certificate_invalid_on_pass_date")
        if doubt:
            reasons.append(f"plate:uncertain: {doubt}")
        elif status != "read":
            reasons.append(f"plate:{status}" + (f": {p.plate_why}" if p.plate_why else ""))
        reasons += p.incomplete
        if p.measured_kg < r.gross_weight_kg:
            reasons.append(f"measured: the sum of the axles {p.axle_sum_kg:,} kg, lower than the "
                           f"reported gross {r.gross_weight_kg:,} kg")  # fmt: skip
        name, limit = CONFIGURATIONS[p.config][1], int(res.limit_kg[i])
        other_limit = other_name = None
        if p.other is not None and group is None:
            other_limit, other_name = CONFIGURATIONS[p.other]
            what = "body" if r.axle_count < 6 else "drive axles"
            reasons.append(f"{what} not reported: decided as {name} ({limit:,} kg), the reading "
                           f"most favourable to the party; as {other_name} the limit is "
                           f"{other_limit:,} kg")  # fmt: skip
        detector, version = (
            (axles.DETECTOR, axles.VERSION) if group else (overload.DETECTOR, overload.VERSION)
        )
        measured, tolerance, over = p.measured_kg, int(res.tolerance_kg[i]), int(res.overload_kg[i])
        if group is not None:
            measured, limit = group["load_kg"], group["limit_kg"]
            tolerance = -(-measured * permille // 1000)
            over = measured - tolerance - limit
        device = self.registry.device(r.device_id)
        assert device is not None and device.accuracy_class is not None
        enforceable = (
            not p.evasion and p.certified and p.plate_status == "read" and not p.incomplete
        )
        received = m.received_ms
        return Detection(
            detection_id=derive_id("det", detector, version, r.site_id, r.device_id, r.record_id),
            detector=detector,
            detector_version=version,
            record_id=r.record_id,
            capture_id=cap.capture_id if cap else None,
            site_id=r.site_id,
            device_id=r.device_id,
            lane=r.lane,
            ts=r.ts,
            plate=(normalise(cap.plate) or cap.plate) if cap else None,
            plate_color=cap.plate_color if cap else None,
            plate_status=status,  # type: ignore[arg-type]
            match_confidence=m.confidence,
            axle_count=r.axle_count,
            vehicle_kind="combination" if p.config.startswith("combination") else "rigid",
            drive_axles=r.drive_axles,
            configuration=p.config,
            accuracy_class=device.accuracy_class,
            certificate_number=device.certificate.number if device.certificate else None,
            measured_kg=measured,
            tolerance_kg=tolerance,
            limit_kg=limit,
            overload_kg=over,
            overloaded=over > 0 or (other_limit is not None and measured - tolerance > other_limit),
            enforceable=enforceable and doubt is None,
            reasons=reasons,
            wim=r.model_dump(mode="json"),
            capture=cap.model_dump(mode="json") if cap else None,
            images=list(cap.images) if cap else [],
            axle_group=group,
            other_limit_kg=other_limit,
            other_reading=other_name,
            whole=not p.incomplete,
            received_at=None
            if received is None
            else dt.datetime.fromtimestamp(received / 1000, dt.UTC),
        )


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs ~1.5 µs a pass more
class _Pass:
    """What one pass's figures rest on, assessed once per pass."""

    config: str  # Art. 3 configuration under the reading most favourable to the party
    other: str | None  # the other reading's, when a fact the limit rests on is not known
    measured_kg: int  # the lower of the reported gross and the sum of the axles
    axle_sum_kg: int
    evasion: list[str]  # why it was not a steady, single weighing (flags, gap, speed, clock)
    certified: bool  # the metrology certificate is valid on the site's local date of the pass
    plate_status: str
    plate_why: str | None
    incomplete: list[str]  # why the vehicle was not weighed whole


def _ms(ts: dt.datetime) -> int:
    return int(ts.timestamp() * 1000)


def _axle_columns(matches: list[Match]) -> axles.AxleColumns:
    """The axle loads and spacings of a batch, padded; tyres by the Art. 3 presumption and the
    drive axles right behind the steer axle (one, or the reported number). A vehicle with more
    axles than the padding keeps its count, so it is not judged. Columnar: each list of the
    batch is laid into its row in one scatter (:func:`_axle_columns_one` is the reference twin)."""
    records = [m.record for m in matches]
    n = len(records)
    count = np.array([r.axle_count for r in records], np.int64)
    weight = np.full((n, MAX_AXLES), -1, np.int64)
    spacing = np.full((n, MAX_AXLES), -1, np.int64)
    drive = np.zeros((n, MAX_AXLES), bool)
    fits = [r for r in records if r.axle_count <= MAX_AXLES]
    rows = np.flatnonzero(count <= MAX_AXLES)
    _scatter(weight, rows, [r.axle_weights_kg for r in fits])
    _scatter(spacing, rows, [r.axle_spacings_mm for r in fits])  # empty: not measured, -1
    drive[rows, 1] = True
    drive[rows, 2] = np.array([r.drive_axles == 2 for r in fits], bool)
    return axles.AxleColumns(count, weight, spacing, axles.presumed_dual(count), drive)


def _scatter(out: np.ndarray, rows: np.ndarray, lists: list[list[int]]) -> None:
    """``out[rows[i], :len(lists[i])] = lists[i]`` for every i, in one assignment."""
    lengths = np.array([len(v) for v in lists], np.int64)
    starts = np.cumsum(lengths) - lengths
    cols = np.arange(int(lengths.sum())) - np.repeat(starts, lengths)
    out[np.repeat(rows, lengths), cols] = list(itertools.chain.from_iterable(lists))


def _axle_columns_one(matches: list[Match]) -> axles.AxleColumns:
    """Reference twin of :func:`_axle_columns`: one vehicle at a time."""
    n = len(matches)
    count = np.array([m.record.axle_count for m in matches], np.int64)
    weight = np.full((n, MAX_AXLES), -1, np.int64)
    spacing = np.full((n, MAX_AXLES), -1, np.int64)
    drive = np.zeros((n, MAX_AXLES), bool)
    for i, m in enumerate(matches):
        r = m.record
        if r.axle_count > MAX_AXLES:
            continue
        weight[i, : r.axle_count] = r.axle_weights_kg
        if r.axle_spacings_mm:  # else not measured: -1, the vehicle's groups are not judged
            spacing[i, : r.axle_count - 1] = r.axle_spacings_mm
        drive[i, 1 : 1 + (r.drive_axles or 1)] = True
    return axles.AxleColumns(count, weight, spacing, axles.presumed_dual(count), drive)


def _group(groups: axles.AxleGroups, i: int, g: int) -> dict[str, int]:
    """Group ``g`` of vehicle ``i``, as a detection names it."""
    return {
        "first_axle": int(groups.start[i, g]) + 1,
        "kind": int(groups.kind[i, g]),
        "spacing_mm": int(groups.spacing_mm[i, g]),
        "limit_kg": int(groups.limit_kg[i, g]),
        "load_kg": int(groups.load_kg[i, g]),
        "over_kg": int(groups.over_kg[i, g]),
    }


def _reweigh_problem(registry: Registry, rw: Reweigh) -> str | None:
    """Why a static reweigh cannot be used, or None: its site must be known and its scale's
    certificate valid on the day (an uncertified scale proves nothing about another)."""
    if (site := registry.site(rw.site_id)) is None:
        return f"site_id: unknown site {rw.site_id!r} (not in the registry)"
    if not rw.scale_certificate.valid_on(day := site.local(rw.ts).date()):
        c = rw.scale_certificate
        return (f"scale_certificate: {c.number} is valid {c.valid_from} to {c.valid_until}, "
                f"not on {day}")  # fmt: skip
    return None
