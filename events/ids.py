"""Deterministic ids: the same inputs always give the same id, so replays are idempotent."""

import hashlib


def derive_id(prefix: str, *parts: object) -> str:
    """``prefix-`` followed by 24 hex digits of SHA-256 over the parts (unit-separated)."""
    text = "\x1f".join(str(p) for p in parts)
    return f"{prefix}-{hashlib.sha256(text.encode()).hexdigest()[:24]}"


def case_id(site_id: str, device_id: str, record_id: str, violation_code: str) -> str:
    """A case's identity: the pass (site, device, record) and the violation code — never the
    versions that decided it, so a re-decision is the same case, not a second one."""
    return derive_id("case", site_id, device_id, record_id, violation_code)
