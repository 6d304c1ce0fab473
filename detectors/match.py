"""WIM–ANPR matching: each WIM record meets the capture of the same site and lane nearest in time.

A match is ambiguous, and its plate not trusted, when another capture or another WIM record of
the same lane falls inside the window too: picking the nearer one could put one truck's plate on
another truck's weight.

A record is matched only when both topics of its site have moved past ``ts + window`` (or the
stream went idle), so every capture that could match it has arrived: the result does not depend
on how messages were batched, and a replay matches the same way.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

from events import AnprCapture, WimRecord

Position = tuple[str, int, int]  # topic, partition, offset


@dataclass(frozen=True)
class Match:
    record: WimRecord
    position: Position
    capture: AnprCapture | None
    confidence: float  # 1.0 at the same instant, falling linearly to 0 at the window's edge
    ambiguous: bool = False


@dataclass
class _Site:
    wim: list[tuple[WimRecord, Position]] = field(default_factory=list)
    captures: list[tuple[AnprCapture, Position]] = field(default_factory=list)
    passes: list[tuple[int, dt.datetime, str]] = field(default_factory=list)  # lane, ts, record_id
    wim_mark: dt.datetime | None = None
    anpr_mark: dt.datetime | None = None


class Matcher:
    def __init__(self, window_s: float) -> None:
        self.window = dt.timedelta(seconds=window_s)
        self._sites: dict[str, _Site] = defaultdict(_Site)

    def add_wim(self, record: WimRecord, pos: Position) -> None:
        site = self._sites[record.site_id]
        site.wim.append((record, pos))
        site.passes.append((record.lane, record.ts, record.record_id))
        site.wim_mark = max(site.wim_mark or record.ts, record.ts)

    def add_capture(self, capture: AnprCapture, pos: Position) -> None:
        site = self._sites[capture.site_id]
        site.captures.append((capture, pos))
        site.anpr_mark = max(site.anpr_mark or capture.ts, capture.ts)

    def ready(self, flush: bool = False) -> list[Match]:
        """Matches for every record whose window has closed (all records when ``flush``)."""
        out: list[Match] = []
        for site in self._sites.values():
            marks = [m for m in (site.wim_mark, site.anpr_mark) if m is not None]
            mark = min(marks) if len(marks) == 2 else None
            site.wim.sort(key=lambda item: (item[0].ts, item[0].record_id))
            keep = []
            for record, pos in site.wim:
                if flush or (mark is not None and mark > record.ts + self.window):
                    out.append(self._match(site, record, pos))
                else:
                    keep.append((record, pos))
            site.wim = keep
            self._expire(site, flush)
        out.sort(key=lambda m: (m.record.ts, m.record.record_id))
        return out

    def _match(self, site: _Site, record: WimRecord, pos: Position) -> Match:
        near = sorted(
            (abs(cap.ts - record.ts), cap.capture_id, i)
            for i, (cap, _) in enumerate(site.captures)
            if cap.lane == record.lane and abs(cap.ts - record.ts) <= self.window
        )
        if not near:
            return Match(record, pos, None, 0.0)
        gap, _, index = near[0]
        capture, _ = site.captures.pop(index)
        neighbours = any(
            lane == record.lane and rid != record.record_id and abs(ts - capture.ts) <= self.window
            for lane, ts, rid in site.passes
        )
        if len(near) > 1 or neighbours:
            return Match(record, pos, capture, 0.0, ambiguous=True)
        return Match(record, pos, capture, round(1.0 - gap / self.window, 3))

    def _expire(self, site: _Site, flush: bool) -> None:
        """Captures no pending record can still use are let go."""
        if flush:
            site.captures.clear()
            site.passes.clear()
            return
        oldest = min((r.ts for r, _ in site.wim), default=None)
        mark = max(m for m in (site.wim_mark, site.anpr_mark) if m is not None)
        horizon = (min(oldest, mark) if oldest is not None else mark) - 2 * self.window
        site.captures = [c for c in site.captures if c[0].ts >= horizon]
        site.passes = [p for p in site.passes if p[1] >= horizon]

    def held(self) -> dict[tuple[str, int], int]:
        """Lowest buffered offset per partition (offsets beyond it must not be committed)."""
        low: dict[tuple[str, int], int] = {}
        for site in self._sites.values():
            for _, (topic, part, off) in [*site.wim, *site.captures]:
                key = (topic, part)
                low[key] = min(low.get(key, off), off)
        return low
