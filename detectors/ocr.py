"""One rapidocr engine (PP-OCR models shipped in the wheel), loaded once, used by one thread at
a time: the plate second read (detectors.plates) and the hull-name read (detectors.hull)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

# The detector scales an image so that its longer side is this many pixels: rapidocr's default
# (the shorter side up to 736) makes a 960×540 frame 1308×736 and costs ~1 s on a shared core;
# 640 reads a name painted on a hull as well, in a tenth of the time (tests/unit/test_hull.py).
DET_SIDE = 640


class OcrEngine:
    def __init__(self, det_side: int = DET_SIDE) -> None:
        self.det_side = det_side
        self._engine: Any = None
        self._lock = threading.Lock()

    def load(self) -> None:
        """Load the models now (blocking: call off the event loop), not on the first read."""
        with self._lock:
            self._load()

    def _load(self) -> None:
        if self._engine is None:
            from rapidocr import RapidOCR

            self._engine = RapidOCR(
                params={
                    # its model-loading chatter at INFO, and a WARNING for every frame with no
                    # text (most of a checkpoint's empty water), are noise in a pipeline's log
                    "Global.log_level": "error",
                    "Det.limit_type": "max",
                    "Det.limit_side_len": self.det_side,
                }
            )

    @contextmanager
    def use(self) -> Iterator[Any]:
        """The loaded engine, held by this thread until the block ends."""
        with self._lock:
            self._load()
            yield self._engine


def decode(jpeg: bytes) -> np.ndarray | None:
    """A BGR image from JPEG (or PNG) bytes, None when they are not an image."""
    import cv2

    return cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
