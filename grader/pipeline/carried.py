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

The scan's parts: grader.pipeline.carried_runs reads a place for runs (RUN_FLOOR), and
grader.pipeline.carried_bytes says what decoded bytes are and judges images (DENSE_RATIO,
LARGE_IMAGE); this module walks the notebook's places and adds the runs up.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from grader.pipeline.carried_runs import read_binary, read_json, read_text

if TYPE_CHECKING:
    from nbformat import NotebookNode

DEFAULT_MINIMUM = 8 * 1024  # a table of 2,000 4-byte hashes and labels is 10,000 bytes


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
_READERS = {_TEXT: read_text, _JSON: read_json, _BINARY: read_binary}


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
