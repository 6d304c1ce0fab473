"""Dead letters round trip (issue #15 item 3): records of a site the registry does not know land
in the DLQ with the reason; `offsite dlq list` shows them; once the site is in the registry,
`offsite dlq replay` sends them back and they become cases, exactly once."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import yaml

from offsite import dlq, services
from offsite.config import Settings, registry_of
from offsite.pipeline import run
from sim import SimulationConfig
from sim.feed import make_traffic, publish, traffic_messages
from sim.truth import expected_cases
from tests.integration.test_pipeline import cases_of

ROOT = Path(__file__).resolve().parents[2]
MISSING = "S207-K45-N"


def without_site(tmp_path: Path) -> Path:
    data = yaml.safe_load((ROOT / "configs" / "sites.yaml").read_text(encoding="utf-8"))
    data["sites"] = [s for s in data["sites"] if s["id"] != MISSING]
    data["distances"] = [d for d in data["distances"] if MISSING not in d["between"]]
    path = tmp_path / "sites.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


async def dlq_cli(settings: Settings, capsys: pytest.CaptureFixture[str], action: str,
                  topic: str, **kw: object) -> list[str]:  # fmt: skip
    args = argparse.Namespace(action=action, topic=topic, since=None, reason=None, **kw)
    assert await dlq.command(args, settings) == 0
    return capsys.readouterr().out.splitlines()


async def test_dead_letters_are_listed_replayed_after_the_fix_and_become_cases_once(
    plain_settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    full = plain_settings
    partial = full.model_copy(update={"registry": without_site(tmp_path)})
    ep = services.endpoints(full)
    passes = make_traffic(full, SimulationConfig(vehicles=150, seed=5, images=False))
    expected = expected_cases(passes, registry_of(full), full.pipeline.clock()(), verified=False)
    missing = {r for r in expected if r.startswith("WIM-S207")}
    assert missing, "the fix must matter"
    await publish(full, ep, traffic_messages(passes, full.pipeline.topic_prefix))
    await run(partial, ep, until_done=True)
    assert {c["record_id"] for c in await cases_of(full)} == set(expected) - missing

    listed = await dlq_cli(
        full,
        capsys,
        "list",
        "road.wim",
    )
    wim_passes = sum(p.wim.site_id == MISSING for p in passes)
    assert listed[-1].startswith(f"{wim_passes} of {wim_passes} dead letters of ")
    assert all(f"unknown site '{MISSING}'" in line for line in listed[:-1])
    shown = await dlq_cli(full, capsys, "show", "road.wim", at=(0, 0))
    assert any('"reason"' in line for line in shown)

    # the site is added to the registry: replay both raw topics, then run again
    for topic in ("road.wim", "road.anpr"):
        out = await dlq_cli(full, capsys, "replay", topic)
        assert out[-1].startswith("replayed ") and out[-1].endswith("; 0 had been replayed before")
    await run(full, ep, until_done=True)
    cases = await cases_of(full)
    assert sorted(c["record_id"] for c in cases) == sorted(expected)

    # a second replay sends nothing: no duplicate message, no duplicate case
    again = await dlq_cli(full, capsys, "replay", "road.wim")
    assert again[-1] == (f"replayed 0 dead letters of {full.pipeline.topic_prefix}road.wim.dlq; "
                         f"{wim_passes} had been replayed before")  # fmt: skip
    await run(full, ep, until_done=True)
    assert await cases_of(full) == cases
