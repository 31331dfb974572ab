"""A notebook's traceback as a student should read it: the frames of the student's own cells
(and of files in the notebook's folder) in full, in the order they ran; every run of frames in
torch, the standard library or the grader's runner folded into one line with a count; no path
of the grading machine. Pure logic on the text IPython wrote, ANSI colours removed."""

from __future__ import annotations

import re
from dataclasses import dataclass

from grader.records.escape import hide_paths

# Where a frame starts, as IPython 8 (`Cell In[3], line 5`, `File /x.py:12, in f(a)`), IPython 7
# (`<ipython-input-3-…> in <module>`, `/tmp/ipykernel_1/2.py in f()`) and plain Python
# (`  File "x.py", line 3, in f`) write it.
_FRAME = re.compile(
    r"^(?:Cell In\[\d+\], line \d+.*|Input In \[\d+\].*|File \S.*|\s*File \".*\", line \d+.*"
    r"|<ipython-input-.*|\S+\.py in .*)$"
)
_STUDENT = re.compile(
    r"^(?:Cell In\[|Input In \[|<ipython-input-)|ipykernel_\d+|^\s*File \"?\./|"
    r"^\s*File \"<ipython-input-"
)
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_OWNERS = [
    (re.compile(r"<site-packages>/([A-Za-z0-9_]+)"), None),  # the package's own name
    (re.compile(r"<python>/"), "the Python standard library"),
    (re.compile(r"<grader>/grader/"), "the grader"),
]


@dataclass(frozen=True)
class Frame:
    lines: list[str]

    @property
    def students(self) -> bool:
        return bool(_STUDENT.search(self.lines[0]))

    @property
    def owner(self) -> str:
        for pattern, name in _OWNERS:
            found = pattern.search(self.lines[0])
            if found:
                return name or found.group(1)
        return "other code"


def student_traceback(text: str) -> str:
    """The traceback with framework frames folded: `… 9 frames in torch, torchvision`."""
    lines = hide_paths(_ANSI.sub("", text)).splitlines()
    pieces: list[str | Frame] = []  # context lines (header, error, chained …) and frames
    for line in lines:
        if _FRAME.match(line):
            pieces.append(Frame([line]))
        elif isinstance(pieces[-1:] and pieces[-1], Frame) and _inside_frame(line):
            pieces[-1].lines.append(line)
        elif line.strip() and not re.fullmatch(r"-{20,}", line.strip()):
            pieces.append(line)
    blocks: list[list[str]] = []  # frames, fold lines and runs of context, one block each
    folded: list[Frame] = []
    context: list[str] | None = None
    for piece in [*pieces, None]:
        if isinstance(piece, Frame) and not piece.students:
            folded.append(piece)
            continue
        if folded:
            owners = ", ".join(dict.fromkeys(frame.owner for frame in folded))
            count = len(folded)
            blocks.append([f"… {count} frame{'s' if count != 1 else ''} in {owners}"])
            folded = []
        if isinstance(piece, Frame):
            blocks.append([line.rstrip() for line in piece.lines if line.strip()])
        elif piece is not None:
            if blocks and blocks[-1] is context:
                context.append(piece.rstrip())
            else:
                context = [piece.rstrip()]
                blocks.append(context)
    return "\n\n".join("\n".join(block) for block in blocks)


def _inside_frame(line: str) -> bool:
    """A frame's own lines: source lines (indented or numbered), arrows, blank lines."""
    return not line.strip() or line[:1].isspace() or bool(re.match(r"^-*>", line))
