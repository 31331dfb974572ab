"""Reading one place of a notebook for encoded data (grader.pipeline.carried): runs of base64
and hex, bytes literals and escaped strings, written-out numbers and hash-keyed tables, each
counted in the bytes it decodes to. What counts, and why, is grader.pipeline.carried's docstring.

A place may be megabytes of outputs, and most hold nothing: the text is read one byte a
character through bytes.translate and patterns that start with a literal, so that the scan
keeps to C speed; what one reader takes it masks for the next.
"""

from __future__ import annotations

import binascii
import json
import math
import re
from collections.abc import Iterator
from itertools import compress
from typing import Any

from grader.pipeline.carried_bytes import (
    BASE64_ALPHABET,
    IMAGES,
    decode_base64,
    decoded_kind,
    kind_by_magic,
)

RUN_FLOOR = 64


# Reading a place: each reader yields (kind, size) for every run of at least RUN_FLOOR bytes.


def read_text(value: Any) -> Iterator[tuple[str, int]]:
    value = _joined(value)
    if not isinstance(value, str):
        yield from read_json(value)
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


def read_json(value: Any) -> Iterator[tuple[str, int]]:
    if isinstance(value, str):
        yield from read_text(value)
        return
    if value is None or isinstance(value, bool | int | float):
        return  # nothing to read in one number
    try:
        text = json.dumps(value, ensure_ascii=False, default=repr)
    except (TypeError, ValueError, RecursionError):
        text = ", ".join(_leaves(value))
    # A string's own backslashes as Python writes them, and each string on a line of its own.
    text = text.replace("\\\\", "\\").replace('", "', '",\n"').replace('": "', '":\n"')
    yield from read_text(text)


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


def read_binary(value: Any) -> Iterator[tuple[str, int]]:
    text = _joined(value)
    data = text.encode("latin-1", "replace") if isinstance(text, str) else b"?"
    hex_only = not data.translate(None, _HEX_DIGITS + _SPACE)
    if hex_only or not data or data.translate(None, BASE64_ALPHABET + _SPACE + b"="):
        yield from read_text(text)  # not base64, whatever its mime type says
        return
    verdict = decoded_kind(decode_base64(data), "base64")
    if verdict is not None and verdict[1] >= RUN_FLOOR:
        yield verdict


def _classes(*groups: tuple[bytes, bytes]) -> bytes:
    """A bytes.translate table: each byte of a group to the group's class, the rest to b"x"."""
    table = bytearray(b"x" * 256)
    for members, name in groups:
        for member in members:
            table[member] = name[0]
    return bytes(table)


_SPACE = b" \t\n\r\f\v"
_HEX_DIGITS = b"0123456789abcdefABCDEF"
_GLUE = _SPACE + b"\"'(),\\"  # what splits one string into many in a place

_ESCAPE_HIT = re.compile(rb"\\[xu]")
_LITERAL = re.compile(rb"['\"]((?:\\x[0-9a-fA-F]{2}|[^\\'\"\n]){2,8})")  # a literal's first bytes
_BYTES_PREFIX = re.compile(rb"(?<![\w])[bB][rR]?['\"]")

_BASE64_CLASSES = _classes((BASE64_ALPHABET, b"a"), (b"=", b"="), (_GLUE, b"g"))
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
            found.append((kind_by_magic(first_bytes, kind), size))
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
        whole = binascii.unhexlify(digits[: size * 2]) if head.startswith(IMAGES) else head
        return decoded_kind(whole, "hex", size)
    size = sum(len(piece) * 3 // 4 for piece in joined.split(b"="))  # each string padded alone
    if size < RUN_FLOOR or not _mixes(sample, (rb"[0-9]", rb"[g-z]", rb"[G-Z]"), 16):
        return "not encoded"
    head = decode_base64(joined[:64])
    return decoded_kind(decode_base64(joined) if head.startswith(IMAGES) else head, "base64", size)


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
    that holds them all (grader.pipeline.carried's docstring); 0 for fewer than `least` numbers."""
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
