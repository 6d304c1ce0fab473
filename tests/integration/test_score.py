"""`offsite simulate --score` on the real broker and database: every injected lead and case
found, nothing found that was not injected or called for."""

from __future__ import annotations

import argparse

from offsite.config import Settings
from sim.feed import simulate_traffic


async def test_simulate_score_is_perfect_on_injected_and_clean_traffic(settings: Settings) -> None:
    args = argparse.Namespace(
        vehicles=250, seed=11, overload_share=0.25, start=None, out=None, truth=None,
        no_images=False, no_leads=False, score=True,
    )  # fmt: skip
    summary = await simulate_traffic(settings, args)
    scores = summary["scores"]
    assert set(scores) == {
        "overload, penalty proposed", "overload, all cases", "evasion → review",
        "plate missing → police", "cloned plate", "restricted hours", "illegal operation",
    }  # fmt: skip
    for name in ("cloned plate", "restricted hours", "illegal operation"):
        assert scores[name]["expected"] > 0 and scores[name]["recall"] == 1.0, name
    for name, s in scores.items():
        assert s["precision"] == 1.0, name  # no false case or lead on clean traffic
    for name in ("overload, all cases", "evasion → review", "plate missing → police"):
        assert scores[name]["recall"] == 1.0, name
    # a plate the OCR second read cannot confirm goes to review: at most a few such
    assert scores["overload, penalty proposed"]["recall"] >= 0.95
