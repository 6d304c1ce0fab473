"""The electronic case file (电子案卷): one folder per closed case in the order of a paper file,
正卷 then 副卷, each document a PDF, the case's evidence package inside, an 8-digit archive
number (year + serial) and a manifest signed with the agency's evidence key; and its offline
check, like ``offsite evidence verify``. What goes in, in which order, is :data:`VOLUMES`; the
console renders the documents (console/casefile.py). Order after the common 交通运输行政执法
案卷 practice (paperwork review §3): 正卷 holds what the party sees and the evidence, 副卷 the
agency's internal records."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from evidence import EvidenceError, Keyring, load_public_key, verify_package
from evidence.signing import canonical_json, key_id, verify

MANIFEST, SIGNATURE, PUBLIC_KEY = "manifest.json", "manifest.ed25519", "public-key.pem"
EVIDENCE = "证据包"  # the evidence package's folder inside 正卷

# (kind, volume, title) in the order of the file; a kind absent from a case is left out
VOLUMES: tuple[tuple[str, str, str], ...] = (
    ("contents", "正卷", "卷内目录"),
    ("filing", "正卷", "立案登记表"),
    ("decision", "正卷", "行政处罚决定书"),
    ("decision_receipt", "正卷", "行政处罚决定书送达回证"),
    ("notice", "正卷", "违法行为通知书"),
    ("notice_receipt", "正卷", "违法行为通知书送达回证"),
    ("statements", "正卷", "陈述申辩材料"),
    ("hearing", "正卷", "听证笔录"),
    ("evidence", "正卷", "证据材料（称重记录、图像、设备检定证书、监测点登记信息）"),
    ("review_log", "副卷", "审核记录"),
    ("legal_review", "副卷", "法制审核意见"),
    ("discussion", "副卷", "集体讨论记录"),
    ("closing", "副卷", "结案报告"),
    ("note", "副卷", "备考表"),
)
KINDS = {k: (volume, title) for k, volume, title in VOLUMES}


def archive_number(year: int, serial: int) -> str:
    """The 8-digit archive number (档案号): the year the case closed and its serial that year."""
    if not (1 <= serial <= 9999 and 1000 <= year <= 9999):
        raise ValueError(f"no archive number for year {year}, serial {serial}")
    return f"{year:04d}{serial:04d}"


class Signs(Protocol):
    """What signs a manifest: ``evidence.Signer``, the evidence packages' own key."""

    key_id: str

    def sign(self, data: bytes) -> str: ...

    def public_pem(self) -> bytes: ...


@dataclass(frozen=True)
class Document:
    kind: str  # a key of KINDS
    pdf: bytes


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _files(root: Path) -> dict[str, str]:
    """Every file under ``root`` but the signature's own, by relative path → SHA-256."""
    own = {MANIFEST, SIGNATURE, PUBLIC_KEY}
    return {p.relative_to(root).as_posix(): _sha(p.read_bytes())
            for p in sorted(root.rglob("*")) if p.is_file() and p.relative_to(root).as_posix()
            not in own}  # fmt: skip


def write_casefile(
    out: Path,
    *,
    archive_no: str,
    case_id: str,
    agency: str,
    closed_on: dt.date,
    documents: list[Document],
    package: Path | None,
    signer: Signs,
    facts: dict[str, object] | None = None,
) -> Path:
    """Write the file of one case under ``out`` (``<archive_no>-<case_id>/`` and its ``.zip``);
    return the folder. ``facts``: the dates and findings the 评查 checks (cases.review), signed
    with the rest. The same inputs give the same bytes (documents in :data:`VOLUMES`
    order, the zip's times the closing day). Blocking: call it in a thread."""
    folder = out / f"{archive_no}-{case_id}"
    if folder.exists():
        shutil.rmtree(folder)
    by_kind = {d.kind: d for d in documents}
    unknown = set(by_kind) - set(KINDS)
    if unknown:
        raise ValueError(f"not a document of the case file: {', '.join(sorted(unknown))}")
    entries = []
    for n, (kind, volume, title) in enumerate(VOLUMES, start=1):
        if kind == "evidence":
            if package is None or not package.is_dir():
                continue
            rel = f"{volume}/{n:02d}-{EVIDENCE}"
            shutil.copytree(package, folder / rel)
        elif kind in by_kind:
            rel = f"{volume}/{n:02d}-{title}.pdf"
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_bytes(by_kind[kind].pdf)
        else:
            continue
        entries.append({"seq": n, "kind": kind, "volume": volume, "title": title, "path": rel})
    manifest = {
        "archive_no": archive_no, "case_id": case_id, "agency": agency,
        "closed_on": closed_on.isoformat(), "documents": entries, "files": _files(folder),
        "key_id": signer.key_id, "facts": facts or {},
    }  # fmt: skip
    body = canonical_json(manifest)
    (folder / MANIFEST).write_bytes(body)
    (folder / SIGNATURE).write_text(signer.sign(body) + "\n", encoding="ascii")
    (folder / PUBLIC_KEY).write_bytes(signer.public_pem())
    _zip(folder, closed_on)
    return folder


def _zip(folder: Path, day: dt.date) -> Path:
    target = folder.with_suffix(".zip")
    stamp = (day.year, day.month, day.day, 0, 0, 0)
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as z:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                info = zipfile.ZipInfo(f"{folder.name}/{p.relative_to(folder).as_posix()}", stamp)
                info.compress_type = zipfile.ZIP_DEFLATED
                z.writestr(info, p.read_bytes())
    return target


def read_manifest(folder: Path) -> dict[str, object]:
    try:
        data = json.loads((folder / MANIFEST).read_bytes())
    except (OSError, ValueError) as exc:
        raise EvidenceError(f"{folder}: no readable {MANIFEST}: {exc}") from exc
    if not isinstance(data, dict):
        raise EvidenceError(f"{folder}: {MANIFEST} is not an object")
    return data


def verify_casefile(folder: Path, keyring: Keyring | None = None) -> list[str]:
    """Every problem with the case file at ``folder``, each naming what is broken; empty when
    intact: the manifest's signature, its key (in the agency's ``keyring`` when given), every
    file's SHA-256, no file missing or added, and the evidence package inside. Blocking."""
    if not folder.is_dir():
        return [f"{folder}: no such case file"]
    try:
        manifest = read_manifest(folder)
        body = (folder / MANIFEST).read_bytes()
        key = load_public_key((folder / PUBLIC_KEY).read_bytes())
        signature = (folder / SIGNATURE).read_bytes().strip()
    except (OSError, EvidenceError) as exc:
        return [f"manifest cannot be checked: {exc}"]
    problems = []
    if not verify(key, body, signature):
        problems.append("the manifest's signature does not verify")
    if manifest.get("key_id") != key_id(key):
        problems.append(f"key_id {manifest.get('key_id')} is not the key of {PUBLIC_KEY}")
    if keyring is not None and not keyring.trusts(key):
        problems.append(f"signed by key {key_id(key)}, which is not in the agency's keyring")
    listed = manifest.get("files")
    listed = listed if isinstance(listed, dict) else {}
    found = _files(folder)
    for rel in sorted(set(listed) | set(found)):
        if rel not in found:
            problems.append(f"{rel}: missing")
        elif rel not in listed:
            problems.append(f"{rel}: not in the manifest")
        elif found[rel] != listed[rel]:
            problems.append(f"{rel}: checksum mismatch")
    for doc in manifest.get("documents") or []:  # type: ignore[attr-defined]
        if isinstance(doc, dict) and doc.get("kind") == "evidence":
            package = folder / str(doc.get("path"))
            problems += [f"{doc.get('path')}: {p}" for p in
                         verify_package(package, keyring=keyring)]  # fmt: skip
    return problems
