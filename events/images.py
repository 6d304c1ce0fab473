"""Whether an image file is whole, by its structure alone: a header without its data, or a file
cut short, is not an image a fine may rest on.

Decoders do not say so reliably: OpenCV fills a cut JPEG in grey, and Pillow does too once
anything in the process sets ``ImageFile.LOAD_TRUNCATED_IMAGES`` (WeasyPrint does, on import).
These walk the file's own segments instead; bytes after the end (a phone's trailer) are allowed.
"""

from __future__ import annotations

JPEG_START = b"\xff\xd8"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_STANDALONE = {0x01, *range(0xD0, 0xD8)}  # TEM, RSTn: markers without a length


def jpeg_is_whole(data: bytes) -> bool:
    """A JPEG whose segments lead to a scan (SOS) and whose data ends in an EOI after it. The
    segments are walked by their lengths, so an embedded thumbnail's markers are not taken for
    the image's own; inside the scan an FF byte is stuffed, so the first FF D9 ends it."""
    if not data.startswith(JPEG_START):
        return False
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return False
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
        elif marker in _STANDALONE:
            i += 2
        elif marker == 0xDA:  # the first scan: the end must come after it
            return data.find(b"\xff\xd9", i + 2) > 0
        elif marker == 0xD9:
            return False  # ends before any scan
        else:
            i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
    return False


def png_is_whole(data: bytes) -> bool:
    """A PNG whose chunks, walked by their lengths, include image data and reach IEND."""
    if not data.startswith(PNG_SIGNATURE):
        return False
    i, seen_data = len(PNG_SIGNATURE), False
    while i + 8 <= len(data):
        length = int.from_bytes(data[i : i + 4], "big")
        kind = data[i + 4 : i + 8]
        end = i + 12 + length  # length, type, data, CRC
        if end > len(data):
            return False
        if kind == b"IDAT":
            seen_data = True
        elif kind == b"IEND":
            return seen_data
        i = end
    return False
