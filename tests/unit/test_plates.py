"""Plate normalisation and the OCR second read, on rendered and on real plate images."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from detectors.plates import OcrPlateReader, PlateRead, agree, normalise
from sim.images import jpeg, render_plate

DATA = Path(__file__).resolve().parents[1] / "data" / "hyperlpr"
READER = OcrPlateReader()


@pytest.mark.parametrize(
    ("text", "plate"),
    [
        ("湘A·12345", "湘A12345"),
        ("湘C·1234掛", "湘C1234挂"),  # the traditional form OCR often returns
        ("粤B 6H92O", "粤B6H920"),  # no letter O is issued: it is a zero
        ("皖K·D01833", "皖KD01833"),  # new energy: six after the letter
        ("湘AI2345", "湘A12345"),
        ("京A1234", None),  # too short
        ("湘O12345", None),  # O is never the issuing letter
        ("相A12345", None),  # not a province
        ("", None),
    ],
)
def test_normalise(text: str, plate: str | None) -> None:
    assert normalise(text) == plate


@given(st.lists(st.text(alphabet="湘粤京相A1I0O5·- 掛挂学", max_size=10), max_size=30))
def test_the_cached_normalise_agrees_with_the_function_itself(texts: list[str]) -> None:
    # the detection stage's hot path asks the cache; the plain function is its reference twin
    for text in texts + texts:
        assert normalise(text) == normalise.__wrapped__(text)


@pytest.mark.parametrize(
    ("plate", "color"),
    [("湘A12345", "yellow"), ("湘C1234挂", "yellow"), ("鄂J9K31B", "yellow"),
     ("粤B6H920", "blue"), ("贵A0L8Q2", "yellow"), ("皖KD01833", "green")],
)  # fmt: skip
def test_clean_rendered_plates_are_confirmed(plate: str, color: str) -> None:
    read = READER.read(jpeg(render_plate(plate, color)))
    assert read.plate == plate
    assert agree(plate, read, 0.9) is None


def _blur(img: np.ndarray) -> np.ndarray:
    return cv2.GaussianBlur(img, (0, 0), 25)


def _night_blur(img: np.ndarray) -> np.ndarray:
    return (cv2.GaussianBlur(img, (0, 0), 9) * 0.1).astype(np.uint8)


def _mud(img: np.ndarray) -> np.ndarray:
    return cv2.rectangle(img.copy(), (150, 20), (330, 120), (60, 60, 60), -1)


@pytest.mark.parametrize("degrade", [_blur, _night_blur, _mud])
def test_degraded_plates_are_flagged_not_confirmed(degrade: object) -> None:
    img = degrade(render_plate("湘A12345", "yellow"))  # type: ignore[operator]
    read = READER.read(jpeg(img))
    assert read.plate != "湘A12345" or read.confidence < 0.9
    assert agree("湘A12345", read, 0.9) is not None


def test_low_light_alone_is_still_read() -> None:
    dark = (render_plate("湘A12345", "yellow") * 0.05).astype(np.uint8)
    assert agree("湘A12345", READER.read(jpeg(dark)), 0.9) is None


@pytest.mark.parametrize("path", sorted(DATA.glob("_*.jpg")), ids=lambda p: p.stem)
def test_real_crops_never_confirm_a_wrong_plate(path: Path) -> None:
    truth = path.stem.split("_")[-1]
    read = READER.read(path.read_bytes())
    assert read.plate in (truth, None)  # right, or no valid plate at all
    wrong = truth[:-1] + ("1" if truth[-1] != "1" else "2")
    assert agree(wrong, read, 0.9) is not None  # a camera's misread is never confirmed
    if read.plate == truth and read.confidence >= 0.9:
        assert agree(truth, read, 0.9) is None


def test_disagreement_says_both_reads() -> None:
    assert agree("湘A12845", PlateRead("湘A12345", 0.99, "湘A·12345"), 0.9) == (
        "camera read 湘A12845, second read 湘A12345"
    )
    assert "low confidence 0.50" in (agree("湘A12345", PlateRead("湘A12345", 0.5, "x"), 0.9) or "")
