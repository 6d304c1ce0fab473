"""Evidence packages built from real pipeline output (simulated overloads through the detection
and rules stages in memory), checked with outside tools: LoC bagit, cryptography, RapidOCR."""

from __future__ import annotations

import ast
import asyncio
import base64
import datetime as dt
import hashlib
import itertools
import json
import os
import shutil
import threading
import tracemalloc
from pathlib import Path

import bagit
import cv2
import numpy as np
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

import evidence
from events import Violation
from evidence import (
    CustodyEvent,
    EvidenceError,
    Signer,
    append_custody,
    build_package,
    case_id,
    generate_key,
    load_keyring,
    render_composite,
    replay_package,
    verify_chain,
    verify_package,
)
from offsite.config import load_registry
from offsite.testing import violations_in_memory
from sim import SimulationConfig
from sinks.blobs import BlobStore
from sinks.casestore import case_id as store_case_id

ROOT = Path(__file__).resolve().parents[2]
REGISTRY = load_registry(ROOT / "configs" / "sites.yaml")
BASELINES = {"national": ROOT / "configs" / "baselines" / "national.yaml"}
AGENCY = "湖南省交通运输综合行政执法局"
TZ = dt.timezone(dt.timedelta(hours=8))
T0 = dt.datetime(2026, 11, 23, 9, 0, tzinfo=TZ)


class Run:
    """One simulated run: its blob store, violations, signing key and packages."""

    def __init__(self, root: Path, violations: list[Violation], blobs: BlobStore) -> None:
        self.root, self.violations, self.blobs = root, violations, blobs
        self.key_path = root / "keys" / "evidence.pem"
        self.key_id = generate_key(self.key_path)
        self.signer = Signer.load(self.key_path)
        self.packages = [self.build(v, root / "evidence") for v in violations]

    def build(self, v: Violation, out: Path) -> Path:
        return build_package(v, REGISTRY, self.blobs, out, self.signer, AGENCY, created_at=T0)


async def pipeline(root: Path, vehicles: int, seed: int) -> tuple[list[Violation], BlobStore]:
    blobs = BlobStore(root / "blobs")
    cfg = SimulationConfig(vehicles=vehicles, seed=seed, overload_share=1.0)
    return await violations_in_memory(REGISTRY, BASELINES, cfg, blobs.put), blobs


@pytest.fixture(scope="module")
async def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    root = tmp_path_factory.mktemp("evidence")
    violations, blobs = await pipeline(root, vehicles=12, seed=5)
    assert len(violations) >= 8
    assert {"fine", "warning", "review"} <= {v.outcome for v in violations}
    assert any(not v.detection.images for v in violations)  # a missed capture: no images
    return Run(root, violations, blobs)


@pytest.fixture
def package(run: Run, tmp_path: Path) -> Path:
    """A private copy of a fined case's package, free to tamper with."""
    i = next(i for i, v in enumerate(run.violations) if v.outcome == "fine" and v.plate)
    return Path(shutil.copytree(run.packages[i], tmp_path / run.packages[i].name))


def flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_public_face_holds_what_the_other_rooms_import() -> None:
    """STYLE.md: each package shows a small public face; the other rooms import from it."""
    used: set[str] = set()
    for folder in ("offsite", "console", "sinks", "rules", "bench", "tests"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ImportFrom) and node.module == "evidence":
                    used |= {a.name for a in node.names}
    assert used and used <= set(evidence.__all__), used - set(evidence.__all__)


def test_every_package_is_a_valid_bag_with_the_case_layout(run: Run) -> None:
    for v, path in zip(run.violations, run.packages, strict=True):
        assert path.name == case_id(v) == store_case_id(v)
        bagit.Bag(str(path)).validate()
        assert verify_package(path, trusted_keys={run.key_id}) == []
        data = path / "data"
        assert json.loads((data / "measurement/wim.json").read_bytes()) == v.detection.wim
        assert json.loads((data / "decision/violation.json").read_bytes()) == json.loads(
            v.to_json()
        )
        for ref in v.detection.images:
            image = (data / "images" / f"{ref.role}.jpg").read_bytes()
            assert hashlib.sha256(image).hexdigest() == ref.sha256
        assert (data / "images/composite.jpg").read_bytes()[:2] == b"\xff\xd8"
        assert (data / "captures/capture.json").exists() == (v.detection.capture is not None)
        notice = json.loads((data / "site/notice.json").read_bytes())
        assert notice["id"] == v.site_id
        local_day = v.detection.ts.astimezone(
            dt.timezone(dt.timedelta(hours=notice["timezone_offset_hours"]))
        ).date()
        for step in (
            "legal_review_on",
            "technical_review_on",
            "notice_on",
            "signed_on",
            "enforced_from",
        ):  # Art. 41, before the pass
            assert dt.date.fromisoformat(notice["publicity"][step]) <= local_day
        cert = json.loads((data / "device/certificate.json").read_bytes())
        assert cert["certificate"]["number"] == v.detection.certificate_number
        versions = json.loads((data / "decision/versions.json").read_bytes())
        assert (versions["rule"], versions["rule_version"]) == (v.rule, v.rule_version)
        assert versions["detector_version"] == v.detection.detector_version
        baseline = (data / "decision/baseline.yaml").read_bytes()
        assert hashlib.sha256(baseline).hexdigest() == v.baseline_hash
        info = bagit.Bag(str(path)).info
        assert info["Case-Id"] == path.name and info["Issuing-Agency"] == AGENCY
        assert info["Site"] == v.site_id and info["Pass-Time"] == v.ts.isoformat()
        assert info["Plate"] == (v.plate or "unread")
        assert info["Bagging-Date"] == v.ts.date().isoformat()
        assert info["Signing-Key-Id"] == run.key_id
        assert info["Bag-Software-Agent"].startswith("offsite ")


def test_signature_verifies_with_cryptography_alone(run: Run) -> None:
    for path in run.packages:
        key = serialization.load_pem_public_key((path / "public-key.pem").read_bytes())
        assert isinstance(key, Ed25519PublicKey)
        signature = base64.b64decode((path / "signature.ed25519").read_bytes())
        key.verify(signature, (path / "tagmanifest-sha256.txt").read_bytes())  # raises if bad
        raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        assert hashlib.sha256(raw).hexdigest()[:16] == run.key_id
        listed = {
            line.split()[1] for line in (path / "tagmanifest-sha256.txt").read_text().splitlines()
        }
        # the signature cannot cover itself; the custody log grows after signing
        assert listed == {"bagit.txt", "bag-info.txt", "manifest-sha256.txt", "public-key.pem"}


def test_private_key_stays_out_of_packages_and_is_private(run: Run) -> None:
    assert run.key_path.stat().st_mode & 0o777 == 0o600
    secret = run.key_path.read_bytes()
    body = b"".join(secret.splitlines()[1:-1])
    for path in run.packages:
        for f in path.rglob("*"):
            if f.is_file():
                assert b"PRIVATE KEY" not in f.read_bytes() and body not in f.read_bytes()
    assert run.key_id in repr(run.signer) and "PRIVATE" not in repr(run.signer)
    with pytest.raises(EvidenceError, match="exists"):
        generate_key(run.key_path)


@pytest.mark.parametrize(
    ("tamper", "problem"),
    [
        (lambda p: flip_byte(p / "data/images/plate.jpg", 1000),
         "payload file data/images/plate.jpg: checksum mismatch"),
        (lambda p: flip_byte(p / "data/decision/violation.json", 40),
         "payload file data/decision/violation.json: checksum mismatch"),
        (lambda p: flip_byte(p / "bag-info.txt", 0), "tag file bag-info.txt: checksum mismatch"),
        (lambda p: (p / "data/images/composite.jpg").unlink(),
         "payload file data/images/composite.jpg: missing"),
        (lambda p: (p / "data/notes.txt").write_text("x"),
         "payload file data/notes.txt: not in the manifest"),
    ],
)  # fmt: skip
def test_tampered_contents_are_found_and_named(package: Path, tamper, problem: str) -> None:
    assert verify_package(package) == []
    tamper(package)
    assert problem in verify_package(package)


def test_edited_custody_entry_is_found_and_named(package: Path, run: Run) -> None:
    append_custody(package, "viewed", "officer-007", run.signer, T0 + dt.timedelta(hours=1))
    append_custody(package, "confirmed", "officer-007", run.signer, T0 + dt.timedelta(hours=2))
    assert verify_package(package) == []
    log = package / "custody.jsonl"
    lines = log.read_text().splitlines()
    entry = json.loads(lines[1])
    entry["actor"] = "officer-999"
    lines[1] = json.dumps(entry, ensure_ascii=False)
    log.write_text("\n".join(lines) + "\n")
    assert verify_package(package) == ["custody entry 2: hash mismatch"]


def test_another_keys_signature_is_found(package: Path, run: Run, tmp_path: Path) -> None:
    generate_key(tmp_path / "other.pem")
    other = Signer.load(tmp_path / "other.pem")
    manifest = (package / "tagmanifest-sha256.txt").read_bytes()
    (package / "signature.ed25519").write_text(other.sign(manifest) + "\n")
    assert verify_package(package) == ["signature does not verify"]
    # swapping the public key too breaks the tag manifest, the key id and the custody chain
    (package / "public-key.pem").write_bytes(other.public_pem())
    problems = verify_package(package)
    assert "tag file public-key.pem: checksum mismatch" in problems
    assert any(p.startswith("Signing-Key-Id in bag-info.txt") for p in problems)
    assert "custody entry 1: signature does not verify" in problems
    assert "signature does not verify" not in problems


def test_resigned_package_passes_alone_but_not_against_trusted_keys(
    package: Path, run: Run, tmp_path: Path
) -> None:
    """A package consistently re-signed by someone else's key can only be caught by knowing
    which keys the agency uses."""
    shutil.rmtree(package)
    generate_key(tmp_path / "other.pem")
    other = Signer.load(tmp_path / "other.pem")
    forged = build_package(run.violations[0], REGISTRY, run.blobs, tmp_path / "f", other, AGENCY)
    assert verify_package(forged) == []
    assert verify_package(forged, trusted_keys={run.key_id}) == [
        f"signing key {other.key_id} is not trusted"
    ]


def test_custody_chain_grows_and_detects_removed_entries(package: Path, run: Run) -> None:
    events: tuple[CustodyEvent, ...] = ("viewed", "confirmed", "exported")
    for n, event in enumerate(events, start=1):
        append_custody(package, event, "officer-007", run.signer, T0 + dt.timedelta(hours=n))
    log = package / "custody.jsonl"
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(e["seq"], e["event"]) for e in entries] == [
        (1, "created"), (2, "viewed"), (3, "confirmed"), (4, "exported")
    ]  # fmt: skip
    anchor = hashlib.sha256((package / "tagmanifest-sha256.txt").read_bytes()).hexdigest()
    assert entries[0]["prev"] == anchor
    assert all(b["prev"] == a["hash"] for a, b in itertools.pairwise(entries))
    assert verify_chain(package, run.signer.public_key) == []
    lines = log.read_text().splitlines()
    log.write_text("\n".join([lines[0], *lines[2:]]) + "\n")
    problems = verify_chain(package, run.signer.public_key)
    assert "custody entry 2: prev does not match entry 1" in problems
    assert "custody entry 2: unexpected event 'confirmed'" not in problems


def test_concurrent_custody_appends_keep_the_chain(package: Path, run: Run) -> None:
    def view(i: int) -> None:
        append_custody(package, "viewed", f"officer-{i}", run.signer, T0 + dt.timedelta(hours=1))

    threads = [threading.Thread(target=view, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len((package / "custody.jsonl").read_text().splitlines()) == 17
    assert verify_package(package) == []


def test_building_is_deterministic_and_idempotent(run: Run, tmp_path: Path) -> None:
    v, first = run.violations[0], run.packages[0]
    again = run.build(v, tmp_path / "again")
    for name in ("manifest-sha256.txt", "bag-info.txt", "tagmanifest-sha256.txt",
                 "signature.ed25519", "custody.jsonl"):  # fmt: skip
        assert (again / name).read_bytes() == (first / name).read_bytes(), name
    log = (first / "custody.jsonl").read_bytes()
    assert run.build(v, first.parent) == first
    assert (first / "custody.jsonl").read_bytes() == log
    assert [p.name for p in first.parent.iterdir() if p.name.startswith(".")] == []


def test_a_re_decision_gets_a_package_of_its_own_beside_the_first(run: Run, tmp_path: Path) -> None:
    """Issue #11 item 4: the case keeps its identity, a signed package never changes, so the
    decision under a new version is packaged beside the first and each replays to its own."""
    v = next(v for v in run.violations if v.outcome == "fine")
    first = run.build(v, tmp_path)
    det = v.detection.model_copy(update={"detector_version": "9.9.9"})
    again = v.model_copy(update={"violation_id": "vio-redecided", "detection": det})
    second = run.build(again, tmp_path)
    assert second == tmp_path / f"{case_id(v)}@vio-redecided" and first == tmp_path / case_id(v)
    assert run.build(again, tmp_path) == second  # idempotent too
    for path, decided in ((first, v), (second, again)):
        assert verify_package(path) == []
        doc = json.loads((path / "data/decision/violation.json").read_bytes())
        assert doc["violation_id"] == decided.violation_id
        assert replay_package(path).matches


def test_an_invalid_existing_package_is_left_alone(package: Path, run: Run) -> None:
    v = next(v for v in run.violations if case_id(v) == package.name)
    flip_byte(package / "data/decision/violation.json", 10)
    with pytest.raises(EvidenceError, match="existing package is not valid"):
        run.build(v, package.parent)


def test_an_image_that_does_not_match_its_sha256_stops_the_build(run: Run, tmp_path: Path) -> None:
    v = next(v for v in run.violations if v.detection.images)
    ref = v.detection.images[0]
    blobs = BlobStore(tmp_path / "blobs")
    path = blobs.path(ref.uri)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not the image")
    with pytest.raises(EvidenceError, match="sha256 mismatch"):
        build_package(v, REGISTRY, blobs, tmp_path / "out", run.signer, AGENCY)
    with pytest.raises(EvidenceError, match="cannot be read"):
        build_package(
            v, REGISTRY, BlobStore(tmp_path / "none"), tmp_path / "out", run.signer, AGENCY
        )
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_a_violation_whose_baseline_is_unknown_is_not_packaged(run: Run, tmp_path: Path) -> None:
    v = run.violations[0].model_copy(update={"baseline_hash": "0" * 64})
    with pytest.raises(EvidenceError, match="is not among the baseline files"):
        run.build(v, tmp_path)


@pytest.fixture(scope="module")
def ocr():
    from rapidocr import RapidOCR

    return RapidOCR()


def read_text(ocr, jpeg: bytes) -> str:
    result = ocr(cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR))
    return "".join(result.txts or ()).replace("·", "").replace(" ", "")


def test_composite_shows_plate_and_weight_to_ocr(run: Run, ocr) -> None:
    v, path = next((v, p) for v, p in zip(run.violations, run.packages, strict=True) if v.plate)
    text = read_text(ocr, (path / "data/images/composite.jpg").read_bytes())
    assert v.plate is not None and v.plate in text
    assert str(v.measured_kg) in text and str(v.limit_kg) in text
    assert v.detection.certificate_number is not None
    assert "检定证书号" in text and "实测总质量" in text


def test_composite_without_images_has_a_labelled_placeholder(run: Run, ocr) -> None:
    v = run.violations[0]
    jpeg = render_composite(v, REGISTRY, {})
    assert "无图像" in read_text(ocr, jpeg)
    side = render_composite(
        v, REGISTRY, {"side": cv2.imencode(".jpg", np.zeros((90, 160, 3), np.uint8))[1].tobytes()}
    )
    assert side != jpeg


def test_composite_text_memory_stays_bounded_over_a_long_stream_of_cases() -> None:
    """Most caption values are new per case (time, weights, record id): a worker rendering a
    steady stream of cases must not keep a patch of each (bench/soak.py: worker memory grew
    with its input while 4,096 patches, ~260 MiB, were cached)."""
    from evidence.composite import BACKGROUND, _text

    def render(first: int, n: int) -> None:
        for i in range(first, first + n):
            _text(
                f"2026-12-07 08:{i % 60:02d}:{i // 60 % 60:02d} 记录编号 v-{i:012x}", 30, BACKGROUND
            )

    tracemalloc.start()
    try:
        render(0, 400)  # any cache is full by now
        warm, _ = tracemalloc.get_traced_memory()
        render(400, 800)
        grown = tracemalloc.get_traced_memory()[0] - warm
    finally:
        tracemalloc.stop()
    assert grown < 4 * 2**20, f"{grown / 2**20:.1f} MiB kept for 800 more cases' values"


def test_every_package_replays_to_its_decision(run: Run) -> None:
    for path in run.packages:
        result = replay_package(path)
        assert result.matches, result.differences
        assert result.stored == result.recomputed


def test_another_rule_version_is_reported_naming_both(package: Path) -> None:
    doc_path = package / "data/decision/violation.json"
    doc = json.loads(doc_path.read_bytes())
    stored_version, doc["rule_version"] = doc["rule_version"], "0.9"
    doc_path.write_text(json.dumps(doc, ensure_ascii=False))
    result = replay_package(package)
    assert not result.matches
    assert result.differences == [
        f"rule_version: decided under {doc['rule']} version 0.9, "
        f"replayed under {doc['rule']} version {stored_version}"
    ]


def test_replay_under_another_baseline_shows_what_it_would_decide(package: Path) -> None:
    result = replay_package(package, ROOT / "configs" / "baselines" / "example-round-up.yaml")
    assert not result.matches
    assert result.recomputed["rule"] == "example-round-up"
    assert any(d.startswith("rule: stored 'cn-national-overload'") for d in result.differences)


def test_custody_append_refuses_naive_time(package: Path, run: Run) -> None:
    with pytest.raises(EvidenceError, match="offset"):
        append_custody(package, "viewed", "x", run.signer, dt.datetime(2026, 11, 23, 9))
    assert os.path.getsize(package / "custody.jsonl") > 0


def test_repeated_roles_and_a_cameras_own_composite_keep_their_files(
    run: Run, tmp_path: Path
) -> None:
    v = next(v for v in run.violations if v.detection.images)
    plate = next(r for r in v.detection.images if r.role == "plate")
    images = [*v.detection.images, plate, plate.model_copy(update={"role": "composite"})]
    det = v.detection.model_copy(update={"images": images})
    path = run.build(v.model_copy(update={"detection": det}), tmp_path)
    names = sorted(p.name for p in (path / "data/images").iterdir())
    assert names == ["composite-2.jpg", "composite.jpg", "overview.jpg", "plate-2.jpg", "plate.jpg"]
    assert (path / "data/images/plate-2.jpg").read_bytes() == (
        path / "data/images/plate.jpg"
    ).read_bytes()
    assert verify_package(path) == []


def test_a_changed_baseline_file_is_a_mismatch_naming_both_versions(
    package: Path, tmp_path: Path
) -> None:
    national = (ROOT / "configs" / "baselines" / "national.yaml").read_text(encoding="utf-8")
    changed = tmp_path / "national-v2.yaml"
    changed.write_text(national.replace("version: 1\n", "version: 2\n", 1), encoding="utf-8")
    result = replay_package(package, changed)
    assert not result.matches
    assert any("version 1" in d and "version 2" in d for d in result.differences), (
        result.differences
    )


def test_keys_create_publishes_the_key_and_verify_trusts_the_keyring_only(
    run: Run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from offsite.cli import _verify, create_key

    package = run.packages[0]
    published = tmp_path / "keyring.yaml"
    load_keyring(published).add(published, run.signer.public_key, "2026-12-02")
    assert _verify(package, None, published) == 0
    others = tmp_path / "others.yaml"
    kid = create_key(tmp_path / "other.pem", others)
    assert list(load_keyring(others).keys) == [kid]
    assert _verify(package, None, others) == 1
    assert "which is not in the agency's keyring" in capsys.readouterr().out
    assert _verify(package, None, tmp_path / "absent.yaml") == 0
    assert "self-consistency only" in capsys.readouterr().out


async def test_a_package_half_written_at_a_crash_is_reported_then_removed(
    run: Run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from evidence import EvidenceStage
    from evidence.bag import _WRITER, STALE_S, remove_unfinished
    from offsite.cli import _verify

    folder = Path(shutil.copytree(run.packages[0].parent, tmp_path / "evidence"))
    host = _WRITER.rsplit("-", 2)[0]
    gone = await asyncio.create_subprocess_exec("true")
    await gone.wait()  # a writer that no longer runs, as after a kill -9
    start = Path(f"/proc/{os.getppid()}/stat").read_text().rpartition(")")[2].split()[19]

    def half_written(name: str) -> Path:
        tmp = Path(shutil.copytree(run.packages[0], folder / name))
        (tmp / "signature.ed25519").unlink(missing_ok=True)
        (tmp / "tagmanifest-sha256.txt").unlink()
        return tmp

    crashed = half_written(f".{run.packages[0].name}.{host}-{gone.pid}-4242.k2j4x_q9")
    # a process that runs now but is not the writer: a pid reused (a container's pid 1)
    reused = half_written(f".{run.packages[4].name}.{host}-{os.getppid()}-1.u7y6t5r4")
    writing = half_written(f".{run.packages[1].name}.{host}-{os.getppid()}-{start}.a8c1mzz0")
    ours = half_written(f".{run.packages[5].name}.{_WRITER}.zz9y8x7w")  # an earlier attempt's
    elsewhere = half_written(f".{run.packages[2].name}.worker2-4711-99.p0q9w8e7")
    # the folder's packages are intact; the leftovers are named, not counted as broken
    assert _verify(folder, None, tmp_path / "absent.yaml") == 0
    out = capsys.readouterr().out
    assert all(f"{t}: unfinished write" in out for t in (crashed, reused, writing, elsewhere))
    assert "BROKEN" not in out and f"{run.packages[3].name}: intact" in out

    # the evidence stage starts: the crashed writers' folders go; a write in progress on this
    # host (its process alive, this one included) and a recent one of another host stay
    stage = EvidenceStage(REGISTRY, run.blobs, run.signer, folder, AGENCY, [])
    await stage.start()
    assert not crashed.exists() and not reused.exists()
    assert writing.exists() and ours.exists() and elsewhere.exists()
    # another host's folder, an hour after it was last written, is a leftover too
    later = elsewhere.stat().st_mtime + STALE_S + 1
    assert remove_unfinished(folder, now=later) == [elsewhere]
    assert writing.exists()
