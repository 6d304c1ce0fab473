"""Hull images with painted Chinese names, the hull-name OCR read, and the waterway stage using
it: a matching name associates cleanly, a different name is an identity finding, and an
unreadable, uncertain or missing image is no hull name (never a mismatch)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from detectors.hull import HullRead, OcrHullReader, _rows, vessel_name
from detectors.water_stage import WaterDetectionStage
from events.models import ImageRef
from events.water import VesselCapture
from sim.hull import HEIGHT, WIDTH, blank_water, render_hull
from sinks import BlobStore
from tests.unit.test_water_detect import REG, clean_pass
from tests.unit.test_water_stage import feed

READER = OcrHullReader()
REGISTERED = [v.name for v in REG.vessels]
OTHERS = ["皖芜湖货3307", "鄂武汉货5521", "赣九江油0736", "苏南京客12", "湘衡阳货8890",
          "川宜宾货0042", "湘常德采砂103", "湘益阳拖026", "渝万州货7788"]  # fmt: skip


def test_a_hull_image_is_a_modest_jpeg_the_same_for_the_same_seed() -> None:
    a = render_hull("湘长沙货1001", seed=7)
    assert a[:3] == b"\xff\xd8\xff" and a[-2:] == b"\xff\xd9" and len(a) < 150_000
    img = cv2.imdecode(np.frombuffer(a, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None and img.shape == (HEIGHT, WIDTH, 3)
    assert render_hull("湘长沙货1001", seed=7) == a
    assert render_hull("湘长沙货1001", seed=8) != a
    assert render_hull("湘岳阳货2002", seed=7) != a


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("湘长沙货1001", "湘长沙货1001"),
        ("湘长沙货 1001", "湘长沙货1001"),
        ("湘长沙货１００１", "湘长沙货1001"),  # full-width digits
        ("湘长沙货1O0l", "湘长沙货1001"),  # letters read for digits after the characters
        ("湘湘潭采砂008", "湘湘潭采砂008"),
        ("中国", None),  # too short for a vessel's name
        ("ABC123", None),
        ("", None),
    ],
)
def test_vessel_name(text: str, name: str | None) -> None:
    assert vessel_name(text) == name


def test_a_name_the_detector_split_is_joined_along_its_row() -> None:
    def box(x0: int, y0: int, x1: int, y1: int) -> list[list[int]]:
        return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]

    boxes = [box(300, 100, 400, 140), box(100, 102, 290, 141), box(100, 300, 200, 320)]
    rows = _rows(boxes, ("1001", "湘长沙货", "中国"), (0.9, 0.95, 0.8))
    assert rows == [("湘长沙货1001", 0.9, 40.0), ("中国", 0.8, 20.0)]


@pytest.mark.ocr
def test_painted_names_are_read_exactly() -> None:
    names = [*REGISTERED, *OTHERS]
    reads = [READER.read(render_hull(n, seed=101 * k + 3)) for k, n in enumerate(names)]
    right = [
        r.name == vessel_name(n) and r.confidence >= 0.8 for r, n in zip(reads, names, strict=True)
    ]
    assert len(names) >= 10 and sum(right) / len(names) >= 0.9, list(zip(names, reads, strict=True))
    again = READER.read(render_hull(names[0], seed=3))
    assert again == reads[0]  # the same image, the same read
    assert READER.read(blank_water(seed=1)).name is None
    assert READER.read(b"not an image") == HullRead(None, 0.0, None)


# --- the waterway stage -----------------------------------------------------------------------


class FixedReader:
    """A reader that always reads the same (for the confidence threshold, without a model)."""

    def __init__(self, read: HullRead) -> None:
        self.result = read

    def load(self) -> None:
        pass

    def read(self, jpeg: bytes) -> HullRead:
        return self.result


def with_image(cap: VesselCapture, blobs: BlobStore, data: bytes) -> VesselCapture:
    uri, sha = blobs.put(data)
    ref = ImageRef(role="side", uri=uri, sha256=sha, width=WIDTH, height=HEIGHT)
    return cap.model_copy(update={"hull_text": None, "images": [ref]})


def stage(blobs: BlobStore, reader: object = READER) -> WaterDetectionStage:
    return WaterDetectionStage(
        REG, hull_reader=reader,  # type: ignore[arg-type]
        load_image=lambda uri: blobs.path(uri).read_bytes(),
    )  # fmt: skip


@pytest.mark.ocr
async def test_the_stage_reads_the_hull_name_and_finds_a_painted_name_unlike_ais(
    tmp_path: Path,
) -> None:
    blobs = BlobStore(tmp_path)
    reports, cap = clean_pass()  # vessel A, 湘长沙货1001, crosses checkpoint 0
    same = with_image(cap, blobs, render_hull("湘长沙货1001", seed=11))
    s = stage(blobs)
    await s.start()
    assert await feed(s, [*reports, same], 5000) == []
    assert s.captures == {}  # decided: a clean pass

    other = with_image(cap, blobs, render_hull("湘岳阳货2002", seed=12))
    s = stage(blobs)
    (d,) = await feed(s, [*reports, other], 5000)
    assert (d.violation_code, d.detector) == ("water.identity", "water.pass.hull_name")
    assert d.hull_name == "湘岳阳货2002" and d.vessel_name == "湘长沙货1001"
    assert d.evidence["hull_confidence"] >= 0.8 and d.images == other.images
    (again,) = await feed(stage(blobs), [*reports, other], 5000)
    assert again == d  # same image, same read, same finding

    blank = with_image(cap, blobs, blank_water(seed=13))
    assert await feed(stage(blobs), [*reports, blank], 5000) == []


async def test_an_uncertain_or_missing_hull_read_is_no_hull_name(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path)
    reports, cap = clean_pass()
    other = with_image(cap, blobs, b"\xff\xd8 any bytes: the reader is fixed")
    unsure = FixedReader(HullRead("湘岳阳货2002", 0.5, "湘岳阳货2002"))
    assert await feed(stage(blobs, unsure), [*reports, other], 5000) == []
    sure = FixedReader(HullRead("湘岳阳货2002", 0.95, "湘岳阳货2002"))
    (d,) = await feed(stage(blobs, sure), [*reports, other], 5000)
    assert d.detector == "water.pass.hull_name" and d.evidence["hull_confidence"] == 0.95
    missing = other.model_copy(
        update={"images": [other.images[0].model_copy(update={"uri": "blob://sha256/" + "0" * 64})]}
    )
    assert await feed(stage(blobs, sure), [*reports, missing], 5000) == []
    # a name the camera sent is used as it is, not read again
    sent = other.model_copy(update={"hull_text": "湘长沙货1001"})
    assert await feed(stage(blobs, sure), [*reports, sent], 5000) == []


class BrokenReader(FixedReader):
    """A reader that raises on the image, as a decoder does on a corrupt or oversized one."""

    def read(self, jpeg: bytes) -> HullRead:
        raise ValueError("image is truncated")


async def test_an_image_the_reader_raises_on_is_no_hull_name_and_stops_nothing(
    tmp_path: Path,
) -> None:
    # issue #28: before, the exception left the stage, and every restart met the capture again
    blobs = BlobStore(tmp_path)
    reports, cap = clean_pass()
    other = with_image(cap, blobs, b"\xff\xd8 not a whole JPEG")
    broken = BrokenReader(HullRead(None, 0.0, None))
    assert await feed(stage(blobs, broken), [*reports, other], 5000) == []
