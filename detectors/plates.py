"""Chinese plate numbers: normalisation, and a second read from the plate image by OCR.

A plate (GA 36) is a province character, a letter, then five characters (ordinary), four and a
suffix such as 挂 (trailer), or six (new energy). Letters I and O are never issued, so a read
of them after the first letter is the digit 1 or 0.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Protocol

from .ocr import OcrEngine, decode

PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
_BODY = "[A-HJ-NP-Z0-9]"
PLATE = re.compile(rf"^[{PROVINCES}][A-HJ-NP-Z](?:{_BODY}{{5}}|{_BODY}{{4}}[挂学警]|{_BODY}{{6}})$")
_VARIANTS = str.maketrans({"掛": "挂", "學": "学", "O": "0", "I": "1"})
_SEPARATORS = re.compile(r"[\s·•.\-_:]")
_TAIL = re.compile(r"[A-HJ-NP-Z][A-HJ-NP-Z0-9OI]{4,6}[挂掛学學警]?$")
PROVINCE_WIDTH = 0.23  # the province character's share of a plate's width


@functools.lru_cache(maxsize=4096)
def normalise(text: str | None) -> str | None:
    """The plate in canonical form, or None when ``text`` is not a valid plate. Cached: the
    detection stage asks for each capture's plate three or four times (status, registry, drift
    watch, document); ``normalise.__wrapped__`` is the function itself."""
    if not text:
        return None
    s = _SEPARATORS.sub("", text).upper()
    if len(s) < 3:
        return None
    s = s[:2] + s[2:].translate(_VARIANTS)
    s = s.replace("掛", "挂")
    return s if PLATE.match(s) else None


@dataclass(frozen=True)
class PlateRead:
    plate: str | None  # normalised, None when nothing valid was read
    confidence: float
    raw: str | None


class PlateReader(Protocol):
    def load(self) -> None:
        """Load the model now (blocking: call off the event loop), not on the first read."""
        ...

    def read(self, jpeg: bytes) -> PlateRead:
        """Blocking: call off the event loop."""
        ...


class OcrPlateReader:
    """rapidocr (PP-OCR models shipped in the wheel) on a plate crop, recognition only."""

    def __init__(self, engine: OcrEngine | None = None) -> None:
        self.engine = engine or OcrEngine()

    def load(self) -> None:
        self.engine.load()

    def read(self, jpeg: bytes) -> PlateRead:
        img = decode(jpeg)
        if img is None:
            return PlateRead(None, 0.0, None)
        with self.engine.use() as engine:  # one engine, used from worker threads one at a time
            result = engine(img, use_det=False, use_cls=False)
            texts, scores = result.txts or (), result.scores or ()
            if not texts:
                return PlateRead(None, 0.0, None)
            raw = "".join(texts)
            plate, score = normalise(raw), float(min(scores))
            tail = _TAIL.search(_SEPARATORS.sub("", raw).upper())
            if plate is None and tail is not None:
                # A recogniser often garbles the province character of a whole plate (湘 → 相)
                # but reads it alone: read the character's own crop and join the two reads.
                crop = img[:, : max(1, int(img.shape[1] * PROVINCE_WIDTH))]
                head = engine(crop, use_det=False, use_cls=False)
                if head.txts:
                    plate = normalise(head.txts[0][:1] + tail.group())
                    score = min(score, float(min(head.scores)))
        return PlateRead(plate, score, raw)


def agree(camera: str | None, second: PlateRead, min_confidence: float) -> str | None:
    """None when the second read confirms the camera's; otherwise why the plate is uncertain."""
    cam = normalise(camera)
    if cam is None:
        return f"camera read {camera!r} is not a valid plate"
    if second.plate is None:
        return f"second read found no valid plate ({second.raw or 'nothing'})"
    if second.confidence < min_confidence:
        return f"second read {second.plate} has low confidence {second.confidence:.2f}"
    if second.plate != cam:
        return f"camera read {cam}, second read {second.plate}"
    return None
