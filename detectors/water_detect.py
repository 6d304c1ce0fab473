"""The waterway detectors over one batch of decoded AIS reports and checkpoint captures.

A batch is a span of time: every report and capture in it, sorted into columns once. The
caller makes the span long enough around each capture (the association window and the receiver
health window on both sides) — a capture at the edge of what has been seen is decided later,
not guessed. Each finding is a :class:`WaterDetection` for review, with the reports it rests on.
The decisions are the vectorized functions of water_tracks and water_assoc; each has a
per-record reference twin there, and tests/unit/test_water_twins.py holds them equal.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from events import derive_id
from events.water import (
    CHANNEL,
    LEGAL_BASIS,
    AisReport,
    Checkpoint,
    RegisteredVessel,
    VesselCapture,
    WaterCode,
    WaterDetection,
    WaterRegistry,
)

from . import water_assoc as assoc
from . import water_tracks as tracks
from .water_geo import KNOT_MPS, Fairway, Plane, in_windows, inside, local_minute, polygon

DETECTOR = "water"
VERSION = tracks.VERSION
POSITION_TYPES = (1, 2, 3, 18, 19)
STATIC_TYPES = (5, 8, 19, 24)


@dataclass(frozen=True)
class WaterSettings:
    """The detectors' parameters; the registry holds what belongs to a place."""

    window_s: float = 120.0  # a capture and a crossing further apart are not the same pass
    crossing_max_step_s: float = 300.0  # two reports further apart do not make a crossing
    jump_min_distance_m: float = 1000.0  # below this, GPS scatter, not a second vessel
    channel_band_m: float = 400.0  # within this of the centreline, distance is along it
    length_tolerance_m: float = 2.0  # AIS dimensions are whole metres, antenna offsets
    health_window_s: float = 300.0
    health_fraction: float = 0.3  # below this share of its expected rate: degraded
    loiter_max_step_s: float = 600.0  # a longer silence ends a loitering run
    # one identity clash of an MMSI (two places at once, several MMSIs, changed static data)
    # shows again at every report until it ends: the findings of one MMSI and kind in the same
    # span of this length (local time, from midnight) are one episode, one detection id
    same_clash_s: float = 86_400.0


# findings that repeat with every report for as long as the clash lasts (see ``same_clash_s``)
CLASH_KINDS = frozenset({"track.two_places", "static.several_mmsi", "static.changed"})


def normalise_name(text: str | None) -> str | None:
    """A vessel name for comparison: NFKC (full-width digits become ASCII), upper case,
    without spaces, punctuation or AIS padding ('@')."""
    if not text:
        return None
    s = unicodedata.normalize("NFKC", text).upper()
    s = "".join(ch for ch in s if ch.isalnum())
    return s or None


@dataclass
class Columns:
    """A batch of reports as columns: positions (sorted by mmsi, time) and static rows."""

    reports: list[AisReport]
    tr: tracks.Tracks
    pos_row: np.ndarray  # index into reports of each position row
    t_all: np.ndarray  # every report's time, for receiver health
    rx_all: np.ndarray  # every report's receiver index (−1 = not in the registry)
    st_row: np.ndarray  # static rows (sorted by mmsi, time) → report index
    st_mmsi: np.ndarray
    st_name: np.ndarray  # id of the normalised AIS name, −1 = none
    st_eni: np.ndarray  # id of the ENI, −1 = none
    st_length: np.ndarray  # NaN = none
    st_draught: np.ndarray  # NaN = none
    st_half_step: np.ndarray
    names: list[str]  # name id → normalised name


@dataclass(frozen=True, slots=True)
class _Row:
    """What the columns take from one report."""

    ms: int
    rx: int  # receiver index, −1 = not in the registry
    mmsi: int
    position: bool  # a position report with a position
    static: bool
    x: float  # NaN unless ``position``
    y: float
    chainage: float
    off: float
    sog_kn: float
    name: str | None  # normalised, static rows only
    eni: str | None  # "ENI:…" normalised, static rows only
    length_m: float
    draught_m: float
    half_step_m: float


def _ms(ts: dt.datetime) -> int:
    return round(ts.timestamp() * 1000)


def _nan(v: float | None) -> float:
    return np.nan if v is None else float(v)


@dataclass
class Findings:
    detections: list[WaterDetection] = field(default_factory=list)
    passes: list[tuple[str, int, float]] = field(default_factory=list)  # capture, mmsi, score
    suppressed: list[tuple[str, str]] = field(default_factory=list)  # (what, why), for metrics


class WaterDetector:
    """All waterway detectors over one registry. Pure: a batch in, findings out."""

    def __init__(self, registry: WaterRegistry, settings: WaterSettings | None = None) -> None:
        self.reg = registry
        self.s = settings or WaterSettings()
        lon0, lat0 = registry.channel[0]
        self.plane = Plane(lon0, lat0)
        self.fairway = Fairway(self.plane, registry.channel)
        self.rx_index = {r.id: k for k, r in enumerate(registry.receivers)}
        self.by_name = {normalise_name(v.name): v for v in registry.vessels}
        self.tz_ms = round(registry.timezone_offset_hours * 3_600_000)
        self._derived: dict[int, tuple[AisReport, _Row]] = {}  # see _rows

    # --- columns -------------------------------------------------------------------------

    def columns(self, reports: Sequence[AisReport]) -> Columns:
        reps = list(reports)
        rows = self._rows(reps)
        t_all = np.array([w.ms for w in rows], np.int64)
        rx_all = np.array([w.rx for w in rows], np.int64)
        pos = [k for k, w in enumerate(rows) if w.position]
        mmsi = np.array([rows[k].mmsi for k in pos], np.int64)
        order = tracks.sort_order(mmsi, t_all[pos]) if pos else np.zeros(0, np.int64)
        pos_row = np.asarray(pos, np.int64)[order]
        prow = [rows[k] for k in pos_row.tolist()]
        tr = tracks.Tracks(
            mmsi=mmsi[order], t_ms=t_all[pos_row],
            x=np.array([w.x for w in prow], np.float64),
            y=np.array([w.y for w in prow], np.float64),
            sog_kn=np.array([w.sog_kn for w in prow], np.float64),
            chainage=np.array([w.chainage for w in prow], np.float64),
            off=np.array([w.off for w in prow], np.float64),
        )  # fmt: skip
        st = [k for k, w in enumerate(rows) if w.static]
        st_mmsi = np.array([rows[k].mmsi for k in st], np.int64)
        st_order = tracks.sort_order(st_mmsi, t_all[st]) if st else np.zeros(0, np.int64)
        st_row = np.asarray(st, np.int64)[st_order]
        srow = [rows[k] for k in st_row.tolist()]
        ids: dict[str, int] = {}

        def ident(n: str | None) -> int:
            return -1 if n is None else ids.setdefault(n, len(ids))

        st_name = np.array([ident(w.name) for w in srow], np.int64)
        st_eni = np.array([ident(w.eni) for w in srow], np.int64)
        return Columns(
            reports=reps, tr=tr, pos_row=pos_row, t_all=t_all, rx_all=rx_all, st_row=st_row,
            st_mmsi=st_mmsi[st_order], st_name=st_name, st_eni=st_eni,
            st_length=np.array([w.length_m for w in srow], np.float64),
            st_draught=np.array([w.draught_m for w in srow], np.float64),
            st_half_step=np.array([w.half_step_m for w in srow], np.float64),
            names=list(ids),
        )  # fmt: skip

    def _rows(self, reps: list[AisReport]) -> list[_Row]:
        """Each report's row, worked out once per report object: the stage hands the reports
        of the window it keeps to every batch's :meth:`detect`, and the timestamps, the plane
        and the fairway's chainage were most of a batch's cost. Rows are kept with their
        reports (so that an id is never another report's), at most twice as many as the last
        call passed."""
        known = self._derived
        rows: list[_Row | None] = []
        fresh: list[int] = []
        for r in reps:
            hit = known.get(id(r))
            if hit is not None and hit[0] is r:
                rows.append(hit[1])
            else:
                rows.append(None)
                fresh.append(len(rows) - 1)
        if fresh:
            new = [reps[k] for k in fresh]
            has = [r.msg_type in POSITION_TYPES and r.lat is not None and r.lon is not None
                   for r in new]  # fmt: skip
            at = [r for r, h in zip(new, has, strict=True) if h]
            x, y = self.plane.xy(np.array([r.lon for r in at], np.float64),
                                 np.array([r.lat for r in at], np.float64))  # fmt: skip
            chain, off = self.fairway.chainage(x, y)
            where = iter(zip(x.tolist(), y.tolist(), np.asarray(chain, np.float64).tolist(),
                             np.asarray(off, np.float64).tolist(), strict=True))  # fmt: skip
            nan = (np.nan, np.nan, np.nan, np.nan)
            for k, r, h in zip(fresh, new, has, strict=True):
                static = r.msg_type in STATIC_TYPES
                x_m, y_m, chain_m, off_m = next(where) if h else nan
                rows[k] = _Row(
                    _ms(r.ts), self.rx_index.get(r.receiver_id, -1), r.mmsi, h, static,
                    x_m, y_m, chain_m, off_m, _nan(r.sog_kn),
                    normalise_name(r.name) if static else None,
                    normalise_name(f"ENI:{r.eni}" if r.eni else None) if static else None,
                    _nan(r.length_m), _nan(r.draught_m), (r.draught_resolution_m or 0.1) / 2,
                )  # fmt: skip
        done = cast(list[_Row], rows)  # every row is filled in now
        if len(known) + len(fresh) > 2 * len(reps):  # forget the reports no longer passed
            self._derived = {id(r): (r, w) for r, w in zip(reps, done, strict=True)}
        else:
            known.update((id(reps[k]), (reps[k], done[k])) for k in fresh)
        return done

    # --- the batch -----------------------------------------------------------------------

    def detect(
        self, reports: Sequence[AisReport], captures: Sequence[VesselCapture] = ()
    ) -> Findings:
        c = self.columns(reports)
        health = tracks.ReceiverHealth(
            c.t_all, c.rx_all, [r.expected_per_min for r in self.reg.receivers],
            window_ms=round(self.s.health_window_s * 1000), fraction=self.s.health_fraction,
        )  # fmt: skip
        out = Findings()
        for cp in self.reg.checkpoints:
            here = [x for x in captures if x.checkpoint_id == cp.id]
            if here:
                self._checkpoint(c, health, cp, here, out)
        self._gaps(c, health, out)
        self._jumps(c, out)
        self._static(c, out)
        self._signals(c, out)
        self._dredging(c, out)
        return out

    # --- pass association, dark vessels, hull names, measured draught ----------------------

    def _checkpoint(
        self, c: Columns, health: tracks.ReceiverHealth, cp: Checkpoint,
        captures: list[VesselCapture], out: Findings,
    ) -> None:  # fmt: skip
        s = self.s
        line = (self.plane.point(cp.line[0]), self.plane.point(cp.line[1]))
        cross = tracks.crossings(c.tr, line, round(s.crossing_max_step_s * 1000))
        cap_ms = np.array([_ms(x.ts) for x in captures], np.int64)
        cap_up = np.array([x.direction == "up" for x in captures], bool)
        cross_mmsi = c.tr.mmsi[cross.i]
        agrees = np.full((len(captures), len(cross.i)), -1, np.int8)
        for a, cap in enumerate(captures):
            hull = normalise_name(cap.hull_text)
            for b, m in enumerate(cross_mmsi.tolist()):
                vessel = self.reg.by_mmsi.get(m)
                if hull is not None and vessel is not None:
                    agrees[a, b] = 1 if normalise_name(vessel.name) == hull else 0
        window_ms = round(s.window_s * 1000)
        scores = assoc.score_matrix(cap_ms, cap_up, cross.t_ms, cross.up, agrees, window_ms)
        matched = dict(assoc.assign(scores))
        for a, cap in enumerate(captures):
            hull_vessel = self.by_name.get(normalise_name(cap.hull_text))
            col = matched.get(a)
            if col is None:
                self._unmatched(c, health, cp, cap, hull_vessel, out)
                continue
            m, score = int(cross_mmsi[col]), float(scores[a, col])
            out.passes.append((cap.capture_id, m, score))
            rows = [int(c.pos_row[cross.i[col]]), int(c.pos_row[cross.j[col]])]
            vessel = self.reg.by_mmsi.get(m)
            if agrees[a, col] == 0 and vessel is not None:
                reasons = [
                    f"船体船名 {cap.hull_text} 与AIS身份 MMSI {m} 登记船名 {vessel.name} 不符",
                    f"过境时间差 {abs(int(cap_ms[a] - cross.t_ms[col])) / 1000:.0f} s",
                ]
                if cap.hull_confidence is not None:
                    reasons.append(f"船名识别置信度 {cap.hull_confidence:.2f}")
                self._emit(out, "water.identity", "pass.hull_name", cp.id, cap.ts, m, c, rows,
                           score, reasons, {}, capture=cap, vessel=vessel)  # fmt: skip
            self._measured_draught(c, cp, cap, vessel or hull_vessel, m, rows, score, out)

    def _unmatched(
        self, c: Columns, health: tracks.ReceiverHealth, cp: Checkpoint, cap: VesselCapture,
        vessel: RegisteredVessel | None, out: Findings,
    ) -> None:  # fmt: skip
        t = _ms(cap.ts)
        half = round(self.s.window_s * 1000)
        if vessel is not None and not vessel.ais_required:
            out.suppressed.append((cap.capture_id, "vessel is not required to carry AIS"))
            return
        degraded = [
            rid for rid in cp.receiver_ids
            if health.degraded_during(self.rx_index[rid], t - half, t + half)
        ]  # fmt: skip
        if degraded:
            out.suppressed.append((cap.capture_id, f"receiver degraded: {', '.join(degraded)}"))
            return
        reasons = [
            f"检查点 {cp.name} 拍到过境船舶, 前后 {self.s.window_s:g} s 内无AIS航迹穿越检查线",
            f"AIS基站 {', '.join(cp.receiver_ids)} 工作正常",
        ]
        self._emit(out, "water.ais_off", "pass.no_ais", cp.id, cap.ts, None, c, [], 0.9,
                   reasons, {"window_s": self.s.window_s}, capture=cap, vessel=vessel)  # fmt: skip
        self._measured_draught(c, cp, cap, vessel, None, [], 0.9, out)

    def _measured_draught(
        self, c: Columns, cp: Checkpoint, cap: VesselCapture, vessel: RegisteredVessel | None,
        mmsi: int | None, rows: list[int], confidence: float, out: Findings,
    ) -> None:  # fmt: skip
        if cap.draught_m is None or vessel is None or cp.draught_uncertainty_m is None:
            return
        half = np.array([cp.draught_uncertainty_m])
        load_line = np.array([vessel.load_line_draught_m])
        if not tracks.over_draught(np.array([cap.draught_m]), half, load_line)[0]:
            return
        reasons = [
            f"实测吃水 {cap.draught_m:.2f} m (±{cp.draught_uncertainty_m:.2f} m) "
            f"超过载重线吃水 {vessel.load_line_draught_m:.2f} m"
        ]
        quantities = {"draught_m": cap.draught_m, "load_line_m": vessel.load_line_draught_m,
                      "uncertainty_m": cp.draught_uncertainty_m}  # fmt: skip
        self._emit(out, "water.overdraught", "pass.measured_draught", cp.id, cap.ts, mmsi, c,
                   rows, confidence, reasons, quantities, capture=cap, vessel=vessel)  # fmt: skip

    # --- AIS gaps in monitored sections --------------------------------------------------

    def _gaps(self, c: Columns, health: tracks.ReceiverHealth, out: Findings) -> None:
        tr = c.tr
        for sec in self.reg.sections:
            zone = polygon(self.plane, sec.polygon)
            i, j = tracks.gaps(tr, inside(zone, tr.x, tr.y), round(sec.max_gap_s * 1000))
            for a, b in zip(i.tolist(), j.tolist(), strict=True):
                t0, t1 = int(tr.t_ms[a]), int(tr.t_ms[b])
                m = int(tr.mmsi[a])
                degraded = [
                    rid for rid in sec.receiver_ids
                    if health.degraded_during(self.rx_index[rid], t0, t1)
                ]  # fmt: skip
                if degraded:
                    out.suppressed.append((f"gap {m} {t0}", f"receiver degraded: {degraded}"))
                    continue
                gap_s = (t1 - t0) / 1000
                reasons = [
                    f"MMSI {m} 在监控河段 {sec.name} 内 {gap_s:.0f} s 无AIS报告 "
                    f"(上限 {sec.max_gap_s:g} s), 期间基站工作正常"
                ]
                rows = [int(c.pos_row[a]), int(c.pos_row[b])]
                self._emit(out, "water.ais_off", "track.gap", sec.id, c.reports[rows[1]].ts, m,
                           c, rows, 0.7, reasons, {"gap_s": gap_s})  # fmt: skip

    # --- identity ------------------------------------------------------------------------

    def _jumps(self, c: Columns, out: Findings) -> None:
        s, tr = self.s, c.tr
        jp = tracks.jumps(tr, self.reg.max_speed_kn, s.jump_min_distance_m, s.channel_band_m)
        for a, b, dist, speed in zip(jp.i.tolist(), jp.j.tolist(), jp.distance_m.tolist(),
                                     jp.speed_kn.tolist(), strict=True):  # fmt: skip
            m = int(tr.mmsi[a])
            dt_s = (int(tr.t_ms[b]) - int(tr.t_ms[a])) / 1000
            reasons = [
                f"MMSI {m} 在 {dt_s:.0f} s 内相距 {dist:.0f} m, 推算航速 {speed:.1f} kn "
                f"超过 {self.reg.max_speed_kn:g} kn: 同一MMSI同时出现在两处"
            ]
            rows = [int(c.pos_row[a]), int(c.pos_row[b])]
            q = {"distance_m": dist, "implied_speed_kn": min(speed, 1e6)}
            self._emit(out, "water.identity", "track.two_places", CHANNEL,
                       c.reports[rows[1]].ts, m, c, rows, 0.8, reasons, q)  # fmt: skip

    def _static(self, c: Columns, out: Findings) -> None:
        tol = self.s.length_tolerance_m
        i, j = tracks.static_changes(c.st_mmsi, c.st_name, c.st_length, tol)
        for a, b in zip(i.tolist(), j.tolist(), strict=True):
            ra, rb = c.reports[int(c.st_row[a])], c.reports[int(c.st_row[b])]
            reasons = [f"MMSI {ra.mmsi} 静态数据被改: 船名 {ra.name} → {rb.name}, "
                       f"船长 {ra.length_m} → {rb.length_m} m"]  # fmt: skip
            self._emit(out, "water.identity", "static.changed", CHANNEL, rb.ts, rb.mmsi, c,
                       [int(c.st_row[a]), int(c.st_row[b])], 0.7, reasons, {})  # fmt: skip
        by_time = tracks.sort_order(np.zeros(len(c.st_row), np.int64), c.t_all[c.st_row])
        for key, what in ((c.st_eni, "ENI"), (c.st_name, "船名")):
            for r in by_time[tracks.shared_identities(key[by_time], c.st_mmsi[by_time])].tolist():
                rep = c.reports[int(c.st_row[r])]
                # the rows up to this one: those read ahead of it depend on how far the stage
                # had read when it decided
                earlier = c.t_all[c.st_row] <= c.t_all[c.st_row[r]]
                same = (key == key[r]) & (c.st_mmsi != c.st_mmsi[r]) & earlier
                others = sorted(set(c.st_mmsi[same].tolist()))
                reasons = [f"{what} {rep.eni if what == 'ENI' else rep.name} 由多个MMSI播发: "
                           f"{', '.join(map(str, [*others, rep.mmsi]))}"]  # fmt: skip
                rows = [int(c.st_row[k]) for k in np.flatnonzero((key == key[r]) & earlier)]
                self._emit(out, "water.identity", "static.several_mmsi", CHANNEL, rep.ts,
                           rep.mmsi, c, rows, 0.8, reasons, {})  # fmt: skip
        # against the registry: what the MMSI's registered vessel must broadcast
        reg_name, reg_len, load_line = self._registered(c)
        ais_name_differs = tracks.differs(c.st_name, reg_name, c.st_length, reg_len, tol)
        flagged: set[int] = set()
        for r in np.flatnonzero(ais_name_differs).tolist():
            rep = c.reports[int(c.st_row[r])]
            if rep.mmsi in flagged:
                continue  # one finding per MMSI and batch; its first report
            flagged.add(rep.mmsi)
            v = self.reg.by_mmsi[rep.mmsi]
            reasons = [f"MMSI {rep.mmsi} 播发 船名 {rep.name} 船长 {rep.length_m} m, "
                       f"登记为 {v.ais_name or v.name} {v.length_m:g} m"]  # fmt: skip
            self._emit(out, "water.identity", "static.registry", CHANNEL, rep.ts, rep.mmsi,
                       c, [int(c.st_row[r])], 0.7, reasons, {}, vessel=v)  # fmt: skip
        over = tracks.over_draught(c.st_draught, c.st_half_step, load_line)
        done: set[int] = set()
        for r in np.flatnonzero(over).tolist():
            rep = c.reports[int(c.st_row[r])]
            if rep.mmsi in done:
                continue
            done.add(rep.mmsi)
            v = self.reg.by_mmsi[rep.mmsi]
            reasons = [f"AIS报告吃水 {rep.draught_m} m 超过载重线吃水 {v.load_line_draught_m} m"]
            q = {"draught_m": float(c.st_draught[r]), "load_line_m": v.load_line_draught_m}
            self._emit(out, "water.overdraught", "static.reported_draught", CHANNEL, rep.ts,
                       rep.mmsi, c, [int(c.st_row[r])], 0.7, reasons, q, vessel=v)  # fmt: skip

    def _registered(self, c: Columns) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per static row: the registered AIS name id (−1 when the registry has none, or the
        name never appears in the batch: then it differs if the row has a name), length and
        load-line draught (NaN for an MMSI the registry does not know)."""
        ids = {n: k for k, n in enumerate(c.names)}
        unseen = len(ids)  # an id no row has: a registered name nobody broadcast
        name_of: dict[int, int] = {}
        for v in self.reg.vessels:
            if v.mmsi is not None and v.ais_name:
                name_of[v.mmsi] = ids.get(normalise_name(v.ais_name) or "", unseen)
        m = c.st_mmsi.tolist()
        known = [self.reg.by_mmsi.get(x) for x in m]
        reg_name = np.array([name_of.get(x, -1) for x in m], np.int64)
        reg_len = np.array([v.length_m if v else np.nan for v in known], np.float64)
        load = np.array([v.load_line_draught_m if v else np.nan for v in known], np.float64)
        return reg_name, reg_len, load

    # --- 冲关: entering a controlled section against its signal ----------------------------

    def _signals(self, c: Columns, out: Findings) -> None:
        tz = self.reg.timezone_offset_hours
        step = round(self.s.crossing_max_step_s * 1000)
        for cs in self.reg.controlled_sections:
            for entry, up, windows in (
                (cs.entry_up, True, cs.open_up), (cs.entry_down, False, cs.open_down),
            ):  # fmt: skip
                line = (self.plane.point(entry[0]), self.plane.point(entry[1]))
                cross = tracks.crossings(c.tr, line, step)
                minute = local_minute(cross.t_ms, tz)
                closed = ~in_windows(minute, [w.minutes() for w in windows]) & (cross.up == up)
                for k in np.flatnonzero(closed).tolist():
                    a, b = int(cross.i[k]), int(cross.j[k])
                    m = int(c.tr.mmsi[a])
                    when = dt.datetime.fromtimestamp(int(cross.t_ms[k]) / 1000, self.reg.tz)
                    way = "上行" if up else "下行"
                    reasons = [
                        f"MMSI {m} {when:%H:%M:%S} {way}驶入 {cs.name}, 该时段信号禁止{way}通行"
                    ]
                    rows = [int(c.pos_row[a]), int(c.pos_row[b])]
                    self._emit(out, "water.signal", f"section.entry_{'up' if up else 'down'}",
                               cs.id, when, m, c, rows, 0.8, reasons, {})  # fmt: skip

    # --- dredging in a no-dredging zone ----------------------------------------------------

    def _dredging(self, c: Columns, out: Findings) -> None:
        """《长江保护法》 Art. 28: no dredging in a 禁采区 or 禁采期, licence or not. What looks
        like dredging: a registered dredger staying, or any vessel moving slowly about a spot
        (above ``min_working_kn``: a vessel at anchor only swings)."""
        tr, tz = c.tr, self.reg.timezone_offset_hours
        if len(tr) == 0:
            return
        dredger = np.isin(tr.mmsi, [v.mmsi or 0 for v in self.reg.vessels if v.kind == "dredger"])
        minute = local_minute(tr.t_ms, tz)
        for z in self.reg.no_dredging_zones:
            with np.errstate(invalid="ignore"):
                slow = tr.sog_kn <= z.max_speed_kn  # NaN: speed unknown, not slow
                working = dredger | (tr.sog_kn >= z.min_working_kn)
            ok = (
                inside(polygon(self.plane, z.polygon), tr.x, tr.y)
                & in_windows(minute, [z.night.minutes()]) & slow & working
            )  # fmt: skip
            runs = tracks.loiter_runs(
                tr, ok, round(z.min_dwell_s * 1000), round(self.s.loiter_max_step_s * 1000)
            )
            # the finding is the run up to the report where it reached the dwell: where it
            # ends depends on how much of it had been read when the stage decided, so the
            # run's end in the id or the text would make another detection of the same input
            for a, r in zip(runs.start.tolist(), runs.reached.tolist(), strict=True):
                m = int(tr.mmsi[a])
                dwell = (int(tr.t_ms[r]) - int(tr.t_ms[a])) / 1000
                v = self.reg.by_mmsi.get(m)
                licence = "持采砂许可, 禁采区内不予豁免" if v and any(
                    lic.kind == "sand_dredging" for lic in v.licences) else "无采砂许可"  # fmt: skip
                reasons = [
                    f"MMSI {m} 在禁采区 {z.name} 监控时段内低速作业已达 {dwell / 60:.0f} min "
                    f"(航速 {z.min_working_kn:g}–{z.max_speed_kn:g} kn"
                    f"{', 登记为采砂船' if v and v.kind == 'dredger' else ''}), {licence}"
                ]
                rows = [int(c.pos_row[k]) for k in (a, r)]
                q = {"dwell_s": dwell, "max_speed_kn": z.max_speed_kn}
                self._emit(out, "water.dredging", "zone.night_loiter", z.id,
                           c.reports[rows[1]].ts, m, c, rows, 0.7, reasons, q)  # fmt: skip

    # --- one finding ---------------------------------------------------------------------

    def _emit(
        self, out: Findings, code: WaterCode, kind: str, site_id: str, ts: dt.datetime,
        mmsi: int | None, c: Columns, rows: list[int], confidence: float, reasons: list[str],
        quantities: dict[str, float], *, capture: VesselCapture | None = None,
        vessel: RegisteredVessel | None = None,
    ) -> None:  # fmt: skip
        reps = [c.reports[k] for k in rows]
        vessel = vessel or (self.reg.by_mmsi.get(mmsi) if mmsi is not None else None)
        ais_name = next((r.name for r in reps if r.name), None)
        report_ids = list(dict.fromkeys(r.report_id for r in reps))
        inputs = [capture.capture_id] if capture else []
        receivers = sorted({r.receiver_id for r in reps})
        evidence: dict[str, Any] = {"kind": kind}
        if capture is not None:
            evidence["checkpoint_id"] = capture.checkpoint_id
            if capture.hull_text is not None and capture.hull_confidence is not None:
                evidence["hull_confidence"] = capture.hull_confidence
        # a clash's id is its episode's, not its reports': which report of it is found first
        # depends on where a batch or a restart cut the input, the episode does not
        if kind in CLASH_KINDS and mmsi is not None:
            episode = (_ms(ts) + self.tz_ms) // round(self.s.same_clash_s * 1000)
            detection_id = derive_id("wdet", kind, site_id, mmsi, "episode", episode)
        else:
            detection_id = derive_id("wdet", kind, site_id, mmsi, *inputs, *report_ids)
        out.detections.append(
            WaterDetection(
                detection_id=detection_id,
                detector=f"{DETECTOR}.{kind}", detector_version=VERSION,
                violation_code=code, legal_basis=LEGAL_BASIS[code], site_id=site_id, ts=ts,
                device_id=capture.camera_id if capture else "+".join(receivers) or "ais",
                mmsi=mmsi, vessel_name=vessel.name if vessel else None, ais_name=ais_name,
                hull_name=capture.hull_text if capture else None,
                eni=next((r.eni for r in reps if r.eni), vessel.eni if vessel else None),
                capture_id=capture.capture_id if capture else None, report_ids=report_ids,
                receiver_ids=receivers,
                confidence=round(min(max(confidence, 0.0), 1.0), 3), reasons=reasons,
                images=list(capture.images) if capture else [],
                quantities={k: float(v) for k, v in quantities.items()}, evidence=evidence,
            )
        )  # fmt: skip


__all__ = [
    "CLASH_KINDS",
    "KNOT_MPS",
    "Findings",
    "WaterDetector",
    "WaterSettings",
    "normalise_name",
]
