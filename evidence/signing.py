"""Ed25519 signing of evidence packages and custody entries (``cryptography``).

The private key lives in one PEM file (mode 0600) outside every package; a package carries only
the public key, its key id and signatures. Ed25519 signatures are deterministic, so signing the
same bytes twice gives the same signature.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .errors import EvidenceError


def canonical_json(obj: Any) -> bytes:
    """The one byte form of a JSON value that gets hashed or signed: sorted keys, no spaces."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def key_id(public_key: Ed25519PublicKey) -> str:
    """First 16 hex digits of SHA-256 over the raw 32-byte public key."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_pem(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError as exc:
        raise EvidenceError(f"not a PEM public key: {exc}") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise EvidenceError("public key is not Ed25519")
    return key


def verify(public_key: Ed25519PublicKey, data: bytes, signature_b64: str | bytes) -> bool:
    """True if ``signature_b64`` (base64) is ``public_key``'s signature over ``data``."""
    try:
        public_key.verify(base64.b64decode(signature_b64, validate=True), data)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def generate_key(path: Path) -> str:
    """Write a new Ed25519 private key as PEM at ``path`` (mode 0600) and return its key id.
    Refuses to overwrite an existing key: packages signed with it would lose their signer."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise EvidenceError(f"signing key {path} exists; not overwritten") from exc
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    return key_id(key.public_key())


class Signer:
    """Signs with one Ed25519 private key. Its repr shows the key id only."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        self.public_key = private_key.public_key()
        self.key_id = key_id(self.public_key)

    @classmethod
    def load(cls, path: Path) -> Signer:
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (OSError, ValueError, TypeError) as exc:
            # the exception text never carries key material, only what went wrong
            raise EvidenceError(f"cannot load signing key {path}: {exc}") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise EvidenceError(f"signing key {path} is not Ed25519")
        return cls(key)

    def sign(self, data: bytes) -> str:
        """The base64 signature over ``data``."""
        return base64.b64encode(self._key.sign(data)).decode("ascii")

    def public_pem(self) -> bytes:
        return public_pem(self.public_key)

    def __repr__(self) -> str:
        return f"Signer(key_id={self.key_id!r})"


KEYRING_HEADER = """\
# The agency's published evidence-signing keys (公示): `offsite evidence verify` trusts a package
# only when it is signed by one of these. Written by `offsite keys create`; publish the key ids
# (`offsite keys list`) so that anyone can check a package against them. A key that signed
# packages stays listed after it is retired: those packages must go on verifying.
"""


class Keyring:
    """The public keys an agency published, by key id (a YAML file under ``configs/``)."""

    def __init__(self, keys: dict[str, Ed25519PublicKey], created: dict[str, str] | None = None):
        self.keys, self.created = keys, created or {}

    @classmethod
    def load(cls, path: Path) -> Keyring:
        import yaml

        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except OSError as exc:
            raise EvidenceError(f"cannot read the keyring {path}: {exc.strerror}") from exc
        except yaml.YAMLError as exc:
            raise EvidenceError(f"keyring {path} is not valid YAML: {exc}") from exc
        keys, created = {}, {}
        for n, entry in enumerate(data.get("keys") or [], start=1):
            try:
                key = load_public_key(str(entry["public_key"]).encode())
                stated = str(entry["key_id"])
            except (KeyError, TypeError, EvidenceError) as exc:
                raise EvidenceError(f"keyring {path}: key {n} is not readable: {exc}") from exc
            if key_id(key) != stated:
                raise EvidenceError(
                    f"keyring {path}: key {n} states key id {stated}, its key is {key_id(key)}"
                )
            keys[stated], created[stated] = key, str(entry.get("created", ""))
        return cls(keys, created)

    def trusts(self, public_key: Ed25519PublicKey) -> bool:
        """Whether this exact key is published (the whole key, not only its 64-bit id)."""
        known = self.keys.get(key_id(public_key))
        raw = serialization.Encoding.Raw, serialization.PublicFormat.Raw
        return known is not None and known.public_bytes(*raw) == public_key.public_bytes(*raw)

    def add(self, path: Path, public_key: Ed25519PublicKey, created: str) -> bool:
        """Publish ``public_key`` in the keyring file at ``path``; False if it was there."""
        if self.trusts(public_key):
            return False
        kid = key_id(public_key)
        self.keys[kid], self.created[kid] = public_key, created
        lines = [KEYRING_HEADER, "keys:\n"]
        for k, key in self.keys.items():
            pem = public_pem(key).decode().strip().replace("\n", "\n      ")
            lines.append(f"  - key_id: {k}\n    created: '{self.created.get(k, '')}'\n"
                         f"    public_key: |\n      {pem}\n")  # fmt: skip
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text("".join(lines), encoding="utf-8")
        tmp.replace(path)
        return True


def load_keyring(path: Path) -> Keyring:
    """The keyring at ``path``; an empty one when the file does not exist."""
    return Keyring.load(path) if path.exists() else Keyring({})
