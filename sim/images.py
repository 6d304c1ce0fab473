"""Real JPEG images for simulated captures: a rendered Chinese plate and a roadside scene."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

# Debian fonts-wqy-zenhei (installed by `make`): OpenCV's putText cannot draw CJK.
FONT_PATHS = (
    Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),
    Path("/usr/share/fonts/wqy-zenhei/wqy-zenhei.ttc"),
)

PLATE_COLORS = {  # background, text (RGB)
    "blue": ((20, 70, 190), (255, 255, 255)),
    "yellow": ((245, 195, 20), (10, 10, 10)),
    "green": ((120, 220, 140), (10, 10, 10)),
    "yellow_green": ((200, 230, 80), (10, 10, 10)),
    "white": ((245, 245, 245), (10, 10, 10)),
    "black": ((15, 15, 15), (255, 255, 255)),
}


@lru_cache(maxsize=32)
def cjk_font(size: int) -> ImageFont.FreeTypeFont:
    for path in FONT_PATHS:
        if path.exists():
            return ImageFont.truetype(str(path), size)
    raise FileNotFoundError("no CJK font: install Debian's fonts-wqy-zenhei (`make` does this)")


def render_plate(plate: str, color: str, *, degraded: bool = False) -> np.ndarray:
    """A 440×140 BGR plate. ``degraded`` blurs and darkens it past reading (mud, night)."""
    bg, fg = PLATE_COLORS[color]
    img = Image.new("RGB", (440, 140), bg)
    draw = ImageDraw.Draw(img)
    draw.rectangle((6, 6, 433, 133), outline=fg, width=4)
    text = plate[:2] + "·" + plate[2:]
    size = 86
    while True:  # the characters keep clear of the frame, as on a real plate
        font = cjk_font(size)
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        if right - left <= 380 or size <= 40:
            break
        size -= 4
    draw.text(((440 - (right - left)) / 2 - left, (140 - (bottom - top)) / 2 - top), text,
              fill=fg, font=font)  # fmt: skip
    bgr = cv2.cvtColor(np.asarray(img), cv2.COLOR_RGB2BGR)
    if degraded:
        bgr = cv2.GaussianBlur(bgr, (0, 0), 9)
        bgr = (bgr * 0.25).astype(np.uint8)
    return bgr


def render_scene(plate_img: np.ndarray, axle_count: int, lane: int, caption: str) -> np.ndarray:
    """A 960×540 overview: road, lane marks, a truck with ``axle_count`` wheels and the plate."""
    img = np.full((540, 960, 3), (90, 90, 90), np.uint8)
    img[:140] = (200, 170, 120)  # sky
    for x in range(0, 960, 120):
        cv2.rectangle(img, (x, 460), (x + 60, 470), (230, 230, 230), -1)
    x0 = 80 + 40 * lane
    cv2.rectangle(img, (x0, 200), (x0 + 200, 420), (40, 60, 160), -1)  # cab
    cv2.rectangle(img, (x0 + 210, 160), (x0 + 760, 420), (70, 110, 70), -1)  # body
    for i in range(axle_count):
        cx = x0 + 60 + i * (660 // max(axle_count - 1, 1))
        cv2.circle(img, (cx, 440), 34, (20, 20, 20), -1)
    small = cv2.resize(plate_img, (220, 70))
    img[330:400, x0 - 10 : x0 + 210] = small
    cv2.putText(img, caption, (20, 40), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (255, 255, 255), 2)
    return img


def jpeg(img: np.ndarray, quality: int = 88) -> bytes:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()
