"""The book's Sphinx extension: what the site needs beyond Jupyter Book's defaults.

Listed in ``_config.yml`` (``sphinx.extra_extensions``). It

- registers the author-year bibliography style (:mod:`coursekit.book.bibstyle`);
- drops script and style tags that two extensions add twice (sphinx-thebe and
  sphinx-togglebutton end up registered twice under Jupyter Book 1, and the second
  ``const THEBE_JS_URL`` is an error in every page's console);
- points the version switcher at the site's own ``versions.json`` and names the edition
  being built, from ``COURSEKIT_VERSION`` (default ``main``) and ``COURSEKIT_BASE_URL``
  (the site root's path, default ``/``); see docs/publishing.md;
- writes a ``versions.json`` that lists this edition alone into the HTML folder, so a
  local build's switcher works; ``coursekit publish`` replaces it with the site's list;
- keeps formulas out of the search index: their TeX ("frac", "mathbb", "cdot") is not
  what a reader searches for (coursekit.js turns them into text in the result snippets);
- refreshes the project's own ``_static`` files in the build when only they changed
  (Sphinx finds "no targets out of date" then, and copies nothing).
"""

from __future__ import annotations

import filecmp
import json
import re
import shutil
from pathlib import Path

from docutils import nodes

from coursekit.book import bibstyle
from coursekit.book.publish import edition, version_url


def _configure_switcher(app, config) -> None:
    version, base = edition()
    options = dict(config.html_theme_options or {})
    options["switcher"] = {"json_url": f"{base}versions.json", "version_match": version}
    options["check_switcher"] = False  # it would fetch the URL at build time
    config.html_theme_options = options
    config.version = config.release = version


def _unique(files: list) -> list:
    seen, kept = set(), []
    for item in files:
        attributes = getattr(item, "attributes", {}) or {}
        filename = getattr(item, "filename", item) or ""  # None and "" both mean inline
        key = (str(filename), tuple(sorted((k, str(v)) for k, v in attributes.items())))
        if key not in seen:
            seen.add(key)
            kept.append(item)
    return kept


def _deduplicate_assets(app, pagename, templatename, context, doctree) -> None:
    for name in ("script_files", "css_files"):
        files = context.get(name)
        if isinstance(files, list):
            files[:] = _unique(files)


def _write_versions(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    target = Path(app.outdir) / "versions.json"
    version, base = edition()
    entries = [{"name": version, "version": version, "url": version_url(base, version),
                "preferred": True}]
    target.write_text(json.dumps(entries, indent=1) + "\n", encoding="utf-8")


def _refresh_static(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    for entry in app.config.html_static_path:
        source = Path(app.confdir) / entry
        if not source.is_dir():
            continue
        for path in source.rglob("*"):
            if path.is_file() and not path.name.startswith(".") and not path.name.endswith("_t"):
                target = Path(app.outdir) / "_static" / path.relative_to(source)
                if not target.exists() or not filecmp.cmp(path, target, shallow=False):
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(path, target)


def without_math(doctree):
    """A copy of ``doctree`` without its formulas (inline and displayed)."""
    copy = doctree.deepcopy()
    for node in list(copy.findall(lambda n: isinstance(n, (nodes.math, nodes.math_block)))):
        node.parent.remove(node)
    return copy


def _index_without_math(app) -> None:
    builder = app.builder
    original = getattr(builder, "index_page", None)
    if original is None:
        return

    def index_page(pagename, doctree, title):
        return original(pagename, without_math(doctree), title)

    builder.index_page = index_page


_CHAPTER = re.compile(r"(?:^|/)(\d{2})_[^/]+$")


def _number_figures_per_chapter(app, env):
    """Number figures "8.1, 8.2, …" in chapter 8, like its sections.

    Sphinx numbers figures through the whole book unless the table of contents is numbered,
    and a numbered one would call chapter 8 "3" while chapters 3–7 are unwritten. So keep
    Sphinx's order within each page and replace the number by (chapter, position); references
    (``{numref}``) read the same table, so they agree, across pages too.
    """
    changed = []
    for docname, by_type in env.toc_fignumbers.items():
        match = _CHAPTER.search(docname)
        if not match:
            continue
        chapter = int(match.group(1))
        for numbers in by_type.values():
            ordered = sorted(numbers, key=lambda figure_id: numbers[figure_id])
            for position, figure_id in enumerate(ordered, start=1):
                numbers[figure_id] = (chapter, position)
        changed.append(docname)
    return changed


def setup(app):
    bibstyle.register()
    app.connect("config-inited", _configure_switcher)
    app.connect("builder-inited", _index_without_math)
    app.connect("html-page-context", _deduplicate_assets, priority=100)
    app.connect("env-get-updated", _number_figures_per_chapter)
    app.connect("build-finished", _write_versions)
    app.connect("build-finished", _refresh_static)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
