"""What decoded bytes are (grader.pipeline.carried): a pickle, a numpy array, a zip or gzip
stream by their first bytes; an image judged as a picture (normal: course notebooks show plots)
or as data: a PNG whose pixels do not compress, one that carries bytes besides its pixels, a
large one, a broken one. The measurements behind the limits are grader.pipeline.carried's
docstring.
"""

from __future__ import annotations

import base64
import struct
import zlib

DENSE_RATIO = 0.85
LARGE_IMAGE = 2 * 2**20
_ANCILLARY = 4096  # a PNG's bytes besides its pixels: a colour profile, a screenshot's XMP
_INFLATED = 2**16  # pixel bytes inflated to check that a PNG is one
# Standard and urlsafe: a run of either is decoded.
BASE64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_"


def decode_base64(text: bytes) -> bytes:
    clean = text.translate(_URLSAFE, _NOT_BASE64)
    usable = len(clean) - (len(clean) % 4 == 1)  # a lone last character holds no byte
    return base64.b64decode(clean[:usable] + b"=" * (-usable % 4))


_URLSAFE = bytes.maketrans(b"-_", b"+/")
_NOT_BASE64 = bytes(set(range(256)) - set(BASE64_ALPHABET))
_MAGIC = {b"\x93NUMPY": "numpy array", b"PK\x03\x04": "zip archive", b"\x1f\x8b": "gzip"}
IMAGES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF8")


def decoded_kind(data: bytes, encoding: str, size: int | None = None) -> tuple[str, int] | None:
    """What decoded bytes are (`data` may be only their start; `size` is the whole's); None
    for a picture."""
    if data.startswith(IMAGES):
        return _image(data)
    return kind_by_magic(data, encoding), len(data) if size is None else size


def kind_by_magic(head: bytes, default: str) -> str:
    """What a payload's first bytes say it is."""
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "pickle"
    return next((kind for magic, kind in _MAGIC.items() if head.startswith(magic)), default)


def _image(data: bytes) -> tuple[str, int] | None:
    if len(data) >= LARGE_IMAGE:
        return "large image", len(data)
    if not data.startswith(b"\x89PNG"):
        return None  # JPEG and GIF: judged by size alone
    parts = png_parts(data)
    if parts is None:
        return "broken image", len(data)
    raw, pixels, other = parts
    if pixels >= DENSE_RATIO * raw:
        return "dense image", len(data)
    return ("data inside image", other) if other > _ANCILLARY else None


def png_parts(data: bytes) -> tuple[int, int, int] | None:
    """(raw pixel bytes its header declares, compressed pixel bytes, bytes that are neither
    pixels nor structure), or None for a PNG that is not one: no header, or pixels that do not
    inflate (the first _INFLATED bytes are checked, or all where fewer are declared)."""
    try:
        width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", data[16:29])
    except struct.error:
        return None
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(colour)
    if data[12:16] != b"IHDR" or channels is None or not width or not height:
        return None
    passes = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2))
    passes = (*passes, (0, 1, 1, 2)) if interlace else ((0, 0, 1, 1),)
    raw = 0
    for x, y, step_x, step_y in passes:
        columns, rows = -(-(width - x) // step_x), -(-(height - y) // step_y)
        if columns > 0 and rows > 0:
            raw += rows * (1 + (columns * channels * depth + 7) // 8)
    chunks, position, ended = 0, 8, False
    pixels = bytearray()
    while position + 12 <= len(data) and not ended and chunks < 100_000:
        (length,) = struct.unpack_from(">I", data, position)
        kind = data[position + 4 : position + 8]
        if kind == b"IDAT":
            pixels += data[position + 8 : position + 8 + length]
        chunks, position, ended = chunks + 1, position + 12 + length, kind == b"IEND"
    expected = min(raw, _INFLATED)
    try:
        inflated = zlib.decompressobj().decompress(pixels, expected)
    except zlib.error:
        return None
    if len(inflated) < expected:
        return None
    return raw, len(pixels), len(data) - 8 - 12 * chunks - 13 - len(pixels)
