"""The composite image (合成图): scene, plate close-up, side view and a Chinese caption in one JPEG.

OpenCV places and scales the photos; Pillow draws the text, because OpenCV's ``putText`` cannot
draw CJK. Text is rendered into small patches that are copied onto the canvas; the patches of
the strings seen last are cached (labels, and the values that repeat: site, device, certificate,
limit), so a composite costs about one decode per photo, a few new strings and one JPEG encode —
the full canvas never goes through Pillow.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from events import Registry, Violation

# Debian fonts-wqy-zenhei (installed by `make`).
FONT_PATHS = (
    Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),
    Path("/usr/share/fonts/wqy-zenhei/wqy-zenhei.ttc"),
)
DIRECTIONS = {"N": "北向", "S": "南向", "E": "东向", "W": "西向"}
PLATE_COLORS = {"blue": "蓝", "yellow": "黄", "green": "绿", "yellow_green": "黄绿",
                "white": "白", "black": "黑"}  # fmt: skip
SCENE_ROLES = ("overview", "front", "rear")  # the first one present is the scene

WIDTH, TITLE_H, PANEL_H, SCENE_W = 1440, 56, 540, 960
PLATE_H = 210
ROW_H, CAPTION_PAD = 46, 18
ROWS = 6
HEIGHT = TITLE_H + PANEL_H + 2 * CAPTION_PAD + ROWS * ROW_H
BACKGROUND = (32, 32, 32)  # BGR
PLACEHOLDER = (70, 70, 70)


@lru_cache(maxsize=4)
def _font(size: int) -> ImageFont.FreeTypeFont:
    for path in FONT_PATHS:
        if path.exists():
            return ImageFont.truetype(str(path), size)
    raise FileNotFoundError("no CJK font: install Debian's fonts-wqy-zenhei (`make` does this)")


def caption(violation: Violation, registry: Registry) -> list[tuple[str, str]]:
    """The caption's (label, value) rows, in the order they are drawn."""
    det = violation.detection
    site = registry.site(violation.site_id)
    ts = violation.ts
    offset = ts.strftime("%z")
    plate = violation.plate or "未识别"
    if violation.plate_color:
        plate += f"（{PLATE_COLORS.get(violation.plate_color, violation.plate_color)}牌）"
    over = f"{violation.overload_kg} kg"
    if violation.tolerance_kg:
        over += f"（已扣除允差 {violation.tolerance_kg} kg）"
    return [
        ("地点", site.name if site else violation.site_id),
        ("方向", DIRECTIONS.get(site.direction, site.direction) if site else "—"),
        ("车道", str(det.lane)),
        ("时间", f"{ts:%Y-%m-%d %H:%M:%S} (UTC{offset[:3]}:{offset[3:]})"),
        ("车牌", plate),
        ("轴数", str(det.axle_count)),
        ("实测总质量", f"{violation.measured_kg} kg"),
        ("限值", f"{violation.limit_kg} kg"),
        ("超限", over),
        ("设备编号", det.device_id),
        ("检定证书号", det.certificate_number or "无"),
        ("记录编号", violation.violation_id),
    ]


def _decode(data: bytes | None) -> np.ndarray | None:
    if data is None:
        return None
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


# Patches kept: a value patch is up to ~70 KiB of memory, and most values are new per case
# (time, plate, weights, record id): 4,096 of them, filled by some 800 cases, held ~260 MiB, and a
# worker's memory grew with its input (bench/soak.py). 256 hold every label and the values that
# repeat across recent cases; which patches are cached never changes the image.
TEXT_CACHE = 256


@lru_cache(maxsize=TEXT_CACHE)
def _text(text: str, size: int, background: tuple[int, int, int]) -> np.ndarray:
    """``text`` in white on ``background`` as a BGR patch one line high (ascent + descent, so
    patches of one size share a baseline). Cached (``TEXT_CACHE``): the labels always repeat,
    and so do many caption values (site, device, certificate, limit)."""
    font = _font(size)
    left, _, right, _ = font.getbbox(text)
    ascent, descent = font.getmetrics()
    img = Image.new("RGB", (max(1, math.ceil(right - left)), ascent + descent), background[::-1])
    ImageDraw.Draw(img).text((-left, 0), text, font=font, fill=(255, 255, 255))
    patch = cv2.cvtColor(np.asarray(img), cv2.COLOR_RGB2BGR)
    patch.flags.writeable = False
    return patch


def _paste(canvas: np.ndarray, patch: np.ndarray, x: int, y: int) -> int:
    """Copy ``patch`` onto ``canvas`` at (x, y), clipped; returns the x just after it."""
    h = min(patch.shape[0], canvas.shape[0] - y)
    w = min(patch.shape[1], canvas.shape[1] - x)
    canvas[y : y + h, x : x + w] = patch[:h, :w]
    return x + patch.shape[1]


@lru_cache(maxsize=1)
def _template() -> np.ndarray:
    canvas = np.empty((HEIGHT, WIDTH, 3), np.uint8)
    canvas[:] = BACKGROUND
    _paste(canvas, _text("超限运输车辆非现场执法 证据合成图", 32, BACKGROUND), 16, 10)
    canvas.flags.writeable = False
    return canvas


def _fit(canvas: np.ndarray, img: np.ndarray, x: int, y: int, w: int, h: int) -> None:
    """Scale ``img`` to fit the box (aspect kept) and centre it there."""
    ih, iw = img.shape[:2]
    scale = min(w / iw, h / ih)
    nw, nh = max(1, int(iw * scale)), max(1, int(ih * scale))
    if (nw, nh) == (iw, ih):  # the simulator's scene is exactly panel-sized
        small = img
    else:
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        small = cv2.resize(img, (nw, nh), interpolation=interp)
    ox, oy = x + (w - nw) // 2, y + (h - nh) // 2
    canvas[oy : oy + nh, ox : ox + nw] = small


def render_composite(
    violation: Violation, registry: Registry, images: Mapping[str, bytes], *, quality: int = 90
) -> bytes:
    """The composite JPEG of one violation. ``images`` maps a capture role (``plate``,
    ``overview``, ``side``…) to its JPEG bytes; a missing scene or plate becomes a grey panel
    labelled 无图像, a side view is drawn only when there is one. Blocking (CPU): call it through
    ``asyncio.to_thread`` from async code."""
    canvas = _template().copy()
    scene_role = next((r for r in SCENE_ROLES if r in images), "overview")
    panels = [  # (role, label, x, y, w, h)
        (scene_role, "全景", 0, TITLE_H, SCENE_W, PANEL_H),
        ("plate", "车牌特写", SCENE_W, TITLE_H, WIDTH - SCENE_W, PLATE_H),
    ]
    if "side" in images:
        panels.append(
            ("side", "侧面", SCENE_W, TITLE_H + PLATE_H, WIDTH - SCENE_W, PANEL_H - PLATE_H)
        )
    for role, label, x, y, w, h in panels:
        img = _decode(images.get(role))
        if img is None:
            canvas[y + 4 : y + h - 4, x + 4 : x + w - 4] = PLACEHOLDER
            mark = _text("无图像", 48, PLACEHOLDER)
            _paste(canvas, mark, x + (w - mark.shape[1]) // 2, y + (h - mark.shape[0]) // 2)
        else:
            _fit(canvas, img, x, y, w, h)
        _paste(canvas, _text(f" {label} ", 22, (0, 0, 0)), x + 6, y + 6)
    y0 = TITLE_H + PANEL_H + CAPTION_PAD
    for i, (label, value) in enumerate(caption(violation, registry)):
        x, y = 24 + (i // ROWS) * (WIDTH // 2), y0 + (i % ROWS) * ROW_H
        x = _paste(canvas, _text(f"{label}：", 30, BACKGROUND), x, y)
        _paste(canvas, _text(value, 30, BACKGROUND), x, y)
    ok, buf = cv2.imencode(".jpg", canvas, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()
