"""治超 pass records: the JSON a weigh station sends its provincial 治超 platform.

The shape is the Hunan data standard's "表B.1 过车检测数据" (most likely DB43/T 1817-2020) and
the 治超 apps built on it (paperwork review 2026-12-07 §5.1): every value a string or a number,
one record or a JSON array of them. What offsite reads:

- ``previewCode`` 预检序号 → the record's id; ``previewStationCode`` 检测站号 → the device
  whose ``codes.zhichao`` it is (and the station's camera, an anpr device with the same code);
- ``previewDate`` 检测时间 (``yyyy-MM-dd HH:mm:ss``, the site's local time) → ts;
  ``snapshotTime`` 抓拍时间 → the capture's ts (default: previewDate);
- ``laneNo``, ``speed`` (km/h), ``axisNum``, ``totalWeight`` (kg), ``axle1Weight`` …
  (kg, one per axle: offsite needs each);
- ``licenseCodeFront`` (else ``licenseCodeBack``) and ``licensePlateColor`` → the plate;
- ``isEscape`` = 1 (逃检) → the flag ``escape``: not a steady weighing, reviewed;
- images by URL or inline (base64, or a ``data:`` URI): ``plateImg`` / ``licenseImg`` (plate),
  ``headImg`` / ``frontImg`` / ``imgFile1`` (front), ``sideImg`` / ``imgFile2`` (side),
  ``tailImg`` / ``imgFile3`` (rear), and each of ``imgFileList`` (overview).

The format has no axle spacings (so axle groups are not judged), no validity flags but
``isEscape``, and no read confidence: the station's capture says 0 (the plate is not taken as
read without the second read or an officer; a 卡口 camera's capture of the same pass may be).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from events.registry import Registry

from .base import Decoded, Format, Image, Item, Unmapped, device_by_code, local_time, number, text
from .colors import plate, plate_color

NAME = "zhichao"
TIME = "%Y-%m-%d %H:%M:%S"
ROLES = {
    "plateImg": "plate", "licenseImg": "plate", "headImg": "front", "frontImg": "front",
    "imgFile1": "front", "sideImg": "side", "imgFile2": "side", "tailImg": "rear",
    "imgFile3": "rear",
}  # fmt: skip


def image(fld: str, role: str, value: Any, raw: str) -> Image:
    if not isinstance(value, str) or not value.strip():
        raise Unmapped(NAME, fld, "an image is a URL or base64 text", raw)
    v = value.strip()
    if v.startswith(("http://", "https://")):
        return Image(role, fld, url=v)
    if v.startswith("data:"):
        head, _, v = v.partition(",")
        if ";base64" not in head:
            raise Unmapped(NAME, fld, "a data: URI image must be base64", raw)
    try:
        return Image(role, fld, data=base64.b64decode(v, validate=True))
    except (binascii.Error, ValueError) as exc:
        raise Unmapped(NAME, fld, "neither a http(s) URL nor base64", raw) from exc


def images(record: dict[str, Any], raw: str) -> tuple[Image, ...]:
    out = [image(k, role, record[k], raw) for k, role in ROLES.items() if record.get(k)]
    extra = record.get("imgFileList") or []
    if not isinstance(extra, list):
        raise Unmapped(NAME, "imgFileList", "must be a list of images", raw)
    out += [image(f"imgFileList.{i}", "overview", v, raw) for i, v in enumerate(extra)]
    return tuple(out)


def one(record: Any, registry: Registry) -> list[Item]:
    """The road.wim record and, if the station has a camera mapped, the road.anpr capture."""
    raw = json.dumps(record, ensure_ascii=False)
    if not isinstance(record, dict):
        raise Unmapped(NAME, "", "a pass record is a JSON object", raw)
    code = text(NAME, record, "previewStationCode", raw)
    wim, site = device_by_code(NAME, registry, code, "wim", "previewStationCode", raw)
    ts = local_time(NAME, "previewDate", text(NAME, record, "previewDate", raw), TIME, site, raw)
    axles = int(number(NAME, record, "axisNum", raw) or 0)
    if not 2 <= axles <= 64:
        raise Unmapped(NAME, "axisNum", f"{axles} axles", raw)
    weights = [int(number(NAME, record, f"axle{k}Weight", raw) or 0) for k in range(1, axles + 1)]
    front = text(NAME, record, "licenseCodeFront", raw, required=False)
    back = text(NAME, record, "licenseCodeBack", raw, required=False)
    seen = plate(front) or plate(back)
    escape = text(NAME, record, "isEscape", raw, required=False) == "1"
    lane = int(number(NAME, record, "laneNo", raw) or 0)
    doc = {
        "record_id": text(NAME, record, "previewCode", raw),
        "site_id": site.id, "device_id": wim.id, "lane": lane, "ts": ts.isoformat(),
        "speed_kmh": float(number(NAME, record, "speed", raw, integer=False) or 0),
        "axle_count": axles, "axle_weights_kg": weights, "axle_spacings_mm": [],
        "gross_weight_kg": int(number(NAME, record, "totalWeight", raw) or 0),
        "flags": ["escape"] if escape else [], "plate": seen, "source_format": NAME,
    }  # fmt: skip
    out = [Item("wim", doc, wim.id, raw)]
    cams = [d for d in registry.devices if d.type == "anpr" and d.codes.get(NAME) == code]
    if cams:
        cam, cam_site = device_by_code(NAME, registry, code, "anpr", "previewStationCode", raw)
        if cam_site.id != site.id:
            raise Unmapped(NAME, "previewStationCode", f"camera {cam.id} is at {cam_site.id}, "
                           f"not at the station's site {site.id}", raw)  # fmt: skip
        shot = text(NAME, record, "snapshotTime", raw, required=False)
        when = local_time(NAME, "snapshotTime", shot, TIME, site, raw) if shot else ts
        color = text(NAME, record, "licensePlateColor", raw, required=False)
        capture = {
            "capture_id": doc["record_id"], "site_id": site.id, "camera_id": cam.id,
            "lane": lane, "ts": when.isoformat(), "plate": seen,
            "plate_color": plate_color(color), "confidence": 0.0, "vehicle_type": None,
            "source_format": NAME,
        }  # fmt: skip
        out.append(Item("anpr", capture, wim.id, raw, images(record, raw)))
    return out


def decode(body: bytes, registry: Registry) -> Decoded:
    """One pass record (a JSON object) or a batch (a JSON array of them)."""
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError) as exc:
        return [Unmapped(NAME, "", f"invalid JSON: {exc}", body.decode("utf-8", "replace"))]
    out: Decoded = []
    for record in doc if isinstance(doc, list) else [doc]:
        try:
            out += one(record, registry)
        except Unmapped as exc:
            out.append(exc)
    return out


FIELDS = {
    "record_id": "previewCode", "capture_id": "previewCode", "lane": "laneNo",
    "speed_kmh": "speed", "axle_count": "axisNum", "axle_weights_kg": "axle1Weight…",
    "gross_weight_kg": "totalWeight", "ts": "previewDate", "plate": "licenseCodeFront",
}  # fmt: skip
FORMAT = Format(NAME, "治超 pass record (Hunan 表B.1 过车检测数据 JSON: previewCode, totalWeight, "
                "axle1Weight…), one or a JSON array", "road.wim, road.anpr", decode, FIELDS)  # fmt: skip
