"""The contracts: messages on every topic, topic names, ids, the site registry."""

from .errors import (
    BrokerError,
    ConfigError,
    DatabaseError,
    OffsiteError,
    ServiceError,
    UnfinishedError,
    UsageError,
)
from .ids import case_id, derive_id
from .models import (
    GOODS_VEHICLE_TYPES,
    HARMLESS_FLAGS,
    HEAVY_PLATE_COLORS,
    MAX_AXLES,
    UNENFORCEABLE_FLAGS,
    Alert,
    AnprCapture,
    Case,
    DeadLetter,
    Detection,
    DeviceAlert,
    ImageRef,
    Lead,
    Message,
    Sighting,
    Violation,
    WimRecord,
)
from .registry import CalibrationCertificate, Device, Permit, Registry, Site
from .schema import export_schemas, schemas
from .topics import (
    ALERTS,
    ALL_TOPICS,
    CASES,
    DETECTIONS,
    LEADS,
    ROAD_ANPR,
    ROAD_WIM,
    VIOLATIONS,
    WHOLE_TOPICS,
    dlq,
)

__all__ = [
    # topics
    "ALERTS",
    "ALL_TOPICS",
    "CASES",
    "DETECTIONS",
    "GOODS_VEHICLE_TYPES",
    "HARMLESS_FLAGS",
    "HEAVY_PLATE_COLORS",
    "LEADS",
    "MAX_AXLES",
    "ROAD_ANPR",
    "ROAD_WIM",
    "UNENFORCEABLE_FLAGS",
    "VIOLATIONS",
    "WHOLE_TOPICS",
    # messages
    "Alert",
    "AnprCapture",
    # errors
    "BrokerError",
    # registry
    "CalibrationCertificate",
    "Case",
    "ConfigError",
    "DatabaseError",
    "DeadLetter",
    "Detection",
    "Device",
    "DeviceAlert",
    "ImageRef",
    "Lead",
    "Message",
    "OffsiteError",
    "Permit",
    "Registry",
    "ServiceError",
    "Sighting",
    "Site",
    "UnfinishedError",
    "UsageError",
    "Violation",
    "WimRecord",
    # helpers
    "case_id",
    "derive_id",
    "dlq",
    "export_schemas",
    "schemas",
]
