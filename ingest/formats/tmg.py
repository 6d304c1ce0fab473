"""FHWA TMG "W" per-vehicle weight records: the fixed-width file WIM systems export in the US.

Columns (1-based; FHWA Traffic Monitoring Guide, as implemented by kellystuard/FHWA.TMAS
``WeightData.cs``; paperwork review 2026-12-07 §5.3): 1 ``W``, 2–3 FIPS state, 4–9 station id,
10 direction, 11 lane, 12–15 year, 16–17 month, 18–19 day, 20–21 hour, 22–23 FHWA vehicle
class (``m``/``d``: an hour without vehicles, no record), 24–26 open (speed in mph when
numeric), 27–32 gross weight in pounds, 33–34 number of axles, then axle 1's weight (5, lb) and
for each further axle the spacing before it (4, tenths of a foot) and its weight (5, lb).

Units are converted exactly and rounded half up once: 1 lb = 0.45359237 kg (the international
pound, exact by definition), 0.1 ft = 30.48 mm (exact), 1 mph = 1.609344 km/h (exact). The
device is the wim device whose ``codes.tmg`` is FIPS state + station id (``17018115``).

The record knows the hour only: ts is the start of the hour in the site's local time, with the
flag ``time_to_the_hour`` (no capture can be matched to it, and no weighing of it is enforced:
the file is for validation data and statistics); a record without a speed carries
``speed_not_reported``.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from events.registry import Registry

from .base import Decoded, Format, Item, Unmapped, device_by_code

NAME = "tmg"
LB_KG = (45_359_237, 100_000_000)  # 1 lb = 0.45359237 kg
TENTH_FT_MM = (3048, 100)  # 0.1 ft = 30.48 mm
MPH_KMH = (1_609_344, 1_000_000)  # 1 mph = 1.609344 km/h


def convert(value: int, ratio: tuple[int, int]) -> int:
    """``value`` × ratio, rounded half up, in integers (no binary fraction on the way)."""
    num, den = ratio
    return (value * num * 2 + den) // (den * 2)


def field(line: str, first: int, last: int, name: str) -> int:
    """The whole number in columns ``first``–``last`` (1-based, inclusive)."""
    value = line[first - 1 : last]
    if not value.strip().isdigit():
        raise Unmapped(NAME, f"{name} (cols {first}-{last})", f"{value!r} is not a number", line)
    return int(value)


def one(line: str, registry: Registry, seen: dict[str, int]) -> Item | None:
    if not line.startswith("W"):
        raise Unmapped(NAME, "record type (col 1)", f"{line[:1]!r} is not a W record", line)
    if line[21:23].strip() in ("m", "d"):  # an hour missing, or an hour without trucks
        return None
    code = line[1:9]
    wim, site = device_by_code(NAME, registry, code, "wim", "state + station (cols 2-9)", line)
    year, month = field(line, 12, 15, "year"), field(line, 16, 17, "month")
    day, hour = field(line, 18, 19, "day"), field(line, 20, 21, "hour")
    try:
        local = dt.timezone(dt.timedelta(hours=site.timezone_offset_hours))
        ts = dt.datetime(year, month, day, hour, tzinfo=local)
    except ValueError as exc:
        raise Unmapped(NAME, "date (cols 12-21)", str(exc), line) from exc
    n = field(line, 33, 34, "number of axles")
    if not 2 <= n <= 13:
        raise Unmapped(NAME, "number of axles (cols 33-34)", f"{n} axles (2–13)", line)
    weights_lb, spacings = [field(line, 35, 39, "axle 1 weight")], []
    for k in range(2, n + 1):
        at = 40 + (k - 2) * 9
        spacings.append(field(line, at, at + 3, f"spacing {k - 1}-{k}"))
        weights_lb.append(field(line, at + 4, at + 8, f"axle {k} weight"))
    speed = line[23:26].strip()
    flags = ["time_to_the_hour"] + ([] if speed.isdigit() else ["speed_not_reported"])
    digest = hashlib.sha256(line.rstrip().encode()).hexdigest()[:12]
    base = f"tmg-{code}-{ts:%Y%m%d%H}-{line[10]}-{digest}"
    seen[base] = seen.get(base, 0) + 1  # the same truck twice in an hour: two records
    doc = {
        "record_id": base if seen[base] == 1 else f"{base}-{seen[base]}",
        "site_id": site.id, "device_id": wim.id, "lane": field(line, 11, 11, "lane"),
        "ts": ts.isoformat(),
        "speed_kmh": float(convert(int(speed), MPH_KMH)) if speed.isdigit() else 0.0,
        "axle_count": n, "axle_weights_kg": [convert(w, LB_KG) for w in weights_lb],
        "axle_spacings_mm": [convert(s, TENTH_FT_MM) for s in spacings],
        "gross_weight_kg": convert(field(line, 27, 32, "gross weight"), LB_KG),
        "flags": flags, "source_format": NAME,
        "tmg": {"direction": line[9], "vehicle_class": line[21:23].strip(),
                "gross_weight_lb": field(line, 27, 32, "gross weight")},
    }  # fmt: skip
    return Item("wim", doc, wim.id, line.rstrip())


def decode(body: bytes, registry: Registry) -> Decoded:
    """Each non-blank line of a TMG weight file."""
    out: Decoded = []
    seen: dict[str, int] = {}
    for line in body.decode("ascii", "replace").splitlines():
        if not line.strip():
            continue
        try:
            item = one(line, registry, seen)
        except Unmapped as exc:
            out.append(exc)
            continue
        if item is not None:
            out.append(item)
    return out


FIELDS = {
    "gross_weight_kg": "gross weight (cols 27-32)", "axle_count": "number of axles (cols 33-34)",
    "axle_weights_kg": "axle weights (cols 35-…)", "axle_spacings_mm": "axle spacings (cols 40-…)",
    "lane": "lane (col 11)", "ts": "date (cols 12-21)",
}  # fmt: skip
FORMAT = Format(NAME, 'FHWA TMG "W" per-vehicle weight record (fixed width; pounds, tenths of a '
                "foot), one a line: offsite ingest import --format tmg FILE", "road.wim", decode,
                FIELDS)  # fmt: skip
