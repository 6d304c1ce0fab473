"""AIS ingest: NMEA 0183 lines from shore receivers → decoded reports, with a reason for every
line that is not one.

A line is ``[\\tag block*hh\\]!ccVDM,count,number,seq,channel,payload,fill*hh[,metadata]``:
an optional NMEA 4.0 tag block (its own checksum; ``c:`` the receive time in seconds or
milliseconds since 1970, ``s:`` the source station, ``g:`` the sentence group), the sentence,
and receiver metadata after the checksum (USCG and others append ``,d-109,S2105,…``). Both
checksums are checked (pyais does not by default). Multi-sentence messages are reassembled per
receiver; a part whose siblings do not come within ``fragment_ttl_s`` of receiver time, or that
a new message with the same sequence id replaces, is an orphan. Decoding of the payload bits is
pyais's; which messages the waterway pipeline uses, and what "not available" means in each
field, is decided here.

Inland extension, type 8 DAC 200 FID 10 (inland ship static and voyage related data). The
standard is ECE/TRANS/SC.3/176 (UNECE Resolution No. 63, International Standard for Tracking
and Tracing on Inland Waterways (VTT), 2007), continued as the CCNR/EU VTT standard; its table
for this message, as the IALA ASM register reproduces it (registrant EU, DAC 200, FI 10, in
force since 10/10/2007), reads: "Draught 11 bits: 1 – 2000 (rest not used) draught in 1/100m,
0 = default = unknown" and "Loaded/unloaded 2 bits: 1 = loaded, 2 = unloaded, 0 = not
available/default, 3 should not be used". Decoders disagree on this flag (issue #13: gpsd reads
it the other way round); the standard's wording decides here, as in pyais. The flag never
decides a detection by itself (the draught does); 0 and 3 are unknown.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from hashlib import sha256
from pathlib import Path
from typing import Any

import numpy as np
from pyais.bit_vector import bit_vector
from pyais.messages import MSG_CLASS
from pydantic import ValidationError
from pydantic_core import to_json

from events.stage import BaseStage, Incoming, Outgoing, StageResult, dead_letter, validation_reason
from events.water import WATER_AIS, WATER_AIS_RAW, AisRaw, AisReport

UTC = dt.UTC
EARLIEST = dt.datetime(2000, 1, 1, tzinfo=UTC)  # AIS began service in 2002
MAX_FUTURE = dt.timedelta(days=1)

# ECE/TRANS/SC.3/176, inland static and voyage data: "1 = loaded, 2 = unloaded, 0 = not
# available/default, 3 should not be used" (see the module docstring); 0 and 3 are unknown.
INLAND_LOADED = {1: "loaded", 2: "unloaded"}

MESSAGE_NAMES = {
    1: "position report class A", 2: "position report class A", 3: "position report class A",
    4: "base station report", 5: "static and voyage data", 6: "binary addressed message",
    7: "binary acknowledge", 8: "binary broadcast", 9: "SAR aircraft position",
    10: "UTC/date inquiry", 11: "UTC/date response", 12: "addressed safety message",
    13: "safety acknowledge", 14: "safety broadcast", 15: "interrogation",
    16: "assignment mode command", 17: "DGNSS broadcast", 18: "position report class B",
    19: "extended position report class B", 20: "data link management",
    21: "aid-to-navigation report", 22: "channel management", 23: "group assignment",
    24: "static data report", 25: "single slot binary", 26: "multiple slot binary",
    27: "long-range position report",
}  # fmt: skip
# the fewest payload bits each used message needs for the fields read here
MIN_BITS = {1: 168, 2: 168, 3: 168, 5: 420, 18: 168, 19: 312, 24: 160, 8: 160}

_PAYLOAD = re.compile(r"^[0-W`-w]+$")  # the 6-bit armour: '0'…'W' and '`'…'w'
_HEX2 = re.compile(r"^[0-9A-Fa-f]{2}$")
_TALKER = re.compile(r"^[A-Z]{2}VD[MO]$")
# a well-formed sentence (or one with the empty payload receivers send) in one match; anything
# else goes the slow way, which says what is wrong
# (every group ASCII: a non-ASCII channel or sequence id is a reason, not an encoding error)
_SENTENCE = re.compile(
    r"!(([A-Z]{2}VD[MO]),([1-9]),([1-9]),([0-9]?),([\x00-\x2b\x2d-\x7f]*),([0-W`-w]*),([0-5]))"
    r"\*([0-9A-Fa-f]{2})(?:,.*)?"
)


class Rejected(Exception):
    """A line, or a reassembled message, that does not become a report; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


_M512, _M256, _M128, _M64 = ((1 << n) - 1 for n in (512, 256, 128, 64))


def nmea_checksum(text: str) -> int:
    """XOR of the characters of ``text`` (between the delimiter and ``*``): the bytes as one
    integer, folded in halves (a sentence is at most 82 characters: one 512-bit fold, and a
    fixed six more), instead of one Python step per character."""
    x = int.from_bytes(text.encode("ascii"), "little")
    while x > _M512:
        x = (x >> 512) ^ (x & _M512)
    x = (x >> 256) ^ (x & _M256)
    x = (x >> 128) ^ (x & _M128)
    x = (x >> 64) ^ (x & _M64)
    x ^= x >> 32
    x ^= x >> 16
    x ^= x >> 8
    return x & 0xFF


@dataclass(slots=True)
class Fragment:
    """One checksum-valid VDM/VDO sentence: a whole message or one part of one."""

    receiver_id: str
    received: dt.datetime  # the receiver's clock
    tag_time: dt.datetime | None
    station: str | None
    group: str | None  # the tag block's group id
    talker: str
    channel: str
    seq: str
    count: int
    number: int
    payload: str
    fill: int
    sentence: str  # without tag block and trailing metadata
    token: Any = None  # the caller's handle on the input (an Incoming in the stage)


def _tag_block(text: str, received: dt.datetime) -> tuple[dt.datetime | None, str | None, str]:
    """(receive time ``c:``, source ``s:``, group id of ``g:``) of a tag block's content."""
    body, star, check = text.rpartition("*")
    if not star:
        raise Rejected("tag block has no checksum")
    if not _HEX2.match(check):
        raise Rejected(f"tag block checksum *{check} is not two hex digits")
    if not body.isascii():
        raise Rejected("tag block has non-ASCII characters")
    computed = nmea_checksum(body)
    if computed != int(check, 16):
        raise Rejected(f"bad tag block checksum: *{check} given, *{computed:02X} computed")
    tag_time, station, group = None, None, ""
    for item in body.split(","):
        key, colon, value = item.partition(":")
        if not colon or not key:
            raise Rejected(f"tag block field {item!r} is not key:value")
        if key == "c":
            tag_time = _tag_time(value, received)
        elif key == "s":
            station = value
        elif key == "g":
            group = value.rpartition("-")[2]
    return tag_time, station, group


def _tag_time(value: str, received: dt.datetime) -> dt.datetime:
    try:
        x = float(value)
    except ValueError:
        raise Rejected(f"tag block time c:{value} is not a number") from None
    # NMEA 4.0 says seconds; some networks send milliseconds. 10^11 s is the year 5138 and
    # 10^11 ms is 1973, so the magnitude tells them apart.
    if x >= 1e11:
        x /= 1000.0
    try:
        t = dt.datetime.fromtimestamp(x, UTC)
    except (OverflowError, OSError, ValueError):
        raise Rejected(f"tag block time c:{value} is out of range") from None
    if t < EARLIEST or t > received + MAX_FUTURE:
        raise Rejected(
            f"tag block time c:{value} ({t:%Y-%m-%d %H:%M:%S}Z) is not a plausible receive time"
        )
    return t


def parse_line(line: str, receiver_id: str, received: dt.datetime, token: Any = None) -> Fragment:
    """One received line as a sentence, or :class:`Rejected` with the reason."""
    raw = AisRaw.model_construct(receiver_id=receiver_id, ts=received, sentence=line)
    frags, rejected = parse_lines([(raw, token)])
    if rejected:
        raise Rejected(rejected[0][2])
    return frags[0][1]


def parse_lines(
    lines: Sequence[tuple[AisRaw, Any]],
) -> tuple[list[tuple[int, Fragment]], list[tuple[int, Any, str]]]:
    """Every line as a sentence, in two passes: each line matched, then the checksums of all of
    them at once (:func:`checksums`, a sixth of the cost of folding each line's on its own):
    ((index, fragment) of each good line; (index, token, reason) of each rejected one, in line
    order)."""
    rejected: list[tuple[int, Any, str]] = []
    found: list[tuple[int, re.Match[str], tuple[Any, ...] | None, AisRaw, Any]] = []
    match = _SENTENCE.fullmatch
    for k, (raw, token) in enumerate(lines):
        text = raw.sentence.strip()
        tag = None
        try:
            if text[:1] == "\\":
                end = text.find("\\", 1)
                if end < 0:
                    raise Rejected("tag block is not closed by a backslash")
                tag = _tag_block(text[1:end], raw.ts)
                text = text[end + 1 :]
            m = match(text)
            if m is None:
                _diagnose(text)  # raises with the reason
                raise Rejected(f"malformed AIS sentence: {text[:40]!r}")
        except Rejected as exc:
            rejected.append((k, token, exc.reason))
            continue
        found.append((k, m, tag, raw, token))
    sums = checksums([f[1][1] for f in found])
    frags: list[tuple[int, Fragment]] = []
    for (k, m, tag, raw, token), computed in zip(found, sums, strict=True):
        _, head, count_s, number_s, seq, channel, payload, fill_s, check = m.groups()
        given = _HEX.get(check)
        if given is None:
            given = int(check, 16)  # mixed case
        if computed != given:
            reason = f"bad checksum: *{check.upper()} given, *{computed:02X} computed"
            rejected.append((k, token, reason))
            continue
        count, number = ord(count_s) - 48, ord(number_s) - 48
        if number > count:
            rejected.append((k, token, f"fragment {number} of {count} is not possible"))
            continue
        if not payload:  # receivers send these; the reason, and its order, as _diagnose's
            rejected.append((k, token, "empty payload"))
            continue
        tag_time, station, group = tag or _NO_TAG
        frags.append((k, Fragment(
            raw.receiver_id, raw.ts, tag_time, station, group or None, head, channel, seq, count,
            number, payload, ord(fill_s) - 48, m.string[: m.end(9)], token,
        )))  # fmt: skip
    if len(rejected) > 1:
        rejected.sort(key=lambda r: r[0])
    return frags, rejected


_NO_TAG = (None, None, None)
_HEX = {f"{i:02X}": i for i in range(256)} | {f"{i:02x}": i for i in range(256)}


def checksums(bodies: list[str]) -> list[int]:
    """:func:`nmea_checksum` of each of ``bodies`` (ASCII, none empty), all in one numpy pass."""
    if not bodies:
        return []
    lengths = np.fromiter(map(len, bodies), np.int64, len(bodies))
    starts = np.zeros(len(bodies), np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    blob = np.frombuffer("".join(bodies).encode("ascii"), np.uint8)
    return np.bitwise_xor.reduceat(blob, starts).tolist()


def _diagnose(text: str) -> None:
    """Why ``text`` (after any tag block) is not a well-formed AIS sentence."""
    if not text:
        raise Rejected("empty line")
    if not text.isascii():
        raise Rejected("non-ASCII characters: not an NMEA sentence")
    if not text.startswith("!"):
        if text.startswith("$"):
            raise Rejected(f"not an AIS sentence: {text.split(',', 1)[0][:12]} (NMEA data)")
        if text.startswith("#"):
            raise Rejected("comment line, not an NMEA sentence")
        raise Rejected(f"not an NMEA sentence: {text[:24]!r}")
    star = text.find("*")
    if star < 0:
        raise Rejected("sentence has no checksum (no '*')")
    check, rest = text[star + 1 : star + 3], text[star + 3 :]
    if not _HEX2.match(check):
        raise Rejected(f"checksum *{check} is not two hex digits")
    if rest and rest[0] != ",":
        raise Rejected(f"unexpected text after the checksum: {rest[:16]!r}")
    computed = nmea_checksum(text[1:star])
    if computed != int(check, 16):
        raise Rejected(f"bad checksum: *{check.upper()} given, *{computed:02X} computed")
    parts = text[1:star].split(",")
    if len(parts) != 7:
        raise Rejected(f"sentence has {len(parts)} fields, a VDM/VDO sentence has 7")
    head, count_s, number_s, seq, _channel, payload, fill_s = parts
    if not _TALKER.match(head):
        raise Rejected(f"not an AIS sentence: !{head[:10]}")
    if not (count_s.isdigit() and number_s.isdigit()):
        raise Rejected(f"fragment count and number must be digits: {count_s!r}, {number_s!r}")
    if not 1 <= int(count_s) <= 9 or not 1 <= int(number_s) <= int(count_s):
        raise Rejected(f"fragment {number_s} of {count_s} is not possible")
    if seq and not (seq.isdigit() and len(seq) == 1):
        raise Rejected(f"sequence id {seq!r} is not a digit")
    if not fill_s.isdigit() or int(fill_s) > 5:
        raise Rejected(f"fill bits {fill_s!r}: a digit 0–5")
    if not payload:
        raise Rejected("empty payload")
    if not _PAYLOAD.match(payload):
        raise Rejected("payload has characters outside the AIS 6-bit armour")


@dataclass
class _Pending:
    count: int
    first: dt.datetime
    parts: dict[int, Fragment] = field(default_factory=dict)


class Reassembler:
    """Multi-sentence messages, per receiver. Parts meet by the tag block's group id when there
    is one, else by talker, channel, sequence id and count. Expiry runs on receiver time, never
    on a timer: the line that arrives decides what is stale."""

    def __init__(self, fragment_ttl_s: float = 10.0) -> None:
        self.ttl = dt.timedelta(seconds=fragment_ttl_s)
        self._pending: dict[str, dict[tuple[str, ...], _Pending]] = {}
        self._oldest: dict[str, dt.datetime] = {}  # per receiver: its oldest waiting part

    def add(self, frag: Fragment) -> tuple[list[Fragment] | None, list[tuple[Fragment, str]]]:
        """(the complete message's parts in order, or None; orphans with their reasons)."""
        if frag.count == 1:
            return [frag], self._expire(frag.receiver_id, frag.received)
        waiting = self._pending.setdefault(frag.receiver_id, {})
        orphans = self._expire(frag.receiver_id, frag.received)
        if frag.group is not None:
            key: tuple[str, ...] = ("g", frag.group)
        else:
            key = ("s", frag.talker, frag.channel, frag.seq, str(frag.count))
        entry = waiting.get(key)
        if entry is not None and (entry.count != frag.count or frag.number in entry.parts):
            why = "replaced by a new message with the same sequence id before its other parts came"
            orphans += [(p, _orphan(p, why)) for p in entry.parts.values()]
            entry = None
        if entry is None:
            entry = waiting[key] = _Pending(frag.count, frag.received)
            oldest = self._oldest.get(frag.receiver_id)
            if oldest is None or frag.received < oldest:
                self._oldest[frag.receiver_id] = frag.received
        entry.parts[frag.number] = frag
        if len(entry.parts) < entry.count:
            return None, orphans
        del waiting[key]
        return [entry.parts[n] for n in sorted(entry.parts)], orphans

    def add_many(
        self, frags: list[tuple[int, Fragment]]
    ) -> tuple[list[tuple[int, list[Fragment]]], list[tuple[int, Any, str]]]:
        """:meth:`add` over (index, fragment) pairs: ((index, parts) of each complete message;
        (index, token, reason) of each orphan, the index of the line that made it one)."""
        whole: list[tuple[int, list[Fragment]]] = []
        orphaned: list[tuple[int, Any, str]] = []
        waiting = self._oldest  # a receiver with no part waiting has nothing to expire
        for k, frag in frags:
            if frag.count == 1 and frag.receiver_id not in waiting:
                whole.append((k, [frag]))
                continue
            parts, orphans = self.add(frag)
            if orphans:
                orphaned += [(k, p.token, why) for p, why in orphans]
            if parts is not None:
                whole.append((k, parts))
        return whole, orphaned

    def _expire(self, receiver_id: str, now: dt.datetime) -> list[tuple[Fragment, str]]:
        oldest = self._oldest.get(receiver_id)
        if oldest is None or now - oldest <= self.ttl:
            return []
        waiting = self._pending[receiver_id]
        stale = [k for k, e in waiting.items() if now - e.first > self.ttl]
        firsts = [e.first for k, e in waiting.items() if k not in stale]
        if firsts:
            self._oldest[receiver_id] = min(firsts)
        else:
            del self._oldest[receiver_id]
        why = f"its other parts did not come within {self.ttl.total_seconds():g} s"
        return [(p, _orphan(p, why)) for k in stale for p in waiting.pop(k).parts.values()]

    def flush(self) -> list[tuple[Fragment, str]]:
        """Every part still waiting, as orphans (the input ended or went quiet)."""
        why = "its other parts had not come when the input ended"
        out = [(p, _orphan(p, why)) for w in self._pending.values() for e in w.values()
               for p in e.parts.values()]  # fmt: skip
        self._pending.clear()
        self._oldest.clear()
        return out

    def waiting(self) -> Iterator[Fragment]:
        for w in self._pending.values():
            for e in w.values():
                yield from e.parts.values()


def _orphan(frag: Fragment, why: str) -> str:
    return f"orphan fragment: part {frag.number} of {frag.count} (seq {frag.seq or '-'}): {why}"


def _text(v: str | None) -> str | None:
    v = (v or "").strip(" @")
    return v or None


def _dims(a: int | None, b: int | None) -> float | None:
    total = (a or 0) + (b or 0)
    return float(total) if total > 0 else None  # 0 = not available


def _nonzero(v: int | float | None) -> Any:
    return v if v else None


def decode_fields(payload: str, fill: int, out: dict[str, Any] | None = None) -> dict[str, Any]:
    """The report fields of one whole message's payload (set in ``out`` when given), or
    :class:`Rejected`."""
    bits = 6 * len(payload) - fill
    if bits < 38:
        raise Rejected(f"payload of {bits} bits is too short for any AIS message")
    msg_type = ord(payload[0]) - 48  # the first six bits: the armour character's value
    if msg_type > 40:
        msg_type -= 8
    need = MIN_BITS.get(msg_type)
    bv = bit_vector(payload.encode("ascii"), fill)
    if msg_type == 8:
        dac, fid = (bv.get(40, 10), bv.get(50, 6)) if bits >= 56 else (None, None)
        if (dac, fid) != (200, 10):
            raise Rejected(
                f"message type 8 binary broadcast DAC {dac} FID {fid} is not used "
                "(only the inland static and voyage data, DAC 200 FID 10)"
            )
    if need is None:
        name = MESSAGE_NAMES.get(msg_type, "unknown type")
        raise Rejected(f"message type {msg_type} ({name}) is not used by the waterway pipeline")
    if bits < need:
        raise Rejected(f"message type {msg_type} has {bits} bits, needs at least {need}")
    m: Any = MSG_CLASS[msg_type].from_vector(bv)
    mmsi = int(m.mmsi)
    if mmsi == 0:
        raise Rejected(f"message type {msg_type} from MMSI 0")
    if out is None:
        out = {}
    out["mmsi"], out["msg_type"] = mmsi, msg_type
    if msg_type <= 3 or msg_type == 18 or msg_type == 19:
        lat, lon = m.lat, m.lon
        if lat is not None and lon is not None and -90 <= lat <= 90 and -180 <= lon <= 180:
            out["lat"], out["lon"] = lat, lon
        else:  # 91 / 181 mean "not available"; anything else off the globe is corrupt
            out["lat"] = out["lon"] = None
        speed, course, heading = m.speed, m.course, m.heading
        # 1023 = not available (1022 = 102.2 kn or more), 3600 = not available, 511 = same
        out["sog_kn"] = None if speed is None or speed >= 102.3 else speed
        out["cog_deg"] = None if course is None or course >= 360 else course
        out["heading_deg"] = None if heading is None or heading > 359 else heading
        if msg_type <= 3:
            out["nav_status"] = None if m.status == 15 else int(m.status)  # 15 = not defined
            return out  # the most frequent messages: nothing below is theirs
    if msg_type in (5, 19):
        out.update(name=_text(m.shipname), ship_type=_nonzero(int(m.ship_type)),
                   length_m=_dims(m.to_bow, m.to_stern), beam_m=_dims(m.to_port, m.to_starboard))  # fmt: skip
    if msg_type == 5:
        draught = m.draught or None  # decimetres; 0 = not available
        out.update(callsign=_text(m.callsign), imo=_nonzero(m.imo),
                   destination=_text(m.destination), draught_m=draught,
                   draught_resolution_m=0.1 if draught else None)  # fmt: skip
    elif msg_type == 24:
        if m.partno == 0:
            out.update(part="A", name=_text(m.shipname))
        elif m.partno == 1:
            out.update(part="B", callsign=_text(m.callsign), ship_type=_nonzero(int(m.ship_type)))
            if hasattr(m, "to_bow"):  # an auxiliary craft sends its mothership's MMSI instead
                out.update(length_m=_dims(m.to_bow, m.to_stern),
                           beam_m=_dims(m.to_port, m.to_starboard))  # fmt: skip
        else:
            raise Rejected(f"message type 24 part number {m.partno} (only A = 0 and B = 1)")
    elif msg_type == 8:
        eni = _text(m.vin)
        # the standard's ranges: draught 1–2000 cm, length 1–8000 dm, beam 1–1000 dm; 0 is
        # "default", the rest "not used": neither is a value
        draught = round(m.draught, 2) if 0 < m.draught <= 20.0 else None
        out.update(
            dac=200, fid=10, eni=None if eni is None or set(eni) == {"0"} else eni,
            length_m=m.length if 0 < m.length <= 800.0 else None,
            beam_m=m.beam if 0 < m.beam <= 100.0 else None, eri_type=_nonzero(m.shiptype),
            hazard_cones=m.hazard if m.hazard <= 4 else None,  # 5 = unknown
            draught_m=draught, draught_resolution_m=0.01 if draught else None,
            loaded=INLAND_LOADED.get(int(m.loaded)),
        )  # fmt: skip
    return out


REPORT_FIELDS: dict[str, Any] = dict.fromkeys(AisReport.model_fields)


def report_id(receiver_id: str, ms: int, sentences: list[str]) -> str:
    """``derive_id("ais", receiver_id, ms, *sentences)``, its text built in one step (the
    generic one costs a third of this stage's own work per report; a test holds them equal)."""
    text = f"{receiver_id}\x1f{ms}\x1f" + (
        sentences[0] if len(sentences) == 1 else "\x1f".join(sentences)
    )
    return "ais-" + sha256(text.encode()).hexdigest()[:24]


class AisDecoder:
    """Raw lines → reports, keeping the parts of multi-sentence messages between calls. Pure:
    no broker, no clock; the stage, the benchmark and the tests drive it alike."""

    def __init__(self, fragment_ttl_s: float = 10.0) -> None:
        self.reassembler = Reassembler(fragment_ttl_s)

    def feed(
        self, raw: AisRaw, token: Any = None
    ) -> tuple[dict[str, Any] | None, list[tuple[Any, str]]]:
        """(the report this line completes, or None; (token, reason) for each rejected input —
        this line, or earlier parts it makes orphans of). A report is a dict of every
        :class:`AisReport` field: on this hot path a model per message would cost more than the
        decoding; ``AisReport.model_validate`` gives the typed one, and the tests read every
        report back through it."""
        reports, rejected = self.feed_many([(raw, token)])
        return (reports[0] if reports else None), rejected

    def feed_many(
        self, lines: Sequence[tuple[AisRaw, Any]]
    ) -> tuple[list[dict[str, Any]], list[tuple[Any, str]]]:
        """:meth:`feed` over lines in their order, worked in phases (parse every line, then
        reassemble, then decode), which costs a fifth less than line by line (bench/ais.py):
        (the reports, in the order their messages were completed; every rejected input with its
        reason, in input order)."""
        frags, rejected = parse_lines(lines)
        whole, orphans = self.reassembler.add_many(frags)
        rejected += orphans
        reports: list[dict[str, Any]] = []
        for k, parts in whole:
            payload = parts[0].payload if len(parts) == 1 else "".join(p.payload for p in parts)
            try:
                report = decode_fields(payload, parts[-1].fill, REPORT_FIELDS.copy())
            except Rejected as exc:
                rejected += [(k, p.token, exc.reason) for p in parts]
                continue
            reports.append(_stamp(report, parts))
        rejected.sort(key=lambda r: r[0])  # stable: a line's orphans before its own reason
        return reports, [(token, why) for _, token, why in rejected]

    def flush(self) -> list[tuple[Any, str]]:
        return [(p.token, why) for p, why in self.reassembler.flush()]


def _stamp(report: dict[str, Any], parts: list[Fragment]) -> dict[str, Any]:
    """The decoded fields, with where and when they were received and the report's id."""
    first = parts[0]
    sentences = [first.sentence] if len(parts) == 1 else [p.sentence for p in parts]
    ts, receiver_id = first.tag_time or first.received, first.receiver_id
    report["report_id"] = report_id(receiver_id, int(ts.timestamp() * 1000), sentences)
    report["ts"] = ts
    report["time_source"] = "receiver" if first.tag_time is None else "tag_block"
    report["receiver_id"] = receiver_id
    report["station"] = first.station
    report["channel"] = first.channel or None
    report["sentences"] = sentences
    return report


class AisDecodeStage(BaseStage):
    """``water.ais.raw`` → ``water.ais`` (keyed by MMSI) and the DLQ, every rejected line with
    its reason. Parts of multi-sentence messages wait in memory: :meth:`held` keeps their
    offsets uncommitted until their message is complete or given up."""

    name = "ais.decode"

    def __init__(self, *, fragment_ttl_s: float = 10.0, topic_prefix: str = "") -> None:
        self.in_topic = topic_prefix + WATER_AIS_RAW
        self.out_topic = topic_prefix + WATER_AIS
        self.inputs: tuple[str, ...] = (self.in_topic,)
        self.decoder = AisDecoder(fragment_ttl_s)

    async def process(self, batch: list[Incoming]) -> StageResult:
        # in phases over the batch (read, decode, write), as the decoder works: faster than
        # one message through all of them at a time
        dead, lines = [], []
        for msg in batch:
            try:
                lines.append((AisRaw.model_validate_json(msg.value), msg))
            except ValidationError as exc:
                dead.append(dead_letter(msg, validation_reason(exc), self.name))
        reports, rejected = self.decoder.feed_many(lines)
        dead += [dead_letter(tok, why, self.name) for tok, why in rejected]
        out = self.out_topic
        return StageResult(
            out=[Outgoing(out, str(r["mmsi"]).encode(), to_json(r)) for r in reports], dead=dead
        )

    async def idle(self) -> StageResult:
        return StageResult(dead=[dead_letter(t, why, self.name) for t, why in self.decoder.flush()])

    def held(self) -> dict[tuple[str, int], int]:
        low: dict[tuple[str, int], int] = {}
        for frag in self.decoder.reassembler.waiting():
            msg: Incoming = frag.token
            tp = (msg.topic, msg.partition)
            low[tp] = min(low.get(tp, msg.offset), msg.offset)
        return low


# ---------------------------------------------------------------------------------------------
# Sources: files and a TCP/UDP listener


def read_nmea(path: Path, receiver_id: str, received: dt.datetime) -> Iterator[AisRaw]:
    """Each line of an NMEA log as a raw message from ``receiver_id``, received at ``received``
    (the tag blocks carry the real receive times where there are any). Whitespace-only lines
    carry nothing and are left out; every other line goes on, to be decoded or dead-lettered."""
    for line in path.read_bytes().splitlines():
        text = line.decode("ascii", "backslashreplace").strip()
        if text:
            yield AisRaw(receiver_id=receiver_id, ts=received, sentence=text[:2000])


def raw_message(raw: AisRaw, topic_prefix: str = "") -> Outgoing:
    """A raw message as it goes to ``water.ais.raw``, keyed by its receiver."""
    return Outgoing(topic_prefix + WATER_AIS_RAW, raw.receiver_id.encode(), raw.to_json())


RawCallback = Callable[[AisRaw], Awaitable[None]]


def _utcnow() -> dt.datetime:
    return dt.datetime.now(UTC)


@dataclass
class AisListener:
    """A running TCP or UDP listener; ``address`` is where it listens."""

    address: tuple[str, int]
    _close: Callable[[], Awaitable[None]]

    async def close(self) -> None:
        await self._close()


async def serve_ais(
    on_raw: RawCallback,
    host: str,
    port: int,
    *,
    receiver_id: str | None = None,
    udp: bool = False,
    clock: Callable[[], dt.datetime] = _utcnow,
    max_line: int = 2000,
) -> AisListener:
    """Listen for receiver feeds (one NMEA line per line, TCP, or one or more per datagram,
    UDP) and hand each line to ``on_raw`` as a raw message, in arrival order, stamped by
    ``clock``. The receiver is ``receiver_id``, else the peer's address. A line longer than
    ``max_line`` is cut there and handed on all the same: the decoder rejects it with a reason."""

    def raw(line: bytes, peer: str) -> AisRaw | None:
        text = line.decode("ascii", "backslashreplace").strip()
        if not text:
            return None
        return AisRaw(receiver_id=receiver_id or peer, ts=clock(), sentence=text[:max_line])

    if udp:
        queue: asyncio.Queue[AisRaw | None] = asyncio.Queue()

        class _Datagrams(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                for line in data.splitlines():
                    if (r := raw(line, f"udp:{addr[0]}")) is not None:
                        queue.put_nowait(r)

        async def drain() -> None:
            while (r := await queue.get()) is not None:
                await on_raw(r)

        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(_Datagrams, local_addr=(host, port))
        task = asyncio.create_task(drain())

        async def close_udp() -> None:
            transport.close()
            queue.put_nowait(None)
            await task

        return AisListener(transport.get_extra_info("sockname")[:2], close_udp)

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = f"tcp:{writer.get_extra_info('peername')[0]}"
        buf, skipping = b"", False  # skipping: the rest of a line already cut at max_line
        try:
            while chunk := await reader.read(65536):
                *lines, buf = (buf + chunk).split(b"\n")
                for line in lines:
                    if skipping:
                        skipping = False
                    elif (r := raw(line, peer)) is not None:
                        await on_raw(r)
                if len(buf) > max_line:
                    if not skipping and (r := raw(buf, peer)) is not None:
                        await on_raw(r)
                    buf, skipping = b"", True
            if buf and not skipping and (r := raw(buf, peer)) is not None:
                await on_raw(r)
        finally:
            writer.close()

    server = await asyncio.start_server(client, host, port)

    async def close_tcp() -> None:
        server.close()
        await server.wait_closed()

    return AisListener(server.sockets[0].getsockname()[:2], close_tcp)
