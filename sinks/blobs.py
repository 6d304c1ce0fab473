"""The blob store: images addressed by their SHA-256 under one root directory."""

from __future__ import annotations

import hashlib
from pathlib import Path

SCHEME = "blob://sha256/"


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def put(self, data: bytes, suffix: str = ".jpg") -> tuple[str, str]:
        """Store ``data`` (idempotent) and return its (uri, sha256)."""
        digest = hashlib.sha256(data).hexdigest()
        uri = f"{SCHEME}{digest}{suffix}"
        path = self.path(uri)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".part")
            tmp.write_bytes(data)
            tmp.replace(path)
        return uri, digest

    def path(self, uri: str) -> Path:
        if not uri.startswith(SCHEME):
            raise ValueError(f"not a blob uri: {uri}")
        name = uri.removeprefix(SCHEME)
        return self.root / name[:2] / name
