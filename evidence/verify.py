"""Checking a package: BagIt manifests, the signature over the tag manifest, the key id, custody.

What an outside party can do with the LoC ``bagit`` tool and any Ed25519 implementation, and
nothing more: the package carries its own public key, so it proves who signed it only against
keys the agency published: ``keyring`` (``configs/keyring.yaml``, what ``offsite evidence
verify`` trusts by default) or ``trusted_keys`` (key ids). ``custody_head``: the custody log's
length and last hash as the case store recorded them, which catches a log cut short.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any

import bagit
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from .custody import TAG_MANIFEST, verify_chain
from .errors import EvidenceError
from .signing import Keyring, key_id, load_public_key, verify

PUBLIC_KEY = "public-key.pem"
SIGNATURE = "signature.ed25519"
SIGNED_TAG_FILES = ("bag-info.txt", "bagit.txt", "manifest-sha256.txt", PUBLIC_KEY)


def _kind(rel: str) -> str:
    return "payload" if rel.startswith("data/") else "tag"


def _detail(d: Any) -> str:
    if isinstance(d, bagit.ChecksumMismatch):
        return f"{_kind(d.path)} file {d.path}: checksum mismatch"
    if isinstance(d, bagit.FileMissing):
        return f"{_kind(d.path)} file {d.path}: missing"
    if isinstance(d, bagit.UnexpectedFile):
        return f"{_kind(d.path)} file {d.path}: not in the manifest"
    return f"bag: {d}"


def _bag_problems(path: Path) -> tuple[list[str], dict[str, Any]]:
    """Problems found by the LoC validator, and bag-info.txt as it parsed it."""
    try:
        bag = bagit.Bag(str(path))
    except bagit.BagError as exc:
        return [f"not a BagIt bag: {exc}"], {}
    try:
        bag.validate()
    except bagit.BagValidationError as exc:
        if exc.details:
            return [_detail(d) for d in exc.details], bag.info
        # a structural or Payload-Oxum failure stops bagit before it names the files
        missing, extra = bag.compare_manifests_with_fs()
        named = [_detail(bagit.FileMissing(p)) for p in sorted(missing)]
        named += [_detail(bagit.UnexpectedFile(p)) for p in sorted(extra)]
        return [f"bag: {exc.message}", *named], bag.info
    except bagit.BagError as exc:
        return [f"bag: {exc}"], bag.info
    return [], bag.info


def _signature_problems(
    path: Path,
    info: dict[str, Any],
    trusted_keys: Collection[str] | None,
    keyring: Keyring | None = None,
) -> tuple[list[str], Ed25519PublicKey | None]:
    try:
        key = load_public_key((path / PUBLIC_KEY).read_bytes())
    except OSError:
        return [f"tag file {PUBLIC_KEY}: missing"], None
    except EvidenceError as exc:
        return [f"tag file {PUBLIC_KEY}: {exc}"], None
    problems = []
    try:
        manifest = (path / TAG_MANIFEST).read_bytes()
        signature = (path / SIGNATURE).read_bytes().strip()
    except OSError as exc:
        return [f"signature cannot be checked: {exc.filename} missing"], key
    if not verify(key, manifest, signature):
        problems.append("signature does not verify")
    listed = {
        line.split(maxsplit=1)[-1] for line in manifest.decode("utf-8", "replace").splitlines()
    }
    problems += [f"tag manifest does not cover {f}" for f in SIGNED_TAG_FILES if f not in listed]
    kid, stated = key_id(key), info.get("Signing-Key-Id")
    if stated != kid:
        problems.append(
            f"Signing-Key-Id in bag-info.txt ({stated}) is not the key of {PUBLIC_KEY} ({kid})"
        )
    if trusted_keys is not None and kid not in trusted_keys:
        problems.append(f"signing key {kid} is not trusted")
    if keyring is not None and not keyring.trusts(key):
        problems.append(f"signed by key {kid}, which is not in the agency's keyring")
    return problems, key


def verify_package(
    path: Path,
    *,
    trusted_keys: Collection[str] | None = None,
    keyring: Keyring | None = None,
    custody_head: tuple[int, str | None] | None = None,
) -> list[str]:
    """Every problem with the package at ``path``, each naming what is broken; empty when
    intact. ``trusted_keys``: key ids that may have signed it; ``keyring``: the agency's
    published keys. With neither, any key that signed it consistently passes: the package is
    self-consistent, which says nothing of who made it. ``custody_head``: see
    :func:`evidence.custody.verify_chain`. Blocking (file hashing): call it through
    ``asyncio.to_thread`` from async code."""
    path = Path(path)
    if not path.is_dir():
        return [f"{path}: no such package"]
    problems, info = _bag_problems(path)
    sig_problems, key = _signature_problems(path, info, trusted_keys, keyring)
    problems += sig_problems
    if key is not None:
        problems += verify_chain(path, key, custody_head)
    return problems
