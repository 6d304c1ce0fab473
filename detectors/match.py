"""WIM–ANPR matching: each WIM record meets the capture of the same site and lane nearest in time.

A match is ambiguous, and its plate not trusted, when another capture or another WIM record of
the same lane falls inside the window too: picking the nearer one could put one truck's plate on
another truck's weight.

A record is matched only when both topics of its site have moved past ``ts + window`` (or the
stream went idle), so every capture that could match it has arrived: the result does not depend
on how messages were batched or how far one topic was read ahead of the other, and a replay
matches the same way. A topic of a site that has sent nothing for ``max_wait_s`` of wall-clock
time (a camera down) is not waited for, but only once the broker has nothing more of that topic
for this reader (``waiting``, told by the runner): a backlog being read, a broker or worker that
took a while to restart, never makes a camera "down".

A match is a function of the captures and passes around the record only: a capture matched to
one record is not taken away from the next (two records that could both be its vehicle are both
ambiguous). Captures and passes stay for ``keep`` of event time behind the oldest undecided
record, and their offsets are held, so that after a restart the records not yet decided meet
the same neighbours again. Which records were decided is the ``checkpoint`` committed with the
offsets (per site, the last one released); a restart re-reads the held records before it
(``restore``) as context only, so a record is never decided twice on less context.

Buffers are kept sorted by time per site and lane, so matching a batch costs O(n log n).
"""

from __future__ import annotations

import bisect
import datetime as dt
import json
import math
import time
from collections import defaultdict
from collections.abc import Callable
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
    passes: list[tuple[int, str, int, Position]] = field(default_factory=list)  # + rear ts


@dataclass
class _Site:
    pending: list[tuple[int, str, WimRecord, Position, int | None]] = field(default_factory=list)
    lanes: dict[int, _Lane] = field(default_factory=lambda: defaultdict(_Lane))
    wim_mark: int | None = None  # latest ts seen on each topic, epoch ms
    anpr_mark: int | None = None
    wim_seen: float = -math.inf  # when each topic last sent something (wall clock, s)
    anpr_seen: float = -math.inf
    released: tuple[int, str] | None = None  # (ts, record_id) of the last record decided
    wim_partition: tuple[str, int] | None = None  # where the site's WIM records come from


class Matcher:
    def __init__(
        self, window_s: float, max_wait_s: float = 30.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.window = round(window_s * 1000)  # ms
        self.max_wait_s, self.clock = max_wait_s, clock
        self.keep = max(2 * self.window, 10_000)  # passes kept to measure the gap to the next
        self._sites: dict[str, _Site] = defaultdict(_Site)
        # "wim"/"anpr": topics the broker has more records of for this reader (the runner says)
        self.waiting: frozenset[str] = frozenset()
        self._read_to: dict[tuple[str, int], int] = {}  # next WIM offset, per partition
        self._replayed: dict[tuple[str, int], int] = {}  # read up to here before a restart

    def add_wim(self, record: WimRecord, pos: Position, received_ms: int | None = None) -> None:
        site = self._sites[record.site_id]
        site.wim_partition = part = pos[:2]
        key = _wim_key(record)
        self._read_to[part] = max(self._read_to.get(part, 0), pos[2] + 1)
        again = pos[2] < self._replayed.get(part, 0)  # read before a restart, decided or not
        if not (again and site.released is not None and key <= site.released):
            _insert(site.pending, (*key, record, pos, received_ms))
        _insert(site.lanes[record.lane].passes, (*key, key[0] + _rear_ms(record), pos))
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
            if done:
                site.released = done[-1][:2]
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
        return self._capture(lane, ts, record, pos, gap, received_ms)

    def _capture(
        self,
        lane: _Lane,
        ts: int,
        record: WimRecord,
        pos: Position,
        gap_ms: int | None,
        received_ms: int | None,
    ) -> Match:
        lo = bisect.bisect_left(lane.captures, (ts - self.window,))
        hi = bisect.bisect_right(lane.captures, (ts + self.window, _LAST))
        if lo == hi:
            return Match(record, pos, None, 0.0, False, gap_ms, received_ms)
        gap, _, index = min(
            (abs(lane.captures[i][0] - ts), lane.captures[i][1], i) for i in range(lo, hi)
        )
        cap_ts, _, capture, _ = lane.captures[index]  # kept: the next record may see it too
        plo = bisect.bisect_left(lane.passes, (cap_ts - self.window,))
        phi = bisect.bisect_right(lane.passes, (cap_ts + self.window, _LAST))
        if hi - lo > 1 or phi - plo > 1:
            return Match(record, pos, capture, 0.0, True, gap_ms, received_ms)
        confidence = round(1.0 - gap / self.window, 3)
        return Match(record, pos, capture, confidence, False, gap_ms, received_ms)

    def _low_mark(self, site: _Site) -> int | None:
        """How far both topics of a site have come: the lower of their marks, leaving out a
        topic that has been silent for ``max_wait_s`` while the other goes on, and of which
        the broker has nothing more for this reader."""
        now = self.clock()
        marks = [(site.wim_mark, site.wim_seen, "wim"), (site.anpr_mark, site.anpr_seen, "anpr")]
        if any(m is None and kind in self.waiting for m, _, kind in marks):
            return None  # one topic not heard from yet, and the broker has more of it
        live = [m for m, seen, kind in marks if m is not None
                and (kind in self.waiting or now - seen <= self.max_wait_s)]  # fmt: skip
        known = [m for m, _, _ in marks if m is not None]
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
        """Lowest buffered offset per partition (offsets beyond it must not be committed): of
        the records not yet decided, and of the captures and passes kept as their context."""
        low: dict[tuple[str, int], int] = {}
        for site in self._sites.values():
            positions = [p[3] for p in site.pending]
            for lane in site.lanes.values():
                positions += [c[3] for c in lane.captures] + [p[3] for p in lane.passes]
            for topic, part, off in positions:
                key = (topic, part)
                low[key] = min(low.get(key, off), off)
        return low

    def checkpoint(self) -> dict[tuple[str, int], str]:
        """Per WIM partition, how far it was read and the last record decided at each of its
        sites, as text to commit with the partition's offset (see :meth:`restore`)."""
        marks: dict[tuple[str, int], dict[str, list[int | str]]] = defaultdict(dict)
        for name, site in sorted(self._sites.items()):
            if site.released is not None and site.wim_partition is not None:
                marks[site.wim_partition][name] = list(site.released)
        return {
            tp: json.dumps({"to": to, "sites": marks.get(tp, {})}, separators=(",", ":"))
            for tp, to in sorted(self._read_to.items())
        }

    def restore(self, checkpoints: dict[tuple[str, int], str]) -> None:
        """The partitions in ``checkpoints`` are read again from their committed offsets: of
        the records read before, those up to their site's checkpoint were decided and come back
        only as context for the others."""
        for tp, text in checkpoints.items():
            try:
                got = json.loads(text)
                to, marks = int(got["to"]), dict(got["sites"])
            except (ValueError, TypeError, KeyError):
                continue  # committed without a checkpoint (an older version): decide again
            self._replayed[tp] = to
            for name, (ts, rid) in marks.items():
                self._sites[name].released = (int(ts), str(rid))

    def keep_only(self, partitions: frozenset[tuple[str, int]]) -> None:
        """Forget the sites read from partitions this reader no longer has: another reads them
        now, from their committed offsets."""
        for name, site in list(self._sites.items()):
            parts = {p[3][:2] for p in site.pending}
            for lane in site.lanes.values():
                parts |= {c[3][:2] for c in lane.captures} | {p[3][:2] for p in lane.passes}
            if site.wim_partition is not None:
                parts.add(site.wim_partition)
            if not parts <= partitions:
                del self._sites[name]
        for seen in (self._read_to, self._replayed):
            for tp in [tp for tp in seen if tp not in partitions]:
                del seen[tp]
