"""Issue #30 must-have 1: squads are edited on the admin page — name, area chosen from the
registries' places, squad leaders and field officers chosen from the accounts — audited in
squad_changes; configs/squads.yaml only seeds a fresh install, and the rules' automatic dispatch
follows the edited areas (real case store, through HTTP)."""

from __future__ import annotations

import datetime as dt
import json
import re

from offsite.config import load_waterways
from sinks.dispatch import Dispatch

from .test_console import client_of, csrf_of, log_in
from .test_dispatch import ROOT, SQUADS, TZ, Desk, lead


async def test_an_admin_edits_squads_and_dispatch_follows_the_edited_areas(desk: Desk) -> None:
    w, pool = desk.world, desk.world.store.pool
    desk.console.waterways = load_waterways(ROOT / "configs" / "waterways.yaml")
    async with client_of(desk.console) as admin:
        await log_in(admin, "root")
        page = await admin.get("/admin")
        assert page.status_code == 200
        # seeded from configs/squads.yaml; the area is chosen from the registries, by name
        assert 'data-squad="ZD-SOUTH"' in page.text and "省道207线K45 超限检测点(北向)" in page.text
        assert 'name="reaches" value="CP-XJ-01"' in page.text
        assert (
            'name="officers" value="sun"' in page.text and 'name="leaders" value="he"' in page.text
        )
        csrf = csrf_of(page)
        # ZD-SOUTH gives up S207-K45-N; a new squad takes it, with liu as leader and sun
        r = await admin.post("/admin/squads", data={
            "csrf": csrf, "squad_id": "ZD-SOUTH", "name": "直属大队第二中队（枢纽）",
            "level": "squad", "parent": "DD-CS", "sites": ["HUB-ZZZ"], "leaders": ["he"],
            "officers": ["gao"]})  # fmt: skip
        assert r.status_code == 303, r.text
        new = {"csrf": csrf, "new": "1", "squad_id": "ZD-S207", "name": "直属大队第三中队",
               "level": "squad", "parent": "DD-CS", "sites": ["S207-K45-N"], "leaders": ["liu"],
               "officers": ["sun"]}  # fmt: skip
        assert (await admin.post("/admin/squads", data=new)).status_code == 303
        # refused, and nothing changes: a place of another squad, a place in no registry, a
        # field officer as squad leader, an id already taken
        taken = await admin.post("/admin/squads", data={**new, "squad_id": "ZD-X",
                                                        "sites": ["G312-K1035-E"]})  # fmt: skip
        assert taken.status_code == 409 and "直属大队第一中队" in taken.text
        nowhere = await admin.post("/admin/squads", data={**new, "squad_id": "ZD-X",
                                                          "sites": ["NOPE"]})  # fmt: skip
        assert nowhere.status_code == 409 and "未在站点或水域登记表中登记" in nowhere.text
        wrong = await admin.post("/admin/squads", data={**new, "squad_id": "ZD-X", "sites": [],
                                                        "leaders": ["sun"]})  # fmt: skip
        assert wrong.status_code == 400 and "中队长" in wrong.text
        twice = await admin.post("/admin/squads", data={**new, "sites": []})
        assert twice.status_code == 409 and "队伍编号已被使用" in twice.text
        after = await admin.get("/admin")
        row = re.search(r'<tr data-squad="ZD-S207">.*?</tr>', after.text)
        assert row is not None and "省道207线K45" in row.group(0) and "liu警官" in row.group(0)
    # audited: who, when, before and after
    changes = await pool.fetch(
        "SELECT * FROM squad_changes WHERE changed_by = 'root' ORDER BY change_id"
    )
    assert [(c["squad_id"], c["changed_at"]) for c in changes] == [
        ("ZD-SOUTH", w.clock.now), ("ZD-S207", w.clock.now)]  # fmt: skip
    before, after_ = json.loads(changes[0]["before"]), json.loads(changes[0]["after"])
    assert before["sites"] == ["S207-K45-N", "HUB-ZZZ"] and after_["sites"] == ["HUB-ZZZ"]
    assert changes[1]["before"] is None
    assert await pool.fetchval("SELECT count(*) FROM squads WHERE squad_id = 'ZD-X'") == 0
    # the rules dispatch a restricted-hours lead at S207-K45-N to the squad that now has it,
    # though the file (SQUADS) still gives the site to ZD-SOUTH: the database wins once seeded
    at = dt.datetime(2026, 11, 20, 11, 0, tzinfo=TZ)
    blobs = desk.console.blobs
    assert blobs is not None
    x = lead(9, "restricted_hours", "S207-K45-N", at, blobs, "湘B00009")
    await w.store.write_leads([(x, x.to_json().decode())])
    await Dispatch(pool, SQUADS, w.clock).auto()
    assert await pool.fetchval("SELECT squad_id FROM tasks WHERE source_id = 'lead-0009'") == (
        "ZD-S207"
    )
    # and its new field officer finds it on the phone page
    async with client_of(desk.console) as field:
        await log_in(field, "sun")
        task_id = await pool.fetchval("SELECT task_id FROM tasks WHERE source_id = 'lead-0009'")
        assert task_id in (await field.get("/field")).text
