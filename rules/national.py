"""The national baseline (configs/baselines/national.yaml) for callers without settings:
offline replay of a decision, tests, and the demo's worked example."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

import yaml

from events import Detection, Registry, Violation

from .baseline import Baseline
from .engine import decide as decide_facts
from .stage import facts_of, violation_of

NATIONAL_FILE = Path(__file__).resolve().parents[1] / "configs" / "baselines" / "national.yaml"


@lru_cache(maxsize=1)
def national_baseline() -> tuple[Baseline, str]:
    data = NATIONAL_FILE.read_bytes()
    return Baseline.model_validate(yaml.safe_load(data)), hashlib.sha256(data).hexdigest()


def decide(det: Detection, registry: Registry | None = None) -> Violation:
    """The decision on one overload detection under the national baseline."""
    baseline, digest = national_baseline()
    return violation_of(det, decide_facts(baseline, digest, facts_of(det, registry)))
