"""Issue #28 rows 1, 2 and 7 on the real broker and database: records no device can send, and a
violation PostgreSQL cannot store, produced beside good traffic (as a replay or a device behind
another path would). No stage exits, each bad record is in its topic's DLQ with the reason, and
the good records of the same batches become cases."""

from __future__ import annotations

import json

from prometheus_client import REGISTRY

from events import ROAD_ANPR, ROAD_WIM, VIOLATIONS
from events.stage import Outgoing
from offsite import services
from offsite.config import Settings, registry_of
from offsite.pipeline import run
from offsite.testing import violations_in_memory
from sim import SimulationConfig
from sim.feed import make_traffic, publish, traffic_messages
from sim.truth import expected_cases
from tests.integration.test_pipeline import cases_of, read_topic

POISON_TOTAL = "offsite_poison_records_total"
CFG = SimulationConfig(vehicles=60, seed=11, images=False)


def _variants(template: dict, **cases: dict) -> dict[str, bytes]:
    """record id → the template with the changes of each case, under its own id."""
    out = {}
    for name, changes in cases.items():
        doc = {**template, **changes, "record_id": name}
        out[name] = json.dumps(doc, ensure_ascii=False).encode()
    return out


async def test_rows_1_2_7_are_dead_letters_and_the_good_records_beside_them_cases(
    plain_settings: Settings,
) -> None:
    settings = plain_settings  # simulated without images: no second plate read
    ep = services.endpoints(settings)
    prefix = settings.pipeline.topic_prefix
    passes = make_traffic(settings, CFG)
    heavy = next(p for p in passes if p.capture is not None and p.wim.gross_weight_kg > 49_000)
    wim = json.loads(heavy.wim.to_json())
    n = wim["axle_count"]
    bad_wim = _variants(
        wim,
        # row 1: each killed the detect stage (or rules), for ever
        **{"row1-weights": {"axle_weights_kg": [10**30] * n, "gross_weight_kg": n * 10**30},
           "row1-year-1": {"ts": "0001-01-01T00:00:00+08:00"},
           "row1-9999-west": {"ts": "9999-12-31T23:59:59-08:00"},
           "row1-9999-east": {"ts": "9999-12-31T23:59:59+08:00"},
           # row 7: accepted, dead-lettered late or silently changed
           "row7-lane-99": {"lane": 99},
           "row7-lane-3": {"lane": 3},
           "row7-2.2e12-kg": {"axle_weights_kg": [22 * 10**11 // n] * n,
                              "gross_weight_kg": 22 * 10**11 // n * n},
           "row7-speed-nan": {"speed_kmh": float("nan")},
           "row7-extra-nan": {"vendor_x": float("nan")}},
    )  # fmt: skip
    assert heavy.capture is not None
    capture = json.loads(heavy.capture.to_json())
    # row 2: beside an overloaded WIM record, at its site and lane and time
    bad_anpr = {
        "row2-nul": {**capture, "capture_id": "row2-nul", "plate": "湘A\u00001234"},
        "row2-long": {**capture, "capture_id": "row2-long", "plate": "湘" * 2_700},
    }
    messages: list[Outgoing] = []
    site = heavy.wim.site_id.encode()
    for msg in traffic_messages(passes, prefix):
        messages.append(msg)
        if msg.value == heavy.wim.to_json():
            messages += [Outgoing(prefix + ROAD_WIM, site, v) for v in bad_wim.values()]
            messages += [Outgoing(prefix + ROAD_ANPR, site, json.dumps(c).encode())
                         for c in bad_anpr.values()]  # fmt: skip
    # row 2 at the cases stage: a violation PostgreSQL cannot store (a NUL in a text column:
    # the contract leaves the rules' free text alone) in a batch with a good one
    [good, *_] = [v for v in await violations_in_memory(
        registry_of(settings), settings.baselines, CFG) if v.outcome != "none"]  # type: ignore[arg-type]  # fmt: skip
    doc = json.loads(good.to_json())
    doc.update(record_id="row2-case", violation_id="vio-row2-case")
    doc["legal_basis"] = "a\u0000b"
    messages += [
        Outgoing(prefix + VIOLATIONS, site, good.to_json()),
        Outgoing(prefix + VIOLATIONS, site, json.dumps(doc).encode()),
    ]
    await publish(settings, ep, messages)
    poisoned = REGISTRY.get_sample_value(POISON_TOTAL, {"stage": "cases"}) or 0.0

    await run(settings, ep, until_done=True)  # raises if any stage stopped

    dead = {json.loads(d["value"])["record_id"]: d
            for d in await read_topic(ep.bootstrap, prefix + "road.wim.dlq")}  # fmt: skip
    assert set(dead) == set(bad_wim)
    why = {k: d["reason"] for k, d in dead.items()}
    assert "axle_weights_kg.0: Input should be less than or equal to 100000" in why["row1-weights"]
    for k in ("row1-year-1", "row1-9999-west", "row1-9999-east"):
        assert "ts: Value error" in why[k] and "outside 2000–2099" in why[k]
    assert "lane: Input should be less than or equal to 16" in why["row7-lane-99"]
    assert f"lane: site {heavy.wim.site_id} has" in why["row7-lane-3"]
    assert "gross_weight_kg: Input should be less than or equal to 2000000" in why["row7-2.2e12-kg"]
    assert "speed_kmh: Input should be a finite number" in why["row7-speed-nan"]
    assert "vendor_x: nan is not a number JSON can carry" in why["row7-extra-nan"]
    assert {d["stage"] for d in dead.values()} == {"detect"}

    dead_anpr = {json.loads(d["value"])["capture_id"]: d["reason"]
                 for d in await read_topic(ep.bootstrap, prefix + "road.anpr.dlq")}  # fmt: skip
    assert "plate: String should match pattern" in dead_anpr["row2-nul"]
    assert "plate: String should have at most 16 characters" in dead_anpr["row2-long"]

    [refused] = await read_topic(ep.bootstrap, prefix + "violations.dlq")
    assert refused["stage"] == "cases" and json.loads(refused["value"])["record_id"] == "row2-case"
    assert refused["reason"].startswith("cases failed on this message: DatabaseError: ")
    assert REGISTRY.get_sample_value(POISON_TOTAL, {"stage": "cases"}) == poisoned + 1

    cases = {c["record_id"] for c in await cases_of(settings)}
    assert cases == set(
        expected_cases(passes, registry_of(settings), settings.pipeline.clock()(), verified=False)
    )
    assert heavy.wim.record_id in cases and good.record_id in cases
