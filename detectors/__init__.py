"""Detectors: raw topics → detections, over columnar batches, each with a reference twin."""

from .match import Match, Matcher
from .overload import WimColumns, detect, detect_one
from .stage import DetectionStage

__all__ = ["DetectionStage", "Match", "Matcher", "WimColumns", "detect", "detect_one"]
