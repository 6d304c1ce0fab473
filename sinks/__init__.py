"""Everything that writes out: the case store, alerts, dead letters, blobs, metrics."""

from .blobs import BlobStore
from .casestore import CaseStore, case_id, database_away
from .stage import CaseStage, LeadSinkStage

__all__ = [
    "BlobStore",
    "CaseStage",
    "CaseStore",
    "LeadSinkStage",
    "case_id",
    "database_away",
]
