"""Issue #25 (must-haves 1 and 3): the party's identity numbers are checked, and a service record
follows the rules of service (民事诉讼法 (2021) Art. 87–95 through 行政处罚法 Art. 61)."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from pydantic import ValidationError

from cases.party import Party, RegisteredOwner, RegistryOwners
from cases.procedure import PUBLIC_NOTICE_DAYS, service_record

ORG = {"kind": "organization", "name": "湖南示例物流有限公司", "id_number": "91430100MA4L00000F",
       "address": "湖南省长沙市示例区示例路1号"}  # fmt: skip
CITIZEN = {"kind": "citizen", "name": "李示例", "id_number": "430102198001010011",
           "address": "湖南省湘潭市示例区示例街2号"}  # fmt: skip
ISSUED, TODAY = dt.date(2026, 3, 2), dt.date(2026, 3, 10)


def test_identity_numbers_are_checked_by_their_check_character() -> None:
    assert Party.model_validate(ORG).kind_zh == "法人或其他组织"
    assert Party.model_validate(CITIZEN).kind_zh == "公民"
    # GB 11643: the check digit of 43010219800101001x is 1, of 43060219850315002x is X
    assert Party.model_validate({**CITIZEN, "id_number": "43060219850315002X"})
    for bad in ("430102198001010012", "43010219800101001", "91430100MA4L00000F"):
        with pytest.raises(ValidationError):
            Party.model_validate({**CITIZEN, "id_number": bad})
    # GB 32100: one character changed, or a letter the code does not use (I, O, Z, S, V)
    for bad in ("91430100MA4L00000G", "91430100MA4L0000OF", "430102198001010011"):
        with pytest.raises(ValidationError):
            Party.model_validate({**ORG, "id_number": bad})


def test_the_registry_finds_the_owner_by_plate_and_colour() -> None:
    owners = RegistryOwners([RegisteredOwner(plate="湘A12345", plate_color="yellow", **ORG)])
    found = asyncio.run(owners.owner("湘A12345", "yellow"))
    assert found is not None and found.name == ORG["name"]
    assert asyncio.run(owners.owner("湘A12345", "blue")) is None  # another vehicle


def record(party: Party | None = None, **payload: object) -> dict[str, object] | str:
    base: dict[str, object] = {"method": "direct", "served_on": "2026-03-05",
                               "served_by": "王警官、李警官", "recipient": "李示例"}  # fmt: skip
    base.update(payload)
    return service_record(base, party or Party.model_validate(CITIZEN), ISSUED, TODAY)


def test_a_service_is_dated_the_day_the_party_received_it() -> None:
    r = record()
    assert isinstance(r, dict) and r["served_on"] == dt.date(2026, 3, 5) and r["method"] == "direct"
    # not before the notice existed, not in the future, not without a date, server, recipient
    assert isinstance(record(served_on="2026-03-01"), str)
    assert isinstance(record(served_on="2026-03-11"), str)
    assert isinstance(record(served_on=""), str)
    assert isinstance(record(served_by=""), str)
    assert isinstance(record(recipient=" "), str)
    assert isinstance(record(method="fax"), str)


def test_each_method_has_its_conditions() -> None:
    # 邮寄: the tracking number, dated the day the receipt was signed
    assert "邮件号码" in str(record(method="post"))
    r = record(method="post", tracking_no="1190000000000")
    assert isinstance(r, dict) and r["detail"] == {"tracking_no": "1190000000000"}
    # 留置 (民事诉讼法 Art. 89): witnesses or a recording
    assert "见证人" in str(record(method="left"))
    # 电子 only with the party's signed consent on file (行政处罚法 Art. 61 (2))
    assert "电子送达确认书" in str(record(method="electronic"))
    consenting = Party.model_validate({**CITIZEN, "e_service_consent": "确认书 2026-01-05"})
    r = record(consenting, method="electronic")
    assert isinstance(r, dict) and r["detail"] == {"consent": "确认书 2026-01-05"}


def test_a_public_notice_counts_as_served_thirty_days_after_publication() -> None:
    # 民事诉讼法 (2021) Art. 95: 自发出公告之日起，经过三十日，即视为送达
    assert PUBLIC_NOTICE_DAYS == 30
    assert "下落不明" in str(record(method="public", published_on="2026-03-04"))
    r = record(method="public", published_on="2026-03-04", reason="当事人下落不明")
    assert isinstance(r, dict) and r["served_on"] == dt.date(2026, 4, 3)
    assert isinstance(record(method="public", published_on="2026-03-11", reason="x"), str)
