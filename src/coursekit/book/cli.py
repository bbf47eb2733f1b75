"""``coursekit pdf`` and ``coursekit publish``: the book as a PDF and as a versioned site."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from coursekit.book.publish import edition


def register(subparsers: argparse._SubParsersAction) -> None:
    pdf = subparsers.add_parser(
        "pdf", help="print the built book into one PDF with the local chromium")
    pdf.add_argument("--html", default="_build/html", help="the HTML build (default: %(default)s)")
    pdf.add_argument("--out", help="the PDF to write (default: <html>/book.pdf)")
    pdf.set_defaults(func=_pdf)

    publish = subparsers.add_parser(
        "publish", help="put the HTML build into a site tree as main or as a frozen vX.Y")
    publish.add_argument("--html", default="_build/html",
                         help="the HTML build (default: %(default)s)")
    publish.add_argument("--site", required=True,
                         help="the site tree, e.g. a checkout of the gh-pages branch")
    publish.add_argument("--version", default=edition()[0],
                         help="main, or a release tag vX.Y (default: $COURSEKIT_VERSION or main)")
    publish.add_argument("--base-url", default=edition()[1],
                         help="the site root's path, e.g. /deep-learning-foundations/ "
                              "(default: $COURSEKIT_BASE_URL or /)")
    publish.set_defaults(func=_publish)


def _pdf(args: argparse.Namespace) -> None:
    from coursekit.book.pdf import print_book

    html = Path(args.html).resolve()
    out = print_book(html, Path(args.out) if args.out else None)
    from pypdf import PdfReader

    print(f"{out}: {len(PdfReader(out).pages)} pages")


def _publish(args: argparse.Namespace) -> None:
    from coursekit.book.publish import publish

    try:
        entries = publish(Path(args.html), Path(args.site), args.version, args.base_url)
    except FileExistsError as error:  # a frozen edition: say so, without a traceback
        sys.exit(f"coursekit publish: {error}")
    where = "the site root" if args.version == "main" else f"{args.site}/{args.version}/"
    print(f"published {args.version} at {where}; versions.json lists "
          + ", ".join(e["version"] for e in entries))
