"""Waterway cases in the console (issue #13 item 5, issue #12 item 4's road/waterway filter): on
the real case store with a signed waterway package, a water case page shows the vessel, the
checkpoint, the images and the evidence instead of a weighing; the queue's domain filter keeps
road and water apart; a plate cannot be corrected on a vessel; confirming works and the notice
is refused with its reason (no fine proposed)."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from console import Console
from events.water import WaterViolation
from evidence import Signer, verify_package
from evidence.custody import read_log
from evidence.water_bag import build_water_package
from offsite.config import Settings
from sinks import BlobStore, case_id
from sinks.accounts import Accounts
from sinks.lifecycle import Request, TransitionRefused
from tests.unit.test_water_detect import REG
from tests.unit.test_water_evidence import dark_vessel

from .test_console import PASSWORD, client_of, csrf_of, log_in
from .test_lifecycle import AGENCY, WANG, World, make_world


@dataclass
class WaterWorld:
    world: World
    water: WaterViolation
    cid: str  # the water case

    async def status(self) -> str:
        return str(await self.world.store.pool.fetchval(
            "SELECT status FROM cases WHERE case_id = $1", self.cid))  # fmt: skip


@pytest.fixture
async def ww(plain_settings: Settings) -> AsyncIterator[WaterWorld]:
    w = await make_world(plain_settings)
    blobs = BlobStore(plain_settings.var_dir / "blobs")
    v = dark_vessel(blobs)  # a vessel photographed at CP1 with no AIS, with two images
    await (await w.store.begin_batch([v])).commit()
    signer = Signer.load(plain_settings.evidence.key)
    package = build_water_package(v, REG, blobs, plain_settings.evidence.dir, signer, AGENCY,
                                  created_at=w.clock.now - dt.timedelta(seconds=1))  # fmt: skip
    assert package.name == case_id(v) and verify_package(package) == []
    await Accounts(w.store.pool).create("wang", ["officer"], PASSWORD, display_name="王警官")
    yield WaterWorld(w, v, case_id(v))
    await w.store.close()


def console_of(ww: WaterWorld) -> Console:
    w = ww.world
    return Console(w.store.pool, w.lifecycle, w.settings.evidence.dir, waterways=REG)


async def test_a_water_case_page_shows_the_vessel_checkpoint_images_and_evidence(
    ww: WaterWorld,
) -> None:
    cp = REG.checkpoint_index[ww.water.site_id]
    async with client_of(console_of(ww)) as client:
        await log_in(client, "wang")
        page = await client.get(f"/cases/{ww.cid}")
        assert page.status_code == 200
        text = page.text
        assert '<span class="vessel" id="vessel-name">湘岳阳货2002</span>' in text
        assert "船体船名" in text and "（无AIS身份）" in text  # a dark vessel: no MMSI
        assert cp.name in text and cp.camera_id in text  # the checkpoint, from the package
        assert "过检查点时无AIS信号" in text and "时间窗（秒）" in text  # the evidence, named
        assert ww.water.legal_basis in text and ww.water.penalty_basis in text
        # the images, served from the package; no weighing, certificate or plate correction
        names = re.findall(rf'src="/cases/{ww.cid}/images/([^"]+)"', text)
        assert sorted(names) == ["overview.jpg", "side.jpg"]
        for name in names:
            r = await client.get(f"/cases/{ww.cid}/images/{name}")
            assert r.status_code == 200 and r.content[:2] == b"\xff\xd8"
        assert "检测总质量" not in text and "设备与计量检定" not in text
        assert 'id="act-confirm"' in text and 'id="act-correct_plate"' not in text
        assert "该船舶的其他案件" in text
        # a road case page is as it was
        road = await client.get(f"/cases/{ww.world.cases['small']}")
        assert "检测总质量" in road.text and 'id="vessel"' not in road.text


async def test_the_queue_filters_road_and_waterway_cases(ww: WaterWorld) -> None:
    road = list(ww.world.cases.values())
    async with client_of(console_of(ww)) as client:
        await log_in(client, "wang")
        both = (await client.get("/cases")).text
        assert ww.cid in both and all(c in both for c in road)
        assert "湘岳阳货2002" in both  # the vessel in the plate column
        water = (await client.get("/cases", params={"domain": "water"})).text
        assert ww.cid in water and not any(c in water for c in road)
        assert '<option value="water" selected>' in water
        only_road = (await client.get("/cases", params={"domain": "road"})).text
        assert ww.cid not in only_road and all(c in only_road for c in road)
        # with another filter; and an unknown domain is no filter
        both_site = (await client.get("/cases", params={"domain": "water",
                                                        "site": ww.water.site_id})).text  # fmt: skip
        assert ww.cid in both_site
        bogus = (await client.get("/cases", params={"domain": "air"})).text
        assert ww.cid in bogus and all(c in bogus for c in road)


async def test_a_plate_is_never_corrected_on_a_water_case(ww: WaterWorld) -> None:
    w = ww.world
    with pytest.raises(TransitionRefused, match="船舶案件没有车牌"):
        await w.lifecycle.apply(ww.cid, Request("correct_plate", WANG, reason="人工识读",
                                                payload={"plate": "湘A12345"}))  # fmt: skip
    async with client_of(console_of(ww)) as client:
        await log_in(client, "wang")
        page = await client.get(f"/cases/{ww.cid}")
        r = await client.post(f"/cases/{ww.cid}/act", data={
            "action": "correct_plate", "plate": "湘A12345", "plate_color": "blue",
            "reason": "人工识读", "csrf": csrf_of(page)})  # fmt: skip
        assert r.status_code == 409 and "船舶案件没有车牌" in r.text
    assert await ww.status() == "pending_review"
    assert await w.store.pool.fetchval(
        "SELECT count(*) FROM case_transitions WHERE case_id = $1", ww.cid) == 0  # fmt: skip
    assert await w.store.pool.fetchval("SELECT plate FROM cases WHERE case_id = $1", ww.cid) is None


async def test_a_water_case_is_confirmed_and_its_notice_refused_with_the_reason(
    ww: WaterWorld,
) -> None:
    w = ww.world
    async with client_of(console_of(ww)) as client:
        await log_in(client, "wang")
        page = await client.get(f"/cases/{ww.cid}")
        r = await client.post(f"/cases/{ww.cid}/act", data={
            "action": "confirm", "reason": "图像与AIS记录相符", "csrf": csrf_of(page)})  # fmt: skip
        assert r.status_code == 303 and await ww.status() == "confirmed"
        r = await client.post(f"/cases/{ww.cid}/act", data={"action": "issue_notice",
                                                            "csrf": csrf_of(page)})  # fmt: skip
        assert r.status_code == 409 and "系统未拟定处罚" in r.text
    assert await ww.status() == "confirmed"
    assert await w.store.pool.fetchval(
        "SELECT count(*) FROM violation_notices WHERE case_id = $1", ww.cid) == 0  # fmt: skip
    # the confirmation is in the package's custody log, which still verifies
    package = w.settings.evidence.dir / ww.cid
    actions = [json.loads(e["detail"])["action"] for e in read_log(package)
               if e["event"] == "transition"]  # fmt: skip
    assert actions == ["confirm"]
    assert verify_package(package) == []
