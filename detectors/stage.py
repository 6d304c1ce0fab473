"""The detection stage: road.wim + road.anpr → detections (one per overloaded pass)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import numpy as np
from pydantic import ValidationError

from events import (
    DETECTIONS,
    LEADS,
    ROAD_ANPR,
    ROAD_WIM,
    UNENFORCEABLE_FLAGS,
    AnprCapture,
    Detection,
    Device,
    Lead,
    Registry,
    Sighting,
    WimRecord,
    derive_id,
)
from events.stage import BaseStage, Incoming, Outgoing, StageResult, dead_letter, validation_reason

from . import axles, overload
from .limits import configuration, infer_kind
from .match import Match, Matcher
from .plates import PlateReader, agree

HEAVY_KG = 12_000


class DetectionStage(BaseStage):
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
    ) -> None:
        """With ``plate_reader`` (and ``load_image`` to fetch a blob), every enforceable
        overload's plate is read a second time from its plate image; a plate the second read
        does not confirm is "uncertain" and goes to review."""
        self.registry = registry
        self.min_plate_confidence = min_plate_confidence
        self.min_gap_ms = round(min_gap_s * 1000)
        self.plate_reader, self.load_image = plate_reader, load_image
        self.wim_topic, self.anpr_topic = topic_prefix + ROAD_WIM, topic_prefix + ROAD_ANPR
        self.out_topic = topic_prefix + DETECTIONS
        self.lead_topic = topic_prefix + LEADS
        self.inputs: tuple[str, ...] = (self.wim_topic, self.anpr_topic)
        self.matcher = Matcher(window_s)
        self._checked: dict[tuple[str, str, str], tuple[int, str | None]] = {}

    async def start(self) -> None:
        if self.plate_reader is not None:
            await asyncio.to_thread(self.plate_reader.load)

    async def process(self, batch: list[Incoming]) -> StageResult:
        dead = [d for msg in batch if (d := self._accept(msg)) is not None]
        return StageResult(out=await self._detect(self.matcher.ready()), dead=dead)

    async def idle(self) -> StageResult:
        return StageResult(out=await self._detect(self.matcher.ready(flush=True)))

    def held(self) -> dict[tuple[str, int], int]:
        return self.matcher.held()

    def _accept(self, msg: Incoming) -> Outgoing | None:
        """Validate one message into the matcher; a dead letter if it cannot be used."""
        pos = (msg.topic, msg.partition, msg.offset)
        try:
            if msg.topic == self.wim_topic:
                record = WimRecord.model_validate_json(msg.value)
                problem = self._check_registry(record.site_id, record.device_id, "wim", record.lane)
                if problem is None:
                    self.matcher.add_wim(record, pos)
            else:
                capture = AnprCapture.model_validate_json(msg.value)
                problem = self._check_registry(
                    capture.site_id, capture.camera_id, "anpr", capture.lane
                )
                if problem is None:
                    self.matcher.add_capture(capture, pos)
        except ValidationError as exc:
            problem = validation_reason(exc)
        return None if problem is None else dead_letter(msg, problem, self.name)

    def _check_registry(self, site_id: str, device_id: str, kind: str, lane: int) -> str | None:
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

    def _columns(self, matches: list[Match]) -> overload.WimColumns:
        # Python lists, one array each at the end: element stores into numpy are slow
        gross, config, permille, steady, certified, plate_ok = [], [], [], [], [], []
        for m in matches:
            r = m.record
            device = self.registry.device(r.device_id)
            assert device is not None and device.accuracy_class is not None
            kind = r.vehicle_kind or infer_kind(r.axle_count, r.axle_spacings_mm)
            gross.append(r.gross_weight_kg)
            code = configuration(r.axle_count, kind == "combination", r.drive_axles)
            config.append(overload.CONFIG_INDEX[code])
            permille.append(round(device.accuracy_class * 10))
            steady.append(not self._evasion(m, device))
            cert = device.certificate
            certified.append(cert is not None and cert.valid_on(r.ts.date()))
            plate_ok.append(self._plate_status(m) == "read")
        return overload.WimColumns(
            np.array(gross, np.int64),
            np.array(config, np.int64),
            np.array(permille, np.int64),
            np.array(steady, bool),
            np.array(certified, bool),
            np.array(plate_ok, bool),
        )

    def _evasion(self, m: Match, device: Device) -> list[str]:
        """Why the pass was not a steady, single, centred weighing: the device's own flags, a
        vehicle too close behind another, or a speed outside the device's verified range."""
        r = m.record
        out = [f"flag:{f}" for f in sorted(UNENFORCEABLE_FLAGS.intersection(r.flags))]
        if m.gap_ms is not None and m.gap_ms < self.min_gap_ms and "flag:tailgating" not in out:
            out.append(f"tailgating: {m.gap_ms / 1000:.2f} s behind the vehicle before it")
        low, high = device.speed_range_kmh or (0.0, float("inf"))
        if not low <= r.speed_kmh <= high:
            out.append(f"speed {r.speed_kmh:g} km/h outside the device's {low:g}–{high:g} km/h")
        return out

    def _plate_status(self, m: Match) -> str:
        if m.capture is None:
            return "no_capture"
        if m.ambiguous:
            return "ambiguous"
        if m.capture.plate is None:
            return "unreadable"
        if m.capture.confidence < self.min_plate_confidence:
            return "low_confidence"
        return "read"

    async def _detect(self, matches: list[Match]) -> list[Outgoing]:
        if not matches:
            return []
        cols = self._columns(matches)
        res = overload.detect(cols)
        groups = axles.detect(_axle_columns(matches))
        # the worst group's load net of the device's margin, the same way as the gross
        group_tol = (groups.worst_load_kg * cols.class_permille + 999) // 1000
        axle_over = groups.overloaded & (groups.worst_over_kg - group_tol > 0) & ~res.overloaded
        out = self._missing_plates(matches, cols)
        rows = [int(i) for i in np.flatnonzero(res.overloaded | axle_over)]
        clean = [
            matches[i] for i in rows if cols.steady[i] and cols.certified[i] and cols.plate_ok[i]
        ]
        doubts = await self._verify_plates(clean)
        for i in rows:
            group = _group(groups, i) if groups.judged[i] else None
            doubt = doubts.get(matches[i].record.record_id)
            det = self._detection(matches[i], cols, res, i, doubt, group, bool(axle_over[i]))
            out.append(Outgoing(self.out_topic, det.site_id.encode(), det.to_json()))
        return out

    def _missing_plates(self, matches: list[Match], cols: overload.WimColumns) -> list[Outgoing]:
        """Heavy vehicles (measured gross ≥ 12 t, GB 7258's heavy class) with no readable plate:
        leads for transfer to the police (移送公安), with the capture's images when there is one.
        An unreadable plate the camera saw scores higher than a capture that never came (the
        camera may have failed)."""
        out = []
        for i in np.flatnonzero(cols.gross_kg >= HEAVY_KG):
            m = matches[int(i)]
            status = self._plate_status(m)
            if status not in ("no_capture", "unreadable"):
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
            return doubts

        return await asyncio.to_thread(second_reads)

    def _detection(
        self,
        m: Match,
        cols: overload.WimColumns,
        res: overload.OverloadColumns,
        i: int,
        doubt: str | None,
        group: dict[str, int] | None = None,
        by_axle: bool = False,
    ) -> Detection:
        """The detection of row ``i``: gross overload, or (``by_axle``) an axle group over its
        limit on a vehicle whose gross is within it."""
        r, cap = m.record, m.capture
        device = self.registry.device(r.device_id)
        assert device is not None and device.accuracy_class is not None
        status = "uncertain" if doubt else self._plate_status(m)
        reasons = []
        reasons += self._evasion(m, device)
        if not cols.certified[i]:
            reasons.append("certificate_invalid_on_pass_date")
        if doubt:
            reasons.append(f"plate:uncertain: {doubt}")
        elif status != "read":
            reasons.append(f"plate:{status}")
        if r.vehicle_kind is None:
            reasons.append("vehicle_kind_inferred")
        config = overload.CODES[int(cols.config[i])]
        detector, version = (
            (axles.DETECTOR, axles.VERSION) if by_axle else (overload.DETECTOR, overload.VERSION)
        )
        measured, limit = r.gross_weight_kg, int(res.limit_kg[i])
        tolerance, over = int(res.tolerance_kg[i]), int(res.overload_kg[i])
        enforceable = bool(res.enforceable[i])
        if by_axle:
            assert group is not None
            measured, limit = group["load_kg"], group["limit_kg"]
            tolerance = -(-measured * int(cols.class_permille[i]) // 1000)
            over = measured - tolerance - limit
            enforceable = bool(cols.steady[i] and cols.certified[i] and cols.plate_ok[i])
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
            plate=cap.plate if cap else None,
            plate_color=cap.plate_color if cap else None,
            plate_status=status,  # type: ignore[arg-type]
            match_confidence=m.confidence,
            axle_count=r.axle_count,
            vehicle_kind=r.vehicle_kind or infer_kind(r.axle_count, r.axle_spacings_mm),  # type: ignore[arg-type]
            drive_axles=r.drive_axles,
            configuration=config,
            accuracy_class=device.accuracy_class,
            certificate_number=device.certificate.number if device.certificate else None,
            measured_kg=measured,
            tolerance_kg=tolerance,
            limit_kg=limit,
            overload_kg=over,
            overloaded=True,
            enforceable=enforceable and doubt is None,
            reasons=reasons,
            wim=r.model_dump(mode="json"),
            capture=cap.model_dump(mode="json") if cap else None,
            images=list(cap.images) if cap else [],
            axle_group=group,
        )


def _axle_columns(matches: list[Match]) -> axles.AxleColumns:
    """The axle loads and spacings of a batch, padded; tyres by the Art. 3 presumption and the
    drive axles right behind the steer axle (one, or the reported number)."""
    n = len(matches)
    count = np.array([m.record.axle_count for m in matches], np.int64)
    weight = np.full((n, axles.MAX_AXLES), -1, np.int64)
    spacing = np.full((n, axles.MAX_AXLES), -1, np.int64)
    drive = np.zeros((n, axles.MAX_AXLES), bool)
    for i, m in enumerate(matches):
        r = m.record
        weight[i, : r.axle_count] = r.axle_weights_kg
        spacing[i, : r.axle_count - 1] = r.axle_spacings_mm
        drive[i, 1 : 1 + (r.drive_axles or 1)] = True
    return axles.AxleColumns(count, weight, spacing, axles.presumed_dual(count), drive)


def _group(groups: axles.AxleGroups, i: int) -> dict[str, int]:
    return {
        "first_axle": int(groups.worst_start[i]) + 1,
        "kind": int(groups.worst_kind[i]),
        "spacing_mm": int(groups.spacing_mm[i, groups.worst[i]]),
        "limit_kg": int(groups.worst_limit_kg[i]),
        "load_kg": int(groups.worst_load_kg[i]),
        "over_kg": int(groups.worst_over_kg[i]),
    }
