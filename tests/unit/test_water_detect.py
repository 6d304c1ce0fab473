"""The waterway detectors on traffic built from the shipped registry's geometry: each injected
case is found, clean traffic gives nothing, and a degraded receiver silences AIS-off findings."""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path

import numpy as np
import pytest

from detectors.water_detect import WaterDetector, normalise_name
from detectors.water_geo import KNOT_MPS
from events.water import AisReport, VesselCapture
from offsite.config import load_waterways

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "waterways.yaml"
REG = load_waterways(CONFIG)
TZ = REG.tz
NOON = dt.datetime(2026, 11, 22, 12, 0, tzinfo=TZ)
NIGHT = dt.datetime(2026, 11, 22, 22, 0, tzinfo=TZ)
SPAN = dt.timedelta(hours=1)
DET = WaterDetector(REG)
_ids = itertools.count()

A, B = 413801001, 413802002  # two registered cargo vessels
LICENSED, UNLICENSED = 413803008, 413803011  # dredgers


def rep(
    mmsi: int, ts: dt.datetime, rx: str = "RX-XJ-01", msg_type: int = 1, **kw: object
) -> AisReport:
    return AisReport.model_validate(
        {"report_id": f"r{next(_ids)}", "mmsi": mmsi, "msg_type": msg_type, "ts": ts,
         "time_source": "receiver", "receiver_id": rx, "sentences": ["-"], **kw}
    )  # fmt: skip


def chainage_of(lon: float, lat: float) -> float:
    x, y = DET.plane.xy(np.array([lon]), np.array([lat]))
    return float(DET.fairway.chainage(x, y)[0][0])


CP1 = chainage_of(REG.checkpoints[0].lon, REG.checkpoints[0].lat)
CP2 = chainage_of(REG.checkpoints[1].lon, REG.checkpoints[1].lat)
ENTRY_DOWN = chainage_of(112.959, 28.17)


def at(chainage: float, offset: float = 0.0) -> tuple[float, float]:
    return DET.plane.lonlat(*DET.fairway.at(chainage, offset))


def sail(
    mmsi: int, start: dt.datetime, chainage: float, knots: float, minutes: float,
    rx: str = "RX-XJ-01", step_s: int = 10,
) -> list[AisReport]:  # fmt: skip
    """Reports every ``step_s`` of a vessel along the fairway (knots < 0: downstream)."""
    out = []
    for k in range(int(minutes * 60 / step_s) + 1):
        lon, lat = at(chainage + knots * KNOT_MPS * k * step_s)
        out.append(rep(mmsi, start + dt.timedelta(seconds=k * step_s), rx,
                       lat=lat, lon=lon, sog_kn=abs(knots)))  # fmt: skip
    return out


def when_at(
    chainage: float, start_chainage: float, knots: float, start: dt.datetime
) -> dt.datetime:
    return start + dt.timedelta(seconds=(chainage - start_chainage) / (knots * KNOT_MPS))


def background(
    start: dt.datetime, quiet: tuple[dt.datetime, dt.datetime] | None = None
) -> list[AisReport]:
    """20 moored vessels, 10 heard by each receiver, each every 15 s: 40 reports a minute per
    receiver, its expected rate. ``quiet``: RX-XJ-01 hears nothing then (degraded)."""
    out = []
    for n in range(20):
        rx = "RX-XJ-01" if n % 2 == 0 else "RX-XJ-02"
        lon, lat = 112.9500 + n * 0.0002, 28.2400
        for k in range(int(SPAN.total_seconds() // 15) + 1):
            ts = start + dt.timedelta(seconds=15 * k + n % 15)
            if quiet and rx == "RX-XJ-01" and quiet[0] <= ts <= quiet[1]:
                continue
            out.append(rep(412_000_001 + n, ts, rx, lat=lat, lon=lon, sog_kn=0.0))
    return out


def capture(cp: int, ts: dt.datetime, hull: str | None, direction: str = "up",
            draught: float | None = None) -> VesselCapture:  # fmt: skip
    c = REG.checkpoints[cp]
    return VesselCapture(
        capture_id=f"cap-{next(_ids)}", checkpoint_id=c.id, camera_id=c.camera_id, ts=ts,
        direction=direction, hull_text=hull, draught_m=draught,  # type: ignore[arg-type]
    )  # fmt: skip


def codes(findings: object) -> list[tuple[str, str, int | None]]:
    return sorted((d.violation_code, d.detector, d.mmsi) for d in findings.detections)  # type: ignore[attr-defined]


# --- clean traffic ---------------------------------------------------------------------------


def clean_pass() -> tuple[list[AisReport], VesselCapture]:
    t0 = NOON + dt.timedelta(minutes=10)
    track = sail(A, t0, CP1 - 3000, 8.0, 40)
    static = [rep(A, t0 + dt.timedelta(minutes=m), msg_type=5, name="XIANGCHANGSHAHUO1001",
                  length_m=68.0, draught_m=3.0, draught_resolution_m=0.1) for m in (1, 7)]  # fmt: skip
    cap = capture(0, when_at(CP1, CP1 - 3000, 8.0, t0) + dt.timedelta(seconds=4), "湘长沙货 1001")
    return [*background(NOON), *track, *static], cap


def test_clean_traffic_gives_a_pass_and_no_finding() -> None:
    reports, cap = clean_pass()
    found = DET.detect(reports, [cap])
    assert found.detections == []
    ((capture_id, mmsi, score),) = found.passes
    assert (capture_id, mmsi) == (cap.capture_id, A) and score > 0.9


def test_normalised_names_compare_as_painted() -> None:
    assert normalise_name("湘长沙货１００１") == normalise_name("湘长沙货 1001") == "湘长沙货1001"
    assert normalise_name("XIANGCHANGSHAHUO1001@@@") == "XIANGCHANGSHAHUO1001"
    assert normalise_name("  ") is None


# --- AIS off: dark vessels and gaps, not while a receiver is degraded ---------------------------


def test_a_photographed_vessel_with_no_track_is_dark() -> None:
    reports, _ = clean_pass()
    dark = capture(0, NOON + dt.timedelta(minutes=30), "湘岳阳货2002")
    found = DET.detect(reports, [dark])
    (d,) = found.detections
    assert (d.violation_code, d.capture_id, d.mmsi) == ("water.ais_off", dark.capture_id, None)
    assert d.vessel_name == "湘岳阳货2002" and d.enforceable is False and d.legal_basis


def test_no_dark_vessel_and_no_gap_while_the_receiver_is_degraded() -> None:
    t = NOON + dt.timedelta(minutes=30)
    quiet = (t - dt.timedelta(minutes=15), t + dt.timedelta(minutes=15))
    found = DET.detect(background(NOON, quiet), [capture(0, t, "湘岳阳货2002")])
    assert found.detections == []
    reasons = [why for _, why in found.suppressed]
    assert any("RX-XJ-01" in why for why in reasons)
    assert len(reasons) == 1 + 10  # the capture, and the 10 moored vessels gone quiet


def test_a_gap_inside_the_section_while_receivers_work() -> None:
    t0 = NOON + dt.timedelta(minutes=5)
    track = sail(B, t0, CP2 - 500, 4.0, 50, rx="RX-XJ-02")
    silent = [
        r for r in track if not t0 + dt.timedelta(minutes=20) < r.ts < t0 + dt.timedelta(minutes=32)
    ]
    found = DET.detect([*background(NOON), *silent])
    (d,) = found.detections
    assert (d.violation_code, d.detector, d.mmsi) == ("water.ais_off", "water.track.gap", B)
    assert d.quantities["gap_s"] > REG.sections[0].max_gap_s
    # the same track, with its silence shorter than the limit: nothing
    short = [
        r for r in track if not t0 + dt.timedelta(minutes=20) < r.ts < t0 + dt.timedelta(minutes=29)
    ]
    assert DET.detect([*background(NOON), *short]).detections == []


# --- identity --------------------------------------------------------------------------------


def test_one_mmsi_at_two_places() -> None:
    reports, cap = clean_pass()
    t = NOON + dt.timedelta(minutes=25, seconds=5)
    lon, lat = at(CP2 + 200)
    clone = rep(A, t, "RX-XJ-02", lat=lat, lon=lon, sog_kn=6.0)
    found = DET.detect([*reports, clone], [cap])
    kinds = {d.detector for d in found.detections}
    assert kinds == {"water.track.two_places"}
    assert all(d.quantities["implied_speed_kn"] > 30 for d in found.detections)


def test_several_mmsis_one_name_and_static_data_changed() -> None:
    reports, cap = clean_pass()
    t = NOON + dt.timedelta(minutes=20)
    other = rep(412_345_678, t, msg_type=5, name="XIANGCHANGSHAHUO1001", length_m=68.0)
    renamed = rep(B, t, msg_type=5, name="XIANGYUEYANGHUO2002", length_m=55.0)
    renamed2 = rep(B, t + dt.timedelta(minutes=6), msg_type=5, name="XIANGYUEYANG9", length_m=55.0)
    found = DET.detect([*reports, other, renamed, renamed2], [cap])
    assert codes(found) == [
        ("water.identity", "water.static.changed", B),
        ("water.identity", "water.static.registry", B),  # XIANGYUEYANG9 is not its name
        ("water.identity", "water.static.several_mmsi", 412_345_678),
    ]


def test_the_hull_name_disagrees_with_the_ais_identity() -> None:
    reports, cap = clean_pass()
    wrong = cap.model_copy(update={"hull_text": "湘岳阳货2002"})
    found = DET.detect(reports, [wrong])
    assert codes(found) == [("water.identity", "water.pass.hull_name", A)]
    assert found.passes[0][1] == A  # still tied to the only track that crossed


def test_two_captures_two_tracks_resolved_by_assignment() -> None:
    """Two vessels cross 40 s apart; the cameras' names decide which is which."""
    t0 = NOON + dt.timedelta(minutes=10)
    a = sail(A, t0, CP1 - 3000, 8.0, 30)
    b = sail(B, t0 + dt.timedelta(seconds=40), CP1 - 3000, 8.0, 30)
    ta = when_at(CP1, CP1 - 3000, 8.0, t0)
    caps = [capture(0, ta + dt.timedelta(seconds=30), "湘长沙货1001"),
            capture(0, ta + dt.timedelta(seconds=35), "湘岳阳货2002")]  # fmt: skip
    found = DET.detect([*background(NOON), *a, *b], caps)
    assert found.detections == []
    assert sorted((c, m) for c, m, _ in found.passes) == [
        (caps[0].capture_id, A),
        (caps[1].capture_id, B),
    ]


# --- over-draught ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kw", "over"),
    [
        ({"msg_type": 5, "draught_m": 3.0, "draught_resolution_m": 0.1}, True),
        ({"msg_type": 5, "draught_m": 2.8, "draught_resolution_m": 0.1}, False),  # at the line
        ({"msg_type": 5, "draught_m": 2.85, "draught_resolution_m": 0.1}, False),  # may be 2.80
        ({"msg_type": 5, "draught_m": None}, False),  # 0 on air: unknown, never a violation
        ({"msg_type": 8, "dac": 200, "fid": 10, "draught_m": 2.84, "draught_resolution_m": 0.01}, True),
    ],
)  # fmt: skip
def test_reported_draught_against_the_load_line(kw: dict, over: bool) -> None:
    found = DET.detect([*background(NOON), rep(B, NOON + dt.timedelta(minutes=20), **kw)])
    want = [("water.overdraught", "water.static.reported_draught", B)] if over else []
    assert codes(found) == want


def test_measured_draught_at_a_checkpoint() -> None:
    t0 = NOON + dt.timedelta(minutes=10)
    track = sail(B, t0, CP2 - 2000, 8.0, 30, rx="RX-XJ-02")
    t = when_at(CP2, CP2 - 2000, 8.0, t0)
    deep = capture(1, t, "湘岳阳货2002", draught=3.0)
    found = DET.detect([*background(NOON), *track], [deep])
    (d,) = found.detections
    assert (d.violation_code, d.mmsi, d.capture_id) == ("water.overdraught", B, deep.capture_id)
    within = deep.model_copy(update={"draught_m": 2.9})  # 2.8 + the site's 0.10 uncertainty
    assert DET.detect([*background(NOON), *track], [within]).detections == []


# --- 冲关 and night dredging ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "flagged"), [(NOON, True), (NOON + dt.timedelta(minutes=95), False)]
)
def test_entering_a_controlled_section_against_the_signal(
    start: dt.datetime, flagged: bool
) -> None:
    """Down-bound passage is open 13:30–15:00; entering at 12:1x is 冲关, at 13:4x is not."""
    t0 = start + dt.timedelta(minutes=10)
    track = sail(A, t0, ENTRY_DOWN + 1500, -8.0, 20)
    found = DET.detect([*background(start), *track])
    assert codes(found) == ([("water.signal", "water.section.entry_down", A)] if flagged else [])


@pytest.mark.parametrize(
    ("mmsi", "start", "sog", "flagged"),
    [(UNLICENSED, NIGHT, 0.3, True), (412_999_999, NIGHT, 0.3, True), (UNLICENSED, NOON, 0.3, False),
     # review §W: a licence does not excuse dredging in a 禁采区 (《长江保护法》 Art. 28) …
     (LICENSED, NIGHT, 0.3, True),
     # … and a vessel lying at anchor (it swings at < 0.2 kn) is not dredging, unless the
     # registry knows it as a dredger
     (412_999_999, NIGHT, 0.0, False), (412_999_999, NIGHT, 0.1, False), (UNLICENSED, NIGHT, 0.0, True)],
)  # fmt: skip
def test_dredging_in_a_no_dredging_zone(
    mmsi: int, start: dt.datetime, sog: float, flagged: bool
) -> None:
    lon, lat = 112.9590, 28.2875  # inside NDZ-XJ-01
    t0 = start + dt.timedelta(minutes=10)
    stay = [rep(mmsi, t0 + dt.timedelta(seconds=30 * k), "RX-XJ-02", lat=lat + k * 1e-6, lon=lon,
                sog_kn=sog) for k in range(60)]  # fmt: skip
    found = DET.detect([*background(start), *stay])
    assert codes(found) == (
        [("water.dredging", "water.zone.night_loiter", mmsi)] if flagged else []
    )


def test_same_batch_same_detection_ids() -> None:
    reports, _ = clean_pass()
    dark = capture(0, NOON + dt.timedelta(minutes=30), "湘岳阳货2002")
    a, b = DET.detect(reports, [dark]), DET.detect(list(reversed(reports)), [dark])
    assert [d.detection_id for d in a.detections] == [d.detection_id for d in b.detections]


def test_night_loitering_is_the_same_finding_however_much_of_the_stay_was_read() -> None:
    """The stage decides a loitering run once its dwell is reached, with as much of the rest
    of the stay as its batches happened to read: that must not change the finding (its id
    once held the run's last report, so the same input made another dredging detection)."""
    lon, lat = 112.9590, 28.2875  # inside NDZ-XJ-01
    t0 = NIGHT + dt.timedelta(minutes=10)
    stay = [rep(UNLICENSED, t0 + dt.timedelta(seconds=30 * k), "RX-XJ-02", lat=lat + k * 1e-6,
                lon=lon, sog_kn=0.3) for k in range(60)]  # fmt: skip
    seen = [DET.detect([*background(NIGHT), *stay[:n]]).detections for n in (45, 52, 60)]
    assert [len(d) for d in seen] == [1, 1, 1]
    assert len({d[0].detection_id for d in seen}) == 1
    assert len({d[0].to_json() for d in seen}) == 1
