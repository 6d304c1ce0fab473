"""Building the evidence package of one case: a signed BagIt bag (RFC 8493).

Layout of ``<out_dir>/<case_id>/``::

    bagit.txt  bag-info.txt  manifest-sha256.txt  public-key.pem   listed in the tag manifest
    tagmanifest-sha256.txt                                          signed
    signature.ed25519                                               the signature (not listed:
                                                                    it cannot cover itself)
    custody.jsonl                                                   grows after signing; chained
    data/measurement/wim.json  data/captures/capture.json  data/images/<role>.jpg
    data/images/composite.jpg  data/device/certificate.json  data/site/notice.json
    data/decision/violation.json  data/decision/versions.json  data/decision/baseline.yaml

Every byte above the custody log is a function of the violation, the registry, the baseline
file, the images and the key: building twice gives identical files (Ed25519 signatures are
deterministic). ``baseline.yaml`` is the discretion baseline file that decided, byte for byte
(its SHA-256 is the violation's ``baseline_hash``), so the decision can be replayed years later.
A waterway case's payload is evidence.water_bag's; the bag around it (:func:`write_bag`) is
this one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

from events import ImageRef, Registry, Violation
from events import case_id as pass_case_id
from events.water import WaterViolation
from rules.national import NATIONAL_FILE

from . import custody
from .composite import render_composite
from .errors import EvidenceError
from .signing import Signer, canonical_json
from .verify import PUBLIC_KEY, SIGNATURE, TAG_MANIFEST, verify_package

BAGIT_TXT = b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"


class BlobSource(Protocol):
    """Where images are read from (``sinks.blobs.BlobStore`` is one)."""

    def path(self, uri: str) -> Path: ...


def case_id(violation: Violation | WaterViolation) -> str:
    """The case id of a violation's pass (road or waterway); equal to
    ``sinks.casestore.case_id``."""
    v = violation
    return pass_case_id(v.site_id, v.detection.device_id, v.record_id, v.violation_code)


def config_hash(registry: Registry) -> str:
    """SHA-256 of the registry's canonical JSON: which sites and devices were configured."""
    return hashlib.sha256(canonical_json(registry.model_dump(mode="json"))).hexdigest()


@lru_cache(maxsize=1)
def software_version() -> str:
    try:
        return f"offsite {metadata.version('offsite')}"
    except metadata.PackageNotFoundError:
        return "offsite (not installed)"


def _json(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, indent=2).encode() + b"\n"


def _images(violation: Violation, blobs: BlobSource, cid: str) -> dict[str, bytes]:
    """The capture's images by file name, read from the blob store and checked."""
    return image_files(violation.detection.images, blobs, cid)


def image_files(refs: Sequence[ImageRef], blobs: BlobSource, cid: str) -> dict[str, bytes]:
    """Images by file name (``<role>.jpg``), read from the blob store and checked against
    their SHA-256."""
    out: dict[str, bytes] = {}
    for ref in refs:
        try:
            data = blobs.path(ref.uri).read_bytes()
        except (OSError, ValueError) as exc:
            raise EvidenceError(f"image {ref.role} {ref.uri} cannot be read: {exc}", cid) from exc
        if hashlib.sha256(data).hexdigest() != ref.sha256:
            raise EvidenceError(f"image {ref.role} {ref.uri}: sha256 mismatch", cid)
        name, n = f"{ref.role}.jpg", 1
        # a second image of a role, or a camera's own composite, gets a numbered name
        while name in out or name == "composite.jpg":
            n += 1
            name = f"{ref.role}-{n}.jpg"
        out[name] = data
    return out


def baseline_file(violation: Violation, files: Iterable[Path] = ()) -> bytes:
    """The bytes of the baseline file that decided ``violation`` (matched by its SHA-256 among
    ``files`` and the national baseline)."""
    for path in (*files, NATIONAL_FILE):
        try:
            data = path.read_bytes()
        except OSError:
            continue
        if hashlib.sha256(data).hexdigest() == violation.baseline_hash:
            return data
    raise EvidenceError(
        f"the baseline that decided ({violation.rule} {violation.rule_version}, sha256 "
        f"{violation.baseline_hash[:12]}…) is not among the baseline files given",
        case_id(violation),
    )


def payload(
    violation: Violation,
    registry: Registry,
    blobs: BlobSource,
    baseline: bytes,
    *,
    document: bytes | None = None,
) -> dict[str, bytes]:
    """The files under ``data/`` (relative path → bytes). Blocking: decodes and encodes JPEGs."""
    cid = case_id(violation)
    det = violation.detection
    images = _images(violation, blobs, cid)
    by_role = {name.removesuffix(".jpg"): data for name, data in images.items()}
    site = registry.site(violation.site_id)
    device = registry.device(det.device_id)
    cert = device.certificate if device else None
    day = (site.local(violation.ts) if site else violation.ts).date()  # the site's local date
    files = {
        "measurement/wim.json": _json(det.wim),
        "device/certificate.json": _json({
            "device_id": det.device_id,
            "in_registry": device is not None,
            "type": device.type if device else None,
            "accuracy_class": device.accuracy_class if device else None,
            "certificate": cert.model_dump(mode="json") if cert else None,
            "registry_entry": device.model_dump(mode="json") if device else None,
            "valid_on_pass_date": cert.valid_on(day) if cert else False,
            "as_used_by_detection": {
                "accuracy_class": det.accuracy_class,
                "certificate_number": det.certificate_number,
            },
        }),
        "site/notice.json": _json(
            {"in_registry": True, **site.model_dump(mode="json")} if site
            else {"in_registry": False, "id": violation.site_id}
        ),
        "decision/violation.json": document if document is not None else violation.to_json(),
        "decision/baseline.yaml": baseline,
        "decision/versions.json": _json({
            "software": software_version(),
            "detector": det.detector,
            "detector_version": det.detector_version,
            "rule": violation.rule,
            "rule_version": violation.rule_version,
            "baseline_sha256": violation.baseline_hash,
            "configuration_sha256": config_hash(registry),
        }),
        "images/composite.jpg": render_composite(violation, registry, by_role),
    }  # fmt: skip
    if det.capture is not None:
        files["captures/capture.json"] = _json(det.capture)
    files.update({f"images/{name}": data for name, data in images.items()})
    return dict(sorted(files.items()))


def _decided(package: Path) -> str | None:
    """The violation id a package's decision is about."""
    doc = json.loads((package / "data" / "decision" / "violation.json").read_bytes())
    return doc.get("violation_id") if isinstance(doc, dict) else None


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _manifest(entries: dict[str, bytes]) -> bytes:
    lines = [f"{hashlib.sha256(d).hexdigest()}  {name}\n" for name, d in sorted(entries.items())]
    return "".join(lines).encode()


def bag_info(violation: Violation, signer: Signer, agency: str, oxum: str) -> bytes:
    """bag-info.txt: every value from the violation, so a rebuild gives the same bytes."""
    tags = {
        "Source-Organization": agency,
        "Issuing-Agency": agency,
        "Case-Id": case_id(violation),
        "Violation-Id": violation.violation_id,
        "Site": violation.site_id,
        "Pass-Time": violation.ts.isoformat(),
        "Plate": violation.plate or "unread",
        "Signing-Key-Id": signer.key_id,
        # the day of the pass, not of the build, so that a rebuild is byte-identical
        "Bagging-Date": violation.ts.date().isoformat(),
        "Bag-Software-Agent": software_version(),
        "Payload-Oxum": oxum,
    }
    return tag_lines(tags)


def tag_lines(tags: Mapping[str, object]) -> bytes:
    """bag-info.txt's bytes: one ``Label: value`` line each, whitespace folded."""
    return "".join(f"{k}: {' '.join(str(v).split())}\n" for k, v in tags.items()).encode()


def build_package(
    violation: Violation,
    registry: Registry,
    blobs: BlobSource,
    out_dir: Path,
    signer: Signer,
    agency: str,
    *,
    baseline_files: Iterable[Path] = (),
    document: bytes | None = None,
    created_at: dt.datetime | None = None,
    actor: str = "offsite",
) -> Path:
    """Build, sign and return ``out_dir/<case_id>/``, with a ``created`` custody entry.

    Idempotent: a valid package already there is returned untouched (with its custody log);
    an invalid one raises :class:`EvidenceError` and is left for inspection, never overwritten.
    The bag is assembled in a temporary sibling directory and renamed into place, so a crash
    leaves no half-built package. ``baseline_files``: the configured baseline files, one of
    which (or the national one) decided the violation. ``document``: the violation JSON as
    received (default: it is serialised). Blocking (JPEG, hashing, signing, fsync): call it
    through ``asyncio.to_thread`` from async code.
    """
    cid = case_id(violation)
    final = destination(out_dir, cid, violation.violation_id)
    if final.exists():
        return final
    baseline = baseline_file(violation, baseline_files)
    files = payload(violation, registry, blobs, baseline, document=document)
    return write_bag(
        final, files, lambda oxum: bag_info(violation, signer, agency, oxum), signer,
        created_at=created_at, actor=actor,
    )  # fmt: skip


def destination(out_dir: Path, cid: str, violation_id: str) -> Path:
    """Where the package of decision ``violation_id`` on case ``cid`` goes: ``out_dir/<cid>``,
    or beside it for a re-decision. A path that exists holds that decision's valid package;
    an invalid package found there raises :class:`EvidenceError` and is left for inspection."""
    final = out_dir / cid
    if final.exists():
        problems = verify_package(final)
        if problems:
            raise EvidenceError(f"existing package is not valid, left as is: {problems[0]}", cid)
        if _decided(final) == violation_id:
            return final
        # a re-decision of the case (another detector or baseline version): a signed package
        # never changes, so the new decision gets a package of its own beside the first
        final = out_dir / f"{cid}@{violation_id}"
    return final


def write_bag(
    final: Path,
    files: dict[str, bytes],
    info: Callable[[str], bytes],
    signer: Signer,
    *,
    created_at: dt.datetime | None = None,
    actor: str = "offsite",
) -> Path:
    """Write ``files`` (the payload under ``data/``) as a signed bag at ``final`` with a
    ``created`` custody entry; ``info`` makes bag-info.txt from the Payload-Oxum. Road and
    waterway packages share it, so ``offsite evidence verify`` reads both alike."""
    out_dir, cid = final.parent, final.name.split("@", 1)[0]
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{cid}.{_WRITER}.", dir=out_dir))
    try:
        for name, data in files.items():
            _write(tmp / "data" / name, data)
        oxum = f"{sum(len(d) for d in files.values())}.{len(files)}"
        # tag files in dependency order: the tag manifest hashes bag-info.txt and the public
        # key, and the signature is over the tag manifest's bytes
        tags = {
            "bagit.txt": BAGIT_TXT,
            "manifest-sha256.txt": _manifest({f"data/{n}": d for n, d in files.items()}),
            "bag-info.txt": info(oxum),
            PUBLIC_KEY: signer.public_pem(),
        }
        for name, data in tags.items():
            _write(tmp / name, data)
        tag_manifest = _manifest(tags)
        _write(tmp / TAG_MANIFEST, tag_manifest)
        _write(tmp / SIGNATURE, signer.sign(tag_manifest).encode() + b"\n")
        when = created_at or dt.datetime.now(dt.UTC)
        custody.append(tmp, "created", actor, signer, when, software_version())
        tmp.chmod(0o750)  # mkdtemp makes it 0700; packages hold personal data (plates)
        try:
            tmp.rename(final)
        except OSError:
            if not final.exists():
                raise
            # another builder of the same case won the race; its package stands
            shutil.rmtree(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _fsync_dir(out_dir)
    return final


def _started(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot), or None if it does not run:
    with the pid it names one process, even where pids are reused (a container's pid 1)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()
    return None if fields[0] == "Z" else fields[19]


# who writes a package's temporary folder (.<case id>.<host>-<pid>-<start>.<random>): a leftover
# of a writer that is gone can be told from a write in progress on the same evidence folder
_WRITER = f"{socket.gethostname().split('.')[0]}-{os.getpid()}-{_started(os.getpid())}"
STALE_S = 3600  # a temporary folder of another host older than this is a leftover too


def unfinished(out_dir: Path) -> list[Path]:
    """The temporary folders of package writes under ``out_dir`` (hidden, never a package):
    written in progress, or left by a writer that crashed."""
    if not out_dir.is_dir():
        return []
    return sorted(p for p in out_dir.iterdir() if p.name.startswith(".") and p.is_dir())


def _folder_now(folder: Path) -> float:
    """Now, as the file system under ``folder`` stamps a file written now."""
    with tempfile.NamedTemporaryFile(dir=folder) as probe:
        return os.fstat(probe.fileno()).st_mtime


def remove_unfinished(out_dir: Path, now: float | None = None) -> list[Path]:
    """Remove what crashed writes left under ``out_dir`` (their violations were not committed,
    so they are read again and their packages written whole). A write in progress is left
    alone: on this host, one whose process runs (this one included: a stage started again in
    the same process may have a write of the last attempt still finishing in its thread); on
    another host, one newer than ``STALE_S`` by the folder's own clock (a file written now: the
    file system's times, not this process's clock, which a test may have moved). Returns what
    was removed."""
    host, leftovers = _WRITER.rsplit("-", 2)[0], unfinished(out_dir)
    if now is None:
        now = _folder_now(out_dir) if leftovers else 0.0
    removed = []
    for tmp in leftovers:
        writer = tmp.name.rsplit(".", 2)[-2] if tmp.name.count(".") >= 3 else ""
        w_host, w_pid, w_start = [*writer.rsplit("-", 2), "", "", ""][:3]
        if w_host == host and w_pid.isdigit():
            gone = _started(int(w_pid)) != w_start
        else:
            gone = now - tmp.stat().st_mtime > STALE_S
        if gone:
            shutil.rmtree(tmp, ignore_errors=True)
            removed.append(tmp)
    return removed


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
