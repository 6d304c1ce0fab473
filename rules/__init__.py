"""Penalty rules: discretion baselines applied to detections → violations."""

from .baseline import Baseline, problems
from .engine import Decision, Facts, decide, fine_of
from .stage import History, NoHistory, RulesStage, attach, facts_of, violation_of

__all__ = [
    "Baseline",
    "Decision",
    "Facts",
    "History",
    "NoHistory",
    "RulesStage",
    "attach",
    "decide",
    "facts_of",
    "fine_of",
    "problems",
    "violation_of",
]
