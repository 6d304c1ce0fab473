"""抄告 (issue #26 must-have 5): the home region read off the plate (an unknown one is never
guessed), the deadline of 7 working days after the closing (2016 No. 62 Art. 44: "案件处理完毕后
7个工作日内"), the Art. 44 fields with what a non-site case does not know stated as 未知, the
back-off, and the file drop."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from cases.calendar import WorkCalendar
from cases.chaogao import UNKNOWN, Region, home_region, record_of, retry_after, send_by
from sinks.outbound import FileDrop, Item

D = dt.date


def test_the_home_region_is_the_plate_s_province_and_issuing_office() -> None:
    assert home_region("湘A12345") == Region("湘A", "43", "湖南省")
    assert home_region("京B0001挂") == Region("京B", "11", "北京市")
    assert home_region("湘A12345").agency == "湖南省湘A号牌车籍地道路运输管理机构"  # type: ignore[union-attr]


@pytest.mark.parametrize(("plate", "why"), [
    (None, "号牌未识别"),
    ("WJ1234567", "不是省级行政区简称"),  # 武警: no province
    ("使123456", "使领馆"),
    ("粤Z1234港", "港澳"),
    ("粤Z12345", "粤Z港澳入出境"),
    ("湘112345", "不是发牌机关代号"),
])  # fmt: skip
def test_a_plate_that_names_no_mainland_region_is_held_with_the_reason(
    plate: str | None, why: str
) -> None:
    found = home_region(plate)
    assert isinstance(found, str) and why in found


def test_the_deadline_is_7_working_days_across_national_day_2026() -> None:
    # closed Wed 2026-09-30; 国办发明电〔2025〕7号: 10-01..07 off, Sat 10-10 worked (调休).
    # Working days: 10-08, 10-09, 10-10, 10-12, 10-13, 10-14, 10-15 → the 7th is Thu 10-15
    # (7 calendar days would end on 10-07, a holiday)
    assert send_by(WorkCalendar(), D(2026, 9, 30)) == D(2026, 10, 15)
    # an ordinary week: closed Mon 2026-11-02 → Wed 11-11
    assert send_by(WorkCalendar(), D(2026, 11, 2)) == D(2026, 11, 11)


def test_the_back_off_doubles_from_a_minute_to_six_hours() -> None:
    assert [retry_after(n).total_seconds() for n in (1, 2, 3, 9, 10, 30)] == [
        60, 120, 240, 60 * 256, 6 * 3600, 6 * 3600]  # fmt: skip


FACTS = {
    "case_id": "case-1", "plate": "湘A12345", "plate_color": "yellow",
    "violation": json.dumps({"detection": {"configuration": "combination_6", "axle_count": 6}}),
    "party_kind": "organization", "party_name": "湖南示例物流有限公司", "licence_no": None,
    "fine_cny": 2_500, "decision_no": "超限罚〔2026〕1号", "decided_on": D(2026, 9, 1),
    "penalty_basis": "《超限运输车辆行驶公路管理规定》第四十三条", "legal_basis": "公路法",
    "agency": "示例公路管理局", "site_name": "G312 K1035", "site_id": "WIM-G312-1035",
    "passed_at": "2026-08-01 10:00", "measured_kg": 54_000, "limit_kg": 49_000,
    "overload_kg": 5_000,
}  # fmt: skip


def test_the_record_has_the_art_44_fields_and_says_what_is_unknown() -> None:
    r = record_of(FACTS, home_region("湘A12345"), closed_on=D(2026, 9, 30),  # type: ignore[arg-type]
                  due=D(2026, 10, 15))  # fmt: skip
    assert r["recipient"]["agency"] == "湖南省湘A号牌车籍地道路运输管理机构"
    v = r["vehicle"]
    assert (v["plate"], v["plate_color"]) == ("湘A12345", "黄")
    assert (v["vehicle_type"], v["axles"]) == ("六轴及六轴以上汽车列车", 6)
    assert v["company"] == "湖南示例物流有限公司" and v["road_transport_certificate"] == UNKNOWN
    assert r["driver"] == {"name": UNKNOWN, "qualification_no": UNKNOWN, "company": UNKNOWN}
    assert r["load"]["loading_place"] == UNKNOWN
    assert r["decision"] == {"number": "超限罚〔2026〕1号", "date": "2026-09-01", "kind": "罚款",
                             "amount_cny": 2_500, "basis": FACTS["penalty_basis"],
                             "legal_basis": "公路法"}  # fmt: skip
    # a citizen owns no company; a known 道路运输证号 is sent
    citizen = {**FACTS, "party_kind": "citizen", "party_name": "李示例", "licence_no": "430100001"}
    r = record_of(citizen, None, closed_on=D(2026, 9, 30), due=D(2026, 10, 15))
    assert r["vehicle"]["company"] == "无（车辆所有人为公民）" and r["recipient"] is None
    assert r["vehicle"]["road_transport_certificate"] == "430100001"


async def test_the_file_drop_writes_the_json_and_its_pdf_and_a_second_send_is_the_same(
    tmp_path: Path,
) -> None:
    drop = FileDrop(tmp_path)
    item = Item("chaogao", "cg-1", {"plate": "湘A12345"}, b"%PDF-1.7 x")
    await drop.send(item)
    first = {p.name: p.read_bytes() for p in (tmp_path / "chaogao").iterdir()}
    await drop.send(item)
    assert {p.name: p.read_bytes() for p in (tmp_path / "chaogao").iterdir()} == first
    assert set(first) == {"cg-1.json", "cg-1.pdf"}
    assert json.loads(first["cg-1.json"]) == {"plate": "湘A12345"}
