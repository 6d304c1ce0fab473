"""The 结案报告's 执行情况 says what really ended the case (console.procedure.execution_text).

Before: every ending without a court enforcement application read "已缴清（实缴 0.00 元）",
a 不予处罚, a 撤销立案, a 移送, a revoked decision and a warning alike, and a partly paid fine
read 已缴清 too."""

from __future__ import annotations

import datetime as dt

from console.procedure import execution_text

DAY = dt.date(2026, 3, 2)


def fine(fine_cny: int | None, **kw: object) -> dict[str, object]:
    return {"fine_cny": fine_cny, "served_on": DAY, "enforcement_applied_on": None, **kw}


def test_an_ending_without_a_fine_says_what_happened_and_never_paid() -> None:
    none: dict[str, object] = {}
    assert execution_text("not_punished", None, 0, None, none) == "不予行政处罚，无执行事项"
    assert execution_text("withdrawn", None, 0, None, none) == "撤销立案，无执行事项"
    assert execution_text("closed", fine(None), 0, None, none) == "警告，决定书已于 2026-03-02 送达"
    maritime = {"reason_code": "maritime", "reason": None}
    assert execution_text("transferred", None, 0, None, maritime) == (
        "已移送海事管理机构，本机关无执行事项"
    )
    # the officer's 移送公安机关 (no code), and a body the 负责人 names
    assert execution_text("transferred", None, 0, None, {"reason_code": None}).startswith(
        "已移送公安机关"
    )
    other = {"reason_code": "other", "reason": "某市生态环境局"}
    assert "其他有管辖权的机关（某市生态环境局）" in execution_text(
        "transferred", None, 0, None, other
    )


def test_a_revoked_decision_says_whether_anything_was_paid_before() -> None:
    assert execution_text("revoked", fine(2_500), 2_500_00, 0, {}) == (
        "处罚决定已撤销（撤销前已缴纳罚款 2500.00 元）"
    )
    assert execution_text("revoked", fine(2_500), 0, 2_500_00, {}) == (
        "处罚决定已撤销（撤销前未缴纳罚款）"
    )
    assert execution_text("revoked", fine(None), 0, None, {}) == "处罚决定已撤销"


def test_only_a_fine_paid_in_full_is_paid() -> None:
    assert execution_text("closed", fine(2_500), 2_500_00, 0, {}) == "已缴清（实缴 2500.00 元）"
    partly = execution_text("closed", fine(2_500), 1_000_00, 1_500_00, {})
    assert "已缴清" not in partly and partly == "未缴清（已缴 1000.00 元，尚欠 1500.00 元）"
    applied = fine(2_500, enforcement_applied_on=DAY)
    assert execution_text("closed", applied, 1_000_00, 1_500_00, {}) == (
        "未缴清（已缴 1000.00 元，尚欠 1500.00 元），已于 2026-03-02 申请人民法院强制执行"
    )
