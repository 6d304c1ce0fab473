"""The evidence package of a waterway case: the same signed BagIt bag as a road case's
(evidence.bag writes both, so ``offsite evidence verify`` reads both alike), with a vessel's
payload instead of a road pass's. Layout of ``data/``::

    decision/violation.json  decision/detection.json  decision/basis.json  decision/versions.json
    ais/evidence.json        the AIS evidence the detection rests on (report ids, receivers,
                             the detector's evidence dict, quantities, reasons)
    registry/vessels.json  registry/site.json  registry/receivers.json
    images/<role>.jpg        the checkpoint camera's images, when the detection has a capture

There is no WIM measurement, device certificate, discretion baseline or composite: nothing was
weighed, and no baseline decides a waterway case (always ``review``, never a fine — the
waterway fines are ◐, DOMAIN.md). The AIS reports themselves are on ``water.ais`` (keyed by
MMSI); the package names them by report id and holds what the detection derived from them —
nothing is reconstructed here. Every byte above the custody log is a function of the
violation, the waterway registry, the images and the key: building twice gives identical files.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

from events.water import RegisteredVessel, WaterRegistry, WaterViolation

from .bag import (
    BlobSource,
    case_id,
    destination,
    image_files,
    software_version,
    tag_lines,
    write_bag,
)
from .signing import Signer, canonical_json

# what the package says of the AIS reports: where they are, since they are not copied in
AIS_REPORTS_NOTE = (
    "the AIS reports are named by report_id; they are on the water.ais topic (key: MMSI) "
    "as decoded from the receivers' NMEA"
)


def water_config_hash(waterways: WaterRegistry) -> str:
    """SHA-256 of the waterway registry's canonical JSON (configs/waterways.yaml as loaded)."""
    return hashlib.sha256(canonical_json(waterways.model_dump(mode="json"))).hexdigest()


def _json(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, indent=2).encode() + b"\n"


def _vessels(v: WaterViolation, reg: WaterRegistry | None) -> list[dict[str, Any]]:
    """The registry entries the detection names: by registered name, MMSI or ENI; each with
    what matched it (an identity case can name two vessels)."""
    det = v.detection
    found: dict[str, tuple[RegisteredVessel, list[str]]] = {}
    for vessel in reg.vessels if reg is not None else []:
        matched = [
            what for what, hit in (
                ("vessel_name", det.vessel_name is not None and vessel.name == det.vessel_name),
                ("mmsi", det.mmsi is not None and vessel.mmsi == det.mmsi),
                ("eni", det.eni is not None and vessel.eni == det.eni),
            ) if hit
        ]  # fmt: skip
        if matched:
            found[vessel.name] = (vessel, matched)
    return [{"matched_by": m, **x.model_dump(mode="json")} for x, m in found.values()]


def _site(v: WaterViolation, reg: WaterRegistry | None) -> dict[str, Any]:
    """The checkpoint, section, controlled section or zone the case is at (or the channel)."""
    if reg is None:
        return {"in_registry": False, "id": v.site_id}
    kinds: list[tuple[str, list[Any]]] = [
        ("checkpoint", list(reg.checkpoints)), ("monitored_section", list(reg.sections)),
        ("controlled_section", list(reg.controlled_sections)),
        ("no_dredging_zone", list(reg.no_dredging_zones)),
    ]  # fmt: skip
    for kind, items in kinds:
        for item in items:
            if item.id == v.site_id:
                return {"in_registry": True, "kind": kind, **item.model_dump(mode="json")}
    if v.site_id == "channel":  # identity findings along the whole fairway
        return {"in_registry": True, "kind": "channel", "id": "channel",
                "channel": [list(p) for p in reg.channel], "max_speed_kn": reg.max_speed_kn}  # fmt: skip
    return {"in_registry": False, "id": v.site_id}


def _receivers(v: WaterViolation, reg: WaterRegistry | None, site: dict[str, Any]) -> Any:
    """The receivers that heard the reports, and those the site relies on (whose health an
    AIS-off finding vouches for)."""
    heard = set(v.detection.receiver_ids)
    ids = sorted(heard | set(site.get("receiver_ids") or []))
    index = reg.receiver_index if reg is not None else {}
    return [
        {"id": rid, "heard_reports": rid in heard, "in_registry": rid in index,
         **(index[rid].model_dump(mode="json") if rid in index else {})}
        for rid in ids
    ]  # fmt: skip


def water_payload(
    violation: WaterViolation,
    waterways: WaterRegistry | None,
    blobs: BlobSource,
    *,
    document: bytes | None = None,
) -> dict[str, bytes]:
    """The files under ``data/`` (relative path → bytes). Blocking: reads and hashes images."""
    v, det = violation, violation.detection
    cid = case_id(v)
    site = _site(v, waterways)
    files = {
        "decision/violation.json": document if document is not None else v.to_json(),
        "decision/detection.json": _json(det.model_dump(mode="json")),
        "decision/basis.json": _json({
            "violation_code": v.violation_code,
            "legal_basis": v.legal_basis,
            "penalty_basis": v.penalty_basis,
            "outcome": v.outcome,
            "fine_cny": v.fine_cny,
            "enforceable": det.enforceable,
            "reasoning": v.reasoning,
        }),
        "decision/versions.json": _json({
            "software": software_version(),
            "detector": det.detector,
            "detector_version": det.detector_version,
            "rule": v.rule,
            "rule_version": v.rule_version,
            "waterways_configuration_sha256": water_config_hash(waterways) if waterways else None,
        }),
        "ais/evidence.json": _json({
            "mmsi": det.mmsi,
            "ais_name": det.ais_name,
            "eni": det.eni,
            "capture_id": det.capture_id,
            "hull_name": det.hull_name,
            "report_ids": det.report_ids,
            "receiver_ids": det.receiver_ids,
            "evidence": det.evidence,
            "quantities": det.quantities,
            "confidence": det.confidence,
            "reasons": v.reasons,
            "reports": AIS_REPORTS_NOTE,
        }),
        "registry/vessels.json": _json(_vessels(v, waterways)),
        "registry/site.json": _json(site),
        "registry/receivers.json": _json(_receivers(v, waterways, site)),
    }  # fmt: skip
    files.update({f"images/{n}": d for n, d in image_files(det.images, blobs, cid).items()})
    return dict(sorted(files.items()))


def water_bag_info(v: WaterViolation, signer: Signer, agency: str, oxum: str) -> bytes:
    det = v.detection
    vessel = det.vessel_name or det.ais_name or det.hull_name or "unidentified"
    return tag_lines({
        "Source-Organization": agency,
        "Issuing-Agency": agency,
        "Case-Id": case_id(v),
        "Violation-Id": v.violation_id,
        "Domain": "water",
        "Site": v.site_id,
        "Event-Time": v.ts.isoformat(),
        "Vessel": vessel,
        "MMSI": det.mmsi if det.mmsi is not None else "none",
        "Signing-Key-Id": signer.key_id,
        "Bagging-Date": v.ts.date().isoformat(),  # the event's day: a rebuild is byte-identical
        "Bag-Software-Agent": software_version(),
        "Payload-Oxum": oxum,
    })  # fmt: skip


def build_water_package(
    violation: WaterViolation,
    waterways: WaterRegistry | None,
    blobs: BlobSource,
    out_dir: Path,
    signer: Signer,
    agency: str,
    *,
    document: bytes | None = None,
    created_at: dt.datetime | None = None,
    actor: str = "offsite",
) -> Path:
    """Build, sign and return ``out_dir/<case_id>/`` for a waterway violation, with a
    ``created`` custody entry; idempotent as :func:`evidence.bag.build_package` (the same
    case id as the case store's). Blocking: call it through ``asyncio.to_thread``."""
    final = destination(out_dir, case_id(violation), violation.violation_id)
    if final.exists():
        return final
    files = water_payload(violation, waterways, blobs, document=document)
    return write_bag(
        final, files, lambda oxum: water_bag_info(violation, signer, agency, oxum), signer,
        created_at=created_at, actor=actor,
    )  # fmt: skip
