"""The whole book as one PDF, printed from the built HTML by the local chromium.

Each page of the table of contents is opened from a local server in Debian's chromium
(``/usr/bin/chromium``, driven by Playwright; no browser is downloaded), MathJax is given time
to typeset every formula, and the page is printed with the theme's print styles (no sidebars,
no buttons). The printed pages are joined in the order of ``_toc.yml`` with pypdf, one
bookmark per page. ``coursekit pdf`` writes ``_build/html/book.pdf``, so it is published
next to the edition it was printed from.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import io
import threading
from collections.abc import Iterator
from pathlib import Path

import yaml

CHROMIUM = Path("/usr/bin/chromium")
PDF_NAME = "book.pdf"
# MathJax 3 resolves startup.promise once the page's formulas are typeset.
WAIT_FOR_MATH = """async () => {
  if (document.fonts) { await document.fonts.ready; }
  if (!document.querySelector('.math')) { return 0; }
  for (let i = 0; i < 300 && !(window.MathJax && MathJax.startup && MathJax.startup.promise); i++) {
    await new Promise(r => setTimeout(r, 100));
  }
  await MathJax.startup.promise;
  return document.querySelectorAll('mjx-container').length;
}"""


def toc_pages(root: Path) -> list[str]:
    """The book's pages in reading order (``book/intro``, ``book/01_autodiff``, ...)."""
    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    pages = [toc["root"]]

    def walk(entries: list[dict]) -> None:
        for entry in entries or []:
            if "file" in entry:
                pages.append(entry["file"])
            walk(entry.get("sections", []))

    for part in toc.get("parts", []):
        walk(part.get("chapters", []))
    walk(toc.get("chapters", []))
    return [str(Path(p).with_suffix("")) for p in pages]


@contextlib.contextmanager
def serve(folder: Path) -> Iterator[str]:
    """Serve ``folder`` on a free localhost port; yield its base URL."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def print_book(html: Path, out: Path | None = None, pages: list[str] | None = None,
               chromium: Path = CHROMIUM, browser=None) -> Path:
    """Print ``pages`` (default: the table of contents) of the build ``html`` into one PDF.

    ``browser``: a Playwright chromium already launched (tests share one); by default this
    launches ``chromium`` and closes it when done.
    """
    from playwright.sync_api import sync_playwright
    from pypdf import PdfWriter

    html = Path(html)
    root = html.parents[1] if html.parent.name == "_build" else Path.cwd()
    pages = pages or toc_pages(root)
    out = Path(out) if out else html / PDF_NAME
    if browser is None and not chromium.exists():
        raise FileNotFoundError(f"{chromium} is missing: apt-get install chromium")
    missing = [p for p in pages if not (html / f"{p}.html").exists()]
    if missing:
        raise FileNotFoundError(f"not built: {', '.join(missing)} (run `coursekit build`)")

    writer = PdfWriter()
    with serve(html) as base:
        if browser is not None:
            _print_pages(browser, base, pages, writer)
        else:
            with sync_playwright() as playwright:
                launched = playwright.chromium.launch(
                    executable_path=str(chromium),
                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                          "--disable-component-update", "--no-first-run"])
                try:
                    _print_pages(launched, base, pages, writer)
                finally:
                    launched.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    writer.add_metadata({"/Title": "Foundations of Deep Learning: an executable textbook"})
    with out.open("wb") as handle:
        writer.write(handle)
    return out


def _print_pages(browser, base: str, pages: list[str], writer) -> None:
    """Print each page served at ``base`` and append its sheets to ``writer``."""
    from pypdf import PdfReader

    page = browser.new_page()

    def local_only(route):  # the book needs nothing from outside the machine
        url = route.request.url
        route.continue_() if url.startswith(base) or url.startswith("data:") else route.abort()

    page.route("**/*", local_only)
    try:
        for name in pages:
            page.emulate_media(media="screen")
            page.goto(f"{base}/{name}.html", wait_until="networkidle")
            page.evaluate(WAIT_FOR_MATH)
            page.emulate_media(media="print")
            title = page.title().split(" \u2014 ")[0].strip() or name
            printed = page.pdf(format="A4", print_background=True,
                               margin={"top": "18mm", "bottom": "18mm",
                                       "left": "16mm", "right": "16mm"})
            first = len(writer.pages)
            for sheet in PdfReader(io.BytesIO(printed)).pages:
                writer.add_page(sheet)
            writer.add_outline_item(title=title, page_number=first)
    finally:
        page.close()
