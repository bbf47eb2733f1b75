"""Assemble the published site from an HTML build: main at the root, each release frozen.

The site (the ``gh-pages`` branch) looks like this::

    index.html, book/, _static/, ...   the latest build of main, replaced on every publish
    v1.0/, v1.1/, ...                   one frozen edition per release tag, never overwritten
    versions.json                       what the version switcher lists: main, then the tags
    .nojekyll                           GitHub Pages serves _static/ and _images/ as they are

The Pages workflow and a local dry run call the same :func:`publish` (``coursekit publish``);
see docs/publishing.md.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

MAIN = "main"
TAG = re.compile(r"^v\d+(\.\d+){0,2}$")
# Root entries that are not part of a main build and survive its replacement.
KEEP = {".git", ".nojekyll", "CNAME", "versions.json"}


VERSION_ENV = "COURSEKIT_VERSION"
BASE_URL_ENV = "COURSEKIT_BASE_URL"


def edition() -> tuple[str, str]:
    """(version being built, path of the site root ending in ``/``) from the environment."""
    version = os.environ.get(VERSION_ENV, "").strip() or "main"
    base = os.environ.get(BASE_URL_ENV, "").strip() or "/"
    return version, base if base.endswith("/") else base + "/"


def version_url(base: str, version: str) -> str:
    """Where an edition lives: the site root for main, ``<base>vX.Y/`` for a tag."""
    base = base if base.endswith("/") else base + "/"
    return base if version == MAIN else f"{base}{version}/"


def _key(tag: str) -> tuple[int, ...]:
    return tuple(int(part) for part in tag[1:].split("."))


def frozen_editions(site: Path) -> list[str]:
    """The release editions in the site, newest first."""
    found = [p.name for p in site.iterdir()
             if p.is_dir() and TAG.match(p.name) and (p / "index.html").exists()]
    return sorted(found, key=_key, reverse=True)


def versions(site: Path, base: str = "/") -> list[dict]:
    """The switcher's entries: main (the latest), then every frozen edition, newest first."""
    entries = [{"name": f"{MAIN} (latest)", "version": MAIN, "url": version_url(base, MAIN),
                "preferred": True}]
    entries += [{"name": tag, "version": tag, "url": version_url(base, tag)}
                for tag in frozen_editions(site)]
    return entries


def built_version(html: Path) -> str | None:
    """The edition a build was made for (its switcher's own entry), if it says."""
    listing = html / "versions.json"
    if not listing.exists():
        return None
    entries = json.loads(listing.read_text(encoding="utf-8"))
    return next((e["version"] for e in entries if e.get("preferred")), None)


def publish(html: Path, site: Path, version: str, base: str = "/") -> list[dict]:
    """Copy the build ``html`` into ``site`` as edition ``version``; return versions.json.

    ``main`` replaces everything at the root except the frozen editions; a tag ``vX.Y`` goes
    to ``site/vX.Y/`` and fails if that edition exists (a class's edition stays put).
    """
    html, site = Path(html), Path(site)
    if not (html / "index.html").exists():
        raise FileNotFoundError(f"no HTML build in {html}: run `coursekit build` first")
    if version != MAIN and not TAG.match(version):
        raise ValueError(f"edition {version!r} is neither {MAIN!r} nor a tag like v1.2")
    made_for = built_version(html)
    if made_for is not None and made_for != version:
        raise ValueError(
            f"{html} was built as edition {made_for!r}, not {version!r}: rebuild with "
            f"COURSEKIT_VERSION={version} so its version switcher names the right edition")
    site.mkdir(parents=True, exist_ok=True)
    if version == MAIN:
        frozen = set(frozen_editions(site))
        for child in site.iterdir():
            if child.name in KEEP or child.name in frozen:
                continue
            shutil.rmtree(child) if child.is_dir() else child.unlink()
        shutil.copytree(html, site, dirs_exist_ok=True)
    else:
        target = site / version
        if target.exists():
            raise FileExistsError(
                f"edition {version} is already published in {target}; frozen editions are "
                "never overwritten (tag a new version instead)")
        shutil.copytree(html, target)
    (site / ".nojekyll").touch()
    entries = versions(site, base)
    (site / "versions.json").write_text(json.dumps(entries, indent=1) + "\n", encoding="utf-8")
    return entries
