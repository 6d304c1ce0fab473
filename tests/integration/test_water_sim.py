"""`offsite simulate --score` with waterway traffic, on the real broker and database: simulated
AIS lines from two shore receivers and checkpoint captures go through the whole pipeline (AIS
decoding, the waterway detectors, rules, cases); every injected case is found, nothing is found
on clean traffic, and no vessel is called dark while a degraded receiver explains its silence."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from offsite.config import Settings
from sim.feed import simulate_traffic
from sim.water import DEGRADED_CHECK, DETECTORS

ROOT = Path(__file__).resolve().parents[2]
INJECTED = set(DETECTORS) - {"water.static.registry"}  # every detector has a case but that one


async def test_simulated_waterway_traffic_scores_perfectly(
    plain_settings: Settings, tmp_path: Path
) -> None:
    settings = plain_settings.model_copy(update={"waterways": ROOT / "configs" / "waterways.yaml"})
    args = argparse.Namespace(
        vehicles=20, seed=7, overload_share=0.25, start=None, out=None,
        truth=tmp_path / "truth.jsonl", no_images=True, no_leads=True, score=True,
        vessels=16, no_water=False,
    )  # fmt: skip
    summary = await simulate_traffic(settings, args)
    scores = summary["scores"]
    for name in (*DETECTORS, DEGRADED_CHECK):
        s = scores[name]
        assert (s["precision"], s["recall"]) == (1.0, 1.0), (name, s)
    for name in INJECTED:
        assert scores[name]["expected"] > 0, name
    assert scores[DEGRADED_CHECK]["found"] == 0
    # the road's scores count road cases only, beside the waterway ones in the one queue
    assert scores["overload, all cases"]["precision"] == 1.0

    truth = [json.loads(line) for line in (tmp_path / "water-truth.jsonl").read_text().splitlines()]
    kinds = {t["kind"] for t in truth}
    # the look-alikes were there: an unset draught and a class B vessel passing while its
    # receiver was degraded (silent), a licensed dredger working in the 禁采区 (found: no
    # licence excuses it, 《长江保护法》 Art. 28, review §W)
    assert {"draught_unknown", "licensed_dredging", "degraded", "receiver_degraded"} <= kinds
    (silent,) = [t for t in truth if t["kind"] == "degraded"]
    assert silent["detector"] is None and silent["capture_ids"]
