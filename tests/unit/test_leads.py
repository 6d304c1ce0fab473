"""The lead stage on injected scenarios: every injected lead found, none of the look-alikes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from detectors.leads import LeadStage, MemorySightings
from events import AnprCapture, Lead
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


async def test_same_clone_leads_whatever_the_reading_order() -> None:
    # one plate at three sites, each drive too fast for the road; the middle sighting read
    # last (another partition, read later): the leads are the same as read in time order
    t0 = dt.datetime(2026, 11, 22, 8, 0, tzinfo=dt.UTC)
    where = [("G107-K1520-S", 0), ("G312-K1035-E", 5), ("S207-K45-N", 10)]  # site, minutes

    def sighting(k: int) -> Incoming:
        site, minutes = where[k]
        c = AnprCapture(capture_id=f"c{k}", site_id=site, camera_id="C", lane=1,
                        ts=t0 + dt.timedelta(minutes=minutes), plate="湘A12345",
                        plate_color="yellow", confidence=0.95)  # fmt: skip
        return Incoming("road.anpr", 0, k, None, c.to_json())

    async def leads(batches: list[list[int]]) -> list[list[str]]:
        stage, out = LeadStage(REGISTRY, MemorySightings()), []
        for b in batches:
            out += (await stage.process([sighting(k) for k in b])).out
        found = [Lead.model_validate_json(o.value) for o in out if b"cloned_plate" in o.value]
        return sorted(sorted(s.capture_id for s in x.sightings) for x in found)

    in_order = await leads([[0], [1], [2]])
    assert in_order == await leads([[0, 2], [1]]) == await leads([[2], [1, 0]])
    assert in_order == [["c0", "c1"], ["c0", "c2"], ["c1", "c2"]]


async def test_a_sighting_read_ahead_from_another_partition_forgets_nothing_needed() -> None:
    # a week later's sighting (another site's partition, read first) must not make the store
    # forget the first half of a clone pair before its second half is read
    t0 = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.UTC)
    received = int(dt.datetime(2026, 12, 7, 6, 0, tzinfo=dt.UTC).timestamp() * 1000)

    def sighting(k: int, site: str, at: dt.datetime, plate: str) -> Incoming:
        c = AnprCapture(capture_id=f"c{k}", site_id=site, camera_id="C", lane=1, ts=at,
                        plate=plate, plate_color="yellow", confidence=0.95)  # fmt: skip
        return Incoming("road.anpr", 0, k, None, c.to_json(), received + k)

    stage = LeadStage(REGISTRY, MemorySightings())
    out = (await stage.process([sighting(0, "G107-K1520-S", t0, "湘A12345")])).out
    later = t0 + dt.timedelta(days=7)
    out += (await stage.process([sighting(1, "S207-K45-N", later, "湘B00001")])).out
    second = t0 + dt.timedelta(minutes=5)
    out += (await stage.process([sighting(2, "G312-K1035-E", second, "湘A12345")])).out
    assert [Lead.model_validate_json(o.value).kind for o in out] == ["cloned_plate"]


async def test_clone_reason_gives_the_arithmetic() -> None:
    clone = next(x for x in await run(1_000) if x.kind == "cloned_plate")
    assert (
        len(clone.sightings) == 2 and "km in" in clone.reasons[0] and "at least" in clone.reasons[0]
    )
