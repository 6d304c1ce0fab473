"""`offsite simulate --score`: precision and recall of each detector against the ground truth
of simulated traffic and injected lead scenarios, from what the pipeline stored. Waterway truth
is matched to detections by sim.water, next to the simulator that made it."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from events.water import WaterDetection
from offsite.config import Settings, registry_of
from offsite.services import endpoints
from sinks import CaseStore

from .leads import LeadTruth
from .road import Pass
from .truth import expected_cases, expected_missing_plates
from .water import WaterTruth, score_water

T = TypeVar("T")
F = TypeVar("F")


@dataclass(frozen=True)
class Score:
    detector: str
    expected: int
    found: int
    true_found: int  # found items that match something expected
    found_expected: int  # expected items that something found matches

    @property
    def precision(self) -> float:
        return self.true_found / self.found if self.found else 1.0

    @property
    def recall(self) -> float:
        return self.found_expected / self.expected if self.expected else 1.0

    def line(self) -> str:
        return (f"{self.detector:30} expected {self.expected:4}  found {self.found:4}  "
                f"precision {self.precision:.3f}  recall {self.recall:.3f}")  # fmt: skip


def _score(name: str, expected: list[T], found: list[F], same: Callable[[T, F], bool]) -> Score:
    return Score(
        name, len(expected), len(found),
        sum(any(same(e, f) for e in expected) for f in found),
        sum(any(same(e, f) for f in found) for e in expected),
    )  # fmt: skip


def _sorted(items: Iterable[Any]) -> list[Any]:
    return sorted(items, key=repr)


async def score(settings: Settings, passes: list[Pass], injected: list[LeadTruth]) -> list[Score]:
    """A case is right only with the expected record, outcome, fine and plate; a lead only with
    the expected kind and plate (and record, for missing plates) and sightings from the truth."""
    store = await CaseStore.connect(endpoints(settings).database_url)
    try:
        cases = await store.cases("violation_code NOT LIKE 'water.%'")  # waterways: below
        leads = await store.leads()
        reviews = await store.pool.fetch(
            "SELECT record_id, violation->'reasons' AS r FROM cases WHERE outcome = 'review'"
        )
    finally:
        await store.close()
    truth = [p.truth for p in passes]
    want = expected_cases(
        passes, registry_of(settings), settings.pipeline.clock()(), settings.pipeline.verify_plates
    )
    penalties = _sorted((r, w["outcome"], w["fine_cny"], w["plate"]) for r, w in want.items()
                    if w["outcome"] != "review")  # fmt: skip
    proposed = _sorted((c["record_id"], c["outcome"], c["fine_cny"], c["plate"]) for c in cases
                   if c["outcome"] != "review")  # fmt: skip
    flagged = {t.record_id for t in truth if t.flags}
    evasion = [r["record_id"] for r in reviews
               if any(x.startswith("flag:") for x in json.loads(r["r"]))]  # fmt: skip
    missing = [x["record_id"] for x in leads if x["kind"] == "plate_missing"]
    out = [
        _score("overload, penalty proposed", penalties, proposed, lambda e, f: e == f),
        _score("overload, all cases", _sorted(want), _sorted(c["record_id"] for c in cases),
               lambda e, f: e == f),
        _score("evasion → review", _sorted(r for r in want if r in flagged), evasion,
               lambda e, f: e == f),
        _score("plate missing → police", _sorted(expected_missing_plates(truth)), missing,
               lambda e, f: e == f),
    ]  # fmt: skip
    for kind in ("cloned_plate", "restricted_hours", "illegal_operation"):
        out.append(_score(
            kind.replace("_", " "),
            [t for t in injected if t.kind == kind],
            [x for x in leads if x["kind"] == kind],
            lambda t, x: t.plate == x["plate"] and set(x["captures"]) <= set(t.capture_ids),
        ))  # fmt: skip
    return out


def drift_report(
    passes: list[Pass], alarms: dict[tuple[str, int], dt.datetime | None], enforced: set[str]
) -> dict[str, Any]:
    """The drift watch against the simulated drift: of the weighings the drifting device made
    after its drift began, how many came before its lane's alarm and how many were enforced
    (a fine or warning proposed; none may come after the alarm), and the delay to each alarm."""
    drifted = [p for p in passes if p.truth.drifted]
    if not drifted:
        return {"weighings_after_drift": 0}
    began = min(p.wim.ts for p in drifted)
    device = drifted[0].wim.device_id

    def alarm(p: Pass) -> dt.datetime | None:
        return alarms.get((p.wim.device_id, p.wim.lane))

    return {
        "device": device, "began": began.isoformat(), "weighings_after_drift": len(drifted),
        "before_alarm": sum(1 for p in drifted if (a := alarm(p)) is None or p.wim.ts < a),
        "enforced": sum(1 for p in drifted if p.wim.record_id in enforced),
        "enforced_after_alarm": sum(1 for p in drifted if p.wim.record_id in enforced
                                    and (a := alarm(p)) is not None and p.wim.ts >= a),
        "alarm_delay_s": {str(lane): None if a is None else (a - began).total_seconds()
                          for (d, lane), a in sorted(alarms.items()) if d == device},
        # the lanes of the devices that do not drift: watched, and none may raise an alarm
        "other_lanes_watched": sum(1 for d, _ in alarms if d != device),
        "false_alarms": [f"{d} lane {lane}" for (d, lane), a in sorted(alarms.items())
                         if d != device and a is not None],
    }  # fmt: skip


def drift_line(r: dict[str, Any]) -> str:
    if not r.get("weighings_after_drift"):
        return "drift watch: no weighing after the drift began"
    delays = ", ".join(f"lane {k}: " + ("no alarm" if v is None else f"{v / 3600:.1f} h")
                       for k, v in r["alarm_delay_s"].items())  # fmt: skip
    return (f"drift watch on {r['device']}: {r['weighings_after_drift']} weighings after the drift"
            f" began, {r['before_alarm']} before the alarm, {r['enforced']} enforced"
            f" ({r['enforced_after_alarm']} after the alarm); delay to the alarm: {delays};"
            f" false alarms on the {r['other_lanes_watched']} other lanes watched:"
            f" {', '.join(r['false_alarms']) or 'none'}")  # fmt: skip


async def score_drift(settings: Settings, passes: list[Pass]) -> dict[str, Any]:
    """:func:`drift_report` from what the pipeline stored: the watch's state, the cases."""
    store = await CaseStore.connect(endpoints(settings).database_url)
    try:
        states = await store.drift_states()
        rows = await store.pool.fetch(
            "SELECT record_id FROM cases WHERE outcome IN ('fine', 'warning')"
            " AND record_id = ANY($1)", [p.wim.record_id for p in passes if p.truth.drifted])  # fmt: skip
    finally:
        await store.close()
    alarms = {k: None if v["alarm_at"] is None else dt.datetime.fromisoformat(v["alarm_at"])
              for k, v in states.items()}  # fmt: skip
    return drift_report(passes, alarms, {r["record_id"] for r in rows})


async def score_waterways(settings: Settings, truth: list[WaterTruth]) -> list[Score]:
    """Each waterway detector against the simulator's truth, from the detections the stored
    waterway cases and the leads for the maritime authority rest on."""
    store = await CaseStore.connect(endpoints(settings).database_url)
    try:
        rows = await store.pool.fetch(
            "SELECT (violation->'detection')::jsonb AS d FROM cases"
            " WHERE violation_code LIKE 'water.%'"
            " UNION ALL SELECT (lead->'evidence'->'detection')::jsonb FROM leads"
            " WHERE kind = 'maritime_referral'"
        )
    finally:
        await store.close()
    found = [WaterDetection.model_validate_json(r["d"]) if isinstance(r["d"], str)
             else WaterDetection.model_validate(r["d"]) for r in rows]  # fmt: skip
    return [Score(*row) for row in score_water(truth, found)]
