"""Render a local HTML page in headless Chromium and read back the DOM after its scripts ran.

    python -m tools.browser dvc_plots/index.html     # counts rendered Vega views and images that loaded

`render_dom(path)` returns the page as the browser left it (SVG/canvas that scripts drew, attributes they set).
`check_images(path)` says, for every <img>, whether it loaded. Both work on any local HTML file and never touch
the network: Chromium runs with a fresh profile and its background services off. `make browser` installs it.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         # containers often have a small /dev/shm; Chromium crashes when it fills up
         "--disable-dev-shm-usage")

# Runs after every image has loaded or failed ('load' waits for both), so the dumped DOM carries the verdict.
IMAGE_CHECK = """<script>
window.addEventListener('load', () => {
  for (const img of document.images) {
    img.setAttribute('data-loaded', img.complete && img.naturalWidth > 0 ? 'yes' : 'no');
  }
  document.body.setAttribute('data-images-checked', String(document.images.length));
});
</script>"""


class BrowserMissing(RuntimeError):
    """No Chromium on this machine."""


def find_chromium() -> str:
    """Path of the Chromium binary ($CHROMIUM wins); raises BrowserMissing when there is none."""
    override = os.environ.get("CHROMIUM")
    if override:
        if shutil.which(override):
            return shutil.which(override)
        raise BrowserMissing(f"CHROMIUM={override!r} is not an executable")
    for name in CANDIDATES:
        if found := shutil.which(name):
            return found
    raise BrowserMissing("chromium not found on PATH (looked for " + ", ".join(CANDIDATES)
                         + "); `make browser` installs Debian's chromium")


def render_dom(html_path: str | Path, wait_ms: int = 5000, inject: str | None = None, timeout_s: float = 120) -> str:
    """The DOM of a local HTML file after its scripts ran for `wait_ms` of virtual time.

    Args:
        html_path: any local HTML file; relative URLs in it resolve against its own folder.
        wait_ms: virtual-time budget: timers and animations run this long, without waiting in real time.
        inject: HTML (e.g. a <script>) appended to a temporary copy of the page; the file itself is never changed.
        timeout_s: real-time limit for the browser process.
    """
    path = Path(html_path).resolve()
    if not path.is_file():
        raise FileNotFoundError(path)
    binary = find_chromium()
    with tempfile.TemporaryDirectory(prefix="render-dom-") as tmp:
        page = path
        if inject:
            page = Path(tmp) / "page.html"
            page.write_text(_with_base(path.read_text(encoding="utf8"), path.parent.as_uri() + "/") + inject,
                            encoding="utf8")
        cmd = [binary, *FLAGS, f"--user-data-dir={Path(tmp) / 'profile'}", f"--virtual-time-budget={int(wait_ms)}",
               "--dump-dom", page.as_uri()]
        done = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=timeout_s)
    if done.returncode != 0 or not done.stdout.strip():
        raise RuntimeError(f"chromium exited with {done.returncode} on {path}:\n{done.stderr[-3000:]}")
    return done.stdout


def _with_base(html: str, base_url: str) -> str:
    """`html` with a <base> so that a copy in another folder loads the same relative files."""
    tag = f'<base href="{base_url}">'
    for pattern in (r"<head[^>]*>", r"<!doctype[^>]*>"):
        if match := re.search(pattern, html, flags=re.IGNORECASE):
            return html[:match.end()] + tag + html[match.end():]
    return tag + html


@dataclass
class PageSummary:
    """What a rendered page contains: Vega views per embed target, and images by load status."""
    vega_targets: list[str] = field(default_factory=list)  # ids passed to vegaEmbed('#id', ...)
    rendered: dict[str, int] = field(default_factory=dict)  # id -> Vega views (svg/canvas.marks) inside it
    images: dict[str, list[str]] = field(default_factory=lambda: {"yes": [], "no": [], "unchecked": []})
    script_srcs: list[str] = field(default_factory=list)

    @property
    def unrendered(self) -> list[str]:
        return [target for target in self.vega_targets if not self.rendered.get(target)]


class _Walker(HTMLParser):
    VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track",
                      "wbr"})

    def __init__(self, summary: PageSummary):
        super().__init__(convert_charrefs=True)
        self.summary, self.open_ids = summary, []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        classes = (attrs.get("class") or "").split()
        if tag in ("svg", "canvas") and "marks" in classes:  # vega's root element, never an icon
            for element_id in {i for i in self.open_ids if i}:
                self.summary.rendered[element_id] = self.summary.rendered.get(element_id, 0) + 1
        if tag == "img":
            self.summary.images.setdefault(attrs.get("data-loaded", "unchecked"), []).append(attrs.get("src") or "")
        if tag == "script" and attrs.get("src"):
            self.summary.script_srcs.append(attrs["src"])
        if tag not in self.VOID:
            self.open_ids.append(attrs.get("id"))

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in self.VOID:
            self.open_ids.pop()

    def handle_endtag(self, tag):
        if tag not in self.VOID and self.open_ids:
            self.open_ids.pop()


def vega_targets(html: str) -> list[str]:
    """Element ids a page passes to vegaEmbed('#id', ...), in order (DVC writes one call per plot)."""
    return list(dict.fromkeys(re.findall(r"""vegaEmbed\(\s*['"]#([^'"]+)['"]""", html)))


def summarize(dom: str, source: str) -> PageSummary:
    """Vega views per embed target, image load status and script URLs of a rendered page.

    Args:
        dom: what render_dom returned.
        source: the page's HTML as written; the embed calls are read from it because vega-embed replaces the
            target's content, script included.
    """
    summary = PageSummary(vega_targets=vega_targets(source))
    _Walker(summary).feed(dom)
    return summary


def check_images(html_path: str | Path, wait_ms: int = 5000) -> dict[str, list[str]]:
    """{'yes': [src, ...], 'no': [src, ...]}: which <img> of a local page loaded and which did not."""
    images = summarize(render_dom(html_path, wait_ms=wait_ms, inject=IMAGE_CHECK), source="").images
    return {"yes": images.get("yes", []), "no": images.get("no", [])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("page", type=Path, help="local HTML file")
    parser.add_argument("--wait-ms", type=int, default=5000, help="virtual time the page's scripts get")
    args = parser.parse_args(argv)
    dom = render_dom(args.page, wait_ms=args.wait_ms, inject=IMAGE_CHECK)
    summary = summarize(dom, source=args.page.read_text(encoding="utf8"))
    remote = [src for src in summary.script_srcs if re.match(r"(https?:)?//", src)]
    print(f"{args.page}: {len(summary.vega_targets) - len(summary.unrendered)}/{len(summary.vega_targets)} "
          f"Vega plots rendered; images loaded {len(summary.images['yes'])}, broken {len(summary.images['no'])}; "
          f"remote scripts {len(remote)}")
    for target in summary.unrendered:
        print(f"  not rendered: #{target}")
    for src in summary.images["no"] + remote:
        print(f"  broken image or remote script: {src}")
    return 1 if summary.unrendered or summary.images["no"] or remote else 0


if __name__ == "__main__":
    raise SystemExit(main())
