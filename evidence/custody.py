"""The chain of custody (全过程记录) of one package: a hash-chained, signed JSONL log.

``custody.jsonl`` sits in the case directory beside the bag's tag files. It is deliberately
outside the tag manifest and the package signature, because it grows after signing (an officer
views, confirms, exports). Its own integrity comes from the chain: entry 1's ``prev`` is the
SHA-256 of ``tagmanifest-sha256.txt`` (tying the log to this exact signed package), every later
``prev`` is the previous entry's ``hash``, and every entry is signed with the package key.

A prefix of a chain is a chain: a log cut short (or rolled back to a copy) still verifies on its
own. The case store keeps the length and last hash of every log it wrote to
(``sinks.lifecycle``); given that head, :func:`verify_chain` reports a log that is shorter,
longer or different, and :func:`append` refuses to extend a log that does not end there.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Literal, get_args

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from .errors import EvidenceError
from .signing import Signer, canonical_json, verify

CUSTODY_LOG = "custody.jsonl"
TAG_MANIFEST = "tagmanifest-sha256.txt"
# "transition": a lifecycle transition (sinks.lifecycle), its action, states and reason as JSON in
# ``detail``, so that new states need no new event here; "confirmed"/"rejected" are kept for
# logs written before the lifecycle existed
CustodyEvent = Literal["created", "viewed", "confirmed", "rejected", "exported", "transition"]
EVENTS = frozenset(get_args(CustodyEvent))
_BODY = ("seq", "ts", "event", "actor", "detail", "prev")
_FIELDS = frozenset((*_BODY, "hash", "signature"))


def _entry_hash(entry: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json({k: entry[k] for k in _BODY})).hexdigest()


def _anchor(case_dir: Path) -> str:
    """``prev`` of the first entry: the SHA-256 of the package's tag manifest."""
    return hashlib.sha256((case_dir / TAG_MANIFEST).read_bytes()).hexdigest()


def append(
    case_dir: Path,
    event: CustodyEvent,
    actor: str,
    signer: Signer,
    ts: dt.datetime,
    detail: str = "",
    *,
    expect: tuple[int, str | None] | None = None,
) -> dict[str, Any]:
    """Append one signed entry and return it. Safe against concurrent appenders (file lock);
    the entry is fsynced before this returns. ``expect``: (length, last hash) the log must end
    at — the case store's record (hash None: any); otherwise nothing is written and
    :class:`EvidenceError` names both."""
    if event not in EVENTS:
        raise EvidenceError(f"unknown custody event {event!r}", case_dir.name)
    if ts.tzinfo is None:
        raise EvidenceError("custody time must carry its offset", case_dir.name)
    path = case_dir / CUSTODY_LOG
    with path.open("a+b") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.seek(0)
        lines = f.read().splitlines()
        try:
            last = json.loads(lines[-1]) if lines else None
        except ValueError as exc:
            raise EvidenceError(f"{CUSTODY_LOG} ends in a broken line", case_dir.name) from exc
        if expect is not None:
            found = (last["seq"], last["hash"]) if last else (0, None)
            if found[0] != expect[0] or (expect[1] is not None and found[1] != expect[1]):
                raise EvidenceError(
                    f"{CUSTODY_LOG} ends at entry {found[0]} ({str(found[1])[:12]}…), the case "
                    f"store recorded entry {expect[0]} ({str(expect[1])[:12]}…): not appended",
                    case_dir.name,
                )
        entry: dict[str, Any] = {
            "seq": last["seq"] + 1 if last else 1,
            "ts": ts.isoformat(),
            "event": event,
            "actor": actor,
            "detail": detail,
            "prev": last["hash"] if last else _anchor(case_dir),
        }
        entry["hash"] = _entry_hash(entry)
        entry["signature"] = signer.sign(entry["hash"].encode("ascii"))
        f.write(json.dumps(entry, ensure_ascii=False).encode() + b"\n")
        f.flush()
        os.fsync(f.fileno())
    return entry


def read_log(case_dir: Path) -> list[dict[str, Any]]:
    """The entries as stored (for display); use :func:`verify_chain` to trust them."""
    path = case_dir / CUSTODY_LOG
    return [json.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def verify_chain(
    case_dir: Path, public_key: Ed25519PublicKey, head: tuple[int, str | None] | None = None
) -> list[str]:
    """Problems with the custody log of ``case_dir`` (empty when intact). Entries are named by
    their line number, which is their ``seq`` in an intact log. ``head``: (length, last hash)
    as the case store recorded it; the log must end exactly there."""
    problems = _chain_problems(case_dir, public_key)
    path = case_dir / CUSTODY_LOG
    if head is not None and path.is_file():
        problems += head_problems([_loads(line) for line in path.read_bytes().splitlines()], head)
    return problems


def _loads(line: bytes) -> dict[str, Any]:
    try:
        entry = json.loads(line)
    except ValueError:
        return {}
    return entry if isinstance(entry, dict) else {}


def head_problems(entries: list[dict[str, Any]], head: tuple[int, str | None]) -> list[str]:
    """How a log's entries disagree with the head the case store recorded for it."""
    length, digest = head
    n = len(entries)
    if n < length:
        return [f"custody log truncated: {n} entries, the case store recorded {length}"
                f" (head {str(digest)[:12]}…)"]  # fmt: skip
    at = entries[length - 1].get("hash") if length > 0 else None
    if digest is not None and at != digest:
        return [f"custody log rolled back or rewritten: entry {length} is {str(at)[:12]}…,"
                f" the case store recorded {digest[:12]}…"]  # fmt: skip
    if n > length:
        return [f"custody log has {n - length} entries after the head the case store recorded"
                f" (entry {length}): written behind the store's back, or a commit that failed"]  # fmt: skip
    return []


def _chain_problems(case_dir: Path, public_key: Ed25519PublicKey) -> list[str]:
    path = case_dir / CUSTODY_LOG
    if not path.is_file():
        return [f"custody log {CUSTODY_LOG} missing"]
    try:
        prev = _anchor(case_dir)
    except OSError:
        return [f"custody chain has no anchor: {TAG_MANIFEST} missing"]
    problems: list[str] = []
    last_ts: dt.datetime | None = None
    lines = path.read_bytes().splitlines()
    if not lines:
        return [f"custody log {CUSTODY_LOG} is empty"]
    for n, line in enumerate(lines, start=1):
        where = f"custody entry {n}"
        try:
            entry = json.loads(line)
            ts = dt.datetime.fromisoformat(entry["ts"])
        except (ValueError, KeyError, TypeError):
            problems.append(f"{where}: not a readable entry")
            prev = ""
            continue
        if not isinstance(entry, dict) or set(entry) != _FIELDS:
            problems.append(f"{where}: fields are not {sorted(_FIELDS)}")
            prev = entry.get("hash", "") if isinstance(entry, dict) else ""
            continue
        if entry["seq"] != n:
            problems.append(f"{where}: seq is {entry['seq']}")
        if entry["event"] not in EVENTS or (n == 1) != (entry["event"] == "created"):
            problems.append(f"{where}: unexpected event {entry['event']!r}")
        if entry["prev"] != prev:
            anchor = "the tag manifest" if n == 1 else f"entry {n - 1}"
            problems.append(f"{where}: prev does not match {anchor}")
        if _entry_hash(entry) != entry["hash"]:
            problems.append(f"{where}: hash mismatch")
        if not verify(public_key, str(entry["hash"]).encode(), entry["signature"]):
            problems.append(f"{where}: signature does not verify")
        if ts.tzinfo is None or (last_ts is not None and ts < last_ts):
            problems.append(f"{where}: time {entry['ts']} is out of order or has no offset")
        last_ts = ts if ts.tzinfo is not None else last_ts
        prev = entry["hash"]
    return problems
