"""Deterministic ids: the same inputs always give the same id, so replays are idempotent."""

import hashlib


def derive_id(prefix: str, *parts: object) -> str:
    """``prefix-`` followed by 24 hex digits of SHA-256 over the parts (unit-separated)."""
    text = "\x1f".join(str(p) for p in parts)
    return f"{prefix}-{hashlib.sha256(text.encode()).hexdigest()[:24]}"
