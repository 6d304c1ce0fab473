"""The lead stage on injected scenarios: every injected lead found, none of the look-alikes."""

from __future__ import annotations

from pathlib import Path

from detectors.leads import LeadStage, MemorySightings
from events import Lead
from events.stage import Incoming
from offsite.config import load_registry
from sim.leads import LeadConfig, simulate_leads

ROOT = Path(__file__).resolve().parents[2]
REGISTRY = load_registry(ROOT / "configs" / "sites.yaml", ROOT / "configs" / "vehicles.yaml")


async def run(batch_size: int) -> list[Lead]:
    captures, _ = simulate_leads(REGISTRY, LeadConfig(seed=3))
    stage = LeadStage(REGISTRY, MemorySightings())
    msgs = [Incoming("road.anpr", 0, i, None, c.to_json()) for i, c in enumerate(captures)]
    out = []
    for i in range(0, len(msgs), batch_size):
        out += (await stage.process(msgs[i : i + batch_size])).out
    return [Lead.model_validate_json(o.value) for o in out]


async def test_injected_leads_found_and_look_alikes_not() -> None:
    _, truth = simulate_leads(REGISTRY, LeadConfig(seed=3))
    leads = await run(1_000)
    found = sorted((x.kind, x.plate) for x in leads)
    assert found == sorted((t.kind, t.plate) for t in truth)
    for lead in leads:
        ids = {s.capture_id for s in lead.sightings}
        assert any(t.kind == lead.kind and ids <= set(t.capture_ids) for t in truth)
        assert lead.reasons and 0 < lead.score <= 1


async def test_same_leads_whatever_the_batching() -> None:
    one = sorted(x.lead_id for x in await run(1_000))
    many = sorted(x.lead_id for x in await run(3))
    assert one == many


async def test_clone_reason_gives_the_arithmetic() -> None:
    clone = next(x for x in await run(1_000) if x.kind == "cloned_plate")
    assert (
        len(clone.sightings) == 2 and "km in" in clone.reasons[0] and "at least" in clone.reasons[0]
    )
