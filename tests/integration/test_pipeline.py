"""The road pipeline on the real broker and database, against the simulator's ground truth."""

from __future__ import annotations

import json

from aiokafka import AIOKafkaConsumer

from ingest import SimulationConfig
from offsite import services
from offsite.config import Settings
from offsite.feed import make_traffic, publish, traffic_messages
from offsite.pipeline import run
from sinks import CaseStore
from tests.helpers import expected_cases


async def read_topic(bootstrap: str, topic: str) -> list[dict]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    try:
        out = []
        while True:
            polled = await consumer.getmany(timeout_ms=1500)
            if not polled:
                return out
            out += [json.loads(m.value) for msgs in polled.values() for m in msgs]
    finally:
        await consumer.stop()


async def cases_of(settings: Settings) -> list[dict]:
    store = await CaseStore.connect(services.endpoints(settings).database_url)
    try:
        return await store.cases()
    finally:
        await store.close()


async def test_cases_equal_ground_truth_and_replay_changes_nothing(settings: Settings) -> None:
    ep = services.endpoints(settings)
    passes = make_traffic(settings, SimulationConfig(vehicles=400, seed=7, images=True))
    expected = expected_cases([p.truth for p in passes])
    assert {e["outcome"] for e in expected.values()} == {"fine", "warning", "review"}
    messages = traffic_messages(passes, settings.pipeline.topic_prefix)
    await publish(settings, ep, messages)
    await run(settings, ep, until_quiet_s=2.5)

    cases = await cases_of(settings)
    got = {c["record_id"]: c for c in cases}
    assert len(got) == len(cases), "duplicate cases"
    assert set(got) == set(expected)
    for record_id, want in expected.items():
        case = got[record_id]
        assert case["status"] == "pending_review"
        for field, value in want.items():
            assert case[field] == value, (record_id, field)
    # captures carry real JPEGs in the blob store
    capture = next(p.capture for p in passes if p.capture is not None)
    assert {i.role for i in capture.images} == {"plate", "overview"}
    for image in capture.images:
        from sinks import BlobStore

        assert (
            BlobStore(settings.var_dir / "blobs").path(image.uri).read_bytes()[:3]
            == b"\xff\xd8\xff"
        )

    alerts = await read_topic(ep.bootstrap, settings.pipeline.topic_prefix + "alerts")
    assert sorted(a["case_id"] for a in alerts) == sorted(c["case_id"] for c in cases)

    # the same input again: nothing changes
    await publish(settings, ep, messages)
    await run(settings, ep, until_quiet_s=2.5)
    again = await cases_of(settings)
    assert again == cases
    alerts_again = await read_topic(ep.bootstrap, settings.pipeline.topic_prefix + "alerts")
    assert len(alerts_again) == len(alerts)
