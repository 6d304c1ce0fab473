"""Review §W (reviews/legal-2026-12-07.md): the waterway outcomes rest on law that applies on
inland waters, and each names its competent authority. One test per row of §W, through the
rules stage's waterway path in memory."""

from __future__ import annotations

import datetime as dt

from events import Lead
from events.clock import fixed_clock
from events.stage import Incoming
from events.water import (
    WATER_DETECTIONS,
    ControlSignal,
    WaterDetection,
    WaterRegistry,
    WaterViolation,
)
from rules import RulesStage
from rules.stage import MemorySignals, SignalLog
from tests.unit.test_stages import REGISTRY
from tests.unit.test_water_detect import (
    DET,
    ENTRY_DOWN,
    NOON,
    REG,
    background,
    capture,
    clean_pass,
    rep,
    sail,
)
from tests.unit.test_water_detect import (
    NIGHT as NIGHT_START,
)

A = 413_801_001  # a registered cargo vessel


async def decided(
    det: WaterDetection, registry: WaterRegistry = REG, signals: SignalLog | None = None
) -> list[WaterViolation | Lead]:
    stage = RulesStage({}, REGISTRY, clock=fixed_clock(NOON + dt.timedelta(days=1)),
                       waterways=registry, signals=signals)  # fmt: skip
    res = await stage.process([Incoming(WATER_DETECTIONS, 0, 0, None, det.to_json())])
    assert res.dead == []
    return [Lead.model_validate_json(o.value) if o.topic == "leads"
            else WaterViolation.model_validate_json(o.value) for o in res.out]  # fmt: skip


def entering_down(start: dt.datetime) -> WaterDetection:
    """Down-bound passage is open 13:30–15:00 by the timetable: entering at 12:1x."""
    track = sail(A, start + dt.timedelta(minutes=10), ENTRY_DOWN + 1500, -8.0, 20)
    (det,) = DET.detect([*background(start), *track]).detections
    assert det.violation_code == "water.signal"
    return det


async def test_chongguan_cites_art_20_and_68_and_rests_on_the_signal_log() -> None:
    """冲关: 《内河交通安全管理条例》 Art. 20 and Art. 68 para 1 (4), judged against what the
    control station showed; without its log, review with the reason; a "go" is no case."""
    det = entering_down(NOON)
    (v,) = await decided(det)  # no log at all
    assert isinstance(v, WaterViolation) and v.agency == "海事管理机构"
    assert "第二十条" in v.legal_basis and "第六十八条" in v.legal_basis
    assert any(r.startswith("无控制站信号记录") for r in v.reasons)
    section = det.site_id
    changed = NOON - dt.timedelta(hours=1)
    stop = MemorySignals([ControlSignal(section_id=section, direction="down", ts=changed,
                                        shown="stop")])  # fmt: skip
    (v,) = await decided(det, signals=stop)
    assert isinstance(v, WaterViolation) and "驶入时信号显示禁止通行" in v.reasons[-1]
    go = MemorySignals([*stop.log, ControlSignal(section_id=section, direction="down",
                                                 ts=changed + dt.timedelta(minutes=30),
                                                 shown="go")])  # fmt: skip
    assert await decided(det, signals=go) == []  # the station let it in, whatever the timetable


async def test_ais_off_is_a_lead_for_the_maritime_authority_not_a_case() -> None:
    """No AIS provision in the 2019 条例; 海上交通安全法 Art. 36 only in 管辖海域."""
    reports, _ = clean_pass()
    dark = capture(0, NOON + dt.timedelta(minutes=30), "湘岳阳货2002")
    (det,) = DET.detect(reports, [dark]).detections
    (lead,) = await decided(det)
    assert isinstance(lead, Lead) and lead.kind == "maritime_referral"
    assert lead.agency == "海事管理机构" and lead.plate is None
    assert lead.evidence["detection"]["capture_id"] == dark.capture_id  # the evidence goes along
    # a province whose rules name a basis: a case under it
    named = REG.model_copy(update={"penalty_bases": {"water.ais_off": "某省水上交通安全条例第X条"}})
    (v,) = await decided(det, named)
    assert isinstance(v, WaterViolation) and v.legal_basis == "某省水上交通安全条例第X条"


async def test_an_identity_clash_or_changed_static_data_is_a_lead_too() -> None:
    static = rep(413_802_002, NOON, "RX-XJ-01", msg_type=5, name="WRONGNAME", length_m=90.0)
    found = [d for d in DET.detect([*background(NOON), static]).detections
             if d.violation_code == "water.identity"]  # fmt: skip
    assert found
    out = await decided(found[0])
    assert [(type(x).__name__, getattr(x, "kind", None)) for x in out] == [
        ("Lead", "maritime_referral")]  # fmt: skip


async def test_dredging_names_the_water_authority_and_no_licence_excuses_it() -> None:
    """《长江保护法》 Art. 28: 禁采区/禁采期 belong to 水行政主管部门; no licence admits them."""
    licensed = 413_803_008
    start = NIGHT_START + dt.timedelta(minutes=10)
    stay = [rep(licensed, start + dt.timedelta(seconds=30 * k), "RX-XJ-02",
                lat=28.2875 + k * 1e-6, lon=112.9590, sog_kn=0.3) for k in range(60)]  # fmt: skip
    (det,) = [d for d in DET.detect([*background(NIGHT_START), *stay]).detections
              if d.violation_code == "water.dredging"]  # fmt: skip
    (v,) = await decided(det)
    assert isinstance(v, WaterViolation) and v.agency == "水行政主管部门"
    assert "不予豁免" in v.legal_basis and "不予豁免" in v.reasons[0]
    assert "主管机关: 水行政主管部门" in v.reasoning


async def test_overdraught_names_the_maritime_authority() -> None:
    """Art. 21 / 82 of the 条例 (correct per §W): the penalty is 海事管理机构's."""
    det = entering_down(NOON).model_copy(update={"violation_code": "water.overdraught"})
    (v,) = await decided(det)
    assert isinstance(v, WaterViolation) and v.agency == "海事管理机构"
