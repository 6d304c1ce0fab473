"""Property (issue #28): every stage of the pipeline, fed messages generated from its input
topics' JSON Schemas — each field at its bounds and past them, beside good messages — never
raises, as the runner calls it (events.stage.guarded, then idle): what it cannot take is a dead
letter with a reason, and the good messages beside it still come out."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from detectors import DetectionStage
from detectors.health import DeviceHealthStage, MemoryHealth
from detectors.leads import LeadStage, MemorySightings
from detectors.water_stage import WaterDetectionStage
from events import (
    DETECTIONS,
    LEADS,
    ROAD_ANPR,
    ROAD_WIM,
    VIOLATIONS,
    Alert,
    DatabaseError,
    Lead,
)
from events.clock import fixed_clock
from events.schema import TOPIC_MODELS
from events.stage import Incoming, Stage, StageResult, guarded
from events.water import WATER_AIS, WATER_AIS_RAW, WATER_CAMERA, AisRaw
from evidence import EvidenceStage, Signer, generate_key
from ingest.ais import AisDecodeStage
from offsite.config import load_baselines
from offsite.testing import violations_in_memory
from rules import RulesStage
from sim import SimulationConfig
from sinks.blobs import BlobStore
from sinks.stage import CaseStage, LeadSinkStage
from tests.unit.test_stages import BASELINES, REGISTRY, capture, record
from tests.unit.test_water_detect import REG, clean_pass

SCHEMAS = {topic: model.model_json_schema() for topic, model in TOPIC_MODELS.items()}
# dates a device could never send, and the last ones the contract takes
DATES = [
    "0001-01-01T00:00:00+08:00", "9999-12-31T23:59:59-08:00", "9999-12-31T23:59:59+08:00",
    "1999-12-31T23:59:59+00:00", "2000-01-01T00:00:00+00:00", "2099-12-31T23:59:59+00:00",
    "2100-01-01T00:00:00+14:00", "2026-11-22T08:00:00", "2026-02-30T08:00:00+08:00",
]  # fmt: skip
JUNK = [None, "", [], {}, -1, 0, True, "\x00", 1.5]
HUGE = [2**63, -(2**63) - 1, 10**30, -(10**30)]
TEXT = ["湘A\x001234", "a\nb", "\x85", "\u202e", "a" * 30_000, "湘" * 2_700, " "]
EXAMPLES = settings(
    deadline=None, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)  # fmt: skip


def edges(schema: dict[str, Any], defs: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values of a JSON Schema at its bounds and past them, with junk of other types."""
    if "$ref" in schema:
        return edges(defs[schema["$ref"].rsplit("/", 1)[1]], defs)
    if "anyOf" in schema:
        return st.one_of([edges(s, defs) for s in schema["anyOf"]])
    if "enum" in schema or "const" in schema:
        return st.sampled_from([*schema.get("enum", [schema.get("const")]), "", "x" * 65])
    kind = schema.get("type")
    out: st.SearchStrategy[Any]
    if kind in ("integer", "number"):
        lo = schema.get("minimum", schema.get("exclusiveMinimum"))
        hi = schema.get("maximum", schema.get("exclusiveMaximum"))
        near = [x + d for x in (lo, hi) if x is not None for d in (-1, 0, 1)]
        out = st.sampled_from([*near, *HUGE, 0])
        if kind == "number":
            out |= st.sampled_from([math.nan, math.inf, -math.inf, 1e308, 5e-324])
            out |= st.floats(lo, hi, allow_nan=False)
        else:
            out |= st.integers(lo, hi)
    elif kind == "string":
        n = schema.get("maxLength", 64)
        out = st.sampled_from(["a" * n, "a" * (n + 1), "湘" * (n + 1), *TEXT]) | st.text(max_size=n)
        if schema.get("format") == "date-time":
            out = st.sampled_from(DATES) | st.datetimes(
                dt.datetime(2000, 1, 1), dt.datetime(2099, 12, 30), timezones=st.just(dt.UTC)
            ).map(dt.datetime.isoformat)
    elif kind == "boolean":
        out = st.booleans()
    elif kind == "array":
        n = min(schema.get("maxItems", 4) + 1, 8)
        out = st.lists(edges(schema.get("items", {}), defs), max_size=n)
    elif kind == "object" and "properties" in schema:
        props = schema["properties"]
        out = st.fixed_dictionaries({k: edges(v, defs) for k, v in props.items()})
    else:
        return st.sampled_from(JUNK)
    return out | st.sampled_from(JUNK)


@st.composite
def variant(draw: st.DrawFn, topic: str, good: bytes) -> bytes:
    """A good message of ``topic`` with one to three fields at or past their bounds (or left
    out), now and then not JSON at all."""
    schema = SCHEMAS[topic]
    defs, props = schema.get("$defs", {}), schema["properties"]
    doc = json.loads(good)
    for name in draw(st.lists(st.sampled_from(sorted(props)), min_size=1, max_size=3, unique=True)):
        doc[name] = draw(edges(props[name], defs) | st.just(DROP))
        if doc[name] is DROP:
            del doc[name]
    text = json.dumps(doc, ensure_ascii=draw(st.booleans()), allow_nan=True).encode()
    return draw(st.just(text) | st.sampled_from([b"", b"\xff\xfe", b"[]", b"{", text[:40]]))


DROP = object()


@st.composite
def weighed(draw: st.DrawFn) -> bytes:
    """A WIM record within its contract, consistent, with every figure at an edge: the path
    past validation into the matcher and the detectors."""
    n = draw(st.sampled_from([2, 3, 6, 12, 13, 64]))
    kg = st.sampled_from([0, 1, 6_500, 100_000]) | st.integers(0, 100_000)
    weights = draw(st.lists(kg, min_size=n, max_size=n))
    spacing = st.sampled_from([1, 1_300, 50_000]) | st.integers(1, 50_000)
    doc = json.loads(record("w", 60_000).to_json()) | {
        "record_id": draw(st.sampled_from(["w", "w" * 128])),
        "axle_count": n, "axle_weights_kg": weights,
        "axle_spacings_mm": draw(st.lists(spacing, min_size=n - 1, max_size=n - 1)),
        "gross_weight_kg": min(max(sum(weights), 1), 2_000_000),
        "speed_kmh": draw(st.sampled_from([0.0, 5e-324, 250.0]) | st.floats(0, 250)),
        "lane": draw(st.sampled_from([1, 2, 16])),
        "ts": draw(st.sampled_from(["2000-01-01T00:00:00+00:00", "2099-12-31T23:59:59+00:00",
                                    "2026-11-22T08:00:00+08:00"])),
        "length_mm": draw(st.sampled_from([None, 1, 100_000])),
        "vehicle_kind": draw(st.sampled_from([None, "rigid", "combination"])),
        "drive_axles": draw(st.sampled_from([None, 1, 2])),
        "flags": draw(st.sampled_from([[], ["x" * 64], ["straddle"] * 32])),
    }  # fmt: skip
    return json.dumps(doc).encode()


def batch(topic_values: Sequence[tuple[str, bytes]]) -> list[Incoming]:
    ms = round(dt.datetime(2026, 11, 22, tzinfo=dt.UTC).timestamp() * 1000)
    return [Incoming(t, 0, i, t.encode(), v, ms) for i, (t, v) in enumerate(topic_values)]


def survives(stage: Stage, items: list[Incoming]) -> StageResult:
    """What the runner does with a batch and then with idle time; raising fails the test."""

    async def run() -> StageResult:
        res = await guarded(stage, items)
        await stage.acknowledged(res)
        idle = await stage.idle()
        await stage.acknowledged(idle)
        return StageResult(out=res.out + idle.out, dead=res.dead + idle.dead)

    res = asyncio.run(run())
    reasons = [json.loads(d.value)["reason"] for d in res.dead]
    assert all(reasons)
    for why in reasons:  # what the guard caught, for --hypothesis-show-statistics
        if " failed on this message: " in why:
            event(why.split(" failed on this message: ")[1].split(":")[0])
    return res


# --- good messages of every topic, from a simulated run ---------------------------------------

WIM = record("good", 60_000).to_json()
CAPTURE = capture("c-good", 0.1).to_json()


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("poison")
    blobs = BlobStore(root / "blobs")
    cfg = SimulationConfig(vehicles=4, seed=3, overload_share=1.0)
    violations = asyncio.run(violations_in_memory(REGISTRY, BASELINES, cfg, blobs.put))
    good = next(v for v in violations if v.outcome != "none")
    generate_key(root / "key.pem")
    ais, vessel = clean_pass()
    return {
        "root": root, "blobs": blobs, "signer": Signer.load(root / "key.pem"),
        "violation": good.to_json(), "detection": good.detection.to_json(),
        "ais": [r.to_json() for r in ais], "vessel": vessel.to_json(),
    }  # fmt: skip


class Refusing:
    """A case store that refuses what PostgreSQL refuses (a NUL, an index row past 2,704
    bytes) the way sinks.casestore reports it: a DatabaseError that is not retriable."""

    def __init__(self) -> None:
        self.written: list[str] = []

    def _check(self, documents: Sequence[str], plates: Sequence[str | None]) -> None:
        if any("\\u0000" in d for d in documents) or any(
            len((p or "").encode()) > 2_704 for p in plates
        ):
            raise DatabaseError("invalid byte sequence or index row too large", retriable=False)

    async def begin_batch(self, violations: Sequence[Any], documents: Sequence[str]) -> Any:
        self._check(documents, [v.plate for v in violations])
        store = self

        class Pending:
            alerts: tuple[Alert, ...] = ()

            async def commit(self) -> None:
                store.written += documents

            async def rollback(self) -> None:
                return None

        return Pending()

    async def write_leads(self, leads: Sequence[tuple[Lead, str]]) -> int:
        self._check([d for _, d in leads], [x.plate for x, _ in leads])
        return len(leads)


def prop(
    *sources: tuple[str, Callable[[dict[str, Any]], bytes] | bytes | st.SearchStrategy[bytes]],
    examples: int = 60,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Hypothesis draws 1–6 variants of the given topics' good messages (or the strategies
    given), beside the good messages themselves, in ``examples`` examples."""

    def wrap(test: Callable[..., Any]) -> Callable[..., Any]:
        @settings(EXAMPLES, max_examples=examples)
        @given(data=st.data())
        def body(run: dict[str, Any], data: st.DataObject) -> None:
            goods = [(t, g(run) if callable(g) else g) for t, g in sources]
            pick = st.one_of([
                st.tuples(st.just(t), g if isinstance(g, st.SearchStrategy) else variant(t, g))
                for t, g in goods
            ])  # fmt: skip
            bad = data.draw(st.lists(pick, min_size=1, max_size=6))
            plain = [(t, g) for t, g in goods if isinstance(g, bytes)]
            test(run, [*plain[:1], *bad, *plain[1:]])

        body.__name__ = test.__name__
        return body

    return wrap


@prop((ROAD_WIM, WIM), (ROAD_ANPR, CAPTURE), (ROAD_WIM, weighed()), examples=100)
def test_detect(run: dict[str, Any], items: list[tuple[str, bytes]]) -> None:
    res = survives(DetectionStage(REGISTRY), batch(items))
    assert any(b'"record_id":"good"' in o.value for o in res.out if o.topic == DETECTIONS)


@prop((DETECTIONS, lambda r: r["detection"]))
def test_rules(run: dict[str, Any], items: list[tuple[str, bytes]]) -> None:
    decided = fixed_clock(dt.datetime(2026, 11, 23, 10, tzinfo=dt.UTC))  # after the passes
    res = survives(RulesStage(load_baselines(BASELINES), REGISTRY, clock=decided), batch(items))
    assert any(o.topic == VIOLATIONS for o in res.out)


@prop((VIOLATIONS, lambda r: r["violation"]))
def test_cases(run: dict[str, Any], items: list[tuple[str, bytes]]) -> None:
    store = Refusing()
    survives(CaseStage(store), batch(items))  # type: ignore[arg-type]
    assert run["violation"].decode() in store.written  # the good case of the batch is stored


@prop((VIOLATIONS, lambda r: r["violation"]), examples=30)
def test_evidence(run: dict[str, Any], items: list[tuple[str, bytes]]) -> None:
    out = run["root"] / "evidence"
    stage = EvidenceStage(REGISTRY, run["blobs"], run["signer"], out, "局", [BASELINES["national"]])
    survives(stage, batch(items))
    assert any(Path(out).iterdir())


@prop((ROAD_ANPR, CAPTURE))
def test_leads(run: dict[str, Any], items: list[tuple[str, bytes]]) -> None:
    survives(LeadStage(REGISTRY, MemorySightings()), batch(items))


LEAD = Lead(
    lead_id="lead-1", kind="plate_missing", detector="plate.missing", detector_version="1",
    plate=None, site_id="G312-K1035-E", ts=dt.datetime(2026, 11, 22, tzinfo=dt.UTC), score=0.5,
    reasons=["x"], sightings=[],
).to_json()  # fmt: skip


@prop((LEADS, LEAD))
def test_lead_store(run: dict[str, Any], items: list[tuple[str, bytes]]) -> None:
    survives(LeadSinkStage(Refusing()), batch(items))  # type: ignore[arg-type]


@prop((ROAD_WIM, WIM), (ROAD_ANPR, CAPTURE))
def test_health(run: dict[str, Any], items: list[tuple[str, bytes]]) -> None:
    clock = lambda: dt.datetime(2026, 11, 22, 1, tzinfo=dt.UTC)  # noqa: E731
    survives(DeviceHealthStage(REGISTRY, MemoryHealth(), clock=clock), batch(items))


RAW = AisRaw(
    receiver_id="rx-1", ts=dt.datetime(2026, 11, 22, tzinfo=dt.UTC),
    sentence="!AIVDM,1,1,,A,16:=?;0P00`SstvFnFbeGH6L088h,0*44",
).to_json()  # fmt: skip
SENTENCES = st.sampled_from([
    "!AIVDM,2,1,7,A,55NBXv02>t;4<H@cL000000000000000001@000000000000000000000,0*00",
    "!AIVDM,2,2,7,A,00000000000,2*00", "!AIVDM,9,9,9,A,,0*00", "!AIVDM,1,1,,A,,0*57",
    "\\s:rx,c:99999999999999*00\\!AIVDM,1,1,,A,16:=?;0P00`SstvFnFbeGH6L088h,0*44",
    "!AIVDM,1,1,,A," + "w" * 1_900 + ",0*00", "!AIVDM,-1,0,,A,1,0*00",
]).map(lambda s: json.dumps(json.loads(RAW) | {"sentence": s}).encode())  # fmt: skip


@prop((WATER_AIS_RAW, RAW), (WATER_AIS_RAW, SENTENCES))
def test_ais_decode(run: dict[str, Any], items: list[tuple[str, bytes]]) -> None:
    survives(AisDecodeStage(), batch(items))


@prop((WATER_AIS, lambda r: r["ais"][0]), (WATER_CAMERA, lambda r: r["vessel"]), examples=20)
def test_water_detect(run: dict[str, Any], items: list[tuple[str, bytes]]) -> None:
    goods = [(WATER_AIS, a) for a in run["ais"]]
    survives(WaterDetectionStage(REG), batch([*goods, *items]))


def test_every_stage_is_fed() -> None:
    """Each stage of offsite.pipeline.STAGES has its property above."""
    from offsite.pipeline import STAGES

    tests = {n[5:].replace("_", "-") for n in globals() if n.startswith("test_")}
    assert {s.replace(".", "-") for s in STAGES} <= tests
