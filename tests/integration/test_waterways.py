"""Waterways in the one pipeline (issue #13 item 5), on the real broker and database: raw NMEA
from two shore receivers and checkpoint captures go in; a vessel photographed with no AIS
becomes a case for review, with its legal basis and no fine, in the same case queue as the
road, and a signed evidence package that verifies; a vessel whose AIS crossed the line does
not; every corrupted line is a dead letter of ``water.ais.raw`` with its reason."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections import Counter
from pathlib import Path

from pyais import encode_dict

from events.stage import Outgoing
from events.water import (
    LEGAL_BASIS,
    WATER_AIS,
    WATER_AIS_RAW,
    WATER_CAMERA,
    AisRaw,
    AisReport,
)
from evidence import verify_package
from ingest.ais import raw_message
from offsite import services
from offsite.config import Settings
from offsite.kafka import OffsetProbe, read_to_end
from offsite.pipeline import run
from sim.feed import ingest_ais, publish, replay_files
from sinks import CaseStore
from tests.integration.test_pipeline import cases_of
from tests.unit.test_water_detect import NOON, capture, clean_pass

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "ais"


async def stored_violation(settings: Settings, case_id: str) -> dict:
    store = await CaseStore.connect(services.endpoints(settings).database_url)
    try:
        doc = await store.pool.fetchval("SELECT violation FROM cases WHERE case_id = $1", case_id)
    finally:
        await store.close()
    return json.loads(doc) if isinstance(doc, str) else doc


def nmea(r: AisReport, seq: int) -> list[str]:
    """The sentences a transponder would send for ``r`` (position report or type 5)."""
    if r.msg_type == 5:
        fields = {"type": 5, "mmsi": r.mmsi, "shipname": r.name or "", "draught": r.draught_m or 0,
                  "to_bow": round(r.length_m or 0), "to_stern": 0}  # fmt: skip
        return encode_dict(fields, talker_id="AI", sentence_type="VDM", seq_id=seq % 10)
    fields = {"type": 1, "mmsi": r.mmsi, "lat": r.lat, "lon": r.lon, "speed": r.sog_kn or 0.0,
              "heading": 511, "course": 360.0}  # fmt: skip
    return encode_dict(fields, talker_id="AI", sentence_type="VDM")


def corrupted() -> list[tuple[str, str]]:
    """(line, what its dead letter's reason says): a recorded line with a payload character
    changed, garbage, and the first part of a two-part message whose second never comes."""
    real = next(
        line for line in (DATA / "libais" / "typeexamples.nmea").read_text().splitlines()
        if line.startswith("!AIVDM,1,1")
    )  # fmt: skip
    body, check = real.rsplit("*", 1)
    head, payload, fill = body.rsplit(",", 2)
    flipped = f"{head},{'1' if payload[0] != '1' else '2'}{payload[1:]},{fill}*{check}"
    orphan = nmea(AisReport.model_validate({
        "report_id": "-", "mmsi": 413802002, "msg_type": 5, "ts": NOON, "time_source": "receiver",
        "receiver_id": "RX-XJ-01", "name": "XIANGYUEYANGHUO2002", "length_m": 55.0,
        "sentences": ["-"]}), 7)[0]  # fmt: skip
    return [(flipped, "bad checksum"), ("%$garbage from the serial line", "not an NMEA sentence"),
            (orphan, "orphan fragment: part 1 of 2")]  # fmt: skip


PROVINCE_BASIS = "某省水上交通安全条例第X条(示例)"


async def test_a_dark_vessel_becomes_a_review_case_and_bad_lines_dead_letters(
    plain_settings: Settings, tmp_path: Path
) -> None:
    # AIS off is a case only where a province's rules name a basis (review §W); else a lead
    # for the maritime authority (tests/unit/test_water_law.py)
    province = tmp_path / "waterways.yaml"
    province.write_text((ROOT / "configs" / "waterways.yaml").read_text(encoding="utf-8")
                        + f"penalty_bases:\n  water.ais_off: {PROVINCE_BASIS}\n", "utf-8")  # fmt: skip
    settings = plain_settings.model_copy(update={"waterways": province})
    assert settings.kafka.partitions > 1  # the road's topics; the stage reads its inputs whole
    prefix = settings.pipeline.topic_prefix
    ep = services.endpoints(settings)
    reports, seen = clean_pass()  # background traffic on both receivers, one vessel passing CP1
    dark = capture(0, NOON + dt.timedelta(minutes=30), "湘岳阳货2002")  # and one without AIS
    raws = [AisRaw(receiver_id=r.receiver_id, ts=r.ts, sentence=s)
            for k, r in enumerate(sorted(reports, key=lambda r: r.ts)) for s in nmea(r, k)]  # fmt: skip
    bad = corrupted()
    at = NOON + dt.timedelta(minutes=20)
    raws += [AisRaw(receiver_id="RX-XJ-01", ts=at, sentence=line) for line, _ in bad]
    messages = [raw_message(r, prefix) for r in sorted(raws, key=lambda r: r.ts)]
    messages += [Outgoing(prefix + WATER_CAMERA, c.checkpoint_id.encode(), c.to_json())
                 for c in (seen, dark)]  # fmt: skip
    await publish(settings, ep, messages)

    report = await run(settings, ep, until_done=True)
    assert report.done
    async with OffsetProbe(ep.bootstrap) as probe:
        counts = Counter(tp[0] for tp in await probe.ends(
            [prefix + WATER_AIS, prefix + WATER_CAMERA, prefix + WATER_AIS_RAW]))  # fmt: skip
    assert counts == {prefix + WATER_AIS: 1, prefix + WATER_CAMERA: 1, prefix + WATER_AIS_RAW: 1}

    cases = await cases_of(settings)
    (case,) = [c for c in cases if c["violation_code"].startswith("water.")]
    assert (case["violation_code"], case["outcome"], case["fine_cny"]) == (
        "water.ais_off", "review", None
    )  # fmt: skip
    assert case["record_id"] == dark.capture_id and case["site_id"] == dark.checkpoint_id
    assert case["legal_basis"] == PROVINCE_BASIS != LEGAL_BASIS["water.ais_off"]
    assert case["status"] == "pending_review"
    violation = await stored_violation(settings, case["case_id"])
    assert violation["domain"] == "water" and violation["rule"] == "water.review"
    assert violation["detection"]["hull_name"] == "湘岳阳货2002"
    assert violation["detection"]["vessel_name"] == "湘岳阳货2002"
    assert [c for c in cases if c["record_id"] == seen.capture_id] == []
    # every water case has its signed evidence package, which verifies like a road one
    for water_case in [c for c in cases if c["violation_code"].startswith("water.")]:
        package = settings.evidence.dir / water_case["case_id"]
        assert verify_package(package) == [], water_case["case_id"]
        stored = json.loads((package / "data" / "decision" / "violation.json").read_bytes())
        assert stored["violation_id"] == water_case["violation_id"]
    site = json.loads((settings.evidence.dir / case["case_id"] / "data/registry/site.json")
                      .read_bytes())  # fmt: skip
    assert (site["kind"], site["id"]) == ("checkpoint", dark.checkpoint_id)

    letters = [json.loads(v) for _, _, _, v in await read_to_end(
        ep.bootstrap, prefix + WATER_AIS_RAW + ".dlq")]  # fmt: skip
    assert len(letters) == len(bad)
    for (line, why), letter in zip(bad, letters, strict=True):
        assert json.loads(letter["value"])["sentence"] == line
        assert why in letter["reason"] and letter["stage"] == "ais.decode"


async def test_replay_and_listener_put_nmea_lines_into_the_raw_topic(
    plain_settings: Settings, tmp_path: Path
) -> None:
    settings = plain_settings
    topic = settings.pipeline.topic_prefix + WATER_AIS_RAW
    ep = services.endpoints(settings)
    log = DATA / "libais" / "typeexamples.nmea"
    lines = [x for x in log.read_text().splitlines() if x.strip()]
    received = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)
    assert await replay_files(settings, [log], None, None, received=received) == len(lines)

    stop, bound = asyncio.Event(), asyncio.get_running_loop().create_future()
    feed = asyncio.create_task(ingest_ais(settings, "127.0.0.1", 0, receiver_id="RX-XJ-01",
                                          stop=stop, on_listening=bound.set_result))  # fmt: skip
    host, port = await bound
    _, writer = await asyncio.open_connection(host, port)
    writer.write(("\r\n".join(lines[:3]) + "\r\n").encode())
    await writer.drain()
    writer.close()
    await writer.wait_closed()
    got = await read_to_end(ep.bootstrap, topic)
    while len(got) < len(lines) + 3:  # a condition: the listener's lines acknowledged
        assert not feed.done(), feed.exception()
        await asyncio.sleep(0.05)
        got = await read_to_end(ep.bootstrap, topic)
    stop.set()
    assert await feed == 3
    raws = [AisRaw.model_validate_json(v) for _, _, _, v in got]
    assert sorted(r.sentence for r in raws) == sorted(lines + lines[:3])
    assert {r.receiver_id for r in raws} == {"typeexamples", "RX-XJ-01"}
    assert all(k == r.receiver_id.encode() for (_, _, k, _), r in zip(got, raws, strict=True))
