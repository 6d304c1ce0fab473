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
