"""Pictures of reports as GitHub shows them, for docs/reports.md and the README.

    python docs/render_reports.py                     # grade the demo, draw every report
    python docs/render_reports.py --demo DIR          # the reports of `grader demo --out DIR`
    python docs/render_reports.py REPORT.md --name x  # one report as docs/reports/x.png

Each report.md is rendered with cmark-gfm (GitHub's own CommonMark fork, with its table,
strikethrough, autolink and tagfilter extensions), styled with GitHub's stylesheet
(github-markdown-css), its mermaid blocks drawn by mermaid, and photographed by headless
Chromium, all from local files: nothing is downloaded while it runs. `<details>` stay closed,
as on GitHub. The pictures are cropped and reduced to 256 colours to stay small.

Needs: `apt-get install chromium cmark-gfm fonts-noto-color-emoji` and
`npm ci --prefix docs/render` (github-markdown-css and mermaid, pinned in
docs/render/package.json). Not run by the test suite; tests/report_checks.py checks the same
reports with markdown-it-py instead.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image, ImageChops

DOCS = Path(__file__).resolve().parent
REPO = DOCS.parent
MODULES = DOCS / "render" / "node_modules"
WIDTH = 880  # about the width of an issue comment on github.com
PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8">
<link rel="stylesheet" href="{css}">
<style>
  body {{ margin: 0; background: #ffffff; }}
  .comment {{ width: {width}px; box-sizing: border-box; margin: 16px; border: 1px solid #d1d9e0;
              border-radius: 6px; padding: 16px 24px; }}
  .markdown-body {{ font-size: 14px; }}
  pre.mermaid {{ background: #ffffff; }}
</style>
<script src="{mermaid}"></script>
</head><body><div class="comment"><article class="markdown-body">
{body}
</article></div>
<script>mermaid.initialize({{startOnLoad: true, theme: "default"}});</script>
</body></html>
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("reports", nargs="*", type=Path, help="report.md files to draw")
    parser.add_argument("--name", help="the picture's name, for one report")
    parser.add_argument("--demo", type=Path, help="a `grader demo --out` folder to draw")
    parser.add_argument("--prefix", default="", help="put before each picture's name")
    parser.add_argument("--out", type=Path, default=DOCS / "reports")
    parser.add_argument(
        "--open", action="store_true", help="draw <details> open, as after a reader's click"
    )
    args = parser.parse_args(argv)
    _require()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.reports:
        jobs = [(report, args.name or report.parent.name) for report in args.reports]
    else:
        demo = args.demo or _run_demo()
        jobs = [
            (report, f"{report.parent.parent.name}-{_name(report.parent)}")
            for report in sorted(demo.glob("week*/*/report.md"))
        ]
    for report, name in jobs:
        picture = args.out / f"{args.prefix}{name}.png"
        draw(report.read_text(encoding="utf-8"), picture, opened=args.open)
        print(f"{picture.relative_to(REPO) if picture.is_relative_to(REPO) else picture}")


def draw(markdown: str, picture: Path, opened: bool = False) -> None:
    """report.md as GitHub renders it, photographed into `picture`; `opened`: with every
    `<details>` open."""
    body = subprocess.run(
        ["cmark-gfm", "--unsafe", "--github-pre-lang", *_extensions()],
        input=markdown,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    # GitHub draws ```mermaid blocks; cmark-gfm leaves them as code for the page to draw.
    body = re.sub(
        r'<pre lang="mermaid"><code>(.*?)</code></pre>',
        lambda m: f'<pre class="mermaid">{m.group(1)}</pre>',
        body,
        flags=re.S,
    )
    if opened:
        body = body.replace("<details>", "<details open>")
    page = PAGE.format(
        css=(MODULES / "github-markdown-css" / "github-markdown-light.css").as_uri(),
        mermaid=(MODULES / "mermaid" / "dist" / "mermaid.min.js").as_uri(),
        width=WIDTH,
        body=body,
    )
    with tempfile.TemporaryDirectory(prefix="render-") as scratch:
        source = Path(scratch) / "report.html"
        source.write_text(page, encoding="utf-8")
        shot = Path(scratch) / "shot.png"
        subprocess.run(
            [
                _chromium(), "--headless", "--no-sandbox", "--disable-gpu",
                "--disable-background-networking", "--disable-component-update",
                "--no-first-run", "--hide-scrollbars", f"--user-data-dir={scratch}/profile",
                "--allow-file-access-from-files", "--force-device-scale-factor=1",
                "--virtual-time-budget=15000", f"--window-size={WIDTH + 32},12000",
                f"--screenshot={shot}", source.as_uri(),
            ],
            capture_output=True,
            check=True,
            timeout=180,
        )  # fmt: skip
        _crop_and_shrink(shot, picture)


def _crop_and_shrink(shot: Path, picture: Path) -> None:
    image = Image.open(shot).convert("RGB")
    background = Image.new("RGB", image.size, (255, 255, 255))
    box = ImageChops.difference(image, background).getbbox()
    if box:
        image = image.crop((0, 0, image.width, min(image.height, box[3] + 16)))
    image.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(picture, optimize=True)


def _run_demo() -> Path:
    out = Path(tempfile.mkdtemp(prefix="render-demo-"))
    subprocess.run(
        [sys.executable, "-m", "grader.cli", "demo", "--out", str(out)], check=False, cwd=REPO
    )
    return out


def _name(folder: Path) -> str:
    week = folder.parent.name
    return "reference" if folder.name == week else folder.name


def _extensions() -> list[str]:
    extensions = ("table", "strikethrough", "autolink", "tagfilter")
    return [arg for extension in extensions for arg in ("-e", extension)]


def _chromium() -> str:
    return shutil.which("chromium") or shutil.which("chromium-browser") or "chromium"


def _require() -> None:
    missing = [tool for tool in ("cmark-gfm",) if not shutil.which(tool)]
    if not shutil.which("chromium") and not shutil.which("chromium-browser"):
        missing.append("chromium")
    if missing:
        sys.exit(f"missing: {', '.join(missing)} (apt-get install chromium cmark-gfm)")
    if not (MODULES / "mermaid").is_dir():
        sys.exit("missing: mermaid and github-markdown-css (npm ci --prefix docs/render)")


if __name__ == "__main__":
    main()
