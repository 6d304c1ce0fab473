"""The vessel name painted on a hull, read by OCR from a checkpoint camera's image.

Unlike the plate's second read (a crop with one line of text), a checkpoint frame shows the
whole scene: rapidocr's text detector finds the lines, its recogniser reads them, and the line
that looks like an inland vessel's name wins. Chinese inland names are 省简称 + 地名 + 类型 +
编号 (湘长沙货1001, 湘湘潭采砂008): here, at least three Chinese characters, then Chinese
characters or digits. A read that finds none is "no hull name", never a mismatch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol

from .ocr import OcrEngine, decode
from .water_detect import normalise_name

NAME = re.compile(r"^[\u4e00-\u9fff]{3,}[\u4e00-\u9fff0-9]*$")
# recogniser confusions in the number after the characters: letters that look like digits
_DIGITS = str.maketrans({"O": "0", "D": "0", "Q": "0", "I": "1", "L": "1", "Z": "2", "S": "5",
                         "B": "8"})  # fmt: skip
_TAIL = re.compile(r"^([\u4e00-\u9fff]{3,})([0-9A-Z]*)$")


@dataclass(frozen=True)
class HullRead:
    name: str | None  # normalised (detectors.water_detect.normalise_name), None: nothing valid
    confidence: float
    raw: str | None  # every line read, " | "-joined


class HullReader(Protocol):
    def load(self) -> None:
        """Load the model now (blocking: call off the event loop), not on the first read."""
        ...

    def read(self, jpeg: bytes) -> HullRead:
        """Blocking: call off the event loop."""
        ...


def vessel_name(text: str | None) -> str | None:
    """``text`` as a vessel name, normalised, or None when it does not look like one."""
    s = normalise_name(text)
    if s is None:
        return None
    m = _TAIL.match(s)
    if m is not None:
        s = m.group(1) + m.group(2).translate(_DIGITS)
    return s if NAME.match(s) else None


def _rows(
    boxes: Any, texts: tuple[str, ...], scores: tuple[float, ...]
) -> list[tuple[str, float, float]]:
    """The lines read, joined left to right where the detector split one row of text in
    pieces: (text, lowest score, height) per row."""
    items = []
    for box, text, score in zip(boxes, texts, scores, strict=True):
        ys, xs = [float(p[1]) for p in box], [float(p[0]) for p in box]
        items.append((min(ys), max(ys), min(xs), text, float(score)))
    items.sort(key=lambda it: (it[0], it[2]))
    rows: list[list[tuple[float, float, float, str, float]]] = []
    for it in items:
        last = rows[-1] if rows else None
        if last is not None and it[0] < (last[0][0] + last[0][1]) / 2 < it[1]:
            last.append(it)
        else:
            rows.append([it])
    out = []
    for row in rows:
        row.sort(key=lambda it: it[2])
        text = "".join(it[3] for it in row)
        out.append((text, min(it[4] for it in row), max(it[1] - it[0] for it in row)))
    return out


class OcrHullReader:
    """rapidocr's detector and recogniser on a whole checkpoint frame."""

    def __init__(self, engine: OcrEngine | None = None) -> None:
        self.engine = engine or OcrEngine()

    def load(self) -> None:
        self.engine.load()

    def read(self, jpeg: bytes) -> HullRead:
        img = decode(jpeg)
        if img is None:
            return HullRead(None, 0.0, None)
        with self.engine.use() as engine:  # one engine, used from worker threads one at a time
            result = engine(img, use_cls=False)
        texts, scores = tuple(result.txts or ()), tuple(result.scores or ())
        if not texts:
            return HullRead(None, 0.0, None)
        raw = " | ".join(texts)
        best: tuple[float, float, str] | None = None  # (score, height, name)
        for text, score, height in _rows(result.boxes, texts, scores):
            name = vessel_name(text)
            if name is not None and (best is None or (score, height) > best[:2]):
                best = (score, height, name)
        if best is None:
            return HullRead(None, 0.0, raw)
        return HullRead(best[2], round(best[0], 4), raw)
