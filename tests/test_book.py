"""The HTML book builds offline, strictly, and renders math, citations and glued numbers;
the site around it is clean (no console errors, one search box, readable tables and search
snippets) and prints into one PDF with its formulas typeset."""

import functools
import http.server
import json
import os
import re
import threading
from pathlib import Path

import pytest

from coursekit.book.build import build_html
from coursekit.book.execute import chapters

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def html():
    # --warningiserror: any broken reference or glue fails here. How long it takes is
    # benchmarks' business (tests never assert on wall-clock time).
    return build_html(ROOT)


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
def test_launch_buttons_and_links_only_to_student_material(html):
    repository = "github.com/dl-foundations/deep-learning-foundations"
    page = (html / "book" / f"{chapters(ROOT)[0].stem}.html").read_text()
    assert "colab.research.google.com" in page and "mybinder.org" in page
    assert f"{repository}/issues/new" in page  # readers can report a problem
    for path in html.rglob("*.html"):
        links = re.findall(r'href="([^"]+)"', path.read_text())
        assert f"https://{repository}" not in links, f"{path.name} links the repository root"
        assert not [h for h in links if "/solutions" in h], f"{path.name} links solutions/"


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


def _pages(html):
    return sorted(p.relative_to(html).as_posix() for p in (html / "book").glob("*.html"))


@pytest.mark.book
def test_every_page_loads_each_script_once_and_one_search_box(html):
    for name in _pages(html):
        page = (html / name).read_text()
        assert page.count("const THEBE_JS_URL") <= 1, f"{name} declares THEBE_JS_URL twice"
        assert page.count("var togglebuttonSelector") <= 1, name
        assert 'data-default-mode="light"' in page, f"{name}: no colour mode for the theme"
        # The theme's top bar repeated the sidebar's search field.
        assert page.count("search-button-field") == 1, f"{name}: not exactly one search box"
        assert re.search(r'<link rel="icon" href="[^"]*favicon\.svg"', page), name
        assert "_static/coursekit.css" in page and "_static/coursekit.js" in page, name
    assert (html / "_static" / "favicon.svg").exists()


@pytest.mark.book
def test_the_switcher_lists_this_edition(html):
    entries = json.loads((html / "versions.json").read_text())
    assert [e["version"] for e in entries] == [os.environ.get("COURSEKIT_VERSION") or "main"]
    page = (html / "book" / "intro.html").read_text()
    assert "version-switcher__button" in page and "versions.json" in page


@pytest.mark.book
def test_reference_list_is_author_year_like_the_citations(html):
    references = (html / "book" / "references.html").read_text()
    labels = re.findall(r'<span class="label"><span class="fn-bracket">\[</span>(.*?)'
                        r'<span class="fn-bracket">\]</span>', references)
    assert labels and all(re.search(r", (\d{4}[a-z]?|n\.d\.)$", label) for label in labels), \
        labels[:5]
    names = [label.rsplit(",", 1)[0].lower() for label in labels]
    assert names == sorted(names), "the reference list is not in author order"


@pytest.fixture(scope="module")
def browser(html):
    """A local server for the build and a chromium that may not reach anything else."""
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail("chromium is missing; .ci/run installs it with apt-get")
        pytest.skip("chromium not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    from coursekit.book.pdf import serve

    with serve(html) as base, sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM),
                                     args=["--no-sandbox", "--disable-gpu", "--no-first-run"])
        yield base, chromium
        chromium.close()


def _open(browser, path, problems=None):
    base, chromium = browser
    page = chromium.new_page(viewport={"width": 1400, "height": 900})
    if problems is not None:
        page.on("console", lambda m: m.type == "error" and problems.append(f"{path}: {m.text}"))
        page.on("pageerror", lambda e: problems.append(f"{path}: {e}"))
    page.route("**/*", lambda r: r.continue_() if r.request.url.startswith(base)
               or r.request.url.startswith("data:") else r.abort())
    page.goto(f"{base}/{path}", wait_until="networkidle")
    return page


@pytest.mark.book
def test_no_console_errors_on_any_page(html, browser):
    problems = []
    for name in [*_pages(html), "search.html?q=gradient"]:
        page = _open(browser, name, problems)
        page.evaluate("() => window.MathJax && MathJax.startup && MathJax.startup.promise")
        page.close()
    assert not problems, problems


@pytest.mark.book
def test_step_tables_are_padded_and_numbers_right_aligned(html, browser):
    page = _open(browser, "book/01_autodiff.html")
    cells = page.evaluate("""() => {
      const table = document.querySelector('.cell_output table');
      const style = el => getComputedStyle(el);
      const row = [...table.querySelectorAll('tbody tr')][2].cells;
      return [...row].map(c => ({text: c.textContent, align: style(c).textAlign,
                                 pad: parseFloat(style(c).paddingLeft)}));
    }""")
    page.close()
    assert all(c["pad"] >= 8 for c in cells), cells  # "0.3333" and "1.099" never touch
    numbers = [c for c in cells if re.fullmatch(r"-?\d+(\.\d+)?", c["text"].strip())]
    assert numbers and all(c["align"] == "right" for c in numbers), cells
    assert any(c["align"] == "left" for c in cells if c not in numbers), cells


@pytest.mark.book
def test_search_snippets_show_no_raw_tex(html, browser):
    page = _open(browser, "search.html?q=derivative")
    page.wait_for_selector("ul.search li p.context", timeout=30_000)
    page.wait_for_function("() => document.querySelectorAll('ul.search li').length > 0 && "
                           "!document.querySelector('#search-progress')?.textContent"
                           ".includes('Preparing')", timeout=30_000)
    page.wait_for_timeout(1000)  # the snippets of the remaining results
    snippets = page.locator("ul.search li p.context").all_inner_texts()
    page.close()
    assert snippets
    raw = [s for s in snippets if re.search(r"\\[(\[]|\\(frac|partial|mathbf|sum)\b", s)]
    assert not raw, raw[:3]


@pytest.mark.book
def test_the_book_prints_into_one_pdf_with_formulas_typeset(html, browser, tmp_path):
    """`coursekit pdf`: every page of the table of contents, MathJax done before printing."""
    if os.environ.get("CI"):
        import pypdf
    else:
        pypdf = pytest.importorskip("pypdf")
    from coursekit.book.pdf import print_book, toc_pages

    out = print_book(html, tmp_path / "book.pdf", browser=browser[1])
    reader = pypdf.PdfReader(out)
    assert len(reader.pages) >= len(chapters(ROOT)) + 2  # intro, chapters, references
    assert [item.title for item in reader.outline][1:3] == [
        re.sub(r"<[^>]+>", "", re.search(r"<title>(.*?) &#8212;", (html / f"{p}.html")
               .read_text()).group(1)) for p in toc_pages(ROOT)[1:3]]
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert "\\(" not in text and "\\begin{" not in text, "formulas left as TeX"
    assert "∂" in text, "no typeset partial derivative in the whole book"


@pytest.mark.book
def test_search_index_holds_words_not_tex(html):
    text = (html / "searchindex.js").read_text()
    index = json.loads(text[text.index("(") + 1:text.rindex(")")])
    found = {w for w in ("mathbb", "mathrm", "cdot", "mathbf", "tfrac", "dfrac")
             if index["terms"].get(w) not in (None, [], {})}
    assert not found, f"TeX commands indexed as words: {sorted(found)}"
    assert index["terms"].get("gradient") not in (None, [], {})


@pytest.mark.book
def test_figures_are_numbered_per_chapter_and_references_agree(html):
    """Chapter 8's figures read "Fig. 8.1, 8.2, …" (not their place in the whole book), and a
    {numref} to one of them prints the same number as its caption."""
    for page in (html / "book").glob("[0-9][0-9]_*.html"):
        text = page.read_text()
        chapter = int(page.name[:2])
        captions = re.findall(r'<span class="caption-number">Fig\. ([\d.]+) </span>', text)
        assert captions, f"{page.name} shows no numbered figure"
        assert captions == [f"{chapter}.{k}" for k in range(1, len(captions) + 1)], captions
        refs = set(re.findall(r'<span class="std std-numref">Fig\. ([\d.]+)</span>', text))
        assert refs and refs <= set(captions), (page.name, refs - set(captions))
