"""Discretion baselines (行政处罚自由裁量权基准) as declarative, versioned data.

A baseline file names its authority and document, and for each violation code its legal and
penalty basis and its tiers: integer ranges on the violation's quantity (e.g. overload kg), each
with an outcome. No expressions, no code: everything a lawyer needs to read is in the file.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# The violation codes the detectors produce; a baseline naming any other code is rejected.
VIOLATION_CODES = ("road.overload.gross", "road.overload.axle")
Quantity = Literal["overload_kg", "overload_pct", "prior_offences", "hour"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Citation(_Strict):
    document: str = Field(min_length=1)
    article: str = Field(min_length=1)

    def text(self) -> str:
        return f"{self.document}{self.article}"


class Range(_Strict):
    """An integer range; absent bounds are open. ``gt: 1000`` is 1,001 and above."""

    gt: int | None = None
    ge: int | None = None
    lt: int | None = None
    le: int | None = None

    @model_validator(mode="after")
    def _bounds(self) -> Range:
        if self.gt is not None and self.ge is not None:
            raise ValueError("give gt or ge, not both")
        if self.lt is not None and self.le is not None:
            raise ValueError("give lt or le, not both")
        if self.low > self.high:
            raise ValueError("the range is empty")
        return self

    @property
    def low(self) -> float:
        return (
            self.ge if self.ge is not None else (self.gt + 1 if self.gt is not None else -math.inf)
        )

    @property
    def high(self) -> float:
        return (
            self.le if self.le is not None else (self.lt - 1 if self.lt is not None else math.inf)
        )

    def contains(self, value: int) -> bool:
        return self.low <= value <= self.high

    def text(self) -> str:
        parts = []
        if self.low != -math.inf:
            parts.append(f"≥ {self.low:,.0f}")
        if self.high != math.inf:
            parts.append(f"≤ {self.high:,.0f}")
        return " and ".join(parts) or "any"


class Outcome(_Strict):
    # review: the baseline proposes no penalty itself (e.g. its limits are not settled law);
    # the case goes to an officer with the measurements
    kind: Literal["no_penalty", "warning", "fixed", "per_unit", "range", "review"]
    amount_cny: int | None = Field(default=None, ge=0)  # fixed, or per unit
    unit_kg: int | None = Field(default=None, gt=0)  # per_unit
    rounding: Literal["down", "up", "proportional"] | None = None  # per_unit: partial units
    cap_cny: int | None = Field(default=None, ge=0)
    min_cny: int | None = Field(default=None, ge=0)  # range
    max_cny: int | None = Field(default=None, ge=0)
    default_cny: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _complete(self) -> Outcome:
        need = {
            "fixed": ("amount_cny",),
            "per_unit": ("amount_cny", "unit_kg", "rounding"),
            "range": ("min_cny", "max_cny", "default_cny"),
        }.get(self.kind, ())
        missing = [f for f in need if getattr(self, f) is None]
        if missing:
            raise ValueError(f"a {self.kind} outcome needs {', '.join(missing)}")
        if self.kind == "range":
            assert self.min_cny is not None and self.max_cny is not None
            if not self.min_cny <= (self.default_cny or 0) <= self.max_cny:
                raise ValueError("default_cny must lie between min_cny and max_cny")
        return self


class Tier(_Strict):
    id: str = Field(min_length=1)
    name: str = Field(min_length=1)  # the 情节 as the document words it
    when: dict[Quantity, Range]
    outcome: Outcome


class FirstOffence(_Strict):
    """首违不罚 / 轻微免罚: no prior confirmed case in the look-back, and inside ``when``."""

    when: dict[Quantity, Range]
    outcome: Outcome
    basis: Citation


class ViolationRule(_Strict):
    name: str
    legal_basis: list[Citation] = Field(min_length=1)  # 违法依据
    penalty_basis: list[Citation] = Field(min_length=1)  # 处罚依据
    quantity: Literal["overload_kg"]
    tiers: list[Tier] = Field(min_length=1)
    first_offence: FirstOffence | None = None


class Tolerance(_Strict):
    """How the measurement error is allowed for before the decision."""

    method: Literal["device_mpe", "percent", "none"]
    percent: float | None = Field(default=None, gt=0, le=20)

    @model_validator(mode="after")
    def _percent(self) -> Tolerance:
        if (self.method == "percent") != (self.percent is not None):
            raise ValueError("percent is given exactly when method is percent")
        return self


class LegalReview(_Strict):
    """Which decisions are major (重大执法决定) and need 法制审核 before they are made."""

    fine_cny_at_least: int = Field(ge=0)
    basis: str


class Baseline(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]*$")
    version: int = Field(ge=1)
    jurisdiction: str = Field(min_length=1)
    status: Literal["law", "example"]
    authority: str
    document: str
    document_number: str
    effective_from: dt.date
    effective_until: dt.date | None = None
    source: str
    notes: str = ""
    tolerance: Tolerance
    lookback_days: int = Field(ge=1)
    legal_review: LegalReview
    violations: dict[str, ViolationRule]


def problems(b: Baseline) -> list[tuple[tuple[str | int, ...], str]]:
    """Structural problems pydantic cannot see, each with the location of the offending node:
    unknown violation codes, and tiers that overlap or leave gaps on (0, ∞)."""
    out: list[tuple[tuple[str | int, ...], str]] = []
    for code, rule in b.violations.items():
        if code not in VIOLATION_CODES:
            out.append((("violations", code), f"unknown violation code {code!r}"))
            continue
        groups: dict[str, list[tuple[int, Tier]]] = {}
        for i, tier in enumerate(rule.tiers):
            if rule.quantity not in tier.when:
                out.append((("violations", code, "tiers", i, "when"), f"needs {rule.quantity}"))
                continue
            others = {k: v for k, v in tier.when.items() if k != rule.quantity}
            key = repr(sorted((k, v.model_dump()) for k, v in others.items()))
            groups.setdefault(key, []).append((i, tier))
        for members in groups.values():
            members.sort(key=lambda m: m[1].when[rule.quantity].low)
            expect: float = 1  # overload starts at 1 kg over the limit
            for i, tier in members:
                r = tier.when[rule.quantity]
                loc: tuple[str | int, ...] = ("violations", code, "tiers", i, "when")
                if r.low < expect:
                    out.append((loc, f"tier {tier.id} overlaps the tier before it"))
                elif r.low > expect:
                    out.append(
                        (loc, f"gap before tier {tier.id}: {expect:,.0f} – {r.low - 1:,.0f}")
                    )
                expect = r.high + 1
            if expect != math.inf:
                i, tier = members[-1]
                out.append((("violations", code, "tiers", i, "when"),
                            f"gap after tier {tier.id}: from {expect:,.0f} on"))  # fmt: skip
    return out
