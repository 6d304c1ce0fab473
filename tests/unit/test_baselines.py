"""Discretion baselines: every tier boundary, rounding, cap, first offence and repeat, with the
expected values worked out by hand from the texts (written here, not computed by the engine)."""

from __future__ import annotations

from pathlib import Path

import pytest

from events import ConfigError
from offsite.config import load_baseline
from rules import Facts, decide

ROOT = Path(__file__).resolve().parents[2]
BASELINES = ROOT / "configs" / "baselines"


def facts(measured: int, limit: int, *, mpe: int = 0, prior: int = 0, ok: bool = True) -> Facts:
    return Facts(record_id="r", violation_code="road.overload.gross", measured_kg=measured,
                 device_tolerance_kg=mpe, limit_kg=limit, hour=10, admissible=ok,
                 reasons=() if ok else ("flag:straddle",), prior_offences=prior)  # fmt: skip


def run(name: str, f: Facts) -> tuple[str, int | None, str | None, int]:
    baseline, digest = load_baseline(BASELINES / f"{name}.yaml")
    d = decide(baseline, digest, f)
    return d.outcome, d.fine_cny, d.tier, d.overload_kg


# National (2016 No. 62 Art. 3 + Art. 43 (2); partial tonne down; device MPE as the margin).
# The first six rows are DOMAIN.md's worked examples (no margin deducted: mpe=0).
NATIONAL = [
    (18_000, 18_000, 0, "none", None, None, 0),
    (19_000, 18_000, 0, "warning", None, "art43-2-warning", 1_000),
    (19_001, 18_000, 0, "fine", 500, "art43-2-per-tonne", 1_001),
    (55_300, 49_000, 0, "fine", 3_000, "art43-2-per-tonne", 6_300),
    (55_300, 46_000, 0, "fine", 4_500, "art43-2-per-tonne", 9_300),
    (120_000, 43_000, 0, "fine", 30_000, "art43-2-per-tonne", 77_000),
    (18_001, 18_000, 0, "warning", None, "art43-2-warning", 1),  # one kg over
    (20_400, 18_000, 0, "fine", 1_000, "art43-2-per-tonne", 2_400),  # 2.4 t → 2 × 500
    (20_999, 18_000, 0, "fine", 1_000, "art43-2-per-tonne", 2_999),
    (108_999, 49_000, 0, "fine", 29_500, "art43-2-per-tonne", 59_999),  # 59 × 500
    (109_000, 49_000, 0, "fine", 30_000, "art43-2-per-tonne", 60_000),  # 60 × 500 = cap exactly
    (110_000, 49_000, 0, "fine", 30_000, "art43-2-per-tonne", 61_000),  # capped
    # class 5 device: 55,300 × 5 % = 2,765 kg margin → 3,535 kg over → 3 × 500
    (55_300, 49_000, 2_765, "fine", 1_500, "art43-2-per-tonne", 3_535),
    (19_950, 18_000, 950, "warning", None, "art43-2-warning", 1_000),  # margin edge: 1,000 over
    (19_950, 18_000, 949, "fine", 500, "art43-2-per-tonne", 1_001),
]


@pytest.mark.parametrize(("measured", "limit", "mpe", "outcome", "fine", "tier", "over"), NATIONAL)
def test_national(measured: int, limit: int, mpe: int, outcome: str, fine: int | None,
                  tier: str | None, over: int) -> None:  # fmt: skip
    assert run("national", facts(measured, limit, mpe=mpe)) == (outcome, fine, tier, over)


def test_national_has_no_first_offence_rule_and_never_fines_the_inadmissible() -> None:
    assert run("national", facts(18_900, 18_000, prior=0))[0] == "warning"
    assert run("national", facts(60_000, 49_000, ok=False)) == ("review", None, "review", 11_000)


# Example A (NOT LAW): flat 5 % margin (rounded up), partial tonne UP, first minor offence free.
EXAMPLE_A = [
    # 20,000 × 5 % = 1,000 → 19,000 − 18,000 = 1,000 over; first offence within ≤ 1,000 → free
    (20_000, 18_000, 0, "no_penalty", None, "first_offence", 1_000),
    (20_000, 18_000, 1, "warning", None, "a-warning", 1_000),  # not the first time
    # 20,001 × 5 % = 1,000.05 → 1,001 → 19,000 → 1,000 over, still the first-offence range
    (20_001, 18_000, 0, "no_penalty", None, "first_offence", 1_000),
    # 20,022 × 5 % = 1,001.1 → 1,002 → 19,020 → 1,020 over → 2 tonnes (up) × 500
    (20_022, 18_000, 0, "fine", 1_000, "a-per-tonne", 1_020),
    # 60,000 × 5 % = 3,000 → 57,000 → 8,000 over → exactly 8 tonnes
    (60_000, 49_000, 0, "fine", 4_000, "a-per-tonne", 8_000),
    # 115,000 × 5 % = 5,750 → 109,250 → 60,250 over → 61 × 500 = 30,500 → cap 30,000
    (115_000, 49_000, 0, "fine", 30_000, "a-per-tonne", 60_250),
]


@pytest.mark.parametrize(
    ("measured", "limit", "prior", "outcome", "fine", "tier", "over"), EXAMPLE_A
)
def test_example_round_up(measured: int, limit: int, prior: int, outcome: str, fine: int | None,
                          tier: str | None, over: int) -> None:  # fmt: skip
    f = facts(measured, limit, mpe=123, prior=prior)  # the device MPE is ignored here
    assert run("example-round-up", f) == (outcome, fine, tier, over)


# Example B (NOT LAW): device MPE, proportional to the yuan (down), range above 20 t, repeat tier.
EXAMPLE_B = [
    (19_000, 18_000, 0, "warning", None, "b-warning", 1_000),
    (20_400, 18_000, 0, "fine", 1_200, "b-proportional", 2_400),  # 2.4 × 500
    (19_001, 18_000, 0, "fine", 500, "b-proportional", 1_001),  # 1.001 × 500 = 500.5 → 500
    (38_000, 18_000, 0, "fine", 10_000, "b-proportional", 20_000),  # 20 × 500
    (38_001, 18_000, 0, "fine", 10_000, "b-proportional", 20_001),  # 20.001 × 500, down to CNY
    (58_000, 18_000, 0, "fine", 20_000, "b-proportional", 40_000),  # 40 × 500, top of tier
    (58_001, 18_000, 0, "fine", 20_000, "b-heavy", 40_001),  # range, default point
    (19_000, 18_000, 1, "warning", None, "b-repeat-warning", 1_000),  # repeat: still a warning
    (20_400, 18_000, 2, "fine", 1_500, "b-repeat", 2_400),  # repeat: 2.4 t → 3 × 500
]


@pytest.mark.parametrize(
    ("measured", "limit", "prior", "outcome", "fine", "tier", "over"), EXAMPLE_B
)
def test_example_proportional(measured: int, limit: int, prior: int, outcome: str,
                              fine: int | None, tier: str | None, over: int) -> None:  # fmt: skip
    assert run("example-proportional", facts(measured, limit, prior=prior)) == (
        outcome,
        fine,
        tier,
        over,
    )


def test_decision_trace_names_baseline_tier_basis_and_reasoning() -> None:
    baseline, digest = load_baseline(BASELINES / "national.yaml")
    d = decide(baseline, digest, facts(55_300, 49_000, mpe=2_765))
    assert d.baseline["id"] == "cn-national-overload" and d.baseline["content_hash"] == digest
    assert d.quantities == {
        "overload_kg": 3_535,
        "overload_pct": 7,
        "prior_offences": 0,
        "hour": 10,
    }
    assert d.rounding == "down" and "第四十三条第一款第(二)项" in d.penalty_basis
    assert "扣除计量允差2765千克" in d.reasoning and "罚款1500元" in d.reasoning
    assert not d.legal_review
    big = decide(baseline, digest, facts(120_000, 49_000))
    assert big.fine_cny == 30_000 and big.legal_review  # ≥ 10,000: 法制审核


BAD = [
    ("version: 1\n", "version: one\n", "version", "valid integer"),
    ("        when: {overload_kg: {gt: 0, le: 1000}}\n", "        when: {overload_kg: {gt: 0, le: 1100}}\n",
     "violations.road.overload.gross.tiers", "overlaps"),
    ("        when: {overload_kg: {gt: 1000}}\n", "        when: {overload_kg: {gt: 1500}}\n",
     "violations.road.overload.gross.tiers", "gap before tier art43-2-per-tonne: 1,001 – 1,500"),
    ("  road.overload.gross:\n", "  road.overload.gros:\n", "violations.road.overload.gros",
     "unknown violation code"),
    ("outcome: {kind: per_unit, unit_kg: 1000, amount_cny: 500, rounding: down, cap_cny: 30000}",
     "outcome: {kind: per_unit, unit_kg: 1000, rounding: down}",
     "violations.road.overload.gross.tiers.1.outcome", "needs amount_cny"),
    # Art. 43 (2) is the ceiling: 500 CNY per 1,000 kg, 30,000 CNY in all, nothing above 1,000 kg
    ("amount_cny: 500, rounding: down, cap_cny: 30000", "amount_cny: 600, rounding: down, cap_cny: 30000",
     "violations.road.overload.gross.tiers.1.outcome", "at 2,000 kg over it allows up to 1,200 CNY"),
    ("amount_cny: 500, rounding: down, cap_cny: 30000", "amount_cny: 500, rounding: down, cap_cny: 40000",
     "violations.road.overload.gross.tiers.1.outcome", "the statute at most 30,000 CNY"),
    ("amount_cny: 500, rounding: down, cap_cny: 30000", "amount_cny: 500, rounding: down",
     "violations.road.overload.gross.tiers.1.outcome", "has no cap_cny"),
    ("outcome: {kind: warning}", "outcome: {kind: fixed, amount_cny: 200}",
     "violations.road.overload.gross.tiers.0.outcome", "the statute at most 0 CNY"),
]  # fmt: skip


@pytest.mark.parametrize(("old", "new", "field", "phrase"), BAD)
def test_malformed_baseline_names_file_line_field(tmp_path: Path, old: str, new: str, field: str,
                                                  phrase: str) -> None:  # fmt: skip
    text = (BASELINES / "national.yaml").read_text(encoding="utf-8")
    assert old in text
    bad = text.replace(old, new, 1)
    path = tmp_path / "bad.yaml"
    path.write_text(bad, encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        load_baseline(path)
    changed = next(
        i
        for i, (a, b) in enumerate(zip(text.splitlines(), bad.splitlines(), strict=True))
        if a != b
    )
    assert exc.value.file == str(path) and exc.value.field.startswith(field)
    assert phrase in exc.value.message
    # an overlap is reported at the later of the two tiers, the next one in the file
    near = 5 if phrase == "overlaps" else 1
    assert exc.value.line is not None and abs(exc.value.line - (changed + 1)) <= near


def test_a_range_above_the_statute_is_refused_with_file_line_field(tmp_path: Path) -> None:
    """Issue #11 item 5: example-proportional as it was, 20,000 CNY from 20,001 kg over, where
    Art. 43 (2) allows at most 21 × 500 = 10,500 CNY."""
    text = (BASELINES / "example-proportional.yaml").read_text(encoding="utf-8")
    old = text.replace("le: 40000}", "le: 20000}").replace("gt: 40000}", "gt: 20000}")
    assert old != text
    path = tmp_path / "old.yaml"
    path.write_text(old, encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        load_baseline(path)
    assert exc.value.field == "violations.road.overload.gross.tiers.2.outcome"
    assert "at 20,001 kg over it allows up to 20,500 CNY, the statute at most 10,500" in str(
        exc.value
    )
    line = old.splitlines()[exc.value.line - 1] if exc.value.line else ""
    assert "range" in line or "outcome" in line


def test_changed_baseline_has_a_new_hash_and_old_decisions_replay_under_the_old_file(
    tmp_path: Path,
) -> None:
    old = tmp_path / "v1.yaml"
    old.write_bytes((BASELINES / "national.yaml").read_bytes())
    new = tmp_path / "v2.yaml"
    new.write_text(
        old.read_text(encoding="utf-8").replace("rounding: down", "rounding: up"), encoding="utf-8"
    )
    (b1, h1), (b2, h2) = load_baseline(old), load_baseline(new)
    assert h1 != h2
    f = facts(20_400, 18_000)
    before = decide(b1, h1, f)
    assert (before.fine_cny, decide(b2, h2, f).fine_cny) == (1_000, 1_500)
    # the decision names the file it was made under, so the old file (kept by its hash) can be
    # found to replay it: 2,400 − ⌈408⌉ = 1,992 kg over, 1 tonne down × 500 = 1,000 (DOMAIN.md)
    assert before.baseline["content_hash"] == h1 != decide(b2, h2, f).baseline["content_hash"]


def test_a_violation_the_baseline_has_no_rule_for_goes_to_review() -> None:
    baseline, digest = load_baseline(BASELINES / "example-round-up.yaml")  # no axle rule
    f = Facts(record_id="r", violation_code="road.overload.axle", measured_kg=20_200,
              device_tolerance_kg=404, limit_kg=18_000, hour=10, admissible=True)  # fmt: skip
    d = decide(baseline, digest, f)
    assert (d.outcome, d.fine_cny, d.legal_basis) == ("review", None, "")
    assert "baseline example-round-up has no rule for road.overload.axle" in d.reasons
