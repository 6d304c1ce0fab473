"""Everything that writes out: the case store, alerts, dead letters, blobs, metrics."""

from .blobs import BlobStore
from .casestore import CaseStore, case_id
from .stage import CaseStage

__all__ = ["BlobStore", "CaseStage", "CaseStore", "case_id"]
