"""JSON Schema export of the message contracts to configs/schemas/."""

import json
from pathlib import Path

from . import topics
from .models import (
    Alert,
    AnprCapture,
    Case,
    DeadLetter,
    Detection,
    DeviceAlert,
    Lead,
    Message,
    Reweigh,
    Violation,
    WimRecord,
)
from .water import AisRaw, AisReport, VesselCapture, WaterDetection, WaterViolation

TOPIC_MODELS: dict[str, type[Message]] = {
    topics.ROAD_WIM: WimRecord,
    topics.ROAD_ANPR: AnprCapture,
    topics.ROAD_REWEIGH: Reweigh,
    topics.DETECTIONS: Detection,
    topics.VIOLATIONS: Violation,
    topics.CASES: Case,
    topics.ALERTS: Alert,
    topics.LEADS: Lead,
    topics.WATER_AIS_RAW: AisRaw,
    topics.WATER_AIS: AisReport,
    topics.WATER_CAMERA: VesselCapture,
    topics.WATER_DETECTIONS: WaterDetection,
    topics.WATER_VIOLATIONS: WaterViolation,
}


def schemas() -> dict[str, str]:
    """File name → JSON Schema text for every topic (and the dead-letter envelope)."""
    out = {f"{topic}.schema.json": model for topic, model in TOPIC_MODELS.items()}
    out["dlq.schema.json"] = DeadLetter
    out["alerts.device.schema.json"] = DeviceAlert  # the other kind of message on `alerts`
    return {
        name: json.dumps(model.model_json_schema(), indent=2, ensure_ascii=False, sort_keys=True)
        + "\n"
        for name, model in out.items()
    }


def export_schemas(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in schemas().items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
