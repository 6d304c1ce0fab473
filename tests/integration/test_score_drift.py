"""`offsite simulate --drift DEVICE,HOURS --score` through the real broker and database (issue
#29, drift watch): the pipeline runs the simulated traffic, and the score read back from the
case store (sim.score.score_drift) shows that no weighing after the alarm was enforced, reports
the delay to each lane's alarm, and finds no alarm on the devices that do not drift."""

from __future__ import annotations

import argparse

from offsite.config import Settings
from sim.feed import simulate_traffic


async def test_a_simulated_drift_is_scored_from_the_case_store(plain_settings: Settings) -> None:
    # ~50 watched tractors an hour per lane of WIM-G312-1035: 4 h build each lane's reference
    # (200 weighings), the 10,000 passes run ~6 h, so the drift has ~2 h to be caught (the
    # detector alone, tests/unit/test_drift.py's way, needs ~1.5 h on this seed). Traffic
    # without images, so the pipeline decides without the OCR second read (plain_settings).
    args = argparse.Namespace(
        vehicles=10_000, seed=7, overload_share=0.25, start=None, out=None, truth=None,
        no_images=True, no_leads=True, score=True, drift=("WIM-G312-1035", 4.0, 4.0),
    )  # fmt: skip
    summary = await simulate_traffic(plain_settings, args)
    report = summary["drift"]
    assert report["device"] == "WIM-G312-1035"
    assert report["weighings_after_drift"] > 0
    assert report["enforced_after_alarm"] == 0  # none after the alarm
    assert report["enforced"] > 0  # before it, the drifted scale's overloads were fined
    assert 0 < report["before_alarm"] < report["weighings_after_drift"]
    delays = report["alarm_delay_s"]
    assert set(delays) == {"1", "2"} and all(0 < d < 2.5 * 3600 for d in delays.values()), report
    # the devices that do not drift were watched too, and raised no alarm
    assert report["other_lanes_watched"] > 0 and report["false_alarms"] == []
