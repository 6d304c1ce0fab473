"""WIM–ANPR matching: nearest capture of the same lane, ambiguity, windows, batching, offsets."""

from __future__ import annotations

import datetime as dt

from detectors import Matcher
from events import AnprCapture, WimRecord

T0 = dt.datetime(2026, 11, 22, 8, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))


def wim(rid: str, s: float, lane: int = 1, site: str = "S1") -> WimRecord:
    return WimRecord(
        record_id=rid, site_id=site, device_id="W", lane=lane, ts=T0 + dt.timedelta(seconds=s),
        speed_kmh=50.0, axle_count=2, axle_weights_kg=[6000, 12000], axle_spacings_mm=[4700],
        gross_weight_kg=18000,
    )  # fmt: skip


def cap(cid: str, s: float, lane: int = 1, plate: str | None = "湘A12345") -> AnprCapture:
    return AnprCapture(
        capture_id=cid, site_id="S1", camera_id="C", lane=lane,
        ts=T0 + dt.timedelta(seconds=s), plate=plate, plate_color="yellow", confidence=0.95,
    )  # fmt: skip


def feed(m: Matcher, items: list) -> list:
    out = []
    for off, item in enumerate(items):
        if isinstance(item, WimRecord):
            m.add_wim(item, ("road.wim", 0, off))
        else:
            m.add_capture(item, ("road.anpr", 0, off))
        out += m.ready()
    return out + m.ready(flush=True)


def test_nearest_capture_of_the_same_lane() -> None:
    got = feed(Matcher(1.0), [wim("w1", 0), cap("c2", 0.1, lane=2), cap("c1", 0.2), cap("x", 9)])
    assert [(m.record.record_id, m.capture.capture_id if m.capture else None) for m in got] == [
        ("w1", "c1")
    ]
    assert got[0].confidence == 0.8 and not got[0].ambiguous


def test_outside_window_is_no_capture_and_edge_is_inside() -> None:
    got = feed(Matcher(1.0), [wim("w1", 0), cap("c1", 1.001), wim("w2", 5), cap("c2", 6.0)])
    assert got[0].capture is None and got[0].confidence == 0.0
    assert got[1].capture is not None and got[1].capture.capture_id == "c2"
    assert got[1].confidence == 0.0  # exactly at the window's edge: matched, least confident


def test_two_captures_or_two_trucks_in_the_window_are_ambiguous() -> None:
    two_captures = feed(Matcher(1.0), [wim("w1", 0), cap("c1", 0.1), cap("c2", 0.5), cap("z", 5)])
    assert two_captures[0].ambiguous
    two_trucks = feed(Matcher(1.0), [wim("w1", 0), wim("w2", 0.6), cap("c1", 0.3), cap("z", 5)])
    assert two_trucks[0].ambiguous  # c1 could be either truck's plate
    # and so it is for the second truck too: a capture is not taken from one record by another
    # (which would make the match depend on which record was decided first)
    assert two_trucks[1].ambiguous and two_trucks[1].capture is not None


def test_result_does_not_depend_on_batching_or_arrival_order() -> None:
    items = [wim("w1", 0), cap("c1", 0.1), wim("w2", 3), cap("c2", 2.8), wim("w3", 6), cap("c3", 7)]
    one = [
        (m.record.record_id, m.capture and m.capture.capture_id) for m in feed(Matcher(1.0), items)
    ]
    m = Matcher(1.0)
    for off, item in enumerate(reversed(items)):
        if isinstance(item, WimRecord):
            m.add_wim(item, ("road.wim", 0, off))
        else:
            m.add_capture(item, ("road.anpr", 0, off))
    other = [(x.record.record_id, x.capture and x.capture.capture_id) for x in m.ready(flush=True)]
    assert one == other == [("w1", "c1"), ("w2", "c2"), ("w3", "c3")]


def test_waits_for_both_topics_and_holds_offsets_until_matched() -> None:
    m = Matcher(1.0)
    m.add_wim(wim("w1", 0), ("road.wim", 0, 10))
    m.add_wim(wim("w2", 5), ("road.wim", 0, 11))
    assert m.ready() == []  # no capture seen yet for the site: the window is not closed
    assert m.held() == {("road.wim", 0): 10}
    m.add_capture(cap("c1", 0.1), ("road.anpr", 2, 4))
    m.add_capture(cap("c9", 9.0), ("road.anpr", 2, 5))
    assert [x.record.record_id for x in m.ready()] == ["w1"]  # w2 waits: wim topic is at 5 s
    # w1 stays as context for w2 (the gap to the vehicle before it): a restart reads it again
    assert m.held() == {("road.wim", 0): 10, ("road.anpr", 2): 5}
    m.add_wim(wim("w3", 9), ("road.wim", 0, 12))
    assert [x.record.record_id for x in m.ready()] == ["w2"]
    m.add_wim(wim("w4", 30), ("road.wim", 0, 13))
    m.add_capture(cap("c30", 30.0), ("road.anpr", 2, 6))
    assert [x.record.record_id for x in m.ready()] == ["w3"]
    assert m.held() == {("road.wim", 0): 13, ("road.anpr", 2): 6}  # what w4 may still need


def test_a_silent_camera_does_not_stall_its_site() -> None:
    now = [0.0]
    m = Matcher(1.0, max_wait_s=30, clock=lambda: now[0])
    m.add_capture(cap("c0", -50), ("road.anpr", 0, 0))
    m.add_wim(wim("w1", 0), ("road.wim", 0, 1))
    m.add_wim(wim("w2", 5), ("road.wim", 0, 2))
    now[0] = 29.0
    assert m.ready() == []  # the camera may just be behind
    now[0] = 31.0  # 31 s of wall clock without a capture: the camera is down
    m.add_wim(wim("w3", 9), ("road.wim", 0, 3))
    assert [(x.record.record_id, x.capture) for x in m.ready()] == [("w1", None), ("w2", None)]


def test_a_camera_quiet_while_its_backlog_is_still_unread_is_not_down() -> None:
    # a restart, a broker outage: a long quiet on the wall clock, but the broker still has
    # captures for this reader; matching without them would make plates "missing"
    now = [0.0]
    m = Matcher(1.0, max_wait_s=30, clock=lambda: now[0])
    m.add_capture(cap("c0", -50), ("road.anpr", 0, 0))
    m.add_wim(wim("w1", 0), ("road.wim", 0, 1))
    m.add_wim(wim("w2", 5), ("road.wim", 0, 2))
    now[0] = 300.0
    m.waiting = frozenset({"anpr"})
    assert m.ready() == []
    m.add_capture(cap("c1", 0.1), ("road.anpr", 0, 1))
    m.add_capture(cap("c2", 5.1), ("road.anpr", 0, 2))
    m.waiting = frozenset()
    got = m.ready(flush=True)
    assert [(x.record.record_id, x.capture and x.capture.capture_id) for x in got] == [
        ("w1", "c1"), ("w2", "c2")
    ]  # fmt: skip


def _run(items: list, cut: int | None = None) -> list:
    """Feed ``items`` (offsets in order per topic) in batches of 3; with ``cut``, a crash after
    that many items: a new matcher restores the checkpoint and reads again from the committed
    offsets, as the runner does."""
    offsets: dict[str, int] = {}
    tagged = []
    for item in items:
        topic = "road.wim" if isinstance(item, WimRecord) else "road.anpr"
        tagged.append((item, (topic, 0, offsets.setdefault(topic, 0))))
        offsets[topic] += 1
    m, out, committed, checkpoint = Matcher(1.0), [], {}, {}
    i = 0
    while i < len(tagged):
        if i == cut:
            m = Matcher(1.0)
            m.restore(checkpoint)
            starts = {t: committed.get((t, 0), 0) for t in ("road.wim", "road.anpr")}
            i = min(k for k, (_, pos) in enumerate(tagged) if pos[2] >= starts[pos[0]])
            tagged = [x for x in tagged[i:] if x[1][2] >= starts[x[1][0]]]
            i, cut = 0, None
        for item, pos in tagged[i : i + 3]:
            if isinstance(item, WimRecord):
                m.add_wim(item, pos)
            else:
                m.add_capture(item, pos)
        out += m.ready()
        read = {pos[0]: pos[2] + 1 for _, pos in tagged[: i + 3]}
        held = m.held()
        committed = {(t, 0): min(o, held.get((t, 0), o)) for t, o in read.items()}
        checkpoint = m.checkpoint()
        i += 3
    out += m.ready(flush=True)
    return [(x.record.record_id, x.capture and x.capture.capture_id, x.ambiguous, x.gap_ms)
            for x in out]  # fmt: skip


def test_a_crash_anywhere_decides_every_record_once_and_the_same_way() -> None:
    items = []
    for k in range(12):  # pairs of trucks close together, their captures between them
        t = k * 4.0
        items += [wim(f"w{k}a", t), cap(f"c{k}a", t + 0.05), wim(f"w{k}b", t + 1.5),
                  cap(f"c{k}b", t + 1.55)]  # fmt: skip
    clean = _run(items)
    assert len(clean) == 24 and all(c is not None for _, c, _, _ in clean)
    for cut in range(3, len(items), 3):
        got = _run(items, cut)
        assert sorted(got, key=str) == sorted(clean, key=str), cut  # no record twice, none lost


def test_a_reader_forgets_the_sites_of_partitions_it_lost() -> None:
    m = Matcher(1.0)
    m.add_wim(wim("w1", 0), ("road.wim", 0, 0))
    m.add_wim(wim("w2", 0, site="S2"), ("road.wim", 1, 0))
    m.keep_only(frozenset({("road.wim", 1), ("road.anpr", 1)}))
    assert m.held() == {("road.wim", 1): 0}
    assert [x.record.record_id for x in m.ready(flush=True)] == ["w2"]


def test_one_topic_read_far_ahead_of_the_other_changes_nothing() -> None:
    m = Matcher(1.0)
    for i in range(50):  # the whole WIM backlog first, as one partition's batch
        m.add_wim(wim(f"w{i}", i * 4), ("road.wim", 0, i))
    assert m.ready() == []
    for i in range(50):
        m.add_capture(cap(f"c{i}", i * 4 + 0.1), ("road.anpr", 0, i))
    got = m.ready() + m.ready(flush=True)
    assert [(x.record.record_id, x.capture and x.capture.capture_id) for x in got] == [
        (f"w{i}", f"c{i}") for i in range(50)
    ]


def test_a_flush_lets_go_of_captures_at_a_site_without_weighings() -> None:
    # a camera-only site: no WIM record will ever ask for its captures, so after a flush
    # nothing may hold their offsets back
    m = Matcher(1.0)
    m.add_capture(cap("c1", 0.0), ("road.anpr", 1, 7))
    assert m.held() == {("road.anpr", 1): 7}
    assert m.ready(flush=True) == []
    assert m.held() == {}
