"""Bad input lands in the DLQ with its reason; the good messages around it still become cases."""

from __future__ import annotations

import json

from events.stage import Outgoing
from offsite import services
from offsite.config import Settings, registry_of
from offsite.pipeline import run
from sim import SimulationConfig
from sim.feed import make_traffic, publish, traffic_messages
from sim.truth import expected_cases
from tests.integration.test_pipeline import cases_of, read_topic


def _bad_wim(good: dict) -> dict[str, bytes]:
    def variant(**changes: object) -> bytes:
        rec = {**good, **changes, "record_id": f"bad-{len(changes)}-{next(iter(changes))}"}
        return json.dumps(rec, ensure_ascii=False).encode()

    missing = {k: v for k, v in good.items() if k != "gross_weight_kg"}
    return {
        "truncated": json.dumps(good).encode()[:60],
        "wrong_type": variant(gross_weight_kg="49000"),
        "missing_field": json.dumps(missing, ensure_ascii=False).encode(),
        "negative_weight": variant(axle_weights_kg=[-100, *good["axle_weights_kg"][1:]]),
        "axle_count_mismatch": variant(axle_count=good["axle_count"] + 1),
        "unknown_site": variant(site_id="X999-K1-N"),
    }


async def test_bad_messages_go_to_dlq_and_good_ones_still_become_cases(
    plain_settings: Settings,
) -> None:
    settings = plain_settings  # simulated without images: no second plate read
    ep = services.endpoints(settings)
    prefix = settings.pipeline.topic_prefix
    passes = make_traffic(settings, SimulationConfig(vehicles=120, seed=11, images=False))
    good = traffic_messages(passes, prefix)
    template = json.loads(passes[0].wim.to_json())
    bad = _bad_wim(template)
    bad_capture = b'{"capture_id": "c-1", "site_id": "G107-K1520-S", "lane": 1}'
    # interleave the bad ones between good messages
    messages: list[Outgoing] = []
    for i, msg in enumerate(good):
        messages.append(msg)
        if i % 20 == 5 and bad:
            _, value = bad.popitem()
            messages.append(Outgoing(prefix + "road.wim", b"G107-K1520-S", value))
    assert not bad
    messages.append(Outgoing(prefix + "road.anpr", b"G107-K1520-S", bad_capture))
    await publish(settings, ep, messages)
    await run(settings, ep, until_done=True)

    dead = await read_topic(ep.bootstrap, prefix + "road.wim.dlq")
    reasons = sorted(d["reason"] for d in dead)
    assert len(dead) == 6
    expected_phrases = [
        "invalid JSON",
        "gross_weight_kg: Input should be a valid integer",
        "gross_weight_kg: Field required",
        "axle_weights_kg.0: Input should be greater than or equal to 0",
        "axle_weights_kg has",
        "unknown site 'X999-K1-N'",
    ]
    for phrase in expected_phrases:
        assert any(phrase in r for r in reasons), (phrase, reasons)
    assert all(d["stage"] == "detect" and d["topic"] == prefix + "road.wim" for d in dead)
    # the bytes are kept, so nothing is lost
    assert any(d["value"].startswith('{"record_id"') for d in dead)
    dead_anpr = await read_topic(ep.bootstrap, prefix + "road.anpr.dlq")
    assert len(dead_anpr) == 1 and "camera_id: Field required" in dead_anpr[0]["reason"]

    cases = await cases_of(settings)
    assert {c["record_id"] for c in cases} == set(
        expected_cases(passes, registry_of(settings), settings.pipeline.clock()(), verified=False)
    )
