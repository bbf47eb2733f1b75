"""The HTML book builds offline, strictly, and renders math, citations and glued numbers."""

import functools
import http.server
import os
import re
import threading
import time
from pathlib import Path

import pytest

from coursekit.book.build import build_html
from coursekit.book.execute import chapters

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def html():
    start = time.perf_counter()
    out = build_html(ROOT)  # --warningiserror: any broken reference or glue fails here
    seconds = time.perf_counter() - start
    print(f"book built in {seconds:.1f} s")
    assert seconds <= 90, f"the book took {seconds:.0f} s to build; the budget is 90 s"
    return out


@pytest.mark.book
def test_every_chapter_has_a_page(html):
    assert (html / "index.html").exists() or (html / "book" / "intro.html").exists()
    for path in chapters(ROOT):
        page = html / "book" / f"{path.stem}.html"
        assert page.exists(), f"{path.name} was not built into {page}"


@pytest.mark.book
def test_math_is_served_locally(html):
    pages = [html / "book" / f"{p.stem}.html" for p in chapters(ROOT)]
    for page in pages:
        text = page.read_text()
        assert not re.search(r"https?://[^\"']*mathjax", text, re.I), f"{page.name} loads a CDN"
    assert list(html.glob("_static/**/tex-chtml*.js")) or list(html.glob("_static/**/mathjax*")), \
        "no local MathJax under _static"


@pytest.mark.book
def test_bibliography_and_citations_resolve(html):
    references = (html / "book" / "references.html").read_text()
    assert "Gradient-based learning applied to document recognition" in references
    text = "".join((html / "book" / f"{p.stem}.html").read_text() for p in chapters(ROOT))
    assert "references.html#id" in text or 'class="reference internal" href="references.html' \
        in text, "no chapter links a citation to the bibliography"


@pytest.mark.book
def test_launch_buttons_and_repository_link(html):
    page = (html / "book" / f"{chapters(ROOT)[0].stem}.html").read_text()
    assert "colab.research.google.com" in page and "mybinder.org" in page
    assert "github.com/dl-foundations/deep-learning-foundations" in page


@pytest.mark.book
def test_math_renders_in_a_browser_without_network(html, tmp_path):
    """Chromium opens a chapter from a local server, with every non-local request refused."""
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail("chromium is missing; .ci/run installs it with apt-get")
        pytest.skip("chromium not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(html))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    page_name = next(p.stem for p in chapters(ROOT) if "$" in p.read_text())
    outside = []
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=str(CHROMIUM),
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                      "--disable-component-update", "--disable-sync", "--no-first-run"])
            page = browser.new_page()

            def route(route):
                if route.request.url.startswith(base):
                    route.continue_()
                else:
                    outside.append(route.request.url)
                    route.abort()

            page.route("**/*", route)
            page.goto(f"{base}/book/{page_name}.html")
            page.wait_for_selector("mjx-container", state="attached", timeout=30_000)
            page.wait_for_selector("article mjx-container >> visible=true", timeout=30_000)
            rendered = page.locator("article mjx-container >> visible=true").count()
            shot = ROOT / "_build" / "screenshots"
            shot.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shot / f"{page_name}.png"), full_page=False)
            browser.close()
    finally:
        server.shutdown()
    assert rendered > 0
    assert not [u for u in outside if "mathjax" in u.lower()], outside


@pytest.mark.book
def test_computation_graphs_render_in_chapter_1(html):
    page = (html / "book" / "01_autodiff.html").read_text()
    svgs = [html / "_images" / name
            for name in re.findall(r'src="\.\./_images/([0-9a-f]+\.svg)"', page)]
    graphs = [p for p in svgs if "computation graph of f" in p.read_text()]
    assert graphs, "chapter 1 shows no drawn computation graph"
    assert all(">log<" in p.read_text() and ">sqrt<" in p.read_text() for p in graphs)
