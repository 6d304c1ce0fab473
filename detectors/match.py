"""WIM–ANPR matching: each WIM record meets the capture of the same site and lane nearest in time.

A match is ambiguous, and its plate not trusted, when another capture or another WIM record of
the same lane falls inside the window too: picking the nearer one could put one truck's plate on
another truck's weight.

A record is matched only when both topics of its site have moved past ``ts + window`` (or the
stream went idle), so every capture that could match it has arrived: the result does not depend
on how messages were batched or how far one topic was read ahead of the other, and a replay
matches the same way. A topic of a site that has sent nothing for ``max_wait_s`` of wall-clock
time (a camera down) is not waited for: its site's records are matched without it.

Buffers are kept sorted by time per site and lane, so matching a batch costs O(n log n).
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from events import AnprCapture, WimRecord

Position = tuple[str, int, int]  # topic, partition, offset


@dataclass(frozen=True)
class Match:
    record: WimRecord
    position: Position
    capture: AnprCapture | None
    confidence: float  # 1.0 at the same instant, falling linearly to 0 at the window's edge
    ambiguous: bool = False
    gap_ms: int | None = None  # from the rear of the vehicle before it in the lane; None: none seen
    received_ms: int | None = None  # when the broker received the record (epoch ms)


_LAST = "\U0010ffff"  # sorts after every id: (ts, _LAST) is the end of ts's run


def _insert(items: list, item: tuple) -> None:
    """Keep ``items`` sorted by their first two fields; in-order arrivals are a plain append."""
    if not items or items[-1][:2] <= item[:2]:
        items.append(item)
    else:
        bisect.insort(items, item, key=lambda x: x[:2])


def _ms(ts: dt.datetime) -> int:
    """Epoch milliseconds: integer keys compare far faster than aware datetimes."""
    return (ts - _EPOCH) // _ONE_MS


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_ONE_MS = dt.timedelta(milliseconds=1)


# A vehicle of unknown length is taken as long as the law allows (18.1 m): its follower's gap
# comes out shorter, so doubt about separation goes to the party.
_MAX_LENGTH_MM = 18_100


def _rear_ms(record: WimRecord) -> int:
    """How long after its front axle the vehicle's rear leaves the sensors."""
    length = record.length_mm or _MAX_LENGTH_MM
    return round(length * 3.6 / record.speed_kmh) if record.speed_kmh > 0 else 10**9


def _wim_key(record: WimRecord) -> tuple[int, str]:
    return (_ms(record.ts), record.record_id)


def _cap_key(capture: AnprCapture) -> tuple[int, str]:
    return (_ms(capture.ts), capture.capture_id)


@dataclass
class _Lane:
    # all sorted by (ts, id)
    captures: list[tuple[int, str, AnprCapture, Position]] = field(default_factory=list)
    passes: list[tuple[int, str, int]] = field(default_factory=list)  # ts, record_id, rear ts


@dataclass
class _Site:
    pending: list[tuple[int, str, WimRecord, Position, int | None]] = field(default_factory=list)
    lanes: dict[int, _Lane] = field(default_factory=lambda: defaultdict(_Lane))
    wim_mark: int | None = None  # latest ts seen on each topic, epoch ms
    anpr_mark: int | None = None
    wim_seen: float = -math.inf  # when each topic last sent something (wall clock, s)
    anpr_seen: float = -math.inf


class Matcher:
    def __init__(
        self, window_s: float, max_wait_s: float = 30.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.window = round(window_s * 1000)  # ms
        self.max_wait_s, self.clock = max_wait_s, clock
        self.keep = max(2 * self.window, 10_000)  # passes kept to measure the gap to the next
        self._sites: dict[str, _Site] = defaultdict(_Site)

    def add_wim(self, record: WimRecord, pos: Position, received_ms: int | None = None) -> None:
        site = self._sites[record.site_id]
        key = _wim_key(record)
        _insert(site.pending, (*key, record, pos, received_ms))
        _insert(site.lanes[record.lane].passes, (*key, key[0] + _rear_ms(record)))
        site.wim_mark = key[0] if site.wim_mark is None else max(site.wim_mark, key[0])
        site.wim_seen = self.clock()

    def add_capture(self, capture: AnprCapture, pos: Position) -> None:
        site = self._sites[capture.site_id]
        lane = site.lanes[capture.lane]
        key = _cap_key(capture)
        _insert(lane.captures, (*key, capture, pos))
        site.anpr_mark = key[0] if site.anpr_mark is None else max(site.anpr_mark, key[0])
        site.anpr_seen = self.clock()

    def ready(self, flush: bool = False) -> list[Match]:
        """Matches for every record whose window has closed (all records when ``flush``)."""
        out: list[tuple[int, str, Match]] = []
        for site in self._sites.values():
            low = self._low_mark(site)
            if flush:
                n = len(site.pending)
            elif low is not None:
                n = bisect.bisect_left(site.pending, (low - self.window,))
            else:
                n = 0
            done, site.pending = site.pending[:n], site.pending[n:]
            out += [
                (ts, rid, self._match(site, ts, record, pos, received))
                for ts, rid, record, pos, received in done
            ]
            self._expire(site, flush)
        out.sort(key=lambda x: x[:2])
        return [m for _, _, m in out]

    def _match(
        self, site: _Site, ts: int, record: WimRecord, pos: Position, received_ms: int | None
    ) -> Match:
        lane = site.lanes[record.lane]
        me = bisect.bisect_left(lane.passes, (ts, record.record_id))
        gap = ts - lane.passes[me - 1][2] if me > 0 else None
        return replace(self._capture(lane, ts, record, pos, gap), received_ms=received_ms)

    def _capture(
        self, lane: _Lane, ts: int, record: WimRecord, pos: Position, gap_ms: int | None
    ) -> Match:
        lo = bisect.bisect_left(lane.captures, (ts - self.window,))
        hi = bisect.bisect_right(lane.captures, (ts + self.window, _LAST))
        if lo == hi:
            return Match(record, pos, None, 0.0, gap_ms=gap_ms)
        gap, _, index = min(
            (abs(lane.captures[i][0] - ts), lane.captures[i][1], i) for i in range(lo, hi)
        )
        cap_ts, _, capture, _ = lane.captures.pop(index)
        plo = bisect.bisect_left(lane.passes, (cap_ts - self.window,))
        phi = bisect.bisect_right(lane.passes, (cap_ts + self.window, _LAST))
        if hi - lo > 1 or phi - plo > 1:
            return Match(record, pos, capture, 0.0, ambiguous=True, gap_ms=gap_ms)
        return Match(record, pos, capture, round(1.0 - gap / self.window, 3), gap_ms=gap_ms)

    def _low_mark(self, site: _Site) -> int | None:
        """How far both topics of a site have come: the lower of their marks, leaving out a
        topic that has been silent for ``max_wait_s`` while the other goes on."""
        now = self.clock()
        marks = [(site.wim_mark, site.wim_seen), (site.anpr_mark, site.anpr_seen)]
        live = [m for m, seen in marks if m is not None and now - seen <= self.max_wait_s]
        known = [m for m, _ in marks if m is not None]
        if len(known) < 2 and len(live) == len(known):
            return None  # one topic never heard from, and it has not been long: wait for it
        return min(live or known)

    def _expire(self, site: _Site, flush: bool) -> None:
        """Captures and passes no pending record can still need are let go (all of them on a
        flush, also at a site whose other topic never sent anything)."""
        if flush:
            for lane in site.lanes.values():
                lane.captures.clear()
                lane.passes.clear()
            return
        low = self._low_mark(site)
        marks = [m for m in (low, site.pending[0][0] if site.pending else None) if m is not None]
        if not marks:
            return
        horizon = min(marks) - 2 * self.window
        keep_from = min(marks) - self.keep
        for lane in site.lanes.values():
            del lane.captures[: bisect.bisect_left(lane.captures, (horizon,))]
            del lane.passes[: bisect.bisect_left(lane.passes, (keep_from,))]

    def held(self) -> dict[tuple[str, int], int]:
        """Lowest buffered offset per partition (offsets beyond it must not be committed)."""
        low: dict[tuple[str, int], int] = {}
        for site in self._sites.values():
            positions = [p[3] for p in site.pending]
            positions += [c[3] for lane in site.lanes.values() for c in lane.captures]
            for topic, part, off in positions:
                key = (topic, part)
                low[key] = min(low.get(key, off), off)
        return low
