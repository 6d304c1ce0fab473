"""The lead stage's sightings in PostgreSQL: workers that split the sites between them, and a
worker started afresh, find the leads one worker with the whole stream finds."""

from __future__ import annotations

import datetime as dt

from detectors.leads import LeadStage, MemorySightings
from events import AnprCapture, Lead
from events.stage import Incoming
from offsite import services
from offsite.config import Settings
from offsite.pipeline import prepare
from sim.leads import LeadConfig, simulate_leads
from tests.unit.test_leads import REGISTRY

CAPTURES, TRUTH = simulate_leads(REGISTRY, LeadConfig(seed=3))
# The simulated stream goes back and forth over the shuttles' week: allow for that much lateness.
WEEK = dt.timedelta(days=7)


async def feed(stage: LeadStage, captures: list[AnprCapture]) -> list[Lead]:
    msgs = [Incoming("road.anpr", 0, i, None, c.to_json()) for i, c in enumerate(captures)]
    return [Lead.model_validate_json(o.value) for o in (await stage.process(msgs)).out]


async def one_worker(chunk: int) -> set[str]:
    stage = LeadStage(REGISTRY, MemorySightings())
    return {
        x.lead_id
        for i in range(0, len(CAPTURES), chunk)
        for x in await feed(stage, CAPTURES[i : i + chunk])
    }


async def test_two_workers_splitting_the_sites_find_every_lead(settings: Settings) -> None:
    store = await prepare(settings, services.endpoints(settings))
    try:
        sites = sorted({c.site_id for c in CAPTURES})
        mine = [set(sites[:1]), set(sites[1:])]  # as a site-keyed topic may split between two
        workers = [LeadStage(REGISTRY, store, max_lateness=WEEK) for _ in mine]
        leads: list[Lead] = []
        for i in range(0, len(CAPTURES), 40):  # the two take turns along the stream
            chunk = CAPTURES[i : i + 40]
            for worker, own in zip(workers, mine, strict=True):
                leads += await feed(worker, [c for c in chunk if c.site_id in own])
        assert {x.lead_id for x in leads} == await one_worker(40)
        assert {(x.kind, x.plate) for x in leads} == {(t.kind, t.plate) for t in TRUTH}
        # the point of the test: some cloned plate was seen by both workers
        assert any(
            len({next(i for i, own in enumerate(mine) if s.site_id in own) for s in x.sightings})
            == 2
            for x in leads
            if x.kind == "cloned_plate"
        )
        assert all(w.held() == {} for w in workers)  # nothing is kept back in memory
    finally:
        await store.close()


async def test_a_worker_started_afresh_finds_the_leads_across_the_restart(
    settings: Settings,
) -> None:
    store = await prepare(settings, services.endpoints(settings))
    try:
        half = len(CAPTURES) // 2
        before = await feed(LeadStage(REGISTRY, store), CAPTURES[:half])
        after = await feed(LeadStage(REGISTRY, store), CAPTURES[half:])  # a new process
        ids = {x.lead_id for x in before + after}
        assert ids == {
            x.lead_id for x in await feed(LeadStage(REGISTRY, MemorySightings()), CAPTURES)
        }
        # a replayed batch (the worker died before committing) sends only leads already sent
        again = await feed(LeadStage(REGISTRY, store), CAPTURES[half:])
        assert {x.lead_id for x in again} <= ids
        left = await store.pool.fetchval("SELECT count(*) FROM sightings")
        assert 0 < left < len(CAPTURES)  # what no later sighting can need is forgotten
    finally:
        await store.close()
