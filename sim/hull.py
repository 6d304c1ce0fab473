"""Real JPEG images of a vessel's side, its Chinese name painted on the hull, for simulated
waterway checkpoint captures (过境留图).

Each image is drawn from a seed: hull and superstructure colours, lighting, where the vessel is
in the frame, a slight perspective and roll, blur and sensor noise all vary with it, and the
same name and seed give the same bytes. The name is painted large, as inland vessels carry it
(white on a dark hull, black on a light one), so the picture is realistic but readable.
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image, ImageDraw

from .images import cjk_font, jpeg

WIDTH, HEIGHT = 960, 540
HORIZON = 190  # the far bank's foot: sky and bank above, water below

# hull colour (RGB) → the paint of its name
HULLS: tuple[tuple[tuple[int, int, int], tuple[int, int, int]], ...] = (
    ((30, 40, 60), (245, 245, 240)),  # dark blue-black
    ((120, 30, 25), (250, 250, 245)),  # oxide red
    ((40, 70, 45), (245, 245, 240)),  # dark green
    ((200, 200, 195), (15, 15, 20)),  # light grey
    ((225, 215, 190), (20, 20, 25)),  # cream
    ((60, 90, 140), (250, 250, 250)),  # steel blue
)
CABINS: tuple[tuple[int, int, int], ...] = ((235, 235, 230), (210, 215, 220), (240, 230, 200))


def render_hull(name: str, *, seed: int, quality: int = 85) -> bytes:
    """A 960×540 JPEG of a vessel passing a checkpoint, ``name`` painted on its hull."""
    return jpeg(hull_image(name, seed=seed), quality)


def hull_image(name: str, *, seed: int) -> np.ndarray:
    """The BGR picture :func:`render_hull` encodes (drawn in RGB, converted at the end)."""
    rng = np.random.default_rng(seed)
    img = _background(rng)
    hull_rgb, paint = HULLS[int(rng.integers(len(HULLS)))]
    # the hull: long and low, bow to one side, sized to the name it carries
    mask, text_w, text_h = _text_mask(name, int(rng.integers(52, 66)))
    hull_w = min(WIDTH - 40, int(text_w * rng.uniform(1.45, 1.7)))
    hull_h = int(text_h * rng.uniform(1.9, 2.2))
    x0 = int(rng.integers(20, max(21, WIDTH - hull_w - 20)))
    deck = int(rng.integers(HORIZON + 70, HORIZON + 130))
    water = deck + hull_h
    bow_right = bool(rng.integers(2))
    bow = int(hull_w * 0.12)
    if bow_right:
        shape = [(x0, deck), (x0 + hull_w, deck - 8), (x0 + hull_w - bow, water), (x0 + 10, water)]
    else:
        shape = [(x0, deck - 8), (x0 + hull_w, deck), (x0 + hull_w - 10, water), (x0 + bow, water)]
    cv2.fillPoly(img, [np.array(shape, np.int32)], hull_rgb, cv2.LINE_AA)
    stripe = _rgb(np.array(hull_rgb) + 60)
    cv2.rectangle(img, (x0 + bow, deck), (x0 + hull_w - bow, deck + 6), stripe, -1)  # gunwale
    # superstructure aft: a wheelhouse with windows and a mast
    cabin = CABINS[int(rng.integers(len(CABINS)))]
    cab_w = int(hull_w * rng.uniform(0.18, 0.25))
    cab_x = x0 + 20 if bow_right else x0 + hull_w - 20 - cab_w
    cab_top = deck - int(rng.integers(90, 130))
    cv2.rectangle(img, (cab_x, cab_top), (cab_x + cab_w, deck), cabin, -1)
    cv2.rectangle(img, (cab_x - 8, cab_top - 10), (cab_x + cab_w + 8, cab_top), (90, 90, 95), -1)
    pane = (cab_w - 16) // 4
    for k in range(4):
        wx = cab_x + 8 + k * pane
        cv2.rectangle(img, (wx, cab_top + 12), (wx + pane - 6, cab_top + 38), (40, 60, 80), -1)
    mast_x = cab_x + cab_w // 2
    cv2.line(img, (mast_x, cab_top - 10), (mast_x, cab_top - 60), (60, 60, 60), 4)
    # cargo hold forward: a low coaming
    hold_x0 = cab_x + cab_w + 20 if bow_right else x0 + bow + 10
    hold_x1 = x0 + hull_w - bow - 10 if bow_right else cab_x - 20
    if hold_x1 > hold_x0:
        cv2.rectangle(img, (hold_x0, deck - 24), (hold_x1, deck), (70, 70, 70), -1)
    # the name, painted on the hull between the gunwale and the waterline
    h, w = mask.shape
    tx = max(0, min(WIDTH - w, x0 + (hull_w - w) // 2 + int(rng.integers(-20, 21))))
    ty = deck + (hull_h - h) // 2 + 3
    roi = img[ty : ty + h, tx : tx + w]
    alpha = cv2.merge([mask] * 3)
    roi[:] = cv2.add(cv2.multiply(roi, 255 - alpha, scale=1 / 255),
                     cv2.multiply(np.full_like(roi, paint), alpha, scale=1 / 255))  # fmt: skip
    return _camera(cv2.cvtColor(img, cv2.COLOR_RGB2BGR), rng)


def _text_mask(text: str, size: int) -> tuple[np.ndarray, int, int]:
    """``text`` in the CJK font as a coverage mask (0–255) cropped to its ink, and its size."""
    font = cjk_font(size)
    left, top, right, bottom = (int(v) for v in font.getbbox(text))
    canvas = Image.new("L", (right - left, bottom - top), 0)
    ImageDraw.Draw(canvas).text((-left, -top), text, fill=255, font=font)
    return np.asarray(canvas), right - left, bottom - top


def _background(rng: np.random.Generator) -> np.ndarray:
    """Sky, a green far bank, and grey-green river water with ripples (RGB)."""
    img = np.empty((HEIGHT, WIDTH, 3), np.uint8)
    sky_top = np.array([120, 160, 210]) + rng.integers(-20, 21, 3)
    sky_low = np.array([200, 215, 230]) + rng.integers(-15, 16, 3)
    f = np.linspace(0, 1, HORIZON - 30)[:, None]
    sky = np.clip(sky_top * (1 - f) + sky_low * f, 0, 255).astype(np.uint8)
    img[: HORIZON - 30] = cv2.resize(sky[:, None, :], (WIDTH, HORIZON - 30))
    bank = _rgb(np.array([70, 100, 60]) + rng.integers(-15, 16, 3))
    cv2.rectangle(img, (0, HORIZON - 30), (WIDTH, HORIZON), bank, -1)
    water = np.array([95, 115, 105]) + rng.integers(-20, 21, 3)
    cv2.rectangle(img, (0, HORIZON), (WIDTH, HEIGHT), _rgb(water), -1)
    light, dark = _rgb(water + 25), _rgb(water - 25)
    for _ in range(60):  # ripples: short light and dark strokes, longer near the camera
        y = int(rng.integers(HORIZON + 5, HEIGHT))
        x = int(rng.integers(0, WIDTH))
        length = int(10 + (y - HORIZON) * rng.uniform(0.1, 0.3))
        cv2.line(img, (x, y), (x + length, y), light if rng.integers(2) else dark, 2)
    return img


def _rgb(v: np.ndarray) -> tuple[int, int, int]:
    r, g, b = (int(c) for c in np.clip(v, 0, 255))
    return r, g, b


def _camera(bgr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """What the checkpoint camera makes of the scene: a slight perspective and roll, lighting,
    blur and sensor noise."""
    d = 0.04 * min(WIDTH, HEIGHT)
    src = np.array([[0, 0], [WIDTH, 0], [WIDTH, HEIGHT], [0, HEIGHT]], np.float32)
    dst = (src + rng.uniform(-d, d, (4, 2))).astype(np.float32)
    m = cv2.getPerspectiveTransform(src, dst)
    bgr = cv2.warpPerspective(bgr, m, (WIDTH, HEIGHT), borderMode=cv2.BORDER_REPLICATE)
    gain, bias = rng.uniform(0.75, 1.15), rng.uniform(-20, 20)
    bgr = cv2.convertScaleAbs(bgr, alpha=gain, beta=bias)
    sigma = rng.uniform(0.3, 1.2)
    bgr = cv2.GaussianBlur(bgr, (0, 0), sigma)
    # sensor noise, drawn at half the resolution and scaled up (cheap, and grainy)
    noise = rng.normal(0, rng.uniform(2, 6), (HEIGHT // 2, WIDTH // 2)).astype(np.float32)
    up, down = (
        cv2.resize(cv2.merge([cv2.convertScaleAbs(part)] * 3), (WIDTH, HEIGHT),
                   interpolation=cv2.INTER_NEAREST)
        for part in (np.maximum(noise, 0), np.minimum(noise, 0))
    )  # fmt: skip
    return cv2.subtract(cv2.add(bgr, up), down)


def blank_water(*, seed: int, quality: int = 85) -> bytes:
    """A checkpoint frame with no vessel in it: sky, bank and water only (nothing to read)."""
    rng = np.random.default_rng(seed)
    bgr = cv2.cvtColor(_background(rng), cv2.COLOR_RGB2BGR)
    return jpeg(_camera(bgr, rng), quality)


__all__ = ["blank_water", "hull_image", "render_hull"]
