"""No record stops a stage (issue #28): what a stage raises on is a dead letter with the
exception as its reason, the rest of its batch goes on, and only a retriable failure of the
broker or the database stops a batch."""

from __future__ import annotations

import datetime as dt
import json

import asyncpg
import pytest

from detectors import DetectionStage
from detectors.leads import LeadStage, MemorySightings
from detectors.plates import PlateRead
from events import BrokerError, DatabaseError, Detection, ImageRef
from events.clock import fixed_clock
from events.stage import POISON, BaseStage, Incoming, Outgoing, StageResult, guarded
from offsite.config import load_baselines
from rules import RulesStage

from .test_stages import BASELINES, REGISTRY, capture, incoming, record


class Picky(BaseStage):
    """Echoes each message; raises on the ones whose value says so."""

    name = "picky"
    inputs = ("in",)

    def __init__(self, isolable: bool, exc: Exception | None = None) -> None:
        self.isolable, self.calls = isolable, 0
        self.exc = exc or ValueError("cannot take this")

    async def process(self, batch: list[Incoming]) -> StageResult:
        self.calls += 1
        if any(m.value == b"bad" for m in batch):
            raise self.exc
        return StageResult(out=[Outgoing("out", None, m.value) for m in batch])


def _batch(*values: bytes) -> list[Incoming]:
    return [Incoming("in", 0, i, None, v) for i, v in enumerate(values)]


async def test_an_isolable_stage_dead_letters_the_message_it_raises_on_and_goes_on() -> None:
    res = await guarded(Picky(True), _batch(b"a", b"bad", b"c"))
    assert [o.value for o in res.out] == [b"a", b"c"]
    [letter] = [json.loads(d.value) for d in res.dead]
    assert (letter["topic"], letter["offset"], letter["value"]) == ("in", 1, "bad")
    assert letter["reason"] == "picky failed on this message: ValueError: cannot take this"
    assert res.dead[0].topic == "in.dlq" and res.observed == [(POISON, ("picky",), 1)]


@pytest.mark.parametrize(
    "exc", [BrokerError("broker down"), DatabaseError("database down")], ids=["broker", "db"]
)
async def test_a_failure_of_the_broker_or_the_database_stops_the_batch(exc: Exception) -> None:
    with pytest.raises(type(exc)):
        await guarded(Picky(True, exc), _batch(b"a", b"bad"))


@pytest.mark.parametrize(
    "exc",
    [
        asyncpg.CannotConnectNowError("the database system is shutting down"),  # SQLSTATE 57P03
        asyncpg.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.InterfaceError("connection is closed"),
    ],
    ids=["shutting-down", "admin-shutdown", "closed"],
)
async def test_a_driver_error_of_a_database_restart_stops_the_batch(exc: Exception) -> None:
    # unwrapped driver errors of a PostgreSQL restart: as dead letters they would lose every
    # record of the outage (seen: the rules stage's history query during a restart)
    with pytest.raises(type(exc)):
        await guarded(Picky(True, exc), _batch(b"a", b"bad"))


async def test_a_socket_error_inside_the_driver_stops_the_batch_and_one_outside_does_not() -> None:
    async def connect() -> None:  # asyncpg reaching a unix socket that is gone
        await asyncpg.connect(host="/nonexistent-offsite-socket-dir", port=5432, timeout=5)

    try:
        await connect()
    except OSError as exc:
        driver = exc
    with pytest.raises(OSError):
        await guarded(Picky(True, driver), _batch(b"a", b"bad"))
    res = await guarded(Picky(True, FileNotFoundError("var/blobs/x.jpg")), _batch(b"a", b"bad"))
    assert [o.value for o in res.out] == [b"a"] and len(res.dead) == 1


async def test_a_value_the_database_refuses_is_the_record_s_not_the_database_s() -> None:
    refused = DatabaseError("writing 1 cases failed: invalid byte sequence", retriable=False)
    res = await guarded(Picky(True, refused), _batch(b"bad", b"b"))
    assert [o.value for o in res.out] == [b"b"] and len(res.dead) == 1


async def test_a_stage_with_state_is_never_called_twice_on_a_message() -> None:
    stage = Picky(False)
    with pytest.raises(ValueError):
        await guarded(stage, _batch(b"a", b"bad"))
    assert stage.calls == 1


def _wim(**changes: object) -> bytes:
    doc = json.loads(record("x", 60_000).to_json())
    doc.update(changes, record_id=f"bad-{len(changes)}-{sorted(changes)}")
    return json.dumps(doc).encode()


# issue #28 row 1: each of these was accepted (202) and killed the detect stage, for ever
ROW1 = {
    "weights past int64": _wim(axle_weights_kg=[10**30] * 6, gross_weight_kg=6 * 10**30),
    "year 1": _wim(ts="0001-01-01T00:00:00+08:00"),
    "year 9999, west": _wim(ts="9999-12-31T23:59:59-08:00"),
    "year 9999, east": _wim(ts="9999-12-31T23:59:59+08:00"),
}


async def test_row1_records_are_dead_letters_and_the_good_pass_beside_them_is_detected() -> None:
    stage = DetectionStage(REGISTRY, window_s=1.0, min_plate_confidence=0.9)
    good = [record("good", 60_000), capture("c-good", 0.1)]
    batch = incoming([*good[:1], *ROW1.values(), *good[1:]])
    res = await stage.process(batch)
    flushed = await stage.idle()
    dets = [Detection.model_validate_json(o.value) for o in res.out + flushed.out
            if o.topic == "detections"]  # fmt: skip
    assert [(d.record_id, d.plate, d.enforceable) for d in dets] == [("good", "湘A12345", True)]
    reasons = [json.loads(d.value)["reason"] for d in res.dead]
    assert len(reasons) == 4
    assert "axle_weights_kg.0: Input should be less than or equal to 100000" in reasons[0]
    assert all("ts: Value error" in r and "outside 2000–2099" in r for r in reasons[1:])


async def test_row1_a_detection_dated_9999_is_a_dead_letter_of_the_rules_stage() -> None:
    stage = DetectionStage(REGISTRY, window_s=1.0, min_plate_confidence=0.9)
    res = await stage.process(incoming([record("good", 60_000), capture("c1", 0.1)]))
    [det] = (await stage.idle()).out + res.out
    doc = json.loads(det.value)
    doc.update(ts="9999-12-31T23:59:59+08:00", detection_id="det-bad")
    decided = fixed_clock(dt.datetime(2026, 11, 23, 10, tzinfo=dt.UTC))  # after the passes
    rules = RulesStage(load_baselines(BASELINES), REGISTRY, clock=decided)
    batch = [Incoming("detections", 0, 0, None, json.dumps(doc).encode()),
             Incoming("detections", 0, 1, None, det.value)]  # fmt: skip
    out = await guarded(rules, batch)
    assert [json.loads(o.value)["record_id"] for o in out.out] == ["good"]
    [letter] = [json.loads(d.value) for d in out.dead]
    assert (
        letter["offset"] == 0 and "ts: Value error, 9999-12-31T23:59:59+08:00" in letter["reason"]
    )


async def test_row1_a_capture_dated_year_1_or_9999_does_not_stop_the_lead_stage() -> None:
    stage = LeadStage(REGISTRY, MemorySightings())
    good = capture("c-good", 0)
    bad = [json.loads(good.to_json()) | {"capture_id": f"c{i}", "ts": ts}
           for i, ts in enumerate(["0001-01-01T00:00:00+08:00", "9999-12-31T23:59:59-08:00"])]  # fmt: skip
    batch = [Incoming("road.anpr", 0, i, None, json.dumps(b).encode()) for i, b in enumerate(bad)]
    batch.append(Incoming("road.anpr", 0, 2, None, good.to_json()))
    await guarded(stage, batch)  # the detect stage dead-letters road.anpr: here they are skipped
    assert [s.capture_id for s in (await stage.store.recall_sightings(
        ["湘A12345"], good.ts, good.ts))] == ["c-good"]  # fmt: skip


class FailingReader:
    """A plate reader that raises on one image, as a decoder would on a corrupt JPEG."""

    def load(self) -> None:
        return None

    def read(self, jpeg: bytes) -> PlateRead:
        if jpeg == b"corrupt":
            raise OSError("image file is truncated")
        return PlateRead("湘A12345", 0.99, "湘A12345")


async def test_a_pass_whose_assessment_raises_is_a_dead_letter_and_the_others_keep_their_ids() -> (
    None
):
    def with_plate_image(cid: str, s: float, plate: str, data: str) -> object:
        c = capture(cid, s, plate=plate)
        image = ImageRef(role="plate", uri=data, sha256="0" * 64, width=10, height=10)
        return c.model_copy(update={"images": [image]})

    def stage() -> DetectionStage:
        return DetectionStage(REGISTRY, window_s=1.0, min_plate_confidence=0.9,
                              plate_reader=FailingReader(), load_image=str.encode)  # fmt: skip

    good = [record("good", 60_000, 0), with_plate_image("c1", 0.1, "湘A12345", "fine")]
    bad = [record("bad", 60_000, 10), with_plate_image("c2", 10.1, "湘A12345", "corrupt")]
    alone = stage()
    res = await alone.process(incoming(good))
    expected = [o.value for o in res.out + (await alone.idle()).out]
    both = stage()
    res = await both.process(incoming([*good, *bad]))
    flushed = await both.idle()
    assert [o.value for o in res.out + flushed.out] == expected
    [letter] = [json.loads(d.value) for d in res.dead + flushed.dead]
    assert json.loads(letter["value"])["record_id"] == "bad" and letter["topic"] == "road.wim"
    assert letter["reason"] == "detect failed on this message: OSError: image file is truncated"
    assert (POISON, ("detect",), 1) in res.observed + flushed.observed
