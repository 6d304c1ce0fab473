"""The waterway detection stage: captures decided on AIS time (never before the margin has
passed), every finding sent once however the input is batched, what it holds kept uncommitted,
and the rules' decision on a waterway detection: review, its legal basis, never a fine."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable

from detectors.water_stage import WaterDetectionStage
from events import DeadLetter
from events.stage import Incoming
from events.water import (
    LEGAL_BASIS,
    WATER_AIS,
    WATER_CAMERA,
    AisReport,
    VesselCapture,
    WaterDetection,
)
from offsite.kafka import settled_to
from rules.stage import NO_INLAND_BASIS, maritime_lead, water_violation_of
from tests.unit.test_water_detect import (
    CP2,
    DET,
    NOON,
    REG,
    A,
    B,
    at,
    background,
    capture,
    clean_pass,
    rep,
    sail,
)

_offsets = itertools.count()


def msg(item: AisReport | VesselCapture, broker_ms: int | None = None) -> Incoming:
    topic = WATER_AIS if isinstance(item, AisReport) else WATER_CAMERA
    ms = broker_ms if broker_ms is not None else round(item.ts.timestamp() * 1000)
    return Incoming(topic, 0, next(_offsets), None, item.to_json(), ms)


async def feed(stage: WaterDetectionStage, items: list, size: int) -> list[WaterDetection]:
    items = sorted(items, key=lambda x: x.ts)
    out = []
    for k in range(0, len(items), size):
        result = await stage.process([msg(x) for x in items[k : k + size]])
        assert result.dead == []
        out += [WaterDetection.model_validate_json(o.value) for o in result.out]
    return out


async def test_a_dark_capture_is_decided_only_once_ais_time_has_passed_it_by_the_margin() -> None:
    stage = WaterDetectionStage(REG)
    reports, _ = clean_pass()
    dark = capture(0, NOON + dt.timedelta(minutes=30), "湘岳阳货2002")
    cap_ms = round(dark.ts.timestamp() * 1000)
    before = [round(r.ts.timestamp() * 1000) < cap_ms + stage.margin_ms for r in reports]
    early = [r for r, b in zip(reports, before, strict=True) if b]
    late = [r for r, b in zip(reports, before, strict=True) if not b]
    await stage.process([msg(dark)])
    assert await feed(stage, early, 500) == []
    assert dark.capture_id in stage.captures
    assert ("water.camera", 0) in stage.held()  # the capture's offset is not committed
    found = await feed(stage, late, 500)
    (d,) = [d for d in found if d.capture_id == dark.capture_id]
    assert d.violation_code == "water.ais_off" and d.device_id == dark.camera_id
    assert stage.captures == {}
    assert stage.waits_on_input()


async def test_ais_read_ahead_waits_for_captures_the_broker_still_has() -> None:
    """The runner says the camera partition has records not read yet: AIS read far past a
    capture decides nothing after the last capture read, so the capture that comes late still
    has the tracks and receiver history around it and is called dark; a stage not told so has
    let them go by then, and dead-letters the capture with the reason instead of deciding it
    on what is left (where a crossing could be missing, and the vessel taken for dark)."""
    reports, _ = clean_pass()
    reports = sorted(reports, key=lambda r: r.ts)
    dark = capture(0, NOON + dt.timedelta(minutes=30), "湘岳阳货2002")
    early = capture(0, NOON + dt.timedelta(minutes=1), None)  # a capture read before the AIS
    outcomes, dead = [], []
    for told in (True, False):
        stage = WaterDetectionStage(REG)
        stage.keep_ms = stage.margin_ms  # a short window, so that reading ahead prunes
        await stage.process([msg(early)])
        found = []
        for k in range(0, len(reports), 200):
            stage.behind({(WATER_CAMERA, 0)} if told else set())
            found += (await stage.process([msg(r) for r in reports[k : k + 200]])).out
        stage.behind(set())
        result = await stage.process([msg(dark)])
        found += result.out
        dead.append([DeadLetter.model_validate_json(d.value).reason for d in result.dead])
        found += (await stage.idle()).out
        dets = [WaterDetection.model_validate_json(o.value) for o in found]
        outcomes.append([d.detector for d in dets if d.capture_id == dark.capture_id])
    assert outcomes == [["water.pass.no_ais"], []]
    assert dead[0] == [] and len(dead[1]) == 1
    assert "came after the AIS time around it was let go" in dead[1][0]


async def test_every_finding_once_whatever_the_batches() -> None:
    t0 = NOON + dt.timedelta(minutes=5)
    track = sail(B, t0, CP2 - 500, 4.0, 50, rx="RX-XJ-02")
    silent = [
        r for r in track if not t0 + dt.timedelta(minutes=20) < r.ts < t0 + dt.timedelta(minutes=32)
    ]
    reports = [*background(NOON), *silent]
    dark = capture(0, NOON + dt.timedelta(minutes=30), "湘岳阳货2002")
    whole = DET.detect(reports, [dark]).detections
    assert sorted(d.detector for d in whole) == ["water.pass.no_ais", "water.track.gap"]
    for size in (37, 400, 5000):
        found = await feed(WaterDetectionStage(REG), [*reports, dark], size)
        assert sorted(d.detection_id for d in found) == sorted(d.detection_id for d in whole)


async def test_captures_of_unknown_checkpoints_or_cameras_are_dead_letters() -> None:
    stage = WaterDetectionStage(REG)
    good = capture(0, NOON, None)
    unknown = good.model_copy(update={"checkpoint_id": "CP-NOWHERE"})
    wrong = good.model_copy(update={"camera_id": "CAM-XJ-02"})
    result = await stage.process([msg(unknown), msg(wrong)])
    reasons = [o.value.decode() for o in result.dead]
    assert len(reasons) == 2 and "unknown checkpoint" in reasons[0] and "camera" in reasons[1]


async def test_a_report_dated_far_after_its_broker_time_does_not_decide_captures() -> None:
    stage = WaterDetectionStage(REG)
    reports, _ = clean_pass()
    dark = capture(0, NOON + dt.timedelta(minutes=30), "湘岳阳货2002")
    await stage.process([msg(dark)])
    first = reports[0]
    ahead = first.model_copy(update={"ts": first.ts + dt.timedelta(hours=3)})
    result = await stage.process([msg(ahead, round(first.ts.timestamp() * 1000))])
    assert result.out == [] and dark.capture_id in stage.captures


def test_a_waterway_detection_is_decided_for_review_with_its_legal_basis() -> None:
    reports, _ = clean_pass()
    dark = capture(0, NOON + dt.timedelta(minutes=30), "湘岳阳货2002")
    (det,) = DET.detect(reports, [dark]).detections
    v = water_violation_of(det, REG)
    assert (v.outcome, v.fine_cny, v.violation_code) == ("review", None, "water.ais_off")
    assert v.legal_basis == LEGAL_BASIS["water.ais_off"] and v.record_id == dark.capture_id
    assert v.violation_id == water_violation_of(det, REG).violation_id  # deterministic


def test_a_finding_before_its_checkpoint_and_receivers_started_enforcement_says_so() -> None:
    reports, _ = clean_pass()
    dark = capture(0, NOON + dt.timedelta(minutes=30), "湘岳阳货2002")
    (det,) = DET.detect(reports, [dark]).detections
    assert not any("enforced" in r for r in water_violation_of(det, REG).reasons)
    day = det.ts.astimezone(REG.tz).date()
    data = REG.model_dump()
    for item in (*data["checkpoints"], *data["receivers"]):  # 启用 the day after the finding
        item["publicity"]["enforced_from"] = day + dt.timedelta(days=1)
    late = type(REG).model_validate(data)
    v = water_violation_of(det, late)
    assert (v.outcome, v.fine_cny) == ("review", None)
    why = [r for r in v.reasons if r.startswith(("checkpoint_not_enforced_on_pass_date:",
                                                  "receiver_not_enforced_on_pass_date:"))]  # fmt: skip
    assert len(why) == 2 and all("启用" in r and str(day) in r for r in why), v.reasons


async def test_a_restart_from_the_committed_offsets_decides_every_finding_once() -> None:
    """A stage killed mid-input and a new one reading from the committed offsets (behind what
    the first held) with the checkpoint committed beside them: together they send each finding
    once, the same as one stage reading everything (issue #27: same result whatever the crash
    point). Without the checkpoint the new stage decided again what the first had sent."""
    t0 = NOON + dt.timedelta(minutes=5)
    track = sail(B, t0, CP2 - 500, 4.0, 50, rx="RX-XJ-02")
    silent = [
        r for r in track if not t0 + dt.timedelta(minutes=20) < r.ts < t0 + dt.timedelta(minutes=32)
    ]
    dark = capture(0, NOON + dt.timedelta(minutes=30), "湘岳阳货2002")
    msgs = [msg(x) for x in sorted([*background(NOON), *silent, dark], key=lambda x: x.ts)]
    whole = sorted(
        d.detection_id for d in DET.detect([*background(NOON), *silent], [dark]).detections
    )
    sent_before_crash = 0
    for crash in (len(msgs) // 4, len(msgs) // 2, 3 * len(msgs) // 4):
        first = WaterDetectionStage(REG)
        found = []
        for k in range(0, crash, 250):
            found += (await first.process(msgs[k : min(k + 250, crash)])).out
        sent_before_crash += len(found)
        held = first.held()
        committed = {tp: min(to, held.get(tp, to)) for tp, to in first.read_to.items()}
        second = WaterDetectionStage(REG)
        second.restore(first.checkpoint())
        again = [m for m in msgs[:crash] if m.offset >= committed[(m.topic, m.partition)]]
        rest = again + msgs[crash:]
        for k in range(0, len(rest), 250):
            found += (await second.process(rest[k : k + 250])).out
        found += (await second.idle()).out
        ids = [WaterDetection.model_validate_json(o.value).detection_id for o in found]
        assert sorted(ids) == whole, crash
    assert sent_before_crash > 0  # some crash points came after findings were sent


async def test_settled_once_an_idle_decides_nothing_and_so_read_to_the_end() -> None:
    """What the stage holds waits on later AIS time; once an idle decides nothing more, its
    checkpoint says it has read to the end (the offset probe counts that as no lag), and a
    new record takes that back."""
    reports, _ = clean_pass()
    stage = WaterDetectionStage(REG)
    await feed(stage, reports, 500)
    assert stage.held() and all(settled_to(t) == -1 for t in stage.checkpoint().values())
    await stage.idle()
    marks = {tp: settled_to(t) for tp, t in stage.checkpoint().items()}
    assert marks == stage.read_to and marks[(WATER_AIS, 0)] > min(stage.held().values())
    await stage.process([msg(reports[-1])])
    assert all(settled_to(t) == -1 for t in stage.checkpoint().values())


# --- identity clashes: one lead per episode, whatever the batches, partitions or crashes ------


def lasting_clashes() -> list[AisReport]:
    """Clean traffic with three clashes that last: a second transmitter sends A's MMSI near
    CP2 every 30 s for 10 minutes (two places at once), another MMSI broadcasts A's name every
    2 minutes, and B's static data changes back and forth."""
    reports, _ = clean_pass()
    t = NOON + dt.timedelta(minutes=20)
    lon, lat = at(CP2 + 200)
    clone = [rep(A, t + dt.timedelta(seconds=30 * k), "RX-XJ-02", lat=lat, lon=lon, sog_kn=6.0)
             for k in range(20)]  # fmt: skip
    names = [rep(412_345_678, t + dt.timedelta(minutes=2 * k), msg_type=5,
                 name="XIANGCHANGSHAHUO1001", length_m=68.0) for k in range(6)]  # fmt: skip
    changed = [rep(B, t + dt.timedelta(minutes=3 * k), msg_type=5,
                   name="XIANGYUEYANGHUO2002" if k % 2 else "XIANGYUEYANG9", length_m=55.0)
               for k in range(5)]  # fmt: skip
    return [*reports, *clone, *names, *changed]


def leads_of(found: list[WaterDetection]) -> list[str]:
    """The maritime referrals the rules make of the findings (identity, AIS off)."""
    return sorted(maritime_lead(d).lead_id for d in found if d.violation_code in NO_INLAND_BASIS)


async def fed(stage: WaterDetectionStage, msgs: list[Incoming], size: int) -> list[WaterDetection]:
    out = []
    for k in range(0, len(msgs), size):
        out += (await stage.process(msgs[k : k + size])).out
    out += (await stage.idle()).out
    return [WaterDetection.model_validate_json(o.value) for o in out]


def split(reports: list[AisReport], partition_of: Callable[[AisReport], int]) -> list[Incoming]:
    """The reports on two partitions of water.ais, each in time order, the first read far
    ahead of the second (as one worker's fetches can come)."""
    parts: list[list[Incoming]] = [[], []]
    for r in sorted(reports, key=lambda r: r.ts):
        p = partition_of(r)
        ms = round(r.ts.timestamp() * 1000)
        parts[p].append(Incoming(WATER_AIS, p, len(parts[p]), None, r.to_json(), ms))
    out = []
    while parts[0] or parts[1]:
        out += parts[0][:700] + parts[1][:90]
        parts = [parts[0][700:], parts[1][90:]]
    return out


async def test_a_lasting_clash_is_one_lead_whatever_the_batches_and_partitions() -> None:
    """Issue #27: a maritime referral's id changed from run to run (several-MMSI findings
    named the reports read ahead of them, so the id depended on how far the stage had read).
    The same records in one partition in batches of 37 or 5,000, or split over two partitions
    by receiver or by MMSI and read unevenly, give the same leads: one per clash."""
    reports = lasting_clashes()
    one = [msg(r) for r in sorted(reports, key=lambda r: r.ts)]
    runs = [await fed(WaterDetectionStage(REG), one, size) for size in (37, 5000)]
    for partition_of in (lambda r: r.receiver_id == "RX-XJ-02", lambda r: r.mmsi % 2):
        stage = WaterDetectionStage(REG)
        stage.assigned({(WATER_AIS, 0), (WATER_AIS, 1)})
        runs.append(await fed(stage, split(reports, partition_of), 250))
    assert len({tuple(leads_of(found)) for found in runs}) == 1
    clashes = sorted((d.detector, d.mmsi) for d in runs[0] if d.violation_code == "water.identity")
    assert clashes == [
        ("water.static.changed", B), ("water.static.registry", B),
        ("water.static.several_mmsi", 412_345_678), ("water.track.two_places", A),
    ]  # fmt: skip


async def test_a_clash_spanning_a_crash_is_reported_once() -> None:
    """A stage killed in the middle of a clash and a new one reading from the committed
    offsets with the checkpoint: the clash is sent once, with the id of a run without the
    crash (before, the new stage had forgotten it and sent it again from a later report)."""
    msgs = [msg(r) for r in sorted(lasting_clashes(), key=lambda r: r.ts)]
    clean = await fed(WaterDetectionStage(REG), msgs, 250)
    # the clone sends from minute 20 to 30; AIS time decides 7 minutes behind what was read
    for minute in (28, 32, 36):
        at_ms = (NOON + dt.timedelta(minutes=minute)).timestamp() * 1000
        crash = next(k for k, m in enumerate(msgs) if (m.timestamp_ms or 0) >= at_ms)
        first = WaterDetectionStage(REG)
        before = [WaterDetection.model_validate_json(o.value)
                  for k in range(0, crash, 250)
                  for o in (await first.process(msgs[k : min(k + 250, crash)])).out]  # fmt: skip
        held = first.held()
        committed = {tp: min(to, held.get(tp, to)) for tp, to in first.read_to.items()}
        second = WaterDetectionStage(REG)
        second.restore(first.checkpoint())
        again = [m for m in msgs[:crash] if m.offset >= committed[(m.topic, m.partition)]]
        after = await fed(second, again + msgs[crash:], 250)
        assert any(d.detector == "water.track.two_places" for d in before), crash
        ids = [d.detection_id for d in before + after]
        assert len(ids) == len(set(ids)), crash  # nothing sent twice
        assert sorted(ids) == sorted(d.detection_id for d in clean), crash
