"""The traffic simulator and file replay."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from events import UsageError
from ingest import read_records
from offsite.config import load_registry
from sim import SimulationConfig, simulate
from sinks import BlobStore

ROOT = Path(__file__).resolve().parents[2]
REGISTRY = load_registry(ROOT / "configs" / "sites.yaml")
PLATE = re.compile(r"^[\u4e00-\u9fff][A-HJ-NP-Z]([0-9A-HJ-NP-Z]{5}|[0-9]{4}挂)$")


def test_deterministic_in_the_seed() -> None:
    a = simulate(REGISTRY, SimulationConfig(vehicles=200, seed=1))
    b = simulate(REGISTRY, SimulationConfig(vehicles=200, seed=1))
    c = simulate(REGISTRY, SimulationConfig(vehicles=200, seed=2))
    assert [p.wim.to_json() for p in a] == [p.wim.to_json() for p in b]
    assert [p.wim.to_json() for p in a] != [p.wim.to_json() for p in c]


def test_traffic_is_realistic() -> None:
    passes = simulate(REGISTRY, SimulationConfig(vehicles=2000, seed=5))
    configs = Counter(p.truth.configuration for p in passes)
    assert {p.wim.axle_count for p in passes} == {2, 3, 4, 5, 6}
    assert 0.28 < configs["truck_2"] / 2000 < 0.40 and configs["combination_6_single_drive"] > 50
    over = sum(p.truth.true_gross_kg > p.truth.limit_kg for p in passes) / 2000
    assert 0.18 < over < 0.32
    states = Counter(p.truth.capture for p in passes)
    assert set(states) == {"ok", "missed", "unreadable", "misread", "confident_misread"}
    assert all(PLATE.match(p.truth.plate) for p in passes), "GB plate format"
    assert any(p.truth.plate.endswith("挂") for p in passes)
    assert len({p.truth.plate for p in passes}) < 2000 * 0.9, "some vehicles come back"
    for p in passes:
        assert sum(p.wim.axle_weights_kg) == p.wim.gross_weight_kg
        if p.capture is not None:
            assert p.capture.lane == p.wim.lane
            assert abs((p.capture.ts - p.wim.ts).total_seconds()) <= 0.35
        if p.truth.capture == "misread":
            assert p.truth.read_plate != p.truth.plate and p.capture is not None
            assert p.capture.confidence < 0.9


def test_captures_carry_real_jpegs(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path)
    passes = simulate(REGISTRY, SimulationConfig(vehicles=30, seed=9), put_blob=blobs.put)
    refs = [i for p in passes if p.capture for i in p.capture.images]
    assert refs
    for ref in refs:
        data = blobs.path(ref.uri).read_bytes()
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        assert img.shape[:2] == (ref.height, ref.width)


def test_replay_reads_lines_byte_for_byte(tmp_path: Path) -> None:
    path = tmp_path / "road.wim.jsonl"
    path.write_bytes(b'{"site_id": "S1", "ts": "2026-11-22T08:00:00+08:00"}\n\nnot json\n')
    rows = list(read_records([path], prefix="p."))
    assert [(m.topic, m.key, m.value) for m, _ in rows] == [
        ("p.road.wim", b"S1", b'{"site_id": "S1", "ts": "2026-11-22T08:00:00+08:00"}'),
        ("p.road.wim", None, b"not json"),
    ]
    other = tmp_path / "mixed.jsonl"
    other.write_bytes(b'{"capture_id": "c", "camera_id": "C"}\n{"x": 1}\n')
    with pytest.raises(UsageError, match=r"mixed\.jsonl:2: cannot tell the topic"):
        list(read_records([other]))
    with pytest.raises(UsageError, match="--topic must be one of"):
        list(read_records([other], topic="alerts"))


def test_replay_sends_static_reweighs_to_their_topic(tmp_path: Path) -> None:
    """A recorded file of static reweighs (精检): by its fields, or by the file's name."""
    line = b'{"site_id": "S1", "scale_certificate": {}, "axle_weights_kg": [9000]}'
    mixed = tmp_path / "station.jsonl"
    mixed.write_bytes(line + b'\n{"site_id": "S1", "axle_weights_kg": [9000]}\n')
    rows = list(read_records([mixed]))
    assert [(m.topic, m.key) for m, _ in rows] == [("road.reweigh", b"S1"), ("road.wim", b"S1")]
    named = tmp_path / "road.reweigh.jsonl"
    named.write_bytes(b'{"site_id": "S2"}\n')
    assert [(m.topic, m.key) for m, _ in read_records([named])] == [("road.reweigh", b"S2")]
