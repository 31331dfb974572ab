"""Find data a submitted notebook carries inside itself: the test images it is never given, or a
lookup table of them, written into its cells, outputs, attachments or metadata. Such a notebook
needs no trained model, so every place holding `minimum` encoded bytes or more is reported, in
the student's numbering (every cell from 1, markdown too; outputs from 1). Pure logic.

What counts (`Payload.kind`), and the bytes it decodes to (`Payload.size`):

- "base64" (standard or urlsafe, padded or not) and "hex": runs of 16 or more alphabet characters,
  joined across what splits one string into many in one place (newlines, quotes, `+`, `\\`,
  brackets, commas): 3/4 byte a base64 character, 1/2 a hex digit. A run counts only if it mixes
  its alphabet as encoded bytes do (base64: digits, g-z and G-Z, 16 distinct characters; hex:
  digits and letters, 8 distinct), which words, paths, `-----` rules and widget ids
  (IPY_MODEL_<hex>) do not. A decoded run is named by its first bytes where they say what it is:
  "pickle" (b'\\x80' and protocol 2-5), "numpy array" (b'\\x93NUMPY'), "zip archive"
  (`torch.save`, `np.savez`), "gzip", or an image, judged as below.
- "bytes literal" (`b'\\x00\\x01…'`, written or printed) and "escaped string" (no `b`): a line
  whose `\\x`/`\\u` escapes are a quarter of its bytes or more; an escape is a byte, so is any
  other character of the line.
- "numbers": eight or more numbers in a row with only spaces, commas, colons, semicolons and
  brackets between them (a list, tuple, dict or array literal, a printed array, a column). Each
  counts as the narrowest type holding all of the run: integers 1, 2, 4 or 8 bytes by the
  largest magnitude (a minus sign adds a bit), over 21 digits digits x log2(10) / 8; with a point
  or exponent 4 bytes (float32), or 8 where 10 digits stand in a row. Words break a run ("epoch
  3 loss 0.4123 acc 0.8512" has none), and so does the `...` torch and numpy print big arrays
  with.
- "table": such a run with quoted hash keys among the numbers (`{'9f86d081': 3, …}`, 8 to 64 hex
  digits); a key counts the bytes its digits stand for.

Runs under `RUN_FLOOR` bytes are left out; the runs of one kind in one place add up to one
payload, so a table split over many literals in a cell is still the table's size.

Images (image/* outputs, attachments, and images encoded anywhere else, data URIs included) are
normal: course notebooks show plots. An image is reported only when it is not a picture:
"dense image", a PNG whose compressed pixels are `DENSE_RATIO` of their raw size or more (data
does not compress, drawings do: `benchmarks/carried_scan.py --images` finds matplotlib's plots
at 72-200 dpi at 0.8-18 % of their raw pixels, Fashion-MNIST at its own resolution at 31-64 %,
hashes and labels stored as pixels at 97 %, random bytes at 100 %); "data inside image", a
PNG's bytes that are neither pixels nor structure, beyond the `_ANCILLARY` bytes a colour profile
or a screenshot's XMP take (matplotlib writes 67); "large image", any image of `LARGE_IMAGE`
bytes or more (those plots take 13-710 kB); "broken image", a PNG whose pixels do not inflate.

`DEFAULT_MINIMUM` is 8 KiB: the table of 2,000 images by 4-byte hashes and labels is 10,000 bytes
as base64, hex, bytes or a hash-keyed table (16,000 as a dict of ints). Nothing in the course's
notebooks or the wild corpus, as committed or as the grader ran them, reaches even RUN_FLOOR; a
notebook doing all a course notebook does (benchmarks/carried_scan.py --ordinary) has one run,
a printed 28x28 image tensor: 784 floats, 3,136 bytes.

Not caught: data diluted into a picture (a scatter plot, upscaled, spread over colour channels),
other alphabets (base85, base32, Unicode), spaced hex dumps, `0x` literals, base64 hash keys,
payloads cut into pieces under RUN_FLOOR, or spread over places each under `minimum`
(`carried_payloads(nb, 1024)` and `carried_total` look closer). A student who prints thousands
of bare numbers (a loss per line, three image tensors in one output) is reported as "numbers".
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import struct
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import compress
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nbformat import NotebookNode

DEFAULT_MINIMUM = 8 * 1024  # a table of 2,000 4-byte hashes and labels is 10,000 bytes
RUN_FLOOR = 64
DENSE_RATIO = 0.85
LARGE_IMAGE = 2 * 2**20
_ANCILLARY = 4096  # a PNG's bytes besides its pixels: a colour profile, a screenshot's XMP
_INFLATED = 2**16  # pixel bytes inflated to check that a PNG is one


@dataclass(frozen=True)
class Payload:
    where: str  # "cell 4 (source)", "cell 7, output 2 (text/plain)", "cell 5 metadata", ...
    kind: str  # "base64", "hex", "numbers", "bytes literal", "pickle", "dense image", ...
    size: int  # bytes it decodes to; see the module's docstring for numbers


def carried_payloads(notebook: NotebookNode, minimum: int = DEFAULT_MINIMUM) -> list[Payload]:
    """Every encoded payload of at least `minimum` decoded bytes, largest first (in the
    notebook's order among equals). Never raises, whatever JSON the notebook holds."""
    sizes: dict[tuple[str, str], int] = {}
    for where, form, value in _places(notebook):
        for kind, size in _READERS[form](value):
            sizes[where, kind] = sizes.get((where, kind), 0) + size
    found = [Payload(where, kind, size) for (where, kind), size in sizes.items() if size >= minimum]
    return sorted(found, key=lambda payload: -payload.size)


def carried_total(payloads: Iterable[Payload]) -> int:
    return sum(payload.size for payload in payloads)


# Where to look: (where, form, value), form being how the value is read.

_TEXT, _JSON, _BINARY = "text", "json", "binary"
_MIME = re.compile(r"[\w.+-]{1,60}/[\w.+-]{1,60}")


def _places(notebook: Any) -> Iterator[tuple[str, str, Any]]:
    if not isinstance(notebook, dict):
        yield "notebook", _JSON, notebook
        return
    for key, value in notebook.items():
        if key == "metadata" and isinstance(value, dict):
            for name, entry in value.items():
                yield f"notebook metadata (key {_label(name)!r})", _JSON, _keyed(name, entry)
        elif key == "cells" and isinstance(value, list):
            for number, cell in enumerate(value, 1):
                yield from _cell_places(f"cell {number}", cell)
        elif key not in ("nbformat", "nbformat_minor") or not isinstance(value, int):
            yield f"notebook ({_label(key)})", _JSON, value


def _cell_places(name: str, cell: Any) -> Iterator[tuple[str, str, Any]]:
    if not isinstance(cell, dict):
        yield name, _JSON, cell
        return
    for key, value in cell.items():
        if key == "source":
            yield f"{name} (source)", _TEXT, value
        elif key == "metadata":
            yield f"{name} metadata", _JSON, value
        elif key == "outputs" and isinstance(value, list):
            for number, output in enumerate(value, 1):
                yield from _output_places(f"{name}, output {number}", output)
        elif key == "attachments" and isinstance(value, dict):
            for file, bundle in value.items():
                yield from _bundle_places(f"{name}, attachment {_label(file)}", bundle, True)
        else:
            yield f"{name} ({_label(key)})", _JSON, _keyed(key, value)


def _output_places(name: str, output: Any) -> Iterator[tuple[str, str, Any]]:
    if not isinstance(output, dict):
        yield name, _JSON, output
        return
    for key, value in output.items():
        if key == "text":
            stream = output.get("name")
            yield f"{name} ({stream if stream in ('stdout', 'stderr') else 'stream'})", _TEXT, value
        elif key == "traceback":
            yield f"{name} (traceback)", _TEXT, value
        elif key == "data" and isinstance(value, dict):
            yield from _bundle_places(name, value, False)
        else:
            yield f"{name} ({_label(key)})", _JSON, _keyed(key, value)


def _bundle_places(name: str, bundle: Any, attachment: bool) -> Iterator[tuple[str, str, Any]]:
    if not isinstance(bundle, dict):
        yield name, _JSON, bundle
        return
    for mime, value in bundle.items():
        where = name if attachment and len(bundle) == 1 else f"{name} ({_label(mime)})"
        if not isinstance(mime, str) or not _MIME.fullmatch(mime):
            yield where, _JSON, _keyed(mime, value)
        elif attachment or mime.startswith("image/") and mime != "image/svg+xml":
            yield where, _BINARY, value  # base64 by nbformat's rules
        else:
            yield where, _TEXT if isinstance(value, str | list) else _JSON, value


def _keyed(key: Any, value: Any) -> Any:
    """The value, with its key where the key is long enough to carry something itself."""
    return value if isinstance(key, str) and len(key) <= 64 else {key: value}


def _label(name: Any) -> str:
    text = name if isinstance(name, str) else repr(name)
    return text if len(text) <= 40 else f"{text[:40]}…"


# Reading a place: each reader yields (kind, size) for every run of at least RUN_FLOOR bytes.


def _read_text(value: Any) -> Iterator[tuple[str, int]]:
    value = _joined(value)
    if not isinstance(value, str):
        yield from _read_json(value)
        return
    if len(value) < RUN_FLOOR // 2:
        return  # too short for RUN_FLOOR bytes in any of the forms below
    # One byte a character, so that spans found in a translation hold in the text; bytes.translate
    # and patterns that start with a literal keep the scan at C speed.
    data = bytearray(value.encode("latin-1", "replace"))
    found: list[tuple[str, int]] = []
    _take_escaped(data, found)
    for escape in (b"\\n", b"\\r", b"\\t"):  # inside a string, a separator like any other
        data = data.replace(escape, b"  ")
    _take_encoded(data, found)
    _take_sequences(data, found)
    yield from found


def _joined(value: Any) -> Any:
    """A multiline string as nbformat may leave it (a list of lines) made one string."""
    if isinstance(value, list) and value and all(isinstance(line, str) for line in value):
        return "".join(value)
    return value


def _read_json(value: Any) -> Iterator[tuple[str, int]]:
    if isinstance(value, str):
        yield from _read_text(value)
        return
    if value is None or isinstance(value, bool | int | float):
        return  # nothing to read in one number
    try:
        text = json.dumps(value, ensure_ascii=False, default=repr)
    except (TypeError, ValueError, RecursionError):
        text = ", ".join(_leaves(value))
    # A string's own backslashes as Python writes them, and each string on a line of its own.
    text = text.replace("\\\\", "\\").replace('", "', '",\n"').replace('": "', '":\n"')
    yield from _read_text(text)


def _leaves(value: Any) -> Iterator[str]:
    """json.dumps's leaves, for values it refuses (too deep, cyclic, odd keys): no recursion."""
    stack, seen = [value], set()
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield json.dumps(item, ensure_ascii=False)
        elif isinstance(item, int | float) and not isinstance(item, bool):
            yield repr(item)
        elif isinstance(item, dict | list | tuple) and id(item) not in seen:
            seen.add(id(item))
            pairs = item.items() if isinstance(item, dict) else ((element,) for element in item)
            stack.extend(reversed([element for pair in pairs for element in pair]))
        else:
            yield "null"


def _read_binary(value: Any) -> Iterator[tuple[str, int]]:
    text = _joined(value)
    data = text.encode("latin-1", "replace") if isinstance(text, str) else b"?"
    hex_only = not data.translate(None, _HEX_DIGITS + _SPACE)
    if hex_only or not data or data.translate(None, _BASE64_ALPHABET + _SPACE + b"="):
        yield from _read_text(text)  # not base64, whatever its mime type says
        return
    verdict = _what(_decode_base64(data), "base64")
    if verdict is not None and verdict[1] >= RUN_FLOOR:
        yield verdict


_READERS = {_TEXT: _read_text, _JSON: _read_json, _BINARY: _read_binary}


def _classes(*groups: tuple[bytes, bytes]) -> bytes:
    """A bytes.translate table: each byte of a group to the group's class, the rest to b"x"."""
    table = bytearray(b"x" * 256)
    for members, name in groups:
        for member in members:
            table[member] = name[0]
    return bytes(table)


_SPACE = b" \t\n\r\f\v"
_BASE64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_"
_HEX_DIGITS = b"0123456789abcdefABCDEF"
_GLUE = _SPACE + b"\"'(),\\"  # what splits one string into many in a place

_ESCAPE_HIT = re.compile(rb"\\[xu]")
_LITERAL = re.compile(rb"['\"]((?:\\x[0-9a-fA-F]{2}|[^\\'\"\n]){2,8})")  # a literal's first bytes
_BYTES_PREFIX = re.compile(rb"(?<![\w])[bB][rR]?['\"]")

_BASE64_CLASSES = _classes((_BASE64_ALPHABET, b"a"), (b"=", b"="), (_GLUE, b"g"))
_ENCODED = re.compile(rb"a{16,}={0,2}(?:g+a{16,}={0,2})*")
_CONCATENATION = re.compile(rb"[\"'][ \t\n\r\\]*\+[ \t\n\r\\]*[\"']")

_SEPARATORS = _SPACE + b",:;[](){}"
_NUMBER_CLASSES = _classes(
    (b"0123456789", b"0"), (b".-+", b"-"), (b"eE", b"e"), (b"abcdfABCDF", b"h"),
    (b"'\"", b"q"), (_SEPARATORS, b" "),
)  # fmt: skip
_NUMBERS = re.compile(rb"0[-0e ]{14,}")  # digits, signs, points, exponents and separators
_TABLE = re.compile(rb"q[0he]{8,64}q(?:[-0e ]{1,40}q[0he]{8,64}q){7,}[-0e ]*")  # hash keys, labels
_HEX_KEY = re.compile(rb"['\"]([0-9a-fA-F]{8,64})['\"]")
_TO_SPACE = bytes.maketrans(_SEPARATORS, b" " * len(_SEPARATORS))
_DIGITS = _classes((b"0123456789", b"0"))


def _take_escaped(data: bytearray, found: list[tuple[str, int]]) -> None:
    """Lines whose \\x and \\u escapes are a quarter of their bytes or more; noted, then masked
    (zeroed) for the other readers."""
    position = 0
    while hit := _ESCAPE_HIT.search(data, position):
        start = data.rfind(b"\n", 0, hit.start()) + 1
        end = data.find(b"\n", hit.end()) % (len(data) + 1)  # -1, no newline: the end
        segment = bytes(data[start:end])
        escapes = segment.count(b"\\x") + segment.count(b"\\u")
        backslashes = segment.count(b"\\") - segment.count(b"\\\\")  # each \\ is one byte
        size = len(segment) - backslashes - 2 * escapes - 2 * segment.count(b"\\u")
        if size >= RUN_FLOOR and 4 * escapes >= size:
            head = bytes(data[max(0, start - 2) : start]) + segment[:64]
            first = _LITERAL.search(head)
            first_bytes = (
                first[1].decode("unicode_escape").encode("latin-1", "replace") if first else b""
            )
            bytes_literal = _BYTES_PREFIX.search(head, 0, head.find(b"\\"))
            kind = "bytes literal" if bytes_literal else "escaped string"
            found.append((_named(first_bytes, kind), size))
            data[start:end] = bytes(end - start)
        position = end


def _take_encoded(data: bytearray, found: list[tuple[str, int]]) -> None:
    """Base64 and hex runs, joined across the glue that splits them; noted and masked."""
    glued = (
        _CONCATENATION.sub(lambda plus: b" " * len(plus.group()), data) if b"+" in data else data
    )
    classes = glued.translate(_BASE64_CLASSES)
    if b"a" * 16 not in classes:
        return  # the usual case, found at C speed
    for run in _ENCODED.finditer(classes):
        start, end = run.span()
        joined = glued[start:end].translate(None, _GLUE)
        verdict = _decoded(joined)
        if verdict == "not encoded":
            continue
        if verdict is not None:
            found.append(verdict)
        data[start:end] = bytes(end - start)  # a picture's too: its pixels are no numbers


def _decoded(joined: bytes) -> tuple[str, int] | str | None:
    """What an encoded run is: (kind, bytes), None for a picture, "not encoded" for words."""
    digits = joined[2:] if joined[:2] in (b"0x", b"0X") else joined
    sample = joined[:512] + joined[-512:]
    if not digits.translate(None, _HEX_DIGITS):
        size = len(digits) // 2
        if size < RUN_FLOOR or not _mixes(sample, (rb"[0-9]", rb"[a-fA-F]"), 8):
            return "not encoded"
        head = binascii.unhexlify(digits[:32])
        whole = binascii.unhexlify(digits[: size * 2]) if head.startswith(_IMAGES) else head
        return _what(whole, "hex", size)
    size = sum(len(piece) * 3 // 4 for piece in joined.split(b"="))  # each string padded alone
    if size < RUN_FLOOR or not _mixes(sample, (rb"[0-9]", rb"[g-z]", rb"[G-Z]"), 16):
        return "not encoded"
    head = _decode_base64(joined[:64])
    return _what(_decode_base64(joined) if head.startswith(_IMAGES) else head, "base64", size)


def _mixes(sample: bytes, alphabets: tuple[bytes, ...], distinct: int) -> bool:
    """Whether `sample` mixes its characters the way encoded bytes do (words and paths don't)."""
    return len(set(sample)) >= distinct and all(re.search(a, sample) for a in alphabets)


def _take_sequences(data: bytearray, found: list[tuple[str, int]]) -> None:
    classes = bytearray(data.translate(_NUMBER_CLASSES))
    for table in _TABLE.finditer(classes):
        start, end = table.span()
        keys = _HEX_KEY.findall(data, start, end)
        size = sum(map(len, keys)) // 2 + _numbers_size(_HEX_KEY.sub(b" ", data[start:end]), 0)
        if size >= RUN_FLOOR:
            found.append(("table", size))
        classes[start:end] = bytes(end - start)
    for region in _NUMBERS.finditer(classes):
        for piece in data[region.start() : region.end()].split(b".."):  # torch's and numpy's ...
            size = _numbers_size(piece)
            if size >= RUN_FLOOR:
                found.append(("numbers", size))


def _numbers_size(text: bytes, least: int = 8) -> int:
    """Bytes of the numbers written in `text` (only numbers and separators), by the narrowest type
    that holds them all (the module's docstring); 0 for fewer than `least` numbers."""
    magnitudes = text.translate(_TO_SPACE, b"+-").split()
    lengths = list(map(len, magnitudes))
    longest = max(lengths, default=0)
    if not magnitudes or len(magnitudes) < least and longest < 150:
        return 0
    if b"." in text or b"e" in text or b"E" in text:
        return len(magnitudes) * (8 if b"0" * 10 in text.translate(_DIGITS) else 4)
    if longest > 21:  # no int(): Python refuses over 4,300 digits, and it is slow long before
        return len(magnitudes) * math.ceil(longest * math.log2(10) / 8)
    top = int(max(compress(magnitudes, map(longest.__eq__, lengths))))  # equal lengths: as text
    bits = top.bit_length() + (b"-" in text)
    return len(magnitudes) * next(width for width in (1, 2, 4, 8, 16) if bits <= 8 * width)


def _decode_base64(text: bytes) -> bytes:
    clean = text.translate(_URLSAFE, _NOT_BASE64)
    usable = len(clean) - (len(clean) % 4 == 1)  # a lone last character holds no byte
    return base64.b64decode(clean[:usable] + b"=" * (-usable % 4))


_URLSAFE = bytes.maketrans(b"-_", b"+/")
_NOT_BASE64 = bytes(set(range(256)) - set(_BASE64_ALPHABET))
_MAGIC = {b"\x93NUMPY": "numpy array", b"PK\x03\x04": "zip archive", b"\x1f\x8b": "gzip"}
_IMAGES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF8")


def _what(data: bytes, encoding: str, size: int | None = None) -> tuple[str, int] | None:
    """What decoded bytes are (`data` may be only their start; `size` is the whole's); None
    for a picture."""
    if data.startswith(_IMAGES):
        return _image(data)
    return _named(data, encoding), len(data) if size is None else size


def _named(head: bytes, default: str) -> str:
    """What a payload's first bytes say it is."""
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "pickle"
    return next((kind for magic, kind in _MAGIC.items() if head.startswith(magic)), default)


def _image(data: bytes) -> tuple[str, int] | None:
    if len(data) >= LARGE_IMAGE:
        return "large image", len(data)
    if not data.startswith(b"\x89PNG"):
        return None  # JPEG and GIF: judged by size alone
    parts = _png_parts(data)
    if parts is None:
        return "broken image", len(data)
    raw, pixels, other = parts
    if pixels >= DENSE_RATIO * raw:
        return "dense image", len(data)
    return ("data inside image", other) if other > _ANCILLARY else None


def _png_parts(data: bytes) -> tuple[int, int, int] | None:
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
