"""卡口 records: the police checkpoint upload every ANPR camera in China supports.

``WriteVehicleInfo`` of the TMRI "Trans" web service (SOAP, namespace
``http://webservice.tfc.tmri.com/``), and its common JSON variant (paperwork review 2026-12-07
§5.2). What offsite reads, into ``road.anpr``:

- ``kkbh`` 卡口编号 → the anpr device whose ``codes.kakou`` it is; ``cdh`` 车道号 → lane;
- ``gcsj`` 过车时间 (``yyyy-MM-dd HH:mm:ss[.SSS]``, the site's local time) → ts;
- ``hphm`` 号牌号码, ``hpys`` 号牌颜色 → the plate ("无牌", "未识别" … → none read);
- ``hpzxd`` 号牌置信度 (JSON variant; 0–100, or 0–1 written with a decimal point) → confidence;
  without it (SOAP) 0: the plate is not taken as read without the second read or an officer;
- ``cllx`` 车辆类型 (GA 24.4 code: H 货车, Q 牵引车, G 全挂车, B 半挂车, K 客车, M 摩托车) →
  vehicle_type; another code is no classification;
- images by URL: ``tplj`` (path prefix) + ``tp1`` (front), ``tp2``, ``tp3`` (overview), ``tztp``
  / ``hptp`` (plate); a full URL in ``tpN`` is taken as it is.

The format carries no capture id: it is ``kk-`` and the first 20 hex digits of the SHA-256 of
kkbh, cdh, gcsj and hphm, so a re-sent record is the same capture.
"""

from __future__ import annotations

import hashlib
import json
import xml.etree.ElementTree as ET
from typing import Any

from events.registry import Registry

from .base import Decoded, Format, Image, Item, Unmapped, device_by_code, local_time, number, text
from .colors import plate, plate_color

NAME = "kakou"
NS = "http://webservice.tfc.tmri.com/"
VEHICLE_TYPES = {"H": "truck", "Q": "tractor", "G": "trailer", "B": "semi_trailer", "K": "bus",
                 "M": "motorcycle"}  # fmt: skip
IMAGES = (("tp1", "front"), ("tp2", "overview"), ("tp3", "overview"), ("tztp", "plate"),
          ("hptp", "plate"))  # fmt: skip


def soap_fields(body: bytes) -> list[dict[str, str]]:
    """The parameters of each ``WriteVehicleInfo`` element of a SOAP envelope."""
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:  # no DTD: no entity expansion at all
        raise Unmapped(NAME, "", "a SOAP request has no DTD", body.decode("utf-8", "replace"),
                       "anpr")  # fmt: skip
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise Unmapped(NAME, "", f"invalid XML: {exc}", body.decode("utf-8", "replace"),
                       "anpr") from exc  # fmt: skip
    calls = [e for e in root.iter() if e.tag.rsplit("}", 1)[-1] == "WriteVehicleInfo"]
    if not calls:
        raise Unmapped(NAME, "WriteVehicleInfo", "no WriteVehicleInfo call in the request",
                       body.decode("utf-8", "replace"), "anpr")  # fmt: skip
    return [{c.tag.rsplit("}", 1)[-1]: (c.text or "") for c in call} for call in calls]


def _time(record: dict[str, Any], site: Any, raw: str) -> Any:
    value = text(NAME, record, "gcsj", raw)
    pattern = "%Y-%m-%d %H:%M:%S.%f" if "." in value else "%Y-%m-%d %H:%M:%S"
    return local_time(NAME, "gcsj", value, pattern, site, raw)


def one(record: Any, registry: Registry) -> Item:
    raw = json.dumps(record, ensure_ascii=False)
    if not isinstance(record, dict):
        raise Unmapped(NAME, "", "a 卡口 record is a JSON object", raw, "anpr")
    code = text(NAME, record, "kkbh", raw)
    cam, site = device_by_code(NAME, registry, code, "anpr", "kkbh", raw)
    ts = _time(record, site, raw)
    hphm = text(NAME, record, "hphm", raw, required=False)
    conf = number(NAME, record, "hpzxd", raw, required=False, integer=False)
    if conf is not None and not 0 <= conf <= 100:
        raise Unmapped(NAME, "hpzxd", f"{conf:g} is not a confidence (0–100)", raw, "anpr")
    # a whole number is a percentage ("1" is 1 %, not certainty); a fraction up to 1 is 0–1
    fraction = conf is not None and conf <= 1 and "." in text(NAME, record, "hpzxd", raw)
    confidence = 0.0 if conf is None else conf if fraction else conf / 100
    cllx = text(NAME, record, "cllx", raw, required=False)
    ident = "|".join((code, text(NAME, record, "cdh", raw), text(NAME, record, "gcsj", raw), hphm))
    prefix = text(NAME, record, "tplj", raw, required=False)
    images = []
    for fld, role in IMAGES:
        value = text(NAME, record, fld, raw, required=False)
        if value:
            url = value if value.startswith(("http://", "https://")) else prefix + value
            if not url.startswith(("http://", "https://")):
                raise Unmapped(NAME, fld, f"{url!r} is not a http(s) URL (tplj + {fld})", raw,
                               "anpr")  # fmt: skip
            images.append(Image(role, fld, url=url))
    doc = {
        "capture_id": "kk-" + hashlib.sha256(ident.encode()).hexdigest()[:20],
        "site_id": site.id, "camera_id": cam.id,
        "lane": int(number(NAME, record, "cdh", raw) or 0), "ts": ts.isoformat(),
        "plate": plate(hphm),
        "plate_color": plate_color(text(NAME, record, "hpys", raw, required=False)),
        "confidence": confidence, "vehicle_type": VEHICLE_TYPES.get(cllx[:1]) if cllx else None,
        "source_format": NAME,
    }  # fmt: skip
    return Item("anpr", doc, cam.id, raw, tuple(images))


def decode(body: bytes, registry: Registry) -> Decoded:
    """A SOAP ``WriteVehicleInfo`` request (XML) or the JSON variant (an object or an array)."""
    out: Decoded = []
    try:
        if body.lstrip().startswith(b"<"):
            records: list[Any] = list(soap_fields(body))
        else:
            try:
                doc = json.loads(body)
            except (ValueError, RecursionError) as exc:
                raise Unmapped(NAME, "", f"invalid JSON: {exc}",
                               body.decode("utf-8", "replace"), "anpr") from exc  # fmt: skip
            records = doc if isinstance(doc, list) else [doc]
    except Unmapped as exc:
        return [exc]
    for record in records:
        try:
            out.append(one(record, registry))
        except Unmapped as exc:
            exc.kind = "anpr"
            out.append(exc)
    return out


FIELDS = {"capture_id": "kkbh", "lane": "cdh", "ts": "gcsj", "plate": "hphm",
          "plate_color": "hpys", "confidence": "hpzxd", "camera_id": "kkbh"}  # fmt: skip
FORMAT = Format(NAME, "卡口 WriteVehicleInfo (TMRI web service: SOAP, or the JSON variant with "
                "hpzxd), one or a JSON array", "road.anpr", decode, FIELDS)  # fmt: skip


SOAP_TYPES = ("text/xml", "application/soap+xml")


def soap_answer(accepted: bool, message: str, retry: bool = False) -> bytes:
    """The SOAP 1.1 answer to ``WriteVehicleInfo``: ``return`` 1 when accepted, else a fault
    with the reasons: ``soap:Client`` (the camera does not retry a record it sent wrong), or
    ``soap:Server`` when ``retry`` (the image server or offsite failed: send it again)."""
    from xml.sax.saxutils import escape

    env = '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
    if accepted:
        inner = f'<ns2:WriteVehicleInfoResponse xmlns:ns2="{NS}"><return>1</return>' \
                "</ns2:WriteVehicleInfoResponse>"  # fmt: skip
    else:
        code = "soap:Server" if retry else "soap:Client"
        inner = f"<soap:Fault><faultcode>{code}</faultcode><faultstring>{escape(message)}" \
                "</faultstring></soap:Fault>"  # fmt: skip
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>{env}{inner}</soap:Body></soap:Envelope>'.encode()
    )
