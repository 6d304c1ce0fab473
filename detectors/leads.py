"""The lead stage: road.anpr sightings → leads (cloned plates, restricted hours, unlicensed
vehicles shuttling between passenger hubs). Leads go to officers; they are never penalties.

Sightings that a later sighting may still need (the last one of each plate, the hub sightings of
unlicensed vehicles in the look-back window) are kept in memory and their offsets held back, so a
restart replays them; lead ids are derived from the sightings, so a replay adds no lead.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
from pydantic import ValidationError

from events import LEADS, ROAD_ANPR, AnprCapture, Lead, Registry, Sighting, derive_id
from events.stage import BaseStage, Incoming, Outgoing, StageResult

from . import clones, hours, operation
from .plates import normalise

_CLASS = {"coach": hours.COACH, "dangerous_goods": hours.DANGEROUS_GOODS}
_HOURS_REASON = {
    hours.COACH_NIGHT: "long-distance coach on the road between 02:00 and 05:00",
    hours.DANGEROUS_GOODS_HOURS: "dangerous-goods vehicle outside its permitted hours",
}


@dataclass(frozen=True)
class _Seen:
    ts_ms: int
    site: int
    sighting: Sighting
    position: tuple[str, int, int]


def _ms(ts: dt.datetime) -> int:
    return int(ts.timestamp() * 1000)


class LeadStage(BaseStage):
    name = "leads"

    def __init__(
        self,
        registry: Registry,
        *,
        max_speed_kmh: float = 120.0,
        operation_rules: operation.OperationRules | None = None,
        topic_prefix: str = "",
    ) -> None:
        self.registry, self.max_speed = registry, max_speed_kmh
        self.rules = operation_rules or operation.OperationRules()
        self.inputs: tuple[str, ...] = (topic_prefix + ROAD_ANPR,)
        self.out_topic = topic_prefix + LEADS
        self.sites = [s.id for s in registry.sites]
        index = {s: i for i, s in enumerate(self.sites)}
        self.site_index = index
        n = len(self.sites)
        self.distance = np.full((n, n), np.nan)
        for d in registry.distances:
            a, b = (index[x] for x in d.between)
            self.distance[a, b] = self.distance[b, a] = d.km
        longest = np.nanmax(self.distance) if registry.distances else 0.0
        self.clone_horizon_ms = int(longest / max_speed_kmh * 3_600_000) + 1
        self.hubs = {s.id: i for i, s in enumerate(s for s in registry.sites if s.hub)}
        self.last: dict[str, _Seen] = {}  # plate → its latest sighting
        self.at_hubs: dict[str, list[_Seen]] = {}  # unlicensed plate → hub sightings in window
        self.emitted: dict[str, int] = {}  # lead id → its time: leads already sent

    async def process(self, batch: list[Incoming]) -> StageResult:
        seen = []
        for msg in batch:
            try:
                c = AnprCapture.model_validate_json(msg.value)
            except ValidationError:
                continue  # the detection stage dead-letters road.anpr; one letter per message
            plate = normalise(c.plate)
            if plate is None or c.site_id not in self.site_index:
                continue
            sighting = Sighting(capture_id=c.capture_id, site_id=c.site_id, ts=c.ts, plate=plate,
                                images=list(c.images))  # fmt: skip
            pos = (msg.topic, msg.partition, msg.offset)
            seen.append(_Seen(_ms(c.ts), self.site_index[c.site_id], sighting, pos))
        seen.sort(key=lambda s: (s.ts_ms, s.sighting.capture_id))
        leads = self._clones(seen) + self._hours(seen) + self._operation(seen)
        fresh = [x for x in leads if x.lead_id not in self.emitted]
        self.emitted.update((x.lead_id, _ms(x.ts)) for x in fresh)
        self._forget(seen[-1].ts_ms if seen else None)
        return StageResult(out=[Outgoing(self.out_topic, (x.plate or "").encode(), x.to_json())
                                for x in fresh])  # fmt: skip

    def _clones(self, seen: list[_Seen]) -> list[Lead]:
        rows = [
            self.last[p] for p in sorted({s.sighting.plate or "" for s in seen}) if p in self.last
        ]
        rows += seen
        plates = {p: i for i, p in enumerate(sorted({r.sighting.plate or "" for r in rows}))}
        pairs = clones.detect(
            np.array([plates[r.sighting.plate or ""] for r in rows], np.int64),
            np.array([r.site for r in rows], np.int64),
            np.array([r.ts_ms for r in rows], np.int64),
            self.distance,
            self.max_speed,
        )
        for s in seen:
            self.last[s.sighting.plate or ""] = s
        out = []
        for i, j in pairs:
            a, b = rows[int(i)], rows[int(j)]
            km = float(self.distance[a.site, b.site])
            hours_needed = km / self.max_speed
            reason = (f"{a.sighting.site_id} → {b.sighting.site_id}: {km:g} km in "
                      f"{(b.ts_ms - a.ts_ms) / 60_000:.1f} min; at {self.max_speed:g} km/h it "
                      f"takes at least {hours_needed * 60:.1f} min")  # fmt: skip
            out.append(self._lead("cloned_plate", clones.DETECTOR, clones.VERSION, [a, b], 1.0,
                                  [reason]))  # fmt: skip
        return out

    def _hours(self, seen: list[_Seen]) -> list[Lead]:
        out = []
        for s in seen:
            vehicle = self.registry.vehicle_index.get(s.sighting.plate or "")
            if vehicle is None or vehicle.kind not in _CLASS:
                continue
            local = s.sighting.ts.astimezone(dt.timezone(dt.timedelta(hours=8)))
            minute = np.array([local.hour * 60 + local.minute])
            rules = hours.HoursRules(dangerous_goods_permitted=tuple(vehicle.permitted_minutes))
            found = hours.detect(minute, np.array([_CLASS[vehicle.kind]]), rules)
            if found.restricted[0]:
                why = f"{_HOURS_REASON[int(found.reason[0])]} ({local:%H:%M} local time)"
                out.append(self._lead("restricted_hours", hours.DETECTOR, hours.VERSION, [s], 1.0,
                                      [why]))  # fmt: skip
        return out

    def _operation(self, seen: list[_Seen]) -> list[Lead]:
        touched = set()
        for s in seen:
            plate = s.sighting.plate or ""
            vehicle = self.registry.vehicle_index.get(plate)
            if s.sighting.site_id in self.hubs and not (vehicle and vehicle.licensed):
                self.at_hubs.setdefault(plate, []).append(s)
                touched.add(plate)
        out = []
        for plate in sorted(touched):
            rows = self.at_hubs[plate]
            found = operation.detect(
                np.zeros(len(rows), np.int64),
                np.array([r.ts_ms for r in rows], np.int64),
                np.array([self.hubs[r.sighting.site_id] for r in rows], np.int64),
                np.zeros(len(rows), bool),
                self.rules,
            )
            for k in range(len(found)):
                members = [rows[int(i)] for i in found.sightings_of(k)]
                why = (f"{int(found.trips[k])} trips between passenger hubs within "
                       f"{self.rules.window_days} days; no operating licence on record")  # fmt: skip
                out.append(self._lead("illegal_operation", operation.DETECTOR, operation.VERSION,
                                      members, float(found.score[k]), [why]))  # fmt: skip
        return out

    def _lead(self, kind: str, detector: str, version: str, rows: list[_Seen], score: float,
              reasons: list[str]) -> Lead:  # fmt: skip
        rows = sorted(rows, key=lambda r: (r.ts_ms, r.sighting.capture_id))
        ids = [r.sighting.capture_id for r in rows]
        return Lead(
            lead_id=derive_id("lead", kind, detector, version, *ids),
            kind=kind,  # type: ignore[arg-type]
            detector=detector, detector_version=version, plate=rows[-1].sighting.plate,
            site_id=rows[-1].sighting.site_id, ts=rows[-1].sighting.ts, score=score,
            reasons=reasons, sightings=[r.sighting for r in rows],
        )  # fmt: skip

    def _forget(self, now_ms: int | None) -> None:
        """Drop what no later sighting can need: last sightings older than the longest drive,
        hub sightings older than the operation window."""
        if now_ms is None:
            return
        self.last = {
            p: s for p, s in self.last.items() if now_ms - s.ts_ms <= self.clone_horizon_ms
        }
        window = self.rules.window_days * operation.MS_PER_DAY
        self.emitted = {k: t for k, t in self.emitted.items() if now_ms - t <= 2 * window}
        for plate in list(self.at_hubs):
            kept = [s for s in self.at_hubs[plate] if now_ms - s.ts_ms <= window]
            if kept:
                self.at_hubs[plate] = kept
            else:
                del self.at_hubs[plate]

    def held(self) -> dict[tuple[str, int], int]:
        low: dict[tuple[str, int], int] = {}
        for s in [*self.last.values(), *(x for rows in self.at_hubs.values() for x in rows)]:
            topic, part, off = s.position
            low[(topic, part)] = min(low.get((topic, part), off), off)
        return low
