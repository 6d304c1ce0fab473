"""First offence and repeat offences decided from the case store (real PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

from events import Violation
from events.stage import Incoming
from offsite import services
from offsite.config import Settings, load_baseline
from offsite.pipeline import prepare
from rules import RulesStage
from tests.unit.test_stages import DECIDED, REGISTRY, capture, detect, record

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_B = ROOT / "configs" / "baselines" / "example-proportional.yaml"  # look-back 180 days


async def test_repeat_within_lookback_and_not_just_outside(settings: Settings) -> None:
    store = await prepare(settings, services.endpoints(settings))
    # the sites of the test registry are 'national'; decide them under example B here
    stage = RulesStage({"national": [load_baseline(EXAMPLE_B)]}, REGISTRY, store, clock=DECIDED)

    async def decide_at(
        rid: str, days: float, rules: RulesStage = stage, color: str = "yellow"
    ) -> Violation:
        t = days * 86_400
        cap = capture(f"c-{rid}", t + 0.1).model_copy(update={"plate_color": color})
        dets, _ = await detect([record(rid, 53_000, t), cap])
        res = await rules.process([Incoming("detections", 0, 0, None, dets[0].to_json())])
        return Violation.model_validate_json(res.out[0].value)

    try:
        first = await decide_at("first", -170)  # 2026-06-05, inside the certificate
        # 53,000 − ⌈1,060⌉ − 49,000 = 2,940 kg over → 2.94 × 500 = 1,470 (proportional)
        assert (first.tier, first.fine_cny, first.quantities["prior_offences"]) == (
            "b-proportional", 1_470, 0)  # fmt: skip
        pending = await store.begin_batch([first])
        await pending.commit()
        unconfirmed = await decide_at("again-unconfirmed", -160)
        assert unconfirmed.tier == "b-proportional"  # a case not yet confirmed is no history
        await store.pool.execute("UPDATE cases SET status = 'confirmed'")

        within = await decide_at("within", -170 + 179.9)
        assert (within.tier, within.fine_cny, within.quantities["prior_offences"]) == (
            "b-repeat", 1_500, 1)  # 2,940 kg → 3 tonnes (up) × 500  # fmt: skip
        # 4.8 h after "within": the same trip for the stage that decided it (Art. 29); another
        # stage (its own trip memory) asks the history alone
        again = RulesStage({"national": [load_baseline(EXAMPLE_B)]}, REGISTRY, store, clock=DECIDED)
        outside = await decide_at("outside", -170 + 180.1, again)
        # the same plate in another colour is another vehicle, with no history
        other = await decide_at("other-colour", -170 + 100, again, color="yellow_green")
        assert (other.tier, other.quantities["prior_offences"]) == ("b-proportional", 0)
        assert (outside.tier, outside.fine_cny) == ("b-proportional", 1_470)
    finally:
        await store.close()
