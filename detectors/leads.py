"""The lead stage: road.anpr sightings → leads (cloned plates, restricted hours, unlicensed
vehicles shuttling between passenger hubs). Leads go to officers; they are never penalties.

What a later sighting may still need (every read plate for the longest drive between two sites,
the hub sightings of unlicensed vehicles for the operation window) goes to a sighting store —
PostgreSQL in the pipeline — before a batch is answered, and each batch reads back the history
of its own plates. So every lead worker sees every site's sightings, a restart replays nothing
but the unfinished batch, and no offset is held back. Lead ids are derived from the sightings,
so a replayed batch sends the same leads again, which the lead store drops.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

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


class SightingStore(Protocol):
    async def remember_sightings(self, rows: Sequence[tuple[Sighting, dt.datetime]]) -> None:
        """Store (sighting, keep until) pairs; a sighting already stored is left as it is."""
        ...

    async def recall_sightings(
        self, plates: Sequence[str], since: dt.datetime, until: dt.datetime
    ) -> list[Sighting]:
        """The stored sightings of ``plates`` with since ≤ ts ≤ until, by (ts, capture_id)."""
        ...

    async def forget_sightings(self, before: dt.datetime) -> int:
        """Drop the sightings kept until before ``before``; returns how many."""
        ...


class MemorySightings:
    """A sighting store in this process's memory, for tests and runs without a database: its
    sightings are lost with the process."""

    def __init__(self) -> None:
        self.by_plate: dict[str, dict[str, tuple[Sighting, dt.datetime]]] = defaultdict(dict)

    async def remember_sightings(self, rows: Sequence[tuple[Sighting, dt.datetime]]) -> None:
        for sighting, keep_until in rows:
            self.by_plate[sighting.plate or ""].setdefault(
                sighting.capture_id, (sighting, keep_until)
            )

    async def recall_sightings(
        self, plates: Sequence[str], since: dt.datetime, until: dt.datetime
    ) -> list[Sighting]:
        found = [s for p in set(plates) for s, _ in self.by_plate.get(p, {}).values()
                 if since <= s.ts <= until]  # fmt: skip
        return sorted(found, key=lambda s: (s.ts, s.capture_id))

    async def forget_sightings(self, before: dt.datetime) -> int:
        gone = 0
        for plate in list(self.by_plate):
            kept = {k: v for k, v in self.by_plate[plate].items() if v[1] >= before}
            gone += len(self.by_plate[plate]) - len(kept)
            if kept:
                self.by_plate[plate] = kept
            else:
                del self.by_plate[plate]
        return gone


@dataclass(frozen=True)
class _Seen:
    ts_ms: int
    site: int
    sighting: Sighting
    received_ms: int = 0  # when the broker received it (its own time when not known)


def _ms(ts: dt.datetime) -> int:
    return int(ts.timestamp() * 1000)


class LeadStage(BaseStage):
    name = "leads"
    # sightings are stored idempotently and remembered before they are recalled, lead ids
    # derive from the sightings, and a lead this process sent is not sent again
    isolable = True

    def __init__(
        self,
        registry: Registry,
        store: SightingStore,
        *,
        max_speed_kmh: float = 120.0,
        operation_rules: operation.OperationRules | None = None,
        max_lateness: dt.timedelta = dt.timedelta(days=1),
        topic_prefix: str = "",
    ) -> None:
        """``max_lateness``: how long after a sighting (by the broker's receive time) another
        one may arrive (a site that uploads its backlog after an outage) and still meet it.

        Sightings are kept by when the broker received them, not by their own time: a cut by
        the newest sighting read so far would depend on which partition a worker read first (a
        week of shuttle sightings read before the clone pair of its first day forgot the pair),
        so the same input would give other leads."""
        self.registry, self.store, self.max_speed = registry, store, max_speed_kmh
        self.max_lateness = max_lateness
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
        self.clone_horizon = dt.timedelta(milliseconds=int(longest / max_speed_kmh * 3_600_000) + 1)
        self.window = dt.timedelta(days=self.rules.window_days)
        self.hubs = {s.id: i for i, s in enumerate(s for s in registry.sites if s.hub)}
        self.emitted: dict[str, int] = {}  # lead id → its time: leads this process already sent

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
            received = msg.timestamp_ms if msg.timestamp_ms is not None else _ms(c.ts)
            seen.append(_Seen(_ms(c.ts), self.site_index[c.site_id], sighting, received))
        if not seen:
            return StageResult()
        seen.sort(key=lambda s: (s.ts_ms, s.sighting.capture_id))
        # Remember first, then recall: of two workers with sightings of one plate at once, the
        # one that reads last sees both.
        await self.store.remember_sightings([(s.sighting, self._keep_until(s)) for s in seen])
        plates = {s.sighting.plate or "" for s in seen}
        shuttling = {s.sighting.plate or "" for s in seen if self._unlicensed_at_hub(s)}
        nearby = await self._history(seen, plates, self.clone_horizon)
        at_hubs = await self._history(seen, shuttling, self.window)
        leads = self._clones(seen, nearby) + self._hours(seen) + self._operation(seen, at_hubs)
        fresh = [x for x in leads if x.lead_id not in self.emitted]
        self.emitted.update((x.lead_id, _ms(x.ts)) for x in fresh)
        recent = seen[-1].ts_ms - 2 * _ms_of(self.window)
        self.emitted = {k: t for k, t in self.emitted.items() if t >= recent}
        newest = max(s.received_ms for s in seen)
        await self.store.forget_sightings(_dt(newest) - self.max_lateness)
        return StageResult(out=[Outgoing(self.out_topic, (x.plate or "").encode(), x.to_json())
                                for x in fresh])  # fmt: skip

    async def _history(
        self, seen: list[_Seen], plates: set[str], reach: dt.timedelta
    ) -> list[_Seen]:
        """The stored sightings of ``plates`` within ``reach`` of the batch, not the batch's own."""
        if not plates:
            return []
        ours = {s.sighting.capture_id for s in seen}
        first, last = seen[0].sighting.ts, seen[-1].sighting.ts
        found = await self.store.recall_sightings(sorted(plates), first - reach, last + reach)
        return [_Seen(_ms(x.ts), self.site_index[x.site_id], x) for x in found
                if x.capture_id not in ours and x.site_id in self.site_index]  # fmt: skip

    def _keep_until(self, s: _Seen) -> dt.datetime:
        """A plate's sighting serves clone checks for the longest drive; an unlicensed vehicle's
        hub sighting serves the operation window (from when the broker received it)."""
        reach = self.window if self._unlicensed_at_hub(s) else self.clone_horizon
        return _dt(s.received_ms) + reach

    def _unlicensed_at_hub(self, s: _Seen) -> bool:
        vehicle = self.registry.vehicle_index.get(s.sighting.plate or "")
        return s.sighting.site_id in self.hubs and not (vehicle and vehicle.licensed)

    def _clones(self, seen: list[_Seen], history: list[_Seen]) -> list[Lead]:
        """Every implausible pair over the plates' history and this batch (not only the
        consecutive ones: see ``clones.detect_every``); a pair of two history sightings was
        found by the batch of whichever came last."""
        rows = list(history)
        old = len(rows)
        rows += seen
        plates = {p: i for i, p in enumerate(sorted({r.sighting.plate or "" for r in rows}))}
        pairs = clones.detect_every(
            np.array([plates[r.sighting.plate or ""] for r in rows], np.int64),
            np.array([r.site for r in rows], np.int64),
            np.array([r.ts_ms for r in rows], np.int64),
            self.distance,
            self.max_speed,
        )
        out = []
        for i, j in pairs:
            if i < old and j < old:
                continue
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
            site = self.registry.site_index.get(s.sighting.site_id)
            if vehicle is None or vehicle.kind not in _CLASS or site is None:
                continue
            local = site.local(s.sighting.ts)  # the hour of the rule is the site's local one
            minute = np.array([local.hour * 60 + local.minute])
            rules = hours.HoursRules(dangerous_goods_permitted=tuple(vehicle.permitted_minutes))
            found = hours.detect(minute, np.array([_CLASS[vehicle.kind]]), rules)
            if found.restricted[0]:
                why = f"{_HOURS_REASON[int(found.reason[0])]} ({local:%H:%M} local time)"
                out.append(self._lead("restricted_hours", hours.DETECTOR, hours.VERSION, [s], 1.0,
                                      [why]))  # fmt: skip
        return out

    def _operation(self, seen: list[_Seen], history: list[_Seen]) -> list[Lead]:
        at_hubs: dict[str, list[_Seen]] = defaultdict(list)
        for s in sorted(history + seen, key=lambda s: (s.ts_ms, s.sighting.capture_id)):
            if self._unlicensed_at_hub(s):
                at_hubs[s.sighting.plate or ""].append(s)
        out = []
        for plate in sorted({s.sighting.plate or "" for s in seen if self._unlicensed_at_hub(s)}):
            rows = at_hubs[plate]
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


def _dt(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


def _ms_of(span: dt.timedelta) -> int:
    return span // dt.timedelta(milliseconds=1)
