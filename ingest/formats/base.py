"""The adapters' common parts: the decoded item, the unmapped record, the registry lookup."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from events import ROAD_ANPR, ROAD_WIM, AnprCapture, OffsiteError, WimRecord
from events.models import DeadLetter
from events.registry import Device, Registry, Site
from events.stage import Outgoing
from events.topics import dlq

TOPICS = {"wim": ROAD_WIM, "anpr": ROAD_ANPR}


@dataclass(frozen=True)
class Image:
    """An image a record names: by ``url`` (fetched by the gateway from allowed hosts) or
    inline ``data``; ``source`` is the format's field, for error messages."""

    role: str
    source: str
    url: str | None = None
    data: bytes | None = None


@dataclass(frozen=True)
class Item:
    """One message decoded from a station's record: ``kind`` wim or anpr, ``doc`` offsite's own
    JSON for it (an anpr capture without its images), ``sender`` the registry device the record
    maps to (a gateway key must be that device's), ``raw`` the record as sent."""

    kind: str
    doc: dict[str, Any]
    sender: str
    raw: str
    images: tuple[Image, ...] = ()


class Unmapped(OffsiteError):
    """A record the format's adapter cannot map; ``field`` is the format's own field."""

    def __init__(self, fmt: str, fld: str, reason: str, raw: str = "", kind: str = "wim") -> None:
        self.fmt, self.field, self.reason, self.raw, self.kind = fmt, fld, reason, raw, kind
        super().__init__(f"{fmt}: {fld}: {reason}")


Decoded = list[Item | Unmapped]


@dataclass(frozen=True)
class Format:
    name: str
    title: str  # what it is, for `offsite ingest formats`
    sends: str  # the topics its records become
    decode: Callable[[bytes, Registry], Decoded]
    # offsite's field → the format's, to name the format's field when offsite's model refuses
    fields: Mapping[str, str] = field(default_factory=dict)


def device_by_code(
    fmt: str, registry: Registry, code: str, kind: str, fld: str, raw: str
) -> tuple[Device, Site]:
    """The ``kind`` device whose ``codes[fmt]`` is ``code``, and its one site."""
    found = [d for d in registry.devices if d.type == kind and d.codes.get(fmt) == code]
    if not found:
        raise Unmapped(fmt, fld, f"{code!r} is the code of no {kind} device in the registry "
                       f"(devices: codes: {{{fmt}: …}})", raw, kind)  # fmt: skip
    if len(found) > 1:
        names = ", ".join(d.id for d in found)
        raise Unmapped(fmt, fld, f"{code!r} is the code of several {kind} devices ({names})",
                       raw, kind)  # fmt: skip
    sites = [s for s in registry.sites if found[0].id in s.devices]
    if len(sites) != 1:
        raise Unmapped(fmt, fld, f"device {found[0].id} is registered at {len(sites)} sites: "
                       "a code maps to one", raw, kind)  # fmt: skip
    return found[0], sites[0]


def local_time(fmt: str, fld: str, text: str, pattern: str, site: Site, raw: str) -> dt.datetime:
    """``text`` in ``pattern``, a local time at ``site`` (the formats carry no offset)."""
    try:
        naive = dt.datetime.strptime(text.strip(), pattern)
    except ValueError as exc:
        raise Unmapped(fmt, fld, f"{text!r} is not a time {pattern}", raw) from exc
    return naive.replace(tzinfo=dt.timezone(dt.timedelta(hours=site.timezone_offset_hours)))


def checked(fmt: Format, item: Item) -> Item:
    """``item`` if offsite's model takes it; else Unmapped naming the format's field."""
    model = WimRecord if item.kind == "wim" else AnprCapture
    try:
        model.model_validate({**item.doc, "ts": dt.datetime.fromisoformat(item.doc["ts"])})
    except ValidationError as exc:
        err = exc.errors()[0]
        # a check across fields (gross against the axles) has no location: the first field
        # its message names
        named = sorted((err["msg"].find(k), k) for k in fmt.fields if k in err["msg"])
        ours = str(err["loc"][0]) if err["loc"] else named[0][1] if named else ""
        theirs = fmt.fields.get(ours, ours or "record")
        raise Unmapped(fmt.name, theirs, f"{err['msg']} ({ours or 'record'})", item.raw,
                       item.kind) from exc  # fmt: skip
    return item


def dead_letter(u: Unmapped, prefix: str = "") -> Outgoing:
    """The dead letter of a record its adapter could not map, on the DLQ of the topic it would
    have gone to; no partition or offset (it never reached a topic)."""
    topic = prefix + TOPICS[u.kind]
    letter = DeadLetter(topic=topic, partition=-1, offset=-1, key=None, value=u.raw,
                        reason=str(u), stage=f"ingest.formats.{u.fmt}")  # fmt: skip
    return Outgoing(dlq(topic), None, letter.to_json())


def text(fmt: str, record: Mapping[str, Any], fld: str, raw: str, *, required: bool = True) -> str:
    """The string value of ``fld`` (formats send numbers as strings, or not)."""
    value = record.get(fld)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise Unmapped(fmt, fld, "missing", raw)
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise Unmapped(fmt, fld, f"{value!r} is not a value", raw)
    return str(value).strip()


def number(fmt: str, record: Mapping[str, Any], fld: str, raw: str, *, required: bool = True,
           integer: bool = True) -> float | None:  # fmt: skip
    """The number in ``fld``; None when absent and not ``required``."""
    value = text(fmt, record, fld, raw, required=required)
    if not value:
        return None
    try:
        n = float(value)
    except ValueError as exc:
        raise Unmapped(fmt, fld, f"{value!r} is not a number", raw) from exc
    if integer and n != int(n):
        raise Unmapped(fmt, fld, f"{value!r} is not a whole number", raw)
    return n
