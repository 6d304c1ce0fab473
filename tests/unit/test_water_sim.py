"""The waterway traffic simulator: deterministic in its seed, real AIVDM sentences that the AIS
decoder reads without a rejection, ITU-R M.1371 reporting rates, the injected cases in the
truth, and the detectors finding exactly those on it."""

from __future__ import annotations

import datetime as dt
import itertools
import re
import statistics
from collections import defaultdict
from functools import cache
from pathlib import Path

import pytest

from detectors.water_detect import WaterDetector
from events.water import AisReport
from ingest.ais import AisDecoder, parse_line
from offsite.config import load_waterways
from sim.water import (
    DEGRADED_CHECK,
    DETECTORS,
    WaterSimConfig,
    WaterTraffic,
    score_water,
    simulate_water,
)

REG = load_waterways(Path(__file__).resolve().parents[2] / "configs" / "waterways.yaml")
CFG = WaterSimConfig(vessels=16, seed=3, images=False)


@cache
def traffic(cfg: WaterSimConfig = CFG) -> WaterTraffic:
    return simulate_water(REG, cfg)


@cache
def reports(cfg: WaterSimConfig = CFG) -> tuple[AisReport, ...]:
    decoder, out = AisDecoder(), []
    for raw in traffic(cfg).raws:
        report, rejected = decoder.feed(raw)
        assert rejected == [], (raw.sentence, rejected)
        if report is not None:
            out.append(AisReport.model_validate(report))
    assert decoder.flush() == []  # no part of a multi-sentence message left over
    return tuple(out)


def test_same_seed_same_sentences_captures_and_truth() -> None:
    a, b = traffic(), simulate_water(REG, CFG)
    assert [(r.receiver_id, r.ts, r.sentence) for r in a.raws] == [
        (r.receiver_id, r.ts, r.sentence) for r in b.raws
    ]
    assert [c.model_dump() for c in a.captures] == [c.model_dump() for c in b.captures]
    assert a.truth == b.truth
    other = simulate_water(REG, WaterSimConfig(vessels=16, seed=4, images=False))
    assert [r.sentence for r in other.raws] != [r.sentence for r in a.raws]


def test_every_line_is_a_tagged_aivdm_sentence_the_decoder_reads() -> None:
    t = traffic()
    assert t.raws and all(r.sentence.startswith("\\s:RX-XJ-0") for r in t.raws)
    assert all("!AIVDM," in r.sentence for r in t.raws)
    reps = reports()
    assert {r.msg_type for r in reps} == {1, 3, 5, 8, 18, 24}
    assert all(r.time_source == "tag_block" for r in reps)
    # each receiver keeps its own clock format: seconds on the first, milliseconds on the other
    for rx, digits in (("RX-XJ-01", 10), ("RX-XJ-02", 13)):
        raw = next(r for r in t.raws if r.receiver_id == rx)
        assert re.match(rf"^\\s:{rx},c:\d{{{digits}}}\*[0-9A-F]{{2}}\\!AIVDM,", raw.sentence)
        frag = parse_line(raw.sentence, rx, t.end)
        assert frag.tag_time is not None and abs(frag.tag_time - raw.ts) < dt.timedelta(seconds=1)
    assert {r.receiver_id for r in reps} == {"RX-XJ-01", "RX-XJ-02"}
    # multi-sentence type 5 came whole: two sentences each
    assert all(len(r.sentences) == 2 for r in reps if r.msg_type == 5)
    positions = [r for r in reps if r.msg_type in (1, 3, 18)]
    assert all(r.lat is not None and 28.1 < r.lat < 28.35 for r in positions)
    assert t.start <= min(r.ts for r in reps) and max(r.ts for r in reps) <= t.end


def _median_interval(mmsis: set[int | None], types: tuple[int, ...]) -> float:
    """Median seconds between consecutive reports of each MMSI at the healthy receiver."""
    times: dict[int, list[dt.datetime]] = defaultdict(list)
    for r in reports():
        if r.mmsi in mmsis and r.msg_type in types and r.receiver_id == "RX-XJ-02":
            times[r.mmsi].append(r.ts)
    gaps = [(b - a).total_seconds() for ts in times.values() for a, b in itertools.pairwise(ts)]
    return statistics.median(gaps)


def test_reporting_rates_per_class_and_state() -> None:
    v = traffic().vessels
    underway_a = {x.mmsi for x in v if x.role == "clean" and x.ais == "A"}
    moored = {x.mmsi for x in v if x.role == "moored"}
    class_b = {x.mmsi for x in v if x.role == "clean" and x.ais == "B"}
    assert _median_interval(underway_a, (1,)) == pytest.approx(10, abs=0.6)  # 0–14 kn
    assert _median_interval(moored, (3,)) == pytest.approx(180, abs=1)  # moored: 3 min
    assert _median_interval(class_b, (18,)) == pytest.approx(30, abs=0.6)  # class B CS
    assert _median_interval(underway_a, (5,)) == pytest.approx(360, abs=1)  # static, 6 min
    inland = {x.mmsi for x in v if x.eni is not None}
    assert _median_interval(inland, (8,)) == pytest.approx(360, abs=1)


def test_inland_extension_carries_eni_draught_and_load_state() -> None:
    by_mmsi = {m: x for x in traffic().vessels if x.ais and x.role != "clone"
               for m in (x.mmsi, *(e["mmsi"] for _, e in x.edits if "mmsi" in e))}  # fmt: skip
    inland = [r for r in reports() if r.msg_type == 8]
    assert inland and all(r.dac == 200 and r.fid == 10 for r in inland)
    for r in inland:
        v = by_mmsi[r.mmsi]
        assert (r.eni, r.length_m) == (v.eni, float(v.length_m))
        assert r.draught_m == pytest.approx(v.reported_draught_m, abs=0.005)
        assert r.loaded == ("loaded" if v.reported_draught_m >= 0.7 * v.load_line_m else "unloaded")
    # the vessel that leaves its draught unset sends 0: decoded as unknown
    (unset,) = [x for x in traffic().vessels if x.role == "draught_unknown"]
    sent = [r for r in reports() if r.mmsi == unset.mmsi and r.msg_type == 5]
    assert sent and all(r.draught_m is None for r in sent)


def test_the_degraded_receiver_gives_far_fewer_reports() -> None:
    (period,) = [t for t in traffic().truth if t.kind == "receiver_degraded"]
    rx = REG.receiver_index[period.site_id]
    a, b = dt.datetime.fromisoformat(period.ts), dt.datetime.fromisoformat(period.until or "")
    minutes = (b - a).total_seconds() / 60
    during = sum(1 for r in reports() if r.receiver_id == rx.id and a <= r.ts < b) / minutes
    before = sum(1 for r in reports() if r.receiver_id == rx.id
                 and a - dt.timedelta(minutes=30) <= r.ts < a) / 30  # fmt: skip
    assert before >= rx.expected_per_min  # healthy: at least its expected rate
    assert during < 0.3 * rx.expected_per_min  # degraded: far below it


def test_the_truth_lists_every_injected_case_and_the_look_alikes() -> None:
    truth = traffic().truth
    found = {t.detector for t in truth if t.detector}
    assert found == set(DETECTORS) - {"water.static.registry"}
    kinds = {t.kind for t in truth}
    assert {"dark", "gap", "hull_name", "two_places", "several_mmsi", "static_changed",
            "overdraught", "signal", "dredging", "draught_unknown", "licensed_dredging",
            "degraded", "receiver_degraded"} == kinds  # fmt: skip
    ids = {c.capture_id for c in traffic().captures}
    for t in truth:
        if t.detector and t.detector.startswith("water.pass."):
            assert t.capture_ids and set(t.capture_ids) <= ids, t
    dark = [c for c in traffic().captures
            if any(c.capture_id in t.capture_ids for t in truth if t.kind == "dark")]  # fmt: skip
    dark_names = {c.hull_text for c in dark}
    assert all(v.ais is None for v in traffic().vessels if v.name in dark_names)
    assert len([t for t in truth if t.kind == "signal"]) == CFG.signal


def test_the_detectors_find_exactly_the_injected_cases() -> None:
    found = WaterDetector(REG).detect(list(reports()), traffic().captures)
    rows = {name: rest for name, *rest in score_water(traffic().truth, found.detections)}
    for name in DETECTORS:
        expected, n, true_found, found_expected = rows[name]
        assert true_found == n and found_expected == expected, name
    assert rows[DEGRADED_CHECK] == [0, 0, 0, 0]
    assert any("receiver degraded" in why for _, why in found.suppressed)


def test_hull_images_and_camera_reads() -> None:
    store: dict[str, bytes] = {}

    def put(data: bytes) -> tuple[str, str]:
        import hashlib

        sha = hashlib.sha256(data).hexdigest()
        store[sha] = data
        return f"blob:{sha}", sha

    cfg = WaterSimConfig(vessels=4, seed=5, hull_text=False, dark=1, signal=1)
    t = simulate_water(REG, cfg, put_blob=put)
    assert t.captures and all(len(c.images) == 1 for c in t.captures)
    assert all(c.hull_text is None for c in t.captures)  # left to the OCR
    assert all(store[c.images[0].sha256][:2] == b"\xff\xd8" for c in t.captures)  # JPEG
    (mismatch, *_) = [x for x in t.truth if x.kind == "hull_name"]
    assert mismatch.capture_ids  # expected although the camera reads nothing itself


def test_too_short_a_window_is_refused() -> None:
    with pytest.raises(ValueError, match="minutes=60"):
        simulate_water(REG, WaterSimConfig(minutes=60))
