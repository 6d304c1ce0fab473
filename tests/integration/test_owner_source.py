"""Issue #25 must-have 1: 立案 with the provincial vehicle database over HTTP (a real server on
localhost, the real case store): an owner found is the case's party; a database that fails
leaves the party unknown with the reason on the case, and no notice goes out (never a guessed
party)."""

from __future__ import annotations

import pytest

from cases.party import HttpOwners
from cases.procedure import procedure_lifecycle
from sinks.lifecycle import TransitionRefused
from tests.unit.test_owner_source import ORG, TOKEN, found, owner_db

from .test_lifecycle import WANG, World


def with_owners(w: World, url: str) -> World:
    w.lifecycle = procedure_lifecycle(w.store.pool, w.lifecycle.custody, w.lifecycle.policy,
                                      HttpOwners(url, TOKEN, timeout_s=0.5),
                                      clock=w.clock)  # fmt: skip
    return w


async def test_the_databases_owner_is_the_party_and_its_failure_leaves_it_unknown(
    world: World,
) -> None:
    w, pool = world, world.store.pool
    with owner_db({"湘A12345": found(ORG), "湘B23456": (502, b"bad gateway")}) as url:
        with_owners(w, url)
        await w.act("small", "confirm", WANG)
        await w.act("other", "confirm", WANG)
    party = await pool.fetchrow("SELECT * FROM case_parties WHERE case_id = $1", w.cases["small"])
    assert (party["name"], party["source"]) == (ORG["name"], "省级车辆数据库")
    small = await pool.fetchval("SELECT party_unknown FROM case_files WHERE case_id = $1",
                                w.cases["small"])  # fmt: skip
    assert small is None
    cid = w.cases["other"]
    assert await pool.fetchval("SELECT count(*) FROM case_parties WHERE case_id = $1", cid) == 0
    reason = await pool.fetchval("SELECT party_unknown FROM case_files WHERE case_id = $1", cid)
    assert reason == "省级车辆数据库应答 HTTP 502"
    with pytest.raises(TransitionRefused, match="尚未确定当事人"):
        await w.act("other", "issue_notice", WANG, payload={"document": {}})
