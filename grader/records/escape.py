"""The filters that keep whatever came from a submission inert in Markdown, so that a notebook
cannot forge lines of any view (grader.views.markdown's templates use them as Jinja2 filters;
results.json's texts for Gradescope use them directly). Standard library only: the student's
in-notebook check imports this without the instructor's packages.

Every string a submission controls (outputs, tracebacks, exception names and messages, file,
variable and class names, the student's login) reaches Markdown through exactly one of:

- `inert`: prose. Every Markdown character is backslash-escaped, so the text makes no heading,
  emphasis, link, image, HTML or table cell; `@user`, `#12`, `GH-12`, `https://` and `www.` get
  a zero-width joiner, so GitHub makes no mention, issue reference or autolink of them. Code
  spans (balanced backticks, as CommonMark pairs them) are kept: nothing inside one is live.
- `inline`: one code span, its fence longer than any backticks inside.
- `fenced`: a code block, its fence longer than any backticks inside.
- `html_text`: text inside an HTML block (a `<summary>`), HTML-escaped and neutralised the same.

`cell=True` makes the first two safe inside a table cell. All four hide the grading machine's
paths (`hide_paths`) and drop control and bidirectional-override characters.
"""

from __future__ import annotations

import functools
import html
import re
import site
import sys
import sysconfig
import tempfile
import unicodedata
from datetime import datetime, timezone
from pathlib import Path


def fenced(text: object, language: str = "") -> str:
    """A code block whose fence is longer than any run of backticks inside it."""
    value = _plain(text)
    longest = max((len(run) for run in re.findall(r"`+", value)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{language}\n{value.rstrip()}\n{fence}"


def inline(text: object, cell: bool = False) -> str:
    """Inline code that the text cannot break out of; `cell`: inside a table cell."""
    return _code_span(_one_line(text), cell)


def inert(text: object, cell: bool = False) -> str:
    """Prose that renders as the text it is and nothing else (see the module's docstring)."""
    value = _one_line(text).lstrip()
    parts = []
    for literal, code in _code_spans(value):
        parts.append(_escape(literal, start=not parts))
        if code is not None:
            parts.append(code.replace("|", "\\|") if cell else code)
    return "".join(parts)


def html_text(text: object) -> str:
    """Text inside an HTML block such as `<summary>`, where Markdown is not parsed."""
    return html.escape(_neutralise(_one_line(text)), quote=True)


def safe_name(text: object) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", str(text))[:60] or "_"


def bar(fraction: float | None, width: int = 10) -> str:
    if fraction is None:
        return ""
    filled = round(max(0.0, min(1.0, fraction)) * width)
    return "█" * filled + "░" * (width - filled)


def thin(values: list[float], limit: int = 60) -> list[float]:
    """At most `limit` points of a curve, evenly spaced, for a chart that stays readable."""
    if len(values) <= limit:
        return values
    step = (len(values) - 1) / (limit - 1)
    return [values[round(i * step)] for i in range(limit)]


def number(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def utc(moment: datetime | None) -> str:
    return "—" if moment is None else f"{moment.astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC"


# --- the pieces of the filters ------------------------------------------------------------------

# Inside a line, these characters can start Markdown: emphasis, code, links and images,
# autolinks and HTML, entities, table cells, strikethrough, GitHub's math, escapes. At the start
# of a line, these can also make a block: a heading, list, quote, setext underline.
_MARKDOWN = re.compile(r"([\\`*_\[\]<&|~$])")
_BLOCK_START = [(re.compile(r"^([#+\-=>])"), r"\\\1"), (re.compile(r"^(\d+)([.)])"), r"\1\\\2")]
_NEUTRALISE = [
    (re.compile(r"@(?=[A-Za-z0-9])"), "@\u200d"),  # @user, @org/team, e-mail addresses
    (re.compile(r"#(?=[0-9])"), "#\u200d"),  # #12, owner/repo#12
    (re.compile(r"\b(GH)-(?=[0-9])", re.IGNORECASE), "\\1\u200d-"),  # GH-12
    (re.compile(r":(?=//)"), ":\u200d"),  # https://…, any scheme://
    (re.compile(r"\b(www)\.", re.IGNORECASE), "\\1\u200d."),  # www.example.com
]
# Bidirectional overrides and isolates can make a line read differently from what it holds.
_BIDI = dict.fromkeys(map(ord, "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"))
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


def _plain(text: object) -> str:
    """The text without the machine's paths, ANSI colours, control or bidi characters."""
    value = hide_paths(_ANSI.sub("", str(text))).replace("\r\n", "\n").replace("\r", "\n")
    return "".join(
        char
        for char in value.translate(_BIDI)
        if char in "\n\t" or unicodedata.category(char) != "Cc"
    )


def _one_line(text: object) -> str:
    return re.sub(r"[\n\t]+", " ", _plain(text))


def _neutralise(text: str) -> str:
    for pattern, replacement in _NEUTRALISE:
        text = pattern.sub(replacement, text)
    return text


def _escape(text: str, start: bool = False) -> str:
    escaped = _MARKDOWN.sub(r"\\\1", _neutralise(text))
    for pattern, replacement in _BLOCK_START if start else ():
        escaped = pattern.sub(replacement, escaped)
    return escaped


def _code_span(value: str, cell: bool) -> str:
    longest = max((len(run) for run in re.findall(r"`+", value)), default=0)
    ticks = "`" * (longest + 1)
    pad = " " if value.startswith("`") or value.endswith("`") else ""
    span = f"{ticks}{pad}{value}{pad}{ticks}"
    return span.replace("|", "\\|") if cell else span


def _code_spans(text: str) -> list[tuple[str, str | None]]:
    """(literal text, the code span after it or None), pairing backtick runs as CommonMark
    does: a run opens a code span closed by the next run of the same length; a run that is
    never closed is literal."""
    pieces, start, position = [], 0, 0
    for run in re.finditer(r"`+", text):
        if run.start() < position:
            continue
        closing = re.search(rf"(?<!`){run.group()}(?!`)", text[run.end() :])
        if closing is None:
            continue
        end = run.end() + closing.end()
        pieces.append((text[start : run.start()], text[run.start() : end]))
        start = position = end
    pieces.append((text[start:], None))
    return pieces


def hide_paths(text: str) -> str:
    """The text with the grading machine's own folders (the Python environment, the grader's
    checkout, the home and scratch folders) replaced by short names: a report shows where in
    the notebook's folder something happened, never where the runner keeps its files."""
    for pattern, replacement in _machine_paths():
        text = pattern.sub(replacement, text)
    return text


@functools.cache
def _machine_paths() -> list[tuple[re.Pattern[str], str]]:
    temp = re.escape(tempfile.gettempdir().rstrip("/"))
    scratch = [  # the folders of Scratch.create(): the notebook's own is `work`
        (re.compile(rf"{temp}/grader-[^/\s'\"]+/work(?![\w.-])/?"), "./"),
        (re.compile(rf"{temp}/grader-[^/\s'\"]+"), "<scratch>"),
    ]
    named: dict[str, str] = {}
    for folder in [*site.getsitepackages(), site.getusersitepackages()]:
        named[folder] = "<site-packages>"
    named[sysconfig.get_paths()["stdlib"]] = "<python>"
    named[sys.prefix] = "<python-env>"
    named[sys.base_prefix] = "<python>"
    named[str(Path(__file__).resolve().parents[2])] = "<grader>"
    named.setdefault(str(Path.cwd()), "<cwd>")
    named.setdefault(str(Path.home()), "~")
    for folder in list(named):
        named.setdefault(str(Path(folder).resolve()), named[folder])
    ordered = sorted(
        (folder.rstrip("/"), name) for folder, name in named.items() if len(folder.strip("/")) > 1
    )
    ordered.sort(key=lambda item: -len(item[0]))
    return scratch + [
        (re.compile(rf"(?<![\w./-]){re.escape(folder)}(?![\w.-])"), name)
        for folder, name in ordered
    ]
