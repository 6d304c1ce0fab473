"""The integration oracle (offsite/truth.py) against the pipeline's stages in memory: two
independent readings of the regulation that must agree on simulated traffic, on the day after
the traffic and more than two years later (行政处罚法 Art. 36)."""

from __future__ import annotations

import datetime as dt

import pytest

from offsite.testing import violations_in_memory
from sim import SimulationConfig, simulate
from sim.truth import expected

from .test_stages import BASELINES, REGISTRY

CFG = SimulationConfig(vehicles=300, seed=3, images=False)


@pytest.mark.parametrize("later", [dt.timedelta(days=1), dt.timedelta(days=2 * 366 + 1)])
async def test_the_oracle_and_the_pipeline_agree(later: dt.timedelta) -> None:
    at = CFG.start + later
    passes = simulate(REGISTRY, CFG)
    want, attached = expected(passes, REGISTRY, at, verified=False)
    got = await violations_in_memory(REGISTRY, BASELINES, CFG, decided_at=at)
    assert {v.record_id: (v.outcome, v.fine_cny) for v in got if v.attached_to is None} == {
        r: (w["outcome"], w["fine_cny"]) for r, w in want.items()
    }
    assert {v.record_id for v in got if v.attached_to} == set(attached)  # Art. 29
    outcomes = {w["outcome"] for w in want.values()}
    if later.days > 2 * 366:  # Art. 36: nothing is penalised two years on
        assert outcomes == {"no_penalty"}
    else:
        assert {"fine", "warning", "review"} <= outcomes


def test_an_expired_certificate_or_a_flagged_weighing_is_review_not_a_fine() -> None:
    """Art. 41: the record of a device outside its certificate is not evidence."""
    passes = simulate(REGISTRY, CFG)
    at = CFG.start + dt.timedelta(days=1)
    fined = next(r for r, w in expected(passes, REGISTRY, at, False)[0].items()
                 if w["outcome"] == "fine")  # fmt: skip
    device = next(p.wim.device_id for p in passes if p.wim.record_id == fined)
    data = REGISTRY.model_dump()
    for d in data["devices"]:
        if d["id"] == device:
            d["certificate"]["valid_until"] = CFG.start.date() - dt.timedelta(days=1)
    expired = type(REGISTRY).model_validate(data)
    assert expected(passes, expired, at, False)[0][fined]["outcome"] == "review"


@pytest.mark.parametrize(("own", "reason"), [(False, "site_not_enforced_on_pass_date:"),
                                             (True, "device_not_enforced_on_pass_date:")])  # fmt: skip
async def test_both_readings_review_a_pass_the_day_before_its_start_of_enforcement(
    own: bool, reason: str
) -> None:
    """Art. 41: a point's records are evidence from its 启用 (after the 公示) on; the oracle and
    the pipeline agree on every pass when one site starts the day after a fined pass, or when
    its scale alone does (``own``: the device's own 公示 dates override its point's, issue #26
    must-have 3)."""
    passes = simulate(REGISTRY, CFG)
    at = CFG.start + dt.timedelta(days=1)
    fined = next(r for r, w in expected(passes, REGISTRY, at, False)[0].items()
                 if w["outcome"] == "fine")  # fmt: skip
    wim = next(p.wim for p in passes if p.wim.record_id == fined)
    site = REGISTRY.site(wim.site_id)
    assert site is not None
    day = site.local(wim.ts).date() + dt.timedelta(days=1)
    data = REGISTRY.model_dump()
    for s in data["sites"]:
        if s["id"] == site.id and not own:
            s["publicity"]["enforced_from"] = day
    for d in data["devices"]:
        if d["id"] == wim.device_id and own:
            d["publicity"] = {**site.publicity.model_dump(), "enforced_from": day}
    late = type(REGISTRY).model_validate(data)
    want = expected(passes, late, at, False)[0]
    assert want[fined]["outcome"] == "review"
    got = await violations_in_memory(late, BASELINES, CFG, decided_at=at)
    assert {v.record_id: (v.outcome, v.fine_cny) for v in got if v.attached_to is None} == {
        r: (w["outcome"], w["fine_cny"]) for r, w in want.items()
    }
    why = next(v for v in got if v.record_id == fined).reasons
    assert any(r.startswith(reason) and "启用" in r for r in why)
