"""Every vectorized waterway decision equals its per-record reference twin on any batch."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors import water_assoc as assoc
from detectors import water_tracks as tracks
from detectors.water_geo import (
    Fairway,
    Plane,
    chainage_one,
    in_windows,
    in_windows_one,
    local_minute,
)

PLANE = Plane(112.96, 28.3)
FAIRWAY = Fairway(PLANE, [(112.96, 28.3), (112.955, 28.25), (112.962, 28.2), (112.958, 28.15)])

# coordinates on a 10 m grid and times on whole seconds, so no comparison sits on a rounding edge
report = st.tuples(
    st.integers(1, 3),  # mmsi
    st.integers(0, 3600).map(lambda s: s * 1000),  # t_ms
    st.integers(-300, 300).map(lambda v: v * 10.0),  # x
    st.integers(-1500, 0).map(lambda v: v * 10.0),  # y (south of the reference point)
    st.one_of(st.none(), st.floats(0, 20, allow_nan=False)),  # sog
)


def make_tracks(rows: list[tuple[int, int, float, float, float | None]]) -> tracks.Tracks:
    mmsi = np.array([r[0] for r in rows], np.int64)
    t = np.array([r[1] for r in rows], np.int64)
    order = tracks.sort_order(mmsi, t)
    x = np.array([r[2] for r in rows], np.float64)[order]
    y = np.array([r[3] for r in rows], np.float64)[order]
    sog = np.array([np.nan if r[4] is None else r[4] for r in rows], np.float64)[order]
    chain, off = FAIRWAY.chainage(x, y)
    return tracks.Tracks(mmsi[order], t[order], x, y, sog, np.asarray(chain), np.asarray(off))


def consecutive(tr: tracks.Tracks) -> list[tuple[int, int]]:
    return [(k, k + 1) for k in range(len(tr) - 1) if tr.mmsi[k] == tr.mmsi[k + 1]]


@settings(max_examples=200, derandomize=True)
@given(st.lists(report, max_size=40))
def test_chainage_equals_segment_walk(rows: list) -> None:
    tr = make_tracks(rows)
    for k in range(len(tr)):
        s, d = chainage_one(FAIRWAY.points, float(tr.x[k]), float(tr.y[k]))
        assert math.isclose(s, tr.chainage[k], abs_tol=1e-6)
        assert math.isclose(d, tr.off[k], abs_tol=1e-6)


@settings(max_examples=300, derandomize=True)
@given(st.lists(report, max_size=40), st.integers(10, 600))
def test_crossings_equal_reference(rows: list, max_dt_s: int) -> None:
    tr = make_tracks(rows)
    line = ((-1000.0, -5000.0), (1500.0, -5000.0))
    got = tracks.crossings(tr, line, max_dt_s * 1000)
    want = []
    for i, j in consecutive(tr):
        if tr.t_ms[j] - tr.t_ms[i] > max_dt_s * 1000:
            continue
        p, q = (float(tr.x[i]), float(tr.y[i])), (float(tr.x[j]), float(tr.y[j]))
        t = tracks.crossing_one(p, q, int(tr.t_ms[i]), int(tr.t_ms[j]), line)
        if t is not None:
            want.append((i, j, t, bool(tr.chainage[j] > tr.chainage[i])))
    assert list(zip(got.i.tolist(), got.j.tolist(), got.t_ms.tolist(), got.up.tolist(),
                    strict=True)) == want  # fmt: skip


@settings(max_examples=300, derandomize=True)
@given(st.lists(report, max_size=40))
def test_jumps_equal_reference(rows: list) -> None:
    tr = make_tracks(rows)
    got = tracks.jumps(tr, 30.0, 1000.5, 400.0)
    want = [
        (i, j) for i, j in consecutive(tr)
        if tracks.jump_one(
            (tr.x[i], tr.y[i], tr.chainage[i], tr.off[i]),
            (tr.x[j], tr.y[j], tr.chainage[j], tr.off[j]),
            int(tr.t_ms[j] - tr.t_ms[i]), 30.0, 1000.5, 400.0,
        )
    ]  # fmt: skip
    assert list(zip(got.i.tolist(), got.j.tolist(), strict=True)) == want


@settings(max_examples=300, derandomize=True)
@given(st.lists(report, max_size=40), st.data())
def test_gaps_and_loitering_equal_reference(rows: list, data: st.DataObject) -> None:
    tr = make_tracks(rows)
    ok = np.array(data.draw(st.lists(st.booleans(), min_size=len(tr), max_size=len(tr))), bool)
    max_gap, dwell, step = 300_000, data.draw(st.integers(0, 2000)) * 1000, 600_000
    i, j = tracks.gaps(tr, ok, max_gap)
    want = [
        (a, b) for a, b in consecutive(tr)
        if tracks.gap_one(bool(ok[a]), bool(ok[b]), int(tr.t_ms[a]), int(tr.t_ms[b]), max_gap)
    ]  # fmt: skip
    assert list(zip(i.tolist(), j.tolist(), strict=True)) == want
    runs = tracks.loiter_runs(tr, ok, dwell, step)
    got = list(zip(runs.start.tolist(), runs.reached.tolist(), runs.end.tolist(), strict=True))
    assert got == tracks.loiter_runs_one(
        tr.mmsi.tolist(), tr.t_ms.tolist(), ok.tolist(), dwell, step
    )


static = st.tuples(
    st.integers(1, 4),  # mmsi
    st.integers(-1, 3),  # name id
    st.integers(-1, 2),  # eni id
    st.one_of(st.just(math.nan), st.integers(20, 30).map(float)),  # length
    st.one_of(st.just(math.nan), st.just(0.0), st.integers(10, 40).map(lambda v: v / 10)),
)


@settings(max_examples=300, derandomize=True)
@given(st.lists(static, max_size=30), st.lists(st.integers(15, 40), min_size=5, max_size=5))
def test_static_identity_and_draught_equal_reference(rows: list, load_dm: list[int]) -> None:
    rows = sorted(rows, key=lambda r: r[0])  # sorted by mmsi, stable: input order is time
    mmsi = np.array([r[0] for r in rows], np.int64)
    name = np.array([r[1] for r in rows], np.int64)
    eni = np.array([r[2] for r in rows], np.int64)
    length = np.array([r[3] for r in rows], np.float64)
    draught = np.array([r[4] for r in rows], np.float64)
    i, j = tracks.static_changes(mmsi, name, length, 2.0)
    want = [
        (k, k + 1) for k in range(len(rows) - 1)
        if mmsi[k] == mmsi[k + 1]
        and tracks.differs_one(int(name[k]), int(name[k + 1]), length[k], length[k + 1], 2.0)
    ]  # fmt: skip
    assert list(zip(i.tolist(), j.tolist(), strict=True)) == want
    for key in (name, eni):
        got = tracks.shared_identities(key, mmsi).tolist()
        assert got == tracks.shared_identities_one(key.tolist(), mmsi.tolist())
    load = np.array([load_dm[m] / 10 if m != 4 else math.nan for m in mmsi], np.float64)
    over = tracks.over_draught(draught, np.full(len(rows), 0.05), load).tolist()
    assert over == [
        tracks.over_draught_one(float(d), 0.05, float(ll))
        for d, ll in zip(draught, load, strict=True)
    ]
    # draught 0 ("not available") and NaN never flag, however low the load line
    assert not tracks.over_draught(np.array([0.0, np.nan]), np.zeros(2), np.zeros(2)).any()


@settings(max_examples=200, derandomize=True)
@given(
    st.lists(st.tuples(st.integers(0, 1), st.integers(0, 3600).map(lambda s: s * 1000)),
             max_size=80),
    st.lists(st.integers(0, 3600).map(lambda s: s * 1000), min_size=1, max_size=10),
)  # fmt: skip
def test_receiver_health_equals_counting_every_report(rows: list, probes: list[int]) -> None:
    t = np.array([r[1] for r in rows], np.int64)
    rx = np.array([r[0] for r in rows], np.int64)
    health = tracks.ReceiverHealth(t, rx, [2.0, 5.0], window_ms=300_000, fraction=0.3)
    for k, rate in enumerate((2.0, 5.0)):
        got = health.degraded(k, np.array(probes, np.int64)).tolist()
        times = [int(x) for x, r in zip(t, rx, strict=True) if r == k]
        assert got == [
            tracks.degraded_one(times, health.t_lo, health.t_hi, p, rate, 300_000, 0.3)
            for p in probes
        ]


hhmm = st.integers(0, 1439)


@settings(max_examples=300, derandomize=True)
@given(st.lists(st.tuples(hhmm, hhmm), max_size=3),
       st.lists(st.integers(0, 4_000_000_000_000), max_size=20))  # fmt: skip
def test_local_minute_and_windows_equal_reference(windows: list, times: list[int]) -> None:
    minute = local_minute(np.array(times, np.int64), 8)
    tz = dt.timezone(dt.timedelta(hours=8))
    for t, m in zip(times, minute.tolist(), strict=True):
        local = dt.datetime.fromtimestamp(t // 1000, tz)
        assert m == local.hour * 60 + local.minute
    got = in_windows(minute, windows).tolist()
    assert got == [in_windows_one(m, windows) for m in minute.tolist()]


@settings(max_examples=300, derandomize=True)
@given(st.data())
def test_assignment_is_optimal_and_scores_equal_reference(data: st.DataObject) -> None:
    n, m = data.draw(st.integers(0, 4)), data.draw(st.integers(0, 4))
    window = 120_000
    cap_ms = np.array(data.draw(st.lists(st.integers(0, 400), min_size=n, max_size=n))) * 1000
    cap_up = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)), bool)
    x_ms = np.array(data.draw(st.lists(st.integers(0, 400), min_size=m, max_size=m))) * 1000
    x_up = np.array(data.draw(st.lists(st.booleans(), min_size=m, max_size=m)), bool)
    agrees = np.array(
        data.draw(st.lists(st.sampled_from([-1, 0, 1]), min_size=n * m, max_size=n * m)), np.int8
    ).reshape(n, m)
    scores = assoc.score_matrix(
        cap_ms.astype(np.int64), cap_up, x_ms.astype(np.int64), x_up, agrees, window
    )
    for a in range(n):
        for b in range(m):
            name = None if agrees[a, b] == -1 else bool(agrees[a, b])
            want = assoc.pair_score(int(cap_ms[a] - x_ms[b]), window, cap_up[a] == x_up[b], name)
            assert math.isclose(scores[a, b], want, abs_tol=1e-12)
    pairs = assoc.assign(scores)
    assert len({r for r, _ in pairs}) == len(pairs) == len({c for _, c in pairs})
    count, total = assoc.best_brute_force(scores.tolist())
    assert len(pairs) == count
    assert math.isclose(sum(scores[r, c] for r, c in pairs), total, abs_tol=1e-9)


def test_assignment_matches_every_capture_it_can() -> None:
    """Capture 0 is nearest to crossing 0, but capture 1 can only be crossing 0: taking the
    nearest first would leave capture 1 "dark". The assignment gives both a track."""
    scores = np.array([[0.95, 0.20], [0.05, 0.0]])
    assert sorted(assoc.assign(scores)) == [(0, 1), (1, 0)]
