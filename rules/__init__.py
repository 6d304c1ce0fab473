"""Penalty rules: detections → violations (national rule now; discretion baselines next)."""

from .national import decide, penalty
from .stage import RulesStage

__all__ = ["RulesStage", "decide", "penalty"]
