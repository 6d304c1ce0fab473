"""Issue #25 must-have 8 (review B10): 加处罚款 and the bank's payment file."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from cases.payments import (
    PaymentFileError,
    add_months,
    amount_in_capitals,
    late_fee_fen,
    owed_fen,
    parse_payments,
    yuan_text,
)
from offsite.cli import main

DUE = dt.date(2027, 1, 15)


def test_the_late_fee_is_3_percent_a_day_capped_at_the_fine() -> None:
    # 行政处罚法 (2021) Art. 72 (1): 到期不缴纳罚款的，每日按罚款数额的百分之三加处罚款，加处罚款的
    # 数额不得超出罚款的数额. A 2,500-yuan fine paid 5 days late: 2,500 × 3 % × 5 = 375 yuan.
    fine = 2_500_00
    assert late_fee_fen(fine, DUE, DUE) == 0
    assert late_fee_fen(fine, DUE, DUE + dt.timedelta(days=1)) == 75_00
    assert late_fee_fen(fine, DUE, DUE + dt.timedelta(days=5)) == 375_00
    # day 34 would be 102 %: the cap is the fine itself
    assert late_fee_fen(fine, DUE, DUE + dt.timedelta(days=33)) == 2_475_00
    assert late_fee_fen(fine, DUE, DUE + dt.timedelta(days=34)) == fine
    assert late_fee_fen(fine, None, DUE + dt.timedelta(days=99)) == 0  # not served: not late


def test_what_is_owed_counts_the_late_fee_to_the_last_payment() -> None:
    assert owed_fen(2_500, DUE, []) == 2_500_00
    assert owed_fen(2_500, DUE, [(DUE, 2_500_00)]) == 0
    late = DUE + dt.timedelta(days=2)
    assert owed_fen(2_500, DUE, [(late, 2_500_00)]) == 150_00
    assert owed_fen(2_500, DUE, [(late, 2_500_00), (late, 150_00)]) == 0


def test_a_bank_file_is_read_and_its_bad_rows_are_reported(tmp_path: Path) -> None:
    f = tmp_path / "bank.csv"
    f.write_text("bank_ref,decision_no,amount,paid_on\n"
                 "B1,超限罚〔2027〕000001号,2500.00,2027-01-10\n"
                 "B2,超限罚〔2027〕000002号,12.345,2027-01-10\n"
                 "B3,超限罚〔2027〕000003号,100,2027-13-01\n"
                 ",超限罚〔2027〕000004号,100,2027-01-10\n", encoding="utf-8")  # fmt: skip
    rows, bad = parse_payments(f)
    assert [(r.bank_ref, r.amount_fen, r.paid_on) for r in rows] == [
        ("B1", 2_500_00, dt.date(2027, 1, 10))
    ]
    assert [b.split(": ", 1)[1] for b in bad] == [
        "row 2: amount '12.345' is not a positive yuan amount",
        "row 3: paid_on '2027-13-01' is not YYYY-MM-DD",
        "row 4: missing bank_ref",
    ]
    j = tmp_path / "bank.json"
    j.write_text(json.dumps([{"bank_ref": "B9", "decision_no": "X", "amount": "1",
                              "paid_on": "2027-01-10"}]))  # fmt: skip
    assert parse_payments(j)[0][0].amount_fen == 100
    j.write_text("{")
    with pytest.raises(PaymentFileError, match="line 1"):
        parse_payments(j)


def test_the_command_names_an_unreadable_file_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["payments", "import", str(tmp_path / "missing.csv")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing.csv" in err[0]


def test_six_months_later_is_the_same_day_or_the_month_end() -> None:
    assert add_months(dt.date(2027, 1, 15), 6) == dt.date(2027, 7, 15)
    assert add_months(dt.date(2027, 8, 31), 6) == dt.date(2028, 2, 29)
    assert add_months(dt.date(2026, 12, 31), 6) == dt.date(2027, 6, 30)


def test_d10_amounts_in_capitals_as_the_payment_rules_write_them() -> None:
    # review D.10: the fine in capitals beside the figures. The examples are those of 中国人民银行
    # 《支付结算办法》(银发〔1997〕393号) 附件一《正确填写票据和结算凭证的基本规定》, its examples for zeros (where it
    # allows two forms, its first): a zero between digits, several zeros, 元位 or 角位 zero
    examples = {1409_50: "壹仟肆佰零玖元伍角", 6007_14: "陆仟零柒元壹角肆分",
                1680_32: "壹仟陆佰捌拾元零叁角贰分", 107000_53: "壹拾万柒仟元零伍角叁分",
                16409_02: "壹万陆仟肆佰零玖元零贰分", 325_04: "叁佰贰拾伍元零肆分"}  # fmt: skip
    for fen, words in examples.items():
        assert amount_in_capitals(fen) == words, fen
    # item 二: 到"元"为止的，在"元"之后，应写"整"
    assert amount_in_capitals(2_500_00) == "贰仟伍佰元整"
    assert amount_in_capitals(30_000_00) == "叁万元整"
    assert amount_in_capitals(100_001_000_00) == "壹亿零壹仟元整"
    assert yuan_text(2_500) == "2500元（贰仟伍佰元整）"
    with pytest.raises(ValueError):
        amount_in_capitals(-1)
