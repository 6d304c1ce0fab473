"""Waterway evidence packages (issue #13 item 5): built from the detectors' and rules' own output
on traffic over the shipped registry, checked with the LoC bagit validator and
``evidence.verify`` exactly like a road package; deterministic; a tampered file fails."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import bagit
import cv2
import numpy as np
import pytest

from events import ImageRef
from events.models import ImageRole
from events.stage import Incoming
from events.water import (
    LEGAL_BASIS,
    WATER_PENALTY_BASIS,
    WATER_VIOLATIONS,
    VesselCapture,
    WaterViolation,
)
from evidence import EvidenceStage, Signer, case_id, generate_key, replay_package, verify_package
from evidence.errors import EvidenceError
from evidence.water_bag import build_water_package, water_config_hash
from rules.stage import water_violation_of
from sinks.blobs import BlobStore
from sinks.casestore import case_id as store_case_id
from tests.unit.test_evidence import AGENCY, REGISTRY
from tests.unit.test_water_detect import CP2, DET, NOON, REG, A, at, capture, clean_pass, rep

T0 = dt.datetime(2026, 11, 22, 13, 0, tzinfo=REG.tz)


def jpeg(shade: int) -> bytes:
    ok, buf = cv2.imencode(".jpg", np.full((48, 64, 3), shade, np.uint8))
    assert ok
    return buf.tobytes()


def with_images(cap: VesselCapture, blobs: BlobStore) -> VesselCapture:
    refs = []
    roles: list[tuple[ImageRole, int]] = [("side", 90), ("overview", 160)]
    for role, shade in roles:
        uri, digest = blobs.put(jpeg(shade))
        refs.append(ImageRef(role=role, uri=uri, sha256=digest, width=64, height=48))
    return cap.model_copy(update={"images": refs})


def dark_vessel(blobs: BlobStore) -> WaterViolation:
    """A vessel photographed at CP1 with no AIS track: the detector's finding, the rules'
    decision."""
    reports, _ = clean_pass()
    dark = with_images(capture(0, NOON + dt.timedelta(minutes=30), "湘岳阳货2002"), blobs)
    (det,) = DET.detect(reports, [dark]).detections
    return water_violation_of(det, REG)


def two_places() -> WaterViolation:
    """One MMSI at two places at once: an identity finding along the channel, no capture."""
    reports, cap = clean_pass()
    lon, lat = at(CP2 + 200)
    clone = rep(A, NOON + dt.timedelta(minutes=25, seconds=5), "RX-XJ-02", lat=lat, lon=lon,
                sog_kn=6.0)  # fmt: skip
    det = DET.detect([*reports, clone], [cap]).detections[0]
    return water_violation_of(det, REG)


@pytest.fixture
def signer(tmp_path: Path) -> Signer:
    key = tmp_path / "keys" / "evidence.pem"
    generate_key(key)
    return Signer.load(key)


def read(package: Path, name: str) -> object:
    return json.loads((package / "data" / name).read_bytes())


def test_a_dark_vessel_package_verifies_and_holds_the_vessel_and_its_evidence(
    tmp_path: Path, signer: Signer
) -> None:
    blobs = BlobStore(tmp_path / "blobs")
    v = dark_vessel(blobs)
    package = build_water_package(v, REG, blobs, tmp_path / "ev", signer, AGENCY, created_at=T0)
    assert package.name == case_id(v) == store_case_id(v)  # the case store's case
    assert verify_package(package) == []
    bagit.Bag(str(package)).validate()  # an outside validator agrees
    names = sorted(str(p.relative_to(package / "data")) for p in (package / "data").rglob("*.*"))
    assert names == [
        "ais/evidence.json", "decision/basis.json", "decision/detection.json",
        "decision/versions.json", "decision/violation.json", "images/overview.jpg",
        "images/side.jpg", "registry/receivers.json", "registry/site.json",
        "registry/vessels.json",
    ]  # fmt: skip  # no WIM measurement, device certificate, baseline or road composite
    for ref in v.detection.images:
        assert (package / "data" / "images" / f"{ref.role}.jpg").read_bytes() == (
            blobs.path(ref.uri).read_bytes()
        )
    assert json.loads((package / "data/decision/violation.json").read_bytes()) == json.loads(
        v.to_json()
    )
    basis = read(package, "decision/basis.json")
    assert basis == {
        "violation_code": "water.ais_off", "legal_basis": LEGAL_BASIS["water.ais_off"],
        "penalty_basis": WATER_PENALTY_BASIS, "outcome": "review", "fine_cny": None,
        "enforceable": False, "reasoning": v.reasoning,
    }  # fmt: skip
    ais = read(package, "ais/evidence.json")
    assert isinstance(ais, dict)
    assert ais["report_ids"] == v.detection.report_ids and ais["mmsi"] is None
    assert ais["evidence"] == {"kind": "pass.no_ais", "checkpoint_id": v.site_id}
    assert ais["quantities"] == {"window_s": 120.0} and ais["hull_name"] == "湘岳阳货2002"
    vessels = read(package, "registry/vessels.json")
    assert isinstance(vessels, list) and len(vessels) == 1
    vessel = vessels[0]
    assert vessel["name"] == "湘岳阳货2002" and vessel["matched_by"] == ["vessel_name"]
    site = read(package, "registry/site.json")
    assert isinstance(site, dict)
    assert (site["kind"], site["id"], site["camera_id"]) == (
        "checkpoint", v.site_id, v.detection.device_id
    )  # fmt: skip
    receivers = read(package, "registry/receivers.json")
    assert isinstance(receivers, list)
    assert [r["id"] for r in receivers] == sorted(REG.checkpoint_index[v.site_id].receiver_ids)
    assert all(r["in_registry"] and r["expected_per_min"] > 0 for r in receivers)
    versions = read(package, "decision/versions.json")
    assert isinstance(versions, dict)
    assert versions["waterways_configuration_sha256"] == water_config_hash(REG)
    assert versions["rule"] == "water.review" and versions["software"].startswith("offsite")
    info = (package / "bag-info.txt").read_text()
    assert f"Case-Id: {case_id(v)}" in info and "Vessel: 湘岳阳货2002" in info
    assert "MMSI: none" in info and "Domain: water" in info


def test_an_identity_finding_names_the_channel_and_the_vessel_by_mmsi(
    tmp_path: Path, signer: Signer
) -> None:
    v = two_places()
    blobs = BlobStore(tmp_path / "blobs")
    package = build_water_package(v, REG, blobs, tmp_path / "ev", signer, AGENCY, created_at=T0)
    assert verify_package(package) == []
    assert not (package / "data" / "images").exists()  # no capture, no images
    site = read(package, "registry/site.json")
    assert isinstance(site, dict) and site["kind"] == "channel"
    assert site["max_speed_kn"] == REG.max_speed_kn
    vessels = read(package, "registry/vessels.json")
    assert isinstance(vessels, list) and len(vessels) == 1
    vessel = vessels[0]
    assert vessel["mmsi"] == A and "mmsi" in vessel["matched_by"]
    ais = read(package, "ais/evidence.json")
    assert isinstance(ais, dict) and ais["quantities"]["implied_speed_kn"] > 30
    assert ais["receiver_ids"] == ["RX-XJ-01", "RX-XJ-02"]
    heard = {r["id"]: r["heard_reports"] for r in read(package, "registry/receivers.json")}  # type: ignore[attr-defined]
    assert heard == {"RX-XJ-01": True, "RX-XJ-02": True}


def test_same_violation_same_bytes_and_a_rebuild_leaves_the_package_alone(
    tmp_path: Path, signer: Signer
) -> None:
    blobs = BlobStore(tmp_path / "blobs")
    v = dark_vessel(blobs)
    a = build_water_package(v, REG, blobs, tmp_path / "a", signer, AGENCY, created_at=T0)
    again = WaterViolation.model_validate_json(v.to_json())  # as the stage receives it
    b = build_water_package(again, REG, blobs, tmp_path / "b", signer, AGENCY, created_at=T0)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for f in files:
        assert (a / f).read_bytes() == (b / f).read_bytes(), f
    # built again at another time: found in place, custody log and all
    log = (a / "custody.jsonl").read_bytes()
    assert build_water_package(v, REG, blobs, tmp_path / "a", signer, AGENCY) == a
    assert (a / "custody.jsonl").read_bytes() == log


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("data/images/side.jpg", "payload file data/images/side.jpg: checksum mismatch"),
        ("data/ais/evidence.json", "payload file data/ais/evidence.json: checksum mismatch"),
        ("bag-info.txt", "tag file bag-info.txt: checksum mismatch"),
    ],
)
def test_a_tampered_file_fails_verification(
    tmp_path: Path, signer: Signer, name: str, problem: str
) -> None:
    blobs = BlobStore(tmp_path / "blobs")
    package = build_water_package(dark_vessel(blobs), REG, blobs, tmp_path / "ev", signer,
                                  AGENCY, created_at=T0)  # fmt: skip
    target = package / name
    data = bytearray(target.read_bytes())
    data[0] ^= 0x01
    target.write_bytes(bytes(data))
    assert problem in verify_package(package)


def test_a_waterway_package_replays_to_the_same_decision(tmp_path: Path, signer: Signer) -> None:
    """`offsite case replay` on a waterway case: the detection in the package, decided again,
    is review with the same legal basis; an edited basis is a difference, and no baseline
    decides a waterway case."""
    blobs = BlobStore(tmp_path / "blobs")
    package = build_water_package(two_places(), REG, blobs, tmp_path / "ev", signer, AGENCY,
                                  created_at=T0)  # fmt: skip
    result = replay_package(package)
    assert result.matches and result.differences == []
    assert result.recomputed["outcome"] == "review" and result.recomputed["fine_cny"] is None
    doc_path = package / "data" / "decision" / "violation.json"
    doc = json.loads(doc_path.read_bytes())
    doc["legal_basis"] = "edited"
    doc_path.write_text(json.dumps(doc, ensure_ascii=False))
    result = replay_package(package)
    assert not result.matches and result.differences[0].startswith("legal_basis: stored 'edited'")
    with pytest.raises(EvidenceError, match="no baseline"):
        replay_package(package, tmp_path / "any.yaml")


def test_a_missing_image_refuses_the_package(tmp_path: Path, signer: Signer) -> None:
    blobs = BlobStore(tmp_path / "blobs")
    v = dark_vessel(blobs)
    shutil.rmtree(tmp_path / "blobs")
    with pytest.raises(Exception, match="cannot be read"):
        build_water_package(v, REG, blobs, tmp_path / "ev", signer, AGENCY)
    assert not (tmp_path / "ev" / case_id(v)).exists()  # no half-built package left


async def test_the_evidence_stage_packages_water_violations(tmp_path: Path, signer: Signer) -> None:
    blobs = BlobStore(tmp_path / "blobs")
    out = tmp_path / "ev"
    stage = EvidenceStage(REGISTRY, blobs, signer, out, AGENCY, [], waterways=REG)
    violations = [dark_vessel(blobs), two_places()]
    batch = [Incoming(WATER_VIOLATIONS, 0, k, None, v.to_json()) for k, v in enumerate(violations)]
    batch.append(Incoming(WATER_VIOLATIONS, 0, 9, None, b"{not json"))
    result = await stage.process(batch)
    assert len(result.dead) == 1 and result.observed == []
    for v in violations:
        package = out / case_id(v)
        assert verify_package(package) == []
        # the violation as received, byte for byte
        assert (package / "data/decision/violation.json").read_bytes() == v.to_json()
