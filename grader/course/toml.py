"""The course's TOML files (course.toml, each week's spec.toml), read strictly.

tomllib knows no line numbers, and a typo in a key would otherwise silently give the default
(`execution.timeot` → a 30-minute limit nobody asked for). Every table is checked against the
keys it may hold ("did you mean …?"), every value against its type and range, and each
message names the file, the line and the dotted key.
"""

from __future__ import annotations

import difflib
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10 (Gradescope's Ubuntu 22.04): the same parser, as a package
    import tomli as tomllib

from grader.errors import GraderError

Check = Callable[..., Any]  # (value, key, where, *extra) -> the checked value


@dataclass(frozen=True)
class Where:
    """Turns a dotted key into `FILE line N: key: …`, raised as the file's own error type."""

    path: Path | None
    lines: dict[str, int]
    error_type: type[GraderError]
    label: str = ""  # what to call the file when it has no path

    def error(self, key: str, message: str) -> GraderError:
        probe, line = key, None
        while probe and line is None:  # the key's own line, else its table's
            line = self.lines.get(probe)
            parent = _PARENT.sub("", probe)
            probe = "" if parent == probe else parent
        place = str(self.path or self.label) + (f" line {line}" if line else "")
        return self.error_type(f"{place}: {key}: {message}" if key else f"{place}: {message}")


def read_toml(path: Path, error_type: type[GraderError]) -> tuple[dict[str, Any], Where]:
    """The file's tables, and a Where for messages about them."""
    try:
        text = path.read_text(encoding="utf-8")
        raw = tomllib.loads(text)
    except (OSError, UnicodeDecodeError) as error:
        raise error_type(f"cannot read {path}: {error}") from None
    except tomllib.TOMLDecodeError as error:
        raise error_type(_decode_error(path, str(error))) from None
    return raw, Where(path, key_lines(text), error_type)


def _decode_error(path: Path, message: str) -> str:
    """tomllib's complaint as a sentence for whoever edits the file: the line first."""
    where = re.search(r"\(at line (\d+), column \d+\)", message)
    line = f" line {where[1]}" if where else ""
    twice = re.match(r"Cannot declare \((.*)\) twice", message)
    if twice:
        table = ".".join(key.strip().strip("'\"") for key in twice[1].split(",") if key.strip())
        return (
            f"{path}{line}: [{table}] is declared twice; write each table once (merge the "
            "two into the first)"
        )
    what = message[: where.start()].strip() if where else message
    return f"{path}{line}: not valid TOML: {what}"


@dataclass(frozen=True)
class Section:
    """One table: its keys checked against the known ones, its values checked on demand."""

    values: dict[str, Any]
    name: str  # the dotted key of the table, "" at the top
    where: Where

    @classmethod
    def of(cls, value: Any, name: str, where: Where, allowed: Iterable[str] | None) -> Section:
        """`value` as a table named `name`; `allowed` None: any key (e.g. notebook parameters)."""
        if not isinstance(value, dict):
            raise where.error(name, f"must be a table, like [{name}]")
        if allowed is not None:
            known = sorted(allowed)
            for key in value:
                if key not in known:
                    close = difflib.get_close_matches(key, known, n=1)
                    hint = f"did you mean {close[0]!r}?" if close else "known: " + ", ".join(known)
                    raise where.error(_join(name, key), f"unknown key; {hint}")
        return cls(value, name, where)

    def key(self, key: str) -> str:
        return _join(self.name, key)

    def get(self, key: str, check: Check, default: Any = None, *extra: Any) -> Any:
        if key not in self.values:
            return default
        return check(self.values[key], self.key(key), self.where, *extra)

    def require(self, key: str, check: Check, *extra: Any) -> Any:
        if key not in self.values:
            raise self.where.error(self.key(key), "is missing")
        return check(self.values[key], self.key(key), self.where, *extra)

    def table(self, key: str, allowed: Iterable[str] | None) -> Section:
        """A sub-table (empty when absent)."""
        return Section.of(self.values.get(key, {}), self.key(key), self.where, allowed)

    def tables(self, key: str, allowed: Iterable[str] | None) -> list[Section]:
        """An array of tables (`[[key]]`), each as a Section named `key[i]`."""
        value = self.values.get(key, [])
        if not isinstance(value, list):
            raise self.where.error(self.key(key), f"must be an array of tables, like [[{key}]]")
        return [
            Section.of(item, f"{self.key(key)}[{index}]", self.where, allowed)
            for index, item in enumerate(value)
        ]

    def error(self, key: str, message: str) -> GraderError:
        return self.where.error(self.key(key) if key else self.name, message)


def _join(name: str, key: str) -> str:
    return f"{name}.{key}" if name else key


# --- checks: (value, key, where, *extra) -> value ------------------------------------------


def string(value: Any, key: str, where: Where) -> str:
    if not isinstance(value, str):
        raise where.error(key, f"must be a string, not {value!r}")
    return value


def text(value: Any, key: str, where: Where) -> str:
    """A string that says something."""
    if not isinstance(value, str) or not value.strip():
        raise where.error(key, f"must be a non-empty string, not {value!r}")
    return value


def boolean(value: Any, key: str, where: Where) -> bool:
    if not isinstance(value, bool):
        raise where.error(key, f"must be true or false, not {value!r}")
    return value


def integer(value: Any, key: str, where: Where, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise where.error(key, f"must be a whole number ≥ {minimum}, not {value!r}")
    return value


def number(value: Any, key: str, where: Where) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise where.error(key, f"must be a number, not {value!r}")
    return float(value)


def fraction(value: Any, key: str, where: Where) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise where.error(key, f"must be a fraction between 0 and 1 (0.1 = 10 %), not {value!r}")
    return float(value)


def choice(value: Any, key: str, where: Where, choices: Iterable[str]) -> str:
    choices = tuple(choices)
    if value not in choices:
        raise where.error(key, f"must be one of {', '.join(map(repr, choices))}, not {value!r}")
    return value


def strings(value: Any, key: str, where: Where) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise where.error(key, f"must be a list of strings, not {value!r}")
    return list(value)


def any_table(value: Any, key: str, where: Where) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise where.error(key, f"must be a table, like [{key}], not {value!r}")
    return dict(value)


# --- where each key is ----------------------------------------------------------------------

_PARENT = re.compile(r"(\.[^.\[\]]*|\[\d+\])$")
_HEADER = re.compile(r"\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")
_ASSIGNMENT = re.compile(r"\s*([A-Za-z0-9_\-.\"' ]+?)\s*=")


def key_lines(text: str) -> dict[str, int]:
    """Dotted key → the line it is set on. The n-th `[[name]]` table is `name[n]`."""
    lines: dict[str, int] = {}
    arrays: dict[str, int] = {}
    table = ""
    for number_, line in enumerate(text.splitlines(), start=1):
        if header := _HEADER.match(line):
            name = _dotted(header.group(2))
            if header.group(1) == "[[":
                arrays[name] = arrays.get(name, -1) + 1
                name = f"{name}[{arrays[name]}]"
            table = name
            lines.setdefault(table, number_)
        elif assignment := _ASSIGNMENT.match(line):
            key = _dotted(assignment.group(1))
            lines.setdefault(_join(table, key), number_)
    return lines


def _dotted(key: str) -> str:
    return ".".join(part.strip().strip("\"'") for part in key.split("."))
