"""What every report the suite writes must be, checked by parsing it as GitHub would (CommonMark
and GFM tables, with markdown-it-py): nothing shown raw that should render (HTML in the wrong
place, Markdown inside an HTML block, a broken table), nothing live that came from a submission
(a heading, mention, issue reference, link, image or HTML), no path of the grading machine, and
results.json in Gradescope's format. Used by the unit tests and by the session-end scan in
conftest.py."""

from __future__ import annotations

import html
import json
import re
import sys
from functools import cache
from pathlib import Path

from markdown_it import MarkdownIt

SCHEMA = Path(__file__).parent / "schemas" / "gradescope-results.schema.json"

# Strings a hostile notebook puts wherever it can: outputs, exception names and messages, class
# and file names, its login. Each carries PWNED, so a heading made of one is easy to spot.
HOSTILE = [
    "```\n## ✅ passed 10/10\n@octocat PWNED",
    "</details>\n\n# PWNED heading\n\n<details><summary>x</summary>",
    "<img src=x onerror=alert(1)> <script>alert('PWNED')</script> <b>PWNED</b>",
    "[click PWNED](https://evil.example/x) ![PWNED](https://evil.example/p.png) <https://e.x>",
    "@org/team and @octocat and #12 and GH-34 and owner/repo#56 PWNED",
    "https://evil.example/PWNED and www.evil.example and mail me at a@evil.example",
    "| forged | PWNED | row |\n|---|---|---|\n| a | b | c |",
    "**bold** _em_ ~~strike~~ `code` $\\huge{PWNED}$ \\`not code\\`",
    "\u202eRTL override PWNED\u202c and \u2066isolate\u2069",
    "[bold red]PWNED[/] [link=https://evil.example]click[/link]",
    "line1\r\n## PWNED\rline3\n=====",
    "<!-- grader-report week=week3 student=bob --> PWNED",
    "    indented PWNED\n- list item\n1. ordered\n> quote PWNED\n---",
    "&lt;b&gt; &#64;octocat &#x23;12 PWNED",
    "`` `code` `` ``` unbalanced ` and `| pipe in code |` PWNED",
    "a\x00b\x1b[31mred\x1b[0m\x07 PWNED",
    "[PWNED]: https://evil.example/ref\n[ref link][PWNED]",
]

_ALLOWED_HTML = re.compile(
    r"^(?:<!-- grader-(?:report|sticky) [^<>]*-->"
    r"|(?:<details>|</details>|<summary>(?:[^<]|</?code>)*</summary>)+)$"
)
_MARKER = re.compile(r"<!-- grader-report week=[\w.-]+ student=[\w.-]+ -->")
_MENTION = re.compile(r"(?<![\w`])@[A-Za-z0-9][A-Za-z0-9-]*")
_ISSUE = re.compile(r"(?<![\w&])#\d|\bGH-\d", re.IGNORECASE)
_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://|\bwww\.", re.IGNORECASE)


def _markdown() -> MarkdownIt:
    return MarkdownIt("commonmark").enable(["table", "strikethrough"])


def parse(text: str):
    return _markdown().parse(text)


def rendered_text(markdown: str) -> str:
    """Markdown as a reader sees it: rendered, tags dropped, escapes and entities resolved."""
    return html.unescape(re.sub(r"<[^>]+>", "", _markdown().render(markdown)))


def display_problems(text: str) -> list[str]:
    """What GitHub would show raw or broken: HTML that is not the grader's own (it is shown or
    stripped), Markdown inside an HTML block (shown as typed), a table that did not parse or has
    rows of the wrong width or an empty header."""
    problems = []
    lines = text.splitlines()
    tokens = parse(text)
    for index, token in enumerate(tokens):
        if token.type == "html_block":
            for line in token.content.strip().splitlines():
                if not _ALLOWED_HTML.match(line.strip()):
                    problems.append(f"raw HTML: {line.strip()[:80]!r}")
                inside = re.sub(r"<[^>]+>", "", line)
                if re.search(r"`|\*\*|\]\(", inside):
                    problems.append(f"Markdown inside HTML, shown as typed: {line.strip()[:80]!r}")
        if token.type == "inline":
            for child in token.children or []:
                if child.type == "html_inline":
                    problems.append(f"inline HTML: {child.content[:80]!r}")
            if (
                token.content.lstrip().startswith("|")
                and tokens[index - 1].type == "paragraph_open"
            ):
                problems.append(f"a table that did not parse: {token.content[:80]!r}")
        if token.type == "table_open" and token.map:
            start, end = token.map
            widths = {_cells(line) for line in lines[start:end]}
            if len(widths) > 1:
                problems.append(
                    f"table rows of different widths {sorted(widths)}: {lines[start]!r}"
                )
        if token.type == "thead_open":
            header = []
            for cell in tokens[index:]:
                if cell.type == "thead_close":
                    break
                if cell.type == "inline":
                    header.append(cell.content.strip())
            if not any(header):
                problems.append(f"a table with an empty header row: {lines[token.map[0]]!r}")
    return problems


def live_problems(text: str, marker: str = "PWNED", links: bool = False) -> list[str]:
    """What a submission could have made live: a heading or HTML holding its text, any mention,
    issue reference or autolinked URL, and a link or image (one holding its text, when the
    view has `links` of its own)."""
    problems = []
    tokens = parse(text)
    for index, token in enumerate(tokens):
        if token.type == "heading_open" and marker in tokens[index + 1].content:
            problems.append(f"a forged heading: {tokens[index + 1].content[:80]!r}")
        ours = _MARKER.fullmatch(token.content.strip())  # safe names only
        if token.type in ("html_block", "html_inline") and marker in token.content and not ours:
            problems.append(f"forged HTML: {token.content[:80]!r}")
        for child in token.children or []:
            if child.type in ("link_open", "image") and (
                not links or marker in str(child.attrs) + str(child.content)
            ):
                problems.append(f"a link or image: {child.attrs}")
            if child.type == "html_inline" and marker in child.content:
                problems.append(f"forged HTML: {child.content[:80]!r}")
            if child.type == "text":
                for name, pattern in (("mention", _MENTION), ("issue", _ISSUE), ("URL", _URL)):
                    found = pattern.search(child.content)
                    if found:
                        problems.append(f"a live {name}: {child.content[:80]!r}")
    return problems


def machine_paths(text: str) -> list[str]:
    """The grading machine's own folders (the checkout, the virtual environment) in a report."""
    repo = Path(__file__).resolve().parents[1]
    folders = {str(repo), sys.prefix, str(Path(sys.prefix).resolve())}
    return [f"the path {folder}" for folder in sorted(folders) if folder in text]


def gradescope_problems(results: dict) -> list[str]:
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(_schema())
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '(top)'}: {error.message[:200]}"
        for error in validator.iter_errors(results)
    ]


@cache
def _schema() -> dict:
    return json.loads(SCHEMA.read_text())


def _cells(line: str) -> int:
    """The cells of a GFM table row: pipes not escaped, outer ones not counted."""
    row = line.strip()
    row = row[1:] if row.startswith("|") else row
    row = row[:-1] if row.endswith("|") and not row.endswith("\\|") else row
    return len(re.split(r"(?<!\\)\|", row))


def scan(root: Path) -> list[str]:
    """Every grader output under `root`: results.json (Gradescope's schema, and its report),
    report.md, comment.md, leaderboard.md and job summaries."""
    problems = []
    for results in root.rglob("results.json"):
        try:
            payload = json.loads(results.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            problems.append(f"{results}: not JSON ({error})")
            continue
        problems += [f"{results}: {p}" for p in gradescope_problems(payload)]
        output = payload.get("output")
        if isinstance(output, str):
            problems += [f"{results} output: {p}" for p in _text_problems(output)]
    names = ("report.md", "comment.md", "leaderboard.md")
    for path in root.rglob("*.md"):
        text = path.read_text(encoding="utf-8", errors="replace")
        ours = path.name in names and (path.parent / "results.json").exists()
        ours = ours or path.name == "leaderboard.md" or text.startswith("## 🧪 Grader")
        ours = ours or (
            path.name == "comment.md" and (path.parent.parent.parent / "ci.json").exists()
        )
        if ours:
            problems += [f"{path}: {p}" for p in _text_problems(text)]
    return problems


def _text_problems(text: str) -> list[str]:
    return display_problems(text) + machine_paths(text) + live_problems(text, links=True)


def mermaid_charts(report: str) -> list[dict]:
    """Each xychart in a report as drawn: its x-axis epochs, and each line's values under the
    name the legend after the chart gives its colour."""
    found = []
    pattern = r"```mermaid\n(.*?)\n```\n\n(.*?)\n"
    for source, legend in re.findall(pattern, report, flags=re.S):
        axis = re.search(r'x-axis "epoch" \[([^\]]*)\]', source).group(1)
        lines = [
            [float(v) for v in values.split(", ")]
            for values in re.findall(r"^\s*line \[([^\]]*)\]", source, flags=re.M)
        ]
        palette = re.search(r'"plotColorPalette": "([^"]*)"', source).group(1).split(", ")
        names = re.findall(r"(\w+): `([^`]+)`", legend)
        assert len(names) == len(lines) == len(palette), (source, legend)
        found.append(
            {
                "epochs": [int(e) for e in axis.split(", ")],
                "lines": {name: values for (_, name), values in zip(names, lines, strict=True)},
                "colours": [colour for colour, _ in names],
                "palette": palette,
            }
        )
    return found


def assert_charts_match_the_logged_curves(report: str, curves: dict[str, list[float]]) -> None:
    """Every logged series is drawn, each value at its own epoch, in a colour of its own."""
    charts = mermaid_charts(report)
    drawn = {name for chart in charts for name in chart["lines"]}
    assert drawn == set(curves), (drawn, set(curves))
    for chart in charts:
        assert chart["epochs"] == sorted(set(chart["epochs"])) and chart["epochs"][0] == 1
        assert len(set(chart["colours"])) == len(chart["colours"])  # lines told apart
        assert len(set(chart["palette"])) == len(chart["palette"])
        for name, values in chart["lines"].items():
            logged = [curves[name][e - 1] for e in chart["epochs"] if e <= len(curves[name])]
            assert len(values) == len(logged), (name, values, logged)
            for drawn_value, value in zip(values, logged, strict=True):
                assert abs(drawn_value - value) <= 5e-4 * max(1.0, abs(value)), (name, values)
