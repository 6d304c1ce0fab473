"""Discretion baselines (行政处罚自由裁量权基准) as declarative, versioned data.

A baseline file names its authority and document, and for each violation code its legal and
penalty basis and its tiers: integer ranges on the violation's quantity (e.g. overload kg), each
with an outcome. No expressions, no code: everything a lawyer needs to read is in the file.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from typing import Literal

import numpy as np
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
    # 行政处罚法 Art. 29 (one act, one fine): detections of one vehicle within this many hours of
    # each other are one trip, one violation; the later ones attach to the first case as
    # evidence. An agency's rule, no law sets it.
    same_trip_hours: int = Field(ge=0, le=168)
    legal_review: LegalReview
    violations: dict[str, ViolationRule]

    def in_force_on(self, day: dt.date) -> bool:
        return self.effective_from <= day and (
            self.effective_until is None or day <= self.effective_until
        )


# 2016 No. 62 Art. 43 para. 1 item (2): over by no more than 1,000 kg, a warning; more, 500 CNY
# for each 1,000 kg over, at most 30,000 CNY. How a partial tonne counts is not said; the most
# the article can mean is every begun tonne, so that is the ceiling a baseline is held to.
STATUTE_PER_UNIT = (1_000, 500)  # kg, CNY
STATUTE_WARNING_ONLY_KG = 1_000
STATUTE_CAP_CNY = 30_000


def statutory_max_cny(overload_kg: np.ndarray) -> np.ndarray:
    """The most Art. 43 (2) allows for each overload in kg (0: a warning at most)."""
    unit, amount = STATUTE_PER_UNIT
    x = np.asarray(overload_kg, np.int64)
    fine = np.minimum(-(-x // unit) * amount, STATUTE_CAP_CNY)
    return np.where(x > STATUTE_WARNING_ONLY_KG, fine, 0)


def most_cny(o: Outcome, overload_kg: np.ndarray) -> np.ndarray:
    """The most an outcome can fine for each overload (a range: its top, an officer may pick
    it)."""
    x = np.asarray(overload_kg, np.int64)
    if o.kind == "fixed":
        return np.full(len(x), o.amount_cny or 0)
    if o.kind == "range":
        return np.full(len(x), o.max_cny or 0)
    if o.kind != "per_unit":
        return np.zeros(len(x), np.int64)
    assert o.unit_kg and o.amount_cny is not None
    if o.rounding == "down":
        fine = x // o.unit_kg * o.amount_cny
    elif o.rounding == "up":
        fine = -(-x // o.unit_kg) * o.amount_cny
    else:
        fine = x * o.amount_cny // o.unit_kg
    return np.minimum(fine, o.cap_cny) if o.cap_cny is not None else fine


def _above_statute(o: Outcome, r: Range) -> str | None:
    """Why outcome ``o`` on overloads in ``r`` can fine more than Art. 43 (2) allows."""
    if r.high == math.inf and o.kind == "per_unit" and o.cap_cny is None:
        return "has no cap_cny: 2016 No. 62 Art. 43 (2) fines at most 30,000 CNY"
    low = int(max(r.low, 1))
    # past 60,000 kg the statute stays at its cap and no outcome falls: a bounded check is whole
    top = int(min(r.high, max(low, 60_000) + 2 * (o.unit_kg or 1_000)))
    x = np.arange(low, top + 1, dtype=np.int64)
    over = np.flatnonzero(most_cny(o, x) > statutory_max_cny(x))
    if len(over) == 0:
        return None
    at = x[over[:1]]
    return (f"exceeds 2016 No. 62 Art. 43 (2): at {int(at[0]):,} kg over it allows up to "
            f"{int(most_cny(o, at)[0]):,} CNY, the statute at most "
            f"{int(statutory_max_cny(at)[0]):,} CNY (a warning only up to 1,000 kg; 500 CNY per "
            "begun 1,000 kg; 30,000 CNY in all)")  # fmt: skip


# Where each quantity other than the overload can lie, to check that some tier always applies.
_DOMAINS: dict[str, tuple[int, float]] = {
    "prior_offences": (0, math.inf),
    "hour": (0, 23),
    "overload_pct": (0, math.inf),
}


def _uncovered(rule: ViolationRule) -> tuple[int, str] | None:
    """(tier index, message) when for some values of the other quantities no tier applies, or
    two tiers equally specific do (the engine would take one at random)."""
    others = sorted({q for t in rule.tiers for q in t.when if q != rule.quantity})
    points = []
    for q in others:
        low, high = _DOMAINS[q]
        cuts = {int(low)}
        for t in rule.tiers:
            if q in t.when:
                r = t.when[q]
                cuts |= {int(v) for v in (r.low, r.high + 1) if low <= v <= high and v < math.inf}
        points.append(sorted(cuts))
    for values in itertools.product(*points):
        at = dict(zip(others, values, strict=True))
        apply = [(i, t) for i, t in enumerate(rule.tiers)
                 if all(q == rule.quantity or r.contains(at[q]) for q, r in t.when.items())]  # fmt: skip
        where = ", ".join(f"{q} = {v}" for q, v in at.items())
        if not apply:
            return len(rule.tiers) - 1, f"no tier applies when {where}"
        best = max(len(t.when) for _, t in apply)
        top = [(i, t) for i, t in apply if len(t.when) == best]
        groups = {repr(sorted((q, r.model_dump()) for q, r in t.when.items() if q != rule.quantity))
                  for _, t in top}  # fmt: skip
        if len(groups) > 1:
            names = " and ".join(t.id for _, t in top)
            return top[-1][0], f"tiers {names} both apply when {where}: make one more specific"
    return None


def problems(b: Baseline) -> list[tuple[tuple[str | int, ...], str]]:
    """Structural problems pydantic cannot see, each with the location of the offending node:
    unknown violation codes, tiers that overlap or leave gaps on (0, ∞), values of the other
    quantities where no tier applies, and outcomes above what Art. 43 (2) allows — a baseline
    may narrow the statutory range, never exceed it."""
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
            why = _above_statute(tier.outcome, tier.when[rule.quantity])
            if why:
                out.append((("violations", code, "tiers", i, "outcome"), why))
        if rule.first_offence is not None:
            r = rule.first_offence.when.get(rule.quantity, Range(gt=0))
            why = _above_statute(rule.first_offence.outcome, r)
            if why:
                out.append((("violations", code, "first_offence", "outcome"), why))
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
        if not out:
            found = _uncovered(rule)
            if found:
                out.append((("violations", code, "tiers", found[0], "when"), found[1]))
    return out


def version_problems(
    versions: list[Baseline],
) -> list[tuple[int, tuple[str | int, ...], str]]:
    """(index, location, message) where versions of one jurisdiction's baseline overlap in time:
    on any day exactly one may be in force."""
    out: list[tuple[int, tuple[str | int, ...], str]] = []
    ordered = sorted(range(len(versions)), key=lambda i: versions[i].effective_from)
    for a, b in itertools.pairwise(ordered):
        end = versions[a].effective_until
        if end is None or end >= versions[b].effective_from:
            out.append((b, ("effective_from",),
                        f"{versions[b].id} v{versions[b].version} starts on "
                        f"{versions[b].effective_from}, while v{versions[a].version} is still in "
                        f"force (until {end or 'open-ended'})"))  # fmt: skip
    return out
