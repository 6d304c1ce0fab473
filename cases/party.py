"""The party (当事人) of a case: who the documents name, and where the name comes from.

A case's party comes from a vehicle-owner source behind :class:`OwnerSource` (the agency's
registry file ``configs/owners.yaml`` for the demo; a provincial vehicle database through an
HTTP adapter in production) when the case is opened (立案), and an officer corrects it, with
a reason, in the custody log. The kind decides the hearing threshold (公民 and 法人 differ in
every province) and how the documents address the party.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Iterable
from typing import Literal, Protocol
from urllib.parse import urlencode

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveInt,
    ValidationError,
    model_validator,
)

from events import OffsiteError
from sinks.outbound import http_failure

PARTY_KINDS: dict[str, str] = {"citizen": "公民", "organization": "法人或其他组织"}

# GB 11643-1999 (公民身份号码): ISO 7064 MOD 11-2 over the first 17 digits
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
# GB 32100-2015 (统一社会信用代码): 31 characters, weights 3^i mod 31, check 31 - sum mod 31
_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def id_number_problem(number: str) -> str | None:
    """Why ``number`` is not a valid 18-digit 公民身份号码, or None."""
    if len(number) != 18 or not number[:17].isdigit():
        return "身份证号应为18位"
    total = sum(int(c) * w for c, w in zip(number[:17], _ID_WEIGHTS, strict=True))
    return None if _ID_CHECK[total % 11] == number[17] else "身份证号校验位不符"


def credit_code_problem(code: str) -> str | None:
    """Why ``code`` is not a valid 统一社会信用代码, or None."""
    if len(code) != 18 or any(c not in _USCC_CHARS for c in code):
        return "统一社会信用代码应为18位（数字或大写字母，不含I、O、Z、S、V）"
    total = sum(_USCC_CHARS.index(c) * w for c, w in zip(code[:17], _USCC_WEIGHTS, strict=True))
    return None if _USCC_CHARS[(31 - total % 31) % 31] == code[17] else "统一社会信用代码校验位不符"


class Party(BaseModel):
    """A 当事人 as the documents name it (行政处罚法 Art. 59 (1))."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    kind: Literal["citizen", "organization"]
    name: str = Field(min_length=1, max_length=100)
    id_number: str = Field(min_length=1, max_length=18)  # 身份证号 or 统一社会信用代码
    address: str = Field(min_length=1, max_length=200)
    phone: str | None = Field(default=None, max_length=40)
    # the party's signed 电子送达确认书 on file (Art. 61 (2)): its reference, or None
    e_service_consent: str | None = Field(default=None, max_length=200)

    @model_validator(mode="after")
    def _checked(self) -> Party:
        check = id_number_problem if self.kind == "citizen" else credit_code_problem
        if (problem := check(self.id_number.upper())) is not None:
            raise ValueError(problem)
        return self

    @property
    def kind_zh(self) -> str:
        return PARTY_KINDS[self.kind]


class OwnerSource(Protocol):
    """Where the owner of a vehicle is found: the agency's registry file, or a provincial
    vehicle database. Raising means the source failed (the case opens without a party, which
    the officer then enters); None means it does not know the vehicle."""

    async def owner(self, plate: str, plate_color: str | None) -> Party | None: ...


class RegisteredOwner(Party):
    plate: str = Field(min_length=1)
    plate_color: str | None = None


class OwnerFile(BaseModel):
    """``configs/owners.yaml``: vehicles and their owners, for the demo and small agencies."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    owners: list[RegisteredOwner] = []
    # 统一社会信用代码 → 货运车辆总数 of the road transport companies (the credit list's 10 %
    # line, cases/credit.py); a company not here has an unknown fleet
    fleets: dict[str, PositiveInt] = {}


class RegistryOwners:
    """An :class:`OwnerSource` over a list of registered owners (``configs/owners.yaml``); a
    vehicle is its plate and colour (a different colour is a different vehicle)."""

    name = "车辆所有人登记"

    def __init__(self, owners: Iterable[RegisteredOwner]) -> None:
        self._by_vehicle = {(o.plate, o.plate_color): o for o in owners}

    async def owner(self, plate: str, plate_color: str | None) -> Party | None:
        found = self._by_vehicle.get((plate, plate_color))
        if found is None:
            return None
        return Party.model_validate(found.model_dump(exclude={"plate", "plate_color"}))


class OwnerSourceError(OffsiteError):
    """The vehicle-owner source did not answer, or answered something that names no one: the
    party is unknown (never guessed) and the officer has to establish it."""


class OwnerAnswer(BaseModel):
    """The provincial vehicle database's answer (README, "The vehicle-owner source over HTTP")."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    found: bool
    owner: Party | None = None

    @model_validator(mode="after")
    def _owner_when_found(self) -> OwnerAnswer:
        if self.found != (self.owner is not None):
            raise ValueError("owner is required when found is true, and only then")
        return self


class HttpOwners:
    """An :class:`OwnerSource` over a provincial vehicle database:
    ``GET <url>?plate=…&plate_color=…`` with ``Authorization: Bearer <token>``, answering 200
    and :class:`OwnerAnswer` as JSON. A timeout, a refused connection, any other status or a
    malformed answer (an owner whose ID does not check included) raises
    :class:`OwnerSourceError` with the reason."""

    name = "省级车辆数据库"

    def __init__(self, url: str, token: str, timeout_s: float = 5.0) -> None:
        self.url, self.token, self.timeout_s = url, token, timeout_s

    def _get(self, plate: str, plate_color: str | None) -> bytes:
        query = urlencode({"plate": plate, "plate_color": plate_color or ""})
        req = urllib.request.Request(f"{self.url}?{query}", headers={
            "Authorization": f"Bearer {self.token}", "Accept": "application/json"})  # fmt: skip
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                return bytes(resp.read(1_000_000))
        except OSError as exc:  # HTTPError, URLError and TimeoutError are OSErrors
            raise OwnerSourceError(http_failure(exc, self.name, self.timeout_s)) from None

    async def owner(self, plate: str, plate_color: str | None) -> Party | None:
        body = await asyncio.to_thread(self._get, plate, plate_color)
        try:
            answer = OwnerAnswer.model_validate(json.loads(body))
        except (ValueError, ValidationError) as exc:  # JSONDecodeError is a ValueError
            first = exc.errors()[0] if isinstance(exc, ValidationError) else None
            where = ".".join(str(p) for p in first["loc"]) if first else ""
            why = first["msg"] if first else "不是 JSON"
            raise OwnerSourceError(f"{self.name}应答格式有误{f'（{where}）' if where else ''}：{why}"
                                   ) from None  # fmt: skip
        return answer.owner
