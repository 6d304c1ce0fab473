"""events.images: an image is whole by its own structure, whatever a decoder would fill in."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageFile

from events.images import jpeg_is_whole, png_is_whole


def _image(fmt: str, **options: object) -> bytes:
    rng = np.random.default_rng(7)
    buf = io.BytesIO()
    pixels = rng.integers(0, 255, (90, 120, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(buf, fmt, **options)
    return buf.getvalue()


def test_a_jpeg_cut_anywhere_is_not_whole_and_a_trailer_is_allowed() -> None:
    for data in (_image("JPEG"), _image("JPEG", progressive=True)):
        assert jpeg_is_whole(data) and jpeg_is_whole(data + b"SEFT" * 50)
        assert not jpeg_is_whole(data[: data.index(b"\xff\xda")])  # the header alone
        assert not any(jpeg_is_whole(data[:n]) for n in range(0, len(data) - 1, 97))


def test_a_thumbnail_inside_does_not_make_a_cut_jpeg_whole() -> None:
    thumb = _image("JPEG")  # a whole JPEG inside an APP1 segment, as EXIF carries one
    app1 = b"\xff\xe1" + (len(thumb) + 2).to_bytes(2, "big") + thumb
    data = _image("JPEG")
    with_thumb = data[:2] + app1 + data[2:]
    assert jpeg_is_whole(with_thumb)
    assert not jpeg_is_whole(with_thumb[: len(with_thumb) - 200])


def test_a_png_cut_anywhere_is_not_whole() -> None:
    data = _image("PNG")
    assert png_is_whole(data)
    assert not any(png_is_whole(data[:n]) for n in range(0, len(data) - 1, 53))


def test_pillow_alone_would_take_a_cut_file_once_weasyprint_is_imported() -> None:
    """Why the walk: the flag WeasyPrint sets makes Pillow fill a cut file in grey."""
    import weasyprint  # noqa: F401

    assert ImageFile.LOAD_TRUNCATED_IMAGES
    cut = _image("JPEG")[:-300]
    with Image.open(io.BytesIO(cut)) as im:
        im.load()  # no error
    assert not jpeg_is_whole(cut)
