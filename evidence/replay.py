"""Replaying a decision from its package: the stored facts through today's rules engine.

For an appeal, years later. The package keeps what the decision was made from: the detection,
the site's and the device's registry entries (review, announcement and signage dates), the
prior offences the history showed (in the decision's ``quantities``), the day it was decided
and the baseline file that decided. Re-running the engine on them shows whether today's code
reaches the same decision; given another baseline file, what it would decide. A waterway
case is decided by no baseline: its replay re-runs the rules' decision on the packaged detection
(review, the legal basis, the rule's version), without the registry's notes on the checkpoint.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from events import Detection, Device, Registry, Site
from events.water import WaterDetection
from rules import Baseline, attach, decide, facts_of, violation_of
from rules.stage import water_violation_of

from .errors import EvidenceError

VIOLATION_DOC = "data/decision/violation.json"
BASELINE_DOC = "data/decision/baseline.yaml"
SITE_DOC = "data/site/notice.json"
DEVICE_DOC = "data/device/certificate.json"
COMPARED = ("outcome", "fine_cny", "tier", "overload_kg", "rule", "rule_version", "baseline_hash")
# a waterway decision: always review with its legal basis, no baseline (rules.stage)
WATER_COMPARED = ("outcome", "fine_cny", "tier", "violation_code", "legal_basis",
                  "penalty_basis", "rule", "rule_version")  # fmt: skip


@dataclass(frozen=True)
class ReplayResult:
    matches: bool
    stored: dict[str, Any]
    recomputed: dict[str, Any]
    differences: list[str]


LEGACY_STEPS = ("reviewed_on", "announced_on", "signed_on")


def legacy_site(notice: dict[str, Any]) -> dict[str, Any]:
    """A site as packaged before its 公示 dates (issue #26) had their own block: reviewed_on,
    announced_on and signed_on, each to be on or before the pass. As a ``publicity`` block
    with the same effect: enforcement from the latest of them (none missing)."""
    if not any(k in notice for k in LEGACY_STEPS):
        return notice
    site = {k: v for k, v in notice.items() if k not in LEGACY_STEPS}
    steps = [notice.get(k) for k in LEGACY_STEPS]
    reviewed, announced, signed = steps
    site["publicity"] = {
        "legal_review_on": reviewed, "technical_review_on": reviewed, "notice_on": announced,
        "publicity_until": announced, "signed_on": signed,
        "enforced_from": max(str(d) for d in steps) if all(steps) else None,  # ISO dates
    }  # fmt: skip
    return site


def _site_registry(notice: dict[str, Any], device: dict[str, Any] | None) -> Registry:
    """A registry holding only the site and device as they were packaged (what admissibility
    looks at)."""
    devices = [Device.model_validate(device)] if device else []
    if not notice.pop("in_registry", False):
        return Registry(sites=[], devices=devices)
    site = Site.model_validate({**legacy_site(notice), "devices": [d.id for d in devices]})
    return Registry(sites=[site], devices=devices)


def replay_package(path: Path, baseline_file: Path | None = None) -> ReplayResult:
    """Re-run the decision of the package at ``path`` and compare it with the stored one:
    under the package's own baseline file, or under ``baseline_file`` when given (e.g. the
    jurisdiction's current baseline). Does not check integrity: see :func:`verify_package`."""
    path = Path(path)
    try:
        doc = json.loads((path / VIOLATION_DOC).read_bytes())
        if str(doc.get("violation_code", "")).startswith("water."):
            if baseline_file is not None:
                raise ValueError(
                    "a waterway decision is made by no baseline: --baseline is not used"
                )
            det_w = WaterDetection.model_validate_json(json.dumps(doc["detection"]))
            water = water_violation_of(det_w, None)
            return _compare(doc, water.model_dump(mode="json"), WATER_COMPARED)
        det = Detection.model_validate_json(json.dumps(doc["detection"]))
        device = json.loads((path / DEVICE_DOC).read_bytes()).get("registry_entry")
        registry = _site_registry(json.loads((path / SITE_DOC).read_bytes()), device)
        data = (baseline_file or path / BASELINE_DOC).read_bytes()
        baseline = Baseline.model_validate(yaml.safe_load(data))
        prior = int(doc.get("quantities", {}).get("prior_offences", 0))
        decided = doc.get("decided_at")
        decided_on = dt.datetime.fromisoformat(decided).date() if decided else None
    except (OSError, ValueError, KeyError, TypeError, ValidationError, yaml.YAMLError) as exc:
        raise EvidenceError(f"the decision cannot be replayed: {exc}", path.name) from exc
    digest = hashlib.sha256(data).hexdigest()
    facts = facts_of(det, registry, prior, decided_on)
    new = violation_of(det, decide(baseline, digest, facts))
    if doc.get("attached_to"):  # the same trip as another case: evidence, never a fine
        new = attach(new, doc["attached_to"])
    return _compare(doc, new.model_dump(mode="json"), COMPARED)


def _compare(doc: dict[str, Any], new: dict[str, Any], keys: tuple[str, ...]) -> ReplayResult:
    stored = {k: doc.get(k) for k in keys}
    recomputed = {k: new.get(k) for k in keys}
    differences = []
    for k in keys:
        if stored[k] == recomputed[k]:
            continue
        if k == "rule_version":
            differences.append(
                f"rule_version: decided under {stored['rule']} version {stored[k]}, "
                f"replayed under {new.get('rule')} version {recomputed[k]}"
            )
        else:
            differences.append(f"{k}: stored {stored[k]!r}, replayed {recomputed[k]!r}")
    return ReplayResult(not differences, stored, recomputed, differences)
