"""Publishing: main at the site root, each release tag frozen under /vX.Y/, one versions.json.

A dry run on a temporary folder with small fake builds, through the same code the Pages
workflow calls (``coursekit publish``).
"""

import json

import pytest

from coursekit.book.publish import frozen_editions, publish, version_url, versions


def fake_build(folder, version, text):
    """A minimal HTML build, as `coursekit build` leaves it for edition ``version``."""
    (folder / "book").mkdir(parents=True)
    (folder / "index.html").write_text('<meta http-equiv="Refresh" content="0; book/intro.html">')
    (folder / "book" / "intro.html").write_text(text)
    (folder / "versions.json").write_text(json.dumps(
        [{"name": version, "version": version, "url": "/", "preferred": True}]))
    return folder


def listing(site):
    return json.loads((site / "versions.json").read_text())


def test_main_goes_to_the_root_and_a_tag_to_its_own_folder(tmp_path):
    site = tmp_path / "site"
    publish(fake_build(tmp_path / "main1", "main", "main, first"), site, "main", "/dlf/")
    publish(fake_build(tmp_path / "tag", "v1.0", "edition 1.0"), site, "v1.0", "/dlf/")
    assert (site / "book" / "intro.html").read_text() == "main, first"
    assert (site / "v1.0" / "book" / "intro.html").read_text() == "edition 1.0"
    assert (site / ".nojekyll").exists()  # GitHub Pages would hide _static/ otherwise
    assert listing(site) == [
        {"name": "main (latest)", "version": "main", "url": "/dlf/", "preferred": True},
        {"name": "v1.0", "version": "v1.0", "url": "/dlf/v1.0/"},
    ]


def test_later_builds_leave_frozen_editions_untouched(tmp_path):
    site = tmp_path / "site"
    publish(fake_build(tmp_path / "main1", "main", "main, first"), site, "main")
    publish(fake_build(tmp_path / "v1", "v1.0", "edition 1.0"), site, "v1.0")
    frozen = {p.relative_to(site): p.read_bytes() for p in (site / "v1.0").rglob("*")
              if p.is_file()}
    (site / "book" / "old-page.html").write_text("a page main no longer has")

    publish(fake_build(tmp_path / "main2", "main", "main, second"), site, "main")
    publish(fake_build(tmp_path / "v2", "v1.10", "edition 1.10"), site, "v1.10")

    assert (site / "book" / "intro.html").read_text() == "main, second"
    assert not (site / "book" / "old-page.html").exists()  # main is replaced, not merged
    assert {p.relative_to(site): p.read_bytes() for p in (site / "v1.0").rglob("*")
            if p.is_file()} == frozen
    assert frozen_editions(site) == ["v1.10", "v1.0"]  # newest first, 10 > 9 > 1
    assert [e["version"] for e in listing(site)] == ["main", "v1.10", "v1.0"]


def test_an_edition_is_never_overwritten(tmp_path):
    site = tmp_path / "site"
    publish(fake_build(tmp_path / "a", "v2.0", "first"), site, "v2.0")
    with pytest.raises(FileExistsError, match="never overwritten"):
        publish(fake_build(tmp_path / "b", "v2.0", "second"), site, "v2.0")
    assert (site / "v2.0" / "book" / "intro.html").read_text() == "first"


def test_a_build_is_published_only_as_the_edition_it_was_built_for(tmp_path):
    build = fake_build(tmp_path / "main", "main", "main")
    with pytest.raises(ValueError, match="COURSEKIT_VERSION=v3.0"):
        publish(build, tmp_path / "site", "v3.0")
    with pytest.raises(ValueError, match="neither"):
        publish(build, tmp_path / "site", "latest")
    with pytest.raises(FileNotFoundError):
        publish(tmp_path / "nothing", tmp_path / "site", "main")


def test_urls_and_listing_of_an_empty_site(tmp_path):
    assert version_url("/dlf", "main") == "/dlf/"
    assert version_url("/dlf/", "v1.2") == "/dlf/v1.2/"
    assert versions(tmp_path, "/") == [
        {"name": "main (latest)", "version": "main", "url": "/", "preferred": True}]
