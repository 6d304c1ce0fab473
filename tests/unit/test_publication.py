"""双公示 rows of penalty decisions: the 29 columns of the national format (paperwork review
§1.2), fines in 万元, a natural person's ID number masked, and the 7 working days to publish."""

from __future__ import annotations

import csv
import datetime as dt
import io

from cases import WorkCalendar
from cases.publication import (
    COLUMNS,
    deadline_item,
    decision_row,
    mask_id,
    mask_name,
    publish_by,
    to_csv,
    working_days,
)

DECISION = {"decision_no": "超限罚〔2026〕000001号", "fine_cny": 2_500}
CASE = {"plate": "湘A12345", "overload_kg": 5_600, "penalty_basis": "《超限运输车辆行驶公路管理"
        "规定》第四十三条第一款第（二）项"}  # fmt: skip
CITIZEN = {"kind": "citizen", "name": "张三", "id_number": "430102199001011234"}
COMPANY = {
    "kind": "organization",
    "name": "湖南示例物流有限公司",
    "id_number": "91430100MA4L000000",
}


def row(party: dict[str, str], fine: int = 2_500) -> dict[str, str]:
    return decision_row({**DECISION, "fine_cny": fine}, party, CASE, agency="某执法局",
                        violation="车辆违法超限运输", place="国道107线K1520+000",
                        passed_on=dt.date(2026, 11, 10), decided_on=dt.date(2026, 11, 16))  # fmt: skip


def test_the_national_format_has_29_columns_in_order() -> None:
    assert len(COLUMNS) == 29 and len(set(COLUMNS)) == 29
    assert COLUMNS[0] == "行政相对人名称" and COLUMNS[12] == "行政处罚决定书文号"
    assert (
        COLUMNS[18] == "罚款金额（万元）" and COLUMNS[23] == "公示截止期" and COLUMNS[-1] == "备注"
    )
    header = next(csv.reader(io.StringIO(to_csv([row(CITIZEN)]))))
    assert tuple(header) == COLUMNS


def test_a_natural_person_is_masked_and_a_company_is_named_by_its_credit_code() -> None:
    r = row(CITIZEN)
    assert r["证件号码"] == "430102********1234" and "199001" not in to_csv([r])
    assert (r["行政相对人类别"], r["统一社会信用代码"]) == ("自然人", "")
    # a natural person's name: the surname only (the stricter reading; review §1.2 [L])
    assert r["行政相对人名称"] == "张*" and "张三" not in to_csv([r])
    assert (mask_name("欧阳小明"), mask_name("李"), mask_name("")) == ("欧***", "李*", "")
    c = row(COMPANY)
    assert (c["行政相对人类别"], c["统一社会信用代码"], c["证件号码"]) == (
        "法人及非法人组织", "91430100MA4L000000", "")  # fmt: skip
    assert c["行政相对人名称"] == "湖南示例物流有限公司"  # an organisation is named in full
    assert mask_id("12345") == "*****"


def test_fine_in_wan_yuan_dates_and_a_warning() -> None:
    r = row(CITIZEN)
    assert (r["罚款金额（万元）"], r["处罚类别"], r["处罚内容"]) == ("0.2500", "罚款", "罚款2500元")
    # Hunan 治超 sample: 公示截止日期 = the decision day + 1 year
    assert (r["处罚决定日期"], r["公示截止期"]) == ("2026-11-16", "2027-11-16")
    assert "湘A12345" in r["违法事实"] and "2026-11-10" in r["违法事实"]
    w = row(CITIZEN, fine=0)
    assert (w["处罚类别"], w["罚款金额（万元）"]) == ("警告", "0")


def test_published_within_seven_working_days() -> None:
    # decided Monday 16 November 2026 (no holiday near): 17–20, 23–25 November are the 7
    # working days, so the 25th is the last day (国办发〔2018〕118号: 7 个工作日内)
    assert publish_by(WorkCalendar(), dt.date(2026, 11, 16)) == dt.date(2026, 11, 25)
    # decided Friday 20 November: 23–27 and 30 November, 1 December
    assert publish_by(WorkCalendar(), dt.date(2026, 11, 20)) == dt.date(2026, 12, 1)


def test_the_deadlines_to_publish_and_to_withdraw_run_over_the_national_day_holiday() -> None:
    """国庆 2026 (国办发明电〔2025〕7号): 1–7 October off, Saturday 10 October a working day.
    Decided Wednesday 30 September: the 7 working days (国办发〔2018〕118号) are 8, 9, 10, 12,
    13, 14, 15 October; revoked the same day: the 3 working days to withdraw (行政处罚法 Art.
    48, 85) are 8, 9, 10 October — the Saturday counts, the holiday does not."""
    due = working_days(WorkCalendar())
    day = dt.date(2026, 9, 30)
    open_ = deadline_item(day, None, None, None, dt.date(2026, 10, 15), due)
    assert (open_["publish_by"], open_["overdue"]) == (dt.date(2026, 10, 15), False)
    assert deadline_item(day, None, None, None, dt.date(2026, 10, 16), due)["overdue"]
    late = deadline_item(day, dt.date(2026, 10, 16), None, None, dt.date(2026, 10, 20), due)
    assert late["overdue"]  # published, but a day late
    revoked = deadline_item(day, day, day, None, dt.date(2026, 10, 10), due)
    assert (revoked["withdraw_by"], revoked["overdue"]) == (dt.date(2026, 10, 10), False)
    assert deadline_item(day, day, day, None, dt.date(2026, 10, 12), due)["overdue"]
    assert not deadline_item(day, day, day, dt.date(2026, 10, 9), dt.date(2026, 10, 12), due)[
        "overdue"
    ]
    # revoked before it went out: nothing to publish nor to withdraw, never overdue
    gone = deadline_item(day, None, day, None, dt.date(2026, 12, 1), due)
    assert (gone["publish_by"], gone["withdraw_by"], gone["overdue"]) == (None, None, False)
